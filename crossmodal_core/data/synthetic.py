"""A seeded synthetic audio-visual dataset shaped like VEGAS. It is SYNTHETIC: tests,
benchmarks and demos use it; it is never presented as real data.

Generative model (every item ``i`` with class ``y_i``; ``m`` in {audio, visual})::

    y_i      ~ Categorical(p),  p ~ Dirichlet(8)           mildly imbalanced classes
    k_i      ~ Uniform{0..modes_per_class-1}               a sub-mode of the class
    c_i      = mu[y_i] + delta[y_i, k_i]                   class latent (latent_dim)
    s_i      ~ N(0, I_{latent/2})                          shared, class-independent
    r_mi     ~ N(0, I_latent)                              private to modality m
    x_mi     = a_c * tanh((c_i + sigma_w * e_mi) U_m) V_m  class part, nonlinear
             + a_s * (s_i + sigma_s * n_mi) S_m            shared instance part, linear
             + a_p * tanh(r_mi R_m) Q_m                    private nonlinear nuisance
             + noise * eps_mi                              isotropic noise

What each part is for:

- The shared instance latent ``s`` is more strongly correlated across modalities than the
  class signal (which has independent within-class jitter ``sigma_w`` per modality). Plain
  CCA maximises pair correlation and therefore spends its components on ``s``, which says
  nothing about the class; Cluster-CCA correlates class-level correspondences, where ``s``
  averages out. That is the mechanism behind C-CCA > CCA in MAP in the papers.
- The class signal reaches the features through ``tanh`` of a random projection, and every
  class is a union of ``modes_per_class`` separated sub-modes: a linear map cannot collapse a
  class completely, so nonlinear (deep) models have something to gain.
- The private part is structured, modality-specific nuisance variance.

Sequence views (``sequences=True``): VEGAS / MV-10K features are ``T`` = 10 one-second
segments. Each item also gets ``audio_seq`` ``(n, T, dims[0])`` and ``visual_seq``
``(n, T, dims[1])`` built as the flat view plus zero-time-mean segment dynamics, so the time
average of a sequence is its flat view (up to float32 rounding, about 1e-6 relative)::

    seq_mi[t] = x_mi                                            the flat view, every segment
              + (w_i[t] - 1) * class_mi                         class signal moved between segments
              + a_d * P[y_i, t] D_m                             class-specific segment dynamics
              + a_z * (z_i[t - lag_mi] - mean_t) Z_m            shared latent per segment, lagged
              + sigma_t * (eta_mit - mean_t)                    per-segment noise

- ``class_mi`` is the class part of the flat view; ``w_i[t] = T / |S_i|`` on a random set
  ``S_i`` of informative segments and ``0`` elsewhere (mean 1): a fraction
  ``uninformative_segments`` of each item's segments carries **no class signal** at all, the
  others carry it amplified, so pooling is not the best a sequence model can do;
- ``P[c]`` is a ``(T, latent_dim)`` zero-mean temporal pattern per class (seen by both
  modalities through their own maps ``D_m``): dynamics whose shape, not level, says the class;
- ``z_i`` is an AR(1) latent per segment (coefficient 0.7) shared by the two modalities; the
  visual stream sees it ``lag_i`` segments late, ``lag_i`` uniform in ``0..max_lag`` (small
  audio-visual lags, as between a sound and the frame that shows it).

The dynamics are drawn from a separate random stream (``seed`` spawned), so the flat views
are bit-identical with and without ``sequences``. Cost: ``n * T * (dims[0] + dims[1])``
values; at the VEGAS size (28,103 items, 10 x (128 + 1024)) that is 1.3 GB in float32, so
sequences are off by default (``sequence_dtype="float16"`` halves it).

Difficulty knob: ``difficulty`` multiplies the isotropic noise, the within-class jitter and
the shared-latent measurement noise (``noise``, ``within_class``, ``shared_noise``) against the
class signal; ``1.0`` is the generator as first written, bit for bit. At ``1.0`` the benchmark
saturated (committed 5-fold results: C-KCCA 97.5, Contrastive 98.7 % MAP), so models could not
be told apart. The default is :data:`DEFAULT_DIFFICULTY` ``= 1.5``, chosen once on a
**validation split of training rows only** (seed 0; 4,000 random training rows to fit, 2,000
other training rows to score; the test split untouched), mean MAP of the two directions, %,
with C-CCA, C-KCCA, TNN-C-CCA (5 epochs) and the contrastive model (8 epochs)
(``benchmarks/choose_difficulty.py``)::

    difficulty   C-CCA  C-KCCA  TNN-C-CCA  Contrastive
    1.00          77.4    96.8       90.1         85.1
    1.25          60.0    90.0       77.6         75.4
    1.50          45.9    78.8       63.8         65.6
    1.75          36.0    66.0       51.5         56.1
    2.00          29.2    53.8       41.8         47.5

The rule: the smallest value of that grid at which the best model stays clearly below 90 %
and the linear C-CCA lies at least 10 points below the best deep model. 1.25 fails (C-KCCA at
90.0); 1.5 passes (best 78.8; C-CCA 45.9 against 65.6). No paper number entered the choice.
The kernel C-KCCA stays the strongest model on this generator (its RBF features suit the
low-dimensional latent classes), unlike the paper's VEGAS table; that is a property of the
synthetic data, not something tuned away.

Nothing here is tuned toward particular MAP values. ``info["synthetic"]`` is ``True`` and
``info["description"]`` says the data are synthetic.
"""

