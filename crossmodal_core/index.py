"""Top-k search of query embeddings against a large gallery: exact, or FAISS with measured recall.

:func:`build_index` is the entry point; it returns a :class:`SearchIndex` whose
:meth:`~SearchIndex.search` gives the ``k`` best gallery items of every query, and whose
:attr:`~SearchIndex.report` (an :class:`IndexReport`) says what was built and what it was
measured to do.

- :class:`ExactIndex`: blocked float32 matrix products with a running top-k merge; the exact
  answer, bounded memory, faster than a plain ``q @ g.T`` + ``argpartition`` (it selects on
  group maxima of each score block, so only about ``k * GROUP_ROWS`` scores per query and
  block are ever sorted).
- :class:`FaissIndex`: ``faiss.IndexHNSWFlat`` (``M``, ``efConstruction``, ``efSearch``) or
  ``faiss.IndexIVFFlat`` (``nlist``, ``nprobe``). Its search parameters are **chosen by
  measured recall**: :func:`build_index` measures recall@k against exact search on a sample of
  queries and raises ``efSearch`` / ``nprobe`` until the target is met; when it cannot be met
  it falls back to :class:`ExactIndex` with a ``UserWarning`` giving the recall reached.
  Approximate indexes are never trusted blindly: on isotropic high-dimensional data HNSW and
  IVF recall collapses (0.45 at ``efSearch`` 64 on isotropic 128-d, 10^6 rows), while on the
  clustered, low-rank embeddings our models produce it is near 1.

Conventions (the same as :mod:`crossmodal_core.metrics` and :mod:`crossmodal_core.retrieval`)
-----------------------------------------------------------------------------------------
Shapes
    ``gallery`` is ``(n, d)``, ``queries`` ``(n_queries, d)``; both are cast to C-contiguous
    float32. Results are ``indices`` int64 ``(n_queries, k)`` (gallery rows, best first) and
    ``scores`` float32 ``(n_queries, k)``, non-increasing along each row.
Similarity
    ``"cosine"`` (default): the inner product of L2-normalised rows (a zero row is an error).
    ``"euclidean"``: the *negative* Euclidean distance, computed after centring both sets on
    the gallery mean, so that larger always means more similar.
Ties
    Items with exactly equal float32 scores are ordered by gallery index, ascending: the
    order a stable sort of ``-score`` gives. Exact search applies the rule to the whole
    gallery; a FAISS search applies it to the candidates FAISS returns.
Exact reranking
    ``FaissIndex.search(..., rerank=True)`` (the default) takes ``k * rerank_factor``
    candidates from FAISS and re-scores them exactly in float32 from the stored gallery, so
    every returned score is the exact score of that item (equal to :class:`ExactIndex`'s up
    to float32 round-off of the dot product, about ``d * 2**-24``) and the order follows the
    tie rule. Queries for which FAISS returns fewer than ``k`` valid candidates (IVF with a
    small ``nprobe``) are answered by exact search.
Recall
    recall@k of a query = ``|approximate top-k & exact top-k| / k``, averaged over queries.
    It is measured at build time on ``sample_queries`` if given (give real queries of the
    other modality when you have them: that is the distribution the index will serve), else
    on ``n_sample`` gallery rows perturbed with Gaussian noise of per-dimension standard
    deviation ``perturbation`` (0.5) times the gallery's; on our synthetic C-CCA-like and
    low-rank embeddings that sample is as hard as or harder than independent queries. A
    setting is accepted when the sample recall minus twice its standard error reaches the
    target (so ``target_recall=1.0`` needs every sample query perfect). The recall holds
    for that distribution, that ``k`` and that rerank setting; :attr:`IndexReport.recall`
    records it.
``kind="auto"``
    Exact below :data:`AUTO_EXACT_BELOW` gallery rows (50,000: there exact search takes
    about a millisecond per query on one core and an approximate index gains little);
    above it, HNSW and IVF are both built and tuned, and the one with more queries per
    second *on the sample* at the target recall is kept; if neither meets it, exact.
Threads
    NumPy's BLAS and FAISS's OpenMP pools are used as configured;
    ``build_index(threads=N)`` sets FAISS's (``faiss.omp_set_num_threads``); use
    :func:`crossmodal_core.runtime.limit_threads` for BLAS. ``FaissIndex.set_params``
    changes shared state: do not call it while another thread searches.
Persistence
    :meth:`SearchIndex.save` writes a data file (``faiss.write_index`` for FAISS, a plain
    ``.npy`` of the prepared gallery for exact) and a JSON sidecar ``<file>.json`` with the
    format name and version, kind, metric, gallery shape, SHA-256 digests of the prepared
    gallery and of the data file, and the report; both go through
    :func:`crossmodal_core.store.atomic_path` (temporary file, fsync, rename), sidecar last
    (a crash between the two leaves a data file whose digest the old sidecar refuses).
    :func:`load_index` checks the sidecar and the digests before it builds anything and raises
    ``ValueError`` naming the file on any mismatch; nothing is ever unpickled. Indexes live
    beside the model they index, in the model's folder of the store: :func:`index_path`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from crossmodal_core.scoring import VECTOR_METRICS, check_matrix, check_metric, negated_distances_inplace

__all__ = [
    "AUTO_EXACT_BELOW",
    "FORMAT",
    "FORMAT_VERSION",
    "KINDS",
    "IndexReport",
    "SearchIndex",
    "ExactIndex",
    "FaissIndex",
    "build_index",
    "load_index",
    "index_path",
    "recall_at_k",
]

#: ``kind="auto"`` uses exact search below this many gallery rows
AUTO_EXACT_BELOW = 50_000
#: ``format`` and ``format_version`` of the sidecar
FORMAT = "crossmodal-index"
FORMAT_VERSION = 1
#: what ``build_index(kind=...)`` accepts
KINDS = ("auto", "exact", "hnsw", "ivf")

#: gallery rows per scored block of exact search (a multiple of GROUP_ROWS)
GALLERY_BLOCK = 16384
#: query rows per scored block of exact search
QUERY_BLOCK = 512
#: gallery rows whose maximum is taken together when pruning a block (see _block_candidates)
GROUP_ROWS = 32


# ---------------------------------------------------------------------------- validation
def _check_int(value, name: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_k(k, n: int) -> int:
    k = _check_int(k, "k")
    if k > n:
        raise ValueError(f"k={k} exceeds the gallery size {n}")
    return k


def _unit_rows(x: np.ndarray, name: str) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1)
    if (norms == 0).any():
        bad = int(np.flatnonzero(norms == 0)[0])
        raise ValueError(f"{name} row {bad} is all zeros: its cosine similarity is undefined")
    return x / norms[:, None]


def _per_query_recall(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    found, truth = np.asarray(found), np.asarray(truth)
    if found.shape != truth.shape or found.ndim != 2:
        raise ValueError(f"found {found.shape} and truth {truth.shape} must be equal 2-D shapes")
    hits = np.empty(truth.shape[0])
    for s in range(0, truth.shape[0], 4096):  # (b, k, k) comparisons; rows of truth are distinct items
        hits[s:s + 4096] = (found[s:s + 4096, :, None] == truth[s:s + 4096, None, :]).any(axis=1).sum(axis=1)
    return hits / truth.shape[1]


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean over queries of ``|found_i & truth_i| / k``.

    Parameters
    ----------
    found, truth : int ``(n_queries, k)`` gallery indices (``-1`` in ``found`` = no item)
    """
    return float(_per_query_recall(found, truth).mean())


