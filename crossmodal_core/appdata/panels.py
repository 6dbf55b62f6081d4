"""What the explorer and the retrieval page draw: 2-D panels of the shared space (stored
projections, :mod:`crossmodal_core.projection`) and one model's retrieval over the test items."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from crossmodal_core import projection as proj
from crossmodal_core.data.catalog import LoadedDataset as AppDataset, ProgressCallback
from crossmodal_core.models.trained import TrainedModel, labels_for, load_embeddings, split_indices
from crossmodal_core.appdata.models import ORIGINAL, ORIGINAL_TITLE

__all__ = ["PanelData", "panel_matrices", "panel_projection", "compute_panel_projection", "has_panel_projection",
           "RetrievalView", "retrieval_view", "query_results", "all_query_ap", "error_analysis", "worst_query_examples",
           "pr_curve",
           "segment_similarity_matrix"]


@dataclass
class PanelData:
    """What the explorer draws for one panel: 2-D points of the two modalities."""

    title: str
    method: str
    coords: list[np.ndarray]  # per modality, (n_points, 2)
    rows: np.ndarray  # dataset rows of the points
    joint: bool
    stored: bool  # False when PCA was computed on the fly because the UMAP is missing


def panel_matrices(app: AppDataset, model: TrainedModel | None, pair: tuple[str, str]) -> list[np.ndarray]:
    """Test-row matrices of the two modalities for a panel (raw features when ``model`` is None)."""
    _, test = split_indices(app.dataset)
    if model is None:
        return [app.dataset.views[v][test] for v in pair]
    emb = load_embeddings(model)
    return [emb[v][test] for v in pair]


def _panel_ids(app: AppDataset, model: TrainedModel | None, pair: tuple[str, str]) -> tuple[str, str]:
    model_id = f"{ORIGINAL}:{'-'.join(pair)}" if model is None else f"{model.id}:{'-'.join(pair)}"
    return app.key, model_id


def panel_projection(app: AppDataset, model: TrainedModel | None, pair: tuple[str, str], method: str,
                     label_name: str) -> PanelData | None:
    """The stored projection of a panel; for PCA compute it (instant) when missing; for UMAP
    return ``None`` when missing (never computed on load)."""
    ds_id, model_id = _panel_ids(app, model, pair)
    stored = proj.load_projection(ds_id, model_id, method)
    fresh = False
    if stored is None:
        if method != "pca":
            return None
        stored = proj.get_or_compute_projection(ds_id, model_id, panel_matrices(app, model, pair), "pca",
                                                labels=_test_labels(app, label_name))
        fresh = True
    _, test = split_indices(app.dataset)
    title = ORIGINAL_TITLE if model is None else model.title
    return PanelData(title, method, stored.coords, test[stored.index], stored.joint, not fresh)


def has_panel_projection(app: AppDataset, model: TrainedModel | None, pair: tuple[str, str], method: str) -> bool:
    """Whether the panel's ``method`` projection is stored (never computes, PCA included), so a
    caller that must not project silently (the ``figure`` command) can say what is missing."""
    ds_id, model_id = _panel_ids(app, model, pair)
    return proj.projection_path(ds_id, model_id, method).is_file()


def _test_labels(app: AppDataset, label_name: str) -> np.ndarray:
    labels, _ = labels_for(app.dataset, label_name)
    return labels[split_indices(app.dataset)[1]]


def compute_panel_projection(app: AppDataset, model: TrainedModel | None, pair: tuple[str, str], method: str,
                             label_name: str, progress: ProgressCallback | None = None) -> None:
    ds_id, model_id = _panel_ids(app, model, pair)
    proj.get_or_compute_projection(ds_id, model_id, panel_matrices(app, model, pair), method,
                                   labels=_test_labels(app, label_name), progress=progress)


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
