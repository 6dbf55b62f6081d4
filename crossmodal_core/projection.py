"""2-D maps of embeddings (PCA, UMAP), computed once and stored on disk.

A projection turns one or several embedding matrices into 2-D coordinates for the
explorer. Two layouts:

- **joint** (the default when every matrix has the same width, e.g. the two modalities
  of a trained model in its shared space): the matrices are stacked and mapped together,
  so audio and visual points of the same class land near each other only if the model
  put them there.
- **separate** (matrices of different widths, e.g. original 128-d audio and 1024-d visual
  features): each matrix gets its own map; the maps are standardised and placed side by
  side (the second shifted right), because the raw feature spaces share no axes.

Rows are L2-normalised before mapping when ``metric="cosine"`` (retrieval ranks by cosine),
and large matrices are subsampled (class-stratified, seeded) to ``max_points`` rows each.

Results are stored under :func:`crossmodal_core.store.projections_dir` as
``<cache_key(dataset, model, method, params)>.npz``; :func:`load_projection` returns ``None``
when a projection was never computed, so a page can show a button instead of computing on
load. UMAP is imported lazily: the first import costs 10-50 s of numba compilation and the
first fit in a process another 30-80 s.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from crossmodal_core import store

#: signature of progress callbacks: ``progress(fraction in [0, 1], message)``
ProgressCallback = Callable[[float, str], None]

METHODS = ("pca", "umap")

DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "pca": {"metric": "cosine", "max_points": 1000, "random_state": 0},
    "umap": {"metric": "cosine", "max_points": 1000, "random_state": 0, "n_neighbors": 15, "min_dist": 0.1},
}


@dataclass
class Projection:
    """2-D coordinates of (a subsample of) the rows of one or several matrices.

    coords : list of ``(len(index), 2)`` float32 arrays, one per input matrix
    index : ``(n_points,)`` int row indices into the input matrices (shared by all of them)
    method : ``"pca"`` or ``"umap"``
    joint : whether the matrices were mapped together (shared axes)
    params : the parameters used (JSON-serialisable)
    seconds : compute time
    """

    coords: list[np.ndarray]
    index: np.ndarray
    method: str
    joint: bool
    params: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def _noop(fraction: float, message: str) -> None:
    pass


def subsample_index(n_rows: int, max_points: int | None, labels: np.ndarray | None = None,
                    random_state: int = 0) -> np.ndarray:
    """Sorted row indices: all rows, or ``max_points`` of them spread over the classes.

    Stratified by ``labels`` (each class keeps its share, at least one row) so small
    classes stay visible on the map.
    """
    if max_points is None or n_rows <= max_points:
        return np.arange(n_rows)
    rng = np.random.default_rng(random_state)
    if labels is None:
        return np.sort(rng.choice(n_rows, size=max_points, replace=False))
    labels = np.asarray(labels)
    if labels.shape != (n_rows,):
        raise ValueError(f"labels have shape {labels.shape}, expected ({n_rows},)")
    picked = []
    classes, counts = np.unique(labels, return_counts=True)
    quota = np.maximum(1, np.floor(counts * max_points / n_rows).astype(int))
    for c, q in zip(classes, quota):
        rows = np.nonzero(labels == c)[0]
        picked.append(rng.choice(rows, size=min(q, len(rows)), replace=False))
    return np.sort(np.concatenate(picked))


def _prepare(matrix: np.ndarray, metric: str) -> np.ndarray:
    x = np.asarray(matrix, dtype=np.float32)
    if x.ndim == 3:  # sequence view: map the time average
        x = x.mean(axis=1)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D (n, d) or 3-D (n, T, d) matrix, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("embedding contains NaN or inf")
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.maximum(norms, 1e-12)
    return x


def _map_2d(x: np.ndarray, method: str, params: dict[str, Any], progress: ProgressCallback,
            lo: float, hi: float) -> np.ndarray:
    """One matrix -> (n, 2). PCA via scikit-learn; UMAP imported here, never at module load."""
    n = x.shape[0]
    if n < 3 or x.shape[1] < 2:
        out = np.zeros((n, 2), dtype=np.float32)
        out[:, : min(2, x.shape[1])] = x[:, : min(2, x.shape[1])]
        return out
    if method == "pca":
        from sklearn.decomposition import PCA

        progress(lo, f"PCA of {n} points")
        y = PCA(n_components=2, random_state=params.get("random_state", 0)).fit_transform(x)
    elif method == "umap":
        progress(lo, "loading UMAP (the first time in a process compiles code: up to a minute)")
        import umap  # noqa: PLC0415 - lazy on purpose: the import alone costs seconds

        progress(lo + 0.15 * (hi - lo), f"UMAP of {n} points (JIT-compiled on first use, then seconds)")
        reducer = umap.UMAP(
            n_components=2,
            n_neighbors=int(min(params.get("n_neighbors", 15), n - 1)),
            min_dist=float(params.get("min_dist", 0.1)),
            metric="euclidean",  # rows are already L2-normalised for the cosine metric
            random_state=params.get("random_state", 0),
            n_jobs=1,
        )
        y = reducer.fit_transform(x)
    else:
        raise ValueError(f"unknown projection method {method!r}; choose one of {METHODS}")
    progress(hi, f"{method.upper()} done")
    return np.asarray(y, dtype=np.float32)


def _standardise(y: np.ndarray) -> np.ndarray:
    return (y - y.mean(axis=0)) / np.maximum(y.std(axis=0), 1e-12)


def compute_projection(matrices: Sequence[np.ndarray], method: str = "pca", *,
                       labels: np.ndarray | None = None, joint: bool | None = None,
                       params: dict[str, Any] | None = None,
                       progress: ProgressCallback | None = None) -> Projection:
    """Map ``matrices`` (same row count, row i = item i in each) to 2-D.

    Parameters
    ----------
    matrices : list of ``(n, d_i)`` (or ``(n, T, d_i)``, time-averaged) arrays
    method : ``"pca"`` (instant) or ``"umap"``
    labels : ``(n,)`` class labels used to stratify the subsample (optional)
    joint : map the stacked matrices together; default: only when all ``d_i`` are equal
    params : overrides of :data:`DEFAULT_PARAMS` (``metric``, ``max_points``,
        ``random_state``, ``n_neighbors``, ``min_dist``)
    progress : ``progress(fraction, message)`` callback

    Returns
    -------
    Projection with one ``(n_points, 2)`` array per matrix, rows ``index``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown projection method {method!r}; choose one of {METHODS}")
    if not matrices:
        raise ValueError("no matrix to project")
    progress = progress or _noop
    p = {**DEFAULT_PARAMS[method], **(params or {})}
    n = len(matrices[0])
    for i, m in enumerate(matrices):
        if len(m) != n:
            raise ValueError(f"matrix {i} has {len(m)} rows, matrix 0 has {n}: rows must be the same items")
    start = time.perf_counter()
    index = subsample_index(n, p.get("max_points"), labels, p.get("random_state", 0))
    xs = [_prepare(np.asarray(m)[index], p.get("metric", "cosine")) for m in matrices]
    widths = {x.shape[1] for x in xs}
    if joint is None:
        joint = len(widths) == 1
    if joint and len(widths) != 1:
        raise ValueError(f"a joint projection needs matrices of equal width, got widths {sorted(widths)}")
    if joint:
        stacked = _map_2d(np.concatenate(xs), method, p, progress, 0.0, 1.0)
        coords = np.split(stacked, len(xs))
    else:
        coords = []
        for i, x in enumerate(xs):
            y = _standardise(_map_2d(x, method, p, progress, i / len(xs), (i + 1) / len(xs)))
            y[:, 0] += 5.0 * i  # side by side: separate spaces share no axes
            coords.append(y)
    progress(1.0, "projection ready")
    return Projection(coords=[c.astype(np.float32) for c in coords], index=index.astype(np.int64),
                      method=method, joint=bool(joint), params=p,
                      seconds=round(time.perf_counter() - start, 3))


