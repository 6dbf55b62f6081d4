"""The fixed image descriptor of the linear score-image baseline."""

from __future__ import annotations

import numpy as np
import pytest

from crossmodal_core.features.image_descriptors import DEFAULT_BLOCK, add_descriptor_views, pixel_blocks


def _reference(images: np.ndarray, bh: int, bw: int, scale: float) -> np.ndarray:
    """Tile means by explicit loops (edge tiles average the pixels they have)."""
    n, c, h, w = images.shape
    rows = []
    for i in range(n):
        feats = []
        for ch in range(c):
            for r in range(0, h, bh):
                for q in range(0, w, bw):
                    feats.append(images[i, ch, r:r + bh, q:q + bw].astype(np.float64).mean() * scale)
        rows.append(feats)
    return np.asarray(rows)


@pytest.mark.parametrize("shape,block", [((3, 1, 16, 32), (8, 8)), ((2, 2, 10, 13), (4, 4)), ((4, 1, 5, 7), (2, 3))])
def test_block_means_match_a_loop_reference(shape, block):
    images = np.random.default_rng(0).integers(0, 256, size=shape).astype(np.uint8)
    got = pixel_blocks(images, block, chunk=2)
    assert got.dtype == np.float32
    assert got.shape == (shape[0], shape[1] * -(-shape[2] // block[0]) * -(-shape[3] // block[1]))
    np.testing.assert_allclose(got, _reference(images, *block, 1 / 255), rtol=1e-6, atol=1e-7)


def test_hand_case_ink_fraction_and_float_input():
    img = np.zeros((1, 1, 4, 8), np.uint8)
    img[0, 0, :, 0] = 255          # one full stroke in the left tile: 4 of 16 pixels
    img[0, 0, 0, 4:8] = 255        # a beam in the right tile: 4 of 16 pixels
    img[0, 0, 1, 4:6] = 255        # + 2 pixels
    np.testing.assert_allclose(pixel_blocks(img, (4, 4)), [[4 / 16, 6 / 16]])
    mel = np.arange(16, dtype=np.float16).reshape(1, 1, 2, 8)  # float input is not rescaled
    np.testing.assert_allclose(pixel_blocks(mel, (2, 4)), [[np.arange(16).reshape(2, 8)[:, :4].mean(),
                                                           np.arange(16).reshape(2, 8)[:, 4:].mean()]])


def test_blank_images_give_zeros_and_more_ink_more_signal():
    blank = np.zeros((2, 1, 64, 512), np.uint8)
    assert not pixel_blocks(blank).any()
    assert pixel_blocks(blank).shape == (2, 64 // DEFAULT_BLOCK[0] * 512 // DEFAULT_BLOCK[1])
    some = blank.copy()
    some[1, 0, 10:20, 100:300] = 255
    f = pixel_blocks(some)
    assert f[1].sum() > f[0].sum() == 0


def test_wrong_inputs_are_refused_and_derived_views_added():
    with pytest.raises(ValueError, match=r"\(n, C, H, W\)"):
        pixel_blocks(np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="block"):
        pixel_blocks(np.zeros((2, 1, 8, 8)), (0, 2))
    views = {"audio": np.zeros((3, 5), np.float32), "score_image": np.zeros((3, 1, 16, 16), np.uint8)}
    out = add_descriptor_views(views)
    assert set(out) == {"audio", "score_image", "score_image_pix"}
    assert out["audio"] is views["audio"] and out["score_image_pix"].shape == (3, 16 // DEFAULT_BLOCK[0] * 16 // DEFAULT_BLOCK[1])
