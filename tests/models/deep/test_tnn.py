"""TNN-C-CCA: API, C-CCA first stage, determinism, mining options, early stopping."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from crossmodal_core.data.synthetic import make_synthetic_av
from crossmodal_core.models.deep import TNNClusterCCA
from crossmodal_core.models.deep.training import validation_map
from crossmodal_core.models.linear import ClusterCCA


@pytest.fixture(scope="module")
def data():
    ds = make_synthetic_av(n_train=240, n_test=120, n_classes=4, dims=(12, 20), seed=3)
    split = np.asarray(ds.split)
    a, v, y = ds.view("audio"), ds.view("visual"), ds.label(ds.default_label)
    tr, te = split == "train", split == "test"
    return [a[tr], v[tr]], y[tr], [a[te], v[te]], y[te]


def _small(**kw):
    params = dict(hidden=(16,), epochs=2, batch_size=64, progress=False, random_state=0)
    params.update(kw)
    return TNNClusterCCA(**params)


def test_fit_transform_shapes_and_first_stage_is_cluster_cca(data):
    views, y, test_views, _ = data
    m = _small().fit(views, y)
    za, zv = m.transform(test_views)
    assert za.shape == (120, 10) and zv.shape == (120, 10) and za.dtype == np.float64
    assert m.n_components_ == 3  # 4 classes -> 3 useful cluster-CCA components
    ref = ClusterCCA(n_components=3).fit(views, y)
    for w, w_ref in zip(m.ccca_weights_, ref.weights_):
        np.testing.assert_allclose(w, w_ref, rtol=1e-6, atol=1e-9)
    assert len(m.history_) == 2 and all(np.isfinite(h["loss"]) for h in m.history_)


def test_determinism_same_seed_identical_different_seed_not(data):
    views, y, test_views, _ = data
    z1 = _small(random_state=7).fit(views, y).transform(test_views)
    z2 = _small(random_state=7).fit(views, y).transform(test_views)
    z3 = _small(random_state=8).fit(views, y).transform(test_views)
    for a, b in zip(z1, z2):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(z1[0], z3[0])


@pytest.mark.parametrize("mining", ["batch-all", "batch-hard", "semi-hard"])
def test_mining_options_train(data, mining):
    views, y, test_views, _ = data
    m = _small(mining=mining).fit(views, y)
    assert all(np.isfinite(z).all() for z in m.transform(test_views))


def test_network_first_order(data):
    views, y, test_views, _ = data
    m = _small(order="network-first", embedding_dim=6).fit(views, y)
    za, zv = m.transform(test_views)
    assert za.shape == (120, 3) and zv.shape == (120, 3)
    assert m.ccca_weights_[0].shape == (6, 3)


def test_validation_callback_and_patience_rule(data):
    views, y, test_views, y_test = data
    records = []
    m = _small(epochs=6, patience=1).fit(views, y, validation=(test_views, y_test), callback=records.append)
    assert [r["epoch"] for r in records] == [h["epoch"] for h in m.history_]
    maps = [h["val_map"] for h in m.history_]
    assert all(0 <= s <= 1 for s in maps)
    assert m.best_epoch_ == 1 + int(np.argmax(maps))
    # patience 1: training stops after the first epoch that does not beat every earlier one
    no_gain = [e for e in range(1, len(maps)) if maps[e] <= max(maps[:e])]
    assert m.stopped_early_ == bool(no_gain)
    assert len(maps) == (no_gain[0] + 1 if no_gain else 6)
    # the restored weights are the best epoch's: re-scoring them gives that epoch's MAP
    xy, yx = validation_map(*m.transform(test_views), y_test)
    assert 0.5 * (xy + yx) == pytest.approx(max(maps), abs=1e-6)


def test_early_stopping_on_a_validation_score_that_cannot_improve(data):
    """One class in the validation split: every gallery item is relevant, so validation MAP is
    exactly 1 after every epoch. Epoch 1 is the best, epoch 2 brings no gain, patience 1 stops
    there, and the weights are rolled back to epoch 1's: those of a 1-epoch fit."""
    views, y, test_views, _ = data
    one_class = np.zeros(len(test_views[0]), dtype=np.int64)
    m = _small(epochs=6, patience=1).fit(views, y, validation=(test_views, one_class))
    assert [h["val_map"] for h in m.history_] == [1.0, 1.0]
    assert m.stopped_early_ and m.best_epoch_ == 1
    one_epoch = _small(epochs=1).fit(views, y)
    two_epochs = _small(epochs=2).fit(views, y)
    for got, want, later in zip(m.transform(test_views), one_epoch.transform(test_views),
                                two_epochs.transform(test_views)):
        np.testing.assert_array_equal(got, want)
        assert not np.array_equal(got, later)  # epoch 2 did change the weights: the rollback is real


def test_learns_better_than_chance(data):
    from crossmodal_core.metrics import map_both_directions

    views, y, test_views, y_test = data
    m = _small(epochs=8, hidden=(100, 100, 100)).fit(views, y)
    xy, yx = map_both_directions(*m.transform(test_views), y_test)
    chance = np.mean(np.bincount(y_test) / len(y_test))  # 0.25; cluster-CCA alone reaches 0.47 here
    assert min(xy, yx) > chance + 0.15


def test_api_errors_and_params(data):
    views, y, test_views, _ = data
    m = _small()
    with pytest.raises(NotFittedError):
        m.transform(test_views)
    with pytest.raises(ValueError, match="labels"):
        m.fit(views)
    with pytest.raises(ValueError, match="mining"):
        _small(mining="hardest").fit(views, y)
    with pytest.raises(ValueError, match="order"):
        _small(order="sideways").fit(views, y)
    bad = [views[0].copy(), views[1]]
    bad[0][0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        m.fit(bad, y)
    m.fit(views, y)
    with pytest.raises(ValueError, match="features"):
        m.transform([test_views[0][:, :5], test_views[1]])
    c = clone(m).set_params(margin=0.5)
    assert c.get_params()["margin"] == 0.5 and not hasattr(c, "module_")
