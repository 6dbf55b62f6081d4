"""Notes -> audio, offline, with a General MIDI soundfont.

The performance is synthetic: a fragment's notes are played by one GM instrument (default
program 52, *Choir Aahs*, a voice-like pad; nothing sings the words) at the fragment's tempo.
Scores and lyrics are real; the audio is a rendering of them.

Backend: `tinysoundfont <https://pypi.org/project/tinysoundfont/>`_ (a pip wheel, installed
with ``--no-deps`` because it declares ``pyaudio`` for live playback we never use) with the
``TimGM6mb.sf2`` soundfont that ``pretty_midi`` ships inside its package, so nothing is
downloaded.

Conventions
-----------
- Audio is mono ``float32`` in ``[-1, 1]``, shape ``(n_samples,)``, at ``sample_rate`` Hz.
- Time zero of the audio is quarter-length 0 of the fragment (``Note.onset`` is measured from
  the fragment start), so a note sounds from ``onset * 60 / tempo_bpm`` seconds.
- Output length is ``ceil((duration_s + RELEASE_S) * sample_rate)``: the notes plus a short
  release tail that fades to zero.
- The same fragment, sample rate and program always give the same samples, whatever was
  rendered before: the soundfont file is read once per process, and every rendering starts
  from a synthesiser in its initial state (thread-safe, no shared mutable state).
- Peak-normalised to :data:`PEAK` unless the rendering is silent.
"""

from __future__ import annotations

import importlib.resources
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from . import store
from .notes import Fragment, Note

DEFAULT_SAMPLE_RATE = 22050
DEFAULT_PROGRAM = 52  # General MIDI "Choir Aahs"
VELOCITY = 90
RELEASE_S = 0.35
FADE_S = 0.05
PEAK = 0.9
# A short gap before each note-off keeps repeated pitches audible as separate onsets.
ARTICULATION_GAP_S = 0.02
# Bump when the rendering changes, so cached audio made by an older version is not reused.
SYNTH_VERSION = 1

_SOUNDFONT_BYTES: bytes | None = None


class SynthesisError(RuntimeError):
    """The soundfont or the synthesiser cannot be used, or the fragment cannot be played."""


def soundfont_path() -> Path:
    """The GM soundfont shipped with ``pretty_midi`` (``TimGM6mb.sf2``)."""
    try:
        path = Path(str(importlib.resources.files("pretty_midi") / "TimGM6mb.sf2"))
    except ModuleNotFoundError:
        raise SynthesisError(
            "the General MIDI soundfont comes with the 'pretty_midi' package, which is not installed "
            "(pip install pretty_midi)"
        ) from None
    if not path.is_file():
        raise SynthesisError(f"soundfont not found at {path}: reinstall pretty_midi")
    return path


def _soundfont_bytes() -> bytes:
    """The soundfont file's bytes, read once per process."""
    global _SOUNDFONT_BYTES
    if _SOUNDFONT_BYTES is None:
        path = soundfont_path()
        try:
            _SOUNDFONT_BYTES = path.read_bytes()
        except OSError as exc:
            raise SynthesisError(f"cannot read soundfont {path}: {exc}") from None
    return _SOUNDFONT_BYTES


def _fresh_synth(sample_rate: int) -> tuple[Any, int]:
    """A synthesiser in its initial state, parsed from the cached soundfont bytes.

    Why not one long-lived synthesiser: TinySoundFont keeps per-voice state (envelope and
    filter memory) across ``tsf_reset``, so a note's attack depended on what was rendered
    before (measured: up to 0.06 difference in the first samples). Parsing the 6 MB soundfont
    from memory costs about 12 ms, which buys bit-identical output whatever the history.
    """
    try:
        import tinysoundfont
    except ImportError as exc:
        raise SynthesisError(
            f"tinysoundfont is not importable ({exc}); install it with "
            "`pip install --no-deps tinysoundfont==0.3.7`"
        ) from None
    synth = tinysoundfont.Synth(gain=0.0, samplerate=int(sample_rate))
    try:
        # One melody line needs a few voices (layers plus overlapping releases), never hundreds.
        sfid = synth.sfload(_soundfont_bytes(), max_voices=32)
    except Exception as exc:  # tinysoundfont raises its own exception type on a bad file
        raise SynthesisError(f"cannot load soundfont {soundfont_path()}: {exc}") from None
    return synth, sfid


