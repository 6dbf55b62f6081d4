"""Symbolic sheet features against hand-computed melodies and the transposition property."""

import numpy as np
import pytest

from crossmodal_core.notes import Note
from crossmodal_core.features import sheet as S
from crossmodal_core.features.sheet import SHEET_FEATURE_LAYOUT as L

# C4 (1 ql), E4 (0.5), G4 (0.5), C5 (2), G4 (1): hand-computed below
MELODY = [Note(60, 0.0, 1.0), Note(64, 1.0, 0.5), Note(67, 1.5, 0.5), Note(72, 2.0, 2.0), Note(67, 4.0, 1.0)]


def _block(vec, name):
    return vec[L[name]]


def test_layout_and_dimension():
    spans = sorted((s.start, s.stop) for s in L.values())
    assert spans[0][0] == 0 and all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert S.SHEET_FEATURE_DIM == 12 + 25 + 8 + 7 + 24 * 12 == 340
    vec = S.sheet_features(MELODY)
    assert vec.shape == (340,) and vec.dtype == np.float32 and np.all(np.isfinite(vec))


def test_pitch_class_histogram_is_duration_weighted():
    pc = _block(S.sheet_features(MELODY), "pitch_class")
    expected = np.zeros(12)
    expected[0] = 1.0 + 2.0  # C4 and C5
    expected[4] = 0.5        # E
    expected[7] = 0.5 + 1.0  # G twice
    np.testing.assert_allclose(pc, expected / 5.0, rtol=1e-6)


def test_interval_histogram_hand_computed_and_clipped():
    iv = _block(S.sheet_features(MELODY), "interval")
    # steps +4, +3, +5, -5
    expected = np.zeros(25)
    for step in (4, 3, 5, -5):
        expected[step + 12] += 1
    np.testing.assert_allclose(iv, expected / 4, rtol=1e-6)
    leap = [Note(48, 0, 1), Note(79, 1, 1), Note(40, 2, 1)]  # +31 and -39 clip to +12 / -12
    iv = _block(S.sheet_features(leap), "interval")
    assert iv[24] == pytest.approx(0.5) and iv[0] == pytest.approx(0.5)


def test_duration_histogram_on_log2_bins():
    du = _block(S.sheet_features(MELODY), "duration")
    # durations 1, .5, .5, 2, 1 -> log2 0, -1, -1, 1, 0 -> bins 4, 3, 3, 5, 4
    np.testing.assert_allclose(du, np.array([0, 0, 0, 2, 2, 1, 0, 0]) / 5, rtol=1e-6)


def test_contour_hand_computed():
    co = _block(S.sheet_features(MELODY), "contour")
    pitches = np.array([60, 64, 67, 72, 67], dtype=float)
    expected = [3 / 4, 1 / 4, 0.0, 12 / 24, (pitches.mean() - 60) / 12, pitches.std() / 12, (4 + 3 + 5 + 5) / 4 / 12]
    np.testing.assert_allclose(co, expected, rtol=1e-6)


def test_piano_roll_hand_computed():
    # two notes over 4 ql -> each step is 4/24 ql; C for steps 0-11, G for steps 12-23
    roll = _block(S.sheet_features([Note(60, 0, 2.0), Note(67, 2.0, 2.0)]), "piano_roll").reshape(24, 12)
    np.testing.assert_allclose(roll[:12, 0], 1.0)
    np.testing.assert_allclose(roll[12:, 7], 1.0)
    assert roll.sum() == pytest.approx(24.0)
    # a note covering half a step fills half the cell
    roll = _block(S.sheet_features([Note(60, 0, 23 / 6), Note(62, 23 / 6, 1 / 6)]), "piano_roll").reshape(24, 12)
    assert roll[22, 0] == pytest.approx(1.0) and roll[23, 0] == pytest.approx(0.0, abs=1e-6)
    assert roll[23, 2] == pytest.approx(1.0)


@pytest.mark.parametrize("shift", [1, 5, -3, 12])
def test_transposition_rotates_pitch_classes_and_keeps_the_rest(shift):
    base = S.sheet_features(MELODY)
    moved = S.sheet_features([Note(n.pitch + shift, n.onset, n.duration) for n in MELODY])
    np.testing.assert_allclose(_block(moved, "pitch_class"), np.roll(_block(base, "pitch_class"), shift), atol=1e-7)
    np.testing.assert_allclose(
        _block(moved, "piano_roll").reshape(24, 12), np.roll(_block(base, "piano_roll").reshape(24, 12), shift, axis=1), atol=1e-7
    )
    for name in ("interval", "duration"):
        np.testing.assert_array_equal(_block(moved, name), _block(base, name))
    co_b, co_m = _block(base, "contour"), _block(moved, "contour")
    keep = [0, 1, 2, 3, 5, 6]
    np.testing.assert_allclose(co_m[keep], co_b[keep], atol=1e-6)
    assert co_m[4] - co_b[4] == pytest.approx(shift / 12, abs=1e-6)


