"""Cut lyric-bearing parts of a score into sung phrases (:class:`Fragment` objects).

Pipeline for one score (:func:`extract_fragments`):

1. :func:`part_events` flattens a part into a monophonic list of :class:`Event` (notes and
   rests with absolute onsets in quarter lengths). Tied notes are merged by hand (about 5x
   faster than ``stripTies``); a measure with several voices contributes the voice that
   carries most lyrics; a chord contributes its top note; grace notes and chord symbols
   are skipped.
2. Each lyric verse of the part (music21's ``Lyric.number``; Bach's files number their only
   verse ``2`` in some chorales, so nothing assumes verse 1) is cut separately by
   :func:`cut_phrases`. Boundaries, in order of strength:

   - a **fermata** ends a phrase (Bach chorale phrase ends);
   - a **rest** ends a phrase, unless it falls inside a word (the previous syllable was
     ``begin``/``middle``), where it stays inside as a gap;
   - **lyric punctuation** (``. , ; : ! ?``) after a word ends a phrase once it holds at
     least :data:`MIN_NOTES` notes; the cut falls before the next sung syllable, so the
     melisma on the last word stays with it;
   - **bar-count fallback**: a phrase longer than ``max_measures`` bars is cut before the
     next word start (long melismatic trecento lines have none of the above).

   Phrases without any syllable of the verse (wordless melismas) are dropped. A phrase
   shorter than :data:`MIN_NOTES` notes is merged into its direct neighbour (never across
   a dropped chunk, so no fragment jumps over music it does not contain), else dropped.
3. The lyric text is rebuilt from the syllables (:func:`join_syllables`): ``begin``/``middle``/
   ``end`` syllables are glued into words, melisma notes add nothing.
4. Fragments identical in (melody, text) within the work are deduplicated (repeated
   verses and voices singing in unison or canon).

Times in the resulting :class:`Note` objects are quarter lengths from the fragment's first
onset; ``extra`` keeps the absolute offset in the part so a renderer can re-slice the score.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from crossmodal_core.data.music.corpus import (
    ScoreRef,
    detect_language,
    parse_score,
    score_composer,
    score_title,
)
from crossmodal_core.notes import Fragment, Note

log = logging.getLogger(__name__)

#: shortest phrase kept on its own (shorter ones are merged into a neighbour)
MIN_NOTES = 3
#: bar-count fallback: phrases are cut before the next word start after this many bars
MAX_MEASURES = 6
#: default tempo when the score has no metronome mark: beats (of the time signature's
#: beat unit: quarter in 4/4, half in 2/2, dotted quarter in 6/8; never shorter than a
#: quarter) per minute
DEFAULT_BEAT_BPM = 80.0
#: tempi outside this range (quarter notes per minute) are clipped
TEMPO_RANGE = (30.0, 300.0)
#: a verse is used in a phrase only if it covers this share of the phrase's texted notes
MIN_VERSE_COVERAGE = 0.5

_PUNCT_END = re.compile(r"[.,;:!?]['\"»)\]]*$")
_OPEN_WORD = ("begin", "middle")
_VERSE_NUMBER = re.compile(r"^(\d+[.,]\s*)+")
_ELISION_DOT = re.compile(r"(?<=[^\W\d_])\.(?=[^\W\d_])")
_WORD_START = ("begin", "single", "")
_DIGITS = 6  # rounding of quarter-length times (music21 Fractions -> stable floats)


@dataclass
class Event:
    """One note or rest of a monophonic line.

    pitch : MIDI number, or ``None`` for a rest
    onset, duration : quarter lengths, absolute within the part
    measure : source measure number
    fermata : a fermata sits on this note
    lyrics : verse number -> (syllable text, syllabic)
    """

    pitch: int | None
    onset: float
    duration: float
    measure: int
    fermata: bool = False
    lyrics: dict[int, tuple[str, str]] = field(default_factory=dict)

    @property
    def is_rest(self) -> bool:
        return self.pitch is None


# ---------------------------------------------------------------------- syllables
def clean_syllable(text: str, syllabic: str | None) -> tuple[str, str]:
    """Normalise one music21 lyric: strip spaces and hyphen markers, default syllabic.

    Some encodings write the hyphen into the text ("Chri-") instead of (or as well as)
    the syllabic; a trailing hyphen means the word goes on, a leading one that it
    continued. Elision underscores become spaces.
    """
    t = (text or "").replace("\u00a0", " ").strip()
    syl = syllabic or "single"
    if syl == "composite":
        syl = "single"
    if t.endswith("-") and len(t) > 1:
        t = t.rstrip("-")
        syl = {"single": "begin", "end": "middle"}.get(syl, syl)
    if t.startswith("-") and len(t) > 1:
        t = t.lstrip("-")
        syl = {"single": "end", "begin": "middle"}.get(syl, syl)
    t = re.sub(r"\s+", " ", t.replace("_", " ")).strip()
    t = _VERSE_NUMBER.sub("", t)  # "1.3.7.8." repeat numbering is not sung text
    t = _ELISION_DOT.sub(" ", t)  # "donna.è": an elision written as a dot between words
    return t, syl


def join_syllables(syllables: Iterable[tuple[str, str]]) -> str:
    """Rebuild the sung text from ``(syllable, syllabic)`` pairs in note order.

    ``begin`` opens a word, ``middle`` continues it, ``end`` closes it, ``single`` (or
    anything else) is a word on its own; empty syllables (melisma notes) are skipped.
    A word left open at the end (phrase cut mid-word) is kept as it is.

    >>> join_syllables([("Christ", "single"), ("lag", "single"), ("in", "single"),
    ...                 ("To", "begin"), ("des", "middle"), ("ban", "middle"), ("den", "end")])
    'Christ lag in Todesbanden'
    """
    words: list[str] = []
    current = ""
    for text, syl in syllables:
        if not text:
            continue
        if syl == "begin":
            if current:
                words.append(current)
            current = text
        elif syl == "middle":
            current += text
        elif syl == "end":
            words.append(current + text)
            current = ""
        else:
            if current:
                words.append(current)
                current = ""
            words.append(text)
    if current:
        words.append(current)
    return " ".join(words)


# ---------------------------------------------------------------------- events
def _note_lyrics(el) -> dict[int, tuple[str, str]]:
    out: dict[int, tuple[str, str]] = {}
    for lyr in el.lyrics:
        text, syl = clean_syllable(lyr.text, lyr.syllabic)
        if not text or not re.search(r"\w", text):
            continue
        number = int(lyr.number or 1)
        out.setdefault(number, (text, syl))
    return out


def _pick_voice(measure):
    """The container of the measure's line: the voice with most lyrics (first on ties)."""
    voices = list(measure.voices)
    if not voices:
        return measure
    return max(voices, key=lambda v: (sum(1 for n in v.notes if n.lyrics), -voices.index(v)))


