"""What the explorer and the retrieval page draw: 2-D panels of the shared space (stored
projections, :mod:`crossmodal_core.projection`) and one model's retrieval over the test items.

**Panels at 10^5-10^6 points.** A panel maps every test item (:data:`PANEL_PARAMS`: the map
is fitted on a sample and the rest placed with ``transform``, see
:func:`crossmodal_core.projection.plan_projection`). What the browser is sent depends on the
size (:func:`plan_drawing`), because plotly draws 10^5 SVG points in 7 s and even WebGL needs
9 s and 13.6 MB of JSON for 10^6:

- up to :data:`SVG_MAX_POINTS` points: SVG markers (``go.Scatter``: vector export for posters);
- up to :data:`DRAW_MAX_ITEMS` items: every point, drawn with WebGL (``go.Scattergl``);
- above: a seeded uniform sample of :data:`DRAW_MAX_ITEMS` items in WebGL over a density
  image of *all* points (:func:`density_grid`, a numpy 2-D histogram), and a notice saying so
  (:func:`drawing_notice`).

A box or lasso selection is then mapped back to every item in the region
(:func:`region_positions`, :func:`selection_rows`), not only to the drawn sample, and the
other panels highlight those items (:func:`highlight_positions`, a stated sample when more
than :data:`HIGHLIGHT_MAX` are selected).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from crossmodal_core import projection as proj
from crossmodal_core.data.catalog import LoadedDataset as AppDataset, ProgressCallback
from crossmodal_core.models.trained import TrainedModel, labels_for, load_embeddings, modality_inputs, split_indices
from crossmodal_core.appdata.models import ORIGINAL, ORIGINAL_TITLE

__all__ = ["PanelData", "original_view", "panel_matrices", "panel_projection", "compute_panel_projection",
           "has_panel_projection",
           "PANEL_PARAMS", "PCA_ON_LOAD_MAX", "SVG_MAX_POINTS", "DRAW_MAX_ITEMS", "HIGHLIGHT_MAX", "DENSITY_BINS",
           "Density", "PanelDrawing", "draw_sample", "density_grid", "plan_drawing", "drawing_notice",
           "region_positions", "selection_rows", "highlight_positions", "RetrievalView", "retrieval_view",
           "query_results", "all_query_ap", "error_analysis", "worst_query_examples", "pr_curve",
           "segment_similarity_matrix"]

#: projection parameters of the explorer's panels: every test item mapped (see the module doc)
PANEL_PARAMS = proj.SCALE_PARAMS
#: a missing PCA is computed on load only up to this many test items (about a second);
#: above, the page offers the button as for UMAP (a page never projects for long on load)
PCA_ON_LOAD_MAX = 50_000
#: points (all modalities) drawn as SVG; above, WebGL
SVG_MAX_POINTS = 4_000
#: items drawn in a panel; above, a seeded uniform sample over a density image of all points
#: (3 panels x 2 modalities x 10,000 = 60,000 WebGL points on the page)
DRAW_MAX_ITEMS = 10_000
#: selected items outlined per panel; above, a seeded sample of them (stated)
HIGHLIGHT_MAX = 2_000
#: bins per axis of the density image
DENSITY_BINS = 160


@dataclass
class PanelData:
    """What the explorer draws for one panel: 2-D points of the two modalities."""

    title: str
    method: str
    coords: list[np.ndarray]  # per modality, (n_points, 2)
    rows: np.ndarray  # dataset rows of the points
    joint: bool
    stored: bool  # False when PCA was computed on the fly because the UMAP is missing
    description: str = ""  # how the map was made (projection.describe_projection), for the screen


def original_view(app: AppDataset, modality: str) -> str:
    """The view the "original features" panel maps for ``modality``: the modality's flat
    feature (for ``score_image`` its image feature, e.g. HOG: a raster has 32k pixels, too
    many dimensions for a map of every item); the modality itself when it has none."""
    return modality_inputs(app.dataset, modality).get("flat", modality)


def panel_matrices(app: AppDataset, model: TrainedModel | None, pair: tuple[str, str]) -> list[np.ndarray]:
    """Test-row matrices ``(n_test, d)`` of the two modalities for a panel (the original
    features, :func:`original_view`, when ``model`` is None)."""
    _, test = split_indices(app.dataset)
    if model is None:
        out = []
        for v in pair:
            x = app.dataset.views[original_view(app, v)][test]
            out.append(np.asarray(x, dtype=np.float32).reshape(len(test), -1) if np.ndim(x) > 2 else x)
        return out
    emb = load_embeddings(model)
    return [emb[v][test] for v in pair]


def _panel_ids(app: AppDataset, model: TrainedModel | None, pair: tuple[str, str]) -> tuple[str, str]:
    model_id = f"{ORIGINAL}:{'-'.join(pair)}" if model is None else f"{model.id}:{'-'.join(pair)}"
    return app.key, model_id


def panel_projection(app: AppDataset, model: TrainedModel | None, pair: tuple[str, str], method: str,
                     label_name: str) -> PanelData | None:
    """The stored projection of a panel; for PCA compute it (about a second) when missing and
    the test set has at most :data:`PCA_ON_LOAD_MAX` items; else ``None`` when missing (never
    computed on load: the page offers a button). ``method`` of the result is the method that
    made the map (a UMAP request above ``umap_max_points`` is answered with PCA, said in
    ``description``)."""
    ds_id, model_id = _panel_ids(app, model, pair)
    stored = proj.load_projection(ds_id, model_id, method, PANEL_PARAMS.get(method))
    fresh = False
    _, test = split_indices(app.dataset)
    if stored is None:
        if method != "pca" or len(test) > PCA_ON_LOAD_MAX:
            return None
        stored = proj.get_or_compute_projection(ds_id, model_id, panel_matrices(app, model, pair), "pca",
                                                labels=_test_labels(app, label_name),
                                                params=PANEL_PARAMS.get("pca"))
        fresh = True
    title = ORIGINAL_TITLE if model is None else model.title
    description = proj.describe_projection(stored)
    if model is None:
        stand_ins = [f"{v} by its features {original_view(app, v)!r}" for v in pair if original_view(app, v) != v]
        if stand_ins:
            description += "; " + ", ".join(stand_ins)
    return PanelData(title, stored.method, stored.coords, test[stored.index], stored.joint, not fresh, description)


def has_panel_projection(app: AppDataset, model: TrainedModel | None, pair: tuple[str, str], method: str) -> bool:
    """Whether the panel's ``method`` projection is stored (never computes, PCA included), so a
    caller that must not project silently (the ``figure`` command) can say what is missing."""
    ds_id, model_id = _panel_ids(app, model, pair)
    return proj.projection_path(ds_id, model_id, method, PANEL_PARAMS.get(method)).is_file()


def _test_labels(app: AppDataset, label_name: str) -> np.ndarray:
    labels, _ = labels_for(app.dataset, label_name)
    return labels[split_indices(app.dataset)[1]]


def compute_panel_projection(app: AppDataset, model: TrainedModel | None, pair: tuple[str, str], method: str,
                             label_name: str, progress: ProgressCallback | None = None) -> None:
    ds_id, model_id = _panel_ids(app, model, pair)
    proj.get_or_compute_projection(ds_id, model_id, panel_matrices(app, model, pair), method,
                                   labels=_test_labels(app, label_name), params=PANEL_PARAMS.get(method),
                                   progress=progress)


# ====================================================================== drawing at scale
@dataclass
class Density:
    """Counts of all points of a panel on a regular grid, laid out for ``go.Heatmap``.

    counts : ``(n_bins, n_bins)`` int64, ``counts[j, i]`` = points with x in bin i, y in bin j
    x_edges, y_edges : ``(n_bins + 1,)`` bin edges (the data coordinates of the panel)
    """

    counts: np.ndarray
    x_edges: np.ndarray
    y_edges: np.ndarray

    @property
    def x_centres(self) -> np.ndarray:
        return (self.x_edges[:-1] + self.x_edges[1:]) / 2

    @property
    def y_centres(self) -> np.ndarray:
        return (self.y_edges[:-1] + self.y_edges[1:]) / 2


@dataclass
class PanelDrawing:
    """What one panel sends to the browser (:func:`plan_drawing`).

    positions : ``(n_drawn,)`` sorted positions into ``PanelData.rows`` / ``coords`` of the drawn items
    n_items : items in the panel (each has one point per modality)
    renderer : ``"svg"`` or ``"webgl"``
    sampled : whether ``positions`` is a sample (then ``density`` holds all points)
    seed : seed of the sample
    density : :class:`Density` of every point, or ``None`` when every point is drawn
    """

    positions: np.ndarray
    n_items: int
    renderer: str
    sampled: bool
    seed: int
    density: Density | None = None


def draw_sample(n_items: int, max_items: int, seed: int = 0) -> np.ndarray:
    """Sorted positions of ``min(n_items, max_items)`` items drawn uniformly without
    replacement (all of them, in order, when they fit); the same for the same seed."""
    if n_items < 0 or max_items < 0:
        raise ValueError(f"n_items ({n_items}) and max_items ({max_items}) must be >= 0")
    if n_items <= max_items:
        return np.arange(n_items)
    return np.sort(np.random.default_rng(seed).choice(n_items, size=max_items, replace=False))


def density_grid(coords: Sequence[np.ndarray], bins: int = DENSITY_BINS) -> Density:
    """2-D histogram of every point of every modality (``coords``: ``(n, 2)`` arrays) over
    their common bounding box, ``bins`` per axis (``numpy.histogram2d``, edges inclusive)."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    pts = np.concatenate([np.asarray(c, dtype=np.float64).reshape(-1, 2) for c in coords])
    if len(pts) == 0:
        edges = np.linspace(0.0, 1.0, bins + 1)
        return Density(np.zeros((bins, bins), dtype=np.int64), edges, edges.copy())
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    hi = np.where(hi > lo, hi, lo + 1.0)  # a degenerate axis still gets a width
    counts, xe, ye = np.histogram2d(pts[:, 0], pts[:, 1], bins=bins, range=[[lo[0], hi[0]], [lo[1], hi[1]]])
    return Density(counts.T.astype(np.int64), xe, ye)


