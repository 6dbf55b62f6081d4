"""Shared fixtures. Artifacts written by tests go to a per-session temp cache, never to the
user's ``.crossmodal`` folder."""

import os

import numpy as np
import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    os.environ.setdefault("CROSSMODAL_HOME", str(tmp_path_factory.mktemp("crossmodal_home")))
    yield


@pytest.fixture
def rng():
    return np.random.default_rng(0)
