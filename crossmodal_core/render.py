"""Engrave fragments and works as SVG (verovio), with note timings for audio highlighting.

Route: a fragment's notes -> a music21 part (time signature, key, lyrics under the notes,
rests for gaps) -> MusicXML -> verovio -> SVG + timemap. Building from the notes is
self-contained (no score parse) and shows exactly what was synthesised; a whole work goes
through ``music21.corpus.parse`` instead.

Conventions
-----------
- Timemap entries are ``dict(id, onset_s, offset_s)``: ``id`` is the SVG element id of a
  note (``<g class="note" id=...>``), times in seconds from the start of the fragment's
  audio (:func:`crossmodal_core.synth.synthesize`), i.e. ``(qstamp - first note qstamp) *
  60 / tempo_bpm`` where ``qstamp`` is verovio's onset in quarter notes. A note tied across
  a barline is one sounding note: its entry spans both written halves, names the first, and
  lists the others under ``tied_ids`` (so there is one entry per ``fragment.notes`` item).
- Element ids are deterministic (verovio's id seed is fixed), so the same fragment gives the
  same SVG bytes.
- verovio keeps its font resource path per thread, and Streamlit reruns a page in new
  threads, so every thread gets its own toolkit created as ``verovio.toolkit(False)`` with an
  explicit ``setResourcePath``.
- Where the first note sits in its bar is read from ``fragment.extra["measure_offset_ql"]``
  when the extractor provides it (a pickup); otherwise the fragment starts on a downbeat.
"""

from __future__ import annotations

import base64
import functools
import html
import importlib.resources
import json
import math
import re
import threading
from typing import Any

import numpy as np

from .notes import Fragment

DEFAULT_WIDTH = 1800
ID_SEED = 1
_THREAD = threading.local()


class RenderError(ValueError):
    """A fragment or score that cannot be turned into notation."""


# ---------------------------------------------------------------------- music21 side
def _time_signature(meter: str):
    from music21 import meter as m21meter

    if meter:
        try:
            return m21meter.TimeSignature(meter)
        except Exception:  # an odd ratio string: fall back to common time below
            pass
    return m21meter.TimeSignature("4/4")


def _key_signature(key_name: str):
    from music21 import key as m21key

    parts = (key_name or "").split()
    if len(parts) == 2 and parts[1] in ("major", "minor"):
        try:
            return m21key.Key(parts[0], parts[1])
        except Exception:  # unknown tonic spelling: no key signature rather than a wrong one
            return None
    return None


_SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLAT_NAMES = ("C", "D-", "D", "E-", "E", "F", "G-", "G", "A-", "A", "B-", "B")


def _spelling(ks) -> dict[int, str]:
    """pitch class -> note name: the key's scale (plus raised 6th/7th in minor), then sharps
    or flats following the key signature. MIDI numbers carry no spelling; this one reads right."""
    names = dict(enumerate(_FLAT_NAMES if ks is not None and ks.sharps < 0 else _SHARP_NAMES))
    if ks is None:
        return names
    scale = [p for p in ks.pitches[:7]]
    if ks.mode == "minor":
        scale += [p.transpose("A1") for p in scale[5:7]]
    for p in scale:
        names[p.pitchClass] = p.name
    return names


@functools.lru_cache(maxsize=128)
def _key_spelling(key_name: str) -> dict[int, str]:
    """:func:`_spelling` of a key name, cached: realising a key's scale in music21 costs about
    20 ms, a fifth of engraving a short fragment. Callers only read the dict."""
    return _spelling(_key_signature(key_name))


def _pitch(midi: int, names: dict[int, str]):
    from music21 import pitch

    p = pitch.Pitch(names[midi % 12])
    p.octave = 4
    p.octave += (midi - p.midi) // 12  # B#/C- sit across the octave boundary: fix by midi
    if p.midi != midi:
        p = pitch.Pitch(midi)
    if p.accidental is not None:
        p.accidental.displayStatus = None  # let makeAccidentals decide against the key signature
    return p


