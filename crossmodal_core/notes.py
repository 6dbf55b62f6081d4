"""Notes and fragments: the unit every music module shares (pure data, no music21).

A :class:`Fragment` is one sung phrase of one part of one corpus work. It carries everything
the features, the synthesiser (:mod:`crossmodal_core.synth`) and the renderer
(:mod:`crossmodal_core.render`) need (the notes, the lyric text, the tempo) plus references
back to its source score so the page can re-render it. Times in :class:`Note` are in quarter
lengths from the fragment's first onset; :meth:`Fragment.seconds` converts with the fragment's
tempo.

This module sits below ``synth``, ``render`` and ``data.music`` (which cuts scores into
fragments and builds the dataset from them), so none of them imports another for these types.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Note:
    """One sounding note (tied notes already merged).

    pitch : MIDI number (60 = middle C)
    onset : quarter lengths from the fragment start (>= 0)
    duration : quarter lengths (> 0)
    syllable : the lyric syllable sung on this note's onset, "" for a melisma continuation
    syllabic : music21 syllabic of that syllable ("single", "begin", "middle", "end", "")
    """

    pitch: int
    onset: float
    duration: float
    syllable: str = ""
    syllabic: str = ""


@dataclass
class Fragment:
    """A phrase of a lyric-bearing monophonic part.

    fragment_id : stable id, e.g. ``"bach/bwv66.6:p0:v1:m1-4"``
    corpus_path : path accepted by ``music21.corpus.parse``
    part_index : index of the part in the parsed score
    measure_start, measure_end : inclusive measure numbers in the source
    verse : lyric verse number used (1-based, as music21 numbers it)
    notes : the notes, in onset order
    lyrics : text rebuilt from the syllables ("Christ lag in Todesbanden")
    title, composer, collection, language, key, mode, meter : source metadata
    tempo_bpm : quarter notes per minute used to synthesise
    """

    fragment_id: str
    corpus_path: str
    part_index: int
    measure_start: int
    measure_end: int
    verse: int
    notes: list[Note]
    lyrics: str
    title: str = ""
    composer: str = ""
    collection: str = ""
    language: str = ""
    key: str = ""
    mode: str = ""
    meter: str = ""
    tempo_bpm: float = 90.0
    work_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_ql(self) -> float:
        """Length in quarter lengths (end of the last note)."""
        return max((n.onset + n.duration for n in self.notes), default=0.0)

    @property
    def duration_s(self) -> float:
        return self.seconds(self.duration_ql)

    def seconds(self, quarter_lengths: float) -> float:
        return float(quarter_lengths) * 60.0 / float(self.tempo_bpm)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["notes"] = [[n.pitch, n.onset, n.duration, n.syllable, n.syllabic] for n in self.notes]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Fragment":
        d = dict(d)
        d["notes"] = [Note(int(p), float(o), float(du), str(s), str(sy)) for p, o, du, s, sy in d["notes"]]
        return cls(**d)