def plan_drawing(panel: PanelData, max_items: int | None = None, svg_max_points: int | None = None,
                 seed: int = 0, bins: int | None = None) -> PanelDrawing:
    """Which items a panel draws and how (see the module doc): all of them (SVG or WebGL by
    point count), or a seeded uniform sample of ``max_items`` over the density of all.
    ``None`` arguments read :data:`DRAW_MAX_ITEMS`, :data:`SVG_MAX_POINTS`, :data:`DENSITY_BINS`."""
    max_items = DRAW_MAX_ITEMS if max_items is None else max_items
    svg_max_points = SVG_MAX_POINTS if svg_max_points is None else svg_max_points
    bins = DENSITY_BINS if bins is None else bins
    n = len(panel.rows)
    points = n * len(panel.coords)
    positions = draw_sample(n, max_items, seed)
    sampled = len(positions) < n
    renderer = "svg" if points <= svg_max_points else "webgl"
    return PanelDrawing(positions, n, renderer, sampled, seed,
                        density_grid(panel.coords, bins) if sampled else None)


def drawing_notice(drawing: PanelDrawing, n_modalities: int = 2) -> str:
    """What the panel shows, for the screen, e.g. "Showing 20,000 of 1,000,000 items (...)"."""
    points = f"{drawing.n_items:,} items ({drawing.n_items * n_modalities:,} points)"
    how = "WebGL" if drawing.renderer == "webgl" else "SVG"
    if not drawing.sampled:
        return f"All {points} drawn ({how})."
    return (f"Showing {len(drawing.positions):,} of {points}, sampled uniformly (seed {drawing.seed}), "
            f"over the density of all of them ({how}); a box or lasso selects every item in the region, "
            "not only the drawn ones.")


