"""librosa audio descriptors: layout, shapes, determinism, and values checked against
independent references (a pure tone's chroma, librosa's own mel spectrogram, plain means)."""

import numpy as np
import pytest

from crossmodal_core.features import audio as A

SR = 22050


def _tone(freq, seconds=2.0, sr=SR, amp=0.5):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="module")
def clip():
    # A4 for one second, then C5 for one second
    return np.concatenate([_tone(440.0, 1.0), _tone(523.25, 1.0)])


def test_layout_covers_the_vector_without_gaps():
    spans = sorted((s.start, s.stop) for s in A.AUDIO_FEATURE_LAYOUT.values())
    assert spans[0][0] == 0 and all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert spans[-1][1] == A.AUDIO_FEATURE_DIM == 2 * (A.N_MELS + A.N_CHROMA + A.N_MFCC) == 192


def test_audio_features_shape_dtype_determinism(clip):
    f1 = A.audio_features(clip, SR)
    f2 = A.audio_features(clip.copy(), SR)
    assert f1.shape == (A.AUDIO_FEATURE_DIM,) and f1.dtype == np.float32
    assert np.all(np.isfinite(f1))
    np.testing.assert_array_equal(f1, f2)
    # standard deviations are non-negative
    for name in ("logmel_std", "chroma_std", "mfcc_std"):
        assert np.all(f1[A.AUDIO_FEATURE_LAYOUT[name]] >= 0)


def test_chroma_of_a_pure_tone_peaks_at_its_pitch_class():
    for freq, pitch_class in ((440.0, 9), (261.63, 0), (392.0, 7)):
        chroma = A.audio_features(_tone(freq), SR)[A.AUDIO_FEATURE_LAYOUT["chroma_mean"]]
        assert int(np.argmax(chroma)) == pitch_class


def test_logmel_mean_matches_librosa_reference(clip):
    import librosa

    mel = librosa.feature.melspectrogram(y=clip, sr=SR, n_fft=2048, hop_length=512, n_mels=64, power=2.0)
    ref = np.maximum(10 * np.log10(np.maximum(mel, 1e-10)), -100.0)
    feats = A.audio_features(clip, SR)
    np.testing.assert_allclose(feats[A.AUDIO_FEATURE_LAYOUT["logmel_mean"]], ref.mean(axis=1), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(feats[A.AUDIO_FEATURE_LAYOUT["logmel_std"]], ref.std(axis=1), rtol=1e-4, atol=1e-3)


def test_louder_audio_has_higher_logmel_but_same_chroma(clip):
    quiet, loud = A.audio_features(0.1 * clip, SR), A.audio_features(clip, SR)
    lm = A.AUDIO_FEATURE_LAYOUT["logmel_mean"]
    # 20 dB more in every band that holds energy (ref=1.0 keeps absolute level)
    strong = loud[lm] > -60
    np.testing.assert_allclose(loud[lm][strong] - quiet[lm][strong], 20.0, atol=0.5)
    ch = A.AUDIO_FEATURE_LAYOUT["chroma_mean"]
    np.testing.assert_allclose(loud[ch], quiet[ch], atol=1e-3)


def test_audio_sequence_pools_logmel_over_equal_segments(clip):
    seq = A.audio_sequence(clip, SR, n_segments=10)
    assert seq.shape == (10, A.AUDIO_SEQUENCE_DIM) and seq.dtype == np.float32
    log_mel = A.log_mel_spectrogram(clip, SR)
    n = log_mel.shape[1]
    assert n == 1 + clip.size // 512
    for k in (0, 4, 9):
        lo, hi = (k * n) // 10, ((k + 1) * n) // 10
        np.testing.assert_allclose(seq[k], log_mel[:, lo:hi].mean(axis=1), rtol=1e-6, atol=1e-5)
    # the first half is A4, the second C5: the sequence sees the change in time order
    assert not np.allclose(seq[1], seq[8], atol=1.0)
    np.testing.assert_array_equal(seq, A.audio_sequence(clip, SR, n_segments=10))


def test_short_clips_are_stretched_not_padded():
    y = _tone(440.0, seconds=0.1)  # 2205 samples -> 5 frames < 10 segments
    seq = A.audio_sequence(y, SR, n_segments=10)
    log_mel = A.log_mel_spectrogram(y, SR)
    assert log_mel.shape[1] == 5 and seq.shape == (10, 64)
    # every segment is one of the real frames
    for row in seq:
        assert any(np.array_equal(row, log_mel[:, j]) for j in range(5))


def test_combined_call_equals_the_two_functions(clip):
    feats, seq = A.audio_features_and_sequence(clip, SR, n_segments=7)
    np.testing.assert_array_equal(feats, A.audio_features(clip, SR))
    np.testing.assert_array_equal(seq, A.audio_sequence(clip, SR, n_segments=7))


@pytest.mark.parametrize(
    "y, match",
    [
        (np.zeros((2, 4096), dtype=np.float32), "mono"),
        (np.zeros(100, dtype=np.float32), "too short"),
        (np.full(4096, np.nan, dtype=np.float32), "NaN"),
        (np.zeros(4096, dtype=np.int16), "floating"),
    ],
)
def test_bad_audio_raises(y, match):
    with pytest.raises(ValueError, match=match):
        A.audio_features(y, SR)


def test_silence_gives_finite_features():
    feats = A.audio_features(np.zeros(SR, dtype=np.float32), SR)
    assert np.all(np.isfinite(feats))
    np.testing.assert_allclose(feats[A.AUDIO_FEATURE_LAYOUT["logmel_mean"]], -100.0)


# ---------------------------------------------------------------------- audio_mel (CNN input)
def test_audio_mel_shape_padding_and_peak(clip):
    mel = A.audio_mel(clip, SR)  # 2 s: 20 frames of 0.1 s, then padding
    assert mel.shape == (A.N_MELS, A.MEL_FRAMES) == (64, 128) and mel.dtype == np.uint8
    assert mel.max() == A.MEL_RANGE_DB and mel.min() == 0
    assert mel[:, :20].any(axis=0).all() and not mel[:, 20:].any()
    assert np.array_equal(mel, A.audio_mel(clip, SR))


def test_audio_mel_tone_sits_in_its_mel_band_and_changes_with_time(clip):
    import librosa

    mel = A.audio_mel(clip, SR).astype(int)
    centres = librosa.mel_frequencies(n_mels=A.N_MELS + 2, fmax=SR / 2)[1:-1]  # librosa's band centres
    for frames, freq in ((slice(2, 8), 440.0), (slice(12, 18), 523.25)):
        band = int(np.argmax(mel[:, frames].mean(axis=1)))
        assert abs(band - int(np.argmin(np.abs(centres - freq)))) <= 1
    # the frame edges are 0.1 s: the A4 band loses energy right after 1 s
    a4 = int(np.argmin(np.abs(centres - 440.0)))
    assert mel[a4, 8] > mel[a4, 12] + 10


def test_audio_mel_fits_a_long_clip_in_128_frames():
    long = _tone(440.0, seconds=25.6)
    assert A.audio_mel_frame_rate(long.size, SR) == pytest.approx(5.0)
    mel = A.audio_mel(long, SR)
    assert mel[:, -1].any() and mel[:, 0].any()  # no padding: the clip fills the excerpt
    assert A.audio_mel_frame_rate(SR * 3, SR) == A.MEL_FPS
