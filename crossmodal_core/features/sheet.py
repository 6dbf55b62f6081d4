"""Symbolic ("sheet") features computed from a fragment's notes.

:func:`sheet_features` maps a melody to one ``float32`` vector of :data:`SHEET_FEATURE_DIM` =
340 values, in five blocks (see :data:`SHEET_FEATURE_LAYOUT`):

==================  ====  ==========================================================
block               size  meaning
==================  ====  ==========================================================
``pitch_class``       12  duration-weighted pitch-class histogram (C=0 ... B=11), sums to 1
``interval``          25  histogram of successive intervals in semitones, clipped to
                          [-12, +12] (bin ``i`` = interval ``i - 12``), sums to 1
                          (all zero for a single note)
``duration``           8  histogram of note durations on a log2 scale: bin ``k`` counts
                          durations whose ``round(log2(quarter lengths))`` is ``k - 4``
                          (clipped), i.e. 1/16, 1/8, 1/4, 1/2, 1, 2, 4, >=8 quarter
                          notes; sums to 1
``contour``            7  fractions of rising / falling / repeated steps, pitch range / 24,
                          (mean pitch - 60) / 12, pitch std / 12, mean |interval| / 12
``piano_roll``       288  24 equal time steps x 12 pitch classes (row-major: step, then
                          pitch class): the fraction of each step during which that
                          pitch class sounds (in [0, 1])
==================  ====  ==========================================================

:func:`sheet_sequence` gives the sequence view ``sheet_seq``: one vector of
:data:`SHEET_SEQUENCE_DIM` = 32 values per time segment, for segments given by their edges (the
music build passes the edges of the audio's :func:`~crossmodal_core.features.audio.audio_sequence`
segments, converted to quarter lengths, so segment ``k`` of ``sheet_seq`` covers the same time
as segment ``k`` of ``audio_seq``):

==================  ====  ==========================================================
block               size  meaning (within the segment)
==================  ====  ==========================================================
``roll``              12  fraction of the segment during which each pitch class sounds
``onset_pc``          12  pitch classes of the notes starting in the segment, sums to 1
                          (all zero when no note starts)
``register``           4  fraction of the segment during which any note sounds; mean,
                          lowest and highest sounding pitch ((MIDI - 60) / 12, 0 if silent)
``motion``             4  onsets per quarter note; mean interval into the notes starting
                          here / 12; fractions of those intervals rising and falling
==================  ====  ==========================================================

Properties the tests rely on: transposing a melody by ``k`` semitones rolls the pitch-class
histogram and every piano-roll step by ``k`` and leaves the interval, duration and contour
blocks unchanged except the mean pitch. Everything is a deterministic function of
(pitch, onset, duration); lyrics play no part. No torch.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from crossmodal_core.features import block_layout

N_PITCH_CLASSES = 12
MAX_INTERVAL = 12
N_DURATION_BINS = 8
DURATION_LOG2_MIN = -4  # a 64th... clipped; bin 0 = 1/16 quarter note
N_CONTOUR = 7
ROLL_STEPS = 24

CONTOUR_NAMES = ("up", "down", "same", "range", "mean_pitch", "pitch_std", "mean_abs_interval")


def _layout() -> dict[str, slice]:
    sizes = [
        ("pitch_class", N_PITCH_CLASSES),
        ("interval", 2 * MAX_INTERVAL + 1),
        ("duration", N_DURATION_BINS),
        ("contour", N_CONTOUR),
        ("piano_roll", ROLL_STEPS * N_PITCH_CLASSES),
    ]
    return block_layout(sizes)


#: block name -> slice of a :func:`sheet_sequence` segment vector.
SHEET_SEQUENCE_LAYOUT: dict[str, slice] = block_layout([("roll", N_PITCH_CLASSES), ("onset_pc", N_PITCH_CLASSES),
                                                         ("register", 4), ("motion", 4)])
SHEET_SEQUENCE_DIM: int = max(sl.stop for sl in SHEET_SEQUENCE_LAYOUT.values())

#: block name -> slice of the :func:`sheet_features` vector.
SHEET_FEATURE_LAYOUT: dict[str, slice] = _layout()
SHEET_FEATURE_DIM: int = max(s.stop for s in SHEET_FEATURE_LAYOUT.values())


def _as_arrays(notes: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pitch, onset, duration) float64 arrays from Notes, a Fragment, or (p, o, d) tuples."""
    if hasattr(notes, "notes"):  # a Fragment
        notes = notes.notes
    notes = list(notes)
    if not notes:
        raise ValueError("sheet features need at least one note")
    rows = []
    for i, n in enumerate(notes):
        if hasattr(n, "pitch"):
            rows.append((n.pitch, n.onset, n.duration))
        else:
            try:
                p, o, d = n[:3]
            except (TypeError, ValueError):
                raise ValueError(f"note {i}: expected a Note or a (pitch, onset, duration) tuple, got {n!r}") from None
            rows.append((p, o, d))
    arr = np.asarray(rows, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError("notes contain NaN or inf in pitch, onset or duration")
    pitch, onset, duration = arr.T
    if np.any(duration <= 0):
        raise ValueError(f"note {int(np.argmax(duration <= 0))}: duration must be > 0")
    if np.any((pitch < 0) | (pitch > 127)):
        raise ValueError("MIDI pitches must lie in 0..127")
    order = np.lexsort((pitch, onset))  # onset order; ties broken by pitch for determinism
    return pitch[order], onset[order], duration[order]


def pitch_class_histogram(pitch: np.ndarray, duration: np.ndarray) -> np.ndarray:
    """Duration-weighted pitch-class histogram, shape (12,), sums to 1."""
    hist = np.bincount(np.mod(np.round(pitch).astype(int), 12), weights=duration, minlength=12)
    return hist / hist.sum()


def interval_histogram(pitch: np.ndarray) -> np.ndarray:
    """Successive intervals clipped to [-12, 12], shape (25,), sums to 1 (zeros if < 2 notes)."""
    hist = np.zeros(2 * MAX_INTERVAL + 1)
    if pitch.size < 2:
        return hist
    steps = np.clip(np.round(np.diff(pitch)).astype(int), -MAX_INTERVAL, MAX_INTERVAL)
    hist += np.bincount(steps + MAX_INTERVAL, minlength=hist.size)
    return hist / hist.sum()


def duration_histogram(duration: np.ndarray) -> np.ndarray:
    """Log2-duration histogram, shape (8,), sums to 1 (bin k: round(log2 ql) = k - 4)."""
    bins = np.clip(np.round(np.log2(duration)).astype(int) - DURATION_LOG2_MIN, 0, N_DURATION_BINS - 1)
    hist = np.bincount(bins, minlength=N_DURATION_BINS).astype(np.float64)
    return hist / hist.sum()


def contour_features(pitch: np.ndarray) -> np.ndarray:
    """[up, down, same, range/24, (mean-60)/12, std/12, mean|interval|/12], shape (7,)."""
    steps = np.diff(pitch)
    if steps.size:
        up, down, same = (steps > 0).mean(), (steps < 0).mean(), (steps == 0).mean()
        mean_abs = np.abs(steps).mean()
    else:
        up = down = same = mean_abs = 0.0
    return np.array([
        up, down, same,
        (pitch.max() - pitch.min()) / 24.0,
        (pitch.mean() - 60.0) / 12.0,
        pitch.std() / 12.0,
        mean_abs / 12.0,
    ])


def piano_roll(pitch: np.ndarray, onset: np.ndarray, duration: np.ndarray, n_steps: int = ROLL_STEPS) -> np.ndarray:
    """Pitch-class piano roll on ``n_steps`` equal steps spanning first onset to last offset.

    Returns
    -------
    roll : np.ndarray, shape (n_steps, 12), values in [0, 1]
        ``roll[t, c]``: fraction of step ``t`` during which a note of pitch class ``c`` sounds.
    """
    start = onset.min()
    span = (onset + duration).max() - start
    edges = start + span * np.arange(n_steps + 1) / n_steps
    roll = np.zeros((n_steps, N_PITCH_CLASSES))
    step_len = span / n_steps
    for p, o, d in zip(pitch, onset, duration):
        overlap = np.clip(np.minimum(edges[1:], o + d) - np.maximum(edges[:-1], o), 0.0, None)
        roll[:, int(round(p)) % 12] += overlap / step_len
    return np.minimum(roll, 1.0)


def sheet_features(notes: Sequence[Any]) -> np.ndarray:
    """Symbolic descriptor of a melody.

    Parameters
    ----------
    notes : sequence of :class:`~crossmodal_core.notes.Note` (or a Fragment, or
        ``(pitch, onset, duration)`` tuples); MIDI pitch, onset and duration in quarter lengths.

    Returns
    -------
    features : np.ndarray, shape (340,), float32
        Blocks ``pitch_class (12) | interval (25) | duration (8) | contour (7) |
        piano_roll (24 x 12 = 288)``; see the module docstring and :data:`SHEET_FEATURE_LAYOUT`.
    """
    pitch, onset, duration = _as_arrays(notes)
    out = np.concatenate([
        pitch_class_histogram(pitch, duration),
        interval_histogram(pitch),
        duration_histogram(duration),
        contour_features(pitch),
        piano_roll(pitch, onset, duration).ravel(),
    ]).astype(np.float32)
    if out.shape != (SHEET_FEATURE_DIM,) or not math.isfinite(float(out.sum())):
        raise AssertionError("sheet feature layout out of sync")  # programming error, not bad input
    return out


def sheet_sequence(notes: Sequence[Any], edges: Sequence[float]) -> np.ndarray:
    """Symbolic features per time segment of a melody.

    Parameters
    ----------
    notes : as for :func:`sheet_features` (onsets and durations in quarter lengths)
    edges : (K + 1,) non-decreasing segment boundaries in quarter lengths from the fragment
        start (segment ``k`` is ``[edges[k], edges[k + 1])``)

    Returns
    -------
    sequence : np.ndarray, shape (K, 32), float32
        Blocks ``roll (12) | onset_pc (12) | register (4) | motion (4)`` per segment (see the
        module docstring and :data:`SHEET_SEQUENCE_LAYOUT`). A segment of zero length, or one
        where nothing sounds and nothing starts, is all zero (e.g. the audio's release tail).
    """
    pitch, onset, duration = _as_arrays(notes)
    edges = np.asarray(edges, dtype=np.float64).reshape(-1)
    if edges.size < 2 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) < 0):
        raise ValueError("edges must be at least two finite, non-decreasing segment boundaries")
    k = edges.size - 1
    lo, hi = edges[:-1], edges[1:]
    length = hi - lo
    safe = np.where(length > 0, length, 1.0)
    offset = onset + duration
    # overlap (ql) of every note with every segment: (K, n_notes)
    overlap = np.clip(np.minimum(hi[:, None], offset[None, :]) - np.maximum(lo[:, None], onset[None, :]), 0.0, None)
    pc = np.mod(np.round(pitch).astype(int), N_PITCH_CLASSES)
    out = np.zeros((k, SHEET_SEQUENCE_DIM))
    lay = SHEET_SEQUENCE_LAYOUT
    roll = np.zeros((k, N_PITCH_CLASSES))
    for c in range(N_PITCH_CLASSES):
        roll[:, c] = overlap[:, pc == c].sum(axis=1)
    out[:, lay["roll"]] = np.minimum(roll / safe[:, None], 1.0)
    # sounding fraction: the union of note spans inside each segment (merged intervals)
    order = np.argsort(onset, kind="stable")
    starts, ends = onset[order], offset[order]
    merged: list[list[float]] = []
    for a, b in zip(starts, ends):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    spans = np.asarray(merged)
    covered = np.clip(np.minimum(hi[:, None], spans[None, :, 1]) - np.maximum(lo[:, None], spans[None, :, 0]), 0.0,
                      None).sum(axis=1)
    reg = out[:, lay["register"]]
    reg[:, 0] = np.minimum(covered / safe, 1.0)
    weight = overlap.sum(axis=1)
    sounding = overlap > 0
    has = weight > 0
    reg[has, 1] = (overlap[has] @ pitch / weight[has] - 60.0) / 12.0
    reg[has, 2] = (np.where(sounding[has], pitch[None, :], np.inf).min(axis=1) - 60.0) / 12.0
    reg[has, 3] = (np.where(sounding[has], pitch[None, :], -np.inf).max(axis=1) - 60.0) / 12.0
    # notes starting in each segment (the last segment includes its end)
    seg_of = np.searchsorted(edges, onset, side="right") - 1
    seg_of = np.where(onset == edges[-1], k - 1, seg_of)
    starts_in = (seg_of >= 0) & (seg_of < k)
    step = np.concatenate([[np.nan], np.diff(pitch)])  # interval into each note (onset order)
    mot = out[:, lay["motion"]]
    onset_block = out[:, lay["onset_pc"]]
    for s in range(k):
        idx = np.nonzero(starts_in & (seg_of == s))[0]
        if idx.size == 0:
            continue
        onset_block[s] = np.bincount(pc[idx], minlength=N_PITCH_CLASSES) / idx.size
        mot[s, 0] = idx.size / safe[s] if length[s] > 0 else 0.0
        iv = step[idx][np.isfinite(step[idx])]
        if iv.size:
            mot[s, 1] = iv.mean() / 12.0
            mot[s, 2] = (iv > 0).mean()
            mot[s, 3] = (iv < 0).mean()
    out[length <= 0] = 0.0  # reg, mot and onset_block above are views into out
    if not np.all(np.isfinite(out)):
        raise AssertionError("sheet sequence features out of range")  # programming error, not bad input
    return out.astype(np.float32)