# ---------------------------------------------------------------------------- report
@dataclass
class IndexReport:
    """What :func:`build_index` built and measured (JSON-serialisable with ``as_dict``).

    Attributes
    ----------
    kind : ``"exact"``, ``"hnsw"`` or ``"ivf"`` (what was kept)
    requested : the ``kind`` asked for (``"auto"`` etc.)
    metric : ``"cosine"`` or ``"euclidean"``
    n, d : gallery rows and dimension
    k : the ``k`` recall was measured at (``None`` for an exact index nobody measured)
    target_recall : the recall@k asked for (``None``: not asked)
    recall : recall@k measured on the sample with the chosen parameters (1.0 for exact)
    recall_se : its standard error over the sample queries; a setting is accepted when
        ``recall - 2 * recall_se >= target_recall`` (so a noisy pass just at the target is not)
    params : FAISS parameters (``M``, ``efConstruction``, ``efSearch`` / ``nlist``, ``nprobe``)
    rerank, rerank_factor : whether the recall was measured with exact reranking of
        ``k * rerank_factor`` candidates (:meth:`FaissIndex.search`'s default)
    build_seconds : wall seconds to build the kept index (training + adding, no tuning)
    tune_seconds : wall seconds spent measuring recall (all kinds and settings tried)
    queries_per_second : search speed on the sample with the chosen parameters
    index_bytes : memory held by the index, bytes: the FAISS structure (vectors + graph links,
        or lists + centroids) plus the float32 gallery copy kept for exact reranking
    rss_delta_bytes : growth of the process's resident memory while building, bytes
    sample : how the recall sample was made
    n_sample : number of sample queries
    seed : the seed of the sample and of FAISS's training
    tried : every setting measured: ``{"kind", "params", "recall", "queries_per_second"}``
    fallback : why the result is exact although an approximate index was asked for, or ``None``
    reason : one line saying why this kind was kept
    """

    kind: str
    requested: str
    metric: str
    n: int
    d: int
    k: int | None = None
    target_recall: float | None = None
    recall: float | None = None
    recall_se: float | None = None
    params: dict = field(default_factory=dict)
    rerank: bool = False
    rerank_factor: int = 1
    build_seconds: float = 0.0
    tune_seconds: float = 0.0
    queries_per_second: float | None = None
    index_bytes: int = 0
    rss_delta_bytes: int = 0
    sample: str = ""
    n_sample: int = 0
    seed: int = 0
    tried: list = field(default_factory=list)
    fallback: str | None = None
    reason: str = ""

    def as_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, d: dict, source: str = "report") -> "IndexReport":
        if not isinstance(d, dict):
            raise ValueError(f"{source}: report must be a JSON object")
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"{source}: unknown report fields {sorted(unknown)}")
        try:
            return cls(**d)
        except TypeError as exc:
            raise ValueError(f"{source}: bad report ({exc})") from None


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


