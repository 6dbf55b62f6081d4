"""Fragment extraction on known corpus pieces and hand-built streams.

References: music21's own ``stripTies`` (tie merging), the fermatas music21 reads from the
score (phrase ends), and syllables read off the score by hand (bwv269: "Aus mei-nes
Her-zens Grun-de").
"""

import logging

import pytest

pytest.importorskip("music21")

from music21 import expressions, meter, note, stream  # noqa: E402

from crossmodal_core.data.music.corpus import (  # noqa: E402
    ScoreRef,
    corpus_root,
    detect_language,
    find_lyric_scores,
    parse_score,
    read_musicxml_text,
)
from crossmodal_core.data.music.phrases import (  # noqa: E402
    MIN_NOTES,
    clean_syllable,
    cut_phrases,
    extract_fragments,
    join_syllables,
    part_events,
)

BACH = ScoreRef("bach/bwv269.mxl", "bach", 0)
TRECENTO = ScoreRef("trecento/PMFC_06_Giovanni-01-Angnel_son_biancho.xml", "trecento", 0)


@pytest.fixture(scope="module")
def bach_fragments():
    frs, why = extract_fragments(BACH)
    assert why is None
    return frs


# ---------------------------------------------------------------------- syllables
def test_join_syllables_begin_middle_end_single():
    sylls = [("Christ", "single"), ("lag", "single"), ("in", "single"),
             ("To", "begin"), ("des", "middle"), ("ban", "middle"), ("den", "end")]
    assert join_syllables(sylls) == "Christ lag in Todesbanden"


def test_join_syllables_skips_melisma_notes_and_keeps_open_word():
    # Ky- (3-note melisma) -ri- -e | e- -lei- (cut mid-word)
    sylls = [("Ky", "begin"), ("", ""), ("", ""), ("ri", "middle"), ("e", "end"),
             ("e", "begin"), ("lei", "middle")]
    assert join_syllables(sylls) == "Kyrie elei"


def test_clean_syllable_hyphens_numbers_and_elisions():
    assert clean_syllable("Chri-", "single") == ("Chri", "begin")
    assert clean_syllable("-ste", "single") == ("ste", "end")
    assert clean_syllable("1.3.7.8.", "single")[0] == ""
    assert clean_syllable("2.9.Kyrie", "single") == ("Kyrie", "single")
    assert clean_syllable("donna.è", "single") == ("donna è", "single")
    assert clean_syllable("fin.", "end") == ("fin.", "end")


def _line(spec, ts="4/4"):
    """A part from (midi, ql, lyric, syllabic, fermata, tie) tuples; None midi = rest."""
    part = stream.Part()
    m = stream.Measure(number=1)
    m.append(meter.TimeSignature(ts))
    filled, number = 0.0, 1
    for midi, ql, text, syl, ferm, tie in spec:
        el = note.Rest(quarterLength=ql) if midi is None else note.Note(midi, quarterLength=ql)
        if text:
            el.addLyric(text)
            el.lyrics[0].syllabic = syl
        if ferm:
            el.expressions.append(expressions.Fermata())
        if tie:
            from music21 import tie as m21tie

            el.tie = m21tie.Tie(tie)
        m.append(el)
        filled += ql
        if filled >= 4:
            part.append(m)
            number += 1
            m = stream.Measure(number=number)
            filled = 0.0
    if len(m.notesAndRests):
        part.append(m)
    return part


def test_melisma_notes_carry_no_syllable_and_text_is_rebuilt():
    part = _line([(62, 1, "Ky", "begin", False, None), (64, 1, "", "", False, None),
                  (65, 1, "", "", False, None), (64, 1, "ri", "middle", False, None),
                  (62, 2, "e", "end", True, None), (60, 2, "", "", False, None)])
    events = part_events(part)
    phrases = cut_phrases(events, verse=1)
    assert len(phrases) == 1 and phrases[0].boundary == "fermata"
    texts = [e.lyrics.get(1, ("", ""))[0] for e in phrases[0].events]
    assert texts == ["Ky", "", "", "ri", "e"]
    assert join_syllables(e.lyrics[1] for e in phrases[0].events if 1 in e.lyrics) == "Kyrie"


