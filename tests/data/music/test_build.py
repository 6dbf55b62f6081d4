"""The build command on a few works: determinism, folds by work, files, bad scores, and the
CI check that a subset rebuild reproduces the committed dataset."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("music21")

from crossmodal_core.data.music import build as build_mod  # noqa: E402
from crossmodal_core.data.music.build import (  # noqa: E402
    build_music_dataset,
    load_music_dataset,
    select_scores,
    work_groups,
)
from crossmodal_core.data.music.corpus import ScoreRef, find_lyric_scores  # noqa: E402
from crossmodal_core.notes import Fragment, Note  # noqa: E402
from crossmodal_core import store  # noqa: E402
from crossmodal_core.data.dataset import DatasetError  # noqa: E402
from crossmodal_core.store import assets_dir  # noqa: E402

WORKS = ["bach/bwv269", "bach/bwv10.7", "trecento/PMFC_12_22-Benedicamus PMFC12.22",
         "trecento/PMFC_12_23-Benedicamus PMFC12.23", "webern/webern_dormi_jesu_op_16_no_2"]
COMMITTED = assets_dir() / "datasets" / "music21_lyrics"


def _frag(work, pitches, text):
    notes = [Note(p, float(i), 1.0, w, "single") for i, (p, w) in enumerate(zip(pitches, text.split() + [""] * 9))]
    return Fragment(f"{work}:{text}", work + ".xml", 0, 1, 1, 1, notes, text, work_id=work)


def test_work_groups_link_works_sharing_a_fragment():
    frs = [
        _frag("c", [60, 62, 64], "ein feste burg ist"),
        _frag("a", [67, 65, 64], "amen amen"),
        _frag("b", [60, 62, 64], "ein feste burg ist"),  # same melody and text as c
        _frag("d", [67, 65, 64], "ein feste burg ist"),  # same text, other melody: own work
        _frag("e", [67, 65, 64], "amen amen"),  # same as a ...
        _frag("e", [60, 62, 64], "ein feste burg ist"),  # ... and as c: a, b, c, e chained
        _frag("f", [67, 65, 64], "amen  Amen"),  # same text up to case/spaces: linked to a
    ]
    assert work_groups(frs) == ["a", "a", "a", "d", "a", "a", "a"]


def test_select_scores_limit_covers_every_collection():
    refs = select_scores(limit=6)
    assert len(refs) == 6
    assert {r.collection for r in refs} == {"bach", "trecento", "songs"}
    assert [r.corpus_path for r in refs] == sorted(r.corpus_path for r in refs)
    assert [r.work_id for r in select_scores(works=["bach/bwv269"])] == ["bach/bwv269"]
    with pytest.raises(ValueError, match="unknown"):
        select_scores(works=["bach/nonexistent"])


def test_build_refuses_to_replace_a_folder_that_holds_no_dataset(tmp_path):
    """The build swaps the whole output folder in: it must not take e.g. ``--out .`` away."""
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="holds no music dataset"):
        build_music_dataset(tmp_path, works=["bach/bwv269"], jobs=1, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_swap_keeps_other_files_and_falls_back_to_two_renames(tmp_path, monkeypatch):
    out = tmp_path / "music"
    out.mkdir()
    for name, text in (("dataset.npz", "old"), ("CARD.md", "card"), (".dataset.npz.cmtmp-1-x.tmp", "junk")):
        (out / name).write_text(text)
    (out / "figures").mkdir()
    (out / "figures" / "a.svg").write_text("<svg/>")
    for exchange in (True, False):
        new = build_mod._make_temporary_folder(out)
        assert store.is_temporary(new) and new.parent == out.parent
        (new / "dataset.npz").write_text(f"new {exchange}")
        build_mod._carry_over(out, new)
        if not exchange:
            monkeypatch.setattr(build_mod, "_exchange", lambda a, b: False)
        build_mod._swap_in(new, out)
        assert (out / "dataset.npz").read_text() == f"new {exchange}"
        assert (out / "CARD.md").read_text() == "card" and (out / "figures" / "a.svg").read_text() == "<svg/>"
        assert not list(out.glob(".*"))  # a stale temporary of the old folder is not carried over
        assert sorted(p.name for p in tmp_path.iterdir()) == ["music"]  # nothing left beside it


def test_recovery_puts_back_a_folder_moved_aside_and_removes_dead_builders_temporaries(tmp_path):
    out = tmp_path / "music"
    backup = build_mod._backup_path(out)
    backup.mkdir()
    (backup / "dataset.npz").write_text("previous")
    prefix = store.temporary_prefix(out).replace(f"-{os.getpid()}-", "-{}-")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale, live = tmp_path / (prefix.format(dead.pid) + "a"), tmp_path / (prefix.format(os.getppid()) + "b")
    stale.mkdir()
    live.mkdir()
    build_mod._recover_interrupted_swap(out)
    assert (out / "dataset.npz").read_text() == "previous" and not backup.exists()
    assert not stale.exists() and live.exists()  # a live builder's folder is left alone


@pytest.fixture(scope="module")
def small_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("music_build")
    ds = build_music_dataset(out, works=WORKS, jobs=1, progress=False, use_cache=True)
    return out, ds


@pytest.mark.slow
def test_small_build_files_labels_and_folds(small_build):
    out, ds = small_build
    for name in ("dataset.npz", "fragments.json", "lyrics_featurizer.npz", "build_info.json"):
        assert (out / name).exists()
    loaded, fragments = load_music_dataset(out)
    assert loaded.n_items == ds.n_items == len(fragments)
    assert list(loaded.item_ids) == [f.fragment_id for f in fragments]
    assert set(loaded.view_names) == {"audio", "sheet", "lyrics", "audio_seq", "sheet_seq", "score_image", "audio_mel",
                                      "score_image_seq"}
    assert "score_image_seq" not in ds.views  # derived at load time, never stored
    assert loaded.views["audio_seq"].ndim == 3 and loaded.views["audio"].dtype == np.float32
    assert loaded.views["sheet_seq"].shape == (ds.n_items, 10, 32)
    assert loaded.views["score_image"].shape == (ds.n_items, 1, 64, 256) and loaded.views["score_image"].dtype == np.uint8
    assert loaded.views["audio_mel"].shape == (ds.n_items, 1, 64, 128) and loaded.views["audio_mel"].dtype == np.uint8
    assert loaded.views["score_image_seq"].shape == (ds.n_items, 10, 256)
    np.testing.assert_array_equal(loaded.views["score_image"], ds.views["score_image"])
    np.testing.assert_allclose(loaded.views["sheet"], ds.views["sheet"], rtol=1e-3, atol=1e-3)
    assert set(loaded.label_names) == {"work", "collection", "language", "mode"}
    assert sorted(loaded.class_names["work"]) == sorted(WORKS)
    assert set(loaded.class_names["collection"]) == {"bach", "trecento", "songs"}
    # non-empty lyrics, audible audio, notes aligned with the stored duration
    assert all(f.lyrics.strip() for f in fragments)
    assert (loaded.metadata["audio_rms"] > build_mod.SILENCE_RMS).all()
    np.testing.assert_allclose(loaded.metadata["duration_s"], [f.duration_s for f in fragments], atol=1e-3)
    # folds: 5, and no work (nor work group) in two folds
    assert loaded.folds is not None and set(loaded.folds) == set(range(5))
    for col in ("work_id", "work_group"):
        for w in np.unique(loaded.metadata[col]):
            assert len(np.unique(loaded.folds[loaded.metadata[col] == w])) == 1
    info = json.loads((out / "build_info.json").read_text())
    assert info["n_fragments"] == ds.n_items and info["skipped_scores"] == {}


@pytest.mark.slow
def test_build_is_deterministic_and_resumable(small_build, tmp_path):
    out, _ = small_build
    again = tmp_path / "again"
    build_music_dataset(again, works=WORKS, jobs=2, progress=False, use_cache=False)
    for name in ("dataset.npz", "fragments.json", "lyrics_featurizer.npz", "build_info.json"):
        assert (out / name).read_bytes() == (again / name).read_bytes(), name
    # resuming from the shards gives the same bytes too
    before = (out / "dataset.npz").read_bytes()
    build_music_dataset(out, works=WORKS, jobs=1, progress=False, use_cache=True)
    assert (out / "dataset.npz").read_bytes() == before


@pytest.mark.slow
def test_bad_score_is_skipped_with_reason_and_build_goes_on(tmp_path, monkeypatch, caplog):
    bad = tmp_path / "corrupt.xml"
    bad.write_bytes(b"\x00\x01 not music")
    good = [r for r in find_lyric_scores(["bach"]) if r.work_id == "bach/bwv269"]
    monkeypatch.setattr(build_mod, "find_lyric_scores",
                        lambda collections=None: good + [ScoreRef(str(bad), "songs", 99)])
    ds = build_music_dataset(tmp_path / "out", jobs=1, progress=False, use_cache=False)
    info = json.loads((tmp_path / "out" / "build_info.json").read_text())
    assert list(info["skipped_scores"]) == [str(bad)]
    assert "corrupt.xml" in info["skipped_scores"][str(bad)]
    assert set(ds.metadata["work_id"]) == {"bach/bwv269"}
    assert "corrupt.xml" in caplog.text


@pytest.mark.slow
@pytest.mark.skipif(not (COMMITTED / "dataset.npz").exists(), reason="no committed music dataset")
def test_subset_rebuild_matches_committed_dataset(tmp_path):
    """CI check of the committed features: rebuild a few works from the corpus with the stored
    lyric featurizer and compare every view row by row (float16 storage tolerance)."""
    committed, committed_frs = load_music_dataset(COMMITTED)
    info = json.loads((COMMITTED / "build_info.json").read_text())
    picks = [w for w in WORKS if w in set(committed.metadata["work_id"])]
    assert len(picks) >= 3, "the committed dataset should contain the test works"
    ds = build_music_dataset(tmp_path, works=picks, jobs=1, progress=False, use_cache=False,
                             lyrics_featurizer=COMMITTED / "lyrics_featurizer.npz")
    stale = info["code_fingerprint"] != build_mod._code_fingerprint()
    hint = " (the extraction/synthesis/feature code changed since the committed build: rebuild it)" if stale else ""
    row = {fid: i for i, fid in enumerate(committed.item_ids)}
    missing = [fid for fid in ds.item_ids if fid not in row]
    assert not missing, f"fragments not in the committed dataset: {missing[:3]}{hint}"
    idx = np.array([row[fid] for fid in ds.item_ids])
    assert len(idx) == int(np.isin(committed.metadata["work_id"], picks).sum())
    by_id = {f.fragment_id: f for f in committed_frs}
    loaded, fragments = load_music_dataset(tmp_path)
    for f in fragments:
        assert f.to_dict() == by_id[f.fragment_id].to_dict(), f.fragment_id + hint
    for view in ("audio", "audio_seq", "sheet", "sheet_seq", "lyrics", "score_image_seq"):
        np.testing.assert_allclose(loaded.views[view], committed.views[view][idx], rtol=2e-3, atol=2e-3,
                                   err_msg=view + hint)
    for view in ("score_image", "audio_mel"):  # uint8 as computed: the same bytes
        np.testing.assert_array_equal(loaded.views[view], committed.views[view][idx], err_msg=view + hint)
    for col in ("lyrics", "language", "duration_s", "tempo_bpm", "score_image_t0", "score_image_cols_per_s"):
        np.testing.assert_array_equal(loaded.metadata[col], committed.metadata[col][idx])


def test_an_engraving_failure_drops_only_that_fragment(monkeypatch):
    """verovio (RuntimeError through its binding) or music21 (Music21Exception) failing on one
    fragment drops that fragment, named with the exception, not the whole work; a programming
    error (KeyError) still surfaces."""
    from music21.exceptions21 import Music21Exception

    real = build_mod.fragment_score_views
    failures = {"w:b": RuntimeError("verovio crashed"), "w:c": Music21Exception("cannot split")}

    def flaky(fr, y):
        if fr.fragment_id in failures:
            raise failures[fr.fragment_id]
        return real(fr, y)

    monkeypatch.setattr(build_mod, "fragment_score_views", flaky)
    frs = [Fragment(f"w:{t}", "w.xml", 0, 1, 1, 1, [Note(p, float(i), 1.0, "", "single") for i, p in
                                                    enumerate([60, 62, 64, 65])], "", work_id="w")
           for t in "abcd"]
    arrays, dropped = build_mod._fragment_features(frs)
    assert arrays["keep"].tolist() == [0, 3]
    assert arrays["score_image"].shape[0] == 2 and arrays["audio"].shape[0] == 2
    assert dropped == ["w:b: cannot engrave (RuntimeError: verovio crashed)",
                       "w:c: cannot engrave (Music21Exception: cannot split)"]
    failures["w:d"] = KeyError("bug")
    with pytest.raises(KeyError):
        build_mod._fragment_features(frs)
