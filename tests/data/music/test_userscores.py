"""A folder of the user's own scores: hostile files are refused with a reason and never stop
the build; the build from a folder (corpus works exported to MusicXML / MXL, a MIDI and a
Humdrum file with lyrics, plus a broken, a lyric-less and an entity-bomb file) gives a dataset
aligned row by row with its fragments, folds by work, a per-file report, a CLI and a catalog id."""

import io
import json
import os
import signal
import time
import zipfile

import numpy as np
import pytest

pytest.importorskip("music21")
mido = pytest.importorskip("mido")

from crossmodal_core import cli, store  # noqa: E402
from crossmodal_core.data import catalog  # noqa: E402
from crossmodal_core.data.dataset import DatasetError  # noqa: E402
from crossmodal_core.data.music import build as build_mod  # noqa: E402
from crossmodal_core.data.music import userscores as us  # noqa: E402
from crossmodal_core.data.music.build import build_music_dataset, load_music_dataset  # noqa: E402
from crossmodal_core.data.music.corpus import ScoreRef  # noqa: E402

MUSICXML_HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE score-partwise PUBLIC '
                 '"-//Recordare//DTD MusicXML 3.1 Partwise//EN" "http://www.musicxml.org/dtds/partwise.dtd">\n')


def _song_xml(title="Tiny song", doctype=MUSICXML_HEAD,
              words=("Al", "le", "mei", "ne", "En", "ten", "sind", "da.")):
    notes = "".join(
        f'<note><pitch><step>{step}</step><octave>4</octave></pitch><duration>1</duration><type>quarter</type>'
        f'<lyric number="1"><syllabic>single</syllabic><text>{w}</text></lyric></note>'
        for step, w in zip("CDEFGAGF", words))
    return (f'{doctype}<score-partwise version="3.1"><work><work-title>{title}</work-title></work>'
            '<part-list><score-part id="P1"><part-name>Voice</part-name></score-part></part-list>'
            '<part id="P1"><measure number="1"><attributes><divisions>1</divisions><time><beats>4</beats>'
            f'<beat-type>4</beat-type></time></attributes>{notes}</measure></part></score-partwise>')


BILLION_LAUGHS = ('<?xml version="1.0"?>\n<!DOCTYPE score-partwise [\n<!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">\n'
                  + "".join(f'<!ENTITY {c} "{("&" + p + ";") * 10}">\n' for p, c in zip("abcdefg", "bcdefgh"))
                  + ']>\n')


def _midi_with_lyrics(path, words="Christ ist er- stan- den von der Mar- ter al- le. Des solln wir al- le froh sein,"):
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(90)))
    for i, w in enumerate(words.split()):
        pitch = (60, 62, 64, 65, 67, 65, 64, 62)[i % 8]
        track.append(mido.MetaMessage("lyrics", text=w, time=0))  # in the note's own track
        track.append(mido.Message("note_on", note=pitch, velocity=80, time=0))
        track.append(mido.Message("note_off", note=pitch, velocity=0, time=480))
    mid.save(path)


KERN = ("**kern\t**text\n*staff1\t*staff1\n*M4/4\t*\n=1\t=1\n4c\tAl-\n4d\t-le\n4e\tmei-\n4f\t-ne\n=2\t=2\n"
        "4g\tEn-\n4a\t-ten\n2g\tsind.\n=3\t=3\n4e\tDie\n4d\tSon-\n4c\t-ne\n4d\tscheint.\n==\t==\n*-\t*-\n")


def _ref(path, rel=None):
    return ScoreRef(rel or path.name, "test", 0, file=str(path))


# ---------------------------------------------------------------------- hostile XML
def test_check_xml_accepts_musicxml_and_refuses_entity_declarations():
    us.check_xml(_song_xml().encode())  # the standard DOCTYPE (external DTD, never loaded) is fine
    us.check_xml(_song_xml().replace("UTF-8", "UTF-16").encode("utf-16"))  # expat decodes UTF-16
    bombs = {
        "billion laughs": _song_xml("&h;", doctype=BILLION_LAUGHS),
        "external entity": _song_xml("&x;", doctype='<!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]>'),
        "parameter entity": _song_xml(doctype='<!DOCTYPE s [<!ENTITY % p SYSTEM "http://example.com/x.dtd"> %p;]>'),
        "unparsed entity": _song_xml(doctype='<!DOCTYPE s [<!NOTATION n SYSTEM "x"><!ENTITY u SYSTEM "y" NDATA n>]>'),
    }
    for what, text in bombs.items():
        start = time.perf_counter()
        with pytest.raises(us.ScoreFileError, match="entity"):
            us.check_xml(text.encode())
        assert time.perf_counter() - start < 1, what  # refused before anything expands
    with pytest.raises(us.ScoreFileError, match="not well-formed"):
        us.check_xml(b"<score-partwise><part>")


