"""ContrastiveAligner."""

import numpy as np
import pytest

from crossmodal_core.data.synthetic import make_synthetic_av
from crossmodal_core.metrics import map_both_directions
from crossmodal_core.models.deep import ContrastiveAligner


@pytest.fixture(scope="module")
def data():
    ds = make_synthetic_av(n_train=240, n_test=120, n_classes=4, dims=(12, 20), seed=2)
    split = np.asarray(ds.split)
    a, v, y = ds.view("audio"), ds.view("visual"), ds.label(ds.default_label)
    tr, te = split == "train", split == "test"
    return [a[tr], v[tr]], y[tr], [a[te], v[te]], y[te]


def test_unsupervised_and_supervised_fits(data):
    views, y, test_views, y_test = data
    unsup = ContrastiveAligner(n_components=8, hidden=(32,), epochs=3, batch_size=64, progress=False).fit(views)
    assert "supcon" not in unsup.history_[0] and "infonce" in unsup.history_[0]
    sup = ContrastiveAligner(n_components=8, hidden=(32,), epochs=2, batch_size=64, progress=False).fit(views, y)
    assert "supcon" in sup.history_[0]
    za, zv = sup.transform(test_views)
    np.testing.assert_allclose(np.linalg.norm(za, axis=1), 1.0, atol=1e-5)


def test_supervised_term_learns_class_structure():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 400)
    views = [np.eye(5)[y] @ rng.normal(size=(5, d)) + 0.8 * rng.normal(size=(400, d)) for d in (6, 9)]
    m = ContrastiveAligner(n_components=8, hidden=(32,), epochs=30, batch_size=64, progress=False)
    m.fit([v[:300] for v in views], y[:300])
    xy, yx = map_both_directions(*m.transform([v[300:] for v in views]), y[300:])
    assert min(xy, yx) > 0.75  # cluster-CCA reaches 0.83 on this set


def test_bad_params(data):
    views, y, _, _ = data
    with pytest.raises(ValueError, match="temperature"):
        ContrastiveAligner(temperature=0).fit(views, y)
    with pytest.raises(ValueError, match="not both 0"):
        ContrastiveAligner(infonce_weight=0, supcon_weight=0).fit(views, y)
    with pytest.raises(ValueError, match="needs labels"):
        ContrastiveAligner(infonce_weight=0, progress=False).fit(views)
