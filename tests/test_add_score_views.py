"""tools/add_score_views.py: its chunk cache must not serve views computed with other settings."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("verovio")
pytest.importorskip("resvg_py")

from crossmodal_core.features import score_image as score_image_mod  # noqa: E402
from crossmodal_core.notes import Fragment  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _tool():
    spec = importlib.util.spec_from_file_location("add_score_views", ROOT / "tools" / "add_score_views.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_chunk_cache_is_keyed_by_the_image_geometry(tmp_path, monkeypatch):
    """A changed image parameter (columns per quarter note) recomputes the chunk instead of
    returning the images cached with the old one."""
    monkeypatch.setenv("CROSSMODAL_HOME", str(tmp_path))
    tool = _tool()
    raw = json.loads((ROOT / "assets" / "datasets" / "music21_lyrics" / "fragments.json").read_text(encoding="utf-8"))
    fragment = Fragment.from_dict(raw[0])
    first, _ = tool.compute([fragment], jobs=1, progress=False)
    monkeypatch.setattr(score_image_mod, "PX_PER_QUARTER", score_image_mod.PX_PER_QUARTER / 2)
    expected, _, _ = score_image_mod.score_image(fragment)  # independent: the view computed directly
    assert not np.array_equal(expected, first["score_image"][0, 0])  # the parameter matters for this fragment
    second, _ = tool.compute([fragment], jobs=1, progress=False)
    np.testing.assert_array_equal(second["score_image"][0, 0], expected)


def test_a_folder_that_is_not_a_built_dataset_is_a_clear_error(tmp_path, capsys):
    tool = _tool()
    folder = tmp_path / "not-built"
    folder.mkdir()
    assert tool.main(["--out", str(folder), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert str(folder) in err and "Traceback" not in err


def test_a_fragment_that_cannot_be_engraved_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("CROSSMODAL_HOME", str(tmp_path))
    tool = _tool()
    raw = json.loads((ROOT / "assets" / "datasets" / "music21_lyrics" / "fragments.json").read_text(encoding="utf-8"))
    fragment = Fragment.from_dict(raw[0])

    def refuse(*_args, **_kwargs):
        raise score_image_mod.ScoreImageError("the engraving has no five-line staff")

    monkeypatch.setattr(tool.build_mod, "fragment_score_views", refuse)
    with pytest.raises(ValueError, match=fragment.fragment_id):
        tool.compute([fragment], jobs=1, progress=False)


def test_an_error_in_a_worker_stops_the_other_chunks(tmp_path, monkeypatch):
    """With --jobs 2, one fragment that fails must end the run at once: the queued chunks are
    not computed first (on the corpus that was up to half an hour before the error showed)."""
    import os
    import time

    import sys

    monkeypatch.setenv("CROSSMODAL_HOME", str(tmp_path))
    tool = _tool()
    monkeypatch.setitem(sys.modules, "add_score_views", tool)  # the pool pickles _chunk by its module
    raw = json.loads((ROOT / "assets" / "datasets" / "music21_lyrics" / "fragments.json").read_text(encoding="utf-8"))
    fragments = [Fragment.from_dict(d) for d in raw[:7]]
    done = tmp_path / "done"
    done.mkdir()
    bad = fragments[0].fragment_id

    def views(fr, _y):
        if fr.fragment_id == bad:
            raise score_image_mod.ScoreImageError("the engraving has no five-line staff")
        time.sleep(1.0)
        (done / f"{os.getpid()}-{time.monotonic_ns()}").touch()
        return {"score_image": np.zeros((1, 64, 256), np.uint8), "audio_mel": np.zeros((1, 64, 128), np.uint8),
                "score_t0": 0.0, "score_cols_per_s": 1.0}

    monkeypatch.setattr(tool, "CHUNK", 1)
    monkeypatch.setattr(tool.build_mod, "fragment_score_views", views)
    monkeypatch.setattr("crossmodal_core.synth.synthesize", lambda fr, sample_rate: np.zeros(100, np.float32))
    with pytest.raises(ValueError, match=bad):
        tool.compute(fragments, jobs=2, progress=False)
    time.sleep(1.5)  # a worker left running would finish its fragment by now
    assert len(list(done.iterdir())) < len(fragments) - 1