def fragment_stream(fragment: Fragment, lyrics: bool = True, tempo_mark: bool = True):
    """A music21 ``Score`` with one part holding the fragment's notes and lyrics.

    Gaps between notes become rests; syllables are attached with their ``syllabic`` so the
    engraver draws hyphens; time signature and key come from ``fragment.meter`` /
    ``fragment.key`` when they parse. ``lyrics=False`` / ``tempo_mark=False`` leave out the
    syllables / the metronome mark (the staff-only engraving of :func:`fragment_staff_svg`).
    """
    from music21 import metadata, note, stream, tempo

    notes = list(fragment.notes)
    if not notes:
        raise RenderError(f"fragment {fragment.fragment_id!r} has no notes to engrave")
    for i, n in enumerate(notes):
        if not (0 <= int(n.pitch) <= 127) or not (math.isfinite(n.onset) and math.isfinite(n.duration)) \
                or n.duration <= 0 or n.onset < 0:
            raise RenderError(f"fragment {fragment.fragment_id!r}: note {i} is not engravable ({n})")
    if not (math.isfinite(float(fragment.tempo_bpm)) and float(fragment.tempo_bpm) > 0):
        raise RenderError(f"fragment {fragment.fragment_id!r}: tempo_bpm must be positive")

    part = stream.Part(id="P1")
    part.insert(0, _time_signature(fragment.meter))
    ks = _key_signature(fragment.key)
    if ks is not None:
        part.insert(0, ks)
    if tempo_mark:
        part.insert(0, tempo.MetronomeMark(number=round(float(fragment.tempo_bpm), 2)))
    lead = float(fragment.extra.get("measure_offset_ql", 0.0) or 0.0) if fragment.extra else 0.0
    position = 0.0
    if lead > 0:
        part.insert(0.0, note.Rest(quarterLength=lead))
        position = lead
    names = _key_spelling(fragment.key or "")
    first = notes[0].onset
    for n in sorted(notes, key=lambda n: n.onset):
        onset = lead + n.onset - first
        if onset > position + 1e-6:
            part.insert(position, note.Rest(quarterLength=onset - position))
        el = note.Note(_pitch(int(n.pitch), names), quarterLength=float(n.duration))
        if n.syllable and lyrics:
            el.lyric = n.syllable
            if n.syllabic in ("single", "begin", "middle", "end"):
                el.lyrics[0].syllabic = n.syllabic
        part.insert(onset, el)
        last = el
        position = max(position, onset + float(n.duration))
    if (fragment.extra or {}).get("boundary") == "fermata":  # the extractor cut the phrase there
        from music21 import expressions

        last.expressions.append(expressions.Fermata())
    part.makeMeasures(inPlace=True)
    part.makeTies(inPlace=True)
    # accidentals shown only where the key signature and the bar's earlier notes need them
    part.makeAccidentals(inPlace=True)
    score = stream.Score(id="fragment")
    score.metadata = metadata.Metadata(title=fragment.title or fragment.fragment_id, composer=fragment.composer or "")
    score.insert(0, part)
    return score


def _musicxml(obj) -> str:
    """MusicXML text of a music21 stream: fast path without notation fixes, then the full one."""
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    try:
        exporter = GeneralObjectExporter(obj)
        exporter.makeNotation = False
        data = exporter.parse()
    except Exception:  # a duration that needs splitting: let music21 fix the notation
        try:
            exporter = GeneralObjectExporter(obj)
            exporter.makeNotation = True
            data = exporter.parse()
        except Exception as exc:
            raise RenderError(f"music21 cannot write this stream as MusicXML ({type(exc).__name__}: {exc})") from None
    return data.decode("utf-8") if isinstance(data, bytes) else str(data)


#: the grid :func:`snapped` puts onsets and durations on (quarter notes)
SNAP_GRID = 48


