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

Nothing here is tuned toward particular MAP values. ``info["synthetic"]`` is ``True`` and
``info["description"]`` says the data are synthetic.
"""

from __future__ import annotations

import numpy as np

from crossmodal_core.data.dataset import CrossModalDataset

__all__ = ["make_synthetic_av", "SYNTHETIC_VEGAS_NAME"]

SYNTHETIC_VEGAS_NAME = "synthetic-vegas"
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

    Returns
    -------
    CrossModalDataset with float32 views ``"audio"`` ``(n, dims[0])`` and ``"visual"``
    ``(n, dims[1])``, labels ``"class"`` (``n_classes`` classes, each present in train and
    test), ``split`` train/test, metadata ``"mode"`` (the sub-mode index), and
    ``info["synthetic"] = True``.
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
        x += np.float32(shared_strength) * (shared_m @ s_map)
        x += np.float32(private_strength) * (np.tanh(private @ r_u) @ r_v)
        if noise > 0:
            x += np.float32(noise) * rng.standard_normal((n, d), dtype=np.float32)
        views[view_name] = np.ascontiguousarray(x, dtype=np.float32)

    split = np.array(["train"] * n_train + ["test"] * n_test)
    item_ids = np.array([f"syn-{s}-{i:06d}" for s, i in zip(split, np.arange(n))])
    params = dict(
        n_train=n_train, n_test=n_test, n_classes=n_classes, dims=[int(d) for d in dims],
        latent_dim=int(latent_dim), noise=float(noise), seed=int(seed), modes_per_class=int(modes_per_class), mode_spread=float(mode_spread),
        within_class=float(within_class), shared_noise=float(shared_noise), shared_strength=float(shared_strength),
        class_strength=float(class_strength), private_strength=float(private_strength),
        nonlinearity_gain=float(nonlinearity_gain),
    )
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
        ),
    }
    return CrossModalDataset(
        views=views,
        labels={"class": y},
        class_names={"class": [f"synthetic class {c}" for c in range(n_classes)]},
        item_ids=item_ids,
        metadata={"mode": mode.astype(np.int64)},
        split=split,
        name=name,
        info=info,
    )
