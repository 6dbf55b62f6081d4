"""Engraving: lyrics in the SVG, one timemap entry per note at the synthesiser's times,
deterministic ids, whole works, the highlight player, clear errors."""

import base64
import json
import re
import threading

import numpy as np
import pytest

from crossmodal_core import render, synth
from crossmodal_core.notes import Fragment, Note


def _bach_phrase():
    """First phrase of bwv10.7's soprano (up to the first fermata), built by hand from music21."""
    music21 = pytest.importorskip("music21")
    soprano = music21.corpus.parse("bach/bwv10.7").parts[0].stripTies().flatten().notes
    notes, t0 = [], None
    for n in soprano:
        t0 = float(n.offset) if t0 is None else t0
        lyric = n.lyrics[0] if n.lyrics else None
        notes.append(Note(n.pitch.midi, float(n.offset) - t0, float(n.quarterLength),
                          lyric.text if lyric else "", lyric.syllabic if lyric else ""))
        if any(type(e).__name__ == "Fermata" for e in n.expressions):
            break
    return Fragment("bach/bwv10.7:p0:v1:m1-3", "bach/bwv10.7", 0, 1, 3, 1, notes, "", title="bwv10.7",
                    key="g minor", meter="4/4", tempo_bpm=80.0)


SIMPLE = Fragment(
    "t:1", "x", 0, 1, 3, 1,
    [Note(60, 0, 1, "Chri", "begin"), Note(62, 1, 1, "ste", "end"), Note(64, 2, 1, "lag", "single"),
     Note(65, 3, 2, "in", "single"), Note(67, 5, 1, "", ""), Note(69, 7, 1, "To", "begin"), Note(67, 8, 1, "des", "end")],
    "Christe lag in Todes", key="F major", meter="4/4", tempo_bpm=60.0,
)


def _syllable_texts(svg):
    # verovio writes each syllable as text inside <g class="syl">
    return [re.sub(r"<[^>]+>", "", m).strip() for m in re.findall(r'class="syl"[^>]*>(.*?)</g>', svg, flags=re.S)]


def test_fragment_svg_has_lyrics_notes_and_a_timemap_in_seconds():
    svg, timemap = render.fragment_svg(SIMPLE)
    assert svg.lstrip().startswith("<svg") or "<svg" in svg[:300]
    syllables = " ".join(_syllable_texts(svg))
    for syl in ("Chri", "ste", "lag", "in", "To", "des"):
        assert syl in syllables
    # the F (onset 3, 2 quarters) crosses the barline: two written notes, one sounding note
    assert len(timemap) == len(SIMPLE.notes)
    n_written = svg.count('class="note"')
    assert n_written == len(SIMPLE.notes) + sum(len(e.get("tied_ids", [])) for e in timemap) == 8
    onsets, offsets = synth.note_times_seconds(SIMPLE)
    np.testing.assert_allclose([e["onset_s"] for e in timemap], onsets, atol=1e-6)
    np.testing.assert_allclose([e["offset_s"] for e in timemap], offsets, atol=1e-6)
    # every id in the timemap is an element of the SVG
    for e in timemap:
        for nid in [e["id"], *e.get("tied_ids", [])]:
            assert f'id="{nid}"' in svg


def test_real_chorale_phrase():
    frag = _bach_phrase()
    assert len(frag.notes) == 11 and frag.notes[0].syllable == "Mei"
    svg, timemap = render.fragment_svg(frag)
    assert len(timemap) == len(frag.notes)
    onsets, _ = synth.note_times_seconds(frag)
    np.testing.assert_allclose([e["onset_s"] for e in timemap], onsets, atol=1e-6)
    syllables = _syllable_texts(svg)
    assert [n.syllable for n in frag.notes if n.syllable] == syllables


def test_pickup_offset_shifts_the_barline_not_the_times():
    pickup = Fragment(SIMPLE.fragment_id, "x", 0, 0, 3, 1, list(SIMPLE.notes), SIMPLE.lyrics, meter="4/4",
                      tempo_bpm=60.0, extra={"measure_offset_ql": 3.0})
    svg, timemap = render.fragment_svg(pickup)
    np.testing.assert_allclose([e["onset_s"] for e in timemap], synth.note_times_seconds(pickup)[0], atol=1e-6)
    # first note alone in the pickup bar after a 3-quarter rest; the F (onset 3) no longer crosses a barline
    assert svg.count('class="note"') == len(pickup.notes)
    assert svg.count('class="rest"') >= 1


def test_rendering_is_deterministic():
    a = render.fragment_svg(SIMPLE)
    b = render.fragment_svg(SIMPLE)
    assert a == b