def part_events(part) -> list[Event]:
    """Flatten a music21 part into a monophonic event list, ties merged.

    Returns
    -------
    list of :class:`Event` sorted by onset; consecutive tied notes of the same pitch are one
    event (its duration the sum, fermata and lyrics kept from whichever carries them).
    """
    from music21 import expressions, harmony, note

    events: list[Event] = []
    measures = list(part.getElementsByClass("Measure"))
    if measures:
        chunks = [(float(m.offset), int(m.number or 0), _pick_voice(m)) for m in measures]
    else:
        chunks = [(0.0, 0, part.flatten())]
    for base, number, container in chunks:
        for el in container.notesAndRests:
            if isinstance(el, harmony.Harmony) or el.duration.isGrace:
                continue
            ql = float(el.duration.quarterLength)
            if ql <= 0:
                continue
            onset = round(base + float(el.offset), _DIGITS)
            ql = round(ql, _DIGITS)
            if isinstance(el, note.Rest):
                if events and events[-1].is_rest and abs(events[-1].onset + events[-1].duration - onset) < 1e-6:
                    events[-1].duration = round(events[-1].duration + ql, _DIGITS)
                else:
                    events.append(Event(None, onset, ql, number))
                continue
            if el.isChord:
                pitches = [p.midi for p in el.pitches]
                if not pitches:
                    continue
                pitch = int(max(pitches))
            elif isinstance(el, note.Note):
                pitch = int(el.pitch.midi)
            else:  # unpitched percussion and the like
                continue
            fermata = any(isinstance(x, expressions.Fermata) for x in el.expressions)
            lyrics = _note_lyrics(el)
            prev = events[-1] if events else None
            tied = el.tie is not None and el.tie.type in ("stop", "continue")
            if (tied and prev is not None and prev.pitch == pitch
                    and abs(prev.onset + prev.duration - onset) < 1e-6):
                prev.duration = round(prev.duration + ql, _DIGITS)
                prev.fermata = prev.fermata or fermata
                for k, v in lyrics.items():
                    prev.lyrics.setdefault(k, v)
                continue
            events.append(Event(pitch, onset, ql, number, fermata, lyrics))
    events.sort(key=lambda e: e.onset)
    return events


