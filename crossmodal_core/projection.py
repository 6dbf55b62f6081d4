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
and large matrices may be subsampled (class-stratified, seeded) to ``max_points`` rows each.

**At scale** (10^5-10^6 rows, :data:`SCALE_PARAMS`, what the explorer uses): every row is
mapped, but the map is *fitted* on at most ``fit_points`` points (a seeded class-stratified
sample of the items) and the other rows are placed with the fitted map's ``transform``, in
blocks of :data:`TRANSFORM_BLOCK` rows (memory bounded by the block, not by n):

- PCA fitted on the sample then ``transform``: the rest is an exact linear projection on the
  sample's axes (the fitted axes of 2·10^5 points differ from the full fit's by sampling noise);
- UMAP fitted on the sample then ``UMAP.transform`` (each new point placed against the fitted
  map, which does not move); above ``umap_max_points`` points the estimated time of that is
  too long for a button (see :func:`plan_projection`) and PCA is used instead, said so in
  :func:`describe_projection`. Measured on the 2-core box (one thread): see
  ``benchmarks/bench_scale.py --explorer``.

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

#: overrides for maps of every row (the explorer): ``max_points`` None maps all rows;
#: ``fit_points`` caps the points a map is fitted on (the rest go through ``transform``);
#: ``umap_max_points`` is where UMAP gives way to PCA (see :func:`plan_projection`)
SCALE_PARAMS: dict[str, dict[str, Any]] = {
    "pca": {"max_points": None, "fit_points": 200_000},
    "umap": {"max_points": None, "fit_points": 20_000, "umap_max_points": 200_000},
}

#: rows per ``transform`` call (and per prepared float32 block); above 10,000 rows UMAP.transform
#: runs 30 epochs instead of 100 (its own rule for large inputs): full blocks take that path
TRANSFORM_BLOCK = 20_000

#: points a second ``UMAP.transform`` places, rounded down (one thread, 2-core box: the 10^5-item
#: map, fit of 20,000 points + transform of 180,000, took 217 s CPU in bench_scale --explorer,
#: of which the fit about 30 s plus its first-use JIT)
UMAP_TRANSFORM_RATE = 1_000


@dataclass
class Projection:
    """2-D coordinates of (a subsample of) the rows of one or several matrices.

    coords : list of ``(len(index), 2)`` float32 arrays, one per input matrix
    index : ``(n_points,)`` int row indices into the input matrices (shared by all of them)
    method : the method that made the map (``"pca"`` or ``"umap"``; ``plan["requested"]``
        says what was asked, see :func:`plan_projection`)
    joint : whether the matrices were mapped together (shared axes)
    params : the parameters used (JSON-serialisable)
    seconds : compute time
    fit_index : ``(n_fit,)`` positions in ``index`` of the rows the map was fitted on (the
        others were placed with its ``transform``); ``None``: fitted on all rows
    plan : :func:`plan_projection` of this map (empty for maps stored before it existed)
    """

    coords: list[np.ndarray]
    index: np.ndarray
    method: str
    joint: bool
    params: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    fit_index: np.ndarray | None = None
    plan: dict[str, Any] = field(default_factory=dict)


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


def _fit_map(x: np.ndarray, method: str, params: dict[str, Any], progress: ProgressCallback,
             lo: float, hi: float) -> tuple[Any, np.ndarray]:
    """Fit a 2-D map on ``x`` ``(n, d)``: ``(fitted map, (n, 2) coordinates of x)``.

    PCA via scikit-learn (``transform`` of its own rows, so fitted and transformed rows share
    one linear map exactly); UMAP imported here, never at module load. A matrix too small to
    map (under 3 rows or 1 column) is its own first two columns (map ``None``).
    """
    n = x.shape[0]
    if n < 3 or x.shape[1] < 2:
        return None, _trivial_map(x)
    if method == "pca":
        from sklearn.decomposition import PCA

        progress(lo, f"PCA fitted on {n:,} points")
        model = PCA(n_components=2, random_state=params.get("random_state", 0)).fit(x)
        y = model.transform(x)
    elif method == "umap":
        progress(lo, "loading UMAP (the first time in a process compiles code: up to a minute)")
        import umap  # noqa: PLC0415 - lazy on purpose: the import alone costs seconds

        progress(lo + 0.15 * (hi - lo), f"UMAP of {n:,} points (JIT-compiled on first use, then seconds)")
        model = umap.UMAP(
            n_components=2,
            n_neighbors=int(min(params.get("n_neighbors", 15), n - 1)),
            min_dist=float(params.get("min_dist", 0.1)),
            metric="euclidean",  # rows are already L2-normalised for the cosine metric
            random_state=params.get("random_state", 0),
            n_jobs=1,
        ).fit(x)
        y = model.embedding_
    else:
        raise ValueError(f"unknown projection method {method!r}; choose one of {METHODS}")
    progress(hi, f"{method.upper()} fitted")
    return model, np.asarray(y, dtype=np.float32)