def test_an_entity_bomb_is_skipped_by_the_reader_not_expanded(tmp_path):
    path = tmp_path / "bomb.xml"
    path.write_text(_song_xml("&h;", doctype=BILLION_LAUGHS))
    fragments, reason, _ = us.extract_user_fragments(_ref(path))
    assert fragments == [] and "XML entity" in reason


def test_mxl_zip_bomb_is_refused_from_the_declared_size(tmp_path, monkeypatch):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("META-INF/container.xml", "<container/>")
        zf.writestr("score.xml", _song_xml().encode() + b" " * (4 << 20))  # 4 MiB of spaces: ~4 KiB zipped
    data = buf.getvalue()
    assert len(data) < 64 << 10
    monkeypatch.setattr(us, "MAX_XML_BYTES", 1 << 20)
    with pytest.raises(us.ScoreFileError, match="uncompressed"):
        us.mxl_musicxml(data)
    monkeypatch.setattr(us, "MAX_XML_BYTES", 8 << 20)
    assert us.mxl_musicxml(data).startswith(b"<?xml")
    with pytest.raises(us.ScoreFileError, match="not a readable .mxl"):
        us.mxl_musicxml(b"PK\x03\x04 truncated")


# ---------------------------------------------------------------------- listing the folder
def test_find_user_scores_lists_works_and_reasons_without_trusting_names(tmp_path, monkeypatch):
    root = tmp_path / "mine"
    (root / "sub dir").mkdir(parents=True)
    good = _song_xml().encode()
    names = {"a.xml": good, "a.mid": b"MThd", "odd\nname $(x).xml": good, "sub dir/b.musicxml": good,
             "empty.krn": b"", "notes.txt": b"hello", ".hidden.xml": good, "big.mid": b"MThd" + b"\0" * 64,
             "..dots.xml": good}
    for name, data in names.items():
        (root / name).write_bytes(data)
    (root / os.fsdecode(b"bad\xffbyte.xml")).write_bytes(good)
    (root / "link.xml").symlink_to("/etc/passwd")
    os.mkfifo(root / "pipe.krn")
    (root / "linked").symlink_to(tmp_path)
    monkeypatch.setitem(us.MAX_FILE_BYTES, "midi", 32)
    refs, skipped = us.find_user_scores(root)
    assert [r.corpus_path for r in refs] == ["a.mid", "bad\ufffdbyte.xml", "odd?name $(x).xml", "sub dir/b.musicxml"]
    assert [r.collection for r in refs] == ["mine", "mine", "mine", "sub dir"]
    assert skipped == {
        "a.xml": "same work name as a.mid (one file per work)",  # the first in sorted order is kept
        "big.mid": "too large (68 bytes; the limit for MIDI is 32 bytes)",
        "empty.krn": "empty file",
        "link.xml": "a symbolic link (not followed)",
        "linked/": "a symbolic link (not followed)",
        "notes.txt": "not a score file (supported: .krn, .mid, .midi, .musicxml, .mxl, .xml)",
        "pipe.krn": "not a regular file",
    }
    for r in refs:  # ids are slugged per level: no "..", no control character, JSON-safe
        assert all(part == store.slug(part) for part in r.work_id.split("/")), r.work_id
        json.dumps(r.corpus_path, ensure_ascii=False).encode("utf-8")
    assert refs[1].path.read_bytes() == good  # the file itself is still found
    with pytest.raises(DatasetError, match="not a folder"):
        us.find_user_scores(root / "a.xml")


def test_read_score_file_refuses_a_fifo_and_a_file_grown_past_the_limit(tmp_path, monkeypatch):
    os.mkfifo(tmp_path / "p.xml")
    with pytest.raises(us.ScoreFileError, match="regular file"):
        us.read_score_file(_ref(tmp_path / "p.xml"))  # would block forever with a plain open()
    (tmp_path / "g.xml").write_bytes(b"x" * 100)
    monkeypatch.setitem(us.MAX_FILE_BYTES, "musicxml", 50)
    with pytest.raises(us.ScoreFileError, match="too large"):
        us.read_score_file(_ref(tmp_path / "g.xml"))


