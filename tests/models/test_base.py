"""The estimator contract in models/base.py: the constant-view warning at fit time."""

import warnings

import numpy as np
import pytest

from crossmodal_core.models.base import CrossModalEstimator, warn_if_constant
from crossmodal_core.models.linear.cca import CCA
from crossmodal_core.models.linear.cluster import ClusterCCA
from crossmodal_core.models.linear.kcca import KCCA


def _views(rng, n=60):
    z = rng.standard_normal((n, 2))
    return [z @ rng.standard_normal((2, 5)) + 0.1 * rng.standard_normal((n, 5)),
            z @ rng.standard_normal((2, 4)) + 0.1 * rng.standard_normal((n, 4))]


def test_linear_fit_warns_once_naming_the_constant_view(rng):
    x, v = _views(rng)
    const = np.full_like(v, 3.5)
    with pytest.warns(UserWarning, match=r"views\[1\] is constant: each of its 4 features has zero variance") as rec:
        CCA(n_components=2, reg=0.1).fit([x, const])
    assert [str(w.message) for w in rec if "constant" in str(w.message)] == [str(rec[0].message)]
    assert "views[0]" not in " ".join(str(w.message) for w in rec)


def test_kcca_warns_once_not_again_for_its_inner_cca(rng):
    x, v = _views(rng)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        KCCA(n_components=2, n_nystroem=20, reg=0.1).fit([np.zeros_like(x), v])
    msgs = [str(w.message) for w in rec if "is constant" in str(w.message)]
    assert len(msgs) == 1 and msgs[0].startswith("views[0] is constant")
    assert rec[0].filename == __file__  # points at the caller's fit line


def test_supervised_fit_warns_too(rng):
    x, v = _views(rng)
    y = np.arange(len(x)) % 3
    with pytest.warns(UserWarning, match=r"views\[0\] is constant"):
        ClusterCCA(n_components=2, reg=0.1).fit([np.ones_like(x), v], y)


def test_no_warning_for_partly_constant_views_nor_at_transform(rng):
    x, v = _views(rng)
    x[:, 0] = 1.0  # one constant column is fine
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = CCA(n_components=2, reg=0.1).fit([x, v])
        model.transform([np.ones_like(x), np.ones_like(v)])  # constant at transform: no warning
        model.score([x, v])


def test_warn_if_constant_edge_cases():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert warn_if_constant([np.ones((1, 3)), np.ones((5, 0)), np.array([np.nan, np.nan])[:, None],
                                 np.ones(4), None, "text"]) == []
    with pytest.warns(UserWarning, match=r"views\[1\]"):
        assert warn_if_constant({"a": np.eye(3), "b": np.zeros((3, 2), np.int64)}) == [1]


def test_deep_fit_warns_before_training(rng):
    pytest.importorskip("torch")
    from crossmodal_core.models.deep.dcca import DCCA

    x, v = _views(rng)
    with pytest.warns(UserWarning, match=r"views\[0\] is constant") as rec:
        try:
            DCCA(n_components=1, hidden=(4,), epochs=1, batch_size=30, progress=False).fit([np.ones_like(x), v])
        except Exception:  # noqa: BLE001 - training on a constant view may fail; the warning came first
            pass
    assert sum("is constant" in str(w.message) for w in rec) == 1  # not again for the inner CCA


def test_every_subclass_fit_is_wrapped():
    from crossmodal_core.models import registry  # noqa: F401  (imports every model family)

    try:
        import crossmodal_core.models.deep  # noqa: F401
    except ImportError:  # torch missing: the linear families are still checked
        pass

    def walk(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from walk(sub)

    classes = list(walk(CrossModalEstimator))
    assert CCA in classes and KCCA in classes
    for cls in classes:
        if "fit" in cls.__dict__:
            assert getattr(cls.fit, "_warns_constant", False), cls
