"""Fixed-size audio descriptors with librosa.

Two functions, both deterministic and returning ``float32``:

- :func:`audio_features` -- one vector per clip: mean and standard deviation over time of a
  64-band log-mel spectrogram, a 12-bin chroma and 20 MFCCs, concatenated
  (:data:`AUDIO_FEATURE_DIM` = 192). :data:`AUDIO_FEATURE_LAYOUT` names the slices.
- :func:`audio_sequence` -- a short sequence for the sequence models: the log-mel spectrogram
  averaged over ``n_segments`` equal stretches of time, shape ``(n_segments, 64)``.

Analysis settings (:data:`ANALYSIS`): STFT with ``n_fft=2048``, ``hop_length=512`` (23 ms at
22,050 Hz), Hann window; mel bands up to ``sr / 2``. Log-mel is ``10 log10(power)`` in dB
relative to a power of 1 (``ref=1.0``, not the clip's own maximum, so loudness differences
survive), floored at ``-100`` dB. Chroma is librosa's ``chroma_stft`` (each frame's
maximum is 1) at standard tuning (A4 = 440 Hz, as the synthesiser plays; no tuning
estimate). MFCCs are computed from the same log-mel spectrogram.

Note: librosa compiles numba functions on first use in a process (a few seconds); warm it once
in a worker before timing anything.
"""

from __future__ import annotations

import numpy as np

from crossmodal_core.features import block_layout

N_MELS = 64
N_CHROMA = 12
N_MFCC = 20
ANALYSIS = dict(n_fft=2048, hop_length=512, window="hann", center=True)
DB_FLOOR = -100.0
MIN_SAMPLES = 2048


def _layout() -> dict[str, slice]:
    sizes = [
        ("logmel_mean", N_MELS),
        ("logmel_std", N_MELS),
        ("chroma_mean", N_CHROMA),
        ("chroma_std", N_CHROMA),
        ("mfcc_mean", N_MFCC),
        ("mfcc_std", N_MFCC),
    ]
    return block_layout(sizes)


#: name -> slice of the :func:`audio_features` vector.
AUDIO_FEATURE_LAYOUT: dict[str, slice] = _layout()
AUDIO_FEATURE_DIM: int = max(s.stop for s in AUDIO_FEATURE_LAYOUT.values())
AUDIO_SEQUENCE_DIM: int = N_MELS


def _check_audio(y: np.ndarray, sr: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"expected mono audio of shape (n_samples,), got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.floating):
        raise ValueError(f"expected floating-point audio, got dtype {y.dtype}")
    if y.size < MIN_SAMPLES:
        raise ValueError(f"audio too short: {y.size} samples, need at least {MIN_SAMPLES}")
    if not np.all(np.isfinite(y)):
        raise ValueError("audio contains NaN or inf")
    if int(sr) <= 0:
        raise ValueError(f"sample rate must be positive, got {sr}")
    return y.astype(np.float32, copy=False)


def _power_spectrogram(y: np.ndarray) -> np.ndarray:
    import librosa

    return np.abs(librosa.stft(y, n_fft=ANALYSIS["n_fft"], hop_length=ANALYSIS["hop_length"],
                               window=ANALYSIS["window"], center=ANALYSIS["center"])) ** 2


def _log_mel(power: np.ndarray, sr: int) -> np.ndarray:
    import librosa

    mel = librosa.feature.melspectrogram(S=power, sr=sr, n_mels=N_MELS, n_fft=ANALYSIS["n_fft"])
    return np.maximum(librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None), DB_FLOOR)


def log_mel_spectrogram(y: np.ndarray, sr: int) -> np.ndarray:
    """Log-mel spectrogram.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,), float
    sr : int, Hz

    Returns
    -------
    S_db : np.ndarray, shape (64, n_frames), float32, dB re power 1, floored at -100
        ``n_frames = 1 + n_samples // 512``.
    """
    y = _check_audio(y, sr)
    return _log_mel(_power_spectrogram(y), int(sr)).astype(np.float32)


