"""Score-image thumbnails for the pages: an image view's raster as PNG bytes, read from the
view array itself (never re-engraved per request).

The data contract of the music dataset's ``score_image`` view: ``(n, 1, H, W)`` uint8, ink =
255 and paper = 0 (what the CNN towers read). A thumbnail shows it the way a score looks,
black ink on white paper: pixel = 255 - raster, one grayscale PNG channel, same H x W (no
scaling, so the thumbnail is exactly what the model sees; the pages scale it for display).
"""

from __future__ import annotations

import io
from typing import Sequence

import numpy as np

from crossmodal_core.data.catalog import LoadedDataset
from crossmodal_core.models.trained import IMAGE_NDIM, modality_of

__all__ = ["SCORE_IMAGE_VIEW", "raster_views", "score_image_view", "raster", "raster_png", "decode_png",
           "item_png", "ink_width"]

#: the music dataset's engraving raster (see the module doc)
SCORE_IMAGE_VIEW = "score_image"


def raster_views(app: LoadedDataset) -> list[str]:
    """Views that are pictures to show: image-like ``(n, 1, H, W)`` uint8 views that are a
    modality of their own (``score_image``). A log-mel such as ``audio_mel`` is an input of
    the audio modality (:func:`crossmodal_core.models.trained.modality_of`), even when stored
    as uint8: the pages play the audio instead."""
    ds = app.dataset
    return [v for v in ds.view_names
            if ds.views[v].ndim == IMAGE_NDIM and ds.views[v].dtype == np.uint8 and ds.views[v].shape[1] == 1
            and modality_of(ds, v) == v]


def score_image_view(app: LoadedDataset) -> str | None:
    """The dataset's score raster view (:data:`SCORE_IMAGE_VIEW`, else the first raster), or None."""
    views = raster_views(app)
    return SCORE_IMAGE_VIEW if SCORE_IMAGE_VIEW in views else (views[0] if views else None)


def raster(app: LoadedDataset, view: str, row: int) -> np.ndarray:
    """The ``(H, W)`` uint8 raster of item ``row`` (ink = 255), read from the view (one row of
    a view on disk is read alone)."""
    if view not in raster_views(app):
        raise ValueError(f"{view!r} is not a raster view of {app.name!r} (rasters: {raster_views(app)})")
    n = app.dataset.n_items
    if not 0 <= int(row) < n:
        raise IndexError(f"row {row} outside the {n} items of {app.name!r}")
    return np.asarray(app.dataset.views[view][int(row)], dtype=np.uint8)[0]


def ink_width(image: np.ndarray, pad: int = 6) -> int:
    """Columns up to the last one with ink (ink = 255 - paper, any value > 0), plus ``pad``:
    the raster is padded on the right, so a short fragment can be shown without the blank."""
    cols = np.nonzero(np.asarray(image).max(axis=0) > 0)[0]
    return int(min(image.shape[1], (cols[-1] + 1 + pad) if len(cols) else image.shape[1]))


def raster_png(image: np.ndarray, trim: bool = False) -> bytes:
    """PNG bytes (8-bit grayscale) of a ``(H, W)`` uint8 raster with ink = 255, drawn black
    ink on white paper (pixel = 255 - value). ``trim``: cut the blank right padding
    (:func:`ink_width`). Raises ``ValueError`` for anything but a 2-D uint8 array."""
    from PIL import Image

    image = np.asarray(image)
    if image.ndim != 2 or image.dtype != np.uint8 or 0 in image.shape:
        raise ValueError(f"a raster is a non-empty (H, W) uint8 array, got {image.dtype} {image.shape}")
    if trim:
        image = image[:, :ink_width(image)]
    buf = io.BytesIO()
    # a 2-D uint8 array is mode "L" (8-bit grayscale)
    Image.fromarray(np.ascontiguousarray(255 - image)).save(buf, format="PNG")
    return buf.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """The raster back from :func:`raster_png`'s bytes: ``(H, W)`` uint8, ink = 255."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return 255 - np.asarray(img.convert("L"), dtype=np.uint8)


def item_png(app: LoadedDataset, row: int, view: str | None = None, trim: bool = False) -> bytes | None:
    """PNG of item ``row``'s score raster (``view`` default: :func:`score_image_view`), or
    None when the dataset has no raster view."""
    view = view or score_image_view(app)
    if view is None:
        return None
    return raster_png(raster(app, view, row), trim=trim)

