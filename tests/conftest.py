"""Shared fixtures. Artifacts written by tests go to a per-session temp cache, never to the
user's ``.crossmodal`` folder nor to a ``$CROSSMODAL_HOME`` the developer set for their own work."""

import os

import numpy as np
import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    previous = os.environ.get("CROSSMODAL_HOME")
    os.environ["CROSSMODAL_HOME"] = str(tmp_path_factory.mktemp("crossmodal_home"))
    yield
    if previous is None:
        os.environ.pop("CROSSMODAL_HOME", None)
    else:
        os.environ["CROSSMODAL_HOME"] = previous


@pytest.fixture
def rng():
    return np.random.default_rng(0)
