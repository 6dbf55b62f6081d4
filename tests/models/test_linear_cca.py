"""CCA against independent references (scipy generalised eigh, scikit-learn's NIPALS CCA)."""

import numpy as np
import pytest
from scipy import linalg
from sklearn.base import clone
from sklearn.cross_decomposition import CCA as SklearnCCA
from sklearn.exceptions import NotFittedError

from crossmodal_core.models import CCA


def make_views(n=400, dx=6, dy=9, seed=0, noise=0.7):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 3))
    x = z @ rng.standard_normal((3, dx)) + noise * rng.standard_normal((n, dx)) + 3.0
    y = z @ rng.standard_normal((3, dy)) + noise * rng.standard_normal((n, dy)) - 1.0
    return x, y


def eigh_reference(x, y, k, reg):
    """CCA as the generalised eigenproblem [[0, Cxy], [Cyx, 0]] v = rho blockdiag(Cxx+rI, Cyy+rI) v."""
    n, dx = x.shape
    xc, yc = x - x.mean(0), y - y.mean(0)
    cxx, cyy, cxy = xc.T @ xc / n, yc.T @ yc / n, xc.T @ yc / n
    cxx = cxx + reg * np.trace(cxx) / dx * np.eye(dx)
    cyy = cyy + reg * np.trace(cyy) / y.shape[1] * np.eye(y.shape[1])
    a = np.block([[np.zeros_like(cxx), cxy], [cxy.T, np.zeros_like(cyy)]])
    b = linalg.block_diag(cxx, cyy)
    vals, vecs = linalg.eigh(a, b)
    order = np.argsort(vals)[::-1][:k]
    # eigh normalises vᵀBv = 1, i.e. each view's half has regularised variance 1/2
    return vals[order], np.sqrt(2) * vecs[:dx, order], np.sqrt(2) * vecs[dx:, order]


@pytest.mark.parametrize("reg", [0.0, 1e-3, 0.1])
def test_correlations_and_weights_match_generalised_eigh(reg):
    x, y = make_views()
    model = CCA(n_components=4, reg=reg, dtype="float64").fit([x, y])
    rho, wx, wy = eigh_reference(x, y, 4, reg)
    np.testing.assert_allclose(model.canonical_correlations_, rho, atol=1e-6)
    signs = np.sign(np.sum(model.weights_[0] * wx, axis=0))
    np.testing.assert_allclose(model.weights_[0], wx * signs, atol=1e-6)
    np.testing.assert_allclose(model.weights_[1], wy * signs, atol=1e-6)


def test_unregularised_correlations_are_the_empirical_ones():
    x, y = make_views()
    model = CCA(n_components=4, reg=0.0, dtype="float64").fit([x, y])
    np.testing.assert_allclose(model.score([x, y]), model.canonical_correlations_, atol=1e-8)
    zx, zy = model.transform([x, y])
    np.testing.assert_allclose(np.cov(zx.T, bias=True), np.eye(4), atol=1e-8)
    np.testing.assert_allclose(np.cov(zy.T, bias=True), np.eye(4), atol=1e-8)


def test_first_correlation_matches_sklearn_cca():
    x, y = make_views(n=600)
    ours = CCA(n_components=2, reg=0.0, dtype="float64").fit([x, y]).score([x, y])
    ref = SklearnCCA(n_components=2, scale=False, max_iter=5000, tol=1e-12).fit(x, y)
    sx, sy = ref.transform(x, y)
    np.testing.assert_allclose(ours[0], np.corrcoef(sx[:, 0], sy[:, 0])[0, 1], atol=1e-6)


def test_float32_grams_agree_with_float64():
    x, y = make_views()
    c32 = CCA(n_components=4, dtype="float32").fit([x.astype(np.float32), y.astype(np.float32)])
    c64 = CCA(n_components=4, dtype="float64").fit([x, y])
    np.testing.assert_allclose(c32.canonical_correlations_, c64.canonical_correlations_, atol=1e-4)