# ---------------------------------------------------------------------------- exact top-k core
def _merge(best_s, best_i, rows, cols, vals, k):
    """Keep the ``k`` best of the current ``(b, k)`` best and new flat candidates, per row.

    Order: score descending, gallery index ascending. Every row has ``k`` current entries
    (placeholders score ``-inf``), so every row keeps exactly ``k``.
    """
    b = best_s.shape[0]
    r = np.concatenate([np.repeat(np.arange(b), k), rows])
    v = np.concatenate([best_s.ravel(), vals])
    c = np.concatenate([best_i.ravel(), cols])
    order = np.lexsort((c, -v, r))
    r, v, c = r[order], v[order], c[order]
    start = np.searchsorted(r, np.arange(b))
    keep = (np.arange(r.size) - start[r]) < k
    return v[keep].reshape(b, k), c[keep].reshape(b, k)


def _block_candidates(s: np.ndarray, thr_run: np.ndarray, k: int):
    """Candidates of one ``(b, w)`` score block that may enter the top ``k``.

    Returns flat ``(rows, cols, values)`` of every score ``>= max(thr_run, kth)`` where
    ``kth`` is a lower bound of the row's ``k``-th largest score in the block. When the block
    has at least ``4 k`` groups of :data:`GROUP_ROWS` columns, it is pruned on group maxima:
    column ``j < L * GROUP_ROWS`` belongs to group ``j % L`` (``L = w // GROUP_ROWS``); the ``k``
    largest group maxima are ``k`` distinct scores, so the ``k``-th of them bounds the row's
    ``k``-th score from below, and every score above that bound lies in a group whose maximum
    is above it. Only those groups (about ``k``) are read again.
    """
    b, w = s.shape
    L = w // GROUP_ROWS
    if L >= 4 * k:
        wf = L * GROUP_ROWS  # columns wf.. (fewer than GROUP_ROWS) are checked one by one
        gmax = s[:, :wf].reshape(b, GROUP_ROWS, L).max(axis=1)  # (b, L), a vertical max: SIMD-friendly
        kth = np.partition(gmax, L - k, axis=1)[:, L - k]
        thr = np.maximum(kth, thr_run)
        r, gcol = np.nonzero(gmax >= thr[:, None])
        cols = gcol[:, None] + L * np.arange(GROUP_ROWS)  # (m, GROUP_ROWS)
        vals = s[r[:, None], cols]
        keep = vals >= thr[r][:, None]
        rows, cols, vals = np.broadcast_to(r[:, None], cols.shape)[keep], cols[keep], vals[keep]
        if wf < w:
            tr, tc = np.nonzero(s[:, wf:] >= thr[:, None])
            rows, cols, vals = (np.concatenate([rows, tr]), np.concatenate([cols, tc + wf]),
                                np.concatenate([vals, s[tr, tc + wf]]))
        return rows, cols, vals
    kk = min(k, w)
    kth = np.partition(s, w - kk, axis=1)[:, w - kk]
    thr = np.maximum(kth, thr_run)
    rows, cols = np.nonzero(s >= thr[:, None])
    return rows, cols, s[rows, cols]


def _score_into(out: np.ndarray, q, q_sq, g, g_sq, metric: str) -> np.ndarray:
    np.matmul(q, g.T, out=out)
    if metric == "euclidean":
        negated_distances_inplace(out, q_sq, g_sq)
    return out


def _exact_top_k(q, q_sq, g, g_sq, metric: str, k: int,
                 query_block: int | None = None, gallery_block: int | None = None):
    """Exact top-k of prepared queries against the prepared gallery (see module conventions)."""
    nq, n = q.shape[0], g.shape[0]
    query_block = query_block or QUERY_BLOCK
    gallery_block = gallery_block or GALLERY_BLOCK
    indices = np.empty((nq, k), dtype=np.int64)
    scores = np.empty((nq, k), dtype=np.float32)
    buf = np.empty((query_block, min(gallery_block, n)), dtype=np.float32)
    for qs in range(0, nq, query_block):
        qe = min(qs + query_block, nq)
        b = qe - qs
        best_s = np.full((b, k), -np.inf, dtype=np.float32)
        best_i = np.full((b, k), n, dtype=np.int64)  # placeholders sort after every real item
        for gs in range(0, n, gallery_block):
            ge = min(gs + gallery_block, n)
            w = ge - gs
            s = buf[:b, :w] if (b == buf.shape[0] and w == buf.shape[1]) else np.empty((b, w), np.float32)
            _score_into(s, q[qs:qe], None if q_sq is None else q_sq[qs:qe], g[gs:ge],
                        None if g_sq is None else g_sq[gs:ge], metric)
            rows, cols, vals = _block_candidates(s, best_s[:, -1], k)
            if rows.size:
                best_s, best_i = _merge(best_s, best_i, rows, cols + gs, vals, k)
        indices[qs:qe], scores[qs:qe] = best_i, best_s
    return indices, scores