# ---------------------------------------------------------------------- cutting
@dataclass
class Phrase:
    events: list[Event]  # notes only (rests inside a word are gaps between them)
    boundary: str  # what ended it: fermata, rest, punctuation, length, end
    index: int  # position in the uncut sequence (for adjacency when merging)


def cut_phrases(events: Sequence[Event], verse: int, max_measures: int = MAX_MEASURES) -> list[Phrase]:
    """Cut one verse of a part into phrases (see the module docstring for the rules).

    Parameters
    ----------
    events : output of :func:`part_events`
    verse : lyric number to follow
    max_measures : bar-count fallback

    Returns
    -------
    list of :class:`Phrase`, each with at least one syllable of ``verse`` and (unless it
    could not be merged) at least :data:`MIN_NOTES` notes
    """
    raw: list[Phrase] = []
    current: list[Event] = []
    open_word = False

    def close(boundary: str) -> None:
        nonlocal current
        if current:
            raw.append(Phrase(current, boundary, len(raw)))
        current = []

    pending_punctuation = False  # a phrase-ending word was sung; its melisma may go on
    for ev in events:
        if ev.is_rest:
            if not open_word:
                close("punctuation" if pending_punctuation else "rest")
                pending_punctuation = False
            continue
        syl_text, syllabic = ev.lyrics.get(verse, ("", ""))
        if pending_punctuation and syl_text:
            # cut before the next sung syllable, so the melisma on "ne," stays with its word
            close("punctuation")
            pending_punctuation = False
        if current:
            span = ev.measure - current[0].measure + 1
            word_start = bool(syl_text) and syllabic in _WORD_START and not open_word
            if ((span > max_measures and word_start)
                    or (span > 1.5 * max_measures and not syl_text and not open_word)
                    or span > 2 * max_measures):
                close("length")
        current.append(ev)
        if syl_text:
            open_word = syllabic in _OPEN_WORD
        if ev.fermata and not open_word:
            close("fermata")
            pending_punctuation = False
        elif (syl_text and not open_word and _PUNCT_END.search(syl_text)
              and len(current) >= MIN_NOTES):
            pending_punctuation = True
    close("punctuation" if pending_punctuation else "end")

    def has_text(p: Phrase) -> bool:
        sung = [e for e in p.events if e.lyrics]
        own = [e for e in sung if verse in e.lyrics]
        return bool(own) and len(own) >= MIN_VERSE_COVERAGE * len(sung)

    kept = [p for p in raw if has_text(p)]
    # merge short phrases into a direct neighbour (adjacent in the uncut sequence)
    merged: list[Phrase] = []
    i = 0
    while i < len(kept):
        p = kept[i]
        if len(p.events) < MIN_NOTES:
            if merged and merged[-1].index == p.index - 1 and merged[-1].boundary != "length":
                prev = merged[-1]
                merged[-1] = Phrase(prev.events + p.events, p.boundary, p.index)
                i += 1
                continue
            if i + 1 < len(kept) and kept[i + 1].index == p.index + 1:
                nxt = kept[i + 1]
                kept[i + 1] = Phrase(p.events + nxt.events, nxt.boundary, nxt.index)
                i += 1
                continue
            i += 1  # isolated scrap: drop
            continue
        merged.append(p)
        i += 1
    return merged


