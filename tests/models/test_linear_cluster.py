"""ClusterCCA against CCA on explicitly materialised same-class pairs (the definition)."""

import numpy as np
import pytest
from scipy import linalg
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from crossmodal_core.models import CCA, ClusterCCA


def make_labelled(n=120, dx=5, dy=7, n_classes=5, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    labels[:n_classes] = np.arange(n_classes)
    centres_x = 2.0 * rng.standard_normal((n_classes, dx))
    centres_y = 2.0 * rng.standard_normal((n_classes, dy))
    x = centres_x[labels] + rng.standard_normal((n, dx)) + 5.0
    y = centres_y[labels] + rng.standard_normal((n, dy)) - 2.0
    return x, y, labels


def materialise(labels_x, labels_y):
    ix, iy = [], []
    for c in np.unique(labels_x):
        a, b = np.flatnonzero(labels_x == c), np.flatnonzero(labels_y == c)
        ix.append(np.repeat(a, len(b)))
        iy.append(np.tile(b, len(a)))
    return np.concatenate(ix), np.concatenate(iy)


def assert_same_model(a, b, atol=1e-6):
    np.testing.assert_allclose(a.canonical_correlations_, b.canonical_correlations_, atol=atol)
    for wa, wb, ma, mb in zip(a.weights_, b.weights_, a.means_, b.means_):
        np.testing.assert_allclose(wa, wb, atol=atol)
        np.testing.assert_allclose(ma, mb, atol=atol)


@pytest.mark.parametrize("reg", [1e-3, 0.3])
def test_equals_cca_on_materialised_pairs(reg):
    x, y, labels = make_labelled()
    cluster = ClusterCCA(n_components=4, reg=reg, dtype="float64").fit([x, y], labels)
    ix, iy = materialise(labels, labels)
    pairs = CCA(n_components=4, reg=reg, dtype="float64").fit([x[ix], y[iy]])
    assert_same_model(cluster, pairs)
    np.testing.assert_allclose(cluster.transform([x, y])[1], pairs.transform([x, y])[1], atol=1e-6)


def test_unpaired_views_of_different_lengths():
    x, y, labels = make_labelled(n=150)
    rng = np.random.default_rng(3)
    keep_y = np.sort(rng.choice(len(y), 90, replace=False))
    y2, labels_y = y[keep_y], labels[keep_y]
    cluster = ClusterCCA(n_components=3, dtype="float64").fit([x, y2], (labels, labels_y))
    ix, iy = materialise(labels, labels_y)
    pairs = CCA(n_components=3, dtype="float64").fit([x[ix], y2[iy]])
    assert_same_model(cluster, pairs)


def test_string_labels_and_classes():
    x, y, labels = make_labelled()
    names = np.array(["dog", "car", "rain", "baby", "fire"])[labels]
    a = ClusterCCA(n_components=3, dtype="float64").fit([x, y], names)
    b = ClusterCCA(n_components=3, dtype="float64").fit([x, y], labels)
    assert_same_model(a, b, atol=1e-9)
    assert sorted(a.classes_) == sorted(set(names))


def test_chunked_accumulation_equals_one_shot():
    x, y, labels = make_labelled(n=200)
    one_shot = ClusterCCA(n_components=4, dtype="float64", chunk_size=10_000).fit([x, y], labels)
    small_chunks = ClusterCCA(n_components=4, dtype="float64", chunk_size=7).fit([x, y], labels)
    assert_same_model(one_shot, small_chunks, atol=1e-9)
    incremental = ClusterCCA(n_components=4, dtype="float64")
    for part in np.array_split(np.arange(200), 3):
        incremental.partial_fit([x[part], y[part]], labels[part])
    assert_same_model(one_shot, incremental, atol=1e-9)
    # float32 chunks stay close (sums are kept about a shift, in float64)
    f32 = ClusterCCA(n_components=4, chunk_size=13).fit([x.astype(np.float32), y.astype(np.float32)], labels)
    np.testing.assert_allclose(f32.canonical_correlations_, one_shot.canonical_correlations_, atol=1e-4)


def test_refit_starts_from_scratch():
    x, y, labels = make_labelled()
    model = ClusterCCA(n_components=3, dtype="float64")
    model.fit([x[:60], y[:60]], labels[:60])
    model.fit([x, y], labels)
    assert_same_model(model, ClusterCCA(n_components=3, dtype="float64").fit([x, y], labels), atol=1e-12)


def test_component_limit_is_classes_minus_one():
    x, y, labels = make_labelled(n_classes=4)
    with pytest.warns(UserWarning, match="useful components"):
        model = ClusterCCA(n_components=6, dtype="float64").fit([x, y], labels)
    assert model.n_components_ == 3
    assert model.transform([x, y])[0].shape == (len(x), 3)


def test_reference_variant_with_beta_one_is_pairwise_cca():
    x, y, labels = make_labelled()
    ref = ClusterCCA(n_components=4, variant="reference", beta=1.0, dtype="float64").fit([x, y], labels)
    plain = CCA(n_components=4, reg=1e-4, reg_scale="absolute", dtype="float64").fit([x, y])
    assert_same_model(ref, plain)


def test_reference_variant_blend_against_hand_computation():
    x, y, labels = make_labelled()
    beta, k = 0.2, 4
    ref = ClusterCCA(n_components=k, variant="reference", beta=beta, dtype="float64").fit([x, y], labels)
    n = len(x)
    xc, yc = x - x.mean(0), y - y.mean(0)
    ix, iy = materialise(labels, labels)
    cluster = xc[ix].T @ yc[iy] / len(ix)
    s12 = beta * xc.T @ yc / n + (1 - beta) * cluster
    s11 = xc.T @ xc / n + 1e-4 * np.eye(x.shape[1])
    s22 = yc.T @ yc / n + 1e-4 * np.eye(y.shape[1])
    a = np.block([[np.zeros_like(s11), s12], [s12.T, np.zeros_like(s22)]])
    vals = linalg.eigh(a, linalg.block_diag(s11, s22), eigvals_only=True)
    np.testing.assert_allclose(ref.canonical_correlations_, np.sort(vals)[::-1][:k], atol=1e-6)
    np.testing.assert_allclose(ref.means_[0], x.mean(0), atol=1e-10)


def test_labels_required_and_checked():
    x, y, labels = make_labelled()
    with pytest.raises(ValueError, match="needs class labels"):
        ClusterCCA().fit([x, y])
    with pytest.raises(ValueError, match="labels but the view has"):
        ClusterCCA().fit([x, y], labels[:-1])
    with pytest.raises(ValueError, match="rows"):
        ClusterCCA().fit([x, y[:-1]], labels)
    with pytest.raises(ValueError, match="NaN"):
        ClusterCCA().fit([x, y], np.where(labels == 0, np.nan, labels.astype(float)))
    with pytest.raises(ValueError, match="at least 2 classes"):
        ClusterCCA().fit([x, y], np.zeros(len(x), dtype=int))
    with pytest.raises(ValueError, match="row-paired"):
        ClusterCCA(variant="reference", beta=0.5).fit([x, y], (labels, labels))
    with pytest.raises(ValueError, match="NaN"):
        ClusterCCA().fit([np.full_like(x, np.nan), y], labels)


@pytest.mark.parametrize(
    "params, message",
    [(dict(variant="other"), "variant"), (dict(beta=1.5), "beta"), (dict(chunk_size=0), "chunk_size"),
     (dict(n_components=-1), "n_components"), (dict(reg=-0.1), "reg")],
)
def test_bad_params(params, message):
    x, y, labels = make_labelled()
    with pytest.raises(ValueError, match=message):
        ClusterCCA(**params).fit([x, y], labels)


def test_not_fitted_params_clone_and_signs():
    x, y, labels = make_labelled()
    with pytest.raises(NotFittedError):
        ClusterCCA().transform([x, y])
    model = ClusterCCA(n_components=3, variant="reference", beta=0.3)
    assert clone(model).get_params() == model.get_params()
    model.fit([x, y], labels)
    for w in model.weights_[0].T:
        assert w[np.argmax(np.abs(w))] > 0
    assert model.score([x, y]).shape == (3,)
    assert not hasattr(clone(model), "statistics_")
