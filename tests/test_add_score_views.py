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