# ---------------------------------------------------------------------- formats
def test_midi_and_humdrum_lyrics_become_fragments(tmp_path):
    _midi_with_lyrics(tmp_path / "song.mid")
    (tmp_path / "enten.krn").write_text(KERN)
    frs, reason, _ = us.extract_user_fragments(_ref(tmp_path / "song.mid"))
    assert reason is None and [f.lyrics for f in frs][:1] == ["Christ ist er stan den von der Mar ter al le."]
    assert all(f.work_id == "song" and f.corpus_path == "song.mid" for f in frs)
    frs, reason, _ = us.extract_user_fragments(_ref(tmp_path / "enten.krn"))
    assert reason is None and [f.lyrics for f in frs] == ["Alle meine Enten sind.", "Die Sonne scheint."]
    assert [n.pitch for n in frs[0].notes] == [60, 62, 64, 65, 67, 69, 67]


def test_a_huge_midi_is_refused_before_music21_makes_a_stream(tmp_path):
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.Message("note_on", note=60, velocity=80, time=0))
    track.append(mido.Message("note_off", note=60, velocity=0, time=480 * 10_000_000))  # a 10^7-beat note
    mid.save(tmp_path / "long.mid")
    start = time.perf_counter()
    frs, reason, _ = us.extract_user_fragments(_ref(tmp_path / "long.mid"))
    assert frs == [] and "quarter notes (limit" in reason
    assert time.perf_counter() - start < 5


def test_lyricless_and_broken_files_have_their_own_reasons(tmp_path):
    (tmp_path / "plain.xml").write_text(_song_xml().replace("<lyric", "<!--").replace("</lyric>", "-->"))
    (tmp_path / "bad.mid").write_bytes(b"RIFF not midi")
    (tmp_path / "bad.mxl").write_bytes(b"not a zip")
    assert us.extract_user_fragments(_ref(tmp_path / "plain.xml"))[1] == "no lyrics under the notes"
    assert "no MThd header" in us.extract_user_fragments(_ref(tmp_path / "bad.mid"))[1]
    assert "not a readable .mxl" in us.extract_user_fragments(_ref(tmp_path / "bad.mxl"))[1]


# ---------------------------------------------------------------------- isolation
def test_a_slow_parse_is_killed_at_the_time_limit(tmp_path, monkeypatch):
    (tmp_path / "slow.xml").write_text(_song_xml())
    monkeypatch.setattr(us, "parse_user_score", lambda ref: time.sleep(60))
    start = time.perf_counter()
    frs, reason, _ = us.extract_fragments(_ref(tmp_path / "slow.xml"), timeout_s=0.5)
    assert frs == [] and "longer than 0.5 s" in reason
    assert time.perf_counter() - start < 10


def test_a_crashing_or_memory_hungry_parse_is_a_reason_not_a_crash(tmp_path, monkeypatch):
    (tmp_path / "x.xml").write_text(_song_xml())
    # killed as the OOM killer would
    monkeypatch.setattr(us, "parse_user_score", lambda ref: os.kill(os.getpid(), signal.SIGKILL))
    frs, reason, _ = us.extract_fragments(_ref(tmp_path / "x.xml"), timeout_s=20)
    assert frs == [] and "SIGKILL" in reason
    if not os.path.exists("/proc/self/statm"):
        pytest.skip("the address-space limit is measured from /proc")
    monkeypatch.setattr(us, "PARSE_MEMORY_BYTES", 256 << 20)
    monkeypatch.setattr(us, "parse_user_score", lambda ref: bytearray(2 << 30))  # 2 GiB > the 256 MiB allowed
    frs, reason, _ = us.extract_fragments(_ref(tmp_path / "x.xml"), timeout_s=20)
    assert frs == [] and "memory" in reason


def test_the_isolated_reader_returns_what_the_in_process_reader_does(tmp_path):
    (tmp_path / "t.xml").write_text(_song_xml())
    direct = us.extract_user_fragments(_ref(tmp_path / "t.xml"))
    isolated = us.extract_fragments(_ref(tmp_path / "t.xml"))
    assert direct[1] is None and [f.to_dict() for f in isolated[0]] == [f.to_dict() for f in direct[0]]


