"""Scores and rankings shared by :mod:`crossmodal_core.metrics` and :mod:`crossmodal_core.retrieval`.

This is the one place where similarities are computed and gallery rankings are counted;
the metric formulas (AP, MRR, recall@K, PR curve) live in :mod:`~crossmodal_core.metrics`,
search and per-query analysis in :mod:`~crossmodal_core.retrieval`. Conventions (the same
everywhere):

- inputs are validated and cast to C-contiguous float32 (:func:`check_matrix`); labels are
  1-D class ids encoded over the joint query + gallery vocabulary (:func:`encode_labels`);
- similarity is ``"cosine"`` (unit rows, dot product), ``"euclidean"`` (negative distance,
  computed after centring both sets on the gallery mean) or ``"hamming"`` (minus the number
  of differing bits of the ``sign`` codes, 0 counted as +1: for ``±1`` codes of ``b`` bits
  ``d_H = (b − q·g) / 2``, exact in float32), larger = more similar;
- scores are produced ``chunk_size`` query rows at a time (:func:`iter_score_chunks`), the
  chunks aligned to :data:`BLAS_ROWS` and every matrix product of one fixed shape, so a row's
  scores are bitwise identical however the queries are chunked;
- rankings: score descending, exact ties by gallery index ascending, 1-based ranks;
  :func:`iter_relevant_ranks` counts the exact ranks of the relevant (same-label) items of
  every query of a score block without a full argsort.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

__all__ = [
    "METRICS",
    "VECTOR_METRICS",
    "DEFAULT_MEMORY_BUDGET",
    "BLAS_ROWS",
    "check_metric",
    "check_matrix",
    "check_pair",
    "check_label_vector",
    "encode_labels",
    "check_chunk_size",
    "check_k",
    "default_chunk_size",
    "similarity",
    "iter_score_chunks",
    "negated_distances_inplace",
    "iter_relevant_ranks",
    "columns_by_class",
]

#: similarity names accepted by every function here
METRICS = ("cosine", "euclidean", "hamming")
#: the similarities of real-valued embeddings (what the ANN index supports)
VECTOR_METRICS = ("cosine", "euclidean")

#: bytes of working memory a chunked computation aims for
DEFAULT_MEMORY_BUDGET = 512 * 1024**2

#: query rows per matrix product; see _score_block for why the shape is fixed
BLAS_ROWS = 64

# Bytes held per (query, gallery) cell of one chunk: the float32 scores, their sorted copy,
# the relevant block and its sorted copy, and int64 rank bookkeeping on the relevant block.
_BYTES_PER_CELL = 48


# ---------------------------------------------------------------------------- validation
def check_metric(metric: str, allowed: tuple[str, ...] = METRICS) -> str:
    if metric not in allowed:
        raise ValueError(f"metric must be one of {allowed}, got {metric!r}")
    return metric


def check_matrix(x, name: str) -> np.ndarray:
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


def check_pair(queries, gallery) -> tuple[np.ndarray, np.ndarray]:
    q = check_matrix(queries, "queries")
    g = check_matrix(gallery, "gallery")
    if q.shape[1] != g.shape[1]:
        raise ValueError(
            f"queries have {q.shape[1]} features but gallery has {g.shape[1]}; "
            "both must live in the same embedding space"
        )
    return q, g


def check_label_vector(labels, n: int, name: str, rows_of: str) -> np.ndarray:
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


def encode_labels(query_labels, gallery_labels, nq: int, ng: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate both label vectors; return int codes over their joint vocabulary + the vocabulary."""
    ql = check_label_vector(query_labels, nq, "query_labels", "queries")
    gl = check_label_vector(gallery_labels, ng, "gallery_labels", "gallery")
    try:
        vocab, codes = np.unique(np.concatenate([ql, gl]), return_inverse=True)
    except TypeError:
        raise ValueError("query_labels and gallery_labels must hold comparable class ids of one type") from None
    codes = codes.reshape(-1).astype(np.int64)
    return codes[:nq], codes[nq:], vocab


def check_chunk_size(chunk_size, n_gallery: int) -> int:
    if chunk_size is None:
        return default_chunk_size(n_gallery)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    return int(chunk_size)



def check_k(k, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"{name} must be a positive integer, got {k!r}")
    return int(k)


