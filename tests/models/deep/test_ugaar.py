"""UGAAR: losses against hand-computed values, the estimator contract, and retrieval on a
synthetic three-view set whose views share one latent factor."""

import math

import numpy as np
import pytest
import torch

from crossmodal_core.alignment import VIEW_NAMES, evaluate_alignment, evaluate_cca_on_pairs
from crossmodal_core.models.base import NotFittedError
from crossmodal_core.models.deep._base import CheckpointError, TorchCrossModalEstimator
from crossmodal_core.models.deep.losses import (
    alignment_loss,
    discriminator_loss,
    generator_adversarial_loss,
    r1_penalty,
)
from crossmodal_core.models.deep.miners import derangement
from crossmodal_core.models.deep.training import TrainingDivergedError
from crossmodal_core.models.deep.ugaar import UGAAR

N_TRAIN, N_TEST = 240, 120
DIMS = (24, 30, 20)  # sheet, lyrics, audio
FAST = dict(n_components=4, hidden_dims=(64,), generator_hidden=(32,), discriminator_hidden=(32,),
            epochs=25, batch_size=64, progress=False, random_state=0)


def three_views(n: int, seed: int, latent: int = 4, noise: float = 0.4) -> list[np.ndarray]:
    """Sheet, lyrics, audio: linear / tanh / linear maps of one shared latent plus noise."""
    rng = np.random.default_rng(seed)
    mixing = np.random.default_rng(1234)  # the same maps for train and test
    z = rng.standard_normal((n, latent))
    views = []
    for j, d in enumerate(DIMS):
        w = mixing.standard_normal((latent, d)) / math.sqrt(latent)
        h = z @ w
        if j == 1:
            h = 2.0 * np.tanh(h)
        views.append((h + noise * rng.standard_normal((n, d))).astype(np.float32))
    return views


@pytest.fixture(scope="module")
def data():
    return three_views(N_TRAIN, seed=0), three_views(N_TEST, seed=1)


@pytest.fixture(scope="module")
def fitted(data):
    train, _ = data
    return UGAAR(**FAST).fit(train)


# ----------------------------------------------------------------------------- losses
def test_alignment_loss_is_sum_of_mses():
    e = [torch.tensor([[1.0, 2.0], [0.0, 0.0]]), torch.tensor([[1.0, 1.0], [1.0, 1.0]])]
    t = [torch.tensor([[0.0, 2.0], [0.0, 2.0]]), torch.tensor([[1.0, 1.0], [1.0, 3.0]])]
    # (1 + 0 + 0 + 4) / 4 + (0 + 0 + 0 + 4) / 4
    assert float(alignment_loss(e, t)) == pytest.approx(1.25 + 1.0)


def test_discriminator_and_generator_losses_match_hand_computation():
    real = torch.tensor([0.0, 2.0])
    fake = torch.tensor([-1.0, 1.0])
    mism = torch.tensor([3.0])
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    s = 0.1
    bce = lambda p, y: -(y * math.log(p) + (1 - y) * math.log(1 - p))  # noqa: E731
    expected = (np.mean([bce(sig(0.0), 1 - s), bce(sig(2.0), 1 - s)])
                + np.mean([bce(sig(-1.0), 0), bce(sig(1.0), 0)]) + 0.5 * bce(sig(3.0), 0))
    got = discriminator_loss(real, [fake, mism], [1.0, 0.5], label_smoothing=s)
    assert float(got) == pytest.approx(expected, rel=1e-6)
    assert float(generator_adversarial_loss(fake)) == pytest.approx(
        np.mean([-math.log(sig(-1.0)), -math.log(sig(1.0))]), rel=1e-6)
    with pytest.raises(ValueError, match="label_smoothing"):
        discriminator_loss(real, [fake], label_smoothing=0.7)


def test_r1_penalty_of_a_linear_discriminator_is_half_the_squared_weight_norm():
    w = torch.tensor([1.0, -2.0, 0.5])
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    assert float(r1_penalty(x @ w, x)) == pytest.approx(0.5 * float(w @ w))