def _check_notes(notes: list[Note]) -> None:
    if not notes:
        raise ValueError("fragment has no notes to synthesise")
    for i, note in enumerate(notes):
        if not 0 <= int(note.pitch) <= 127:
            raise ValueError(f"note {i}: MIDI pitch {note.pitch} outside 0..127")
        if not (math.isfinite(note.onset) and math.isfinite(note.duration)):
            raise ValueError(f"note {i}: onset/duration must be finite (got {note.onset}, {note.duration})")
        if note.onset < 0 or note.duration <= 0:
            raise ValueError(f"note {i}: needs onset >= 0 and duration > 0 (got {note.onset}, {note.duration})")


def _check_tempo(tempo_bpm: float) -> float:
    tempo = float(tempo_bpm)
    if not math.isfinite(tempo) or tempo <= 0:
        raise ValueError(f"tempo_bpm must be a positive number, got {tempo_bpm!r}")
    return tempo


def note_times_seconds(fragment: Fragment) -> tuple[np.ndarray, np.ndarray]:
    """Onset and offset of every note in seconds from the start of the fragment's audio.

    Returns
    -------
    onsets, offsets : np.ndarray, shape (n_notes,), float64, seconds
    """
    tempo = _check_tempo(fragment.tempo_bpm)
    onsets = np.array([n.onset for n in fragment.notes], dtype=np.float64) * 60.0 / tempo
    offsets = np.array([n.onset + n.duration for n in fragment.notes], dtype=np.float64) * 60.0 / tempo
    return onsets, offsets


def audio_length(fragment: Fragment, sample_rate: int = DEFAULT_SAMPLE_RATE) -> int:
    """Samples in :func:`synthesize`'s output for ``fragment``, without rendering it: the last
    note-off (rounded to a sample) plus the release tail, ``ceil(end + RELEASE_S * sample_rate)``."""
    sec_per_ql = 60.0 / _check_tempo(fragment.tempo_bpm)
    end_sample = max((int(round((n.onset + n.duration) * sec_per_ql * int(sample_rate))) for n in fragment.notes),
                     default=0)
    return int(math.ceil(end_sample + RELEASE_S * int(sample_rate)))


