"""Image / spectrogram views (n, C, H, W): the CNN tower, rank dispatch, fits, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crossmodal_core.metrics import map_both_directions
from crossmodal_core.models import registry
from crossmodal_core.models.deep import DCCA, ContrastiveAligner, TNNClusterCCA, TorchCrossModalEstimator, UGAAR
from crossmodal_core.models.deep.towers import ConvTower, make_tower, make_towers, stem_stride


def stripes(n: int = 160, h: int = 16, w: int = 64, n_classes: int = 4, seed: int = 0):
    """Score-like rasters (uint8, ink 255) whose class sets the spacing of vertical strokes
    (random phase, one random horizontal distractor line), and a flat view that carries the
    class only weakly (one-hot through a random map, plus strong noise)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    img = np.zeros((n, 1, h, w), np.uint8)
    for i, c in enumerate(y):
        period = 3 + 2 * int(c)
        img[i, 0, :, rng.integers(period)::period] = 255
        img[i, 0, rng.integers(h), :] = 255
    flat = np.eye(n_classes)[y] @ rng.normal(size=(n_classes, 8)) + 1.0 * rng.normal(size=(n, 8))
    return img, flat.astype(np.float32), y


@pytest.mark.parametrize("shape", [(1, 64, 512), (1, 32, 256), (1, 64, 128), (2, 9, 13), (1, 1, 5)])
def test_cnn_tower_output_shape_for_several_sizes(shape):
    tower = make_tower(shape, hidden=(16,), out_features=7)
    assert isinstance(tower, ConvTower)
    x = torch.randint(0, 256, (3, *shape), dtype=torch.uint8)
    assert tower(x).shape == (3, 7)
    assert tower(x.to(torch.float16)).shape == (3, 7)  # log-mels arrive as float16


def test_stem_stride_keeps_the_first_feature_map_small():
    # the smallest power of two bringing H x W to <= 4096 pixels
    assert stem_stride(64, 512) == 4 and stem_stride(64, 256) == 2 and stem_stride(64, 128) == 2
    assert stem_stride(64, 64) == 1 and stem_stride(1, 5) == 1 and stem_stride(65, 64) == 2
    assert make_tower((1, 64, 512), (), 4).stride == 4


def test_a_one_pixel_stroke_anywhere_changes_the_output():
    # the stem kernel is larger than its stride: no pixel column is skipped
    tower = make_tower((1, 16, 64), (), 4).eval()
    blank = torch.zeros(1, 1, 16, 64, dtype=torch.uint8)
    base = tower(blank)
    for col in range(0, 64, 5):
        x = blank.clone()
        x[0, 0, :, col] = 255
        assert not torch.allclose(tower(x), base), col


def test_rank_picks_the_tower_and_sequences_are_refused():
    assert isinstance(make_tower(12, (8,), 3), torch.nn.Sequential)
    assert isinstance(make_tower((12,), (8,), 3), torch.nn.Sequential)
    towers = make_towers({"a": 12, "b": (1, 8, 16)}, hidden=(8,), out_features=3)
    assert isinstance(towers["a"], torch.nn.Sequential) and isinstance(towers["b"], ConvTower)
    with pytest.raises(ValueError, match=r"sequence view .* sequence model"):
        make_tower((10, 12), (8,), 3)
    with pytest.raises(ValueError, match="rank 5"):
        make_tower((1, 2, 3, 4), (8,), 3)
    with pytest.raises(ValueError, match=r"ConvTower built for \(batch, 1, 8, 16\)"):
        towers["b"](torch.zeros(2, 1, 8, 15))


def test_flat_and_image_models_refuse_wrong_ranks_clearly():
    img, flat, y = stripes(n=40)
    seq = np.repeat(flat[:, None, :], 5, axis=1)
    with pytest.raises(ValueError, match=r"sequence view .* takes 2-D"):
        DCCA(n_components=2, epochs=1, progress=False).fit([seq, flat])
    # a deep model without image towers names the ones that have them
    acmr = registry.make_model("acmr", epochs=1, progress=False)
    with pytest.raises(ValueError, match="takes flat .* image views .* DCCA"):
        acmr.fit([img, flat], y)
    with pytest.raises(ValueError, match="ccca-first.*network-first"):
        TNNClusterCCA(epochs=1, progress=False).fit([img, flat], y)
    fitted = DCCA(n_components=2, hidden=(8,), epochs=1, batch_size=40, progress=False).fit([img, flat])
    with pytest.raises(ValueError, match=r"fitted on images \(n, 1, 16, 64\)"):
        fitted.transform([flat, flat])
    with pytest.raises(ValueError, match=r"fitted on images"):
        fitted.transform([img[:, :, :8], flat])
    with pytest.raises(ValueError, match="image view .* flat features"):
        fitted.transform([img, img])


