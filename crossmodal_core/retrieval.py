"""Search and per-query analysis on top of :mod:`crossmodal_core.metrics`.

Pure numpy, chunked like the metrics, and with the same conventions: float32 scores,
``"cosine"`` or ``"euclidean"`` (negative distance) similarity, gallery ordered by score
descending with exact ties broken by gallery index ascending, 1-based ranks, class
relevance = equal labels, and AP with ``R`` = all relevant items in the gallery.

- :func:`top_k`: the best ``k`` gallery items of every query.
- :func:`query_report`: everything the app shows about one query (top-k items, their
  scores and relevance, the query's AP, the rank of its true pair).
- :func:`worst_queries`: the queries with the lowest AP, for error analysis.
- :func:`top1_confusion`: class of the query vs class of its top-1 item.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from crossmodal_core.metrics import (
    _BLAS_ROWS,
    _check_chunk_size,
    _check_k,
    _check_label_vector,
    _check_metric,
    _check_pair,
    _encode_labels,
    _iter_score_chunks,
)

__all__ = ["QueryReport", "top_k", "query_report", "worst_queries", "top1_confusion"]


def _top_k_block(block: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` best scores of each row, by (score desc, index asc)."""
    n = block.shape[1]
    if k >= n:
        return np.argsort(-block, axis=1, kind="stable")
    kth = np.partition(block, n - k, axis=1)[:, n - k]  # k-th largest score per row
    candidates = block >= kth[:, None]
    counts = candidates.sum(axis=1)
    out = np.empty((block.shape[0], k), dtype=np.int64)
    exact = counts == k
    if exact.any():
        rows = np.flatnonzero(exact)
        cols = np.nonzero(candidates[rows])[1].reshape(rows.size, k)  # index ascending per row
        order = np.argsort(-np.take_along_axis(block[rows], cols, axis=1), axis=1, kind="stable")
        out[rows] = np.take_along_axis(cols, order, axis=1)
    tied = np.flatnonzero(~exact)  # ties straddle the k-th place: the index rule decides who is in
    if tied.size:
        out[tied] = np.argsort(-block[tied], axis=1, kind="stable")[:, :k]
    return out