def synthesize(
    fragment: Fragment, sample_rate: int = DEFAULT_SAMPLE_RATE, program: int = DEFAULT_PROGRAM
) -> np.ndarray:
    """Render a fragment's notes with a General MIDI instrument.

    Parameters
    ----------
    fragment : Fragment
        Notes (MIDI pitch, onset/duration in quarter lengths) and ``tempo_bpm``.
    sample_rate : int > 0
        Output rate in Hz.
    program : int in [0, 127]
        General MIDI program (0-based); 52 is *Choir Aahs*.

    Returns
    -------
    y : np.ndarray, shape (n_samples,), float32
        Mono audio peak-normalised to 0.9, ``n_samples = ceil((duration_s + 0.35) * sample_rate)``.

    Raises
    ------
    ValueError
        No notes, a pitch outside 0..127, a non-positive duration or tempo.
    SynthesisError
        tinysoundfont or the soundfont is missing.
    """
    sample_rate = int(sample_rate)
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if not 0 <= int(program) <= 127:
        raise ValueError(f"GM program must be in 0..127, got {program}")
    notes = list(fragment.notes)
    _check_notes(notes)
    tempo = _check_tempo(fragment.tempo_bpm)
    sec_per_ql = 60.0 / tempo

    # Events as (sample, order, key): note-offs (order 0) before note-ons (order 1) at the same
    # sample so a repeated pitch is released before it is struck again.
    events: list[tuple[int, int, int]] = []
    gap = int(round(ARTICULATION_GAP_S * sample_rate))
    for note in notes:
        start = int(round(note.onset * sec_per_ql * sample_rate))
        stop = int(round((note.onset + note.duration) * sec_per_ql * sample_rate))
        stop = max(start + 1, stop - min(gap, (stop - start) // 4))
        events.append((start, 1, int(note.pitch)))
        events.append((stop, 0, int(note.pitch)))
    events.sort()
    n_total = audio_length(fragment, sample_rate)

    synth, sfid = _fresh_synth(sample_rate)
    synth.program_select(0, sfid, 0, int(program))
    buffer = bytearray(n_total * 2 * 4)  # stereo interleaved float32
    view = memoryview(buffer)
    position = 0
    for sample, order, key in events:
        if sample > position:
            synth.generate_simple(sample - position, buffer=view[position * 8 : sample * 8])
            position = sample
        if order == 1:
            synth.noteon(0, key, VELOCITY)
        else:
            synth.noteoff(0, key)
    if n_total > position:
        synth.generate_simple(n_total - position, buffer=view[position * 8 : n_total * 8])

    stereo = np.frombuffer(buffer, dtype=np.float32).reshape(-1, 2)
    y = stereo.mean(axis=1, dtype=np.float64)
    fade = min(int(FADE_S * sample_rate), y.size)
    if fade > 0:
        y[-fade:] *= np.linspace(1.0, 0.0, fade)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > 1e-8:
        y *= PEAK / peak
    return y.astype(np.float32)


# ---------------------------------------------------------------------- cache
def audio_cache_key(fragment: Fragment, sample_rate: int = DEFAULT_SAMPLE_RATE, program: int = DEFAULT_PROGRAM) -> str:
    notes = [[int(n.pitch), float(n.onset), float(n.duration)] for n in fragment.notes]
    return store.cache_key("synth", SYNTH_VERSION, notes, float(fragment.tempo_bpm), int(sample_rate), int(program))


def audio_for(
    fragment: Fragment, sample_rate: int = DEFAULT_SAMPLE_RATE, program: int = DEFAULT_PROGRAM
) -> np.ndarray:
    """:func:`synthesize`, cached on disk as 16-bit FLAC under ``store.audio_cache_dir()``.

    The key is the notes, tempo, sample rate, program and synth version (not the fragment id,
    so identical melodies share one file). A fresh rendering is returned exactly as the cache
    will give it back later (decoded from the FLAC bytes), so the result never depends on
    whether the cache was warm.

    Returns
    -------
    y : np.ndarray, shape (n_samples,), float32
    """
    import soundfile as sf

    path = store.audio_cache_dir() / f"{audio_cache_key(fragment, sample_rate, program)}.flac"
    if path.exists():
        try:
            y, sr = sf.read(str(path), dtype="float32", always_2d=False)
            if sr == sample_rate and y.ndim == 1 and y.size:
                return y
        except Exception:  # a corrupt cache entry is rebuilt below, never trusted
            pass
    y = synthesize(fragment, sample_rate=sample_rate, program=program)
    buf = io.BytesIO()
    sf.write(buf, y, sample_rate, format="FLAC", subtype="PCM_16")
    data = buf.getvalue()
    store.atomic_write_bytes(path, data)
    decoded, _ = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    return decoded


def audio_bytes_wav(y: np.ndarray, sample_rate: int = DEFAULT_SAMPLE_RATE) -> bytes:
    """16-bit PCM WAV bytes of mono audio ``y`` (for ``st.audio`` or an HTML ``<audio>``)."""
    import soundfile as sf

    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"expected mono audio of shape (n,), got {y.shape}")
    if not np.all(np.isfinite(y)):
        raise ValueError("audio contains NaN or inf")
    buf = io.BytesIO()
    sf.write(buf, np.clip(y, -1.0, 1.0), int(sample_rate), format="WAV", subtype="PCM_16")
    return buf.getvalue()