def test_input_scaling_is_one_global_mean_and_std_per_channel():
    # the running statistics of the input batch norm tend to the pixel mean / variance of the
    # training images (numpy reference); a blank column stays finite in the output
    img, flat, _ = stripes(n=64)
    img[:, :, :, :3] = 0  # blank margin
    tower = make_tower((1, 16, 64), (8,), 3)
    tower.input_norm.momentum = None  # cumulative average: exact over the batches seen
    tower.train()
    x = torch.as_tensor(img)
    tower(x)
    pix = img.astype(np.float64)
    assert tower.input_norm.running_mean.item() == pytest.approx(pix.mean(), rel=1e-5)
    assert tower.input_norm.running_var.item() == pytest.approx(pix.var(ddof=1), rel=1e-4)
    assert torch.isfinite(tower.eval()(torch.zeros(2, 1, 16, 64, dtype=torch.uint8))).all()


@pytest.mark.parametrize("make", [
    lambda: DCCA(n_components=3, hidden=(32,), epochs=12, batch_size=60, lr=3e-3, progress=False),
    lambda: ContrastiveAligner(n_components=8, hidden=(32,), epochs=12, batch_size=60, progress=False),
    lambda: TNNClusterCCA(order="network-first", n_components=3, hidden=(32,), epochs=12, batch_size=60,
                          progress=False),
], ids=["dcca", "contrastive", "tnn-ccca"])
def test_tiny_fit_on_images_beats_chance(make):
    img, flat, y = stripes(n=240, seed=1)
    train, test = np.arange(180), np.arange(180, 240)
    model = make().fit([img[train], flat[train]], y[train])
    z = model.transform([img[test], flat[test]])
    # chance class-level MAP with 4 balanced classes is about 0.25 (+ small-gallery bias)
    assert min(map_both_directions(z[0], z[1], y[test])) > 0.5
    assert model.n_features_in_ == [(1, 16, 64), 8]


def test_same_seed_same_model_and_checkpoint_round_trip(tmp_path):
    img, flat, y = stripes(n=120)
    kw = dict(n_components=2, hidden=(16,), epochs=2, batch_size=60, progress=False)
    a = DCCA(random_state=3, **kw).fit([img, flat])
    b = DCCA(random_state=3, **kw).fit([img, flat])
    c = DCCA(random_state=4, **kw).fit([img, flat])
    za, zb, zc = (m.transform([img, flat])[0] for m in (a, b, c))
    np.testing.assert_array_equal(za, zb)
    assert not np.allclose(za, zc)
    path = a.save(tmp_path / "dcca.pt")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    assert any(k.endswith("input_norm.running_mean") for k in payload["state_dict"])
    loaded = TorchCrossModalEstimator.load(path)
    assert loaded.n_features_in_ == [(1, 16, 64), 8]
    for u, v in zip(loaded.transform([img, flat]), a.transform([img, flat])):
        np.testing.assert_array_equal(u, v)


def test_ugaar_sheet_branch_takes_score_images(tmp_path):
    img, flat, _ = stripes(n=120)
    lyrics = np.random.default_rng(0).normal(size=(120, 6)).astype(np.float32)
    model = UGAAR(n_components=3, hidden_dims=(16,), epochs=2, patience=None, progress=False)
    model.fit([img, lyrics, flat])
    assert isinstance(model.module_.branches["sheet"], ConvTower)
    z = model.transform([img, lyrics, flat])
    assert [e.shape for e in z] == [(120, 3)] * 3
    loaded = TorchCrossModalEstimator.load(model.save(tmp_path / "u.pt"))
    for u, v in zip(loaded.transform([img, lyrics, flat]), z):
        np.testing.assert_array_equal(u, v)
    with pytest.raises(ValueError, match="image only as its sheet view"):
        UGAAR(n_components=3, epochs=1, progress=False).fit([flat, lyrics, img])
