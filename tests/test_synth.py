"""Offline synthesis: audible where the notes are, quiet in rests, deterministic, cached."""

import numpy as np
import pytest

from crossmodal_core import store, synth
from crossmodal_core.notes import Fragment, Note

SR = 22050


def _fragment(notes, tempo=120.0):
    return Fragment("t:p0:v1:m1-2", "test/path", 0, 1, 2, 1, notes, "la la", tempo_bpm=tempo)


@pytest.fixture(scope="module")
def with_rest():
    # 2 quarter notes, a 4-quarter rest, 2 quarter notes at 120 bpm (0.5 s per quarter).
    notes = [Note(60, 0.0, 1.0, "la", "single"), Note(64, 1.0, 1.0, "la", "single"),
             Note(67, 6.0, 1.0, "la", "single"), Note(72, 7.0, 1.0, "la", "single")]
    return _fragment(notes)


def _rms(y):
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))


def test_synthesize_is_audible_where_notes_sound_and_quiet_in_rests(with_rest):
    y = synth.synthesize(with_rest, sample_rate=SR)
    assert y.dtype == np.float32 and y.ndim == 1
    assert y.size == int(np.ceil(8 * 0.5 * SR + synth.RELEASE_S * SR))
    assert np.all(np.isfinite(y)) and np.max(np.abs(y)) == pytest.approx(synth.PEAK, rel=1e-5)
    assert _rms(y) > 0.02
    onsets, offsets = synth.note_times_seconds(with_rest)
    np.testing.assert_allclose(onsets, [0.0, 0.5, 3.0, 3.5])
    np.testing.assert_allclose(offsets, [0.5, 1.0, 3.5, 4.0])
    note_rms = [_rms(y[int(a * SR): int(b * SR)]) for a, b in zip(onsets, offsets)]
    # the rest, leaving the first 0.5 s of it for the choir's release to die away
    rest_rms = _rms(y[int(1.5 * SR): int(3.0 * SR)])
    assert min(note_rms) > 4 * rest_rms, (note_rms, rest_rms)
    # nothing sounds before the first onset of the second phrase begins: the energy rises there
    before = _rms(y[int(2.9 * SR): int(3.0 * SR)])
    after = _rms(y[int(3.05 * SR): int(3.15 * SR)])
    assert after > 4 * before


def test_synthesize_pitch_follows_the_notes():
    y = synth.synthesize(_fragment([Note(69, 0.0, 4.0)], tempo=60.0), sample_rate=SR)  # A4, 4 s
    seg = y[SR: 3 * SR].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(seg * np.hanning(seg.size)))
    freqs = np.fft.rfftfreq(seg.size, 1 / SR)
    band = (freqs > 100) & (freqs < 2000)
    # the strongest partial below 2 kHz is the fundamental or an octave of it
    peak = freqs[band][np.argmax(spectrum[band])]
    ratio = peak / 440.0
    assert min(abs(ratio - r) for r in (0.5, 1.0, 2.0, 3.0, 4.0)) < 0.03, peak


def test_synthesize_is_deterministic_whatever_was_rendered_before(with_rest):
    first = synth.synthesize(with_rest, sample_rate=SR)
    synth.synthesize(_fragment([Note(50 + i % 7, i * 0.5, 0.5) for i in range(12)]), sample_rate=SR)
    synth.synthesize(_fragment([Note(80, 0.0, 6.0)], tempo=60.0), sample_rate=SR)
    again = synth.synthesize(with_rest, sample_rate=SR)
    np.testing.assert_array_equal(first, again)


def test_program_changes_the_timbre(with_rest):
    choir = synth.synthesize(with_rest, sample_rate=SR, program=52)
    piano = synth.synthesize(with_rest, sample_rate=SR, program=0)
    assert choir.shape == piano.shape and not np.allclose(choir, piano, atol=1e-3)


@pytest.mark.parametrize(
    "notes, tempo, match",
    [
        ([], 120.0, "no notes"),
        ([Note(130, 0.0, 1.0)], 120.0, "outside 0..127"),
        ([Note(60, 0.0, 0.0)], 120.0, "duration"),
        ([Note(60, float("nan"), 1.0)], 120.0, "finite"),
        ([Note(60, 0.0, 1.0)], 0.0, "tempo"),
    ],
)
def test_bad_fragments_raise_clear_errors(notes, tempo, match):
    with pytest.raises(ValueError, match=match):
        synth.synthesize(_fragment(notes, tempo=tempo))


def test_missing_soundfont_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(synth, "_SOUNDFONT_BYTES", None)
    monkeypatch.setattr(synth, "soundfont_path", lambda: tmp_path / "missing.sf2")
    with pytest.raises(synth.SynthesisError, match="soundfont"):
        synth.synthesize(_fragment([Note(60, 0.0, 1.0)]))


def test_audio_for_caches_on_disk_and_returns_the_same_samples(with_rest, monkeypatch):
    key = synth.audio_cache_key(with_rest)
    path = store.audio_cache_dir() / f"{key}.flac"
    path.unlink(missing_ok=True)
    fresh = synth.audio_for(with_rest)
    assert path.exists()
    # quantised to 16 bit, otherwise the rendering itself
    np.testing.assert_allclose(fresh, synth.synthesize(with_rest), atol=1.0 / 32767 + 1e-6)

    def fail(*args, **kwargs):
        raise AssertionError("cache hit expected, synthesize was called")

    monkeypatch.setattr(synth, "synthesize", fail)
    cached = synth.audio_for(with_rest)
    np.testing.assert_array_equal(cached, fresh)
    # the key ignores the fragment id and lyrics but not the tempo
    other = _fragment(list(with_rest.notes), tempo=90.0)
    assert synth.audio_cache_key(other) != key
    renamed = Fragment("other", "x", 1, 3, 4, 2, list(with_rest.notes), "different", tempo_bpm=120.0)
    assert synth.audio_cache_key(renamed) == key


def test_corrupt_cache_entry_is_rebuilt(with_rest):
    path = store.audio_cache_dir() / f"{synth.audio_cache_key(with_rest)}.flac"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a flac file")
    y = synth.audio_for(with_rest)
    assert y.size > SR and _rms(y) > 0.02


def test_audio_bytes_wav_round_trips():
    import io

    import soundfile as sf

    y = (0.5 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR)).astype(np.float32)
    data = synth.audio_bytes_wav(y, SR)
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    back, sr = sf.read(io.BytesIO(data), dtype="float32")
    assert sr == SR
    np.testing.assert_allclose(back, y, atol=1e-4)
    with pytest.raises(ValueError, match="NaN"):
        synth.audio_bytes_wav(np.array([0.0, np.nan], dtype=np.float32), SR)


@pytest.mark.parametrize("tempo, sr", [(120.0, 22050), (97.0, 16000)])
def test_audio_length_is_the_rendered_length(tempo, sr):
    fr = _fragment([Note(60, 0.0, 1.0), Note(64, 1.0, 0.333), Note(67, 1.333, 2.5)], tempo=tempo)
    n = synth.audio_length(fr, sr)
    assert len(synth.synthesize(fr, sample_rate=sr)) == n
    assert n == int(np.ceil(round(3.833 * 60 / tempo * sr) + synth.RELEASE_S * sr))
