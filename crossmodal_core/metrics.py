"""Retrieval metrics for cross-modal embeddings: pure, validated functions.

Every function takes plain arrays and returns plain numbers or arrays; nothing here
knows about models, datasets or files (mir_eval / torchmetrics-retrieval style). The scores
and rank counting they share live in :mod:`crossmodal_core.scoring`; to ask several of these
questions of one direction without scoring the gallery each time, use
:class:`crossmodal_core.retrieval.ScoredDirection` (bitwise the same answers).

Conventions
-----------
Shapes
    ``queries`` is ``(n_queries, d)``, ``gallery`` is ``(n_gallery, d)``; both are cast to
    float32 and every similarity is computed with float32 matrix products. Labels are 1-D
    arrays of hashable class ids (ints or strings), one per row.

Similarity
    ``"cosine"``: dot product of L2-normalised rows (a zero row is an error: its cosine is
    undefined). ``"euclidean"``: the *negative* Euclidean distance, so that for both
    metrics a larger score means more similar; it is computed as
    ``sqrt(|q|^2 + |g|^2 - 2 q.g)`` after centring both sets on the gallery mean, so its
    float32 round-off is about ``3e-4 * |x - mean|`` (distances closer than that are ties
    in all but name).

Ranking and ties
    For every query the gallery is ordered by score, descending; items with exactly equal
    (float32) scores are ordered by gallery index, ascending. This is the order a stable
    sort of ``-score`` produces; it is deterministic and depends on nothing but the scores.
    Ranks are 1-based (the best gallery item has rank 1).
    Note: ``sklearn.metrics.average_precision_score`` treats tied scores as one threshold:
    every relevant item of a tied group gets the precision at the *end* of the group. On
    data without ties both agree exactly. With ties sklearn is never below the pessimistic
    order (relevant items last in each tie), equals it when no tied group holds two
    relevant items, and can exceed every strict ranking when relevant items tie with each
    other (scores 9,8,7,6,5,1,1 with the two 1s relevant: sklearn 2/7, any order
    (1/6 + 2/7)/2). The index rule here always gives the AP of an actual ranking.

Class-relevance retrieval (audio-visual: VEGAS, AVE, MV-10K)
    A gallery item is relevant to a query when their labels are equal. With ``R`` the
    number of relevant items in the *whole* gallery and ``rank_1 < ... < rank_R`` their
    ranks, the average precision of the query is

        AP = (1 / R) * sum_{m=1..R} m / rank_m

    (precision at each relevant rank, divided by all relevant items, not only those in a
    top-k), exactly as in the papers. MAP is the mean AP over queries, one number per
    direction (audio->visual and visual->audio are separate numbers).
    A query with ``R = 0`` has no defined AP: it gets ``nan`` in the per-query array and is
    left out of every mean (MAP, per-class AP, precision-recall curve), with a
    ``UserWarning`` that gives the count. If *no* query has a relevant item, MAP raises
    ``ValueError``.

Instance-level (paired) retrieval (sheet / lyrics / audio)
    Row ``i`` of the queries and row ``i`` of the gallery are a true pair, the only
    relevant item. :func:`pair_ranks` gives the rank of the true pair; the summaries take
    those ranks: ``recall_at_k`` (fraction of queries whose pair is in the top ``k``),
    ``precision_at_k`` (``recall_at_k / k``, since each query has one relevant item),
    ``mrr`` (mean reciprocal rank; ``mrr(ranks, cutoff=1)`` is MRR@1 as the papers report
    it, the fraction of queries whose top-1 item is relevant) and ``median_rank``.
    For class relevance, :func:`first_relevant_ranks` gives the rank of the first relevant
    item, so ``mrr(first_relevant_ranks(...), cutoff=1)`` is class-level MRR@1 (= P@1).
    :func:`rank_summary` is the one instance-level summary, with the package's one spelling
    of its keys (:data:`PAIRED_METRICS`): ``R@1``, ``R@5``, ``R@10``, ``MRR``,
    ``median_rank`` (plus ``n``, the query count).

Precision-recall curve
    11-point (by default) interpolated precision: at recall level ``r`` a query's
    precision is the highest precision it reaches at any recall ``>= r``; the curve is
    the mean over queries (with ``R > 0``).

At scale (galleries of 10^5-10^6 items)
    The exact n x n MAP costs O(n^2 log n) time and O(chunk x n) memory; ``n_jobs`` spreads
    its query chunks over processes (joblib; bitwise the same APs). Two cheaper questions
    are answered *as what they are*:

    - :func:`sampled_average_precision` -- AP of ``n_samples`` queries drawn uniformly
      without replacement (seeded) against the *full* gallery. Their mean is an unbiased
      estimate of the full MAP; :class:`Estimate` gives it with a normal-approximation
      confidence interval that includes the finite-population correction (so sampling every
      query gives the exact MAP with zero width). The interval covers the choice of queries
      only: the gallery is complete.
    - :func:`average_precision_at_k` -- AP@K from ranked neighbour lists (an index's top-K):
      ``AP@K = (1 / min(R, K)) * sum_{j <= K, item j relevant} P@j`` with ``R`` the relevant
      items in the whole gallery. It ignores relevant items ranked below K, so it is not
      the papers' MAP (equal only when ``K`` is the gallery size); report it as MAP@K.

Memory
    Scores are computed ``chunk_size`` query rows at a time. ``chunk_size=None`` picks the
    number of rows that keeps the working set near :data:`DEFAULT_MEMORY_BUDGET` bytes
    (about 0.5 GB), so a 22,483 x 22,483 evaluation never holds the full score matrix.
    Results do not depend on the chunk size: chunks are rounded up to a multiple of 64
    rows and every matrix product has one fixed shape, so scores are bitwise identical
    however the work is split (for a given BLAS library and thread count).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass

import numpy as np

from crossmodal_core.scoring import (
    BLAS_ROWS,
    DEFAULT_MEMORY_BUDGET,
    METRICS,
    check_chunk_size,
    check_k,
    check_label_vector,
    check_matrix,
    check_metric,
    check_pair,
    columns_by_class,
    default_chunk_size,
    encode_labels,
    iter_relevant_ranks,
    iter_score_chunks,
    similarity,
)

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "METRICS",
    "similarity",
    "average_precision",
    "average_precision_from_scores",
    "mean_average_precision",
    "per_class_average_precision",
    "map_both_directions",
    "relevant_counts",
    "first_relevant_ranks",
    "pair_ranks",
    "recall_at_k",
    "precision_at_k",
    "mrr",
    "median_rank",
    "precision_recall_curve",
    "default_chunk_size",
    "ap_from_ranks",
    "mean_ap",
    "interpolated_precision",
    "curve_from_sums",
    "RECALL_KS",
    "PAIRED_METRICS",
    "rank_summary",
    "Estimate",
    "estimate_mean",
    "sample_queries",
    "sampled_average_precision",
    "sampled_pair_ranks",
    "average_precision_at_k",
]

#: K of the reported Recall@K (instance-level retrieval)
RECALL_KS: tuple[int, ...] = (1, 5, 10)
#: the instance-level metric keys, everywhere (evaluation, alignment report, tables, CSV)
PAIRED_METRICS: tuple[str, ...] = tuple(f"R@{k}" for k in RECALL_KS) + ("MRR", "median_rank")


# ---------------------------------------------------------------------------- rank checks
def _check_ranks(ranks) -> np.ndarray:
    r = np.asarray(ranks)
    if r.ndim != 1:
        raise ValueError(f"ranks must be a 1-D array of 1-based ranks, got shape {r.shape}")
    if r.shape[0] == 0:
        raise ValueError("ranks is empty")
    if not np.issubdtype(r.dtype, np.number) or r.dtype.kind == "c":
        raise ValueError(f"ranks must be numeric, got dtype {r.dtype}")
    if r.dtype.kind == "f":
        if not np.isfinite(r).all():
            raise ValueError("ranks contains NaN or inf")
        if (r != np.round(r)).any():
            raise ValueError("ranks must be whole numbers")
    if (r < 1).any():
        raise ValueError(
            "ranks must be >= 1 (1-based); a rank of 0 marks a query with no relevant item: "
            "drop those first, e.g. ranks[ranks > 0]"
        )
    return r.astype(np.int64)


def ap_from_ranks(ranks: np.ndarray) -> np.ndarray:
    """AP of each row of ``(k, R)`` 1-based relevant ranks in ranking order: ``(k,)`` float64."""
    R = ranks.shape[1]
    m = np.arange(1, R + 1, dtype=np.float64)
    return (m / ranks).sum(axis=1) / R


def _warn_no_relevant(n_missing: int, n_total: int) -> None:
    if n_missing:
        warnings.warn(
            f"{n_missing} of {n_total} queries have no relevant item in the gallery; "
            "their AP is nan and they are left out of the mean",
            UserWarning,
            stacklevel=3,
        )


# ---------------------------------------------------------------------------- class relevance
def relevant_counts(query_labels: np.ndarray, gallery_labels: np.ndarray) -> np.ndarray:
    """Number ``R`` of gallery items sharing each query's label: ``(n_queries,)`` int64."""
    ql = check_label_vector(query_labels, len(np.atleast_1d(query_labels)), "query_labels", "query_labels")
    gl = check_label_vector(gallery_labels, len(np.atleast_1d(gallery_labels)), "gallery_labels", "gallery_labels")
    qc, gc, vocab = encode_labels(ql, gl, ql.shape[0], gl.shape[0])
    return np.bincount(gc, minlength=len(vocab))[qc].astype(np.int64)