# ---------------------------------------------------------------------- storage
def projection_key(dataset: str, model: str, method: str, params: dict[str, Any] | None = None) -> str:
    """Cache key of a (dataset, model, method, parameters) projection."""
    p = {**DEFAULT_PARAMS.get(method, {}), **(params or {})}
    return store.cache_key("projection", dataset, model, method, p)


def projection_path(dataset: str, model: str, method: str, params: dict[str, Any] | None = None) -> Path:
    """``<projections>/<key>.npz``: ``dataset`` and ``model`` (possibly read from files) only
    enter the digest, and the name goes through :func:`store.child_path`, never as a path."""
    return store.child_path(store.projections_dir(), projection_key(dataset, model, method, params), suffix=".npz")


def save_projection(path: str | Path, projection: Projection) -> Path:
    arrays = {f"coords_{i}": c for i, c in enumerate(projection.coords)}
    meta = {"method": projection.method, "joint": projection.joint, "params": projection.params,
            "seconds": projection.seconds, "n_matrices": len(projection.coords)}
    arrays["index"] = projection.index
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True, default=str))
    return store.atomic_save_npz(path, **arrays)


def read_projection(path: str | Path) -> Projection:
    """Read a stored projection; a corrupt or foreign file raises ``ValueError`` naming it."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            coords = [z[f"coords_{i}"] for i in range(int(meta["n_matrices"]))]
            index = z["index"]
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"{path}: not a stored projection ({exc})") from None
    return Projection(coords=coords, index=index, method=meta["method"], joint=bool(meta["joint"]),
                      params=meta["params"], seconds=float(meta.get("seconds", 0.0)))


def load_projection(dataset: str, model: str, method: str = "umap",
                    params: dict[str, Any] | None = None) -> Projection | None:
    """The stored projection, or ``None`` when it was never computed (never computes)."""
    path = projection_path(dataset, model, method, params)
    if not path.exists():
        return None
    return read_projection(path)


def get_or_compute_projection(dataset: str, model: str, matrices: Sequence[np.ndarray],
                              method: str = "umap", *, labels: np.ndarray | None = None,
                              joint: bool | None = None, params: dict[str, Any] | None = None,
                              progress: ProgressCallback | None = None) -> Projection:
    """Load the stored projection for (dataset, model, method, params) or compute and store it.

    ``dataset`` and ``model`` are identifiers (include anything that changes the matrices,
    e.g. the model's cache key), so a retrained model gets a new projection.
    """
    path = projection_path(dataset, model, method, params)
    if path.exists():
        try:
            found = read_projection(path)
            if len(found.coords) == len(matrices):
                if progress:
                    progress(1.0, "loaded stored projection")
                return found
        except ValueError:
            pass  # corrupt: recompute and overwrite atomically
    projection = compute_projection(matrices, method, labels=labels, joint=joint, params=params,
                                    progress=progress)
    save_projection(path, projection)
    return projection