# ---------------------------------------------------------------------- the build
def _make_folder(root):
    """Two corpus chorales (MusicXML and MXL), a MIDI and a Humdrum song with lyrics, and a
    broken, a lyric-less and an entity-bomb file."""
    from music21 import corpus

    root.mkdir(parents=True)
    corpus.parse("bach/bwv269").write("musicxml", fp=str(root / "bwv269.musicxml"))
    corpus.parse("bach/bwv10.7").write("mxl", fp=str(root / "bwv10.7.mxl"))
    corpus.parse("bach/bwv66.6").write("musicxml", fp=str(root / "no lyrics.xml"))  # untexted in the corpus
    _midi_with_lyrics(root / "Christ ist erstanden.mid")
    (root / "enten.krn").write_text(KERN)
    (root / "broken.xml").write_bytes(b"<score-partwise><part>")
    (root / "bomb.xml").write_text(_song_xml("&h;", doctype=BILLION_LAUGHS))
    return root


USED = ["Christ ist erstanden.mid", "bwv10.7.mxl", "bwv269.musicxml", "enten.krn"]
SKIPPED = {"bomb.xml": "XML entity", "broken.xml": "not well-formed", "no lyrics.xml": "no lyrics under the notes"}


@pytest.fixture(scope="module")
def user_build(tmp_path_factory):
    # a data folder of its own: a built user dataset left in the session's folder would appear in
    # every later test's dataset list (the app tests train on every music dataset they find)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CROSSMODAL_HOME", str(tmp_path_factory.mktemp("user_home")))
        src = _make_folder(tmp_path_factory.mktemp("user") / "my songs")
        out = store.user_music_dir() / "my-songs"
        start = time.perf_counter()
        ds = build_music_dataset(out, jobs=1, progress=False, scores=src)
        yield src, out, ds, time.perf_counter() - start


@pytest.mark.slow
def test_build_from_a_folder_reports_skips_aligns_rows_and_folds_by_work(user_build):
    from crossmodal_core.features.sheet import sheet_features

    src, out, ds, seconds = user_build
    print(f"build from a folder of {len(USED) + len(SKIPPED)} files: {seconds:.1f} s")
    report = json.loads((out / build_mod.REPORT_FILE).read_text())
    status = {f["file"]: f for f in report["files"]}
    assert sorted(status) == sorted(USED + list(SKIPPED))
    assert [f for f in sorted(status) if status[f]["status"] == "used"] == USED
    for name, why in SKIPPED.items():
        assert status[name]["status"] == "skipped" and why in status[name]["reason"], status[name]
    assert report["n_used"] == 4 and report["n_skipped"] == 3 and report["n_fragments"] == ds.n_items
    # 4 works < 5 folds: one fold per work, and the report says so
    assert report["n_folds"] == 4 and "4 folds instead of 5" in report["folds_note"]
    loaded, fragments = load_music_dataset(out)
    assert loaded.n_items == len(fragments) == ds.n_items
    assert list(loaded.item_ids) == [f.fragment_id for f in fragments]
    assert set(loaded.view_names) == {"audio", "sheet", "lyrics", "audio_seq", "sheet_seq", "score_image", "audio_mel",
                                      "score_image_seq"}
    assert all(len(v) == loaded.n_items for v in loaded.views.values())
    # row i of the sheet view is the features of fragment i's notes, and row i of score_image
    # its engraving (independent recomputation)
    from crossmodal_core.features.score_image import score_image

    for i in (0, len(fragments) // 2, len(fragments) - 1):
        np.testing.assert_allclose(loaded.views["sheet"][i], sheet_features(fragments[i].notes), rtol=2e-3, atol=2e-3)
        np.testing.assert_array_equal(loaded.views["score_image"][i, 0], score_image(fragments[i])[0])
    assert [f.lyrics for f in fragments if f.corpus_path == "enten.krn"] == ["Alle meine Enten sind.",
                                                                             "Die Sonne scheint."]
    works = loaded.metadata["work_id"]
    assert sorted(set(works)) == sorted(ScoreRef(u, "", 0, file="x").work_id for u in USED)
    assert set(loaded.folds.tolist()) == set(range(4))
    for w in set(works):
        assert len(set(loaded.folds[works == w].tolist())) == 1  # a work never spans two folds
    assert loaded.name == "scores-my-songs" and loaded.info["n_folds"] == 4
    info = json.loads((out / build_mod.INFO_FILE).read_text())
    assert set(info["skipped_scores"]) == set(SKIPPED)


@pytest.mark.slow
def test_the_catalog_lists_and_opens_the_new_dataset(user_build):
    _, out, ds, _ = user_build
    ids = [e.id for e in catalog.list_entries()]
    assert "scores:my-songs" in ids
    app = catalog.open_dataset("scores:my-songs")
    assert app.entry.kind == "music" and app.key.startswith("scores-my-songs-")
    assert app.dataset.n_items == ds.n_items and len(app.fragments) == ds.n_items
    for bad in ("scores:../my-songs", "scores:" + str(out), "scores:missing"):
        with pytest.raises(catalog.UnknownDatasetError):
            catalog.find_entry(bad)
    hidden = out.with_name(".half-built")
    hidden.mkdir()
    assert "scores:.half-built" not in [e.id for e in catalog.list_entries()]


@pytest.mark.slow
def test_cli_builds_from_scores_resumes_from_the_cache_and_refuses_bad_outputs(user_build, tmp_path, capsys):
    src, out, _, _ = user_build
    again = tmp_path / "again"
    start = time.perf_counter()
    assert cli.main(["build-music", "--scores", str(src), "--out", str(again), "--jobs", "1"]) == 0
    err = capsys.readouterr().err
    assert "4 of 7 files used" in err and "bomb.xml: declares the XML entity" in err
    assert time.perf_counter() - start < 60  # every work came from the per-work cache
    for name in (build_mod.FRAGMENTS_FILE, build_mod.REPORT_FILE, build_mod.FEATURIZER_FILE):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name
    (a, _), (b, _) = load_music_dataset(again), load_music_dataset(out)
    assert a.name == "scores-again" and b.name == "scores-my-songs"  # named after the output folder
    for view in b.view_names:
        np.testing.assert_array_equal(a.views[view], b.views[view])
    np.testing.assert_array_equal(a.folds, b.folds)
    assert cli.main(["build-music", "--scores", str(src)]) == 2
    assert "--scores needs --out" in capsys.readouterr().err
    assets_out = store.assets_dir() / "datasets" / "from-scores"
    assert cli.main(["build-music", "--scores", str(src), "--out", str(assets_out)]) == 2
    assert "committed files" in capsys.readouterr().err and not assets_out.exists()
    assert cli.main(["build-music", "--scores", str(src), "--out", str(src / "out")]) == 2
    assert "outside the folder of scores" in capsys.readouterr().err


def test_a_folder_with_nothing_usable_fails_with_the_reasons(tmp_path, capsys):
    src = tmp_path / "junk"
    src.mkdir()
    (src / "broken.xml").write_bytes(b"<score-partwise><part>")
    (src / "readme.txt").write_text("hi")
    with pytest.raises(DatasetError, match="no usable score.*broken.xml: not well-formed.*readme.txt: not a score"):
        build_music_dataset(tmp_path / "out", jobs=1, progress=False, scores=src)
    assert not (tmp_path / "out").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["build-music", "--scores", str(empty), "--out", str(tmp_path / "o2")]) == 2
    assert "holds no score file" in capsys.readouterr().err


