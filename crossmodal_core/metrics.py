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

Memory
    Scores are computed ``chunk_size`` query rows at a time. ``chunk_size=None`` picks the
    number of rows that keeps the working set near :data:`DEFAULT_MEMORY_BUDGET` bytes
    (about 0.5 GB), so a 22,483 x 22,483 evaluation never holds the full score matrix.
    Results do not depend on the chunk size: chunks are rounded up to a multiple of 64
    rows and every matrix product has one fixed shape, so scores are bitwise identical
    however the work is split (for a given BLAS library and thread count).
"""

from __future__ import annotations

import warnings

import numpy as np

from crossmodal_core.scoring import (
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

    Returns
    -------
    ap : float64 array ``(n_queries,)`` in [0, 1]; ``nan`` where the query has no relevant
        gallery item (no warning here: :func:`mean_average_precision` warns).
    """
    metric = check_metric(metric)
    q, g = check_pair(queries, gallery)
    qc, gc, vocab = encode_labels(query_labels, gallery_labels, q.shape[0], g.shape[0])
    chunk = check_chunk_size(chunk_size, g.shape[0])
    cols = columns_by_class(gc, len(vocab))
    ap = np.full(q.shape[0], np.nan)
    for sl, block in iter_score_chunks(q, g, metric, chunk):
        ap_chunk = ap[sl]
        for rows, ranks in iter_relevant_ranks(block, qc[sl], cols):
            ap_chunk[rows] = ap_from_ranks(ranks)
    return ap


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
) -> float:
    """MAP: mean of :func:`average_precision` over queries that have at least one relevant item.

    Warns (``UserWarning``, with the count) when some queries have none; raises
    ``ValueError`` when no query has any.
    """
    return mean_ap(average_precision(queries, gallery, query_labels, gallery_labels, metric, chunk_size))


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
) -> tuple[float, float]:
    """MAP of ``x -> y`` (x rows query the y gallery) and of ``y -> x``.

    ``labels_y`` defaults to ``labels_x`` (paired test sets, as in VEGAS: row i of both
    modalities is the same video).
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
    forward = mean_average_precision(xa, ya, lx, ly, metric, chunk_size)
    backward = mean_average_precision(ya, xa, ly, lx, metric, chunk_size)
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
) -> np.ndarray:
    """1-based rank of ``gallery[i]`` in the ranking for ``queries[i]`` (instance-level retrieval).

    ``rank_i = 1 + #{j : s_ij > s_ii} + #{j < i : s_ij == s_ii}`` (ties by gallery index).
    Queries and gallery must have the same number of rows. Returns ``(n,)`` int64.
    """
    metric = check_metric(metric)
    q, g = check_pair(queries, gallery)
    if q.shape[0] != g.shape[0]:
        raise ValueError(
            f"pair_ranks needs paired rows: queries has {q.shape[0]} rows, gallery has {g.shape[0]}"
        )
    chunk = check_chunk_size(chunk_size, g.shape[0])
    out = np.empty(q.shape[0], dtype=np.int64)
    cols = np.arange(g.shape[0])
    for sl, block in iter_score_chunks(q, g, metric, chunk):
        own_idx = np.arange(sl.start, sl.stop)
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