# ---------------------------------------------------------------------- metadata
def _key_and_mode(score, part) -> tuple[str, str]:
    """The encoded key when it names a mode, else music21's Krumhansl analysis of the part."""
    from music21 import key as m21key

    for k in part.recurse().getElementsByClass(m21key.Key):
        if k.mode in ("major", "minor"):
            return f"{k.tonic.name} {k.mode}", k.mode
        break
    try:
        k = part.analyze("key")
        return f"{k.tonic.name} {k.mode}", str(k.mode)
    except Exception:  # analysis fails on odd parts; the mode is then unknown
        return "", "unknown"


def _meters(part) -> dict[int, str]:
    """measure number -> time signature in force (ratio string)."""
    out: dict[int, str] = {}
    current = ""
    for m in part.getElementsByClass("Measure"):
        ts = m.timeSignature
        if ts is not None:
            current = ts.ratioString
        out[int(m.number or 0)] = current
    return out


def _default_quarter_bpm(part) -> float:
    ts = next(iter(part.recurse().getElementsByClass("TimeSignature")), None)
    beat_ql = float(ts.beatDuration.quarterLength) if ts is not None else 1.0
    # beats shorter than a quarter (x/8 simple metres of the trecento transcriptions) would
    # give absurdly slow quarters, so the quarter never goes below DEFAULT_BEAT_BPM
    return DEFAULT_BEAT_BPM * max(1.0, beat_ql)


def _tempo_marks(score) -> list[tuple[float, float]]:
    """Sorted ``(offset, quarter bpm)`` of the score's metronome marks (any part)."""
    from music21 import tempo

    marks = set()
    for part in score.parts:
        for m in part.getElementsByClass("Measure"):
            for mm in m.getElementsByClass(tempo.MetronomeMark):
                bpm = mm.getQuarterBPM()
                if bpm:
                    marks.add((round(float(m.offset) + float(mm.offset), _DIGITS), float(bpm)))
    return sorted(marks)


def _tempo_at(marks: list[tuple[float, float]], onset: float, default: float) -> tuple[float, str]:
    bpm, source = default, "default"
    for off, b in marks:
        if off <= onset + 1e-6:
            bpm, source = b, "score"
    lo, hi = TEMPO_RANGE
    return round(min(max(bpm, lo), hi), 3), source


# ---------------------------------------------------------------------- fragments
def lyric_part_indices(score) -> list[int]:
    """Indices of the parts that carry at least :data:`MIN_NOTES` lyric syllables."""
    out = []
    for i, part in enumerate(score.parts):
        n = sum(1 for el in part.recurse().notes if el.lyrics)
        if n >= MIN_NOTES:
            out.append(i)
    return out


def _fragment_key(fr: Fragment) -> tuple:
    melody = tuple((n.pitch, n.onset, n.duration) for n in fr.notes)
    return melody, " ".join(fr.lyrics.lower().split())


_LITURGICAL_TITLE = re.compile(r"(Kyrie|Gloria|Credo|Sanctus|Agnus|Benedicamus|Magnificat)", re.I)