def top_k(
    queries: np.ndarray,
    gallery: np.ndarray,
    k: int,
    metric: str = "cosine",
    chunk_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most similar gallery items of every query.

    Parameters
    ----------
    queries : array ``(n_queries, d)``
    gallery : array ``(n_gallery, d)``
    k : number of items; a ``k`` beyond the gallery size returns the whole gallery ranked
    metric : ``"cosine"`` or ``"euclidean"``
    chunk_size : query rows scored at once (``None``: from the metrics memory budget)

    Returns
    -------
    indices : int64 ``(n_queries, min(k, n_gallery))``, best first (ties by index)
    scores : float32, same shape, the matching similarities (non-increasing along rows)
    """
    metric = _check_metric(metric)
    k = _check_k(k)
    q, g = _check_pair(queries, gallery)
    k = min(k, g.shape[0])
    chunk = _check_chunk_size(chunk_size, g.shape[0])
    indices = np.empty((q.shape[0], k), dtype=np.int64)
    scores = np.empty((q.shape[0], k), dtype=np.float32)
    for sl, block in _iter_score_chunks(q, g, metric, chunk):
        idx = _top_k_block(block, k)
        indices[sl] = idx
        scores[sl] = np.take_along_axis(block, idx, axis=1)
    return indices, scores


@dataclass(frozen=True)
class QueryReport:
    """What one query retrieves.

    Attributes
    ----------
    query_index : row of the query
    indices : int64 ``(k,)`` gallery rows, best first
    scores : float32 ``(k,)`` their similarities
    relevant : bool ``(k,)`` whether each is relevant (same label, or the true pair when
        no labels are given)
    ap : average precision of the query over the whole gallery (``nan`` if nothing is relevant)
    n_relevant : ``R``, relevant items in the whole gallery
    first_relevant_rank : 1-based rank of the best relevant item (0 if none)
    pair_rank : 1-based rank of ``gallery[query_index]`` when the sets are paired, else ``None``
    query_label : the query's label, or ``None``
    """

    query_index: int
    indices: np.ndarray
    scores: np.ndarray
    relevant: np.ndarray
    ap: float
    n_relevant: int
    first_relevant_rank: int
    pair_rank: int | None
    query_label: object | None

    def as_dict(self) -> dict:
        """Plain-Python version (lists instead of arrays), ready for JSON or a table."""
        d = asdict(self)
        for key in ("indices", "scores", "relevant"):
            d[key] = np.asarray(d[key]).tolist()
        return d


def query_report(
    query_index: int,
    queries: np.ndarray,
    gallery: np.ndarray,
    query_labels: np.ndarray | None = None,
    gallery_labels: np.ndarray | None = None,
    k: int = 10,
    metric: str = "cosine",
    paired: bool | None = None,
) -> QueryReport:
    """Retrieval result and scores of one query (see :class:`QueryReport`).

    Parameters
    ----------
    query_index : row of ``queries`` to analyse
    queries, gallery : arrays ``(n_queries, d)``, ``(n_gallery, d)``
    query_labels, gallery_labels : class ids, or both ``None`` for instance-level retrieval
        (then the true pair is the only relevant item and AP = 1 / pair rank)
    k : number of top items to return
    metric : ``"cosine"`` or ``"euclidean"``
    paired : whether row ``i`` of both sets is a true pair; ``None`` = when their row
        counts are equal
    """
    metric = _check_metric(metric)
    k = _check_k(k)
    q, g = _check_pair(queries, gallery)
    if isinstance(query_index, bool) or not isinstance(query_index, (int, np.integer)):
        raise ValueError(f"query_index must be an integer, got {query_index!r}")
    if not 0 <= query_index < q.shape[0]:
        raise ValueError(f"query_index {query_index} is out of range for {q.shape[0]} queries")
    query_index = int(query_index)
    if paired is None:
        paired = q.shape[0] == g.shape[0]
    elif paired and q.shape[0] != g.shape[0]:
        raise ValueError(f"paired=True needs equal row counts: queries has {q.shape[0]}, gallery has {g.shape[0]}")
    if (query_labels is None) != (gallery_labels is None):
        raise ValueError("give both query_labels and gallery_labels, or neither")

    # Score the aligned block of rows holding the query, exactly as a full evaluation does
    # (same preparation, same product shape), so scores, ties and AP match it bit for bit.
    block_start = query_index - query_index % _BLAS_ROWS
    ((_, block),) = _iter_score_chunks(q[block_start : block_start + _BLAS_ROWS], g, metric, _BLAS_ROWS)
    row = block[query_index - block_start]
    n = g.shape[0]
    order = np.argsort(-row, kind="stable")
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(1, n + 1)

    pair_rank = int(position[query_index]) if paired else None
    if query_labels is None:
        if not paired:
            raise ValueError("without labels the true pair is the only relevant item, so the sets must be paired")
        is_relevant = np.zeros(n, dtype=bool)
        is_relevant[query_index] = True
        query_label = None
    else:
        qc, gc, vocab = _encode_labels(query_labels, gallery_labels, q.shape[0], n)
        is_relevant = gc == qc[query_index]
        query_label = vocab[qc[query_index]]
        query_label = query_label.item() if hasattr(query_label, "item") else query_label

    relevant_in_order = is_relevant[order]
    n_relevant = int(is_relevant.sum())
    if n_relevant:
        hit_ranks = np.flatnonzero(relevant_in_order) + 1
        ap = float((np.arange(1, n_relevant + 1) / hit_ranks).sum() / n_relevant)
        first = int(hit_ranks[0])
    else:
        ap, first = float("nan"), 0
    top = order[: min(k, n)]
    return QueryReport(
        query_index=query_index,
        indices=top,
        scores=row[top],
        relevant=relevant_in_order[: top.size],
        ap=ap,
        n_relevant=n_relevant,
        first_relevant_rank=first,
        pair_rank=pair_rank,
        query_label=query_label,
    )


def worst_queries(ap: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` queries with the lowest AP, worst first (ties by index; ``nan`` skipped).

    Returns fewer than ``n`` indices when fewer queries have a defined AP.
    """
    a = np.asarray(ap, dtype=np.float64)
    if a.ndim != 1 or a.shape[0] == 0:
        raise ValueError(f"ap must be a non-empty 1-D array, got shape {a.shape}")
    n = _check_k(n, "n")
    valid = np.flatnonzero(~np.isnan(a))
    order = valid[np.argsort(a[valid], kind="stable")]
    return order[:n].astype(np.int64)


def top1_confusion(
    queries: np.ndarray,
    gallery: np.ndarray,
    query_labels: np.ndarray,
    gallery_labels: np.ndarray,
    n_classes: int,
    metric: str = "cosine",
    chunk_size: int | None = None,
) -> np.ndarray:
    """Counts of (query class, class of its top-1 gallery item).

    Labels must be integers in ``0..n_classes-1``. Returns int64 ``(n_classes, n_classes)``:
    row = query class, column = retrieved class; the diagonal over the row sums is the
    per-class precision at 1.
    """
    metric = _check_metric(metric)
    n_classes = _check_k(n_classes, "n_classes")
    q, g = _check_pair(queries, gallery)
    ql = _check_label_vector(query_labels, q.shape[0], "query_labels", "queries")
    gl = _check_label_vector(gallery_labels, g.shape[0], "gallery_labels", "gallery")
    for name, lab in (("query_labels", ql), ("gallery_labels", gl)):
        if not np.issubdtype(lab.dtype, np.integer) and not (
            lab.dtype.kind == "f" and np.array_equal(lab, np.round(lab))
        ):
            raise ValueError(f"{name} must be integer class indices for a confusion matrix")
        if lab.min() < 0 or lab.max() >= n_classes:
            raise ValueError(f"{name} must lie in 0..{n_classes - 1}, got values {lab.min()}..{lab.max()}")
    ql, gl = ql.astype(np.int64), gl.astype(np.int64)
    chunk = _check_chunk_size(chunk_size, g.shape[0])
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    for sl, block in _iter_score_chunks(q, g, metric, chunk):
        best = np.argmax(block, axis=1)  # first maximum = lowest index among ties, as the rule says
        np.add.at(counts, (ql[sl], gl[best]), 1)
    return counts
