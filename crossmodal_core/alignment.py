"""Instance-level alignment of sheet music, lyrics and audio: evaluation and the data the
alignment page shows.

Conventions
-----------
- Views are named ``"sheet"``, ``"lyrics"``, ``"audio"``; row ``i`` of every view is the same
  fragment, so the only relevant gallery item of query ``i`` is gallery item ``i``.
- A *direction* ``"q->g"`` ranks the whole gallery of modality ``g`` for every query of
  modality ``q``; the six directions are :data:`DIRECTIONS`.
- Ranks are 1-based (:func:`crossmodal_core.metrics.pair_ranks`, cosine similarity by default,
  ties broken by gallery index). Reported per direction, by
  :func:`crossmodal_core.metrics.rank_summary` (the package's one spelling of the paired
  metrics, :data:`METRIC_NAMES`): ``R@1``, ``R@5``, ``R@10`` (fraction of queries whose pair is
  within the top K), ``MRR`` (mean of 1/rank; equals the instance-level MAP since each query
  has one relevant item), ``median_rank`` and ``n`` (number of queries). ``"mean"`` averages
  each metric over the six directions.
- The *CCA-on-pairs* baseline (:class:`PairCCA`) fits one linear CCA per pair of views
  (sheet-lyrics, sheet-audio, lyrics-audio) on standardised training rows and evaluates each
  pair's two directions in that pair's own CCA space (so, unlike UGAAR, it has three
  different shared spaces).
- Every fitted statistic (standardisation, CCA, networks) comes from the training rows only.
- Cross-validation is :func:`crossmodal_core.evaluate.evaluate_paired` (the one paired
  engine); :func:`run_alignment_evaluation` runs it for UGAAR and CCA-on-pairs and writes the
  alignment report (``assets/results/<dataset>_alignment*.json``): per method ``per_fold``
  (one :func:`evaluate_alignment`-style dict per fold), and ``mean`` / ``std`` over folds by
  :func:`crossmodal_core.report.summarise` (mean and **sample** std, ``ddof=1``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from crossmodal_core import metrics
from crossmodal_core.models.base import CrossModalEstimator
from crossmodal_core.report import format_alignment_table, summarise

__all__ = [
    "VIEW_NAMES",
    "DIRECTIONS",
    "METRIC_NAMES",
    "direction_ranks",
    "evaluate_alignment",
    "PairCCA",
    "evaluate_cca_on_pairs",
    "alignment_report",
    "format_alignment_table",
    "alignment_results_path",
    "run_alignment_evaluation",
    "duplicate_ceiling",
    "segment_similarity",
    "work_segments",
]

VIEW_NAMES: tuple[str, str, str] = ("sheet", "lyrics", "audio")
DIRECTIONS: tuple[tuple[str, str], ...] = (
    ("sheet", "lyrics"), ("lyrics", "sheet"),
    ("sheet", "audio"), ("audio", "sheet"),
    ("lyrics", "audio"), ("audio", "lyrics"),
)
RECALL_KS: tuple[int, ...] = metrics.RECALL_KS
METRIC_NAMES: tuple[str, ...] = metrics.PAIRED_METRICS


def _direction_key(q: str, g: str) -> str:
    return f"{q}->{g}"


def _check_embeddings(embeddings: Mapping[str, np.ndarray], names: Sequence[str] = VIEW_NAMES,
                      what: str = "embeddings") -> dict[str, np.ndarray]:
    if not isinstance(embeddings, Mapping):
        raise ValueError(f"{what} must be a dict mapping view name -> (n, k) array, got {type(embeddings).__name__}")
    missing = [n for n in names if n not in embeddings]
    if missing:
        raise ValueError(f"{what} lack view(s) {missing}; got {sorted(embeddings)}")
    out = {}
    for name in names:
        a = np.asarray(embeddings[name])
        if a.ndim != 2:
            raise ValueError(f"{what}[{name!r}] must be 2-D (n, k), got shape {a.shape}")
        if not np.issubdtype(a.dtype, np.number) or not np.isfinite(a).all():
            raise ValueError(f"{what}[{name!r}] contains NaN, inf or non-numbers")
        out[name] = a
    n = out[names[0]].shape[0]
    for name, a in out.items():
        if a.shape[0] != n:
            raise ValueError(f"{what}[{name!r}] has {a.shape[0]} rows but {what}[{names[0]!r}] has {n}: "
                             "rows must be paired")
    if n < 1:
        raise ValueError(f"{what} have no rows")
    return out


def _mean_summary(per_direction: Sequence[dict[str, float]]) -> dict[str, float]:
    out = {m: float(np.mean([d[m] for d in per_direction])) for m in METRIC_NAMES}
    out["n"] = int(per_direction[0]["n"])
    return out


def direction_ranks(embeddings: Mapping[str, np.ndarray], metric: str = "cosine",
                    directions: Sequence[tuple[str, str]] = DIRECTIONS) -> dict[str, np.ndarray]:
    """1-based rank of the paired item for every query, per direction.

    Parameters
    ----------
    embeddings : dict view name -> (n, k) array in one shared space (rows paired)
    metric : "cosine" or "euclidean"
    directions : (query view, gallery view) pairs

    Returns
    -------
    dict ``"q->g"`` -> (n,) int64 ranks
    """
    names = list(dict.fromkeys(v for d in directions for v in d))
    emb = _check_embeddings(embeddings, names)
    dims = {a.shape[1] for a in emb.values()}
    if len(dims) != 1:
        raise ValueError(f"embeddings must share one space (same width), got widths "
                         f"{ {n: a.shape[1] for n, a in emb.items()} }")
    return {_direction_key(q, g): metrics.pair_ranks(emb[q], emb[g], metric=metric) for q, g in directions}


def evaluate_alignment(embeddings: Mapping[str, np.ndarray], metric: str = "cosine") -> dict[str, dict[str, float]]:
    """Recall@1/5/10, MRR and median rank for the six sheet/lyrics/audio directions.

    Parameters
    ----------
    embeddings : dict with keys ``"sheet"``, ``"lyrics"``, ``"audio"`` -> (n, k) arrays in one
        shared space, rows paired (row ``i`` of each is fragment ``i``)
    metric : "cosine" (default) or "euclidean"

    Returns
    -------
    dict ``"sheet->lyrics"``, ... (:data:`DIRECTIONS`) and ``"mean"`` -> dict with ``R@1``,
    ``R@5``, ``R@10``, ``MRR``, ``median_rank``, ``n``.
    """
    ranks = direction_ranks(embeddings, metric=metric)
    out = {key: metrics.rank_summary(r) for key, r in ranks.items()}
    out["mean"] = _mean_summary([out[_direction_key(q, g)] for q, g in DIRECTIONS])
    return out


# ----------------------------------------------------------------------------- baseline
class PairCCA(CrossModalEstimator):
    """The CCA-on-pairs baseline for one pair of views: z-score each view with its training
    statistics (:func:`crossmodal_core.models.preprocessing.standardise`: ``ddof=0``, constant
    features scale 1; in float64), then ridge CCA with ``min(n_components, d_1, d_2)``
    components. :func:`~crossmodal_core.evaluate.evaluate_paired` fits one per pair of views.
    """

    n_views = 2

    def __init__(self, n_components: int = 10, reg: float = 1e-3):
        self.n_components = n_components
        self.reg = reg

    def fit(self, views, y=None):
        from crossmodal_core.models.linear import CCA
        from crossmodal_core.models.preprocessing import fit_standardizer, standardise

        views = [np.asarray(v) for v in views]
        if len(views) != 2:
            raise ValueError(f"PairCCA takes two views, got {len(views)}")
        self.means_, self.scales_ = fit_standardizer(views)
        scaled = [standardise(v)[0] for v in views]
        k = min(int(self.n_components), views[0].shape[1], views[1].shape[1])
        self.cca_ = CCA(n_components=k, reg=self.reg).fit(scaled)
        return self

    def transform(self, views):
        self._check_fitted("cca_")
        scaled = [(np.asarray(v, dtype=np.float64) - m) / s for v, m, s in zip(views, self.means_, self.scales_)]
        return self.cca_.transform(scaled)


def _with_mean(per_direction: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """The six directions in :data:`DIRECTIONS` order plus ``"mean"`` (average over them)."""
    ordered = {_direction_key(q, g): dict(per_direction[_direction_key(q, g)]) for q, g in DIRECTIONS}
    values = list(ordered.values())
    mean = {m: float(np.mean([d[m] for d in values])) for m in METRIC_NAMES}
    mean["n"] = int(values[0]["n"])
    ordered["mean"] = mean
    return ordered


def evaluate_cca_on_pairs(train: Mapping[str, np.ndarray], test: Mapping[str, np.ndarray], n_components: int = 10,
                          reg: float = 1e-3, metric: str = "cosine") -> dict[str, dict[str, float]]:
    """The CCA-on-pairs baseline on one train / test split (:class:`PairCCA` per pair of views,
    through :func:`crossmodal_core.evaluate.paired_split_metrics`).

    Returns
    -------
    the same layout as :func:`evaluate_alignment`.
    """
    from crossmodal_core.evaluate import paired_split_metrics

    tr = _check_embeddings(train, VIEW_NAMES, "train views")
    te = _check_embeddings(test, VIEW_NAMES, "test views")
    for name in VIEW_NAMES:
        if tr[name].shape[1] != te[name].shape[1]:
            raise ValueError(f"view {name!r} has {tr[name].shape[1]} features in train, {te[name].shape[1]} in test")
    rec = paired_split_metrics(PairCCA(n_components, reg), tr, te, views=VIEW_NAMES, metric=metric)
    return _with_mean(rec["metrics"]["test"])


def alignment_report(results: Mapping[str, Mapping[str, Any]], dataset_name: str,
                     view_names: Sequence[str] = VIEW_NAMES, params: Mapping[str, Any] | None = None,
                     seconds: Mapping[str, float] | None = None) -> dict[str, Any]:
    """The alignment report of paired results documents (one per method).

    Parameters
    ----------
    results : method name -> :func:`~crossmodal_core.evaluate.evaluate_paired` output on the
        views sheet, lyrics, audio (one model each)
    view_names : the dataset's names of the sheet, lyrics and audio views
    params, seconds : per method, stored as given

    Returns
    -------
    dict with ``dataset``, ``views``, ``protocol``, ``folds``, ``n_test``, ``methods`` (per
    method: ``params``, ``mean``, ``std``, ``per_fold``, ``seconds``) and ``table`` (Markdown).
    ``mean`` / ``std``: :func:`crossmodal_core.report.summarise` over folds (sample std).
    """
    methods: dict[str, Any] = {}
    first = next(iter(results.values()))
    (record,) = first["models"].values()
    for name, doc in results.items():
        (rec,) = doc["models"].values()
        if rec.get("error"):
            raise RuntimeError(f"{name} failed: {rec['error']}")
        per_fold = [_with_mean(f["metrics"]["test"]) for f in rec["folds"]]
        keys = [_direction_key(q, g) for q, g in DIRECTIONS] + ["mean"]
        stats = {k: {m: summarise([r[k][m] for r in per_fold]) for m in METRIC_NAMES} for k in keys}
        methods[name] = {
            "params": dict((params or {}).get(name, {})),
            "mean": {k: {m: v["mean"] for m, v in stats[k].items()} for k in keys},
            "std": {k: {m: v["std"] for m, v in stats[k].items()} for k in keys},
            "per_fold": per_fold,
            "seconds": round(float((seconds or {}).get(name, 0.0)), 2),
        }
    report = {
        "dataset": dataset_name,
        "views": dict(zip(VIEW_NAMES, view_names)),
        "protocol": ("train on all folds but one, test on the held-out fold (instance-level: the paired "
                     "fragment is the only relevant item; cosine similarity); mean and std over folds"),
        "folds": list(first.get("fold_ids", range(len(record["folds"])))),
        "n_test": [int(f["n_test"]) for f in record["folds"]],
        "methods": methods,
    }
    report["table"] = format_alignment_table({n: m["mean"] for n, m in methods.items()},
                                             {n: m["std"] for n, m in methods.items()})
    return report


def _duplicate_group_sizes(view: np.ndarray) -> np.ndarray:
    """``(n,)`` size of the group of rows identical to each row (1 = unique)."""
    _, inverse, counts = np.unique(np.ascontiguousarray(view), axis=0, return_inverse=True, return_counts=True)
    return counts[inverse.reshape(-1)]


def duplicate_ceiling(views: Mapping[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Best R@1/5/10 and MRR *any* model can reach, given identical input rows.

    If ``c`` queries have identical input features, every model embeds them identically, so
    they share one ranking and their ``c`` pairs occupy ``c`` distinct ranks: at best
    ``1..c`` (reciprocal ranks summing to ``H_c = 1 + 1/2 + ... + 1/c``, and at most
    ``min(K, c)`` of them within the top ``K``). If ``c`` gallery items are identical they tie
    for every query and ties go by gallery index, so again their queries get ranks of at least
    ``1..c``. Each argument bounds the mean metric; the ceiling reported per direction is the
    smaller of the two bounds. (Trecento voices sing the same text to different melodies, and
    strophic verses sing different texts to one melody: both cap instance-level retrieval.)

    Parameters
    ----------
    views : dict ``"sheet"``, ``"lyrics"``, ``"audio"`` -> ``(n, d_i)`` input features, rows paired

    Returns
    -------
    dict direction -> ``{"R@1", "R@5", "R@10", "MRR"}`` upper bounds, plus ``"mean"``.
    """
    checked = {name: np.asarray(v) for name, v in views.items()}
    n = {name: v.shape[0] for name, v in checked.items()}
    if set(VIEW_NAMES) - set(checked) or len(set(n.values())) != 1:
        raise ValueError(f"duplicate_ceiling needs paired sheet, lyrics and audio views, got rows {n}")
    sizes = {name: _duplicate_group_sizes(checked[name]) for name in VIEW_NAMES}

    def bound(c: np.ndarray) -> dict[str, float]:
        harmonic = np.cumsum(1.0 / np.arange(1, int(c.max()) + 1))
        out = {f"R@{k}": float(np.mean(np.minimum(k, c) / c)) for k in RECALL_KS}
        out["MRR"] = float(np.mean(harmonic[c - 1] / c))
        return out

    result = {}
    for q, g in DIRECTIONS:
        bq, bg = bound(sizes[q]), bound(sizes[g])
        result[_direction_key(q, g)] = {m: min(bq[m], bg[m]) for m in bq}
    result["mean"] = {m: float(np.mean([result[_direction_key(q, g)][m] for q, g in DIRECTIONS]))
                      for m in result[_direction_key(*DIRECTIONS[0])]}
    return result