def fragments_from_score(score, ref: ScoreRef, max_measures: int = MAX_MEASURES) -> list[Fragment]:
    """All phrase fragments of every texted part and verse of a parsed score.

    Fragments come sorted by (part, verse, onset); duplicates in (melody, text) within the
    work are dropped (first kept).
    """
    title = score_title(score, ref.corpus_path)
    composer = score_composer(score, ref.collection, ref.corpus_path)
    marks = _tempo_marks(score)
    fragments: list[Fragment] = []
    seen: set[tuple] = set()
    bwv = re.match(r"bach/bwv([\w.]+)\.\w+$", ref.corpus_path)
    used_ids: set[str] = set()
    parts = []
    for pi in lyric_part_indices(score):
        events = part_events(score.parts[pi])
        verses = sorted({v for e in events for v in e.lyrics})
        words = " ".join(join_syllables(e.lyrics[v] for e in events if v in e.lyrics) for v in verses).split()
        parts.append((pi, events, verses, words))
    # a part with too little text for the stopword vote takes the work's language
    work_language = detect_language(w for _, _, _, words in parts for w in words)
    if work_language == "unknown" and _LITURGICAL_TITLE.search(title + " " + ref.corpus_path):
        work_language = "Latin"
    if bwv and parts and parts[0][2]:
        # chorales carry no title: name them by their first line, as hymnals do
        pi0, events0, verses0, _ = parts[0]
        first = cut_phrases(events0, verses0[0], max_measures=max_measures)
        if first:
            line = join_syllables(e.lyrics[verses0[0]] for e in first[0].events if verses0[0] in e.lyrics)
            title = f"{line.rstrip(' ,.;:!?')} (BWV {bwv.group(1)})"
    for pi, events, verses, words in parts:
        part = score.parts[pi]
        language = detect_language(words)
        if language == "unknown":
            language = work_language
        key_name, mode = _key_and_mode(score, part)
        meters = _meters(part)
        default_bpm = _default_quarter_bpm(part)
        part_name = str(part.partName or f"part {pi}")
        for verse in verses:
            for phrase in cut_phrases(events, verse, max_measures=max_measures):
                evs = phrase.events
                start = evs[0].onset
                notes = []
                for e in evs:
                    text, syl = e.lyrics.get(verse, ("", ""))
                    notes.append(Note(int(e.pitch), round(e.onset - start, _DIGITS), e.duration, text, syl if text else ""))
                lyrics = join_syllables((n.syllable, n.syllabic) for n in notes)
                bpm, tempo_source = _tempo_at(marks, start, default_bpm)
                m0, m1 = evs[0].measure, evs[-1].measure
                fid = f"{ref.work_id}:p{pi}:v{verse}:m{m0}-{m1}"
                k = 2
                while fid in used_ids:
                    fid = f"{ref.work_id}:p{pi}:v{verse}:m{m0}-{m1}.{k}"
                    k += 1
                fr = Fragment(
                    fragment_id=fid, corpus_path=ref.corpus_path, part_index=pi,
                    measure_start=m0, measure_end=m1, verse=verse, notes=notes, lyrics=lyrics,
                    title=title, composer=composer, collection=ref.collection, language=language,
                    key=key_name, mode=mode, meter=meters.get(m0, ""), tempo_bpm=bpm,
                    work_id=ref.work_id,
                    extra={
                        "part_name": part_name,
                        "offset_ql": start,
                        "end_ql": round(evs[-1].onset + evs[-1].duration, _DIGITS),
                        "boundary": phrase.boundary,
                        "tempo_source": tempo_source,
                        "n_syllables": sum(1 for n in notes if n.syllable),
                    },
                )
                key = _fragment_key(fr)
                if key in seen:
                    continue
                seen.add(key)
                used_ids.add(fid)
                fragments.append(fr)
    return fragments


def extract_fragments(ref: ScoreRef, max_measures: int = MAX_MEASURES) -> tuple[list[Fragment], str | None]:
    """Parse one corpus score and cut it; never raises for a bad score.

    Returns
    -------
    (fragments, reason) : ``reason`` is ``None`` on success, else why the score was
    skipped (also logged at WARNING level); ``fragments`` is then empty.
    """
    try:
        score = parse_score(ref.corpus_path)
    except ValueError as exc:
        log.warning("skipping %s: %s", ref.corpus_path, exc)
        return [], str(exc)
    try:
        fragments = fragments_from_score(score, ref, max_measures=max_measures)
    except Exception as exc:  # a malformed score must not stop a corpus build
        reason = f"{ref.corpus_path}: cannot cut into phrases ({type(exc).__name__}: {exc})"
        log.warning("skipping %s", reason)
        return [], reason
    if not fragments:
        reason = f"{ref.corpus_path}: no texted phrase found"
        log.warning("skipping %s", reason)
        return [], reason
    return fragments, None


def fragment_summary(fr: Fragment) -> dict[str, Any]:
    """A short JSON-able description (for logs, reports and the dataset card)."""
    return {
        "id": fr.fragment_id, "title": fr.title, "language": fr.language,
        "lyrics": fr.lyrics, "n_notes": len(fr.notes), "duration_s": round(fr.duration_s, 2),
        "tempo_bpm": fr.tempo_bpm, "key": fr.key, "meter": fr.meter,
    }