from __future__ import annotations

import numpy as np

from crossmodal_core.data.dataset import CrossModalDataset

__all__ = ["make_synthetic_av", "SYNTHETIC_VEGAS_NAME", "DEFAULT_DIFFICULTY"]

SYNTHETIC_VEGAS_NAME = "synthetic-vegas"
#: the default of ``make_synthetic_av(difficulty=...)``: chosen on validation rows so the
#: benchmark does not saturate (module docstring, "Difficulty knob")
DEFAULT_DIFFICULTY = 1.5
_HIDDEN = 64  # width of the random one-hidden-layer maps


def _random_map(rng: np.random.Generator, d_in: int, d_hidden: int, d_out: int, gain: float):
    """Weights of ``x -> tanh(x U) V`` with ``gain`` controlling how far tanh saturates."""
    u = rng.standard_normal((d_in, d_hidden)) * (gain / np.sqrt(d_in))
    v = rng.standard_normal((d_hidden, d_out)) / np.sqrt(d_hidden)
    return u.astype(np.float32), v.astype(np.float32)


def make_synthetic_av(
    n_train: int = 22483,
    n_test: int = 5620,
    n_classes: int = 10,
    dims: tuple[int, int] = (128, 1024),
    latent_dim: int = 8,
    noise: float = 0.5,
    seed: int = 0,
    name: str = SYNTHETIC_VEGAS_NAME,
    *,
    modes_per_class: int = 2,
    mode_spread: float = 1.5,
    within_class: float = 0.5,
    shared_noise: float = 0.3,
    shared_strength: float = 1.0,
    class_strength: float = 1.0,
    private_strength: float = 1.0,
    nonlinearity_gain: float = 2.0,
    difficulty: float = DEFAULT_DIFFICULTY,
    sequences: bool = False,
    n_segments: int = 10,
    uninformative_segments: float = 0.3,
    segment_dynamics: float = 0.5,
    segment_shared: float = 0.5,
    segment_noise: float = 0.3,
    max_lag: int = 2,
    sequence_dtype: str = "float32",
) -> CrossModalDataset:
    """VEGAS-shaped synthetic audio-visual features with class structure.

    Parameters
    ----------
    n_train, n_test : rows of the predefined train / test split (VEGAS: 22,483 / 5,620)
    n_classes : number of classes (VEGAS: 10)
    dims : feature dimensions ``(audio, visual)`` (VEGAS: VGGish 128, Inception 1024)
    latent_dim : dimension of the class, shared and private latents
    noise : standard deviation of the isotropic feature noise
    seed : everything is drawn from ``numpy.random.default_rng(seed)``
    name : dataset name (used in artifact paths)
    modes_per_class : sub-modes per class (> 1 makes classes non-convex)
    mode_spread : distance scale of the sub-modes from their class centre
    within_class : std of the per-modality jitter around the class latent
    shared_noise : std of each modality's measurement noise on the shared latent
    shared_strength, class_strength, private_strength : scale of each part
    nonlinearity_gain : input gain of the ``tanh`` maps (larger = more nonlinear)
    difficulty : multiplies ``noise``, ``within_class`` and ``shared_noise`` (> 0; 1.0 = the
        generator as first written, bit for bit; larger = harder; default
        :data:`DEFAULT_DIFFICULTY`, see the module docstring)
    sequences : also return ``audio_seq`` / ``visual_seq`` (see the module docstring)
    n_segments : segments ``T`` per item (VEGAS: 10 one-second segments)
    uninformative_segments : fraction of each item's segments without class signal, in [0, 1)
    segment_dynamics, segment_shared, segment_noise : scales of the class dynamics, the lagged
        shared latent and the per-segment noise
    max_lag : largest audio-to-visual lag of the shared latent, in segments
    sequence_dtype : ``"float32"`` or ``"float16"`` for the sequence views

    Returns
    -------
    CrossModalDataset with float32 views ``"audio"`` ``(n, dims[0])`` and ``"visual"``
    ``(n, dims[1])``, labels ``"class"`` (``n_classes`` classes, each present in train and
    test), ``split`` train/test, metadata ``"mode"`` (the sub-mode index), and
    ``info["synthetic"] = True``. With ``sequences``: also ``"audio_seq"`` ``(n, T, dims[0])``
    and ``"visual_seq"`` ``(n, T, dims[1])``, whose time average is the flat view, and
    metadata ``"lag"`` (the visual lag of each item, in segments).
    """
    n_train, n_test, n_classes = int(n_train), int(n_test), int(n_classes)
    if n_classes < 2:
        raise ValueError(f"n_classes must be at least 2, got {n_classes}")
    if n_train < n_classes or n_test < n_classes:
        raise ValueError(f"n_train and n_test must each be >= n_classes ({n_classes}) so every class appears")
    if len(dims) != 2 or min(dims) < 1:
        raise ValueError(f"dims must be two positive feature dimensions, got {dims}")
    if latent_dim < 1 or modes_per_class < 1:
        raise ValueError("latent_dim and modes_per_class must be >= 1")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    if not difficulty > 0:
        raise ValueError(f"difficulty must be > 0, got {difficulty}")
    if sequences:
        if int(n_segments) != n_segments or n_segments < 2:
            raise ValueError(f"n_segments must be an integer >= 2, got {n_segments}")
        if not 0 <= uninformative_segments < 1:
            raise ValueError(f"uninformative_segments must be in [0, 1), got {uninformative_segments}")
        if int(max_lag) != max_lag or not 0 <= max_lag < n_segments:
            raise ValueError(f"max_lag must be an integer in [0, n_segments), got {max_lag}")
        if sequence_dtype not in ("float32", "float16"):
            raise ValueError(f"sequence_dtype must be 'float32' or 'float16', got {sequence_dtype!r}")
    if difficulty != 1.0:  # 1.0 leaves every value (and so every committed result) unchanged
        noise, within_class, shared_noise = (noise * difficulty, within_class * difficulty,
                                             shared_noise * difficulty)
    rng = np.random.default_rng(seed)
    n = n_train + n_test

    priors = rng.dirichlet(np.full(n_classes, 8.0))
    # Every class appears in both splits: one guaranteed item each, the rest drawn from p.
    y_parts = []
    for size in (n_train, n_test):
        y = np.concatenate([np.arange(n_classes), rng.choice(n_classes, size=size - n_classes, p=priors)])
        y_parts.append(rng.permutation(y))
    y = np.concatenate(y_parts).astype(np.int64)
    mode = rng.integers(0, modes_per_class, size=n)

    centres = rng.standard_normal((n_classes, latent_dim)).astype(np.float32)
    # Sub-modes sit symmetrically around the class centre (they sum to zero), so the class
    # mean that a linear model sees is the centre while the items lie far from it.
    offsets = rng.standard_normal((n_classes, modes_per_class, latent_dim)).astype(np.float32)
    offsets -= offsets.mean(axis=1, keepdims=True)
    offsets *= np.float32(mode_spread)
    class_latent = centres[y] + offsets[y, mode]
    shared_dim = max(1, latent_dim // 2)
    shared = rng.standard_normal((n, shared_dim), dtype=np.float32)

    views = {}
    class_parts = {}
    for view_name, d in zip(("audio", "visual"), dims):
        u, v = _random_map(rng, latent_dim, _HIDDEN, d, nonlinearity_gain)
        s_map = (rng.standard_normal((shared_dim, d)) / np.sqrt(shared_dim)).astype(np.float32)
        # the shared factor is seen by each modality through its own measurement noise
        shared_m = shared + np.float32(shared_noise) * rng.standard_normal((n, shared_dim), dtype=np.float32)
        r_u, r_v = _random_map(rng, latent_dim, _HIDDEN, d, nonlinearity_gain)
        jitter = rng.standard_normal((n, latent_dim), dtype=np.float32) * np.float32(within_class)
        private = rng.standard_normal((n, latent_dim), dtype=np.float32)
        x = np.tanh((class_latent + jitter) @ u) @ v
        x *= np.float32(class_strength)
        if sequences:
            class_parts[view_name] = x.copy()
        x += np.float32(shared_strength) * (shared_m @ s_map)
        x += np.float32(private_strength) * (np.tanh(private @ r_u) @ r_v)
        if noise > 0:
            x += np.float32(noise) * rng.standard_normal((n, d), dtype=np.float32)
        views[view_name] = np.ascontiguousarray(x, dtype=np.float32)

    metadata = {"mode": mode.astype(np.int64)}
    if sequences:
        seq_rng = np.random.default_rng(np.random.SeedSequence(int(seed)).spawn(1)[0])
        seqs, lag = _segment_views(seq_rng, views, class_parts, y, n_classes, int(n_segments), latent_dim,
                                   uninformative_segments, segment_dynamics, segment_shared, segment_noise,
                                   int(max_lag), np.dtype(sequence_dtype))
        views.update(seqs)
        metadata["lag"] = lag
    del class_parts

    split = np.array(["train"] * n_train + ["test"] * n_test)
    item_ids = np.array([f"syn-{s}-{i:06d}" for s, i in zip(split, np.arange(n))])
    params = dict(
        n_train=n_train, n_test=n_test, n_classes=n_classes, dims=[int(d) for d in dims],
        latent_dim=int(latent_dim), noise=float(noise), seed=int(seed), modes_per_class=int(modes_per_class), mode_spread=float(mode_spread),
        within_class=float(within_class), shared_noise=float(shared_noise), shared_strength=float(shared_strength),
        class_strength=float(class_strength), private_strength=float(private_strength),
        nonlinearity_gain=float(nonlinearity_gain), difficulty=float(difficulty), sequences=bool(sequences),
    )
    if sequences:
        params.update(n_segments=int(n_segments), uninformative_segments=float(uninformative_segments),
                      segment_dynamics=float(segment_dynamics), segment_shared=float(segment_shared),
                      segment_noise=float(segment_noise), max_lag=int(max_lag), sequence_dtype=sequence_dtype)
    info = {
        "synthetic": True,
        "source": "crossmodal_core.data.synthetic.make_synthetic_av",
        "default_label": "class",
        "generator": params,
        "description": (
            "SYNTHETIC data shaped like VEGAS (not real audio or video): "
            f"{n_classes} classes, {n_train} train / {n_test} test items, "
            f"{dims[0]}-d 'audio' and {dims[1]}-d 'visual' features from a seeded generative "
            "model with class structure, a shared latent and modality-specific nonlinear noise."
            + (f" Sequence views audio_seq / visual_seq: {n_segments} segments per item." if sequences else "")
        ),
    }
    return CrossModalDataset(
        views=views,
        labels={"class": y},
        class_names={"class": [f"synthetic class {c}" for c in range(n_classes)]},
        item_ids=item_ids,
        metadata=metadata,
        split=split,
        name=name,
        info=info,
    )


def _segment_views(rng: np.random.Generator, views: dict[str, np.ndarray], class_parts: dict[str, np.ndarray],
                   y: np.ndarray, n_classes: int, n_segments: int, latent_dim: int, uninformative: float,
                   dynamics: float, shared: float, noise: float, max_lag: int,
                   dtype: np.dtype) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``audio_seq`` / ``visual_seq`` = flat view + zero-time-mean dynamics (module docstring)."""
    n, t = len(y), n_segments
    # informative segments: weights T/|S| on S, 0 elsewhere (mean 1 over time)
    n_off = int(round(uninformative * t))
    order = np.argsort(rng.random((n, t)), axis=1)
    weights = np.full((n, t), t / (t - n_off), dtype=np.float32)
    np.put_along_axis(weights, order[:, :n_off], 0.0, axis=1)
    patterns = rng.standard_normal((n_classes, t, latent_dim)).astype(np.float32)
    patterns -= patterns.mean(axis=1, keepdims=True)
    shared_dim = max(1, latent_dim // 2)
    # AR(1) latent over max_lag extra leading steps, so a lagged stream never wraps around
    z = np.empty((n, t + max_lag, shared_dim), dtype=np.float32)
    z[:, 0] = rng.standard_normal((n, shared_dim), dtype=np.float32)
    for s in range(1, t + max_lag):
        z[:, s] = 0.7 * z[:, s - 1] + np.sqrt(1 - 0.49) * rng.standard_normal((n, shared_dim), dtype=np.float32)
    lag = rng.integers(0, max_lag + 1, size=n)
    out = {}
    for view_name, lags in (("audio", np.zeros(n, dtype=np.int64)), ("visual", lag)):
        x, c = views[view_name], class_parts[view_name]
        d = x.shape[1]
        d_map = (rng.standard_normal((latent_dim, d)) / np.sqrt(latent_dim)).astype(np.float32)
        z_map = (rng.standard_normal((shared_dim, d)) / np.sqrt(shared_dim)).astype(np.float32)
        # segment s of this stream sees the latent of step (max_lag + s - lag)
        steps = max_lag + np.arange(t)[None, :] - lags[:, None]
        zm = np.take_along_axis(z, steps[:, :, None], axis=1)
        seq = np.empty((n, t, d), dtype=np.float32)
        for s in range(t):  # one segment at a time keeps the temporaries at (n, d)
            dyn = (weights[:, s:s + 1] - 1.0) * c
            dyn += np.float32(dynamics) * (patterns[y, s] @ d_map)
            dyn += np.float32(shared) * (zm[:, s] @ z_map)
            dyn += np.float32(noise) * rng.standard_normal((n, d), dtype=np.float32)
            seq[:, s] = dyn
        seq -= seq.mean(axis=1, keepdims=True)  # zero time mean: the average is the flat view
        seq += x[:, None, :]
        out[f"{view_name}_seq"] = seq.astype(dtype, copy=False)
    return out, lag.astype(np.int64)
