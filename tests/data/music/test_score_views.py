"""The committed dataset's image views (score_image, audio_mel, score_image_seq): row-aligned with
the fragments (row i is fragment i's engraving and audio), time-aligned with audio_seq, and a
dataset whose image views have the wrong rank, dtype or size is refused with a clear message."""

import json

import numpy as np
import pytest

pytest.importorskip("verovio")

from crossmodal_core.data.dataset import DatasetError  # noqa: E402
from crossmodal_core.data.io import save_dataset  # noqa: E402
from crossmodal_core.data.music import build as build_mod  # noqa: E402
from crossmodal_core.data.music.build import load_music_dataset  # noqa: E402
from crossmodal_core.features.score_image import score_image  # noqa: E402
from crossmodal_core.store import assets_dir  # noqa: E402

COMMITTED = assets_dir() / "datasets" / "music21_lyrics"
pytestmark = pytest.mark.skipif(not (COMMITTED / "dataset.npz").exists(), reason="no committed music dataset")


@pytest.fixture(scope="module")
def committed():
    return load_music_dataset(COMMITTED)


def test_views_shapes_dtypes_and_order(committed):
    ds, fragments = committed
    n = ds.n_items
    assert ds.views["score_image"].shape == (n, 1, 64, 256) and ds.views["score_image"].dtype == np.uint8
    assert ds.views["audio_mel"].shape == (n, 1, 64, 128) and ds.views["audio_mel"].dtype == np.uint8
    assert ds.views["score_image_seq"].shape == (n, 10, 256) and ds.views["score_image_seq"].dtype == np.float32
    assert list(ds.item_ids) == [f.fragment_id for f in fragments]
    # every fragment has ink and sound; audio_mel's padding starts where its clip ends
    assert (ds.views["score_image"].reshape(n, -1).max(axis=1) > 0).all()
    assert (ds.views["audio_mel"].reshape(n, -1).max(axis=1) == 60).all()


@pytest.mark.parametrize("i", [0, 4321, -1])
def test_row_i_is_the_engraving_and_audio_of_fragment_i(committed, i):
    from crossmodal_core.features.audio import audio_mel
    from crossmodal_core.synth import synthesize

    ds, fragments = committed
    fr = fragments[i]
    image, t0, cols_per_s = score_image(fr)
    np.testing.assert_array_equal(ds.views["score_image"][i, 0], image)
    assert ds.metadata["score_image_t0"][i] == t0 and ds.metadata["score_image_cols_per_s"][i] == cols_per_s
    np.testing.assert_array_equal(ds.views["audio_mel"][i, 0], audio_mel(synthesize(fr, build_mod.SAMPLE_RATE),
                                                                          build_mod.SAMPLE_RATE))


def test_score_image_seq_follows_the_audio_segments(committed):
    """Segment k of score_image_seq covers the time of segment k of audio_seq (and sheet_seq):
    within a fragment, the ink in a segment sits higher where the notes sounding then are
    higher. Compare the ink's mean row (staff lines masked) with sheet_seq's mean sounding
    pitch, both centred per fragment; the same with the segments reversed is the control."""
    ds, _ = committed
    n = ds.n_items
    seq = ds.views["score_image_seq"].reshape(n, 10, 64, 4).sum(axis=3)  # (n, 10, rows)
    seq[:, :, [r + d for r in (20, 26, 32, 38, 44) for d in (-1, 0, 1)]] = 0  # the staff lines
    mass = seq.sum(axis=2)
    centre = (seq * np.arange(64)).sum(axis=2) / np.maximum(mass, 1e-9)
    pitch, sounding = ds.views["sheet_seq"][:, :, 25], ds.views["sheet_seq"][:, :, 24]

    def corr(rows, ink):
        ok = (ink > 0.5) & (sounding > 0.5)
        a, b = np.where(ok, rows, np.nan), np.where(ok, pitch, np.nan)
        a, b = a - np.nanmean(a, axis=1, keepdims=True), b - np.nanmean(b, axis=1, keepdims=True)
        keep = np.isfinite(a) & np.isfinite(b)
        return np.corrcoef(a[keep], b[keep])[0, 1]

    aligned, reversed_ = corr(centre, mass), corr(centre[:, ::-1], mass[:, ::-1])
    assert aligned < -0.3 and aligned < reversed_ - 0.25, (aligned, reversed_)  # higher pitch = smaller row


def _first_rows(ds, n):
    """The first ``n`` rows as a dataset that validates (label sets keep only their classes)."""
    small = ds.subset(np.arange(n))
    for name, lab in small.labels.items():
        kept, small.labels[name] = np.unique(lab, return_inverse=True)
        small.class_names[name] = [small.class_names[name][k] for k in kept]
    return small


def _copy_with(tmp_path, committed, name, value, drop_meta=None):
    ds, fragments = committed
    small = _first_rows(ds, 4)
    small.views = {k: v for k, v in small.views.items() if k != "score_image_seq"}
    small.views[name] = value
    if drop_meta:
        small.metadata.pop(drop_meta)
    folder = tmp_path / "music"
    folder.mkdir()
    save_dataset(small, folder / "dataset.npz")
    (folder / "fragments.json").write_text(json.dumps([f.to_dict() for f in fragments[:4]]))
    return folder


@pytest.mark.parametrize("name, make, message", [
    ("score_image", lambda v: v[:, 0], "must be .n, 1, 64, 256. uint8, got shape .4, 64, 256."),
    ("score_image", lambda v: v.astype(np.float32), "uint8, got shape .4, 1, 64, 256. float32"),
    ("score_image", lambda v: v[:, :, :32], "got shape .4, 1, 32, 256."),
    ("audio_mel", lambda v: v[..., :64], "'audio_mel' must be .n, 1, 64, 128. uint8"),
])
def test_wrong_rank_dtype_or_size_is_refused(tmp_path, committed, name, make, message):
    ds, _ = committed
    folder = _copy_with(tmp_path, committed, name, make(ds.views[name][:4]))
    with pytest.raises(DatasetError, match=message):
        load_music_dataset(folder)


def test_score_image_without_its_time_axis_is_refused(tmp_path, committed):
    ds, _ = committed
    folder = _copy_with(tmp_path, committed, "score_image", ds.views["score_image"][:4], drop_meta="score_image_t0")
    with pytest.raises(DatasetError, match="score_image_t0"):
        load_music_dataset(folder)


def test_a_dataset_built_before_the_image_views_still_loads(tmp_path, committed):
    ds, fragments = committed
    folder = tmp_path / "old"
    folder.mkdir()
    old = _first_rows(ds, 3)
    old.views = {k: v for k, v in old.views.items() if k in ("audio", "sheet", "lyrics")}
    save_dataset(old, folder / "dataset.npz")
    (folder / "fragments.json").write_text(json.dumps([f.to_dict() for f in fragments[:3]]))
    loaded, _ = load_music_dataset(folder)
    assert set(loaded.views) == {"audio", "sheet", "lyrics"}
