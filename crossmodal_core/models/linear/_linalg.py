"""Shared numerics of the linear CCA family: ridge, Cholesky whitening, SVD, sign convention.

Every linear model reduces to the same last step: given the (centred) within-view covariances
``Cxx`` (dx, dx), ``Cyy`` (dy, dy) and the cross-covariance ``Cxy`` (dx, dy), solve

    max  wxᵀ Cxy wy   s.t.  wxᵀ (Cxx + rx I) wx = 1,  wyᵀ (Cyy + ry I) wy = 1

for ``k`` pairs of directions. With Cholesky factors ``Cxx + rx I = Lx Lxᵀ`` and
``Cyy + ry I = Ly Lyᵀ`` the whitened cross-covariance ``T = Lx⁻¹ Cxy Ly⁻ᵀ`` has the SVD
``T = U S Vᵀ``; then ``Wx = Lx⁻ᵀ U``, ``Wy = Ly⁻ᵀ V`` and the canonical correlations are the
singular values ``S``. Cholesky + triangular solves cost about a third of an ``eigh`` of the
same matrix, and the only decomposition of size ``max(dx, dy)`` is the SVD of a ``dx × dy``
matrix (128 × 1024 for VEGAS).

Conventions (shared by CCA, KCCA, ClusterCCA, ClusterKCCA):

- **Ridge.** ``reg_scale="mean_variance"`` (default) adds ``reg · mean(diag(C))`` to the
  diagonal of each view's covariance, so ``reg`` is scale-free: multiplying a view by a
  constant changes nothing, and ``reg=1e-3`` means "0.1 % of the average feature variance".
  ``reg_scale="absolute"`` adds ``reg`` itself (the reference code's ``1e-4 · I``).
- **Normalisation.** Covariances use ``1/n`` (biased); canonical variates have unit
  *regularised* variance: ``Wxᵀ (Cxx + rx I) Wx = I``.
- **Sign.** Each pair of directions is only defined up to a common sign flip. We fix it so
  that, in the first view's weight vector ``Wx[:, j]``, the entry of largest absolute value is
  positive (the first such entry on exact ties); ``Wy[:, j]`` flips with it, so the
  correlation stays positive. ``transform`` is therefore deterministic.
- **Precision.** Gram matrices may be accumulated in float32 (half the time of float64 for
  the same retrieval MAP); the factorisations always run in float64.
- **Gram matrices.** Every within-view Gram ``AᵀA`` is one BLAS ``?syrk`` (:func:`gram`): one
  triangle, half the multiply-adds of a general product, mirrored so the result is exactly
  symmetric. :func:`centred_statistics` streams the data once in row blocks: each block is
  shifted into a reused buffer, then feeds both syrks and the cross product, so centring is
  no separate full pass and no full-size centred copy is allocated. For VEGAS shapes the
  1024-d syrk is ~60 % of a CCA fit and runs near the core's float32 peak.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import linalg

__all__ = [
    "REG_SCALES",
    "check_reg",
    "ridge_amount",
    "solve_cca",
    "fix_signs",
    "centred",
    "column_correlations",
    "gram",
    "centred_statistics",
]

REG_SCALES = ("mean_variance", "absolute")


def check_reg(reg: float | Sequence[float], reg_scale: str, n_views: int = 2) -> tuple[float, ...]:
    """Validate ``reg`` (one non-negative float, or one per view) and ``reg_scale``."""
    if reg_scale not in REG_SCALES:
        raise ValueError(f"reg_scale must be one of {REG_SCALES}, got {reg_scale!r}")
    if np.ndim(reg) == 0:
        regs = (float(reg),) * n_views
    else:
        regs = tuple(float(r) for r in reg)
        if len(regs) != n_views:
            raise ValueError(f"reg must be a float or one float per view ({n_views}), got {reg!r}")
    for r in regs:
        if not np.isfinite(r) or r < 0:
            raise ValueError(f"reg must be finite and >= 0, got {reg!r}")
    return regs


def ridge_amount(cov: np.ndarray, reg: float, reg_scale: str) -> float:
    """The value added to the diagonal of ``cov`` (see the module docstring)."""
    if reg_scale == "mean_variance":
        scale = float(np.mean(np.diag(cov)))
        return reg * (scale if scale > 0 else 1.0)
    return float(reg)


def _cholesky(cov: np.ndarray, ridge: float, view: int) -> np.ndarray:
    c = np.array(cov, dtype=np.float64, copy=True)
    c[np.diag_indices_from(c)] += ridge
    try:
        return linalg.cholesky(c, lower=True, check_finite=False)
    except linalg.LinAlgError:
        raise ValueError(
            f"the covariance of view {view} is singular (more features than independent samples, "
            f"or constant features); use a larger reg (got ridge {ridge:g})"
        ) from None


def solve_cca(cxx: np.ndarray, cyy: np.ndarray, cxy: np.ndarray, n_components: int,
              reg: tuple[float, float], reg_scale: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Regularised CCA from covariance blocks.

    Parameters
    ----------
    cxx : (dx, dx) array, cyy : (dy, dy) array, cxy : (dx, dy) array
        Centred covariance blocks (any float dtype; factorised in float64).
    n_components : int
        Number of direction pairs ``k <= min(dx, dy)``.
    reg : (float, float)
        Ridge of each view, interpreted by ``reg_scale``.

    Returns
    -------
    wx : (dx, k) float64, wy : (dy, k) float64, correlations : (k,) float64, descending
        Signs fixed by :func:`fix_signs`.
    """
    lx = _cholesky(cxx, ridge_amount(cxx, reg[0], reg_scale), 0)
    ly = _cholesky(cyy, ridge_amount(cyy, reg[1], reg_scale), 1)
    t = linalg.solve_triangular(lx, np.asarray(cxy, dtype=np.float64), lower=True, check_finite=False)
    t = linalg.solve_triangular(ly, t.T, lower=True, check_finite=False).T
    u, s, vt = linalg.svd(t, full_matrices=False, check_finite=False, lapack_driver="gesdd")
    k = int(n_components)
    wx = linalg.solve_triangular(lx.T, u[:, :k], lower=False, check_finite=False)
    wy = linalg.solve_triangular(ly.T, vt[:k].T, lower=False, check_finite=False)
    wx, wy = fix_signs(wx, wy)
    return wx, wy, s[:k].copy()