def default_chunk_size(n_gallery: int, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> int:
    """Number of query rows per chunk so one chunk's working set stays near ``memory_budget`` bytes."""
    return max(1, int(memory_budget // (_BYTES_PER_CELL * max(int(n_gallery), 1))))


# ---------------------------------------------------------------------------- similarity
def _prepare(x: np.ndarray, metric: str, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-row preprocessing shared by every chunk: unit rows (cosine), ``±1`` sign codes
    (hamming) or squared norms (euclidean)."""
    if metric == "hamming":
        return np.where(x >= 0, np.float32(1), np.float32(-1)), None
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
    the chunk size. Every product therefore has the same shape, ``(BLAS_ROWS, d)`` by
    ``(d, n)``, the last one zero-padded, and chunks start at multiples of ``BLAS_ROWS``:
    a row's scores are bitwise identical however the queries are chunked. (They can still
    differ in the last bit if the caller slices the *query array* at an offset that is not
    a multiple of ``BLAS_ROWS``: kernels round by position inside their tile.)
    """
    n_rows = q.shape[0]
    s = np.empty((n_rows, g.shape[0]), dtype=np.float32)
    g_t = g.T
    for start in range(0, n_rows, BLAS_ROWS):
        stop = min(start + BLAS_ROWS, n_rows)
        if stop - start == BLAS_ROWS:
            np.matmul(q[start:stop], g_t, out=s[start:stop])
        else:
            padded = np.zeros((BLAS_ROWS, q.shape[1]), dtype=np.float32)
            padded[: stop - start] = q[start:stop]
            s[start:stop] = (padded @ g_t)[: stop - start]
    if metric == "euclidean":
        negated_distances_inplace(s, q_sq, g_sq)
    elif metric == "hamming":
        # q·g = b − 2 d_H for ±1 codes: −d_H = (q·g − b) / 2, integers exactly representable
        s -= np.float32(q.shape[1])
        s *= np.float32(0.5)
    return s


def negated_distances_inplace(dots: np.ndarray, q_sq: np.ndarray, g_sq: np.ndarray) -> np.ndarray:
    """Turn a block of dot products ``q·g`` ``(nq, ng)`` into ``-‖q - g‖`` in place (higher = closer).

    Squared distance = ``|q|² + |g|² - 2 q·g``, clipped at 0 against round-off; ``q_sq`` /
    ``g_sq`` are the squared row norms ``(nq,)`` / ``(ng,)``.
    """
    dots *= -2.0
    dots += q_sq[:, None]
    dots += g_sq[None, :]
    np.maximum(dots, 0.0, out=dots)
    np.sqrt(dots, out=dots)
    np.negative(dots, out=dots)
    return dots


def iter_score_chunks(q, g, metric: str, chunk_size: int) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield ``(query slice, (rows, n_gallery) float32 scores)`` over all queries.

    ``q`` and ``g`` must already be validated (:func:`check_pair`); ``chunk_size`` is rounded
    up to a multiple of :data:`BLAS_ROWS`. A row's scores do not depend on the chunk size.
    """
    if metric == "euclidean":
        # distances are translation invariant; centring shrinks the norms the expanded form cancels
        centre = g.mean(axis=0, dtype=np.float64).astype(np.float32)
        q, g = q - centre, g - centre
    qp, q_sq = _prepare(q, metric, "queries")
    gp, g_sq = _prepare(g, metric, "gallery")
    chunk_size = -(-chunk_size // BLAS_ROWS) * BLAS_ROWS  # align chunks with the BLAS blocks
    for start in range(0, qp.shape[0], chunk_size):
        sl = slice(start, min(start + chunk_size, qp.shape[0]))
        yield sl, _score_block(qp[sl], None if q_sq is None else q_sq[sl], gp, g_sq, metric)


def similarity(queries: np.ndarray, gallery: np.ndarray, metric: str = "cosine") -> np.ndarray:
    """Full similarity matrix (larger = more similar).

    Parameters
    ----------
    queries : array ``(n_queries, d)``
    gallery : array ``(n_gallery, d)``
    metric : ``"cosine"``, ``"euclidean"`` (negative Euclidean distance) or ``"hamming"``
        (negative Hamming distance of the sign codes)

    Returns
    -------
    scores : float32 array ``(n_queries, n_gallery)``. This materialises the whole matrix;
        the metric functions below never do.
    """
    metric = check_metric(metric)
    q, g = check_pair(queries, gallery)
    out = np.empty((q.shape[0], g.shape[0]), dtype=np.float32)
    for sl, block in iter_score_chunks(q, g, metric, default_chunk_size(g.shape[0])):
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
                ranks, scores, rows, ev_row, rel[ev_row, ev_a], R - rel_le[ev_row, ev_a], rel_cols,
            )
    return ranks[:, ::-1]  # ranking order: relevant item 1, 2, ..., R


def _apply_index_rule(
    ranks: np.ndarray,
    scores: np.ndarray,
    rows: np.ndarray,
    event_row: np.ndarray,
    event_value: np.ndarray,
    event_slot: np.ndarray,
    rel_cols: np.ndarray,
) -> None:
    """Correct ``ranks`` in place for tie groups that mix relevant and irrelevant items.

    The counted ranks put a group's relevant items first. By the index rule the ``m``-th
    relevant member (by gallery index) of a group is pushed down by the number of
    irrelevant members with a smaller index. ``ranks`` is ``(k, R)`` in ascending-score
    order for the chunk rows ``rows`` of ``scores``; event ``e`` is the group of value
    ``event_value[e]`` in ``ranks`` row ``event_row[e]``, whose relevant members take
    ranking-order slots ``event_slot[e], event_slot[e] + 1, ...``.

    Work and memory are per *row*, not per event: all the tied groups of one row are found
    in one pass over that row (a range filter, then a binary search among the row's tie
    values), so a row with thousands of mixed ties (float32 scores against a 10^6 gallery)
    costs O(n log E) and O(n) memory. (Copying a gallery row per event, as this once did,
    grew as n^3 and needed 51 GiB for 13,724 ties against 10^6 items.)
    """
    n = scores.shape[1]
    R = ranks.shape[1]
    is_rel = np.zeros(n, dtype=bool)
    is_rel[rel_cols] = True
    by_row = np.argsort(event_row, kind="stable")
    bounds = np.flatnonzero(np.diff(event_row[by_row])) + 1
    for events in np.split(by_row, bounds):
        r = int(event_row[events[0]])
        row_scores = scores[rows[r]]  # a view: no copy of the gallery row
        values = event_value[events]
        order = np.argsort(values)
        sorted_values = values[order]
        candidates = np.flatnonzero((row_scores >= sorted_values[0]) & (row_scores <= sorted_values[-1]))
        cand_scores = row_scores[candidates]
        where = np.minimum(np.searchsorted(sorted_values, cand_scores), sorted_values.shape[0] - 1)
        member = sorted_values[where] == cand_scores
        cols = candidates[member]  # gallery index ascending
        group = order[where[member]]  # which of this row's events each member belongs to
        by_group = np.argsort(group, kind="stable")  # members grouped, index ascending inside
        cols, group = cols[by_group], group[by_group]
        member_rel = is_rel[cols]
        group_start = np.searchsorted(group, np.arange(events.shape[0]))[group]
        irr_before = np.cumsum(~member_rel) - ~member_rel
        irr_before -= irr_before[group_start]
        rel_before = np.cumsum(member_rel) - member_rel
        rel_before -= rel_before[group_start]
        group, irr_before, rel_before = group[member_rel], irr_before[member_rel], rel_before[member_rel]
        slot = event_slot[events][group] + rel_before  # ranking-order slot of this relevant member
        np.add.at(ranks[r], R - 1 - slot, irr_before)


def iter_relevant_ranks(scores: np.ndarray, q_codes: np.ndarray, cols_by_class: list[np.ndarray]):
    """Yield ``(row_indices, ranks (k, R))`` for each query class present in one score block.

    ``scores`` is one ``(c, n_gallery)`` block, ``q_codes`` the ``(c,)`` label codes of its
    rows, ``cols_by_class`` from :func:`columns_by_class`. ``ranks[i]`` are the exact 1-based
    ranks (ties by gallery index) of the relevant items of query ``row_indices[i]``, in
    ranking order. Queries of a class with no gallery item are not yielded.
    """
    sorted_scores = np.sort(scores, axis=1)
    row_has_tie = (sorted_scores[:, 1:] == sorted_scores[:, :-1]).any(axis=1)
    for c in np.unique(q_codes):
        rows = np.flatnonzero(q_codes == c)
        cols = cols_by_class[c]
        if cols.size == 0:
            continue
        yield rows, _relevant_ranks_block(scores, sorted_scores, row_has_tie, rows, cols)


def columns_by_class(g_codes: np.ndarray, n_codes: int) -> list[np.ndarray]:
    """Sorted gallery columns of every label code ``0..n_codes-1`` (the relevant sets)."""
    order = np.argsort(g_codes, kind="stable")
    bounds = np.searchsorted(g_codes[order], np.arange(n_codes + 1))
    return [np.sort(order[bounds[c] : bounds[c + 1]]) for c in range(n_codes)]