# ---------------------------------------------------------------------------- the indexes
class SearchIndex:
    """Common interface: ``search``, ``save``, ``report``, ``metric``, ``n``, ``d``.

    Subclasses hold the *prepared* gallery (unit rows for cosine; centred on the gallery
    mean for euclidean), float32 ``(n, d)``.
    """

    kind = "base"

    def __init__(self, prepared: np.ndarray, metric: str, centre: np.ndarray | None, report: IndexReport):
        self._g = prepared
        self.metric = metric
        self._centre = centre
        self._g_sq = np.einsum("ij,ij->i", prepared, prepared) if metric == "euclidean" else None
        self.report = report

    @property
    def n(self) -> int:
        return self._g.shape[0]

    @property
    def d(self) -> int:
        return self._g.shape[1]

    def __repr__(self) -> str:
        r = self.report
        rec = "" if r.recall is None else f", recall@{r.k}={r.recall:.4f}"
        return f"{type(self).__name__}(n={self.n}, d={self.d}, metric={self.metric!r}, params={r.params}{rec})"

    def _prepare_queries(self, queries) -> tuple[np.ndarray, np.ndarray | None]:
        q = check_matrix(queries, "queries")
        if q.shape[1] != self.d:
            raise ValueError(f"queries have {q.shape[1]} features but the index was built on {self.d}")
        if self.metric == "cosine":
            return _unit_rows(q, "queries"), None
        q = q - self._centre
        return q, np.einsum("ij,ij->i", q, q)

    def search(self, queries, k: int = 10) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def save(self, path) -> Path:
        """Write the index to ``path`` and its sidecar to ``path + ".json"`` (atomically).

        Returns ``path``. See the module docstring, "Persistence".
        """
        from crossmodal_core.store import atomic_path, atomic_write_json

        path = Path(path)
        with atomic_path(path) as tmp:
            self._write_data(tmp)
            data_digest = _file_sha256(tmp)
        sidecar = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "metric": self.metric,
            "n": self.n,
            "d": self.d,
            "gallery_sha256": _array_sha256(self._g),
            "data_file": path.name,
            "data_sha256": data_digest,
            "centre": None if self._centre is None else [float(v) for v in self._centre],
            "report": self.report.as_dict(),
        }
        atomic_write_json(_sidecar_path(path), sidecar)
        return path

    def _write_data(self, tmp: Path) -> None:  # pragma: no cover
        raise NotImplementedError


