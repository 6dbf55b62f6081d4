"""Sufficient statistics of the linear models, row block by row block, here or on a Dask cluster.

CCA, cluster-CCA and their Nyström kernel variants need only sums over rows: class counts,
class sums, (weighted) Gram matrices and the row-paired cross product
(:class:`~crossmodal_core.models.linear.cluster.ClusterStatistics`). :func:`cluster_statistics`
computes them one row block at a time, each block a unit of work whose result is added to
the others, so

- in this process the views may be NumPy arrays, arrays that stay on disk
  (:class:`crossmodal_core.data.lazy.LazyArray`) or ``dask.array`` arrays, with memory of a
  few blocks whatever the row count;
- with a ``dask.distributed`` client (``client=`` of the models' ``fit``, or the one set by
  :func:`use_client`, which is what the command line's ``--scheduler tcp://host:8786``
  does) each block is one task: the worker reads its rows (a ``LazyArray`` reopens its file
  there, so on several machines the path must be on a shared file system), computes the
  block's statistics, and the partial results are added in a tree. The same code runs on a
  ``LocalCluster`` in the tests and on a multi-node cluster.

The block results are float64 (each block's products are computed in the model's ``dtype``,
as one BLAS call sums them anyway), so the order in which a cluster adds them changes the
result only at the float64 rounding level: the fit equals the in-process one to ~1e-12.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from crossmodal_core.data.dataset import check_paired_rows, check_views
from crossmodal_core.data.lazy import LazyArray, is_lazy

__all__ = [
    "use_client",
    "current_client",
    "connect",
    "local_cluster",
    "WORKER_CONFIG",
    "check_stream_views",
    "block_rows_for_views",
    "cluster_statistics",
    "column_moments",
    "take_rows",
]

#: bytes of input rows (all views together) in one block / task
BLOCK_BYTES = 128 << 20
#: partial results added per reduction task
_TREE_WIDTH = 8

_CLIENT: contextvars.ContextVar[Any] = contextvars.ContextVar("crossmodal_dask_client", default=None)


@contextlib.contextmanager
def use_client(client: Any) -> Iterator[Any]:
    """Within the block, linear models whose ``fit`` gets no ``client=`` use ``client``."""
    token = _CLIENT.set(client)
    try:
        yield client
    finally:
        _CLIENT.reset(token)


def current_client(client: Any = None) -> Any:
    """``client`` if given, else the one set by :func:`use_client` (or ``None``: this process)."""
    return client if client is not None else _CLIENT.get()


#: dask config for the workers of the clusters this library starts (:func:`local_cluster`), and
#: what to put in a YAML file under ``~/.config/dask/`` on machines whose ``dask worker`` processes
#: are started by hand (a ``DASK_…`` environment variable cannot unset the malloc setting).
#: Measured on the streamed ClusterCCA statistics at 2·10^5 rows (benchmarks/bench_scale.py):
#: with distributed's defaults a worker spent about twice the in-process CPU on the same blocks.
#:
#: - the nanny exports ``MALLOC_TRIM_THRESHOLD_=65536`` to its workers; setting any glibc malloc
#:   tunable turns off glibc's dynamic mmap threshold, so every buffer above 128 KiB (each
#:   16 MiB Zarr chunk zarr decodes, each Gram) is a fresh ``mmap`` whose pages fault in zeroed:
#:   480k page faults against 56k for the same 7 blocks in process, the extra CPU in the kernel;
#: - the worker's statistical profiler samples every thread's stack every 10 ms; it interrupts the
#:   task thread (its system time 2.5 s against 1.0 s without it) and costs CPU while idle.
#:
#: Both only serve diagnostics (unmanaged-memory reporting, the dashboard's profile), not results.
WORKER_CONFIG = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,  # None: not exported
    "distributed.worker.profile.enabled": False,
}


def local_cluster(n_workers: int, threads_per_worker: int = 1, **kwargs: Any) -> Any:
    """A ``dask.distributed.LocalCluster`` of ``n_workers`` processes with :data:`WORKER_CONFIG`.

    The workers keep distributed's one-BLAS-thread environment (``OMP_NUM_THREADS=1`` etc.); a
    restarted worker gets the same settings."""
    import copy

    import dask
    from distributed import LocalCluster

    kwargs.setdefault("dashboard_address", None)
    with dask.config.set(WORKER_CONFIG):
        # the nanny copies the environment when created, but only the top level of the config:
        # its nested dicts are the global ones, restored when this block ends (a restarted
        # worker had the profiler back on), so the workers get a deep copy of their own
        config = copy.deepcopy(dask.config.config)
        return LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True,
                            config=config, **kwargs)


def connect(address: str, timeout: float = 30.0) -> Any:
    """A ``dask.distributed.Client`` of the scheduler at ``address`` (``tcp://host:8786``).

    ``address="local"`` starts a ``LocalCluster`` on this machine (one single-threaded worker
    process per core, :func:`local_cluster`). Raises ``ValueError`` with the address when nothing
    answers."""
    from distributed import Client

    try:
        if address == "local":
            import os

            cluster = local_cluster(max(1, os.cpu_count() or 1))
            try:
                return Client(cluster)
            except BaseException:  # no client owns the cluster yet: its worker processes would linger
                cluster.close()
                raise
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise ValueError(f"cannot reach the Dask scheduler at {address!r} ({type(exc).__name__}: {exc})") from None


def check_stream_views(views: Sequence[Any], n_views: int | None = 2, min_rows: int = 2,
                       what: str = "views") -> list[Any]:
    """:func:`~crossmodal_core.data.dataset.check_views` for NumPy views; views on disk are
    checked for shape and dtype only (their NaN / inf check happens as blocks are read)."""
    if isinstance(views, np.ndarray):
        raise ValueError(f"{what} must be a list of arrays (one per modality), got a single array")
    views = list(views)
    if not any(is_lazy(v) for v in views):
        return check_views(views, n_views=n_views, min_rows=min_rows, what=what)
    if n_views is not None and len(views) != n_views:
        raise ValueError(f"expected {n_views} {what}, got {len(views)}")
    out = []
    for i, v in enumerate(views):
        if not is_lazy(v):
            v = check_views([v], min_rows=0, what=f"{what}[{i}]")[0]
        if len(v.shape) != 2:
            raise ValueError(f"{what}[{i}] must be 2-D (n_samples, n_features), got shape {tuple(v.shape)}")
        if np.dtype(v.dtype).kind not in "biuf":
            raise ValueError(f"{what}[{i}] must be numeric, got dtype {v.dtype}")
        if np.dtype(v.dtype).kind != "f":
            v = v.astype(np.float64)
        out.append(v)
    check_paired_rows(out, min_rows, what)
    return out


def block_rows_for_views(views: Sequence[Any], block_rows: int | None = None) -> int:
    """Rows per block: ``block_rows``, else about :data:`BLOCK_BYTES` of all views' rows,
    rounded down to whole chunks of the first view on disk."""
    if block_rows is not None:
        return max(1, int(block_rows))
    row_bytes = sum(math.prod(v.shape[1:]) * np.dtype(v.dtype).itemsize for v in views) or 1
    rows = max(1, BLOCK_BYTES // row_bytes)
    for v in views:
        if isinstance(v, LazyArray) and v.chunk_rows > 1:
            return max(v.chunk_rows, rows // v.chunk_rows * v.chunk_rows)
    return rows


def _read(view: Any, start: int, stop: int) -> np.ndarray:
    """Rows ``start..stop`` of a NumPy, lazy or dask array, as NumPy."""
    block = view[start:stop]
    if not isinstance(block, np.ndarray):
        block = np.asarray(block.compute() if hasattr(block, "compute") else block)
    return block


def take_rows(view: Any, rows: np.ndarray) -> np.ndarray:
    """The rows ``rows`` of a NumPy, lazy or dask array, as NumPy (in the order given)."""
    rows = np.asarray(rows, dtype=np.int64)
    if isinstance(view, np.ndarray):
        return view[rows]
    uniq, inverse = np.unique(rows, return_inverse=True)
    if isinstance(view, LazyArray):
        return np.asarray(view[uniq])[inverse]
    return np.asarray(view[uniq].compute())[inverse]


# ---------------------------------------------------------------------- one block
def _block_statistics(template: Any, views: Sequence[Any], codes: Sequence[np.ndarray], start: int, stop: int,
                      paired: bool, maps: Sequence[Callable[[np.ndarray], np.ndarray] | None] | None) -> Any:
    """Statistics of rows ``start..stop`` (read here: in a worker, where the task runs)."""
    stats = template.empty_like()
    blocks = []
    for i, v in enumerate(views):
        block = _read(v, start, min(stop, v.shape[0]))
        if maps is not None and maps[i] is not None:
            block = maps[i](block)
        blocks.append(block)
    stats.add_block(blocks, [c[start:stop] for c in codes], paired)
    return stats


def _merge(parts: Sequence[Any]) -> Any:
    return type(parts[0]).merged(parts)


def _client_map(client: Any, fn: Callable, calls: list[tuple], merge: Callable) -> Any:
    """Run ``fn(*args)`` for each of ``calls`` as Dask tasks on ``client``; add results in a tree."""
    from dask import delayed

    parts = [delayed(fn, pure=False)(*args) for args in calls]
    while len(parts) > 1:
        parts = [delayed(merge, pure=False)(parts[i:i + _TREE_WIDTH]) for i in range(0, len(parts), _TREE_WIDTH)]
    return client.compute(parts[0]).result()


def _scatter_views(client: Any, views: Sequence[Any]) -> list[Any]:
    """NumPy views go to the cluster once (a future), not inside every task."""
    return [client.scatter(v, broadcast=False, hash=False) if isinstance(v, np.ndarray) else v for v in views]


def cluster_statistics(template: Any, views: Sequence[Any], codes: Sequence[np.ndarray], paired: bool, *,
                       block_rows: int | None = None, client: Any = None,
                       maps: Sequence[Callable[[np.ndarray], np.ndarray] | None] | None = None,
                       progress: bool = False) -> Any:
    """Statistics like ``template`` (weighted-total
    :class:`~crossmodal_core.models.linear.cluster.ClusterStatistics`) of the whole views.

    Parameters
    ----------
    views : two arrays ``(n_v, d_v)``: NumPy, :class:`LazyArray` or ``dask.array``
    codes : class index ``(n_v,)`` of every row of each view
    paired : rows of the two views are pairs (both have ``n`` rows)
    block_rows : rows per block (default :func:`block_rows_for_views`)
    client : ``dask.distributed.Client`` (default :func:`current_client`); ``None``: this process
    maps : optional per-view feature map applied to each block (the Nyström maps)
    """
    client = current_client(client)
    step = block_rows_for_views(views, block_rows)
    n = max(v.shape[0] for v in views)
    ranges = [(s, min(n, s + step)) for s in range(0, n, step)]
    if client is None:
        from tqdm.auto import tqdm

        total = template.empty_like()
        for start, stop in tqdm(ranges, desc="statistics", unit="block", disable=not progress, leave=False):
            part = _block_statistics(template, views, codes, start, stop, paired, maps)
            total = type(total).merged([total, part])
        return total
    shipped = _scatter_views(client, views)
    code_futures = [client.scatter(c, broadcast=False, hash=False) for c in codes]
    # the template holds zero Grams (8 MiB at d = 1024): sent once, not inside every task, whose
    # (de)serialisation cost the workers' event loop and offload thread ~1.6 s per 7 blocks
    template_future = client.scatter(template, broadcast=False, hash=False)
    calls = [(template_future, shipped, code_futures, s, e, paired, maps) for s, e in ranges]
    return _client_map(client, _block_statistics, calls, _merge)


# ---------------------------------------------------------------------- column moments
def _block_moments(view: Any, start: int, stop: int) -> tuple[int, np.ndarray, np.ndarray]:
    block = _read(view, start, stop).astype(np.float64)
    return len(block), block.sum(axis=0), np.einsum("ij,ij->j", block, block)


def _add_moments(parts: Sequence[tuple]) -> tuple:
    return (sum(p[0] for p in parts), sum(p[1] for p in parts), sum(p[2] for p in parts))


def column_moments(view: Any, *, block_rows: int | None = None, client: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and (biased) variance of a NumPy / lazy / dask view, in one streamed pass
    (``client=False``: in this process even under :func:`use_client`)."""
    client = None if client is False else current_client(client)
    step = block_rows_for_views([view], block_rows)
    n = view.shape[0]
    ranges = [(s, min(n, s + step)) for s in range(0, n, step)]
    if client is None:
        count, s1, s2 = _add_moments([_block_moments(view, s, e) for s, e in ranges])
    else:
        shipped = _scatter_views(client, [view])[0]
        count, s1, s2 = _client_map(client, _block_moments, [(shipped, s, e) for s, e in ranges], _add_moments)
    mean = s1 / max(count, 1)
    return mean, np.maximum(s2 / max(count, 1) - mean ** 2, 0.0)