def test_fermata_and_rest_cut_but_not_a_rest_inside_a_word():
    spec = [(60, 1, "one", "single", False, None), (62, 1, "two", "single", False, None),
            (64, 1, "three", "single", True, None),  # fermata -> phrase 1 ends
            (65, 1, "four", "single", False, None), (67, 1, "fi", "begin", False, None),
            (None, 1, "", "", False, None),  # rest inside "fi-ve": no cut
            (69, 1, "ve", "end", False, None), (67, 1, "six", "single", False, None),
            (None, 1, "", "", False, None),  # rest between words: cut
            (65, 1, "se", "begin", False, None), (64, 1, "ven", "end", False, None),
            (62, 2, "eight", "single", False, None)]
    phrases = cut_phrases(part_events(_line(spec)), verse=1)
    words = [join_syllables(e.lyrics[1] for e in p.events) for p in phrases]
    assert words == ["one two three", "four five six", "seven eight"]
    assert [p.boundary for p in phrases] == ["fermata", "rest", "end"]


def test_punctuation_cut_keeps_the_melisma_with_its_word():
    spec = [(60, 1, "qual", "single", False, None), (62, 1, "el", "single", False, None),
            (64, 1, "ca", "begin", False, None), (65, 1, "te", "middle", False, None),
            (67, 1, "ne,", "end", False, None), (65, 1, "", "", False, None), (64, 1, "", "", False, None),
            (62, 1, "e", "single", False, None), (60, 1, "poi", "single", False, None),
            (59, 1, "va", "single", False, None)]
    phrases = cut_phrases(part_events(_line(spec)), verse=1)
    assert [len(p.events) for p in phrases] == [7, 3]
    assert phrases[0].boundary == "punctuation"
    assert phrases[1].events[0].lyrics[1] == ("e", "single")


def test_short_phrase_merged_into_direct_neighbour_only():
    # "Ah!" (2 notes, punctuation) right before a longer phrase is merged into it
    spec = [(60, 1, "Ah!", "single", False, None), (62, 1, "", "", False, None),
            (None, 2, "", "", False, None),
            (64, 1, "la", "single", False, None), (65, 1, "la", "single", False, None),
            (67, 1, "la", "single", False, None), (69, 1, "la.", "single", False, None)]
    phrases = cut_phrases(part_events(_line(spec)), verse=1)
    assert len(phrases) == 1
    assert join_syllables(e.lyrics[1] for e in phrases[0].events if 1 in e.lyrics) == "Ah! la la la la."
    # ... but never across a dropped wordless chunk
    spec_gap = spec[:3] + [(71, 4, "", "", False, None), (None, 1, "", "", False, None)] + spec[3:]
    phrases = cut_phrases(part_events(_line(spec_gap)), verse=1)
    assert len(phrases) == 1 and len(phrases[0].events) == 4
    assert all(len(p.events) >= MIN_NOTES for p in phrases)


def test_ties_merged_like_music21_strip_ties():
    score = parse_score("bach/bwv161.6.mxl")
    part = score.parts[0]
    assert sum(1 for n in part.recurse().notes if n.tie is not None) > 10
    stripped = part.stripTies()
    reference = [(float(n.getOffsetInHierarchy(stripped)), n.pitch.midi, float(n.quarterLength))
                 for n in stripped.recurse().notes]
    ours = [(e.onset, e.pitch, e.duration) for e in part_events(part) if not e.is_rest]
    assert len(ours) == len(reference)
    for (o1, p1, d1), (o2, p2, d2) in zip(ours, reference):
        assert p1 == p2
        assert o1 == pytest.approx(o2, abs=1e-6)
        assert d1 == pytest.approx(d2, abs=1e-6)


def test_hand_built_tie_across_barline():
    spec = [(60, 2, "a", "single", False, None), (62, 2, "long", "single", False, "start"),
            (62, 1, "", "", False, "stop"), (64, 3, "note", "single", False, None)]
    events = part_events(_line(spec))
    assert [(e.pitch, e.onset, e.duration) for e in events] == [(60, 0.0, 2.0), (62, 2.0, 3.0), (64, 5.0, 3.0)]