def snapped(fragment: Fragment) -> Fragment:
    """A copy of ``fragment`` whose note onsets and ends lie on a 1/:data:`SNAP_GRID` quarter
    grid (each note at least one grid step long)."""
    import dataclasses

    notes = []
    for n in fragment.notes:
        on = round(float(n.onset) * SNAP_GRID)
        end = max(on + 1, round((float(n.onset) + float(n.duration)) * SNAP_GRID))
        notes.append(dataclasses.replace(n, onset=on / SNAP_GRID, duration=(end - on) / SNAP_GRID))
    return dataclasses.replace(fragment, notes=notes)


def fragment_musicxml(fragment: Fragment, lyrics: bool = True, tempo_mark: bool = True) -> str:
    """The fragment as a MusicXML document (str), lyrics under the notes.

    Durations stored rounded that have no notation (a triplet 16th stored as 0.164062, about
    0.75 % of the corpus fragments) make music21 refuse the export; then the notes snapped to
    a 1/48 quarter grid (:func:`snapped`, at most 1/96 quarter away) are written instead.
    """
    score = fragment_stream(fragment, lyrics=lyrics, tempo_mark=tempo_mark)  # bad notes raise here
    try:
        return _musicxml(score)
    except RenderError:
        return _musicxml(fragment_stream(snapped(fragment), lyrics=lyrics, tempo_mark=tempo_mark))


@functools.lru_cache(maxsize=8)
def work_musicxml(corpus_path: str, part_index: int | None = None) -> str:
    """A whole corpus work (or one part of it) as MusicXML; cached per process."""
    from music21 import corpus

    try:
        score = corpus.parse(corpus_path)
    except Exception as exc:
        raise RenderError(f"cannot parse corpus work {corpus_path!r} ({type(exc).__name__}: {exc})") from None
    if part_index is not None:
        parts = list(getattr(score, "parts", []))
        if not 0 <= int(part_index) < len(parts):
            raise RenderError(f"{corpus_path!r} has {len(parts)} parts; part_index {part_index} is out of range")
        from music21 import stream

        single = stream.Score(id="work")
        single.metadata = score.metadata
        single.insert(0, parts[int(part_index)])
        score = single
    return _musicxml(score)


# ---------------------------------------------------------------------- verovio side
def _toolkit():
    """This thread's verovio toolkit (fonts resolved per thread; see module docstring)."""
    tk = getattr(_THREAD, "toolkit", None)
    if tk is None:
        import verovio

        tk = verovio.toolkit(False)
        if not tk.setResourcePath(str(importlib.resources.files("verovio") / "data")):
            raise RenderError("verovio cannot load its font resources (reinstall verovio)")
        _THREAD.toolkit = tk
    return tk


def _load(tk, musicxml: str, options: dict[str, Any]) -> None:
    tk.resetOptions()
    tk.setOptions({"xmlIdSeed": ID_SEED, **options})
    tk.resetXmlIdSeed(ID_SEED)
    if not tk.loadData(musicxml):
        raise RenderError(f"verovio could not read the MusicXML ({tk.getLog().strip() or 'no details'})")


_TIE = re.compile(r"<tie\b[^>]*?startid=\"#([^\"]+)\"[^>]*?endid=\"#([^\"]+)\"")


def _tie_continuations(tk) -> dict[str, str]:
    """written note id -> id of the note it continues (verovio's MEI ``<tie>`` elements)."""
    out: dict[str, str] = {}
    for start, end in _TIE.findall(tk.getMEI()):
        out[end] = out.get(start, start)  # a chain of ties leads back to the first note
    return out


