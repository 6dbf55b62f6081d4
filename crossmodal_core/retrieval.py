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
- :class:`ScoredDirection`: one direction scored once; AP, MAP, first relevant ranks /
  MRR@1, the PR curve, top-1 confusion, query reports and worst queries all read the same
  scores and one ranking pass (bitwise the answers of the separate functions). It keeps the
  full score matrix only up to :data:`KEEP_MATRIX_BYTES` (64 MiB) and works in chunks above.

Scores come from :mod:`crossmodal_core.scoring` (the one scoring module) and the formulas
from :mod:`crossmodal_core.metrics`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from crossmodal_core import metrics
from crossmodal_core.index import (  # search at scale: exact blocked top-k, FAISS chosen by measured recall
    ExactIndex, FaissIndex, IndexReport, SearchIndex, build_index, index_path, load_index)
from crossmodal_core.scoring import (
    BLAS_ROWS,
    check_chunk_size,
    check_k,
    check_label_vector,
    check_metric,
    check_pair,
    columns_by_class,
    encode_labels,
    iter_relevant_ranks,
    iter_score_chunks,
)

__all__ = ["ScoredDirection", "KEEP_MATRIX_BYTES", "QueryReport", "top_k", "query_report", "worst_queries",
           "top1_confusion", "build_index", "load_index", "index_path", "SearchIndex", "ExactIndex", "FaissIndex",
           "IndexReport"]


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
    metric = check_metric(metric)
    k = check_k(k)
    q, g = check_pair(queries, gallery)
    k = min(k, g.shape[0])
    chunk = check_chunk_size(chunk_size, g.shape[0])
    indices = np.empty((q.shape[0], k), dtype=np.int64)
    scores = np.empty((q.shape[0], k), dtype=np.float32)
    for sl, block in iter_score_chunks(q, g, metric, chunk):
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
    metric = check_metric(metric)
    k = check_k(k)
    q, g = check_pair(queries, gallery)
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
    block_start = query_index - query_index % BLAS_ROWS
    ((_, block),) = iter_score_chunks(q[block_start : block_start + BLAS_ROWS], g, metric, BLAS_ROWS)
    if query_labels is None:
        if not paired:
            raise ValueError("without labels the true pair is the only relevant item, so the sets must be paired")
        is_relevant, query_label = None, None
    else:
        qc, gc, vocab = encode_labels(query_labels, gallery_labels, q.shape[0], g.shape[0])
        is_relevant = gc == qc[query_index]
        query_label = vocab[qc[query_index]]
    return _report_from_row(query_index, block[query_index - block_start], is_relevant, query_label, k, paired)


def _report_from_row(query_index: int, row: np.ndarray, is_relevant: np.ndarray | None, query_label,
                     k: int, paired: bool) -> QueryReport:
    """The :class:`QueryReport` of one query from its ``(n_gallery,)`` scores.

    ``is_relevant`` is the boolean relevance of every gallery item (``None``: only the true
    pair ``query_index`` is relevant).
    """
    n = row.shape[0]
    order = np.argsort(-row, kind="stable")
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(1, n + 1)

    pair_rank = int(position[query_index]) if paired else None
    if is_relevant is None:
        is_relevant = np.zeros(n, dtype=bool)
        is_relevant[query_index] = True
    if query_label is not None and hasattr(query_label, "item"):
        query_label = query_label.item()

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
    n = check_k(n, "n")
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
    metric = check_metric(metric)
    n_classes = check_k(n_classes, "n_classes")
    q, g = check_pair(queries, gallery)
    ql, gl = _confusion_labels(query_labels, gallery_labels, q.shape[0], g.shape[0], n_classes)
    chunk = check_chunk_size(chunk_size, g.shape[0])
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    for sl, block in iter_score_chunks(q, g, metric, chunk):
        best = np.argmax(block, axis=1)  # first maximum = lowest index among ties, as the rule says
        np.add.at(counts, (ql[sl], gl[best]), 1)
    return counts


