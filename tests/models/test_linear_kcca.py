"""Nyström KCCA / ClusterKCCA: nonlinear gain, equivalence with the explicit pipeline, API."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.kernel_approximation import Nystroem

from crossmodal_core.models import CCA, KCCA, ClusterCCA, ClusterKCCA


def nonlinear_views(n, seed):
    """View 1 depends on view 0 only through t² and cos(2t): no linear correlation."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(-2, 2, n)
    x = np.column_stack([t, rng.standard_normal(n)])
    y = np.column_stack([t**2, np.cos(2 * t), rng.standard_normal(n)]) + 0.05 * rng.standard_normal((n, 3))
    return x, y


def test_kcca_beats_cca_on_a_nonlinear_relation():
    train, test = nonlinear_views(600, 0), nonlinear_views(400, 1)
    linear = CCA(n_components=1, reg=1e-3).fit(train).score(test)[0]
    kernel = KCCA(n_components=1, reg=1e-2, n_nystroem=200).fit(train).score(test)[0]
    assert linear < 0.3
    assert kernel > 0.9


def test_kcca_is_cca_on_the_nystroem_features():
    x, y = nonlinear_views(300, 2)
    model = KCCA(n_components=2, n_nystroem=50, gamma=0.7, random_state=5, dtype="float64").fit([x, y])
    fx = Nystroem(gamma=0.7, n_components=50, random_state=5).fit(x)
    fy = Nystroem(gamma=0.7, n_components=50, random_state=6).fit(y)
    ref = CCA(n_components=2, dtype="float64").fit([fx.transform(x), fy.transform(y)])
    np.testing.assert_allclose(model.canonical_correlations_, ref.canonical_correlations_, atol=1e-8)
    np.testing.assert_allclose(model.transform([x, y])[1], ref.transform([fx.transform(x), fy.transform(y)])[1],
                               atol=1e-8)


def test_gamma_scale_follows_the_data():
    x, y = nonlinear_views(200, 3)
    a = KCCA(n_components=1, n_nystroem=40, dtype="float64").fit([x, y])
    b = KCCA(n_components=1, n_nystroem=40, dtype="float64").fit([10.0 * x, y])
    np.testing.assert_allclose(a.gammas_[0], 100.0 * b.gammas_[0])
    np.testing.assert_allclose(a.gammas_[0], 1.0 / (x.shape[1] * x.var()))
    np.testing.assert_allclose(a.canonical_correlations_, b.canonical_correlations_, atol=1e-6)


def test_cluster_kcca_is_cluster_cca_on_the_nystroem_features():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 4, 160)
    x = rng.standard_normal((160, 3)) + labels[:, None]
    y = np.sin(rng.standard_normal((160, 5)) + labels[:, None])
    model = ClusterKCCA(n_components=3, n_nystroem=30, gamma=0.5, dtype="float64").fit([x, y], labels)
    fx = Nystroem(gamma=0.5, n_components=30, random_state=0).fit(x)
    fy = Nystroem(gamma=0.5, n_components=30, random_state=1).fit(y)
    ref = ClusterCCA(n_components=3, dtype="float64").fit([fx.transform(x), fy.transform(y)], labels)
    np.testing.assert_allclose(model.canonical_correlations_, ref.canonical_correlations_, atol=1e-8)
    # per-view labels (unpaired) work too
    unpaired = ClusterKCCA(n_components=3, n_nystroem=30).fit([x, y[:100]], (labels, labels[:100]))
    assert unpaired.transform([x, None])[0].shape == (160, 3)


def test_deterministic_with_random_state():
    x, y = nonlinear_views(200, 5)
    a = KCCA(n_components=2, n_nystroem=50).fit_transform([x, y])
    b = KCCA(n_components=2, n_nystroem=50).fit_transform([x, y])
    np.testing.assert_array_equal(a[0], b[0])


@pytest.mark.parametrize(
    "params, message",
    [(dict(gamma="auto"), "gamma"), (dict(gamma=-1.0), "gamma"), (dict(n_nystroem=0), "n_nystroem")],
)
def test_bad_params(params, message):
    x, y = nonlinear_views(50, 6)
    with pytest.raises(ValueError, match=message):
        KCCA(**params).fit([x, y])


def test_errors_params_and_clone():
    x, y = nonlinear_views(100, 7)
    with pytest.raises(NotFittedError):
        KCCA().transform([x, y])
    with pytest.raises(NotFittedError):
        ClusterKCCA().score([x, y])
    with pytest.raises(ValueError, match="rows"):
        KCCA().fit([x, y[:-1]])
    with pytest.raises(ValueError, match="variant"):
        ClusterKCCA(variant="x").fit([x, y], np.arange(100) % 3)
    model = KCCA(n_components=1, n_nystroem=30).fit([x, y])
    with pytest.raises(ValueError, match="features"):
        model.transform([x[:, :1], y])
    assert clone(model).get_params() == model.get_params()
    assert not hasattr(clone(model), "linear_")
