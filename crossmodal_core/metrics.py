"""Retrieval metrics for cross-modal embeddings: pure, validated functions.

Every function takes plain arrays and returns plain numbers or arrays; nothing here
knows about models, datasets or files (mir_eval / torchmetrics-retrieval style).

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
from typing import Iterator

import numpy as np

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
]

#: similarity names accepted by every function here
METRICS = ("cosine", "euclidean")

#: bytes of working memory a chunked computation aims for
DEFAULT_MEMORY_BUDGET = 512 * 1024**2

# Query rows per matrix product; see _score_block for why the shape is fixed.
_BLAS_ROWS = 64

# Bytes held per (query, gallery) cell of one chunk: the float32 scores, their sorted copy,
# the relevant block and its sorted copy, and int64 rank bookkeeping on the relevant block.
_BYTES_PER_CELL = 48


# ---------------------------------------------------------------------------- validation
def _check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    return metric


def _check_matrix(x, name: str) -> np.ndarray:
    try:
        a = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} must be a 2-D numeric array: {exc}") from None
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise ValueError(f"{name} must be a 2-D numeric array, got dtype {a.dtype}")
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_items, d), got shape {a.shape}")
    if a.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 rows)")
    if a.shape[1] == 0:
        raise ValueError(f"{name} has 0 features")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all():
        bad = int(np.flatnonzero(~np.isfinite(a).all(axis=1))[0])
        raise ValueError(f"{name} contains NaN or inf (first in row {bad})")
    return a


def _check_pair(queries, gallery) -> tuple[np.ndarray, np.ndarray]:
    q = _check_matrix(queries, "queries")
    g = _check_matrix(gallery, "gallery")
    if q.shape[1] != g.shape[1]:
        raise ValueError(
            f"queries have {q.shape[1]} features but gallery has {g.shape[1]}; "
            "both must live in the same embedding space"
        )
    return q, g


def _check_label_vector(labels, n: int, name: str, rows_of: str) -> np.ndarray:
    if labels is None:
        raise ValueError(f"{name} is required")
    a = np.asarray(labels)
    if a.ndim == 2 and a.shape[1] > 1:
        raise ValueError(f"{name} must be a 1-D array of class ids (convert one-hot labels with argmax)")
    if a.ndim > 1:
        a = a.reshape(-1)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class ids, got shape {a.shape}")
    if a.shape[0] != n:
        raise ValueError(f"{name} has {a.shape[0]} labels but {rows_of} has {n} rows")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    return a


def _encode_labels(query_labels, gallery_labels, nq: int, ng: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate both label vectors; return int codes over their joint vocabulary + the vocabulary."""
    ql = _check_label_vector(query_labels, nq, "query_labels", "queries")
    gl = _check_label_vector(gallery_labels, ng, "gallery_labels", "gallery")
    try:
        vocab, codes = np.unique(np.concatenate([ql, gl]), return_inverse=True)
    except TypeError:
        raise ValueError("query_labels and gallery_labels must hold comparable class ids of one type") from None
    codes = codes.reshape(-1).astype(np.int64)
    return codes[:nq], codes[nq:], vocab


def _check_chunk_size(chunk_size, n_gallery: int) -> int:
    if chunk_size is None:
        return default_chunk_size(n_gallery)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    return int(chunk_size)


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


def _check_k(k, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"{name} must be a positive integer, got {k!r}")
    return int(k)