def average_precision(
    queries: np.ndarray,
    gallery: np.ndarray,
    query_labels: np.ndarray,
    gallery_labels: np.ndarray,
    metric: str = "cosine",
    chunk_size: int | None = None,
    n_jobs: int = 1,
) -> np.ndarray:
    """Per-query average precision with class relevance (see the module docstring).

    Parameters
    ----------
    queries : array ``(n_queries, d)``
    gallery : array ``(n_gallery, d)``
    query_labels : array ``(n_queries,)`` of class ids
    gallery_labels : array ``(n_gallery,)`` of class ids
    metric : ``"cosine"`` or ``"euclidean"``
    chunk_size : query rows scored at once; ``None`` = from :data:`DEFAULT_MEMORY_BUDGET`
    n_jobs : worker processes over query chunks (joblib; ``-1`` = every core). Each worker
        holds one chunk of scores, so memory grows with ``n_jobs``; the APs are bitwise the
        same as with ``n_jobs=1`` (chunks start at multiples of ``BLAS_ROWS``).

    Returns
    -------
    ap : float64 array ``(n_queries,)`` in [0, 1]; ``nan`` where the query has no relevant
        gallery item (no warning here: :func:`mean_average_precision` warns).
    """
    metric = check_metric(metric)
    q, g = check_pair(queries, gallery)
    qc, gc, vocab = encode_labels(query_labels, gallery_labels, q.shape[0], g.shape[0])
    chunk = check_chunk_size(chunk_size, g.shape[0])
    workers = _check_n_jobs(n_jobs)
    if workers > 1 and q.shape[0] > BLAS_ROWS:
        return _parallel_average_precision(q, g, qc, gc, metric, chunk, workers)
    return _ap_of_codes(q, g, qc, gc, len(vocab), metric, chunk)