def _timemap(tk, tempo_bpm: float) -> list[dict[str, Any]]:
    raw = tk.renderToTimemap({"includeMeasures": False, "includeRests": False})
    events = json.loads(raw) if isinstance(raw, str) else list(raw)
    on_at: dict[str, float] = {}
    off_at: dict[str, float] = {}
    for ev in events:
        q = float(ev.get("qstamp", 0.0))
        for nid in ev.get("on", []):
            on_at.setdefault(nid, q)
        for nid in ev.get("off", []):
            off_at[nid] = q
    if not on_at:
        return []
    continues = _tie_continuations(tk)
    first = min(on_at.values())
    scale = 60.0 / float(tempo_bpm)
    entries: dict[str, dict[str, Any]] = {}
    for nid, q_on in sorted(on_at.items(), key=lambda kv: (kv[1], kv[0])):
        q_off = off_at.get(nid, q_on)
        head = continues.get(nid)
        if head is not None and head in entries:  # second half of a tied note: extend the first
            entry = entries[head]
            entry["offset_s"] = round(max(entry["offset_s"], (q_off - first) * scale), 6)
            entry.setdefault("tied_ids", []).append(nid)
            continue
        entries[nid] = {"id": nid, "onset_s": round((q_on - first) * scale, 6), "offset_s": round((q_off - first) * scale, 6)}
    return list(entries.values())


def fragment_svg(fragment: Fragment, width: int = DEFAULT_WIDTH, scale: int = 45) -> tuple[str, list[dict[str, Any]]]:
    """Engrave a fragment on one page.

    Parameters
    ----------
    fragment : Fragment
    width : int
        Page width in verovio units (tenths of a staff space x 10); the line breaks follow it.
    scale : int
        verovio scale in percent.

    Returns
    -------
    svg : str
        One ``<svg>`` document; lyrics under the notes.
    timemap : list of dict(id, onset_s, offset_s[, tied_ids])
        One entry per sounding note in time order (see module docstring).
    """
    xml = fragment_musicxml(fragment)
    tk = _toolkit()
    _load(tk, xml, {
        "pageWidth": int(width), "pageHeight": 60000, "adjustPageHeight": True, "scale": int(scale),
        "header": "none", "footer": "none", "breaks": "auto", "svgViewBox": True,
    })
    svg = tk.renderToSVG(1)
    return svg, _note_times(_timemap(tk, fragment.tempo_bpm), fragment)


def _note_times(timemap: list[dict[str, Any]], fragment: Fragment) -> list[dict[str, Any]]:
    """The timemap with each entry's times taken from its note (``Note.onset`` / ``duration``
    at the fragment's tempo) when the entries pair one to one with the notes: verovio times a
    tuplet that music21 wrote without its bracket as the plain value, the audio does not."""
    notes = sorted(fragment.notes, key=lambda n: n.onset)
    if len(timemap) != len(notes):
        return timemap
    scale = 60.0 / float(fragment.tempo_bpm)
    first = float(notes[0].onset)
    return [{**e, "onset_s": round((float(n.onset) - first) * scale, 6),
             "offset_s": round((float(n.onset) + float(n.duration) - first) * scale, 6)}
            for e, n in zip(timemap, notes)]


#: verovio's staff space in the SVG's inner coordinates at ``scale`` 100 (a staff is 4 spaces)
STAFF_SPACE_UNITS = 180