def test_derangement_has_no_fixed_point_and_is_a_permutation():
    g = torch.Generator().manual_seed(0)
    for n in (2, 3, 7, 64):
        for _ in range(20):
            p = derangement(n, g)
            assert sorted(p.tolist()) == list(range(n))
            assert not (p == torch.arange(n)).any()
    with pytest.raises(ValueError):
        derangement(1, g)


# ----------------------------------------------------------------------------- estimator contract
def test_transform_shapes_and_row_counts_may_differ(fitted, data):
    _, test = data
    z = fitted.transform(test)
    assert [a.shape for a in z] == [(N_TEST, 4)] * 3
    assert all(a.dtype == np.float64 and np.isfinite(a).all() for a in z)
    z2 = fitted.transform([test[0][:5], test[1][:7], test[2][:3]])
    assert [a.shape[0] for a in z2] == [5, 7, 3]
    np.testing.assert_allclose(z2[1], z[1][:7], rtol=1e-6, atol=1e-7)


def test_not_fitted():
    with pytest.raises(NotFittedError):
        UGAAR().transform(three_views(10, seed=0))
    with pytest.raises(NotFittedError):
        UGAAR().save("unused.pt")


def test_bad_input_is_rejected(data, fitted):
    train, test = data
    with pytest.raises(ValueError, match="expected 3"):
        UGAAR(**FAST).fit(train[:2])
    bad = [v.copy() for v in train]
    bad[1][3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        UGAAR(**FAST).fit(bad)
    with pytest.raises(ValueError, match="rows"):
        UGAAR(**FAST).fit([train[0], train[1][:-1], train[2]])
    with pytest.raises(ValueError, match="n_components"):
        UGAAR(**{**FAST, "n_components": 21}).fit(train)
    for name, value in (("adv_weight", -1.0), ("label_smoothing", 0.6), ("batch_size", 1), ("epochs", 0),
                        ("lr", 0.0), ("dropout", 1.0), ("gp_weight", float("nan"))):
        with pytest.raises(ValueError, match=name):
            UGAAR(**{**FAST, name: value}).fit(train)
    with pytest.raises(ValueError, match="features"):
        fitted.transform([test[0], test[1][:, :5], test[2]])
    with pytest.raises(ValueError, match="3 views"):
        fitted.transform(test[:2])


def test_seeded_fit_is_deterministic(data):
    train, test = data
    params = {**FAST, "epochs": 4}
    a = UGAAR(**params).fit(train).transform(test)
    b = UGAAR(**params).fit(train).transform(test)
    c = UGAAR(**{**params, "random_state": 1}).fit(train).transform(test)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.allclose(a[1], c[1])


def test_save_load_round_trip(tmp_path, fitted, data):
    _, test = data
    path = fitted.save(tmp_path / "ugaar.pt")
    assert path.with_suffix(".json").is_file()
    for loaded in (UGAAR.load(path), TorchCrossModalEstimator.load(path)):
        assert isinstance(loaded, UGAAR)
        assert loaded.get_params() == fitted.get_params()
        for x, y in zip(fitted.transform(test), loaded.transform(test)):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(loaded.canonical_correlations_, fitted.canonical_correlations_)
        np.testing.assert_array_equal(loaded.generate_pairs(test[1][:3], n_samples=2),
                                      fitted.generate_pairs(test[1][:3], n_samples=2))
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        UGAAR.load(corrupt)


def test_generate_pairs_shape(fitted, data):
    _, test = data
    pairs = fitted.generate_pairs(test[1][:6], n_samples=3, random_state=0)
    assert pairs.shape == (6, 3, 2, 4)
    assert np.isfinite(pairs).all()
    # the noise makes the samples of one lyric differ
    assert not np.allclose(pairs[:, 0], pairs[:, 1])


# ----------------------------------------------------------------------------- training behaviour
def test_training_reduces_alignment_loss_and_adversarial_losses_stay_finite(fitted):
    h = fitted.history_
    assert len(h) == FAST["epochs"]
    assert h[-1]["alignment_loss"] < 0.5 * h[0]["alignment_loss"]
    for record in h:
        for key in ("loss", "alignment_loss", "d_loss", "g_adv_loss", "recon_loss", "consistency_loss"):
            assert math.isfinite(record[key]), (key, record)
    # the game is played: D is neither perfect (loss ~0) nor ignored
    assert 0.1 < h[-1]["d_loss"] < 10 and 0.05 < h[-1]["g_adv_loss"] < 10
    assert fitted.canonical_correlations_.shape == (4,)
    assert np.all(fitted.canonical_correlations_ > 0.5)


def test_paired_retrieval_far_above_chance_and_comparable_to_cca(fitted, data):
    train, test = data
    z = dict(zip(VIEW_NAMES, fitted.transform(test)))
    res = evaluate_alignment(z)
    chance_r10 = 10 / N_TEST
    for key, r in res.items():
        assert r["R@10"] > 5 * chance_r10, (key, r)
        assert r["median_rank"] <= 5, (key, r)
    base = evaluate_cca_on_pairs(dict(zip(VIEW_NAMES, train)), dict(zip(VIEW_NAMES, test)), n_components=4)
    assert res["mean"]["MRR"] >= 0.8 * base["mean"]["MRR"], (res["mean"], base["mean"])
    assert res["mean"]["R@10"] >= base["mean"]["R@10"] - 0.1


def test_callback_validation_and_early_stop(data):
    train, test = data
    seen = []

    def callback(record):
        seen.append(record)
        return record["epoch"] < 3  # returning False stops training

    model = UGAAR(**{**FAST, "epochs": 10}).fit(train, validation=(test, None), callback=callback)
    assert [r["epoch"] for r in seen] == [1, 2, 3]
    assert all(0 < r["val_map"] <= 1 for r in seen)
    assert model.best_epoch_ == 1 + int(np.argmax([r["val_map"] for r in seen]))
    # labels of the validation split are ignored (instance-level validation): one class for
    # every item would make class-level MAP exactly 1, yet the scores equal the unlabelled ones
    params = {**FAST, "epochs": 2}
    unlabelled = UGAAR(**params).fit(train, validation=(test, None)).history_
    one_class = UGAAR(**params).fit(train, validation=(test, np.zeros(N_TEST))).history_
    assert [h["val_map"] for h in one_class] == [h["val_map"] for h in unlabelled]
    assert all(h["val_map"] < 0.99 for h in one_class)


def test_divergence_is_reported(data):
    train, _ = data
    with pytest.raises(TrainingDivergedError, match="diverged"):
        UGAAR(**{**FAST, "epochs": 3, "lr": 1e12, "d_lr": 1e12, "gp_weight": 0.0}).fit(train)


def test_three_view_variates_against_a_direct_computation(data):
    from crossmodal_core.models.deep.ugaar import three_view_variates

    train, _ = data
    t = three_view_variates(train, 3, reg=1e-3)
    assert [a.shape for a in t] == [(N_TRAIN, 3)] * 3
    # the shared variates are the top eigenvectors of the sum of ridge "hat" matrices
    xs = [v.astype(np.float64) - v.mean(0) for v in train]
    hats = []
    for x in xs:
        c = x.T @ x / N_TRAIN
        c += 1e-3 * np.mean(np.diag(c)) * np.eye(len(c))
        hats.append(x @ np.linalg.solve(c, x.T) / N_TRAIN)
    w, v = np.linalg.eigh(sum(hats))
    g = v[:, ::-1][:, :3] * np.sqrt(N_TRAIN)
    for j, (x, hat) in enumerate(zip(xs, hats)):
        expected = hat @ g
        for c in range(3):  # equal up to the sign of each component
            assert min(np.abs(t[j][:, c] - expected[:, c]).max(), np.abs(t[j][:, c] + expected[:, c]).max()) < 1e-6


def test_three_view_ground_truth_option(data):
    train, test = data
    model = UGAAR(**{**FAST, "ground_truth": "three-view", "epochs": 10}).fit(train)
    res = evaluate_alignment(dict(zip(VIEW_NAMES, model.transform(test))))
    assert res["mean"]["R@10"] > 5 * 10 / N_TEST
    with pytest.raises(ValueError, match="ground_truth"):
        UGAAR(**{**FAST, "ground_truth": "lyrics"}).fit(train)