def _trivial_map(x: np.ndarray) -> np.ndarray:
    out = np.zeros((x.shape[0], 2), dtype=np.float32)
    out[:, : min(2, x.shape[1])] = x[:, : min(2, x.shape[1])]
    return out


def _transform_map(model: Any, x: np.ndarray) -> np.ndarray:
    """New rows ``x`` ``(m, d)`` placed on a fitted map: ``(m, 2)`` float32."""
    if model is None:
        return _trivial_map(x)
    return np.asarray(model.transform(x), dtype=np.float32)


def plan_projection(n_points: int, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a map of ``n_points`` points (all matrices together) will be, before computing it.

    Returns ``{"requested", "method", "n_points", "fit_points", "transformed", "reason"}``:
    the map is fitted on ``fit_points`` points (all when ``params["fit_points"]`` is None or
    not smaller) and the other ``transformed`` points are placed with its ``transform``.
    UMAP above ``params["umap_max_points"]`` points gives way to PCA (``reason`` says why):
    ``UMAP.transform`` places about :data:`UMAP_TRANSFORM_RATE` points a second on one core
    of the 2-core box, so 10^6 points would keep a button busy for over ten minutes.
    """
    if method not in METHODS:
        raise ValueError(f"unknown projection method {method!r}; choose one of {METHODS}")
    p = {**DEFAULT_PARAMS[method], **(params or {})}
    n_points = int(n_points)
    used, reason = method, None
    limit = p.get("umap_max_points")
    if method == "umap" and limit is not None and n_points > int(limit):
        used = "pca"
        p = {**DEFAULT_PARAMS["pca"], **SCALE_PARAMS["pca"], **{k: v for k, v in p.items() if k in ("metric",
                                                                                                    "random_state")}}
        minutes = n_points / UMAP_TRANSFORM_RATE / 60
        reason = (f"{n_points:,} points are above the UMAP limit of {int(limit):,} (placing them with "
                  f"UMAP.transform would take about {minutes:.0f} min here), so PCA is shown")
    fit = p.get("fit_points")
    fit_points = n_points if fit is None else min(n_points, int(fit))
    return {"requested": method, "method": used, "n_points": n_points, "fit_points": fit_points,
            "transformed": n_points - fit_points, "reason": reason,
            "fit_params": {k: v for k, v in p.items()}}


def describe_projection(projection: Projection) -> str:
    """One sentence for the screen: the method, how many points it was fitted on, how the
    others were placed, and why UMAP gave way to PCA when it did."""
    plan = projection.plan or {}
    n = int(plan.get("n_points", sum(len(c) for c in projection.coords)))
    fit = int(plan.get("fit_points", n))
    name = projection.method.upper()
    if fit >= n:
        text = f"{name} of all {n:,} points"
    else:
        text = (f"{name} fitted on {fit:,} of {n:,} points (a seeded class-stratified sample), "
                f"the other {n - fit:,} placed with {name}.transform")
    if plan.get("reason"):
        text += f"; {plan['reason']}"
    return text


def _standardise(y: np.ndarray) -> np.ndarray:
    return (y - y.mean(axis=0)) / np.maximum(y.std(axis=0), 1e-12)


def _take(matrix: Any, rows: np.ndarray) -> np.ndarray:
    """Rows of an in-memory or lazy (h5py / zarr / dask) matrix; only those rows are read."""
    if isinstance(matrix, np.ndarray):
        return matrix[rows]
    return np.asarray(matrix[np.asarray(rows)])


def _width(matrix: Any) -> int:
    shape = getattr(matrix, "shape", None) or np.asarray(matrix).shape
    return int(shape[-1]) if len(shape) >= 2 else 1


def compute_projection(matrices: Sequence[np.ndarray], method: str = "pca", *,
                       labels: np.ndarray | None = None, joint: bool | None = None,
                       params: dict[str, Any] | None = None,
                       progress: ProgressCallback | None = None) -> Projection:
    """Map ``matrices`` (same row count, row i = item i in each) to 2-D.

    Parameters
    ----------
    matrices : list of ``(n, d_i)`` (or ``(n, T, d_i)``, time-averaged) arrays; lazy arrays
        (h5py, zarr, dask) are read only by blocks of rows
    method : ``"pca"`` (instant) or ``"umap"``
    labels : ``(n,)`` class labels used to stratify the subsamples (optional)
    joint : map the stacked matrices together; default: only when all ``d_i`` are equal
    params : overrides of :data:`DEFAULT_PARAMS` (``metric``, ``max_points``,
        ``random_state``, ``n_neighbors``, ``min_dist``; and :data:`SCALE_PARAMS`'s
        ``fit_points``, ``umap_max_points``)
    progress : ``progress(fraction, message)`` callback

    Returns
    -------
    Projection with one ``(n_points, 2)`` array per matrix, rows ``index``; with
    ``fit_points`` below the number of points, the map is fitted on a seeded stratified
    sample of the items (``fit_index``) and the other rows go through its ``transform``
    (:func:`plan_projection`).
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
    seed = p.get("random_state", 0)
    metric = p.get("metric", "cosine")
    index = subsample_index(n, p.get("max_points"), labels, seed)
    widths = {_width(m) for m in matrices}
    if joint is None:
        joint = len(widths) == 1
    if joint and len(widths) != 1:
        raise ValueError(f"a joint projection needs matrices of equal width, got widths {sorted(widths)}")
    k = len(matrices)
    plan = plan_projection(len(index) * k, method, p)
    used, fit_params = plan["method"], plan.pop("fit_params")
    sub_labels = None if labels is None else np.asarray(labels)[index]
    # the fit sample is of items, so both modalities of an item are fitted (or placed) together
    fit_pos = subsample_index(len(index), max(1, plan["fit_points"] // k), sub_labels, seed)
    rest = np.setdiff1d(np.arange(len(index)), fit_pos, assume_unique=True)
    # the stratified quotas round down: say what was fitted, not what was asked
    plan["fit_points"], plan["transformed"] = len(fit_pos) * k, len(rest) * k
    blocks = [rest[s:s + TRANSFORM_BLOCK] for s in range(0, len(rest), TRANSFORM_BLOCK)]
    # progress shares: fitting, then the transform blocks, by point count
    fit_share = len(fit_pos) / max(len(index), 1)
    coords = [np.empty((len(index), 2), dtype=np.float32) for _ in matrices]

    def place(model: Any, i: int, lo: float, hi: float) -> None:
        for b, block in enumerate(blocks):
            progress(lo + (hi - lo) * b / len(blocks),
                     f"{used.upper()}.transform: {b * TRANSFORM_BLOCK:,} / {len(rest):,} points"
                     + (f" of matrix {i + 1}" if k > 1 else ""))
            coords[i][block] = _transform_map(model, _prepare(_take(matrices[i], index[block]), metric))

    if joint:
        xs = [_prepare(_take(m, index[fit_pos]), metric) for m in matrices]
        model, fitted = _fit_map(np.concatenate(xs), used, fit_params, progress, 0.0, fit_share)
        del xs
        for i, part in enumerate(np.split(fitted, k)):
            coords[i][fit_pos] = part
            place(model, i, fit_share + (1 - fit_share) * i / k, fit_share + (1 - fit_share) * (i + 1) / k)
    else:
        for i, m in enumerate(matrices):
            lo, hi = i / k, (i + 1) / k
            mid = lo + (hi - lo) * fit_share
            model, coords[i][fit_pos] = _fit_map(_prepare(_take(m, index[fit_pos]), metric), used, fit_params,
                                                 progress, lo, mid)
            place(model, i, mid, hi)
            coords[i] = _standardise(coords[i]).astype(np.float32)  # all rows, fitted and placed
            coords[i][:, 0] += 5.0 * i  # side by side: separate spaces share no axes
    progress(1.0, "projection ready")
    return Projection(coords=coords, index=index.astype(np.int64), method=used, joint=bool(joint), params=p,
                      seconds=round(time.perf_counter() - start, 3),
                      fit_index=None if len(rest) == 0 else fit_pos.astype(np.int64), plan=plan)


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
    if projection.fit_index is not None:
        arrays["fit_index"] = projection.fit_index
    meta["plan"] = projection.plan
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
            fit_index = z["fit_index"] if "fit_index" in z.files else None
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"{path}: not a stored projection ({exc})") from None
    return Projection(coords=coords, index=index, method=meta["method"], joint=bool(meta["joint"]),
                      params=meta["params"], seconds=float(meta.get("seconds", 0.0)), fit_index=fit_index,
                      plan=dict(meta.get("plan") or {}))


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
