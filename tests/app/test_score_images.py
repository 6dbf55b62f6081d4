"""Score-image thumbnails: the PNG round-trips the stored raster (decoded independently with
Pillow), and the modality layer pairs audio with the score image."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from crossmodal_core.appdata import images


def engraving_like(h: int = 48, w: int = 256, seed: int = 0) -> np.ndarray:
    """A raster with the contract's conventions: ink = 255 on paper = 0, anti-aliased grey
    edges, five staff lines, some note heads, blank right padding."""
    rng = np.random.default_rng(seed)
    a = np.zeros((h, w), dtype=np.uint8)
    for y in range(10, 35, 6):
        a[y, 4:180] = 255
    for x in rng.integers(8, 170, 12):
        y = int(rng.integers(8, 36))
        a[y:y + 4, x:x + 5] = rng.integers(60, 256, (4, 5), dtype=np.uint8)
    return a


def test_png_round_trips_the_raster_exactly():
    a = engraving_like()
    png = images.raster_png(a)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(png)) as img:  # decoded by Pillow itself, not by our helper
        assert img.mode == "L" and img.size == (a.shape[1], a.shape[0])
        shown = np.asarray(img)
    # shown as a score looks: black ink (0) on white paper (255)
    np.testing.assert_array_equal(shown, 255 - a)
    np.testing.assert_array_equal(images.decode_png(png), a)


def test_trim_cuts_only_the_blank_padding():
    a = engraving_like()
    last_ink = int(np.nonzero(a.max(axis=0))[0][-1])
    trimmed = images.decode_png(images.raster_png(a, trim=True))
    assert trimmed.shape == (a.shape[0], last_ink + 1 + 6)
    np.testing.assert_array_equal(trimmed, a[:, :last_ink + 7])
    blank = np.zeros((8, 20), dtype=np.uint8)  # nothing to trim to: the whole raster stays
    np.testing.assert_array_equal(images.decode_png(images.raster_png(blank, trim=True)), blank)


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.float32), np.zeros((1, 4, 4), np.uint8),
                                 np.zeros((0, 4), np.uint8)])
def test_png_refuses_what_is_not_a_raster(bad):
    with pytest.raises(ValueError, match="raster"):
        images.raster_png(bad)