def fragment_staff_svg(fragment: Fragment) -> tuple[str, list[tuple[str, float]], float]:
    """Engrave a fragment as one staff system, staff only: no lyrics, title or tempo mark.

    This is the engraving the ``score_image`` view rasterises
    (:mod:`crossmodal_core.features.score_image`): one system however long the fragment
    (``breaks: none``), no page margins, verovio scale 100, so one staff space is
    :data:`STAFF_SPACE_UNITS` units of the inner ``definition-scale`` coordinates (the root
    ``viewBox`` is those units / 10). Lyrics, title and tempo mark are left out: at a raster
    height of a few staff spaces they would be illegible blobs, they widen the note spacing,
    and the tempo mark's note glyph is set in a web font that rasterisers without it draw as
    a box.

    Returns
    -------
    svg : str
        One ``<svg>`` document.
    events : list of (element id, qstamp)
        Every note and rest that starts, with its onset in quarter notes on the audio's clock
        (``Note.onset`` units: 0 = time 0 of :func:`crossmodal_core.synth.synthesize`; a
        pickup rest comes out negative), from verovio's timemap; a tied continuation is
        listed at its own onset.
    end_qstamp : float
        Where the last note or rest ends, same clock.
    """
    xml = fragment_musicxml(fragment, lyrics=False, tempo_mark=False)
    tk = _toolkit()
    _load(tk, xml, {
        "breaks": "none", "header": "none", "footer": "none", "scale": 100, "svgViewBox": True,
        "adjustPageWidth": True, "adjustPageHeight": True, "pageMarginLeft": 0, "pageMarginRight": 0,
        "pageMarginTop": 0, "pageMarginBottom": 0,
    })
    svg = tk.renderToSVG(1)
    raw = tk.renderToTimemap({"includeMeasures": False, "includeRests": True})
    timemap = json.loads(raw) if isinstance(raw, str) else list(raw)
    onsets: dict[str, float] = {}
    end = 0.0
    for ev in timemap:
        q = float(ev.get("qstamp", 0.0))
        for nid in ev.get("on", []):
            onsets.setdefault(str(nid), q)
        if ev.get("off"):
            end = max(end, q)
    if not onsets:
        raise RenderError(f"fragment {fragment.fragment_id!r}: verovio engraved no note")
    # quarter notes of the audio's clock: the engraving starts with the pickup rest (``lead``),
    # the audio with the first note at its own onset (fragment_stream shifts notes by both)
    lead = float(fragment.extra.get("measure_offset_ql", 0.0) or 0.0) if fragment.extra else 0.0
    origin = lead - min(float(n.onset) for n in fragment.notes)
    events = sorted(((nid, q - origin) for nid, q in onsets.items()), key=lambda e: (e[1], e[0]))
    end = max(end - origin, events[-1][1])
    return svg, *_true_times(tk, fragment, events, end)


def _true_times(tk, fragment: Fragment, events: list[tuple[str, float]], end: float
                ) -> tuple[list[tuple[str, float]], float]:
    """Put verovio's written times on the notes' own clock.

    verovio times a tuplet written without its bracket (music21's fast export of a 1/6 or 1/3
    quarter) as the plain value, so its written onsets drift from ``Note.onset``. The sounding
    notes come out of the timemap in the fragment's order (one per note, ties merged:
    :func:`_timemap`); where their written onsets differ from the notes' onsets, every event
    time is mapped through the piecewise-linear map written onset -> note onset (and written
    end -> the last note's end). Binary durations are left exactly as they are."""
    heads = _timemap(tk, 60.0)  # at 60 bpm onset_s is in quarter notes from the first note
    notes = sorted(fragment.notes, key=lambda n: n.onset)
    if len(heads) != len(notes):
        return events, end  # an engraving we cannot pair note by note: keep the written times
    first = float(notes[0].onset)
    written = np.array([float(h["onset_s"]) + first for h in heads] + [end])
    true = np.array([float(n.onset) for n in notes] + [max(float(n.onset + n.duration) for n in notes)])
    if np.allclose(written, true, rtol=0.0, atol=1e-6) or np.any(np.diff(written) <= 0):
        return events, end
    # a pickup rest before the first note keeps its (negative) written time
    return [(nid, q if q < written[0] else float(np.interp(q, written, true))) for nid, q in events], float(true[-1])


def work_svg(corpus_path: str, part_index: int | None = None, pages: int = 1, width: int = DEFAULT_WIDTH,
             scale: int = 35) -> str:
    """The first ``pages`` pages of a corpus work (or one part) as SVG.

    Returns
    -------
    svg : str
        The pages' ``<svg>`` documents one after another (ready to embed in HTML).
    """
    if pages < 1:
        raise ValueError(f"pages must be >= 1, got {pages}")
    xml = work_musicxml(corpus_path, part_index)
    tk = _toolkit()
    _load(tk, xml, {"pageWidth": int(width), "pageHeight": 2970, "scale": int(scale), "adjustPageHeight": True,
                    "footer": "none", "svgViewBox": True})
    n = min(int(pages), tk.getPageCount())
    if n < 1:
        raise RenderError(f"verovio produced no page for {corpus_path!r}")
    return "\n".join(tk.renderToSVG(p) for p in range(1, n + 1))


