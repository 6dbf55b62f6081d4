"""Shared behaviour of the issue-11 flat-feature models: ACMR, UCAL, UGACH, AGAH, S-DCCA, VAE.

Each model: deterministic under a seed, an exact checkpoint round trip read with
``weights_only=True``, a clear error on ``(n, T, d)`` sequences, and a small fit whose test
MAP beats the label-frequency baseline (the MAP of a random ranking, ``Σ_c p_c²``).
"""

import numpy as np
import pytest
import torch

from crossmodal_core.data.synthetic import make_synthetic_av
from crossmodal_core.metrics import map_both_directions
from crossmodal_core.models import registry
from crossmodal_core.models.deep import TorchCrossModalEstimator

# small widths and budgets so each fit takes a second or two on one core
FAST = {
    "acmr": {"hidden": (32,), "n_components": 8, "epochs": 8, "batch_size": 64, "lr": 1e-3},
    "ucal": {"hidden": (32,), "n_components": 8, "epochs": 8, "batch_size": 64, "lr": 1e-3},
    "ugach": {"bits": 16, "hidden": 32, "epochs": 3, "batch_size": 64},
    "agah": {"bits": 16, "hidden": (32,), "emb_dim": 32, "epochs": 6, "batch_size": 64, "lr": 3e-3},
    "sdcca": {"hidden0": (32,), "hidden1": (32,), "epochs": 10, "batch_size": 100, "n_components": 3},
    "vae": {"hidden": 32, "latent": 8, "epochs": 10, "batch_size": 64, "lr": 1e-3},
}
NAMES = tuple(FAST)


@pytest.fixture(scope="module")
def data():
    # difficulty 1.0: the generator these small fits' margins were set on. The default became
    # harder (1.5, issue 11: the benchmark must not saturate); these tests check that a model
    # learns, not how hard the benchmark is (UGACH, 3 epochs, unsupervised, fell to 0.036
    # above chance at 1.5 against the 0.05 margin).
    ds = make_synthetic_av(n_train=400, n_test=200, n_classes=4, dims=(12, 20), seed=3, difficulty=1.0)
    split = np.asarray(ds.split)
    a, v, y = ds.view("audio"), ds.view("visual"), ds.label(ds.default_label)
    tr = split == "train"
    return [a[tr], v[tr]], y[tr], [a[~tr], v[~tr]], y[~tr]


def _fit(name, data, **extra):
    views, y, _, _ = data
    model = registry.make_model(name, progress=False, **{**FAST[name], **extra})
    return model.fit(views, y if registry.is_supervised(name) else None)


class _Fitted(dict):
    """Each model fitted once, on first use (so every test pays only for its own model)."""

    def __init__(self, data):
        super().__init__()
        self.data = data

    def __missing__(self, name):
        self[name] = _fit(name, self.data)
        return self[name]


@pytest.fixture(scope="module")
def fitted(data):
    return _Fitted(data)


def test_every_flat_model_is_registered_with_its_class():
    for name in NAMES:
        cls = registry.model_class(name)
        assert issubclass(cls, TorchCrossModalEstimator)
        assert registry.get_spec(name).family == "deep"


@pytest.mark.parametrize("name", NAMES)
def test_fit_beats_the_label_frequency_baseline(fitted, data, name):
    _, _, test_views, y_test = data
    za, zv = fitted[name].transform(test_views)
    p = np.bincount(y_test) / len(y_test)
    chance = float((p ** 2).sum())
    xy, yx = map_both_directions(za, zv, y_test)
    assert min(xy, yx) > chance + 0.05, (name, xy, yx, chance)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_model(fitted, data, name):
    _, _, test_views, _ = data
    again = _fit(name, data)
    for a, b in zip(fitted[name].transform(test_views), again.transform(test_views)):
        np.testing.assert_array_equal(a, b)
    assert [h["loss"] for h in again.history_] == [h["loss"] for h in fitted[name].history_]


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_round_trip_with_weights_only(fitted, data, name, tmp_path):
    _, _, test_views, _ = data
    model = fitted[name]
    path = registry.save_model(model, tmp_path / f"{name}.pt")
    payload = torch.load(path, weights_only=True)  # no pickled code in the file
    assert payload["class"] == type(model).__name__
    loaded = registry.load_model(path)
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    for a, b in zip(model.transform(test_views), loaded.transform(test_views)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_sequences_are_refused_with_a_clear_error(fitted, data, name):
    views, y, test_views, _ = data
    seq = [np.repeat(views[0][:, None, :], 10, axis=1), views[1]]
    model = registry.make_model(name, progress=False, **FAST[name])
    with pytest.raises(ValueError, match=r"sequence view \(\d+, 10, 12\) \(n, T, d\); this model takes 2-D"):
        model.fit(seq, y)
    with pytest.raises(ValueError, match="sequence view .* takes 2-D"):
        fitted[name].transform([np.repeat(test_views[0][:, None, :], 10, axis=1), test_views[1]])
    with pytest.raises(ValueError, match="features"):
        fitted[name].transform([test_views[1], test_views[0]])  # widths swapped
