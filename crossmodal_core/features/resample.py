"""Area resampling along the last axis (time / image columns), shared by the image and
spectrogram views: squeezing keeps the total (ink, energy), stretching interpolates."""

from __future__ import annotations

import numpy as np


def resample_columns(image: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Area-average the columns of ``image`` over the intervals ``[edges[j], edges[j+1])``.

    Parameters
    ----------
    image : (..., w) array; column ``i`` covers ``[i, i + 1)``
    edges : (m + 1,) non-decreasing positions in columns (fractional, may exceed ``[0, w]``:
        outside counts as zeros)

    Returns
    -------
    (..., m) float64: the mean over each interval (a zero-length interval gives the value at
    that position), so squeezing keeps the total ink and stretching interpolates.
    """
    img = np.asarray(image, dtype=np.float64)
    w = img.shape[-1]
    cum = np.concatenate([np.zeros(img.shape[:-1] + (1,)), np.cumsum(img, axis=-1)], axis=-1)
    e = np.asarray(edges, dtype=np.float64)

    def integral(x: np.ndarray) -> np.ndarray:  # the integral of the column step function up to x
        x = np.clip(x, 0.0, float(w))
        i = np.minimum(np.floor(x).astype(np.int64), w - 1) if w else np.zeros_like(x, dtype=np.int64)
        frac = x - i
        return cum[..., i] + frac * img[..., i]

    lo, hi = e[:-1], e[1:]
    width = hi - lo
    area = integral(hi) - integral(lo)
    point = np.where((lo >= 0) & (lo < w), img[..., np.clip(np.floor(lo).astype(np.int64), 0, max(w - 1, 0))], 0.0)
    safe = np.where(width > 1e-12, width, 1.0)
    return np.where(width > 1e-12, area / safe, point)
