"""UGAAR: unsupervised generative adversarial alignment of sheet music, lyrics and audio.

What the paper says (Zeng, Yu, Oyama; grant report and abstract, see ``shared/seeds``; there is
no public code):

- three branches (sheet, lyrics, audio), a deep network trained jointly, map the three
  modalities into one shared subspace; no labels are used;
- "CCA components of audio and sheet music establish new ground truth";
- a generator G "learns the correlation of two couples of transferred pairs [lyrics-audio and
  lyrics-sheet] to generate a new audio-sheet pair for a fixed lyric";
- a discriminator D tells whether its input comes from G or from the ground truth;
- G and D are trained simultaneously, adversarially, so that the strong audio-sheet relation
  is transferred to the lyrics-audio and lyrics-sheet pairs.

Everything below that is not in that list is **our choice**, made because the paper does not
say; each one is a parameter so it can be ablated.

Model (views are ordered ``[sheet, lyrics, audio]``; ``k = n_components``)
--------------------------------------------------------------------------
1. *Ground truth* (paper). Each view is standardised (train mean / std; our choice). A linear
   :class:`~crossmodal_core.models.linear.CCA` with ``k`` components and ridge ``cca_reg`` is
   fitted on ``[audio, sheet]``. For item ``i`` it gives ``a_i`` (audio side) and ``s_i``
   (sheet side), both ``(k,)``. The ground-truth pair is ``g_i = [a_i, s_i]`` (``2k``) and the
   ground-truth shared point is ``t_i = (a_i + s_i) / 2`` (our choice: the midpoint of a
   canonical pair is the least-squares point closest to both sides). Components are scaled to
   unit variance over the training items (our choice, so no component dominates the MSE).
2. *Branches* (paper: three branches; our choice: MLP towers with ReLU, dropout, a linear
   ``k``-d output): ``f_s(sheet_i)``, ``f_l(lyrics_i)``, ``f_a(audio_i)`` are the shared-space
   embeddings that :meth:`UGAAR.transform` returns.
3. *Generator* (paper: produces an (audio, sheet) pair for a fixed lyric; our choice of
   form): ``G(f_l(lyrics_i), z) -> [a_hat, s_hat]`` (``2k``) with ``z ~ N(0, I_noise_dim)``,
   an MLP whose input is the lyric branch output concatenated with noise. Because G reads the
   *lyric branch*, the adversarial gradient reaches ``f_l``: that is how the audio-sheet
   relation is "transferred" to lyrics.
4. *Discriminator* (paper: generated vs ground truth; our choice: conditional, as in
   conditional GANs): ``D(c, [a, s]) -> logit`` with the condition ``c = f_l(lyrics_i)``
   (detached for the D step). Real inputs: ``(c_i, g_i)``. Fake inputs: ``(c_i, G(c_i, z))``
   and, with weight ``mismatch_weight``, mismatched real pairs ``(c_i, g_{pi(i)})`` for a
   random derangement ``pi`` of the batch (the "matching-aware" discriminator of GAN-CLS,
   Reed et al. 2016; our choice). Without the mismatch term D could judge a pair without
   looking at the lyric, and G would only need to produce *some* plausible pair.
5. *Losses* (our choice of the exact form; the paper names an adversarial game plus alignment;
   the functions are :func:`~.losses.alignment_loss`, :func:`~.losses.discriminator_loss`,
   :func:`~.losses.generator_adversarial_loss`, :func:`~.losses.r1_penalty`, and the mismatched
   pairs come from :func:`~.miners.derangement`).
   - D step: non-saturating binary cross-entropy, real target ``1 - label_smoothing``
     (one-sided label smoothing, Salimans et al. 2016), plus ``gp_weight`` times an R1
     gradient penalty ``E ||grad_x D(real)||^2 / 2`` (Mescheder et al. 2018) for stability.
   - Branch + generator step:
     ``align_weight * (MSE(f_a(audio), a) + MSE(f_s(sheet), s) + MSE(f_l(lyrics), t))``
     ``+ adv_weight * BCE(D(c, G(c, z)), 1)`` (non-saturating generator loss)
     ``+ recon_weight * MSE(G(c, z), g)`` (a pix2pix-style reconstruction term that anchors G
     to the ground truth of its own lyric; without it a conditional GAN on ~5k items
     collapses easily)
     ``+ consistency_weight * MSE(f_l(lyrics), (a_hat + s_hat) / 2)`` (the lyric's own
     embedding agrees with the pair G generates for it; our choice).
   MSE is the mean over items and components.
6. *Retrieval*: cosine similarity between any two of the three ``k``-d embeddings.
7. *Score images* (our choice): the sheet view may be an image ``(n, C, H, W)`` (the
   engraving raster). Its branch is then a CNN tower (:mod:`.towers`; the rank picks it) fed
   with the raw pixels, and the ground-truth CCA, which needs flat features, is fitted on the
   image's fixed block-mean descriptor (:func:`crossmodal_core.features.image_descriptors.pixel_blocks`,
   the linear baseline's features), standardised. Only the branch sees pixels; only the
   targets see the descriptor.
8. *Ground-truth option* (our extension, ``ground_truth="three-view"``; the default
   ``"audio-sheet"`` is the paper's): the targets ``a_i``, ``s_i`` become the audio and sheet
   variates of a ridge MAXVAR generalised CCA of all three views (:func:`three_view_variates`).

Finding on the music21 lyrics dataset (5 work-grouped folds, ``assets/results/
music21_lyrics_alignment.json``): with the paper's audio-sheet ground truth UGAAR reaches
about CCA's sheet<->audio retrieval (its targets *are* that CCA) but is worse than CCA fitted
on each pair for the four lyrics directions (R@10 about 0.01 against 0.025; chance 0.006).
Reason, measured with a linear probe: the top audio-sheet canonical directions are almost
unpredictable from the lyric features (held-out R^2 0.11 for the first, <= 0.01 for the rest),
while CCA of lyrics and sheet finds directions with held-out correlation 0.76 and 0.50
(phrase length / syllable structure). The lyric branch can only regress onto targets that do
not contain what lyrics share with the music; the adversarial game cannot add it either. The
three-view ground truth puts those directions into the targets: lyrics R@10 about 0.03 (at or
above CCA-on-pairs, and stable on the large fold where CCA-on-pairs falls to chance), at the
cost of sheet<->audio (MRR 0.70 against 0.87).

Training: Adam for the branches + G and for D (``lr``, ``d_lr``; D with beta1 = 0.5),
``d_steps`` discriminator updates per branch/generator update, on mini-batches shuffled by
the shared loop :func:`crossmodal_core.models.deep.training.fit_loop` (seeded, deterministic
on CPU, tqdm bar, NaN/explosion guard, callback, early stopping with best-epoch restore). A
validation split (``validation=(views_val, y_val)``; labels are ignored) is scored every
epoch by instance-level MAP (= MRR, since each query has exactly one relevant item, its pair)
averaged over the six directions. The per-epoch ``loss`` is the branch + generator objective;
``alignment_loss``, ``d_loss``, ``g_adv_loss``, ``recon_loss`` and ``consistency_loss`` are
logged beside it. Checkpoints: :meth:`save` / :meth:`load` of the shared base class
(``state_dict`` + JSON config, atomic, ``weights_only=True``); the standardisation statistics
travel as arrays in the checkpoint.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from crossmodal_core.models.deep._base import (
    CheckpointError,
    FitInputs,
    TorchCrossModalEstimator,
    check_array_shape,
    check_positive_int,
    fit_input_standardizer,
    fit_standardizer,
    standardize,
    standardize_views,
)
from crossmodal_core.models.deep.losses import (
    alignment_loss,
    discriminator_loss,
    generator_adversarial_loss,
    r1_penalty,
)
from crossmodal_core.models.deep.miners import derangement
from crossmodal_core.models.deep.towers import make_tower, make_towers
from crossmodal_core.models.deep.training import TrainingDivergedError, seeded, validation_map

__all__ = [
    "UGAAR",
    "UGAARNetwork",
    "VIEW_NAMES",
    "three_view_variates",
    "GROUND_TRUTHS",
]

#: order of the views UGAAR takes and returns
VIEW_NAMES = ("sheet", "lyrics", "audio")
#: accepted values of ``UGAAR(ground_truth=...)``
GROUND_TRUTHS = ("audio-sheet", "three-view")


def three_view_variates(views: Sequence[np.ndarray], n_components: int, reg: float = 1e-3) -> list[np.ndarray]:
    """Per-view variates of a ridge MAXVAR generalised CCA (Kettenring 1971; Carroll 1968).

    Each centred view ``X_j`` ``(n, d_j)`` has ``C_j = X_jᵀX_j / n + r_j I`` with
    ``r_j = reg · mean(diag(X_jᵀX_j / n))``. The shared variates ``G`` ``(n, k)`` are the top ``k``
    left singular vectors of ``[X_1 C_1^{-1/2}, X_2 C_2^{-1/2}, ...]`` scaled to unit variance
    (they maximise the summed squared correlation with every view); each view's variates are its
    ridge regression onto ``G``: ``T_j = X_j C_j^{-1} X_jᵀ G / n``.

    Returns
    -------
    list of ``(n, k)`` float64 arrays ``T_j``, one per view
    """
    xs = [np.asarray(v, dtype=np.float64) for v in views]
    xs = [x - x.mean(axis=0) for x in xs]
    n = xs[0].shape[0]
    if n_components > min(n - 1, sum(x.shape[1] for x in xs)):
        raise ValueError(f"n_components={n_components} is too large for {n} items")
    covs = []
    for x in xs:
        c = x.T @ x / n
        c[np.diag_indices_from(c)] += reg * max(float(np.mean(np.diag(c))), 1e-12)
        covs.append(c)
    whitened = []
    for x, c in zip(xs, covs):
        w, v = np.linalg.eigh(c)
        whitened.append(x @ ((v / np.sqrt(np.maximum(w, 1e-12))) @ v.T))
    u, _, _ = np.linalg.svd(np.hstack(whitened), full_matrices=False)
    g = u[:, :n_components] * np.sqrt(n)
    # sign convention: the largest-|.| entry of each shared variate is positive (deterministic)
    g *= np.sign(g[np.argmax(np.abs(g), axis=0), np.arange(n_components)])
    return [x @ np.linalg.solve(c, x.T @ g / n) for x, c in zip(xs, covs)]


def _image_descriptor(images: np.ndarray) -> np.ndarray:
    """The fixed flat descriptor of an image sheet view for the ground-truth CCA (``(n, d)``)."""
    from crossmodal_core.features.image_descriptors import pixel_blocks

    return pixel_blocks(images)


def fit_standardizer_apply(x: np.ndarray) -> np.ndarray:
    """``x`` standardised with its own per-feature statistics (float32)."""
    (m,), (s,) = fit_standardizer([x])
    return standardize(x, m, s)


# ----------------------------------------------------------------------------- network
class UGAARNetwork(nn.Module):
    """Three branches, a lyric-conditioned pair generator and a conditional pair discriminator.

    Shapes: branch ``name`` maps ``(batch, in_dims[name]) -> (batch, k)``; ``generate``
    maps ``(batch, k)`` lyric embeddings and ``(batch, noise_dim)`` noise to ``(batch, 2k)``
    pairs ``[audio, sheet]``; ``discriminate`` maps a ``(batch, k)`` condition and
    ``(batch, 2k)`` pairs to ``(batch,)`` logits.
    """

    def __init__(self, in_dims: dict[str, int], n_components: int, hidden_dims: Sequence[int],
                 noise_dim: int, generator_hidden: Sequence[int], discriminator_hidden: Sequence[int],
                 dropout: float, activation: str = "relu") -> None:
        super().__init__()
        k = int(n_components)
        self.n_components = k
        self.noise_dim = int(noise_dim)
        self.branches = make_towers({name: in_dims[name] for name in VIEW_NAMES}, hidden=hidden_dims,
                                    out_features=k, activation=activation, dropout=dropout)
        # G and D use leaky ReLU and no dropout: the usual GAN practice (sparse gradients and
        # train/eval mismatch destabilise the game).
        self.generator = make_tower(k + self.noise_dim, generator_hidden, 2 * k, activation="leaky_relu")
        self.discriminator = make_tower(3 * k, discriminator_hidden, 1, activation="leaky_relu")

    def embed(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return self.branches[name](x)

    def generate(self, lyric_embedding: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.generator(torch.cat([lyric_embedding, noise], dim=1))

    def discriminate(self, condition: torch.Tensor, pair: torch.Tensor) -> torch.Tensor:
        return self.discriminator(torch.cat([condition, pair], dim=1)).squeeze(1)


# ----------------------------------------------------------------------------- estimator
class UGAAR(TorchCrossModalEstimator):
    """Unsupervised generative adversarial alignment representation (sheet, lyrics, audio).

    See the module docstring for the model and for which parts come from the paper.

    Parameters
    ----------
    n_components : int
        ``k``: dimension of the shared subspace = number of audio-sheet CCA components.
    hidden_dims : sequence of int
        Hidden widths of each branch tower.
    noise_dim : int
        Dimension of the generator's Gaussian noise ``z``.
    generator_hidden, discriminator_hidden : sequence of int
        Hidden widths of G and D.
    activation : str
        Branch activation (see :data:`~crossmodal_core.models.deep.towers.ACTIVATIONS`).
    dropout : float in [0, 1)
        Dropout in the branches.
    cca_reg : float >= 0
        Ridge of the ground-truth CCA (on standardised views; scaled by the mean feature variance).
    ground_truth : {"audio-sheet", "three-view"}
        ``"audio-sheet"`` (the paper): two-view CCA of audio and sheet. ``"three-view"`` (our
        extension, see the module docstring): the per-view variates of a MAXVAR generalised CCA
        of all three views, so directions lyrics share with the music can enter the targets.
    align_weight, adv_weight, recon_weight, consistency_weight : float >= 0
        Weights of the branch/generator loss terms (module docstring, step 5).
    mismatch_weight : float >= 0
        Weight of mismatched real pairs as extra fakes for D (0 turns the matching-aware
        discriminator off).
    gp_weight : float >= 0
        R1 gradient penalty weight on D's real inputs.
    label_smoothing : float in [0, 0.5)
        One-sided smoothing of D's real target.
    d_steps : int >= 1
        Discriminator updates per branch/generator update.
    epochs, batch_size, lr : training schedule (Adam).
    d_lr : float or None
        Discriminator learning rate (``None``: ``lr``).
    weight_decay : float >= 0
        Adam weight decay of the branches and G.
    patience : int or None
        Early stopping after this many epochs without validation improvement (only with
        ``validation``); ``None`` trains all epochs.
    random_state : int or None
        Seed of initialisation, noise, mini-batch order and dropout.
    device : "cpu", "cuda", "cuda:N" or "auto"
        ``"auto"`` (default): a CUDA GPU when present, else the CPU.
    progress : bool
        Show a tqdm progress bar.

    Attributes
    ----------
    module_ : UGAARNetwork
    n_features_in_ : list of int, input dims of ``[sheet, lyrics, audio]``
    means_, scales_ : lists of ``(d_i,)`` standardisation statistics
    canonical_correlations_ : ``(k,)`` train correlations of the ground-truth audio-sheet CCA
    history_ : list of dict per epoch (``epoch, loss, alignment_loss, d_loss, g_adv_loss,
        recon_loss, val_map, ...``)
    best_epoch_ : epoch restored by early stopping (``None`` without validation)
    """

    n_views = 3
    accepts_images = True  # image views get CNN towers (towers.make_tower picks by rank)
    requires_labels = False

    def __init__(self, n_components: int = 10, hidden_dims: Sequence[int] = (256, 256), noise_dim: int = 8,
                 generator_hidden: Sequence[int] = (128, 128), discriminator_hidden: Sequence[int] = (128, 128),
                 activation: str = "relu", dropout: float = 0.1, cca_reg: float = 1e-3,
                 ground_truth: str = "audio-sheet",
                 align_weight: float = 1.0, adv_weight: float = 0.1, recon_weight: float = 1.0,
                 consistency_weight: float = 0.5, mismatch_weight: float = 1.0, gp_weight: float = 1.0,
                 label_smoothing: float = 0.1, d_steps: int = 1, epochs: int = 60, batch_size: int = 128,
                 lr: float = 1e-3, d_lr: float | None = None, weight_decay: float = 1e-5,
                 patience: int | None = 10, random_state: int | None = 0, device: str = "auto",
                 progress: bool = True):
        self.n_components = n_components
        self.hidden_dims = hidden_dims
        self.noise_dim = noise_dim
        self.generator_hidden = generator_hidden
        self.discriminator_hidden = discriminator_hidden
        self.activation = activation
        self.dropout = dropout
        self.cca_reg = cca_reg
        self.ground_truth = ground_truth
        self.align_weight = align_weight
        self.adv_weight = adv_weight
        self.recon_weight = recon_weight
        self.consistency_weight = consistency_weight
        self.mismatch_weight = mismatch_weight
        self.gp_weight = gp_weight
        self.label_smoothing = label_smoothing
        self.d_steps = d_steps
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.d_lr = d_lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.progress = progress

    # ------------------------------------------------------------------ parameters
    def _check_params(self) -> None:
        for name in ("n_components", "noise_dim", "d_steps", "epochs", "batch_size"):
            check_positive_int(name, getattr(self, name), strict=True)
        if self.batch_size < 2:
            raise ValueError("batch_size must be at least 2 (the discriminator pairs items within a batch)")
        for name in ("cca_reg", "align_weight", "adv_weight", "recon_weight", "consistency_weight",
                     "mismatch_weight", "gp_weight", "weight_decay"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        for name in ("lr", "d_lr"):
            v = getattr(self, name)
            if v is None and name == "d_lr":
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        if not 0.0 <= self.label_smoothing < 0.5:
            raise ValueError(f"label_smoothing must be in [0, 0.5), got {self.label_smoothing!r}")
        if self.ground_truth not in GROUND_TRUTHS:
            raise ValueError(f"ground_truth must be one of {GROUND_TRUTHS}, got {self.ground_truth!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.patience is not None and (isinstance(self.patience, bool) or int(self.patience) != self.patience
                                          or self.patience < 1):
            raise ValueError(f"patience must be a positive integer or None, got {self.patience!r}")

    # ------------------------------------------------------------------ hooks of the base class
    def _build_module(self) -> UGAARNetwork:
        return UGAARNetwork(dict(zip(VIEW_NAMES, self.n_features_in_)), int(self.n_components), self.hidden_dims,
                            int(self.noise_dim), self.generator_hidden, self.discriminator_hidden,
                            float(self.dropout), self.activation)

    def _standardise(self, views: Sequence[np.ndarray]) -> list[np.ndarray]:
        return standardize_views(views, self.means_, self.scales_)

    def _transform_arrays(self, views: list[np.ndarray]) -> list[np.ndarray]:
        return self._run_towers(self.module_.branches, self._standardise(views))

    def _numpy_state(self) -> dict[str, np.ndarray]:
        # an image sheet view has no statistics here: its CNN tower scales it (buffers in the state_dict)
        state = {f"{kind}_{name}": np.asarray(arr, dtype=np.float64)
                 for kind, arrays in (("mean", self.means_), ("scale", self.scales_))
                 for name, arr in zip(VIEW_NAMES, arrays) if arr is not None}
        state["canonical_correlations"] = np.asarray(self.canonical_correlations_, dtype=np.float64)
        return state

    def _set_numpy_state(self, arrays: dict[str, np.ndarray]) -> None:
        d = dict(zip(VIEW_NAMES, self.n_features_in_))
        flat = [n for n in VIEW_NAMES if not isinstance(d[n], tuple)]
        expected = {f"{kind}_{name}" for kind in ("mean", "scale") for name in flat} | {"canonical_correlations"}
        if set(arrays) != expected:
            raise CheckpointError(f"UGAAR checkpoint arrays {sorted(arrays)} differ from the expected {sorted(expected)}")
        self.means_ = [check_array_shape(arrays, f"mean_{n}", (d[n],)) if n in flat else None for n in VIEW_NAMES]
        self.scales_ = [check_array_shape(arrays, f"scale_{n}", (d[n],)) if n in flat else None for n in VIEW_NAMES]
        self.canonical_correlations_ = check_array_shape(arrays, "canonical_correlations", (int(self.n_components),))

    def _make_validate(self, inputs: FitInputs) -> Callable[[], tuple[float, float]] | None:
        """Instance-level validation MAP (= MRR: one relevant item per query), as
        (mean of sheet->lyrics, sheet->audio, lyrics->audio; mean of the three reverse directions);
        the loop's ``val_map`` is their mean, i.e. the mean over all six directions."""
        if inputs.val_views is None:
            return None
        ids = np.arange(inputs.val_views[0].shape[0])

        def validate() -> tuple[float, float]:
            z = self._transform_arrays(inputs.val_views)
            pairs = [validation_map(z[i], z[j], ids) for i, j in ((0, 1), (0, 2), (1, 2))]
            return float(np.mean([p[0] for p in pairs])), float(np.mean([p[1] for p in pairs]))

        return validate

    # ------------------------------------------------------------------ fit
    def fit(self, views: Sequence[np.ndarray], y: np.ndarray | None = None,
            validation: tuple[Sequence[np.ndarray], Any] | None = None,
            callback: Callable[[dict], Any] | None = None) -> "UGAAR":
        """Train on paired ``views = [sheet, lyrics, audio]`` (``(n, d_i)`` each); ``y`` is ignored.

        ``validation = (views_val, y_val)`` (``y_val`` ignored: validation is instance level)
        enables per-epoch validation MAP and early stopping. ``callback`` receives
        ``dict(epoch, n_epochs, loss, val_map, alignment_loss, d_loss, g_adv_loss, ...)`` after
        every epoch; returning ``False`` stops training.
        """
        from crossmodal_core.models.linear import CCA

        self._check_params()
        if isinstance(validation, (tuple, list)) and len(validation) == 2:
            validation = (validation[0], None)  # labels play no part: validation is instance level
        inputs = self._prepare_fit(views, None, validation)
        views = inputs.views
        n = views[0].shape[0]
        k = int(self.n_components)
        if views[1].ndim != 2 or views[2].ndim != 2:
            raise ValueError("UGAAR takes an image only as its sheet view; lyrics and audio must be flat (n, d)")
        # the ground truth needs flat sheet features: an image's fixed descriptor (module docstring, 7)
        sheet_gt_input = views[0] if views[0].ndim == 2 else _image_descriptor(views[0])
        dims = [sheet_gt_input.shape[1], views[1].shape[1], views[2].shape[1]]
        if n < 4:
            raise ValueError(f"UGAAR needs at least 4 paired items, got {n}")
        if k > min(dims[0], dims[2]):
            raise ValueError(f"n_components={k} exceeds the sheet ({dims[0]}) or audio ({dims[2]}) feature dimension")
        if k >= n:
            raise ValueError(f"n_components={k} must be smaller than the number of items ({n})")
        self._begin_fit(inputs, forget=("module_", "history_"))
        # a constant feature gets scale 1 so it stays 0 instead of becoming inf/NaN
        self.means_, self.scales_ = fit_input_standardizer(views)
        sheet, lyrics, audio = self._standardise(views)
        gt_sheet_x = sheet if views[0].ndim == 2 else fit_standardizer_apply(sheet_gt_input)

        # ground truth: per-view canonical variates of audio and sheet, unit variance per component
        if self.ground_truth == "audio-sheet":
            cca = CCA(n_components=k, reg=float(self.cca_reg)).fit([audio.astype(np.float64),
                                                                   gt_sheet_x.astype(np.float64)])
            gt_audio, gt_sheet = (np.asarray(z, dtype=np.float64) for z in cca.transform([audio, gt_sheet_x]))
        else:
            gt_sheet, _, gt_audio = three_view_variates([gt_sheet_x, lyrics, audio], k, float(self.cca_reg))
        gt_audio = gt_audio / np.maximum(gt_audio.std(axis=0), 1e-12)
        gt_sheet = gt_sheet / np.maximum(gt_sheet.std(axis=0), 1e-12)
        self.canonical_correlations_ = (gt_audio - gt_audio.mean(0)).T.dot(gt_sheet - gt_sheet.mean(0)).diagonal() / n

        device = inputs.device
        to_t = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32, device=device)  # noqa: E731
        x_sheet, x_lyrics, x_audio = to_t(sheet), to_t(lyrics), to_t(audio)
        t_audio, t_sheet = to_t(gt_audio), to_t(gt_sheet)
        t_pair = torch.cat([t_audio, t_sheet], dim=1)
        t_mid = (t_audio + t_sheet) / 2
        weights = dict(align=float(self.align_weight), adv=float(self.adv_weight), recon=float(self.recon_weight),
                       cons=float(self.consistency_weight), mis=float(self.mismatch_weight),
                       gp=float(self.gp_weight), smooth=float(self.label_smoothing))

        with seeded(inputs.seed, device) as gen:
            net = self._build_module().to(device)
            self.module_ = net
            opt_g = torch.optim.Adam(list(net.branches.parameters()) + list(net.generator.parameters()),
                                     lr=float(self.lr), weight_decay=float(self.weight_decay))
            # beta1 = 0.5 for the discriminator, the usual GAN setting (Radford et al. 2016)
            opt_d = torch.optim.Adam(net.discriminator.parameters(), lr=float(self.d_lr or self.lr),
                                     betas=(0.5, 0.999))
            noise_dim = int(self.noise_dim)

            def noise(b: int) -> torch.Tensor:
                return torch.randn(b, noise_dim, generator=gen).to(device)

            def step(idx: torch.Tensor) -> dict[str, Any]:
                idx = idx.to(device)
                b = idx.numel()
                xs, xl, xa, g_real = x_sheet[idx], x_lyrics[idx], x_audio[idx], t_pair[idx]

                # discriminator: real (c_i, g_i) vs generated (c_i, G(c_i, z)) and mismatched (c_i, g_pi(i))
                net.discriminator.requires_grad_(True)
                for _ in range(int(self.d_steps)):
                    with torch.no_grad():
                        cond = net.embed("lyrics", xl)
                        fake = net.generate(cond, noise(b))
                    real = g_real.clone().requires_grad_(weights["gp"] > 0)
                    real_logits = net.discriminate(cond, real)
                    fakes, fake_w = [net.discriminate(cond, fake)], [1.0]
                    if weights["mis"] > 0:
                        fakes.append(net.discriminate(cond, g_real[derangement(b, gen).to(device)]))
                        fake_w.append(weights["mis"])
                    d_loss = discriminator_loss(real_logits, fakes, fake_w, weights["smooth"])
                    if weights["gp"] > 0:
                        d_loss = d_loss + weights["gp"] * r1_penalty(real_logits, real)
                    if not torch.isfinite(d_loss):
                        raise TrainingDivergedError(f"UGAAR discriminator loss became {float(d_loss)}; "
                                                    "lower lr / d_lr or raise gp_weight", value=float(d_loss))
                    opt_d.zero_grad(set_to_none=True)
                    d_loss.backward()
                    opt_d.step()

                # branches + generator
                net.discriminator.requires_grad_(False)
                z_s, z_l, z_a = net.embed("sheet", xs), net.embed("lyrics", xl), net.embed("audio", xa)
                align = alignment_loss([z_a, z_s, z_l], [t_audio[idx], t_sheet[idx], t_mid[idx]])
                pair = net.generate(z_l, noise(b))
                g_adv = generator_adversarial_loss(net.discriminate(z_l, pair))
                recon = F.mse_loss(pair, g_real)
                cons = F.mse_loss(z_l, (pair[:, :k] + pair[:, k:]) / 2)
                loss = (weights["align"] * align + weights["adv"] * g_adv + weights["recon"] * recon
                        + weights["cons"] * cons)
                opt_g.zero_grad(set_to_none=True)
                loss.backward()
                opt_g.step()
                net.discriminator.requires_grad_(True)
                return {"loss": loss.detach(), "alignment_loss": align.detach(), "d_loss": d_loss.detach(),
                        "g_adv_loss": g_adv.detach(), "recon_loss": recon.detach(), "consistency_loss": cons.detach()}

            try:
                self._train(net, step, n, None, gen, inputs, callback, desc="UGAAR",
                            batch_size=min(int(self.batch_size), n))
            finally:
                net.discriminator.requires_grad_(True)
        return self

    # ------------------------------------------------------------------ extras
    def generate_pairs(self, lyrics: np.ndarray, n_samples: int = 1, random_state: int = 0) -> np.ndarray:
        """Pairs the generator produces for fixed lyrics.

        Parameters
        ----------
        lyrics : (n, d_lyrics) array
        n_samples : int, noise draws per lyric
        random_state : int, seed of the noise

        Returns
        -------
        (n, n_samples, 2, k) array: ``[..., 0, :]`` the audio side, ``[..., 1, :]`` the sheet side,
        in the unit-variance ground-truth CCA scale.
        """
        self._check_fitted("module_")
        (lyr,) = self._check_transform_views([lyrics], [self.n_features_in_[1]])
        if int(n_samples) != n_samples or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
        net = self.module_
        k = int(self.n_components)
        cond = torch.as_tensor(self._run(net.branches["lyrics"], standardize(lyr, self.means_[1], self.scales_[1])))
        g = torch.Generator().manual_seed(int(random_state))
        net.eval()
        with torch.no_grad():
            out = [net.generate(cond.to(self.device_), torch.randn(len(lyr), net.noise_dim, generator=g).to(self.device_))
                   for _ in range(int(n_samples))]
        return torch.stack(out, dim=1).reshape(len(lyr), int(n_samples), 2, k).cpu().numpy().astype(np.float64)
