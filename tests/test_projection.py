"""Projections: PCA against scikit-learn, joint vs separate layouts, stratified subsampling,
on-disk storage keyed by (dataset, model, method, params), and UMAP (slow)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA

from crossmodal_core import projection as proj


def two_views(rng, n=200, d=(6, 6)):
    labels = np.repeat(np.arange(4), n // 4)
    a = rng.normal(size=(n, d[0])) + labels[:, None]
    b = rng.normal(size=(n, d[1])) - labels[:, None]
    return a.astype(np.float32), b.astype(np.float32), labels


def test_joint_pca_matches_sklearn_on_the_stacked_normalised_rows(rng):
    a, b, _ = two_views(rng)
    p = proj.compute_projection([a, b], "pca", params={"max_points": None})
    assert p.joint and [c.shape for c in p.coords] == [(200, 2), (200, 2)]
    stacked = np.concatenate([a / np.linalg.norm(a, axis=1, keepdims=True),
                              b / np.linalg.norm(b, axis=1, keepdims=True)])
    ref = PCA(n_components=2, random_state=0).fit_transform(stacked)
    got = np.concatenate(p.coords)
    for k in range(2):  # PCA axes are defined up to sign
        sign = np.sign(np.dot(ref[:, k], got[:, k]))
        np.testing.assert_allclose(got[:, k], sign * ref[:, k], atol=1e-4)


def test_different_widths_are_mapped_separately_side_by_side(rng):
    a, b, _ = two_views(rng, d=(5, 9))
    p = proj.compute_projection([a, b], "pca")
    assert not p.joint
    for c in p.coords:  # each map standardised
        np.testing.assert_allclose(c.std(axis=0), 1.0, atol=1e-4)
    assert p.coords[1][:, 0].mean() - p.coords[0][:, 0].mean() == pytest.approx(5.0, abs=1e-4)
    with pytest.raises(ValueError, match="equal width"):
        proj.compute_projection([a, b], "pca", joint=True)


def test_subsample_keeps_every_class_and_its_share(rng):
    labels = np.array([0] * 900 + [1] * 90 + [2] * 10)
    idx = proj.subsample_index(1000, 100, labels, random_state=0)
    counts = np.bincount(labels[idx], minlength=3)
    assert counts.tolist() == [90, 9, 1]
    assert np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(idx, proj.subsample_index(1000, 100, labels, random_state=0))
    assert len(proj.subsample_index(50, 100)) == 50


def test_bad_input_names_the_problem(rng):
    a, b, _ = two_views(rng)
    with pytest.raises(ValueError, match="rows"):
        proj.compute_projection([a, b[:10]], "pca")
    bad = a.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        proj.compute_projection([bad], "pca")
    with pytest.raises(ValueError, match="unknown projection method"):
        proj.compute_projection([a], "tsne")


def test_stored_once_then_loaded_never_recomputed(rng, monkeypatch):
    a, b, labels = two_views(rng)
    assert proj.load_projection("ds-test", "model-x", "pca") is None
    messages = []
    first = proj.get_or_compute_projection("ds-test", "model-x", [a, b], "pca", labels=labels,
                                           progress=lambda f, m: messages.append((f, m)))
    assert messages and messages[-1][0] == 1.0
    loaded = proj.load_projection("ds-test", "model-x", "pca")
    assert loaded is not None and loaded.method == "pca"
    for x, y in zip(first.coords, loaded.coords):
        np.testing.assert_array_equal(x, y)

    def boom(*args, **kwargs):
        raise AssertionError("recomputed a stored projection")

    monkeypatch.setattr(proj, "compute_projection", boom)
    again = proj.get_or_compute_projection("ds-test", "model-x", [a, b], "pca")
    np.testing.assert_array_equal(again.index, first.index)
    # another model or other parameters are another file
    assert proj.load_projection("ds-test", "model-y", "pca") is None
    assert proj.load_projection("ds-test", "model-x", "pca", {"max_points": 10}) is None


def test_corrupt_file_is_reported_and_recomputed(rng):
    a, b, _ = two_views(rng)
    path = proj.projection_path("ds-corrupt", "m", "pca")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a stored projection"):
        proj.load_projection("ds-corrupt", "m", "pca")
    p = proj.get_or_compute_projection("ds-corrupt", "m", [a, b], "pca")
    assert proj.load_projection("ds-corrupt", "m", "pca").coords[0].shape == p.coords[0].shape


@pytest.mark.slow
def test_umap_keeps_separated_classes_apart(rng):
    labels = np.repeat(np.arange(4), 100)
    centres = rng.normal(size=(4, 8)) * 4.0
    a = (centres[labels] + rng.normal(size=(400, 8))).astype(np.float32)
    b = (centres[labels] + rng.normal(size=(400, 8))).astype(np.float32)
    p = proj.compute_projection([a, b], "umap", labels=labels, params={"n_neighbors": 10, "metric": "euclidean"})
    assert p.joint and p.coords[0].shape == (400, 2)
    xy = np.concatenate(p.coords)
    lab = np.concatenate([labels[p.index]] * 2)
    # 5-nearest-neighbour class agreement in the 2-D map (scikit-learn as the judge)
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    assert cross_val_score(KNeighborsClassifier(5), xy, lab, cv=4).mean() > 0.95


@pytest.mark.parametrize("name", ["../../x", "/abs/path", "a\x00b", "é" * 5000])
def test_projection_path_of_any_name_stays_in_the_projections_dir(name):
    from crossmodal_core import store

    path = proj.projection_path(name, name, "pca")
    assert path.parent == store.projections_dir() and path.suffix == ".npz"
    assert all(c in "0123456789abcdef" for c in path.stem)