def default_chunk_size(n_gallery: int, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> int:
    """Number of query rows per chunk so one chunk's working set stays near ``memory_budget`` bytes."""
    return max(1, int(memory_budget // (_BYTES_PER_CELL * max(int(n_gallery), 1))))


# ---------------------------------------------------------------------------- similarity
def _prepare(x: np.ndarray, metric: str, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-row preprocessing shared by every chunk: unit rows (cosine) or squared norms (euclidean)."""
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1)
        if (norms == 0).any():
            bad = int(np.flatnonzero(norms == 0)[0])
            raise ValueError(f"{name} row {bad} is all zeros: its cosine similarity is undefined")
        return x / norms[:, None], None
    return x, np.einsum("ij,ij->i", x, x)


def _score_block(q: np.ndarray, q_sq, g: np.ndarray, g_sq, metric: str) -> np.ndarray:
    """Scores of prepared query rows ``q`` against the prepared gallery ``g``: ``(len(q), len(g))`` float32.

    BLAS kernels may round a row differently depending on the shape of the product it is
    part of (edge tiles, small-M paths), which would make scores -- and ties -- depend on
    the chunk size. Every product therefore has the same shape, ``(_BLAS_ROWS, d)`` by
    ``(d, n)``, the last one zero-padded, and chunks start at multiples of ``_BLAS_ROWS``:
    a row's scores are bitwise identical however the queries are chunked. (They can still
    differ in the last bit if the caller slices the *query array* at an offset that is not
    a multiple of ``_BLAS_ROWS``: kernels round by position inside their tile.)
    """
    n_rows = q.shape[0]
    s = np.empty((n_rows, g.shape[0]), dtype=np.float32)
    g_t = g.T
    for start in range(0, n_rows, _BLAS_ROWS):
        stop = min(start + _BLAS_ROWS, n_rows)
        if stop - start == _BLAS_ROWS:
            np.matmul(q[start:stop], g_t, out=s[start:stop])
        else:
            padded = np.zeros((_BLAS_ROWS, q.shape[1]), dtype=np.float32)
            padded[: stop - start] = q[start:stop]
            s[start:stop] = (padded @ g_t)[: stop - start]
    if metric == "euclidean":
        # squared distance = |q|^2 + |g|^2 - 2 q.g, clipped at 0 against round-off
        s *= -2.0
        s += q_sq[:, None]
        s += g_sq[None, :]
        np.maximum(s, 0.0, out=s)
        np.sqrt(s, out=s)
        np.negative(s, out=s)
    return s


def _iter_score_chunks(q, g, metric: str, chunk_size: int) -> Iterator[tuple[slice, np.ndarray]]:
    if metric == "euclidean":
        # distances are translation invariant; centring shrinks the norms the expanded form cancels
        centre = g.mean(axis=0, dtype=np.float64).astype(np.float32)
        q, g = q - centre, g - centre
    qp, q_sq = _prepare(q, metric, "queries")
    gp, g_sq = _prepare(g, metric, "gallery")
    chunk_size = -(-chunk_size // _BLAS_ROWS) * _BLAS_ROWS  # align chunks with the BLAS blocks
    for start in range(0, qp.shape[0], chunk_size):
        sl = slice(start, min(start + chunk_size, qp.shape[0]))
        yield sl, _score_block(qp[sl], None if q_sq is None else q_sq[sl], gp, g_sq, metric)


def similarity(queries: np.ndarray, gallery: np.ndarray, metric: str = "cosine") -> np.ndarray:
    """Full similarity matrix (larger = more similar).

    Parameters
    ----------
    queries : array ``(n_queries, d)``
    gallery : array ``(n_gallery, d)``
    metric : ``"cosine"`` or ``"euclidean"`` (negative Euclidean distance)

    Returns
    -------
    scores : float32 array ``(n_queries, n_gallery)``. This materialises the whole matrix;
        the metric functions below never do.
    """
    metric = _check_metric(metric)
    q, g = _check_pair(queries, gallery)
    out = np.empty((q.shape[0], g.shape[0]), dtype=np.float32)
    for sl, block in _iter_score_chunks(q, g, metric, default_chunk_size(g.shape[0])):
        out[sl] = block
    return out


# ---------------------------------------------------------------------------- core ranking
def _relevant_ranks_block(
    scores: np.ndarray, sorted_scores: np.ndarray, row_has_tie: np.ndarray, rows: np.ndarray, rel_cols: np.ndarray
) -> np.ndarray:
    """Exact 1-based ranks of the relevant items, in ranking order, for rows sharing one relevant set.

    ``scores`` is a ``(c, n)`` chunk, ``sorted_scores`` its rows sorted ascending,
    ``row_has_tie`` ``(c,)`` whether a row holds any two equal scores, ``rows``
    the ``k`` rows of the chunk whose relevant set is ``rel_cols`` (``R`` gallery columns).
    Returns ``(k, R)`` int64, increasing along each row.

    Full argsorts are slow (a stable argsort costs about 15x a SIMD value sort), so the
    ranks are counted instead: with ``a`` the ascending position of a relevant score ``v``
    among the relevant scores, and ties only *among relevant items*,
    ``rank = #(all > v) - #(relevant > v) + (R - a)``; the set of positions occupied by
    relevant items does not depend on their order inside a tie. Where a relevant score
    equals an irrelevant one (a mixed tie, where the index rule decides; common in float32
    at 20k+ items) :func:`_apply_index_rule` corrects the counted ranks.
    """
    k, n = rows.shape[0], scores.shape[1]
    R = rel_cols.shape[0]
    rel = np.sort(scores[np.ix_(rows, rel_cols)], axis=1)  # (k, R) ascending
    positions = np.arange(R, dtype=np.int64)
    if R > 1:
        # run boundaries of equal relevant scores: #rel <= v is (end of v's run) + 1, #rel < v its start
        ends = np.ones((k, R), dtype=bool)
        np.not_equal(rel[:, 1:], rel[:, :-1], out=ends[:, :-1])
        if ends.all():
            rel_le = np.broadcast_to(positions + 1, (k, R))
            rel_eq = np.broadcast_to(np.int64(1), (k, R))
        else:
            end_at = np.where(ends, positions, R)
            rel_le = np.minimum.accumulate(end_at[:, ::-1], axis=1)[:, ::-1] + 1
            starts = np.ones((k, R), dtype=bool)
            starts[:, 1:] = ends[:, :-1]
            start_at = np.where(starts, positions, 0)
            rel_eq = rel_le - np.maximum.accumulate(start_at, axis=1)
    else:
        rel_le = np.broadcast_to(positions + 1, (k, R))
        rel_eq = np.broadcast_to(np.int64(1), (k, R))

    all_le = np.empty((k, R), dtype=np.int64)
    for i, row in enumerate(rows):  # searchsorted has no axis argument; one call per row is cheap
        all_le[i] = sorted_scores[row].searchsorted(rel[i], side="right")

    ranks = n - all_le
    ranks += rel_le
    ranks -= positions  # (k, R), ascending-score order; relevant items first inside any tie
    # A mixed tie (more items equal to v than relevant items equal to v) needs a tie in the row.
    tied = np.flatnonzero(row_has_tie[rows])
    if tied.size:
        probe = all_le[tied] - rel_eq[tied] - 1
        mixed = (probe >= 0) & (sorted_scores[rows[tied, None], np.maximum(probe, 0)] == rel[tied])
        if mixed.any():
            run_start = np.ones(mixed.shape, dtype=bool)
            run_start[:, 1:] = rel[tied, 1:] != rel[tied, :-1]
            ev_t, ev_a = np.nonzero(mixed & run_start)  # one event per mixed tie group
            ev_row = tied[ev_t]
            _apply_index_rule(
                ranks, scores[rows[ev_row]], ev_row, rel[ev_row, ev_a],
                R - rel_le[ev_row, ev_a], rel_cols,
            )
    return ranks[:, ::-1]  # ranking order: relevant item 1, 2, ..., R


def _apply_index_rule(
    ranks: np.ndarray,
    event_scores: np.ndarray,
    event_row: np.ndarray,
    event_value: np.ndarray,
    event_slot: np.ndarray,
    rel_cols: np.ndarray,
) -> None:
    """Correct ``ranks`` in place for tie groups that mix relevant and irrelevant items.

    The counted ranks put a group's relevant items first. By the index rule the ``m``-th
    relevant member (by gallery index) of a group is pushed down by the number of
    irrelevant members with a smaller index. ``ranks`` is ``(k, R)`` in ascending-score
    order; event ``e`` is the group of value ``event_value[e]`` in row ``event_row[e]``,
    whose scores are ``event_scores[e]`` and whose relevant members take ranking-order
    slots ``event_slot[e], event_slot[e] + 1, ...``. Vectorised over all events: only the
    members of the tied groups are touched after one comparison pass per event.
    """
    n = event_scores.shape[1]
    R = ranks.shape[1]
    is_rel = np.zeros(n, dtype=bool)
    is_rel[rel_cols] = True
    ev, cols = np.nonzero(event_scores == event_value[:, None])  # members, index ascending per event
    member_rel = is_rel[cols]
    group_start = np.searchsorted(ev, np.arange(event_row.shape[0]))[ev]
    irr_before = np.cumsum(~member_rel) - ~member_rel
    irr_before -= irr_before[group_start]
    rel_before = np.cumsum(member_rel) - member_rel
    rel_before -= rel_before[group_start]
    ev, irr_before, rel_before = ev[member_rel], irr_before[member_rel], rel_before[member_rel]
    slot = event_slot[ev] + rel_before  # ranking-order slot of this relevant member
    np.add.at(ranks, (event_row[ev], R - 1 - slot), irr_before)


def _iter_relevant_ranks(scores: np.ndarray, q_codes: np.ndarray, cols_by_class: list[np.ndarray]):
    """Yield ``(row_indices, ranks (k, R))`` for each query class present in one score block."""
    sorted_scores = np.sort(scores, axis=1)
    row_has_tie = (sorted_scores[:, 1:] == sorted_scores[:, :-1]).any(axis=1)
    for c in np.unique(q_codes):
        rows = np.flatnonzero(q_codes == c)
        cols = cols_by_class[c]
        if cols.size == 0:
            continue
        yield rows, _relevant_ranks_block(scores, sorted_scores, row_has_tie, rows, cols)


def _cols_by_class(g_codes: np.ndarray, n_codes: int) -> list[np.ndarray]:
    order = np.argsort(g_codes, kind="stable")
    bounds = np.searchsorted(g_codes[order], np.arange(n_codes + 1))
    return [np.sort(order[bounds[c] : bounds[c + 1]]) for c in range(n_codes)]


def _ap_from_ranks(ranks: np.ndarray) -> np.ndarray:
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
    ql = _check_label_vector(query_labels, len(np.atleast_1d(query_labels)), "query_labels", "query_labels")
    gl = _check_label_vector(gallery_labels, len(np.atleast_1d(gallery_labels)), "gallery_labels", "gallery_labels")
    qc, gc, vocab = _encode_labels(ql, gl, ql.shape[0], gl.shape[0])
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
    metric = _check_metric(metric)
    q, g = _check_pair(queries, gallery)
    qc, gc, vocab = _encode_labels(query_labels, gallery_labels, q.shape[0], g.shape[0])
    chunk = _check_chunk_size(chunk_size, g.shape[0])
    cols = _cols_by_class(gc, len(vocab))
    ap = np.full(q.shape[0], np.nan)
    for sl, block in _iter_score_chunks(q, g, metric, chunk):
        ap_chunk = ap[sl]
        for rows, ranks in _iter_relevant_ranks(block, qc[sl], cols):
            ap_chunk[rows] = _ap_from_ranks(ranks)
    return ap


def average_precision_from_scores(scores: np.ndarray, query_labels: np.ndarray, gallery_labels: np.ndarray) -> np.ndarray:
    """Per-query AP from a precomputed ``(n_queries, n_gallery)`` score matrix (larger = more relevant).

    Same conventions as :func:`average_precision` (ties by gallery index); scores are
    cast to float32 first, as every similarity here is.
    """
    s = _check_matrix(scores, "scores")
    qc, gc, vocab = _encode_labels(query_labels, gallery_labels, s.shape[0], s.shape[1])
    cols = _cols_by_class(gc, len(vocab))
    ap = np.full(s.shape[0], np.nan)
    chunk = default_chunk_size(s.shape[1])
    for start in range(0, s.shape[0], chunk):
        sl = slice(start, min(start + chunk, s.shape[0]))
        ap_chunk = ap[sl]
        for rows, ranks in _iter_relevant_ranks(s[sl], qc[sl], cols):
            ap_chunk[rows] = _ap_from_ranks(ranks)
    return ap


def _mean_ap(ap: np.ndarray) -> float:
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
    return _mean_ap(average_precision(queries, gallery, query_labels, gallery_labels, metric, chunk_size))


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
    labels = _check_label_vector(query_labels, a.shape[0], "query_labels", "ap")
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
    xa = _check_matrix(x, "x")
    ya = _check_matrix(y, "y")
    if labels_y is None:
        lx = _check_label_vector(labels_x, xa.shape[0], "labels_x", "x")
        if ya.shape[0] != xa.shape[0]:
            raise ValueError(
                f"labels_y is needed: x has {xa.shape[0]} rows but y has {ya.shape[0]}, so labels_x cannot be shared"
            )
        ly = lx
    else:
        lx = _check_label_vector(labels_x, xa.shape[0], "labels_x", "x")
        ly = _check_label_vector(labels_y, ya.shape[0], "labels_y", "y")
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
    metric = _check_metric(metric)
    q, g = _check_pair(queries, gallery)
    qc, gc, vocab = _encode_labels(query_labels, gallery_labels, q.shape[0], g.shape[0])
    chunk = _check_chunk_size(chunk_size, g.shape[0])
    cols = _cols_by_class(gc, len(vocab))
    out = np.zeros(q.shape[0], dtype=np.int64)
    for sl, block in _iter_score_chunks(q, g, metric, chunk):
        out_chunk = out[sl]
        for rows, ranks in _iter_relevant_ranks(block, qc[sl], cols):
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
    metric = _check_metric(metric)
    n_points = _check_k(n_points, "n_points")
    if n_points < 2:
        raise ValueError(f"n_points must be at least 2, got {n_points}")
    q, g = _check_pair(queries, gallery)
    qc, gc, vocab = _encode_labels(query_labels, gallery_labels, q.shape[0], g.shape[0])
    chunk = _check_chunk_size(chunk_size, g.shape[0])
    cols = _cols_by_class(gc, len(vocab))
    levels = np.arange(n_points, dtype=np.int64)
    total = np.zeros(n_points)
    n_valid = 0
    for sl, block in _iter_score_chunks(q, g, metric, chunk):
        for rows, ranks in _iter_relevant_ranks(block, qc[sl], cols):
            R = ranks.shape[1]
            precision = np.arange(1, R + 1) / ranks
            best_from = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
            # smallest m with m / R >= level / (n_points - 1), in exact integer arithmetic
            m = np.maximum(-(-levels * R // (n_points - 1)), 1)
            total += best_from[:, m - 1].sum(axis=0)
            n_valid += rows.size
    if n_valid == 0:
        raise ValueError("no query has a relevant item in the gallery: the precision-recall curve is undefined")
    _warn_no_relevant(q.shape[0] - n_valid, q.shape[0])
    return levels / (n_points - 1), total / n_valid


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
    metric = _check_metric(metric)
    q, g = _check_pair(queries, gallery)
    if q.shape[0] != g.shape[0]:
        raise ValueError(
            f"pair_ranks needs paired rows: queries has {q.shape[0]} rows, gallery has {g.shape[0]}"
        )
    chunk = _check_chunk_size(chunk_size, g.shape[0])
    out = np.empty(q.shape[0], dtype=np.int64)
    cols = np.arange(g.shape[0])
    for sl, block in _iter_score_chunks(q, g, metric, chunk):
        own_idx = np.arange(sl.start, sl.stop)
        own = block[np.arange(block.shape[0]), own_idx][:, None]
        above = (block > own).sum(axis=1) + ((block == own) & (cols[None, :] < own_idx[:, None])).sum(axis=1)
        out[sl] = above + 1
    return out


def recall_at_k(ranks: np.ndarray, k: int) -> float:
    """Fraction of queries whose (single) relevant item is ranked within the top ``k``."""
    r = _check_ranks(ranks)
    return float((r <= _check_k(k)).mean())


def precision_at_k(ranks: np.ndarray, k: int) -> float:
    """Mean precision in the top ``k`` with one relevant item per query: ``recall_at_k(ranks, k) / k``."""
    k = _check_k(k)
    return recall_at_k(ranks, k) / k


def mrr(ranks: np.ndarray, cutoff: int | None = None) -> float:
    """Mean reciprocal rank; ranks beyond ``cutoff`` count as 0.

    ``mrr(ranks)`` is the full MRR; ``mrr(ranks, cutoff=1)`` is MRR@1 as the papers report
    it (the fraction of queries whose top-1 item is relevant).
    """
    r = _check_ranks(ranks)
    rr = 1.0 / r
    if cutoff is not None:
        rr[r > _check_k(cutoff, "cutoff")] = 0.0
    return float(rr.mean())


def median_rank(ranks: np.ndarray) -> float:
    """Median of the 1-based ranks (lower is better; 1.0 = perfect)."""
    return float(np.median(_check_ranks(ranks)))