def _in_polygon(xy: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Points of ``xy`` ``(n, 2)`` inside the closed polygon (px, py) (matplotlib's test)."""
    from matplotlib.path import Path

    if len(px) < 3:
        return np.zeros(len(xy), dtype=bool)
    return Path(np.column_stack([px, py]), closed=False).contains_points(xy)


def region_positions(coords: Sequence[np.ndarray], boxes: Sequence[Mapping[str, Any]] = (),
                     lassos: Sequence[Mapping[str, Any]] = ()) -> np.ndarray:
    """Sorted positions of the items with a point (of any modality) inside any region.

    ``coords``: per modality ``(n, 2)``; ``boxes``: ``{"x": [x0, x1], "y": [y0, y1]}`` (edges
    included, any order); ``lassos``: ``{"x": [...], "y": [...]}`` polygon vertices, in data
    coordinates, as Streamlit reports plotly's box and lasso selections.
    """
    n = len(coords[0]) if coords else 0
    inside = np.zeros(n, dtype=bool)
    for xy in coords:
        xy = np.asarray(xy, dtype=np.float64)
        for box in boxes:
            bx, by = np.asarray(box.get("x", []), float), np.asarray(box.get("y", []), float)
            if len(bx) < 2 or len(by) < 2:
                continue
            inside |= ((xy[:, 0] >= bx.min()) & (xy[:, 0] <= bx.max())
                       & (xy[:, 1] >= by.min()) & (xy[:, 1] <= by.max()))
        for lasso in lassos:
            px, py = np.asarray(lasso.get("x", []), float), np.asarray(lasso.get("y", []), float)
            if len(px) != len(py):
                continue
            inside |= _in_polygon(xy, px, py)
    return np.nonzero(inside)[0]


def selection_rows(panel: PanelData, state: Mapping[str, Any] | None) -> np.ndarray:
    """Dataset rows a plotly selection event of this panel selects (sorted, unique).

    Boxes and lassos count every item of the panel in the region (:func:`region_positions`),
    drawn or not; clicked points count through their ``customdata`` (the dataset row).
    """
    sel = (state or {}).get("selection", {}) or {}
    rows = [panel.rows[region_positions(panel.coords, sel.get("box") or [], sel.get("lasso") or [])]]
    clicked = []
    for point in sel.get("points") or []:
        data = point.get("customdata")
        if isinstance(data, list):
            data = data[0] if data else None
        if data is not None:
            clicked.append(int(data))
    rows.append(np.asarray(clicked, dtype=np.int64))
    return np.unique(np.concatenate(rows).astype(np.int64))


def highlight_positions(panel: PanelData, selected_rows: np.ndarray | Sequence[int], max_items: int | None = None,
                        seed: int = 0) -> tuple[np.ndarray, int]:
    """``(positions to outline, number of selected items in the panel)``: the panel's items
    whose dataset row is selected, a seeded uniform sample of ``max_items`` (default
    :data:`HIGHLIGHT_MAX`) of them when more."""
    max_items = HIGHLIGHT_MAX if max_items is None else max_items
    found = np.nonzero(np.isin(panel.rows, np.asarray(selected_rows, dtype=np.int64)))[0]
    if len(found) <= max_items:
        return found, len(found)
    return found[draw_sample(len(found), max_items, seed)], len(found)


# ====================================================================== retrieval
@dataclass
class RetrievalView:
    """Test-set embeddings of one model for one direction (queries -> gallery).

    The similarities are computed once, on first use, by one
    :class:`~crossmodal_core.retrieval.ScoredDirection` that answers the query reports, the
    APs, the confusion matrix and the PR curve; pages keep one view per (model, direction,
    label) with ``st.cache_resource`` so every widget change reuses it.
    """

    model: TrainedModel
    query_view: str
    gallery_view: str
    rows: np.ndarray  # dataset rows of the test items (queries and gallery share them)
    queries: np.ndarray
    gallery: np.ndarray
    labels: np.ndarray  # relevance labels of the test items
    _scored: Any = field(default=None, init=False, repr=False, compare=False)

    @property
    def scored(self):
        if self._scored is None:
            from crossmodal_core.retrieval import ScoredDirection

            self._scored = ScoredDirection(self.queries, self.gallery, self.labels, self.labels, pr_points=11,
                                           paired=True)
        return self._scored


def retrieval_view(app: AppDataset, model: TrainedModel, query_view: str, gallery_view: str,
                   label_name: str) -> RetrievalView:
    _, test = split_indices(app.dataset)
    emb = load_embeddings(model)
    labels, _ = labels_for(app.dataset, label_name)
    return RetrievalView(model, query_view, gallery_view, test, emb[query_view][test], emb[gallery_view][test],
                         labels[test])


def query_results(rv: RetrievalView, query_pos: int, k: int = 10) -> dict[str, Any]:
    """Top-``k`` of one query (position in the test rows): gallery rows, scores, relevance,
    the query's AP and the rank of its true pair."""
    rep = rv.scored.query_report(int(query_pos), k=min(k, len(rv.gallery)))
    idx = np.asarray(rep.indices)
    return {
        "positions": idx,
        "rows": rv.rows[idx],
        "scores": np.asarray(rep.scores),
        "relevant": np.asarray(rep.relevant),
        "is_pair": idx == query_pos,
        "ap": float(rep.ap),
        "pair_rank": int(rep.pair_rank),
        "n_relevant": int(rep.n_relevant),
    }


def all_query_ap(rv: RetrievalView) -> np.ndarray:
    return np.asarray(rv.scored.average_precision())


def error_analysis(rv: RetrievalView, class_names: list[str], n_worst: int = 10) -> dict[str, Any]:
    """Worst queries by AP, per-class AP and the top-1 class confusion matrix (classes
    present among the test items only)."""
    from crossmodal_core import metrics

    ap = all_query_ap(rv)
    per_class = metrics.per_class_average_precision(ap, rv.labels)
    return {
        "ap": ap, "map": float(np.nanmean(ap)), "worst": rv.scored.worst_queries(n_worst),
        "per_class": {class_names[int(c)]: float(v) for c, v in per_class.items()},
        "confusion": np.asarray(rv.scored.top1_confusion()),
        "confusion_classes": [class_names[int(c)] for c in rv.scored.classes],
    }


def worst_query_examples(rv: RetrievalView, worst: Sequence[int], texts: Sequence[str], class_names: Sequence[str],
                         n_wrong: int = 3, depth: int = 100) -> list[dict[str, Any]]:
    """The worst queries with their top-ranked wrong results, from the view's one scoring.

    Parameters
    ----------
    worst : positions (in the test rows) of the queries, worst first (``error_analysis()["worst"]``)
    texts : description of every test position (:func:`crossmodal_core.appdata.item_text`)
    class_names : name of every relevance label code
    n_wrong : wrong results kept per query, the highest-ranked first
    depth : how far down each ranking to look for them

    Returns
    -------
    one dict per query: ``position``, ``row`` (dataset row), ``text``, ``class``, ``ap``
    (fraction) and ``wrong``: dicts with ``position``, ``row``, ``rank`` (1-based), ``text``,
    ``class`` and ``score``.
    """
    if n_wrong < 1 or depth < 1:
        raise ValueError(f"n_wrong and depth must be >= 1, got {n_wrong} and {depth}")
    out = []
    for pos in worst:
        pos = int(pos)
        rep = rv.scored.query_report(pos, k=min(depth, len(rv.gallery)))
        wrong = [{"position": int(i), "row": int(rv.rows[i]), "rank": rank, "text": texts[int(i)],
                  "class": class_names[int(rv.labels[i])], "score": float(score)}
                 for rank, (i, score, rel) in enumerate(zip(rep.indices, rep.scores, rep.relevant), start=1)
                 if not rel][:n_wrong]
        out.append({"position": pos, "row": int(rv.rows[pos]), "text": texts[pos],
                    "class": class_names[int(rv.labels[pos])], "ap": float(rep.ap), "wrong": wrong})
    return out


def pr_curve(rv: RetrievalView, n_points: int = 11) -> tuple[np.ndarray, np.ndarray]:
    r, p = rv.scored.precision_recall_curve(n_points)
    return np.asarray(r), np.asarray(p)


def segment_similarity_matrix(app: AppDataset, model: TrainedModel, rows: Sequence[int],
                              view_a: str, view_b: str) -> np.ndarray:
    """Cosine similarity ``(len(rows), len(rows))`` between the ``view_a`` embeddings of the
    segments ``rows`` (e.g. the phrases of one song) and their ``view_b`` embeddings; the
    diagonal holds the true pairs."""
    from crossmodal_core.alignment import segment_similarity

    emb = load_embeddings(model)
    rows = np.asarray(rows, dtype=int)
    return np.asarray(segment_similarity(emb[view_a][rows], emb[view_b][rows]))