def _check_n_jobs(n_jobs) -> int:
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs must be a positive int or -1 (every core), got {n_jobs!r}")
    return (os.cpu_count() or 1) if n_jobs == -1 else int(n_jobs)


def _ap_of_codes(q, g, qc, gc, n_codes: int, metric: str, chunk: int) -> np.ndarray:
    """Per-query AP of prepared inputs with label codes (the serial engine, one process)."""
    cols = columns_by_class(gc, n_codes)
    ap = np.full(q.shape[0], np.nan)
    for sl, block in iter_score_chunks(q, g, metric, chunk):
        ap_chunk = ap[sl]
        for rows, ranks in iter_relevant_ranks(block, qc[sl], cols):
            ap_chunk[rows] = ap_from_ranks(ranks)
    return ap


def _parallel_average_precision(q, g, qc, gc, metric: str, chunk: int, workers: int) -> np.ndarray:
    from joblib import Parallel, delayed  # installed with scikit-learn

    n_codes = int(max(qc.max(initial=-1), gc.max(initial=-1))) + 1
    # Slices start at multiples of BLAS_ROWS so every row's scores, hence ties, are bitwise
    # those of the serial run; a few tasks per worker even out classes of unequal cost.
    step = -(-q.shape[0] // (workers * 4))
    step = -(-step // BLAS_ROWS) * BLAS_ROWS
    slices = [slice(a, min(a + step, q.shape[0])) for a in range(0, q.shape[0], step)]
    parts = Parallel(n_jobs=workers, backend="loky")(
        delayed(_ap_of_codes)(q[sl], g, qc[sl], gc, n_codes, metric, chunk) for sl in slices
    )
    return np.concatenate(parts)


def average_precision_from_scores(scores: np.ndarray, query_labels: np.ndarray, gallery_labels: np.ndarray) -> np.ndarray:
    """Per-query AP from a precomputed ``(n_queries, n_gallery)`` score matrix (larger = more relevant).

    Same conventions as :func:`average_precision` (ties by gallery index); scores are
    cast to float32 first, as every similarity here is.
    """
    s = check_matrix(scores, "scores")
    qc, gc, vocab = encode_labels(query_labels, gallery_labels, s.shape[0], s.shape[1])
    cols = columns_by_class(gc, len(vocab))
    ap = np.full(s.shape[0], np.nan)
    chunk = default_chunk_size(s.shape[1])
    for start in range(0, s.shape[0], chunk):
        sl = slice(start, min(start + chunk, s.shape[0]))
        ap_chunk = ap[sl]
        for rows, ranks in iter_relevant_ranks(s[sl], qc[sl], cols):
            ap_chunk[rows] = ap_from_ranks(ranks)
    return ap


def mean_ap(ap: np.ndarray) -> float:
    """MAP from per-query AP: the mean over queries with a defined AP (``nan`` left out, with
    a ``UserWarning`` giving their count; ``ValueError`` if none is defined)."""
    ap = np.asarray(ap, dtype=np.float64)
    valid = ~np.isnan(ap)
    if not valid.any():
        raise ValueError("no query has a relevant item in the gallery: MAP is undefined")
    _warn_no_relevant(int((~valid).sum()), ap.shape[0])
    return float(ap[valid].mean())


def mean_average_precision(
    queries: np.ndarray,
    gallery: np.ndarray,
    query_labels: np.ndarray,
    gallery_labels: np.ndarray,
    metric: str = "cosine",
    chunk_size: int | None = None,
    n_jobs: int = 1,
) -> float:
    """MAP: mean of :func:`average_precision` over queries that have at least one relevant item.

    Warns (``UserWarning``, with the count) when some queries have none; raises
    ``ValueError`` when no query has any. ``n_jobs``: see :func:`average_precision`.
    """
    return mean_ap(average_precision(queries, gallery, query_labels, gallery_labels, metric, chunk_size, n_jobs))


def per_class_average_precision(ap: np.ndarray, query_labels: np.ndarray) -> dict:
    """Mean AP of the queries of each class: ``{class id: mean AP}`` (``nan`` APs left out).

    Parameters
    ----------
    ap : array ``(n_queries,)`` from :func:`average_precision`
    query_labels : array ``(n_queries,)``

    Returns
    -------
    dict mapping each class id present in ``query_labels`` (as a Python scalar, sorted)
    to its mean AP; ``nan`` for a class none of whose queries has a relevant item.
    """
    a = np.asarray(ap, dtype=np.float64)
    if a.ndim != 1 or a.shape[0] == 0:
        raise ValueError(f"ap must be a non-empty 1-D array, got shape {a.shape}")
    labels = check_label_vector(query_labels, a.shape[0], "query_labels", "ap")
    out = {}
    for c in np.unique(labels):
        vals = a[labels == c]
        vals = vals[~np.isnan(vals)]
        out[c.item() if hasattr(c, "item") else c] = float(vals.mean()) if vals.size else float("nan")
    return out


def map_both_directions(
    x: np.ndarray,
    y: np.ndarray,
    labels_x: np.ndarray,
    labels_y: np.ndarray | None = None,
    metric: str = "cosine",
    chunk_size: int | None = None,
    n_jobs: int = 1,
) -> tuple[float, float]:
    """MAP of ``x -> y`` (x rows query the y gallery) and of ``y -> x``.

    ``labels_y`` defaults to ``labels_x`` (paired test sets, as in VEGAS: row i of both
    modalities is the same video). ``n_jobs``: see :func:`average_precision`.
    """
    xa = check_matrix(x, "x")
    ya = check_matrix(y, "y")
    if labels_y is None:
        lx = check_label_vector(labels_x, xa.shape[0], "labels_x", "x")
        if ya.shape[0] != xa.shape[0]:
            raise ValueError(
                f"labels_y is needed: x has {xa.shape[0]} rows but y has {ya.shape[0]}, so labels_x cannot be shared"
            )
        ly = lx
    else:
        lx = check_label_vector(labels_x, xa.shape[0], "labels_x", "x")
        ly = check_label_vector(labels_y, ya.shape[0], "labels_y", "y")
    forward = mean_average_precision(xa, ya, lx, ly, metric, chunk_size, n_jobs)
    backward = mean_average_precision(ya, xa, ly, lx, metric, chunk_size, n_jobs)
    return forward, backward


def first_relevant_ranks(
    queries: np.ndarray,
    gallery: np.ndarray,
    query_labels: np.ndarray,
    gallery_labels: np.ndarray,
    metric: str = "cosine",
    chunk_size: int | None = None,
) -> np.ndarray:
    """1-based rank of the best-ranked relevant (same-label) gallery item for each query.

    Returns ``(n_queries,)`` int64; ``0`` for a query with no relevant item (the rank
    summaries reject 0, so drop them explicitly: ``ranks[ranks > 0]``).
    ``mrr(ranks, cutoff=1)`` is then the class-level MRR@1 of the papers.
    """
    metric = check_metric(metric)
    q, g = check_pair(queries, gallery)
    qc, gc, vocab = encode_labels(query_labels, gallery_labels, q.shape[0], g.shape[0])
    chunk = check_chunk_size(chunk_size, g.shape[0])
    cols = columns_by_class(gc, len(vocab))
    out = np.zeros(q.shape[0], dtype=np.int64)
    for sl, block in iter_score_chunks(q, g, metric, chunk):
        out_chunk = out[sl]
        for rows, ranks in iter_relevant_ranks(block, qc[sl], cols):
            out_chunk[rows] = ranks[:, 0]
    return out


def precision_recall_curve(
    queries: np.ndarray,
    gallery: np.ndarray,
    query_labels: np.ndarray,
    gallery_labels: np.ndarray,
    metric: str = "cosine",
    n_points: int = 11,
    chunk_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Interpolated precision-recall curve averaged over queries (class relevance).

    Returns
    -------
    recall : ``(n_points,)`` levels ``0, 1/(n_points-1), ..., 1``
    precision : ``(n_points,)`` mean over queries (with ``R > 0``) of the highest precision
        each reaches at a recall ``>=`` the level.
    """
    metric = check_metric(metric)
    n_points = check_k(n_points, "n_points")
    if n_points < 2:
        raise ValueError(f"n_points must be at least 2, got {n_points}")
    q, g = check_pair(queries, gallery)
    qc, gc, vocab = encode_labels(query_labels, gallery_labels, q.shape[0], g.shape[0])
    chunk = check_chunk_size(chunk_size, g.shape[0])
    cols = columns_by_class(gc, len(vocab))
    total = np.zeros(n_points)
    n_valid = 0
    for sl, block in iter_score_chunks(q, g, metric, chunk):
        for rows, ranks in iter_relevant_ranks(block, qc[sl], cols):
            total += interpolated_precision(ranks, n_points).sum(axis=0)
            n_valid += rows.size
    return curve_from_sums(total, n_valid, q.shape[0])


def interpolated_precision(ranks: np.ndarray, n_points: int) -> np.ndarray:
    """``(k, n_points)`` interpolated precision of each row of ``(k, R)`` relevant ranks at
    the recall levels ``0, 1/(n_points-1), ..., 1`` (the highest precision reached at any
    recall ``>=`` the level)."""
    R = ranks.shape[1]
    levels = np.arange(n_points, dtype=np.int64)
    precision = np.arange(1, R + 1) / ranks
    best_from = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    # smallest m with m / R >= level / (n_points - 1), in exact integer arithmetic
    m = np.maximum(-(-levels * R // (n_points - 1)), 1)
    return best_from[:, m - 1]


def curve_from_sums(total: np.ndarray, n_valid: int, n_queries: int) -> tuple[np.ndarray, np.ndarray]:
    """``(recall levels, mean precision)`` from the summed :func:`interpolated_precision` of
    ``n_valid`` queries out of ``n_queries`` (warns about the others; ``ValueError`` if none)."""
    n_points = len(total)
    if n_valid == 0:
        raise ValueError("no query has a relevant item in the gallery: the precision-recall curve is undefined")
    _warn_no_relevant(n_queries - n_valid, n_queries)
    return np.arange(n_points, dtype=np.int64) / (n_points - 1), total / n_valid


# ---------------------------------------------------------------------------- paired retrieval
def pair_ranks(
    queries: np.ndarray,
    gallery: np.ndarray,
    metric: str = "cosine",
    chunk_size: int | None = None,
    pair_index: np.ndarray | None = None,
) -> np.ndarray:
    """1-based rank of ``gallery[i]`` in the ranking for ``queries[i]`` (instance-level retrieval).

    ``rank_i = 1 + #{j : s_ij > s_ii} + #{j < i : s_ij == s_ii}`` (ties by gallery index).
    Queries and gallery must have the same number of rows, unless ``pair_index`` ``(n_queries,)``
    gives the gallery row of each query's true pair (a subset of queries against the full
    gallery, as :func:`sampled_pair_ranks` does). Returns ``(n_queries,)`` int64.
    """
    metric = check_metric(metric)
    q, g = check_pair(queries, gallery)
    if pair_index is None:
        if q.shape[0] != g.shape[0]:
            raise ValueError(
                f"pair_ranks needs paired rows: queries has {q.shape[0]} rows, gallery has {g.shape[0]}"
            )
        pair_index = np.arange(q.shape[0])
    else:
        pair_index = np.asarray(pair_index)
        if pair_index.shape != (q.shape[0],) or pair_index.dtype.kind not in "iu":
            raise ValueError(f"pair_index must be ({q.shape[0]},) integer gallery rows, got {pair_index.dtype} {pair_index.shape}")
        if pair_index.size and (pair_index.min() < 0 or pair_index.max() >= g.shape[0]):
            raise ValueError(f"pair_index holds rows outside the gallery's 0..{g.shape[0] - 1}")
        pair_index = pair_index.astype(np.int64)
    chunk = check_chunk_size(chunk_size, g.shape[0])
    out = np.empty(q.shape[0], dtype=np.int64)
    cols = np.arange(g.shape[0])
    for sl, block in iter_score_chunks(q, g, metric, chunk):
        own_idx = pair_index[sl]
        own = block[np.arange(block.shape[0]), own_idx][:, None]
        above = (block > own).sum(axis=1) + ((block == own) & (cols[None, :] < own_idx[:, None])).sum(axis=1)
        out[sl] = above + 1
    return out


def recall_at_k(ranks: np.ndarray, k: int) -> float:
    """Fraction of queries whose (single) relevant item is ranked within the top ``k``."""
    r = _check_ranks(ranks)
    return float((r <= check_k(k)).mean())


def precision_at_k(ranks: np.ndarray, k: int) -> float:
    """Mean precision in the top ``k`` with one relevant item per query: ``recall_at_k(ranks, k) / k``."""
    k = check_k(k)
    return recall_at_k(ranks, k) / k


def mrr(ranks: np.ndarray, cutoff: int | None = None) -> float:
    """Mean reciprocal rank; ranks beyond ``cutoff`` count as 0.

    ``mrr(ranks)`` is the full MRR; ``mrr(ranks, cutoff=1)`` is MRR@1 as the papers report
    it (the fraction of queries whose top-1 item is relevant).
    """
    r = _check_ranks(ranks)
    rr = 1.0 / r
    if cutoff is not None:
        rr[r > check_k(cutoff, "cutoff")] = 0.0
    return float(rr.mean())


def median_rank(ranks: np.ndarray) -> float:
    """Median of the 1-based ranks (lower is better; 1.0 = perfect)."""
    return float(np.median(_check_ranks(ranks)))


def rank_summary(ranks: np.ndarray) -> dict[str, float]:
    """The instance-level summary of 1-based pair ranks ``(n,)``: ``R@1``, ``R@5``, ``R@10``
    (:func:`recall_at_k`), ``MRR`` (:func:`mrr`), ``median_rank`` and ``n`` (query count).

    These keys (:data:`PAIRED_METRICS` plus ``n``) are the only spelling of the paired
    metrics in the package and in its results files.
    """
    r = _check_ranks(ranks)
    out = {f"R@{k}": recall_at_k(r, k) for k in RECALL_KS}
    out["MRR"] = mrr(r)
    out["median_rank"] = median_rank(r)
    out["n"] = int(r.shape[0])
    return out


# ---------------------------------------------------------------------------- at scale
@dataclass(frozen=True)
class Estimate:
    """A mean estimated from a uniform sample of queries, with its confidence interval.

    ``value`` is the sample mean, ``stderr`` its standard error (``std(ddof=1) / sqrt(m)``
    times the finite-population correction ``sqrt((N - m) / (N - 1))``), ``low``/``high``
    the normal-approximation interval at ``confidence``; ``n_sampled`` queries (with a
    defined value) out of ``n_population``.
    """

    value: float
    stderr: float
    low: float
    high: float
    confidence: float
    n_sampled: int
    n_population: int

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    def __str__(self) -> str:
        return (f"{self.value:.4f} ± {self.high - self.value:.4f} ({self.confidence:.0%} CI, "
                f"{self.n_sampled} of {self.n_population} queries)")


def estimate_mean(values: np.ndarray, n_population: int, confidence: float = 0.95) -> Estimate:
    """:class:`Estimate` of a population mean from the values of a uniform sample without
    replacement (``nan`` values, e.g. queries without a relevant item, are left out of both
    the sample and the population count)."""
    from scipy.stats import norm

    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"values must be a non-empty 1-D array, got shape {v.shape}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    n_missing = int(np.isnan(v).sum())
    v = v[~np.isnan(v)]
    if v.size == 0:
        raise ValueError("no sampled query has a defined value")
    population = int(n_population) - n_missing
    if population < v.size:
        raise ValueError(f"n_population ({n_population}) is smaller than the sample ({v.size + n_missing})")
    m = v.size
    if m < 2 or population == m:
        stderr = 0.0 if population == m else float("nan")
    else:
        stderr = float(v.std(ddof=1) / math.sqrt(m) * math.sqrt((population - m) / (population - 1)))
    half = float(norm.ppf(0.5 + confidence / 2)) * stderr
    mean = float(v.mean())
    return Estimate(mean, stderr, mean - half, mean + half, float(confidence), m, population)


def sample_queries(n_queries: int, n_samples: int, seed: int = 0) -> np.ndarray:
    """Sorted row indices of ``min(n_samples, n_queries)`` queries drawn uniformly without
    replacement with ``numpy.random.default_rng(seed)``."""
    n_queries = check_k(n_queries, "n_queries")
    n_samples = check_k(n_samples, "n_samples")
    if n_samples >= n_queries:
        return np.arange(n_queries)
    return np.sort(np.random.default_rng(seed).choice(n_queries, size=n_samples, replace=False))


def sampled_average_precision(
    queries: np.ndarray,
    gallery: np.ndarray,
    query_labels: np.ndarray,
    gallery_labels: np.ndarray,
    n_samples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    metric: str = "cosine",
    chunk_size: int | None = None,
    n_jobs: int = 1,
) -> tuple[Estimate, np.ndarray, np.ndarray]:
    """MAP estimated from ``n_samples`` random queries against the *full* gallery.

    Returns ``(estimate, rows, ap)``: the :class:`Estimate` of the full MAP, the sampled
    query rows ``(m,)`` and their exact APs ``(m,)`` (the same numbers
    :func:`average_precision` gives those rows). ``queries`` may be a lazy array (an
    ``h5py`` / Zarr dataset): only the sampled rows are read.
    """
    n = len(queries)
    rows = sample_queries(n, n_samples, seed)
    ql = np.asarray(query_labels)
    if ql.shape[0] != n:
        raise ValueError(f"query_labels has {ql.shape[0]} entries but queries has {n} rows")
    q = np.asarray(queries[rows]) if rows.size < n else queries
    ap = average_precision(q, gallery, ql[rows], gallery_labels, metric, chunk_size, n_jobs)
    return estimate_mean(ap, n, confidence), rows, ap


def sampled_pair_ranks(
    queries: np.ndarray,
    gallery: np.ndarray,
    n_samples: int = 1000,
    seed: int = 0,
    metric: str = "cosine",
    chunk_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pair ranks (instance-level) of ``n_samples`` random queries against the full paired
    gallery: ``(rows, ranks)``. Estimate R@K with ``estimate_mean((ranks <= K), n)``."""
    n = len(queries)
    if len(gallery) != n:
        raise ValueError(f"paired retrieval needs as many gallery rows ({len(gallery)}) as queries ({n})")
    rows = sample_queries(n, n_samples, seed)
    q = np.asarray(queries[rows]) if rows.size < n else queries
    return rows, pair_ranks(q, gallery, metric, chunk_size, pair_index=rows)


def average_precision_at_k(
    neighbors: np.ndarray,
    query_labels: np.ndarray,
    gallery_labels: np.ndarray,
    k: int | None = None,
) -> np.ndarray:
    """AP@K of each query from its ranked neighbour list (e.g. an index's top-K).

    Parameters
    ----------
    neighbors : int array ``(n_queries, K)`` of gallery rows, best first (``-1`` = no item)
    query_labels : ``(n_queries,)``; gallery_labels : ``(n_gallery,)``
    k : cut-off (default: ``K``)

    Returns
    -------
    ``(n_queries,)`` float64: ``(1 / min(R, k)) * sum_{j <= k, relevant} P@j`` with ``R``
    the relevant items in the *whole* gallery; ``nan`` where ``R = 0``. Equal to
    :func:`average_precision` when ``k`` is the gallery size; otherwise it is MAP@K, not MAP.
    """
    nb = np.asarray(neighbors)
    if nb.ndim != 2 or nb.dtype.kind not in "iu":
        raise ValueError(f"neighbors must be a 2-D integer array (n_queries, K), got {nb.dtype} {nb.shape}")
    gl = check_label_vector(gallery_labels, len(np.atleast_1d(gallery_labels)), "gallery_labels", "gallery_labels")
    ql = check_label_vector(query_labels, nb.shape[0], "query_labels", "neighbors")
    if nb.size and (nb.max() >= gl.shape[0] or nb.min() < -1):
        raise ValueError(f"neighbors holds rows outside the gallery's 0..{gl.shape[0] - 1} (or -1)")
    k = nb.shape[1] if k is None else check_k(k)
    if k > nb.shape[1]:
        raise ValueError(f"k={k} exceeds the {nb.shape[1]} neighbours given")
    nb = nb[:, :k]
    qc, gc, vocab = encode_labels(ql, gl, ql.shape[0], gl.shape[0])
    R = np.bincount(gc, minlength=len(vocab))[qc]
    valid = nb >= 0
    hit = valid & (gc[np.where(valid, nb, 0)] == qc[:, None])
    precision_at_j = np.cumsum(hit, axis=1) / np.arange(1, k + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = (precision_at_j * hit).sum(axis=1) / np.minimum(R, k)
    ap[R == 0] = np.nan
    return ap