# ---------------------------------------------------------------------- corpus pieces
def test_bach_chorale_syllables_verses_and_fermatas(bach_fragments):
    frs = bach_fragments
    first = frs[0]
    assert first.fragment_id == "bach/bwv269:p0:v1:m0-4"
    assert first.lyrics == "Aus meines Herzens Grunde"
    assert [n.syllable for n in first.notes[:3]] == ["Aus", "mei", "nes"]
    assert [n.syllabic for n in first.notes[:3]] == ["single", "begin", "end"]
    assert first.language == "German" and first.key == "G major" and first.mode == "major"
    assert first.meter == "3/4" and first.part_index == 0 and first.measure_start == 0  # pickup bar
    # both lyric lines under the repeat become separate fragments
    assert {f.verse for f in frs} == {1, 2}
    assert any(f.lyrics == "in dieser Morgenstunde," and f.verse == 2 for f in frs)
    # every fermata of the soprano ends a fragment of the verse sung there
    score = parse_score(BACH.corpus_path)
    fermata_ends = sorted(
        float(n.getOffsetInHierarchy(score.parts[0]) + n.quarterLength)
        for n in score.parts[0].recurse().notes
        if any(isinstance(x, expressions.Fermata) for x in n.expressions))
    ends = {f.extra["end_ql"] for f in frs if f.extra["boundary"] == "fermata"}
    assert set(fermata_ends) == ends
    # notes are relative to the fragment start, sorted, positive
    for f in frs:
        assert f.notes[0].onset == 0.0
        assert all(a.onset <= b.onset for a, b in zip(f.notes, f.notes[1:]))
        assert all(n.duration > 0 for n in f.notes)
        assert f.lyrics and f.work_id == "bach/bwv269" and f.tempo_bpm > 0


def test_trecento_piece_language_measures_and_dedup():
    frs, why = extract_fragments(TRECENTO)
    assert why is None and len(frs) > 10
    assert {f.language for f in frs} == {"Italian"}
    assert frs[0].lyrics.startswith("Angnel")
    keys = [(tuple((n.pitch, n.onset, n.duration) for n in f.notes), f.lyrics.lower()) for f in frs]
    assert len(keys) == len(set(keys))
    assert len({f.fragment_id for f in frs}) == len(frs)
    for f in frs:
        assert f.measure_start <= f.measure_end
        assert f.extra["n_syllables"] >= 1


def test_utf16_trecento_file_is_read():
    path = corpus_root() / "trecento/PMFC_12_1-Kyrie Rondello.xml"
    assert path.read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff")
    assert "<score-partwise" in read_musicxml_text(path)
    frs, why = extract_fragments(ScoreRef("trecento/PMFC_12_1-Kyrie Rondello.xml", "trecento", 0))
    assert why is None and frs and all(f.language == "Latin" for f in frs)


def test_bad_score_skipped_with_logged_reason(tmp_path, caplog):
    bad = tmp_path / "broken.xml"
    bad.write_text("<score-partwise><part id='P1'><measure number='1'><note>", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        frs, why = extract_fragments(ScoreRef(str(bad), "songs", 0))
    assert frs == []
    assert why and "broken.xml" in why
    assert "broken.xml" in caplog.text


def test_corpus_selection_excludes_garbled_and_duplicate_sources():
    refs = find_lyric_scores()
    paths = [r.corpus_path for r in refs]
    assert paths == sorted(paths)
    assert not any(p.startswith(("monteverdi/", "palestrina/", "josquin/", "demos/")) for p in paths)
    assert not any("_bak" in p for p in paths)
    assert len({r.work_id for r in refs}) == len(refs)
    counts = {c: sum(r.collection == c for r in refs) for c in ("bach", "trecento", "songs")}
    assert counts["bach"] > 300 and counts["trecento"] > 80 and counts["songs"] >= 10


def test_detect_language_stopwords():
    assert detect_language("Et in terra pax hominibus bone voluntatis".split()) == "Latin"
    assert detect_language("Aus meines Herzens Grunde sag ich dir Lob und Dank".split()) == "German"
    assert detect_language("La donna è mobile qual piuma al vento muta d'accento e di pensiero".split()) == "Italian"
    assert detect_language("Lift every voice and sing till earth and heaven ring".split()) == "English"
    assert detect_language("xyzzy plugh".split()) == "unknown"