def fix_signs(wx: np.ndarray, wy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flip each column pair so that the largest-|.| entry of ``wx[:, j]`` is positive."""
    if wx.shape[1] == 0:
        return wx, wy
    rows = np.argmax(np.abs(wx), axis=0)
    signs = np.sign(wx[rows, np.arange(wx.shape[1])])
    signs[signs == 0] = 1.0
    return wx * signs, wy * signs


def centred(a: np.ndarray, mean: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``a - mean`` as a new ``dtype`` array, in one pass (no float64 temporary for float32)."""
    return np.subtract(a, np.asarray(mean, dtype=dtype), dtype=dtype)


def column_correlations(za: np.ndarray, zb: np.ndarray) -> np.ndarray:
    """Pearson correlation of each column pair ``(za[:, j], zb[:, j])``; 0 where a column is constant."""
    za = np.asarray(za, dtype=np.float64)
    zb = np.asarray(zb, dtype=np.float64)
    za = za - za.mean(axis=0)
    zb = zb - zb.mean(axis=0)
    num = np.einsum("ij,ij->j", za, zb)
    den = np.sqrt(np.einsum("ij,ij->j", za, za) * np.einsum("ij,ij->j", zb, zb))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def gram(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a.T @ a`` (d, d) by one BLAS syrk, exactly symmetric, in ``a``'s dtype.

    NumPy's matmul recognises a product of an array with its own transpose (same buffer,
    transposed strides) and calls ``?syrk``, which computes one triangle -- half the
    multiply-adds of a general product -- and mirrors it. This function builds the operands
    so that the dispatch always happens (a C-contiguous float array, ``a.T`` a view of it).
    NumPy's bundled OpenBLAS is used rather than ``scipy.linalg.blas.ssyrk`` because on the
    benchmark machine SciPy's bundled build ran the same syrk ~10 % slower.

    Parameters
    ----------
    a : (n, d) array (float32 and float64 are kept; other dtypes become float64)
    out : (d, d) C-contiguous array of that dtype, optional: ``a.T @ a`` is ADDED to it

    Returns
    -------
    (d, d) array: ``out`` when given, else a new array.
    """
    a = np.asarray(a)
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    a = np.ascontiguousarray(a)
    product = np.matmul(a.T, a)
    if out is None:
        return product
    out += product
    return out


def centred_statistics(x: np.ndarray, y: np.ndarray | None, dtype: np.dtype, chunk_rows: int = 8192,
                       shift: Sequence[np.ndarray] | None = None):
    """Means, centred Gram matrices and centred cross product of one or two row-paired views.

    One pass over row blocks of ``chunk_rows`` rows: each block minus ``shift`` (default: the
    first block's means, which keeps the sums free of cancellation) goes into a reused
    ``dtype`` buffer, which feeds the syrk of each view (:func:`gram`) and the gemm of the
    cross product, summed in ``dtype`` (as BLAS sums one large product). Centring is therefore
    no separate full pass and no full-size centred copy is allocated. At the end the sums are
    re-centred on the exact means in float64: ``Σ (r − m)(r − m)ᵀ = Σ (r − s)(r − s)ᵀ − n δ δᵀ``
    with ``δ = m − s``, a tiny correction because ``s`` is already close to ``m``.

    Parameters
    ----------
    x : (n, d_x) array, y : (n, d_y) array or None
    dtype : float32 or float64 (precision of the block products)
    chunk_rows : rows per block (memory: ``chunk_rows · (d_x + d_y)`` numbers of ``dtype``)
    shift : optional (d_x,), (d_y,) vectors to subtract instead of the first block's means

    Returns
    -------
    means : list of (d_i,) float64
    grams : list of (d_i, d_i) float64, ``Σ_rows (r − m)(r − m)ᵀ`` (not divided by n), symmetric
    cross : (d_x, d_y) float64 ``Σ (x − mx)(y − my)ᵀ``, or None without ``y``
    """
    dtype = np.dtype(dtype)
    views = [x] if y is None else [x, y]
    n = x.shape[0]
    step = max(1, min(int(chunk_rows), n))
    if shift is None:
        shift = [v[:step].mean(axis=0, dtype=np.float64) for v in views]
    # the shift actually subtracted is the dtype-rounded one, so the means re-add exactly that
    shift_cast = [np.asarray(sv, dtype=np.float64).astype(dtype) for sv in shift]
    shift = [sv.astype(np.float64) for sv in shift_cast]
    buffers = [np.empty((step, v.shape[1]), dtype=dtype) for v in views]
    grams = [np.zeros((v.shape[1], v.shape[1]), dtype=dtype) for v in views]
    sums = [np.zeros(v.shape[1]) for v in views]
    cross = None if y is None else np.zeros((x.shape[1], y.shape[1]), dtype=dtype)
    ones = np.ones(step, dtype=dtype)
    for start in range(0, n, step):
        m = min(step, n - start)
        blocks = []
        for v, view in enumerate(views):
            block = buffers[v][:m]
            np.subtract(view[start:start + m], shift_cast[v], out=block, casting="unsafe")
            sums[v] += ones[:m] @ block  # a gemv on the fresh block, no float64 temporary
            gram(block, out=grams[v])
            blocks.append(block)
        if cross is not None:
            cross += blocks[0].T @ blocks[1]
    means, centred_grams = [], []
    for v in range(len(views)):
        delta = sums[v] / n  # mean − shift
        means.append(shift[v] + delta)
        centred_grams.append(grams[v].astype(np.float64) - n * np.outer(delta, delta))
    if cross is not None:
        cross = cross.astype(np.float64) - n * np.outer(sums[0] / n, sums[1] / n)
    return means, centred_grams, cross