@pytest.mark.slow
def test_a_single_usable_work_cannot_make_folds(tmp_path):
    src = tmp_path / "one"
    src.mkdir()
    (src / "enten.krn").write_text(KERN)
    (src / "broken.xml").write_bytes(b"<x")
    with pytest.raises(DatasetError, match="only one usable work.*at least 2"):
        build_music_dataset(tmp_path / "out", jobs=1, progress=False, scores=src)


def test_a_timed_out_file_is_not_cached_so_the_next_build_retries_it(tmp_path, monkeypatch):
    (tmp_path / "slow.xml").write_text(_song_xml())
    ref = _ref(tmp_path / "slow.xml")
    cache = tmp_path / "cache"
    monkeypatch.setattr(us, "extract_fragments", lambda r: ([], "took longer than 1 s to read and cut", []))
    assert build_mod.process_work(ref, cache, "fp")["skipped"].startswith("took longer")
    assert not cache.exists() or not list(cache.iterdir())
    monkeypatch.setattr(us, "extract_fragments", lambda r: ([], "no lyrics under the notes", []))
    assert build_mod.process_work(ref, cache, "fp")["skipped"] == "no lyrics under the notes"
    assert len(list(cache.iterdir())) == 1  # a verdict on the file itself is cached


def test_a_folder_with_too_many_entries_is_cut_off_with_a_reason(tmp_path, monkeypatch):
    for i in range(8):
        (tmp_path / f"{i}.txt").write_text("x")
    monkeypatch.setattr(us, "MAX_ENTRIES", 5)
    refs, skipped = us.find_user_scores(tmp_path)
    assert refs == [] and len(skipped) == 6 and "not looked at" in skipped["..."]