class ExactIndex(SearchIndex):
    """Exact top-k search: blocked float32 matrix products + a running top-k merge.

    Memory: the gallery (``4 n d`` bytes) plus one ``(QUERY_BLOCK, GALLERY_BLOCK)`` float32
    score block (32 MB) and small candidate arrays, whatever ``n`` and ``n_queries``.

    Parameters
    ----------
    gallery : array ``(n, d)``
    metric : ``"cosine"`` or ``"euclidean"``
    """

    kind = "exact"

    def __init__(self, gallery, metric: str = "cosine", report: IndexReport | None = None):
        metric = check_metric(metric, VECTOR_METRICS)
        g = check_matrix(gallery, "gallery")
        prepared, centre = _prepare_gallery(g, metric)
        n, d = g.shape
        super().__init__(prepared, metric, centre,
                         report or IndexReport(kind="exact", requested="exact", metric=metric, n=n, d=d,
                                               recall=1.0, index_bytes=prepared.nbytes, reason="exact search"))

    @classmethod
    def _from_prepared(cls, prepared, metric, centre, report):
        self = cls.__new__(cls)
        SearchIndex.__init__(self, prepared, metric, centre, report)
        return self

    def search(self, queries, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The exact ``k`` best gallery items of every query.

        Parameters
        ----------
        queries : array ``(n_queries, d)``
        k : int, ``1 <= k <= n``

        Returns
        -------
        indices : int64 ``(n_queries, k)``, best first, exact ties by gallery index ascending
        scores : float32 ``(n_queries, k)``, similarities (cosine, or negative distance)
        """
        k = _check_k(k, self.n)
        q, q_sq = self._prepare_queries(queries)
        return _exact_top_k(q, q_sq, self._g, self._g_sq, self.metric, k)

    def _write_data(self, tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, self._g, allow_pickle=False)


class FaissIndex(SearchIndex):
    """Approximate top-k search with ``faiss.IndexHNSWFlat`` or ``faiss.IndexIVFFlat``.

    Build it with :func:`build_index` (which chooses ``efSearch`` / ``nprobe`` by measured
    recall), not directly. The prepared gallery is kept as well (``4 n d`` bytes) for exact
    reranking.

    Attributes
    ----------
    faiss_index : the FAISS index (inner product for cosine, L2 on centred rows for euclidean)
    rerank_factor : candidates per returned item taken from FAISS when reranking
    """

    def __init__(self, faiss_index, kind: str, prepared, metric, centre, report: IndexReport,
                 rerank_factor: int = 4):
        super().__init__(prepared, metric, centre, report)
        self.kind = kind
        self.faiss_index = faiss_index
        self.rerank_factor = _check_int(rerank_factor, "rerank_factor")
        if "efSearch" in report.params or "nprobe" in report.params:
            self.set_params(**{p: report.params[p] for p in ("efSearch", "nprobe") if p in report.params})

    def set_params(self, efSearch: int | None = None, nprobe: int | None = None) -> None:
        """Set FAISS's search parameter (``efSearch`` for HNSW, ``nprobe`` for IVF).

        The measured :attr:`report` ``recall`` no longer applies; it is not updated.
        """
        if efSearch is not None:
            if self.kind != "hnsw":
                raise ValueError("efSearch applies to an HNSW index")
            self.faiss_index.hnsw.efSearch = _check_int(efSearch, "efSearch")
        if nprobe is not None:
            if self.kind != "ivf":
                raise ValueError("nprobe applies to an IVF index")
            self.faiss_index.nprobe = _check_int(nprobe, "nprobe")

    def search(self, queries, k: int = 10, rerank: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best gallery items of every query, approximately.

        Parameters
        ----------
        queries : array ``(n_queries, d)``
        k : int, ``1 <= k <= n``
        rerank : re-score ``k * rerank_factor`` FAISS candidates exactly (float32) and keep
            the best ``k`` (score desc, index asc); ``False``: FAISS's ``k`` results, its scores
            (for euclidean, ``-sqrt`` of its squared distance), sorted by the same rule

        Returns
        -------
        indices : int64 ``(n_queries, k)``, best first
        scores : float32 ``(n_queries, k)``
        """
        k = _check_k(k, self.n)
        q, q_sq = self._prepare_queries(queries)
        kk = min(self.n, k * self.rerank_factor) if rerank else k
        dist, cand = self.faiss_index.search(q, kk)
        cand = cand.astype(np.int64, copy=False)
        valid = cand >= 0
        if rerank:
            scores = self._exact_pair_scores(q, q_sq, np.where(valid, cand, 0))
        elif self.metric == "cosine":
            scores = dist.astype(np.float32, copy=True)
        else:
            scores = -np.sqrt(np.maximum(dist, 0.0)).astype(np.float32)
        scores[~valid] = -np.inf
        cand = np.where(valid, cand, self.n)
        order = np.lexsort((cand, -scores), axis=1)[:, :k]
        indices = np.take_along_axis(cand, order, axis=1)
        out_scores = np.take_along_axis(scores, order, axis=1)
        short = np.flatnonzero(valid.sum(axis=1) < k)
        if short.size:  # FAISS found fewer than k items: answer those queries exactly
            indices[short], out_scores[short] = _exact_top_k(
                q[short], None if q_sq is None else q_sq[short], self._g, self._g_sq, self.metric, k)
        return indices, out_scores

    def _exact_pair_scores(self, q, q_sq, cand) -> np.ndarray:
        """float32 scores of query ``i`` against gallery rows ``cand[i]`` ``(n_queries, m)``."""
        out = np.empty(cand.shape, dtype=np.float32)
        step = max(1, (64 * 1024**2) // max(1, cand.shape[1] * self.d * 4))  # ~64 MB gathered at a time
        for s in range(0, cand.shape[0], step):
            e = min(s + step, cand.shape[0])
            rows = self._g[cand[s:e]]  # (b, m, d)
            dots = np.matmul(rows, q[s:e, :, None])[..., 0]
            if self.metric == "euclidean":
                d2 = q_sq[s:e, None] + self._g_sq[cand[s:e]] - 2.0 * dots
                dots = -np.sqrt(np.maximum(d2, 0.0))
            out[s:e] = dots
        return out

    def _write_data(self, tmp: Path) -> None:
        import faiss

        faiss.write_index(self.faiss_index, str(tmp))


# ---------------------------------------------------------------------------- building
def _prepare_gallery(g: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray | None]:
    if metric == "cosine":
        return np.ascontiguousarray(_unit_rows(g, "gallery"), dtype=np.float32), None
    centre = g.mean(axis=0, dtype=np.float64).astype(np.float32)
    return np.ascontiguousarray(g - centre), centre


def _default_nlist(n: int) -> int:
    """Power of two nearest ``sqrt(n)``, within 16..4096 (1,024 at 10^6 rows)."""
    return int(min(4096, max(16, 2 ** round(np.log2(max(np.sqrt(n), 1.0))))))


def _faiss_metric(faiss, metric: str):
    return faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2


def _build_hnsw(prepared, metric, M, ef_construction):
    import faiss

    index = faiss.IndexHNSWFlat(prepared.shape[1], M, _faiss_metric(faiss, metric))
    index.hnsw.efConstruction = ef_construction
    index.add(prepared)
    nbytes = prepared.nbytes + int(index.hnsw.neighbors.size()) * 4 + int(index.hnsw.levels.size()) * 4 \
        + int(index.hnsw.offsets.size()) * 8
    return index, {"M": M, "efConstruction": ef_construction}, nbytes


def _build_ivf(prepared, metric, nlist, seed):
    import faiss

    n, d = prepared.shape
    quantizer = faiss.IndexFlatIP(d) if metric == "cosine" else faiss.IndexFlatL2(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, _faiss_metric(faiss, metric))
    index.cp.seed = seed
    n_train = min(n, 64 * nlist)
    rng = np.random.default_rng(seed)
    train = prepared if n_train == n else prepared[np.sort(rng.choice(n, n_train, replace=False))]
    index.train(train)
    index.add(prepared)
    nbytes = n * (d * 4 + 8) + nlist * d * 4
    return index, {"nlist": nlist, "n_train": n_train}, nbytes


def _ladder(start: int, stop: int, factor: float = 1.5) -> list[int]:
    """``start, ~1.5 start, ~2.25 start, ..., stop``: integers, increasing, ``stop`` included."""
    out, v = [], max(1, start)
    while v < stop:
        out.append(v)
        v = max(v + 1, int(np.ceil(v * factor)))
    out.append(stop)
    return sorted(set(out))


def _sample_queries(prepared, n_sample, perturbation, seed):
    rng = np.random.default_rng(seed)
    n = prepared.shape[0]
    rows = rng.choice(n, n_sample, replace=n_sample > n)
    std = prepared.std(axis=0, dtype=np.float64).astype(np.float32) if n > 1 else np.ones(prepared.shape[1], np.float32)
    noise = rng.standard_normal((n_sample, prepared.shape[1])).astype(np.float32) * (perturbation * std)
    return prepared[rows] + noise


def _timed_search(index: FaissIndex, q, k, rerank):
    t0 = time.perf_counter()
    found, _ = index.search(q, k, rerank=rerank)
    return found, q.shape[0] / max(time.perf_counter() - t0, 1e-9)


def build_index(
    gallery,
    kind: str = "auto",
    target_recall: float = 0.95,
    k: int = 10,
    sample_queries=None,
    seed: int = 0,
    metric: str = "cosine",
    *,
    n_sample: int = 1000,
    perturbation: float = 0.5,
    rerank: bool = True,
    rerank_factor: int = 4,
    M: int = 32,
    ef_construction: int = 40,
    max_ef_search: int = 1024,
    nlist: int | None = None,
    max_nprobe: int | None = None,
    exact_below: int = AUTO_EXACT_BELOW,
    min_speedup: float = 1.0,
    threads: int | None = None,
) -> SearchIndex:
    """Build a search index over ``gallery``, its FAISS parameters chosen by measured recall.

    Parameters
    ----------
    gallery : array ``(n, d)``, the items to search
    kind : ``"auto"`` (exact below ``exact_below`` rows, else the faster of HNSW / IVF that
        meets the target), ``"exact"``, ``"hnsw"`` or ``"ivf"``
    target_recall : recall@k to reach on the sample, in ``(0, 1]``
    k : the ``k`` recall is measured at (search with that ``k``)
    sample_queries : array ``(m, d)`` of queries to measure recall on (recommended: real
        queries of the other modality, not used for anything else); ``None``: ``n_sample``
        gallery rows perturbed by Gaussian noise of ``perturbation`` x the gallery's
        per-dimension standard deviation
    seed : seed of the sample and of IVF's k-means
    metric : ``"cosine"`` or ``"euclidean"``
    rerank, rerank_factor : measure (and later search) with exact reranking of
        ``k * rerank_factor`` FAISS candidates
    M, ef_construction : HNSW graph degree and build beam width
    max_ef_search : largest HNSW ``efSearch`` tried (the ladder starts at
        ``max(16, k * rerank_factor)`` and grows by 1.5x)
    nlist : IVF lists (default: power of two nearest ``sqrt(n)``, 16..4096); ``max_nprobe``:
        largest ``nprobe`` tried (default ``nlist // 4``; the ladder 1, 2, 3, 5, 8, 12, ...
        grows by 1.5x)
    exact_below : the ``"auto"`` size threshold (:data:`AUTO_EXACT_BELOW` rows)
    min_speedup : keep an approximate index only if its queries/s on the sample is at least
        this times exact search's (measured in the same call); the ladder stops once a
        setting is slower than that (on isotropic 128-d the target can need ``efSearch``
        1024, 14x slower than exact). ``0`` disables the check
    threads : FAISS OpenMP threads (``None``: leave as configured)

    Returns
    -------
    :class:`ExactIndex` or :class:`FaissIndex`; ``.report`` (:class:`IndexReport`) records the
    measured recall, parameters, every setting tried, build seconds and memory. When the
    target is not met, an :class:`ExactIndex` with a ``UserWarning`` naming the recall reached.

    Cost: building HNSW over 10^6 x 128 takes minutes (about 200 s on one core); ``"auto"``
    builds both HNSW and IVF. Recall is measured with one exact search of the sample.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    metric = check_metric(metric, VECTOR_METRICS)
    if isinstance(target_recall, bool) or not isinstance(target_recall, (int, float)) or not 0 < target_recall <= 1:
        raise ValueError(f"target_recall must be a number in (0, 1], got {target_recall!r}")
    g = check_matrix(gallery, "gallery")
    n, d = g.shape
    k = _check_k(k, n)
    seed = _check_int(seed, "seed", low=0)
    rerank_factor = _check_int(rerank_factor, "rerank_factor")
    exact_below = _check_int(exact_below, "exact_below", low=0)
    if isinstance(min_speedup, bool) or not isinstance(min_speedup, (int, float)) or min_speedup < 0:
        raise ValueError(f"min_speedup must be a number >= 0, got {min_speedup!r}")
    if threads is not None:
        import faiss

        faiss.omp_set_num_threads(_check_int(threads, "threads"))

    rss0 = _rss_bytes()
    t0 = time.perf_counter()
    prepared, centre = _prepare_gallery(g, metric)
    prep_seconds = time.perf_counter() - t0
    base = dict(requested=kind, metric=metric, n=n, d=d, k=k, target_recall=float(target_recall), seed=seed)

    if kind == "exact" or (kind == "auto" and n < exact_below):
        reason = "exact requested" if kind == "exact" else f"auto: {n} rows < {exact_below}, exact search"
        report = IndexReport(kind="exact", recall=1.0, build_seconds=prep_seconds, index_bytes=prepared.nbytes,
                             rss_delta_bytes=max(0, _rss_bytes() - rss0), reason=reason, **base)
        return ExactIndex._from_prepared(prepared, metric, centre, report)

    # the recall sample and its exact answer
    t_tune = time.perf_counter()
    if sample_queries is not None:
        sq = check_matrix(sample_queries, "sample_queries")
        if sq.shape[1] != d:
            raise ValueError(f"sample_queries have {sq.shape[1]} features but the gallery has {d}")
        sample_desc = f"given: {sq.shape[0]} queries"
    else:
        n_sample = _check_int(n_sample, "n_sample")
        sq = _sample_queries(prepared, n_sample, float(perturbation), seed)
        if centre is not None:  # back to the caller's coordinates: search() centres its queries
            sq += centre
        sample_desc = f"{n_sample} gallery rows + Gaussian noise ({perturbation:g} x per-dimension std)"
    if metric == "cosine" and (np.linalg.norm(sq, axis=1) == 0).any():
        raise ValueError("sample_queries contain an all-zero row")
    exact = ExactIndex._from_prepared(prepared, metric, centre, IndexReport(kind="exact", requested="exact",
                                                                            metric=metric, n=n, d=d))
    te = time.perf_counter()
    truth, _ = exact.search(sq, k)
    exact_qps = sq.shape[0] / max(time.perf_counter() - te, 1e-9)
    tried = [{"kind": "exact", "params": {}, "recall": 1.0, "queries_per_second": exact_qps}]
    tune_seconds = time.perf_counter() - t_tune

    kinds = ["hnsw", "ivf"] if kind == "auto" else [kind]
    results = []  # (qps, recall, FaissIndex, build_seconds, nbytes, rss)
    best_miss = {}
    for kd in kinds:
        tb = time.perf_counter()
        if kd == "hnsw":
            fidx, params, nbytes = _build_hnsw(prepared, metric, _check_int(M, "M", 2),
                                               _check_int(ef_construction, "ef_construction"))
            ladder = _ladder(max(16, k * rerank_factor if rerank else k), _check_int(max_ef_search, "max_ef_search"))
            pname = "efSearch"
        else:
            nl = _default_nlist(n) if nlist is None else _check_int(nlist, "nlist")
            nl = min(nl, n)
            fidx, params, nbytes = _build_ivf(prepared, metric, nl, seed)
            top = max(1, nl // 4) if max_nprobe is None else min(nl, _check_int(max_nprobe, "max_nprobe"))
            ladder = _ladder(1, top)
            pname = "nprobe"
        build_seconds = time.perf_counter() - tb + prep_seconds
        rss = max(0, _rss_bytes() - rss0)
        report = IndexReport(kind=kd, params=dict(params), rerank=rerank, rerank_factor=rerank_factor,
                             build_seconds=build_seconds, index_bytes=nbytes + prepared.nbytes,
                             sample=sample_desc, n_sample=sq.shape[0], **base)
        index = FaissIndex(fidx, kd, prepared, metric, centre, report, rerank_factor=rerank_factor)
        tt = time.perf_counter()
        reached = None
        for value in ladder:
            index.set_params(**{pname: value})
            found, qps = _timed_search(index, sq, k, rerank)
            per_query = _per_query_recall(found, truth)
            rec = float(per_query.mean())
            se = float(per_query.std(ddof=1) / np.sqrt(per_query.size)) if per_query.size > 1 else 0.0
            tried.append({"kind": kd, "params": {**params, pname: value}, "recall": rec, "recall_se": se,
                          "queries_per_second": qps})
            if rec - 2.0 * se >= target_recall and qps >= min_speedup * exact_qps:
                reached = (value, rec, se, qps)
                break
            best_miss[kd] = (value, rec, qps)
            if qps < min_speedup * exact_qps:  # higher settings are slower still
                break
        tune_seconds += time.perf_counter() - tt
        if reached is None:
            del index, fidx
            continue
        value, rec, se, qps = reached
        # the measured speed includes a cold first call; measure the chosen setting once more
        _, qps2 = _timed_search(index, sq, k, rerank)
        index.report.params[pname] = value
        index.report.recall, index.report.recall_se = rec, se
        index.report.queries_per_second, index.report.rss_delta_bytes = max(qps, qps2), rss
        results.append(index)

    if not results:
        why = "; ".join(f"{kd} reached recall@{k} {rec:.4f} at {'efSearch' if kd == 'hnsw' else 'nprobe'} {v}"
                        + (f" at {qps:.0f} q/s, slower than {min_speedup:g} x exact" if qps < min_speedup * exact_qps
                           else "")
                        for kd, (v, rec, qps) in best_miss.items())
        msg = (f"no approximate index met target recall@{k} {target_recall:g} on the sample faster than "
               f"exact search ({exact_qps:.0f} q/s) ({why}); falling back to exact search")
        warnings.warn(msg, UserWarning, stacklevel=2)
        report = IndexReport(kind="exact", recall=1.0, build_seconds=prep_seconds, tune_seconds=tune_seconds,
                             queries_per_second=exact_qps, index_bytes=prepared.nbytes,
                             rss_delta_bytes=max(0, _rss_bytes() - rss0), sample=sample_desc,
                             n_sample=sq.shape[0], tried=tried, fallback=msg, reason=msg, **base)
        return ExactIndex._from_prepared(prepared, metric, centre, report)

    best = max(results, key=lambda ix: ix.report.queries_per_second)
    best.report.tried, best.report.tune_seconds = tried, tune_seconds
    others = [ix.kind for ix in results if ix is not best]
    best.report.reason = (f"{best.kind} meets recall@{k} {target_recall:g} ({best.report.recall:.4f}) at "
                          f"{best.report.queries_per_second:.0f} q/s on the sample"
                          + (f", faster than {others[0]}" if others else "")
                          + f" (exact: {exact_qps:.0f} q/s)")
    return best


# ---------------------------------------------------------------------------- persistence
def index_path(model_dir, view: str) -> Path:
    """Where the index of one view of a model lives: ``<model_dir>/index-<slug(view)>.faiss``.

    Indexes live beside the model they index, in its folder of the store (the sidecar is the
    same name + ``.json``). ``view`` is slugged (:func:`crossmodal_core.store.slug`).
    """
    from crossmodal_core.store import slug

    return Path(model_dir) / f"index-{slug(view)}.faiss"


def _sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _array_sha256(a: np.ndarray) -> str:
    return hashlib.sha256(memoryview(np.ascontiguousarray(a)).cast("B")).hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_npy_checked(path: Path, n: int, d: int) -> np.ndarray:
    """Read a float32 ``(n, d)`` .npy, checking its header claims against the sidecar and the file size."""
    with open(path, "rb") as fh:
        try:
            major, _ = np.lib.format.read_magic(fh)
            header = np.lib.format.read_array_header_1_0(fh) if major == 1 else np.lib.format.read_array_header_2_0(fh)
        except ValueError as exc:
            raise ValueError(f"{path}: not a .npy array file ({exc})") from None
        shape, fortran, dtype = header
        if shape != (n, d) or fortran or dtype != np.dtype("<f4"):
            raise ValueError(f"{path}: holds {dtype} {shape}, the sidecar says float32 ({n}, {d})")
        offset = fh.tell()
    if os.path.getsize(path) != offset + n * d * 4:
        raise ValueError(f"{path}: file size does not match its header ({n} x {d} float32)")
    return np.load(path, allow_pickle=False)


def load_index(path) -> SearchIndex:
    """Load an index written by :meth:`SearchIndex.save`.

    Parameters
    ----------
    path : the index file (its sidecar is ``path + ".json"``)

    Raises
    ------
    FileNotFoundError : the file or its sidecar is missing
    ValueError : naming the file, when the sidecar is not ours (format name / version), is
        malformed, or does not match the data file (digest, kind, shape, metric)
    """
    path = Path(path)
    side = _sidecar_path(path)
    if not side.exists():
        raise FileNotFoundError(f"{side}: index sidecar not found (written by SearchIndex.save beside {path.name})")
    if not path.exists():
        raise FileNotFoundError(f"{path}: index data file not found")
    from crossmodal_core.store import read_json

    meta = read_json(side)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"{side}: not a {FORMAT} sidecar (format {got!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{side}: format_version {meta.get('format_version')!r}, this library reads {FORMAT_VERSION}")
    try:
        kind, metric, n, d = meta["kind"], meta["metric"], meta["n"], meta["d"]
        gallery_digest, data_digest, centre = meta["gallery_sha256"], meta["data_sha256"], meta["centre"]
        report = IndexReport.from_dict(meta["report"], str(side))
    except KeyError as exc:
        raise ValueError(f"{side}: missing key {exc}") from None
    if kind not in ("exact", "hnsw", "ivf") or metric not in VECTOR_METRICS:
        raise ValueError(f"{side}: unknown kind {kind!r} or metric {metric!r}")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (n, d)):
        raise ValueError(f"{side}: n and d must be positive integers, got {n!r}, {d!r}")
    if (report.kind, report.metric, report.n, report.d) != (kind, metric, n, d):
        raise ValueError(f"{side}: the report disagrees with the sidecar's kind/metric/shape")
    if meta.get("data_file") != path.name:
        raise ValueError(f"{side}: describes {meta.get('data_file')!r}, not {path.name!r}")
    if (metric == "euclidean") != (centre is not None) or (
            centre is not None and (not isinstance(centre, list) or len(centre) != d)):
        raise ValueError(f"{side}: centre must be {d} numbers for euclidean and null for cosine")
    if _file_sha256(path) != data_digest:
        raise ValueError(f"{path}: content does not match the digest in {side.name} (changed or replaced)")
    centre_arr = None if centre is None else np.asarray(centre, dtype=np.float32)

    if kind == "exact":
        prepared = _read_npy_checked(path, n, d)
        index: SearchIndex = ExactIndex._from_prepared(prepared, metric, centre_arr, report)
    else:
        import faiss

        try:
            fidx = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise ValueError(f"{path}: FAISS could not read it ({exc})") from None
        expected = faiss.IndexHNSWFlat if kind == "hnsw" else faiss.IndexIVFFlat
        if not isinstance(fidx, expected) or fidx.ntotal != n or fidx.d != d or \
                fidx.metric_type != _faiss_metric(faiss, metric):
            raise ValueError(f"{path}: holds {type(fidx).__name__} with {fidx.ntotal} x {fidx.d}, "
                             f"the sidecar says {kind} {n} x {d} ({metric})")
        if kind == "ivf":
            fidx.make_direct_map()
        prepared = np.ascontiguousarray(fidx.reconstruct_n(0, n), dtype=np.float32)
        if kind == "ivf":
            fidx.set_direct_map_type(faiss.DirectMap.NoMap)
        index = FaissIndex(fidx, kind, prepared, metric, centre_arr, report, rerank_factor=report.rerank_factor)
    if _array_sha256(index._g) != gallery_digest:
        raise ValueError(f"{path}: its gallery does not match gallery_sha256 in {side.name}")
    return index