def test_renders_in_a_fresh_thread():
    # verovio's resource path is per thread (the Streamlit pitfall)
    result = {}

    def work():
        try:
            result["svg"], result["timemap"] = render.fragment_svg(SIMPLE)
        except Exception as exc:  # reported below
            result["error"] = exc

    t = threading.Thread(target=work)
    t.start()
    t.join(60)
    assert "error" not in result, result.get("error")
    assert result["svg"].count('class="note"') == 8 and len(result["timemap"]) == 7


def test_musicxml_round_trips_pitches_and_lyrics():
    music21 = pytest.importorskip("music21")
    xml = render.fragment_musicxml(SIMPLE)
    parsed = music21.converter.parse(xml, format="musicxml").parts[0].stripTies().flatten().notes
    assert [n.pitch.midi for n in parsed] == [n.pitch for n in SIMPLE.notes]
    assert [n.lyric or "" for n in parsed] == [n.syllable for n in SIMPLE.notes]
    assert [float(n.quarterLength) for n in parsed] == [n.duration for n in SIMPLE.notes]


def test_spelling_follows_the_key_and_accidentals_only_where_needed():
    music21 = pytest.importorskip("music21")
    # g minor: Bb and Eb are in the signature, F# is the raised 7th, C# is chromatic (sharp side
    # spelling would be wrong here: flats follow the signature -> Db)
    frag = Fragment("k", "x", 0, 1, 1, 1, [Note(70, 0, 1), Note(63, 1, 1), Note(66, 2, 1), Note(61, 3, 1)], "",
                    key="g minor", meter="4/4", tempo_bpm=60.0, extra={"boundary": "fermata"})
    xml = render.fragment_musicxml(frag)
    parsed = music21.converter.parse(xml, format="musicxml").parts[0].flatten().notes
    assert [n.pitch.name for n in parsed] == ["B-", "E-", "F#", "D-"]
    assert xml.count("<accidental") == 2  # F# and Db; Bb and Eb come from the key signature
    assert "<fermata" in xml


def test_work_svg_renders_a_whole_chorale_part():
    svg = render.work_svg("bach/bwv10.7", part_index=0)
    assert "<svg" in svg and svg.count('class="note"') > 20
    assert _syllable_texts(svg)[:3] == ["Mei", "ne", "Seel’"]
    full = render.work_svg("bach/bwv10.7")
    assert full.count('class="note"') > svg.count('class="note"')


def test_highlight_player_is_self_contained():
    svg, timemap = render.fragment_svg(SIMPLE)
    wav = synth.audio_bytes_wav(synth.synthesize(SIMPLE), synth.DEFAULT_SAMPLE_RATE)
    page = render.highlight_player_html(svg, timemap, wav)
    assert page.startswith("<!DOCTYPE html>") and "<audio" in page and "timeupdate" in page
    b64 = re.search(r'src="data:audio/wav;base64,([A-Za-z0-9+/=]+)"', page).group(1)
    assert base64.b64decode(b64) == wav
    embedded = json.loads(re.search(r"const timemap = (\[.*?\]);", page).group(1))
    assert [e["ids"][0] for e in embedded] == [e["id"] for e in timemap]
    assert embedded[3]["ids"] == [timemap[3]["id"], *timemap[3]["tied_ids"]]
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "").replace(
        'xmlns:xlink="http://www.w3.org/1999/xlink"', "").replace("http://www.music-encoding.org", "")


def test_player_straight_from_a_fragment():
    page = render.highlight_player_html(SIMPLE)
    assert page == render.fragment_player_html(SIMPLE)
    svg, timemap = render.fragment_svg(SIMPLE)
    assert all(f'"{e["id"]}"' in page for e in timemap) and "data:audio/wav;base64," in page
    with pytest.raises(ValueError, match="either a Fragment"):
        render.highlight_player_html(SIMPLE, timemap)


def test_bad_input_raises_clear_errors():
    empty = Fragment("e", "x", 0, 1, 1, 1, [], "")
    with pytest.raises(render.RenderError, match="no notes"):
        render.fragment_svg(empty)
    bad = Fragment("b", "x", 0, 1, 1, 1, [Note(60, 0, 0.0)], "")
    with pytest.raises(render.RenderError, match="not engravable"):
        render.fragment_svg(bad)
    with pytest.raises(render.RenderError, match="cannot parse"):
        render.work_svg("no/such/work_anywhere")
    with pytest.raises(render.RenderError, match="out of range"):
        render.work_svg("bach/bwv66.6", part_index=9)
    with pytest.raises(ValueError, match="WAV"):
        render.highlight_player_html("<svg></svg>", [], b"not a wav")