def audio_features(y: np.ndarray, sr: int) -> np.ndarray:
    """Clip-level statistics of log-mel, chroma and MFCC.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,), float
        Mono audio, at least 2048 samples.
    sr : int
        Sample rate in Hz.

    Returns
    -------
    features : np.ndarray, shape (192,), float32
        ``[logmel_mean (64, dB), logmel_std (64, dB), chroma_mean (12), chroma_std (12),
        mfcc_mean (20), mfcc_std (20)]``; see :data:`AUDIO_FEATURE_LAYOUT`.
        Means and (population) standard deviations are over STFT frames.
    """
    return _summarise(*_frame_features(y, sr))


def _frame_features(y: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated STFT-frame features: log-mel (64, t) dB, chroma (12, t), MFCC (20, t)."""
    import librosa

    y = _check_audio(y, sr)
    sr = int(sr)
    power = _power_spectrogram(y)
    log_mel = _log_mel(power, sr)
    chroma = librosa.feature.chroma_stft(S=power, sr=sr, n_chroma=N_CHROMA, n_fft=ANALYSIS["n_fft"], tuning=0.0)
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=N_MFCC)
    return log_mel, chroma, mfcc


def _summarise(log_mel: np.ndarray, chroma: np.ndarray, mfcc: np.ndarray) -> np.ndarray:
    parts = [
        log_mel.mean(axis=1), log_mel.std(axis=1),
        chroma.mean(axis=1), chroma.std(axis=1),
        mfcc.mean(axis=1), mfcc.std(axis=1),
    ]
    return np.concatenate(parts).astype(np.float32)


def segment_pool(frames: np.ndarray, n_segments: int) -> np.ndarray:
    """Average ``(d, n_frames)`` frames over ``n_segments`` equal stretches of time.

    Segment ``k`` covers frames ``[floor(k n / K), floor((k + 1) n / K))``. When a clip has
    fewer frames than segments, each segment takes the frame under its centre (so short clips
    are stretched, never padded with invented values).

    Returns
    -------
    pooled : np.ndarray, shape (n_segments, d)
    """
    if n_segments < 1:
        raise ValueError(f"n_segments must be >= 1, got {n_segments}")
    d, n = frames.shape
    if n == 0:
        raise ValueError("no frames to pool")
    if n < n_segments:
        centres = np.minimum(((np.arange(n_segments) + 0.5) * n / n_segments).astype(int), n - 1)
        return frames[:, centres].T.copy()
    bounds = (np.arange(n_segments + 1) * n) // n_segments
    return np.stack([frames[:, bounds[k]:bounds[k + 1]].mean(axis=1) for k in range(n_segments)])


def segment_times(n_samples: int, sr: int, n_segments: int = 10) -> np.ndarray:
    """Where the :func:`audio_sequence` segments of a clip of ``n_samples`` lie in time.

    Segment ``k`` pools the STFT frames ``[floor(k n / K), floor((k + 1) n / K))`` (see
    :func:`segment_pool`); frame ``f`` is centred at ``f · hop / sr`` seconds. The edges are
    half a hop before each segment's first frame, clipped to ``[0, n_samples / sr]``. For a
    clip with fewer frames than segments, equal stretches of the clip.

    Returns
    -------
    edges : np.ndarray, shape (n_segments + 1,), float64, seconds from the clip start
        (``edges[0] = 0``, ``edges[-1] = n_samples / sr``), non-decreasing.
    """
    if n_segments < 1:
        raise ValueError(f"n_segments must be >= 1, got {n_segments}")
    if n_samples < 1 or sr <= 0:
        raise ValueError(f"need n_samples >= 1 and sr > 0, got {n_samples}, {sr}")
    hop = ANALYSIS["hop_length"]
    length = n_samples / float(sr)
    n_frames = 1 + n_samples // hop  # librosa.stft with center=True
    if n_frames < n_segments:
        return length * np.arange(n_segments + 1) / n_segments
    bounds = (np.arange(n_segments + 1) * n_frames) // n_segments
    edges = np.clip((bounds - 0.5) * hop / float(sr), 0.0, length)
    edges[0], edges[-1] = 0.0, length
    return edges


def audio_sequence(y: np.ndarray, sr: int, n_segments: int = 10) -> np.ndarray:
    """Time-pooled log-mel sequence.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,), float
    sr : int, Hz
    n_segments : int
        Number of equal-length time segments; every clip maps to the same shape.

    Returns
    -------
    sequence : np.ndarray, shape (n_segments, 64), float32
        Mean log-mel (dB) of each segment, in time order.
    """
    log_mel = log_mel_spectrogram(y, sr)
    return segment_pool(log_mel, int(n_segments)).astype(np.float32)


def audio_features_and_sequence(y: np.ndarray, sr: int, n_segments: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """``(audio_features(y, sr), audio_sequence(y, sr, n_segments))`` from one STFT.

    Same values as the two calls, computed once (the dataset build needs both).
    """
    log_mel, chroma, mfcc = _frame_features(y, sr)
    features = _summarise(log_mel, chroma, mfcc)
    sequence = segment_pool(log_mel.astype(np.float32), int(n_segments)).astype(np.float32)
    return features, sequence


# ---------------------------------------------------------------------- CNN input
#: the ``audio_mel`` excerpt: 64 mel bands x 128 frames of 0.1 s (12.8 s) where the clip fits
MEL_FRAMES = 128
MEL_FPS = 10.0
#: dynamic range kept below the clip's loudest bin, in 1 dB steps (0..60): 1 dB steps and 60 dB
#: instead of 0.31 dB steps over 80 dB halve the compressed size (34 -> 18 MB for the corpus)
MEL_RANGE_DB = 60.0


def audio_mel_frame_rate(n_samples: int, sr: int) -> float:
    """Frames per second of :func:`audio_mel` for a clip of ``n_samples``: :data:`MEL_FPS`, or
    fewer so that a clip longer than ``MEL_FRAMES / MEL_FPS`` seconds fits in ``MEL_FRAMES``."""
    length = int(n_samples) / float(sr)
    return min(MEL_FPS, MEL_FRAMES / length) if length > 0 else MEL_FPS


def audio_mel(y: np.ndarray, sr: int) -> np.ndarray:
    """The ``audio_mel`` view of one clip: a log-mel excerpt for a 2-D CNN.

    The 64-band mel power spectrogram (:func:`log_mel_spectrogram`'s STFT) is area-averaged
    into frames of ``1 / fps`` s from the clip's start (:func:`audio_mel_frame_rate`: 0.1 s,
    longer for a clip over 12.8 s so the whole clip fits), then put in dB relative to the
    clip's loudest bin, floored at ``-MEL_RANGE_DB`` and quantised to whole dB above that
    floor: ``round(dB + 60)``. Frames after the clip are 0 (silence), like the zero padding of
    ``score_image``.

    Returns
    -------
    mel : np.ndarray, shape (N_MELS, MEL_FRAMES) = (64, 128), uint8 in 0..60: dB above
        (clip peak - 60 dB); 0 = 60 dB or more below the peak, and padding; 60 = the peak.
        Frame ``f`` covers ``[f / fps, (f + 1) / fps)`` seconds.
    """
    from crossmodal_core.features.resample import resample_columns

    y = _check_audio(y, sr)
    sr = int(sr)
    power = 10.0 ** (log_mel_spectrogram(y, sr).astype(np.float64) / 10.0)  # (64, n_stft)
    fps = audio_mel_frame_rate(y.size, sr)
    length = y.size / float(sr)
    n_used = min(MEL_FRAMES, int(np.ceil(length * fps - 1e-9)))
    edges_s = np.minimum(np.arange(n_used + 1) / fps, length)
    # STFT frame i is centred at i * hop / sr (center=True): it covers [i - 0.5, i + 0.5) hops
    edges = edges_s * sr / ANALYSIS["hop_length"] + 0.5
    pooled = resample_columns(power, edges)
    db = 10.0 * np.log10(np.maximum(pooled, 1e-30) / max(float(pooled.max()), 1e-30))
    out = np.zeros((N_MELS, MEL_FRAMES), dtype=np.uint8)
    out[:, :n_used] = np.rint(np.clip(db + MEL_RANGE_DB, 0.0, MEL_RANGE_DB)).astype(np.uint8)
    return out
