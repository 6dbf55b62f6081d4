"""The synthetic VEGAS-shaped generator: shapes, labelling, determinism, and the structure
the docstring promises (class signal, C-CCA-friendly, nonlinear part)."""

import numpy as np
import pytest

from crossmodal_core.data.synthetic import make_synthetic_av


def test_vegas_shapes_and_labelling():
    ds = make_synthetic_av()
    assert ds.n_items == 22483 + 5620
    assert ds.views["audio"].shape == (28103, 128) and ds.views["visual"].shape == (28103, 1024)
    assert ds.views["audio"].dtype == np.float32
    assert ds.view_names == ["audio", "visual"]
    assert (ds.split == "train").sum() == 22483 and (ds.split == "test").sum() == 5620
    y = ds.labels["class"]
    assert set(np.unique(y[ds.split == "train"])) == set(range(10)) == set(np.unique(y[ds.split == "test"]))
    assert ds.is_synthetic and ds.info["synthetic"] is True
    assert "SYNTHETIC" in ds.info["description"]
    assert ds.name == "synthetic-vegas" and ds.default_label == "class"
    assert all("synthetic" in c for c in ds.class_names["class"])


def test_seeded_and_parameters_recorded():
    a = make_synthetic_av(n_train=300, n_test=100, seed=5)
    b = make_synthetic_av(n_train=300, n_test=100, seed=5)
    c = make_synthetic_av(n_train=300, n_test=100, seed=6)
    np.testing.assert_array_equal(a.views["visual"], b.views["visual"])
    np.testing.assert_array_equal(a.labels["class"], b.labels["class"])
    assert not np.array_equal(a.views["visual"], c.views["visual"])
    assert a.info["generator"]["seed"] == 5 and a.info["generator"]["dims"] == [128, 1024]


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_classes"):
        make_synthetic_av(n_classes=1)
    with pytest.raises(ValueError, match="every class appears"):
        make_synthetic_av(n_train=5, n_test=100, n_classes=10)
    with pytest.raises(ValueError, match="noise"):
        make_synthetic_av(n_train=50, n_test=50, noise=-1)


def _cca_weights(cxx, cyy, cxy, k, ridge=1e-3):
    def inv_sqrt(c):
        w, v = np.linalg.eigh(c + ridge * np.trace(c) / len(c) * np.eye(len(c)))
        return v @ np.diag(w ** -0.5) @ v.T
    wx, wy = inv_sqrt(cxx), inv_sqrt(cyy)
    u, s, vt = np.linalg.svd(wx @ cxy @ wy)
    return wx @ u[:, :k], wy @ vt.T[:, :k]


def _map(q, g, labels):
    """Plain-numpy MAP (independent of crossmodal_core.metrics)."""
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    g = g / np.linalg.norm(g, axis=1, keepdims=True)
    order = np.argsort(-(q @ g.T), axis=1, kind="stable")
    rel = labels[order] == labels[:, None]
    prec = np.cumsum(rel, axis=1) / np.arange(1, rel.shape[1] + 1)
    return float(np.mean((prec * rel).sum(axis=1) / rel.sum(axis=1)))


def test_structure_class_level_cca_beats_pairwise_cca():
    """The mechanism in the module docstring, checked with a from-scratch numpy CCA: pairwise
    CCA spends components on the shared non-class latent, cluster-CCA on the classes."""
    ds = make_synthetic_av(n_train=3000, n_test=1000, dims=(32, 64), seed=1)
    tr, te = ds.split == "train", ds.split == "test"
    x, v, y = ds.views["audio"].astype(float), ds.views["visual"].astype(float), ds.labels["class"]
    mx, mv = x[tr].mean(0), v[tr].mean(0)
    xc, vc, yt = x[tr] - mx, v[tr] - mv, y[tr]
    n = len(xc)
    wx, wv = _cca_weights(xc.T @ xc / n, vc.T @ vc / n, xc.T @ vc / n, k=9)
    map_cca = _map((x[te] - mx) @ wx, (v[te] - mv) @ wv, y[te])
    counts = np.bincount(yt)
    m = float((counts ** 2).sum())
    sx = np.stack([xc[yt == c].sum(0) for c in range(10)])
    sv = np.stack([vc[yt == c].sum(0) for c in range(10)])
    wx, wv = _cca_weights((xc * counts[yt, None]).T @ xc / m, (vc * counts[yt, None]).T @ vc / m,
                          sx.T @ sv / m, k=9)
    map_ccca = _map((x[te] - mx) @ wx, (v[te] - mv) @ wv, y[te])
    chance = float(np.mean(np.bincount(y[te]) / te.sum()))
    assert chance < map_cca < map_ccca < 0.99, (chance, map_cca, map_ccca)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_structure_has_a_nonlinear_class_component():
    """Sub-modes make classes non-convex: a small MLP separates the classes of one view
    better than a linear discriminant does."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.neural_network import MLPClassifier

    ds = make_synthetic_av(n_train=1500, n_test=1000, dims=(32, 64), seed=2)
    tr, te = ds.split == "train", ds.split == "test"
    x, y = ds.views["audio"], ds.labels["class"]
    lda = LinearDiscriminantAnalysis().fit(x[tr], y[tr]).score(x[te], y[te])
    mlp = MLPClassifier((64,), max_iter=200, random_state=0).fit(x[tr], y[tr]).score(x[te], y[te])
    assert mlp > lda + 0.03, (lda, mlp)