def test_note_order_and_input_forms_do_not_matter():
    base = S.sheet_features(MELODY)
    np.testing.assert_array_equal(S.sheet_features(list(reversed(MELODY))), base)
    np.testing.assert_array_equal(S.sheet_features([(n.pitch, n.onset, n.duration) for n in MELODY]), base)


def test_single_note_and_real_chorale_are_finite():
    one = S.sheet_features([Note(60, 0.0, 1.0)])
    assert np.all(np.isfinite(one)) and _block(one, "interval").sum() == 0
    music21 = pytest.importorskip("music21")
    soprano = music21.corpus.parse("bach/bwv66.6").parts[0].stripTies().flatten().notes
    t0 = float(soprano[0].offset)
    notes = [Note(n.pitch.midi, float(n.offset) - t0, float(n.quarterLength)) for n in soprano]
    vec = S.sheet_features(notes)
    assert np.all(np.isfinite(vec)) and _block(vec, "pitch_class").sum() == pytest.approx(1.0, abs=1e-6)
    # bwv66.6 is in F# minor: F# (6) and C# (1) are among the most common pitch classes
    top = set(np.argsort(_block(vec, "pitch_class"))[-4:])
    assert {6, 1} <= top


@pytest.mark.parametrize(
    "notes, match",
    [
        ([], "at least one note"),
        ([Note(60, 0, 0.0)], "duration"),
        ([Note(60, float("nan"), 1.0)], "NaN"),
        ([Note(200, 0, 1.0)], "0..127"),
        (["x"], "expected a Note"),
    ],
)
def test_bad_notes_raise(notes, match):
    with pytest.raises(ValueError, match=match):
        S.sheet_features(notes)


# ---------------------------------------------------------------------- per-segment sequence
def test_sheet_sequence_by_hand():
    from crossmodal_core.features.sheet import SHEET_SEQUENCE_DIM, SHEET_SEQUENCE_LAYOUT as L, sheet_sequence

    # C4 for 2 ql, then E4 and G4 for 1 ql each; segments of 1.5 ql and a silent tail
    notes = [(60, 0.0, 2.0), (64, 2.0, 1.0), (67, 3.0, 1.0)]
    seq = sheet_sequence(notes, [0.0, 1.5, 3.0, 4.5, 6.0])
    assert seq.shape == (4, SHEET_SEQUENCE_DIM) == (4, 32) and seq.dtype == np.float32
    np.testing.assert_allclose(seq[0, L["roll"]][[0, 4, 7]], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(seq[1, L["roll"]][[0, 4, 7]], [0.5 / 1.5, 1.0 / 1.5, 0.0], rtol=1e-6)
    np.testing.assert_allclose(seq[2, L["roll"]][[0, 4, 7]], [0.0, 0.0, 1.0 / 1.5], rtol=1e-6)
    np.testing.assert_array_equal(seq[3], 0)  # nothing sounds or starts: the release tail
    # onsets: C in segment 0, E in segment 1, G in segment 2
    assert seq[0, L["onset_pc"]][0] == 1 and seq[1, L["onset_pc"]][4] == 1 and seq[2, L["onset_pc"]][7] == 1
    # register: sounding fraction, mean / low / high pitch ((p - 60) / 12)
    np.testing.assert_allclose(seq[1, L["register"]], [1.0, (0.5 * 60 + 1.0 * 64) / 1.5 / 12 - 5, 0, 4 / 12],
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(seq[2, L["register"]], [1 / 1.5, 7 / 12, 7 / 12, 7 / 12], rtol=1e-6)
    # motion: onsets per ql, mean interval into the new notes / 12, rising / falling fractions
    np.testing.assert_allclose(seq[0, L["motion"]], [1 / 1.5, 0, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(seq[1, L["motion"]], [1 / 1.5, 4 / 12, 1, 0], rtol=1e-6)
    np.testing.assert_allclose(seq[2, L["motion"]], [1 / 1.5, 3 / 12, 1, 0], rtol=1e-6)
    with pytest.raises(ValueError, match="non-decreasing"):
        sheet_sequence(notes, [0.0, 2.0, 1.0])


def test_segment_times_match_the_audio_segments():
    from crossmodal_core.features.audio import ANALYSIS, segment_pool, segment_times

    sr, n = 22050, 22050 * 3 + 17
    edges = segment_times(n, sr, 10)
    assert edges[0] == 0 and edges[-1] == n / sr and np.all(np.diff(edges) > 0)
    hop = ANALYSIS["hop_length"]
    n_frames = 1 + n // hop
    frames = np.arange(n_frames, dtype=np.float64)[None, :] * hop / sr  # each frame's centre time
    centres = segment_pool(frames, 10)[:, 0]  # the mean frame time of each audio segment
    assert np.all((centres > edges[:-1]) & (centres < edges[1:]))
    np.testing.assert_allclose(np.diff(edges)[1:-1], n / sr / 10, rtol=0.02)