# ---------------------------------------------------------------------- player
_PLAYER_TEMPLATE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><style>
body {{ margin: 0; font-family: sans-serif; }}
.cm-score svg {{ width: 100%; height: auto; }}
.cm-score g.cm-on, .cm-score g.cm-on * {{ fill: {color} !important; stroke: {color} !important; }}
audio {{ width: 100%; }}
</style></head><body>
<audio id="cm-audio" controls preload="auto" src="data:audio/wav;base64,{audio_b64}"></audio>
<div class="cm-score" id="cm-score">{svg}</div>
<script>
(function () {{
  const timemap = {timemap_json};
  const audio = document.getElementById("cm-audio");
  let lit = [];
  function update() {{
    const t = audio.currentTime;
    for (const el of lit) el.classList.remove("cm-on");
    lit = [];
    for (const n of timemap) {{
      if (t >= n.onset_s && t < n.offset_s) {{
        for (const id of n.ids) {{
          const el = document.getElementById(id);
          if (el) {{ el.classList.add("cm-on"); lit.push(el); }}
        }}
      }}
    }}
  }}
  function tick() {{ update(); if (!audio.paused) requestAnimationFrame(tick); }}
  audio.addEventListener("timeupdate", update);
  audio.addEventListener("seeked", update);
  audio.addEventListener("play", () => requestAnimationFrame(tick));
  audio.addEventListener("ended", update);
}})();
</script>
</body></html>
"""


def fragment_player_html(fragment: Fragment, width: int = DEFAULT_WIDTH, color: str = "#d62728") -> str:
    """:func:`highlight_player_html` for a fragment: engraves it and plays its cached audio
    (:func:`crossmodal_core.synth.audio_for`)."""
    from . import synth

    svg, timemap = fragment_svg(fragment, width=width)
    wav = synth.audio_bytes_wav(synth.audio_for(fragment), synth.DEFAULT_SAMPLE_RATE)
    return highlight_player_html(svg, timemap, wav, color=color)


def highlight_player_html(svg: str | Fragment, timemap: list[dict[str, Any]] | None = None,
                          audio_wav_bytes: bytes | None = None, color: str = "#d62728") -> str:
    """A self-contained HTML page: the score, an ``<audio>`` player (base64 WAV inline) and a
    script that colours the notes sounding at the current playback time.

    Made for ``st.iframe(html, height=...)``: no external resources, no network. Given a
    :class:`Fragment` instead of ``svg`` (and nothing else), it renders and synthesises it
    (:func:`fragment_player_html`).
    """
    if isinstance(svg, Fragment):
        if timemap is not None or audio_wav_bytes is not None:
            raise ValueError("pass either a Fragment alone or (svg, timemap, audio_wav_bytes)")
        return fragment_player_html(svg, color=color)
    if timemap is None or audio_wav_bytes is None:
        raise ValueError("highlight_player_html needs svg, timemap and audio_wav_bytes (or a Fragment)")
    if "<svg" not in svg:
        raise ValueError("svg does not contain an <svg> element")
    if not audio_wav_bytes or audio_wav_bytes[:4] != b"RIFF":
        raise ValueError("audio_wav_bytes must be a WAV file (see crossmodal_core.synth.audio_bytes_wav)")
    for i, entry in enumerate(timemap):
        if not {"id", "onset_s", "offset_s"} <= set(entry):
            raise ValueError(f"timemap entry {i} lacks id/onset_s/offset_s")
    clean = [
        {"ids": [str(e["id"])] + [str(t) for t in e.get("tied_ids", [])],
         "onset_s": float(e["onset_s"]), "offset_s": float(e["offset_s"])}
        for e in timemap
    ]
    # "</" inside a JSON string would close the script element early
    timemap_json = json.dumps(clean, separators=(",", ":")).replace("</", "<\\/")
    return _PLAYER_TEMPLATE.format(
        color=html.escape(color, quote=True),
        audio_b64=base64.b64encode(audio_wav_bytes).decode("ascii"),
        svg=svg,
        timemap_json=timemap_json,
    )
