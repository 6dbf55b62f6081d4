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


# ---------------------------------------------------------------- at scale: fit on a sample, transform the rest
class RowsRead:
    """A lazy matrix (h5py / zarr-like): records how many rows each read asks for."""

    def __init__(self, data: np.ndarray):
        self.data, self.shape, self.reads = data, data.shape, []

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, rows):
        self.reads.append(len(rows))
        return self.data[rows]


def test_pca_fitted_on_a_sample_places_the_rest_on_its_axes_exactly(rng, monkeypatch):
    monkeypatch.setattr(proj, "TRANSFORM_BLOCK", 700)  # several transform blocks
    a, b, labels = two_views(rng, n=4000)
    lazy = [RowsRead(a), RowsRead(b)]
    p = proj.compute_projection(lazy, "pca", labels=labels, params={"max_points": None, "fit_points": 1000})
    assert p.plan == {"requested": "pca", "method": "pca", "n_points": 8000, "fit_points": 1000,
                      "transformed": 7000, "reason": None}
    # the fit sample: 500 items (both modalities of each), class-stratified and seeded
    np.testing.assert_array_equal(p.fit_index, proj.subsample_index(4000, 500, labels, 0))
    norm = [x / np.linalg.norm(x, axis=1, keepdims=True) for x in (a, b)]
    ref = PCA(n_components=2, random_state=0).fit(np.concatenate([x[p.fit_index] for x in norm]))
    for got, x in zip(p.coords, norm):  # every row, fitted or placed, on the sample's axes
        np.testing.assert_allclose(got, ref.transform(x), atol=1e-5)
    # memory bounded by the blocks: no read of every row at once
    assert max(max(m.reads) for m in lazy) == 700 and sum(lazy[0].reads) == 4000
    assert proj.describe_projection(p) == ("PCA fitted on 1,000 of 8,000 points (a seeded class-stratified "
                                           "sample), the other 7,000 placed with PCA.transform")


def test_separate_maps_at_scale_are_standardised_over_every_row(rng):
    a, b, labels = two_views(rng, n=3000, d=(5, 9))
    p = proj.compute_projection([a, b], "pca", labels=labels, params={"max_points": None, "fit_points": 600})
    assert not p.joint and p.plan["fit_points"] == 600
    for i, c in enumerate(p.coords):
        np.testing.assert_allclose(c.mean(axis=0), [5.0 * i, 0.0], atol=1e-4)
        np.testing.assert_allclose(c.std(axis=0), 1.0, atol=1e-4)


def test_umap_above_its_limit_gives_way_to_pca_and_says_why(rng, monkeypatch):
    import sys

    a, b, labels = two_views(rng, n=400)
    params = {**proj.SCALE_PARAMS["umap"], "umap_max_points": 500}
    monkeypatch.delitem(sys.modules, "umap", raising=False)
    p = proj.compute_projection([a, b], "umap", labels=labels, params=params)
    assert "umap" not in sys.modules, "UMAP must not even be imported when PCA is used"
    assert p.method == "pca" and p.plan["requested"] == "umap" and p.plan["n_points"] == 800
    text = proj.describe_projection(p)
    assert text.startswith("PCA of all 800 points; 800 points are above the UMAP limit of 500")
    plan = proj.plan_projection(2_000_000, "umap", proj.SCALE_PARAMS["umap"])
    assert plan["method"] == "pca" and plan["fit_points"] == proj.SCALE_PARAMS["pca"]["fit_points"]
    assert proj.plan_projection(30_000, "umap", proj.SCALE_PARAMS["umap"])["transformed"] == 10_000


def test_plan_and_fit_sample_survive_the_store(rng):
    a, b, labels = two_views(rng, n=2000)
    params = {"max_points": None, "fit_points": 800}
    first = proj.get_or_compute_projection("ds-scale", "m", [a, b], "pca", labels=labels, params=params)
    loaded = proj.load_projection("ds-scale", "m", "pca", params)
    assert loaded.plan == first.plan and loaded.plan["transformed"] == 3200
    np.testing.assert_array_equal(loaded.fit_index, first.fit_index)
    assert proj.describe_projection(loaded) == proj.describe_projection(first)


@pytest.mark.slow
def test_umap_sample_plus_transform_equals_a_direct_fit_and_transform(rng, monkeypatch):
    """The fitted rows are UMAP's own embedding of the sample; every other row is exactly what
    ``UMAP.transform`` of that fitted map gives for it (same blocks)."""
    import umap

    monkeypatch.setattr(proj, "TRANSFORM_BLOCK", 250)
    labels = np.repeat(np.arange(4), 150)
    centres = rng.normal(size=(4, 8)) * 4.0
    a = (centres[labels] + rng.normal(size=(600, 8))).astype(np.float32)
    b = (centres[labels] + rng.normal(size=(600, 8))).astype(np.float32)
    params = {"max_points": None, "fit_points": 400, "n_neighbors": 10, "metric": "euclidean"}
    p = proj.compute_projection([a, b], "umap", labels=labels, params=params)
    assert p.method == "umap" and p.plan["fit_points"] == 400 and p.plan["transformed"] == 800
    fit = p.fit_index
    ref = umap.UMAP(n_components=2, n_neighbors=10, min_dist=0.1, metric="euclidean", random_state=0,
                    n_jobs=1).fit(np.concatenate([a[fit], b[fit]]))
    np.testing.assert_array_equal(np.concatenate([p.coords[0][fit], p.coords[1][fit]]), ref.embedding_)
    rest = np.setdiff1d(np.arange(600), fit)
    for x, got in ((a, p.coords[0]), (b, p.coords[1])):
        for s in range(0, len(rest), 250):
            block = rest[s:s + 250]
            np.testing.assert_allclose(got[block], ref.transform(x[block]), atol=1e-6)
    # placed points land among their own class (5-NN in the map, fitted points as the reference)
    from sklearn.neighbors import KNeighborsClassifier

    knn = KNeighborsClassifier(5).fit(np.concatenate([p.coords[0][fit], p.coords[1][fit]]),
                                      np.concatenate([labels[fit]] * 2))
    assert knn.score(p.coords[0][rest], labels[rest]) > 0.95