def test_sign_convention_and_determinism():
    x, y = make_views()
    a = CCA(n_components=4).fit([x, y])
    for w in a.weights_[0].T:
        assert w[np.argmax(np.abs(w))] > 0
    # row order does not change the solution, so neither the signs
    perm = np.random.default_rng(1).permutation(len(x))
    b = CCA(n_components=4).fit([x[perm], y[perm]])
    np.testing.assert_allclose(a.weights_[0], b.weights_[0], atol=1e-4)
    za1, zv1 = a.transform([x, y])
    za2, zv2 = a.transform([x, y])
    np.testing.assert_array_equal(za1, za2)
    assert np.all(a.score([x, y]) > 0)


def test_ridge_is_scale_free():
    x, y = make_views()
    a = CCA(n_components=3, reg=0.05, dtype="float64").fit([x, y])
    b = CCA(n_components=3, reg=0.05, dtype="float64").fit([1000.0 * x, y])
    np.testing.assert_allclose(a.canonical_correlations_, b.canonical_correlations_, atol=1e-10)
    np.testing.assert_allclose(a.transform([x, y])[0], b.transform([1000.0 * x, y])[0], atol=1e-8)
    # the absolute ridge is not: it barely regularises the large-scale view
    c = CCA(n_components=3, reg=0.05, reg_scale="absolute", dtype="float64").fit([1000.0 * x, y])
    assert not np.allclose(a.canonical_correlations_, c.canonical_correlations_, atol=1e-4)


def test_transform_shapes_unpaired_and_none():
    x, y = make_views()
    model = CCA(n_components=3).fit([x, y])
    za, zv = model.transform([x[:10], y[:25]])
    assert za.shape == (10, 3) and zv.shape == (25, 3)
    za_only, none = model.transform([x[:5], None])
    assert none is None
    np.testing.assert_allclose(za_only, za[:5], atol=1e-6)


def test_not_fitted():
    x, y = make_views()
    with pytest.raises(NotFittedError):
        CCA().transform([x, y])
    with pytest.raises(NotFittedError):
        CCA().score([x, y])


@pytest.mark.parametrize(
    "views, message",
    [
        (lambda x, y: [x, y[:-1]], "rows"),
        (lambda x, y: [x], "expected 2"),
        (lambda x, y: x, "single array"),
        (lambda x, y: [np.where(np.arange(x.size).reshape(x.shape) == 3, np.nan, x), y], "NaN"),
        (lambda x, y: [x[:, 0], y], "2-D"),
    ],
)
def test_bad_views(views, message):
    x, y = make_views()
    with pytest.raises(ValueError, match=message):
        CCA(n_components=2).fit(views(x, y))


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(reg=-1.0), "reg"),
        (dict(reg=(0.1, 0.1, 0.1)), "one float per view"),
        (dict(reg_scale="trace"), "reg_scale"),
        (dict(n_components=0), "n_components"),
        (dict(dtype="float16"), "dtype"),
    ],
)
def test_bad_params(params, message):
    x, y = make_views()
    with pytest.raises(ValueError, match=message):
        CCA(**params).fit([x, y])


def test_transform_validates_features():
    x, y = make_views()
    model = CCA(n_components=2).fit([x, y])
    with pytest.raises(ValueError, match="features"):
        model.transform([x[:, :3], y])
    with pytest.raises(ValueError, match="NaN"):
        model.transform([np.full_like(x, np.nan), y])


def test_singular_covariance_without_ridge_names_the_fix():
    x, y = make_views(n=5, dx=6)
    with pytest.raises(ValueError, match="larger reg"):
        CCA(n_components=2, reg=0.0, dtype="float64").fit([x, y])


def test_too_many_components_warns_and_clips():
    x, y = make_views(dx=4)
    with pytest.warns(UserWarning, match="exceeds"):
        model = CCA(n_components=10).fit([x, y])
    assert model.n_components_ == 4 and model.transform([x, y])[1].shape == (len(x), 4)


def test_params_and_clone():
    model = CCA(n_components=3, reg=0.1, dtype="float64")
    assert model.get_params() == dict(n_components=3, reg=0.1, reg_scale="mean_variance", dtype="float64")
    model.set_params(reg=0.5)
    copy = clone(model)
    assert copy.get_params() == model.get_params() and copy is not model
    x, y = make_views()
    model.fit([x, y])
    assert not hasattr(clone(model), "weights_")
    assert len(model.fit_transform([x, y])) == 2
