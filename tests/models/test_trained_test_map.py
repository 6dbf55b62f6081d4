"""The test MAP a stored model records: exact on small test sets, a stated sampled estimate above
``TEST_MAP_EXACT_MAX`` (the exact n x n MAP of a 10^6-row dataset's test rows would take hours)."""

import numpy as np
import pytest

from crossmodal_core.data.catalog import DatasetEntry, LoadedDataset
from crossmodal_core.data.synthetic import make_synthetic_av
from crossmodal_core.metrics import average_precision, map_both_directions
from crossmodal_core.models import trained


@pytest.fixture
def data(tmp_path):
    ds = make_synthetic_av(n_train=300, n_test=120, n_classes=4, dims=(5, 7), seed=3)
    return LoadedDataset(DatasetEntry("unit-map", "unit", "path", tmp_path), ds, None, "unit-map-key")


def _reference(model, data):
    _, test = trained.split_indices(data.dataset)
    a, v = model.embeddings["audio"][test], model.embeddings["visual"][test]
    return a, v, data.dataset.label("class")[test]


def test_small_test_sets_get_the_exact_map(data):
    model = trained.train_and_store(data, "ccca", ("audio", "visual"), "class")
    a, v, y = _reference(model, data)
    assert model.info["test_map"] == pytest.approx(list(map_both_directions(a, v, y)), abs=1e-12)
    assert "test_map_sampled" not in model.info


def test_large_test_sets_get_a_sampled_estimate_with_its_interval(data, monkeypatch):
    monkeypatch.setattr(trained, "TEST_MAP_EXACT_MAX", 50)
    monkeypatch.setattr(trained, "TEST_MAP_QUERIES", 40)
    model = trained.train_and_store(data, "ccca", ("audio", "visual"), "class")
    a, v, y = _reference(model, data)
    info = model.info["test_map_sampled"]
    assert info["queries"] == [40, 40] and info["of"] == [120, 120] and info["confidence"] == 0.95
    # the estimate is the mean AP of the sampled queries (seed 0), each AP the library's exact one
    rows = np.sort(np.random.default_rng(0).choice(120, size=40, replace=False))
    for d, (q, g) in enumerate(((a, v), (v, a))):
        ap = average_precision(q[rows], g, y[rows], y)
        assert model.info["test_map"][d] == pytest.approx(ap.mean(), abs=1e-12)
        assert info["low"][d] < model.info["test_map"][d] < info["high"][d]
    # sampling every query gives the exact MAP with a zero-width interval
    monkeypatch.setattr(trained, "TEST_MAP_QUERIES", 120)
    full = trained.train_and_store(data, "ccca", ("audio", "visual"), "class")
    a, v, y = _reference(full, data)
    assert full.info["test_map"] == pytest.approx(list(map_both_directions(a, v, y)), abs=1e-12)
    assert full.info["test_map_sampled"]["stderr"] == [0.0, 0.0]