def alignment_results_path(dataset_name: str) -> Path:
    """Where :func:`run_alignment_evaluation` stores its table: ``assets/results/<name>_alignment.json``."""
    from crossmodal_core.store import results_dir

    return results_dir() / f"{dataset_name}_alignment.json"


def run_alignment_evaluation(dataset, ugaar_params: Mapping[str, Any] | None = None,
                             cca_params: Mapping[str, Any] | None = None,
                             view_names: Sequence[str] = VIEW_NAMES, folds: np.ndarray | None = None,
                             out: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """UGAAR against the CCA-on-pairs baseline with fold cross-validation; writes a JSON report.

    Both methods run through :func:`crossmodal_core.evaluate.evaluate_paired` on the
    dataset's folds (train on all folds but one, test on the held-out fold; ``-1`` rows are
    never used), and :func:`alignment_report` lays the results out.

    Parameters
    ----------
    dataset : CrossModalDataset with sheet / lyrics / audio views (names in ``view_names``) and
        folds (the music dataset's folds are split by work)
    ugaar_params : parameters of :class:`~crossmodal_core.models.deep.ugaar.UGAAR`
        (default: its defaults with ``progress=False``)
    cca_params : ``n_components`` and ``reg`` of the baseline (default: UGAAR's ``n_components``
        and ``cca_reg``, so both see the same number of dimensions)
    folds : ``(n,)`` fold ids (default ``dataset.folds``)
    out : JSON path (``None``: :func:`alignment_results_path` of the dataset name)

    Returns
    -------
    the report of :func:`alignment_report`, as written.
    """
    from crossmodal_core.data.dataset import CrossModalDataset
    from crossmodal_core.evaluate import evaluate_paired
    from crossmodal_core.models.deep.ugaar import UGAAR
    from crossmodal_core.store import atomic_write_json

    folds = dataset.folds if folds is None else np.asarray(folds)
    if folds is None:
        raise ValueError(f"dataset {dataset.name!r} has no folds; pass folds=")
    folds = np.asarray(folds, dtype=np.int64)
    if folds.shape != (dataset.n_items,):
        raise ValueError(f"folds have shape {folds.shape}, expected ({dataset.n_items},)")
    if len(view_names) != 3:
        raise ValueError("view_names must name the sheet, lyrics and audio views (3 names)")
    fold_ids = [int(f) for f in np.unique(folds) if f >= 0]
    if len(fold_ids) < 2 or fold_ids != list(range(len(fold_ids))):
        raise ValueError(f"cross-validation needs fold ids 0..k-1 with k >= 2, got {fold_ids}")
    views = {std: np.asarray(dataset.view(name)) for std, name in zip(VIEW_NAMES, view_names)}
    for std, a in views.items():
        if a.ndim != 2:
            raise ValueError(f"view {std!r} must be 2-D (n, d) for alignment, got shape {a.shape}")
    ds = CrossModalDataset(views=views, folds=folds, name=dataset.name)

    ugaar_params = {"progress": False, **dict(ugaar_params or {})}
    defaults = UGAAR(**ugaar_params).get_params()
    cca_params = {"n_components": defaults["n_components"], "reg": defaults["cca_reg"], **dict(cca_params or {})}
    methods = {"UGAAR": ("ugaar", ugaar_params), "CCA-on-pairs": (PairCCA(**cca_params), None)}
    results, seconds = {}, {}
    for name, (model, params) in methods.items():
        t0 = time.perf_counter()
        results[name] = evaluate_paired(ds, {name: model}, views=list(VIEW_NAMES),
                                        model_params={name: params} if params else None,
                                        on_error="raise", progress=progress)
        results[name]["fold_ids"] = fold_ids
        seconds[name] = time.perf_counter() - t0
    params = {"UGAAR": {k: (list(v) if isinstance(v, tuple) else v) for k, v in defaults.items()},
              "CCA-on-pairs": cca_params}
    report = alignment_report(results, dataset.name, view_names, params, seconds)
    atomic_write_json(Path(out) if out is not None else alignment_results_path(dataset.name), report)
    return report


# ----------------------------------------------------------------------------- segment view
def segment_similarity(emb_a: np.ndarray, emb_b: np.ndarray, metric: str = "cosine") -> np.ndarray:
    """Segment-by-segment similarity of one work's fragments in two modalities.

    Parameters
    ----------
    emb_a, emb_b : (n, k) embeddings of the same ``n`` fragments (in order) in two modalities
    metric : "cosine" or "euclidean" (negative distance: larger is more similar)

    Returns
    -------
    (n, n) array ``S[i, j] = sim(emb_a[i], emb_b[j])``; a well-aligned model puts the largest
    value of each row on the diagonal (the true pairs).
    """
    a = np.asarray(emb_a)
    b = np.asarray(emb_b)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"segment_similarity needs 2-D embeddings, got shapes {a.shape} and {b.shape}")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"segment_similarity needs the same fragments in both modalities: "
                         f"{a.shape[0]} vs {b.shape[0]} rows")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"embeddings live in different spaces: widths {a.shape[1]} and {b.shape[1]}")
    return metrics.similarity(a, b, metric=metric)