def _confusion_labels(query_labels, gallery_labels, nq: int, ng: int, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Both label vectors as int64 class indices in ``0..n_classes-1`` (else ``ValueError``)."""
    ql = check_label_vector(query_labels, nq, "query_labels", "queries")
    gl = check_label_vector(gallery_labels, ng, "gallery_labels", "gallery")
    for name, lab in (("query_labels", ql), ("gallery_labels", gl)):
        if not np.issubdtype(lab.dtype, np.integer) and not (
            lab.dtype.kind == "f" and np.array_equal(lab, np.round(lab))
        ):
            raise ValueError(f"{name} must be integer class indices for a confusion matrix")
        if lab.min() < 0 or lab.max() >= n_classes:
            raise ValueError(f"{name} must lie in 0..{n_classes - 1}, got values {lab.min()}..{lab.max()}")
    return ql.astype(np.int64), gl.astype(np.int64)



# ====================================================================== score once, read many
#: a :class:`ScoredDirection` keeps its whole float32 score matrix when it is at most this
#: many bytes (64 MiB: up to about 4,096 x 4,096); above it, it keeps only per-query results
#: and re-scores in chunks (at most :data:`~crossmodal_core.scoring.DEFAULT_MEMORY_BUDGET`
#: of working memory) for the rare question those do not answer
KEEP_MATRIX_BYTES = 64 * 1024**2


class ScoredDirection:
    """One retrieval direction (queries -> gallery) scored once, with every per-query result.

    The scores are computed once, chunked exactly as the functions of
    :mod:`crossmodal_core.metrics` chunk them, and one ranking pass over them yields the
    per-query AP, the rank of the first relevant item, the interpolated precision at
    ``pr_points`` recall levels and the top-1 item (the ranks of the true pairs, when asked
    for, are counted from the same scores).
    Every answer is therefore bitwise identical to the separate function
    (:func:`~crossmodal_core.metrics.average_precision`, ``mean_average_precision``,
    ``first_relevant_ranks``, ``precision_recall_curve``, :func:`top1_confusion`,
    :func:`query_report`, :func:`worst_queries`) on the same arrays, at a third to a quarter
    of the cost when several are asked.

    Memory: the full ``(n_queries, n_gallery)`` float32 matrix is kept only when it takes at
    most ``keep_matrix_bytes`` (default :data:`KEEP_MATRIX_BYTES`); then ``query_report``
    reads its row and a precision-recall curve at another ``n_points`` re-ranks it without
    re-scoring. Above the threshold the object holds ``O(n_queries)`` numbers; a query report
    scores the query's 64-row block again (as :func:`query_report` does) and a curve at another
    ``n_points`` costs one more chunked pass. The ranking pass runs on first use.

    Parameters
    ----------
    queries, gallery : arrays ``(n_queries, d)``, ``(n_gallery, d)``
    query_labels, gallery_labels : class ids (relevant = same label), or both ``None`` for
        instance-level retrieval (the sets must be paired; the true pair is the only relevant item)
    metric : ``"cosine"`` or ``"euclidean"``
    pr_points : recall levels of the curve computed in the ranking pass (``None``: none; a
        curve asked for later costs its own ranking pass)
    paired : whether row ``i`` of both sets is a true pair (``None``: when the row counts match)
    chunk_size : query rows scored at once (``None``: from the memory budget)
    keep_matrix_bytes : see Memory above
    """

    def __init__(self, queries, gallery, query_labels=None, gallery_labels=None, metric: str = "cosine",
                 pr_points: int = 11, paired: bool | None = None, chunk_size: int | None = None,
                 keep_matrix_bytes: int = KEEP_MATRIX_BYTES):
        self.metric = check_metric(metric)
        self.queries, self.gallery = check_pair(queries, gallery)
        nq, ng = self.queries.shape[0], self.gallery.shape[0]
        if paired is None:
            paired = nq == ng
        elif paired and nq != ng:
            raise ValueError(f"paired=True needs equal row counts: queries has {nq}, gallery has {ng}")
        self.paired = bool(paired)
        if (query_labels is None) != (gallery_labels is None):
            raise ValueError("give both query_labels and gallery_labels, or neither")
        self.has_labels = query_labels is not None
        if self.has_labels:
            self._ql = check_label_vector(query_labels, nq, "query_labels", "queries")
            self._gl = check_label_vector(gallery_labels, ng, "gallery_labels", "gallery")
            self._qc, self._gc, self._vocab = encode_labels(self._ql, self._gl, nq, ng)
        else:
            if not self.paired:
                raise ValueError("without labels the true pair is the only relevant item, so the sets must be paired")
            self._qc = self._gc = np.arange(nq, dtype=np.int64)
            self._vocab = None
        self.pr_points = None if pr_points is None else self._check_points(pr_points)
        self.chunk_size = check_chunk_size(chunk_size, ng)
        self.keeps_matrix = nq * ng * 4 <= int(keep_matrix_bytes)
        self._matrix: np.ndarray | None = None
        self._pair: np.ndarray | None = None
        self._done = False

    # -------------------------------------------------------------- internals
    @staticmethod
    def _check_points(n_points) -> int:
        n_points = check_k(n_points, "n_points")
        if n_points < 2:
            raise ValueError(f"n_points must be at least 2, got {n_points}")
        return n_points

    @property
    def shape(self) -> tuple[int, int]:
        return self.queries.shape[0], self.gallery.shape[0]

    def _score_chunks(self):
        """``(slice, block)`` over all queries: from the kept matrix, or scored afresh."""
        if self._matrix is not None:
            step = -(-self.chunk_size // BLAS_ROWS) * BLAS_ROWS
            for start in range(0, self._matrix.shape[0], step):
                sl = slice(start, min(start + step, self._matrix.shape[0]))
                yield sl, self._matrix[sl]
            return
        if self.keeps_matrix:
            self._matrix = np.empty(self.shape, dtype=np.float32)
        for sl, block in iter_score_chunks(self.queries, self.gallery, self.metric, self.chunk_size):
            if self._matrix is not None:
                self._matrix[sl] = block
            yield sl, block

    def _ensure(self) -> None:
        """The one ranking pass (scores computed here unless a kept matrix has them)."""
        if self._done:
            return
        nq, ng = self.shape
        cols = columns_by_class(self._gc, ng if self._vocab is None else len(self._vocab))
        ap = np.full(nq, np.nan)
        first = np.zeros(nq, dtype=np.int64)
        top1 = np.empty(nq, dtype=np.int64)
        total, n_valid = np.zeros(self.pr_points or 0), 0
        for sl, block in self._score_chunks():
            top1[sl] = np.argmax(block, axis=1)  # first maximum = lowest index among ties
            ap_chunk, first_chunk = ap[sl], first[sl]
            for rows, ranks in iter_relevant_ranks(block, self._qc[sl], cols):
                ap_chunk[rows] = metrics.ap_from_ranks(ranks)
                first_chunk[rows] = ranks[:, 0]
                if self.pr_points:
                    total += metrics.interpolated_precision(ranks, self.pr_points).sum(axis=0)
                n_valid += rows.size
        self._ap, self._first, self._top1 = ap, first, top1
        self._pr_total, self._pr_valid = total, n_valid
        self._done = True

    # -------------------------------------------------------------- answers
    def scores(self) -> np.ndarray:
        """The full float32 score matrix (kept when small; else materialised on this call)."""
        if self._matrix is None:
            if not self.keeps_matrix:
                out = np.empty(self.shape, dtype=np.float32)
                for sl, block in iter_score_chunks(self.queries, self.gallery, self.metric, self.chunk_size):
                    out[sl] = block
                return out
            for _ in self._score_chunks():
                pass
        return self._matrix

    def average_precision(self) -> np.ndarray:
        """Per-query AP ``(n_queries,)`` (``nan`` without a relevant item), as
        :func:`crossmodal_core.metrics.average_precision`."""
        self._ensure()
        return self._ap.copy()

    def mean_average_precision(self) -> float:
        """MAP over queries with a relevant item (warns about the others), as
        :func:`crossmodal_core.metrics.mean_average_precision`."""
        self._ensure()
        return metrics.mean_ap(self._ap)

    def first_relevant_ranks(self) -> np.ndarray:
        """1-based rank of each query's best relevant item (0 if none), as
        :func:`crossmodal_core.metrics.first_relevant_ranks`."""
        self._ensure()
        return self._first.copy()

    def mrr_at_1(self) -> float:
        """Class-level MRR@1 (share of queries, among those with a relevant item, whose top-1
        item is relevant); ``nan`` when no query has one."""
        first = self.first_relevant_ranks()
        first = first[first > 0]
        return float(metrics.mrr(first, cutoff=1)) if len(first) else float("nan")

    def pair_ranks(self) -> np.ndarray:
        """1-based rank of the true pair of every query (paired sets only), as
        :func:`crossmodal_core.metrics.pair_ranks`."""
        if not self.paired:
            raise ValueError("pair ranks need paired sets (row i of both is a true pair)")
        if self._pair is None:
            pair = np.empty(self.shape[0], dtype=np.int64)
            gallery_cols = np.arange(self.shape[1])
            for sl, block in self._score_chunks():  # as metrics.pair_ranks
                own_idx = np.arange(sl.start, sl.stop)
                own = block[np.arange(block.shape[0]), own_idx][:, None]
                pair[sl] = 1 + (block > own).sum(axis=1) + (
                    (block == own) & (gallery_cols[None, :] < own_idx[:, None])).sum(axis=1)
            self._pair = pair
        return self._pair.copy()

    def precision_recall_curve(self, n_points: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(recall levels, mean interpolated precision)``, as
        :func:`crossmodal_core.metrics.precision_recall_curve` (``None``: ``pr_points``)."""
        if n_points is None and self.pr_points is None:
            raise ValueError("give n_points: this ScoredDirection was built with pr_points=None")
        n_points = self.pr_points if n_points is None else self._check_points(n_points)
        nq = self.shape[0]
        if n_points == self.pr_points:
            self._ensure()
            return metrics.curve_from_sums(self._pr_total.copy(), self._pr_valid, nq)
        cols = columns_by_class(self._gc, self.shape[1] if self._vocab is None else len(self._vocab))
        total, n_valid = np.zeros(n_points), 0
        for sl, block in self._score_chunks():
            for rows, ranks in iter_relevant_ranks(block, self._qc[sl], cols):
                total += metrics.interpolated_precision(ranks, n_points).sum(axis=0)
                n_valid += rows.size
        return metrics.curve_from_sums(total, n_valid, nq)

    @property
    def classes(self) -> np.ndarray | None:
        """The sorted class ids present in the query or gallery labels (``None`` without labels):
        the rows / columns of ``top1_confusion()``."""
        return None if self._vocab is None else self._vocab.copy()

    def top1_confusion(self, n_classes: int | None = None) -> np.ndarray:
        """Counts of (query class, class of its top-1 item).

        ``n_classes`` given: labels must be integer class indices ``0..n_classes-1`` and the
        result is ``(n_classes, n_classes)``, as :func:`top1_confusion`. ``None``: over the
        classes present (:attr:`classes`, any hashable ids), ``(len(classes), len(classes))``,
        i.e. :func:`top1_confusion` of the label codes.
        """
        if not self.has_labels:
            raise ValueError("a confusion matrix needs class labels")
        if n_classes is None:
            ql, gl, n_classes = self._qc, self._gc, len(self._vocab)
        else:
            n_classes = check_k(n_classes, "n_classes")
            ql, gl = _confusion_labels(self._ql, self._gl, *self.shape, n_classes)
        self._ensure()
        counts = np.zeros((n_classes, n_classes), dtype=np.int64)
        np.add.at(counts, (ql, gl[self._top1]), 1)
        return counts

    def query_report(self, query_index: int, k: int = 10) -> QueryReport:
        """What query ``query_index`` retrieves, as :func:`query_report` on the same arrays."""
        k = check_k(k)
        nq = self.shape[0]
        if isinstance(query_index, bool) or not isinstance(query_index, (int, np.integer)):
            raise ValueError(f"query_index must be an integer, got {query_index!r}")
        if not 0 <= query_index < nq:
            raise ValueError(f"query_index {query_index} is out of range for {nq} queries")
        i = int(query_index)
        if self._matrix is None and self.keeps_matrix:
            self._ensure()  # the one pass keeps the matrix: later reports and answers reuse it
        if self._matrix is not None:
            row = self._matrix[i]
        else:
            start = i - i % BLAS_ROWS
            ((_, block),) = iter_score_chunks(self.queries[start : start + BLAS_ROWS], self.gallery,
                                              self.metric, BLAS_ROWS)
            row = block[i - start]
        if self.has_labels:
            return _report_from_row(i, row, self._gc == self._qc[i], self._vocab[self._qc[i]], k, self.paired)
        return _report_from_row(i, row, None, None, k, self.paired)

    def worst_queries(self, n: int) -> np.ndarray:
        """The ``n`` queries with the lowest AP, worst first, as :func:`worst_queries`."""
        return worst_queries(self.average_precision(), n)
