"""Fixed (untrained) descriptors of image views, for the linear baselines on score images.

An image view is ``(n, C, H, W)`` (the score-image raster: uint8, ink 255, paper 0). The
linear models (CCA, C-CCA, ...) take flat ``(n, d)`` views, so the image baseline is "CCA on a
fixed image descriptor": the deep models' CNN towers learn their features, these do not.

``pixels``: block means over ``block = (bh, bw)`` pixel tiles (:data:`DEFAULT_BLOCK`), scaled to [0, 1] for uint8
input, flattened row-major per channel: ``(n, C · ceil(H / bh) · ceil(W / bw))`` float32. A
partial tile at the right / bottom edge is averaged over the pixels it has. Nothing is fitted,
so the view is the same for every fold (no test statistics leak into training).

The derived view is offered under :data:`DERIVED_SUFFIX` (``score_image`` ->
``score_image_pix``) by :func:`add_descriptor_views`.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

__all__ = ["DERIVED_SUFFIX", "DEFAULT_BLOCK", "pixel_blocks", "add_descriptor_views"]

#: name of the derived flat view of an image view ``<name>``: ``<name>_pix``
DERIVED_SUFFIX = "_pix"
#: tile of :func:`pixel_blocks` by default: 4 rows x 8 columns, so a 64 x 256 score image gives
#: 16 x 32 = 512 features. Chosen by measurement (CCA, 10 components, ridge 1e-3, score_image <->
#: audio, work-grouped folds 0 / 1, pool = the test fold, MRR image->audio / audio->image):
#: 4 x 8 tiles 0.280 / 0.284 and 0.266 / 0.269; 4 x 4 0.258 / 0.264, 0.255 / 0.249; 8 x 8
#: 0.186 / 0.196, 0.173 / 0.172; 8 x 4 0.181 / 0.181; 16 x 16 0.087 / 0.087. scikit-image's HOG
#: (9 orientations, 8 x 16-pixel cells, 1 x 1 blocks, 1,152 features) reached 0.304 / 0.291 and
#: 0.258 / 0.245: a tie within the fold-to-fold spread, for a new dependency and 40x the CPU
#: (26 s against 0.6 s for the 8,149 images), so the pixel tiles are the baseline.
DEFAULT_BLOCK = (4, 8)


def pixel_blocks(images: np.ndarray, block: tuple[int, int] = DEFAULT_BLOCK, chunk: int = 512) -> np.ndarray:
    """Block-mean downsampling of ``images`` ``(n, C, H, W)``, flattened to ``(n, d)`` float32.

    Parameters
    ----------
    images : (n, C, H, W) numeric array; uint8 is scaled to [0, 1] (ink fraction of a tile)
    block : (bh, bw) tile height and width in pixels, >= 1
    chunk : items processed at a time (bounds the float32 working copy to ``chunk`` images)

    Returns
    -------
    (n, C * ceil(H / bh) * ceil(W / bw)) float32
    """
    a = np.asarray(images)
    if a.ndim != 4:
        raise ValueError(f"pixel_blocks takes images (n, C, H, W), got shape {a.shape}")
    if a.dtype.kind not in "biuf":
        raise ValueError(f"pixel_blocks takes numeric images, got dtype {a.dtype}")
    bh, bw = (int(b) for b in block)
    if bh < 1 or bw < 1:
        raise ValueError(f"block must be two positive integers, got {block!r}")
    n, c, h, w = a.shape
    gh, gw = -(-h // bh), -(-w // bw)
    scale = 1.0 / 255.0 if a.dtype == np.uint8 else 1.0
    # pixels per tile (edge tiles are smaller): sums / counts gives the mean over real pixels
    counts = np.outer(np.diff(np.minimum(np.arange(gh + 1) * bh, h)), np.diff(np.minimum(np.arange(gw + 1) * bw, w)))
    out = np.empty((n, c * gh * gw), dtype=np.float32)
    for start in range(0, n, max(1, int(chunk))):
        x = a[start:start + chunk].astype(np.float32)
        if gh * bh != h or gw * bw != w:
            x = np.pad(x, ((0, 0), (0, 0), (0, gh * bh - h), (0, gw * bw - w)))
        sums = x.reshape(len(x), c, gh, bh, gw, bw).sum(axis=(3, 5), dtype=np.float64)
        out[start:start + len(x)] = (sums / counts * scale).reshape(len(x), -1)
    return out


def add_descriptor_views(views: Mapping[str, np.ndarray], block: tuple[int, int] = DEFAULT_BLOCK) -> dict[str, np.ndarray]:
    """``views`` plus ``<name>_pix`` (:func:`pixel_blocks`) for every rank-4 view ``<name>``
    that does not have one yet; other views are returned as they are (same objects)."""
    out = dict(views)
    for name, v in views.items():
        derived = f"{name}{DERIVED_SUFFIX}"
        if getattr(v, "ndim", 0) == 4 and derived not in out:
            out[derived] = pixel_blocks(v, block)
    return out