#: metadata columns that give a fragment's position in its work, most significant first
_ORDER_COLUMNS = ("part_index", "verse", "measure_start", "measure_end", "fragment_index")


def work_segments(dataset, work_id: str) -> np.ndarray:
    """Row indices of one work's fragments, in score order.

    The work of each row is read from the metadata column ``"work_id"`` (else from the
    ``"work"`` label set's class names). Rows are ordered by whichever of the metadata columns
    ``part_index``, ``verse``, ``measure_start``, ``measure_end``, ``fragment_index`` exist
    (most significant first), then by row index.

    Returns
    -------
    (m,) int64 row indices; ``KeyError`` when no fragment belongs to ``work_id``.
    """
    if "work_id" in dataset.metadata:
        works = np.asarray(dataset.metadata["work_id"]).astype(str)
    elif "work" in dataset.labels:
        names = np.asarray(dataset.class_names["work"], dtype=object)
        works = names[dataset.labels["work"]].astype(str)
    else:
        raise ValueError(f"dataset {dataset.name!r} has neither a 'work_id' metadata column nor a 'work' label set")
    rows = np.nonzero(works == str(work_id))[0]
    if rows.size == 0:
        raise KeyError(f"no fragment of work {work_id!r} in dataset {dataset.name!r}")
    keys = [rows]  # np.lexsort sorts by the last key first
    for col in reversed(_ORDER_COLUMNS):
        if col in dataset.metadata:
            values = np.asarray(dataset.metadata[col])[rows]
            if np.issubdtype(values.dtype, np.number):
                keys.append(values)
    order = np.lexsort(keys)
    return rows[order].astype(np.int64)
