"""Cross-modal hashing: UGACH (unsupervised, GAN) and AGAH (supervised, attention + WGAN-GP).

Both emit ``bits``-bit codes (16 / 32 / 64 / 128 in the papers). :meth:`transform` returns the
**relaxed** codes in ``(-1, 1)``; :meth:`codes` returns the binary ``±1`` codes
(``sign``, 0 → +1). The two retrieval modes are

- Hamming ranking of the binary codes: ``metric="hamming"`` anywhere in
  :mod:`crossmodal_core.scoring` / :mod:`~crossmodal_core.retrieval` /
  :mod:`~crossmodal_core.metrics` (it binarises by sign itself, so it takes the relaxed
  codes); this is how both papers report MAP;
- cosine on the relaxed codes (the default metric).

:func:`crossmodal_core.evaluate.evaluate` reports both for these models
(``retrieval_metrics``: ``map`` / ``mrr1`` by cosine and ``map_hamming`` / ``mrr1_hamming``).

UGACH (Zhang, Peng, Yuan, AAAI 2018; ``PKU-ICST-MIPL/UGACH_AAAI2018``: ``train.py``,
``gen_model_nn.py``, ``dis_model_nn.py``)
----------------------------------------------------------------------------------------
- A generator G and a discriminator D of the same form, per modality:
  ``input → hidden (tanh) → bits (sigmoid)``; codes ``s ∈ (0, 1)^bits``.
- A correlation graph built once without labels: the positives of item ``i`` are ``i``'s
  pair and its ``n_neighbors`` nearest neighbours in each modality (so each direction
  sees the union of both modalities' graphs).
- G, for a query of modality a, scores a random candidate pool of modality b (``1/50`` of the
  items, the reference's ``SAMPLERATIO``) by ``−‖s_a − s_b‖²``, samples ``n_select`` (2)
  candidates from the softmax, and is trained by REINFORCE with D's reward
  ``sigmoid(max(0, β + d_pos − d_neg))`` (:func:`~.hash_losses.ugach_reward`).
- D is trained on (query, graph positive, G's sample) triplets with the hinge
  ``max(0, β + d_pos − d_neg)`` (:func:`~.hash_losses.ugach_hinge`), ``β = bits / 8``,
  ``d`` the squared Euclidean distance of D's codes; D gives the retrieval codes (the
  reference keeps the best D by MAP).
- SGD: D lr 1e-3, G lr 1e-2 (× 0.9 every 20,000 G steps), weight decay 0.01; 30 rounds of
  one D pass and two G passes; D pretrained (here ``pretrain_epochs`` passes with uniformly
  random negatives: the reference loads a pretrained D from a script that is not released).

Departures: hidden width 512 instead of 8,192 (CPU cost; a 1024 → 8192 layer alone is
8.4 M weights); the reference updates on one query at a time, we take ``batch_size``
queries per step with the losses **summed** over the queries, i.e. about ``batch_size`` of
its steps at once; one D step then ``g_steps`` G steps per batch instead of whole passes;
the graph's neighbours are found on the standardised inputs projected on their top 64
principal components (a distance costs 64 instead of up to 1,024 multiply-adds; the
reference's graph construction is not released); G's samples are not re-drawn when they hit
a positive.

AGAH (Gu, Wang, Liu, et al., ICMR 2019; ``WendellGul/AGAH``: ``main.py``)
-------------------------------------------------------------------------
- Feature encoders per modality, ReLU MLPs ``d → hidden → emb_dim`` (reference text branch
  ``8192 → 4096 → 512``; the image branch is a pretrained CNN).
- Multi-label attention with the class feature map ``M`` (``C × emb_dim``, the per-class mean
  of both modalities' features over the last epoch, unit rows; random at the start):
  ``f' = (1 − m) f + m · a M`` with ``a = sigmoid(g · f̂ Mᵀ)`` (``m = 0.2``, ``g = 5``, ``f̂`` the
  unit-normalised feature). The released ``main.py`` calls the attention but its module is
  not released; this form is our reading of the paper's description.
- A tanh hash head ``emb_dim → bits`` and a sigmoid classifier ``emb_dim → C`` on ``f'``.
- One WGAN-GP critic per modality (``emb → emb → 256 → 1``, ReLU, penalty 10) telling the
  features of its modality (real) from the other's (fake); the encoders are trained to fool
  them.
- Loss (weights as released: all 1 except the code map's 0.001):
  cosine triplet-all (margin 0.3) both ways + balance (:func:`~.hash_losses.agah_balance_loss`)
  + class BCE + 0.001 · code-map fit (:func:`~.hash_losses.code_map_loss`; the class codes
  ``M_code`` re-solved bit by bit after each epoch, ``update_code_map``) + quantisation
  + adversarial.
- Adamax (networks lr ``10 · 1e-4``, the reference's rate for modules trained from scratch,
  weight decay 5e-4; critics lr 1e-3, betas (0.5, 0.9), weight decay 1e-4), batch 128,
  lr × 0.6 at epoch 0 and every ``lr_step`` epochs (reference: 300 epochs, step 100).

Departures: ``hidden=(1024,)`` instead of 4,096 and 50 epochs with ``lr_step`` 16 instead of
300 / 100 (CPU cost: see ``benchmarks/bench_deep.py``); no pretrained image network (our
inputs are features).

Inputs of both models are standardised per feature on the training rows.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from crossmodal_core.models.deep._base import (
    EncoderOutput,
    TorchCrossModalEstimator,
    check_array_shape,
    check_positive_int,
)
from crossmodal_core.models.deep.hash_losses import (
    agah_balance_loss,
    code_map_loss,
    cosine_triplet_all_loss,
    quantization_loss,
    ugach_hinge,
    ugach_reward,
    wgan_gradient_penalty,
)
from crossmodal_core.models.deep.towers import make_tower
from crossmodal_core.models.deep.training import minibatches, optimizer_step, seeded

__all__ = ["UGACH", "AGAH", "BITS", "binary_codes", "knn_graph", "update_code_map", "update_feature_map"]

#: code lengths of the papers
BITS = (16, 32, 64, 128)


def binary_codes(relaxed: np.ndarray) -> np.ndarray:
    """``±1`` int8 codes of relaxed codes ``(n, bits)``: ``sign``, with 0 mapped to +1."""
    return np.where(np.asarray(relaxed) >= 0, 1, -1).astype(np.int8)


def knn_graph(views: Sequence[np.ndarray], n_neighbors: int, n_pca: int = 64, seed: int = 0) -> np.ndarray:
    """UGACH's positives: ``(n, 1 + n_neighbors · len(views))`` item indices, column 0 the item
    itself, then its nearest neighbours (Euclidean, self excluded) in each view's top-``n_pca``
    principal components."""
    from sklearn.decomposition import PCA
    from sklearn.neighbors import NearestNeighbors

    n = views[0].shape[0]
    k = min(int(n_neighbors), n - 1)
    cols = [np.arange(n)[:, None]]
    for x in views:
        comps = min(n_pca, x.shape[1], n - 1)
        z = PCA(n_components=comps, random_state=seed).fit_transform(x) if comps < x.shape[1] else x
        if k < 1:
            continue
        _, idx = NearestNeighbors(n_neighbors=k + 1).fit(z).kneighbors(z)
        # drop the item itself (first column, up to exact duplicates)
        out = np.empty((n, k), dtype=np.int64)
        for i in range(n):
            row = idx[i][idx[i] != i]
            out[i] = row[:k]
        cols.append(out)
    return np.concatenate(cols, axis=1)


def update_code_map(u: torch.Tensor, v: torch.Tensor, code_map: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    """AGAH's discrete update of the class codes ``M`` ``(C, bits)`` from the epoch's codes
    ``u``, ``v`` ``(n, bits)`` and labels ``(n, C)``, one bit at a time (``update_code_map``)::

        Q = 2 bits (Lᵀ(U + V) + S M₀),  S = 2I − 1
        M[:, k] = sign(Q[:, k] − 2 (M[:, ¬k] U[:, ¬k]ᵀ U[:, k] + same with V + same with M))

    with ``U = sign(u)``, ``V = sign(v)`` and the columns of ``M`` updated in place in order.
    """
    bits = code_map.shape[1]
    u, v = _sign(u), _sign(v)
    m = code_map.clone()
    s = 2 * torch.eye(m.shape[0], dtype=m.dtype, device=m.device) - 1
    q = 2 * bits * (onehot.T @ (u + v) + s @ m)
    for k in range(bits):
        keep = torch.arange(bits, device=m.device) != k
        mk = m[:, keep]
        terms = mk @ (u[:, keep].T @ u[:, k]) + mk @ (v[:, keep].T @ v[:, k]) + mk @ (m[:, keep].T @ m[:, k])
        m[:, k] = _sign(q[:, k] - 2 * terms)
    return m


def update_feature_map(f0: torch.Tensor, f1: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    """AGAH's class feature map: per-class mean of each modality's features, averaged over
    the modalities, rows scaled to unit norm (``update_feature_map(mode='average')``)."""
    counts = onehot.sum(0).clamp(min=1).unsqueeze(1)
    fm = (onehot.T @ f0 / counts + onehot.T @ f1 / counts) / 2
    return F.normalize(fm, dim=1)


def _sign(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))


class _HashingEstimator(TorchCrossModalEstimator):
    """Shared parts: ``bits`` validation, binary codes, both retrieval metrics."""

    #: similarities :func:`crossmodal_core.evaluate.evaluate` reports for this model
    retrieval_metrics: ClassVar[tuple[str, ...]] = ("cosine", "hamming")

    def _check_bits(self) -> None:
        if self.bits not in BITS:
            raise ValueError(f"bits must be one of {BITS}, got {self.bits!r}")

    def codes(self, views: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Binary codes: list of ``(n_i, bits)`` int8 arrays of ``±1``."""
        return [binary_codes(z) for z in self.transform(views)]


# ============================================================================== UGACH
class UGACHNetwork(nn.Module):
    """G and D, one ``d_i → hidden (tanh) → bits (sigmoid)`` tower per modality each."""

    def __init__(self, in_dims: Sequence[int], hidden: int, bits: int):
        super().__init__()

        def towers() -> nn.ModuleDict:
            return nn.ModuleDict({f"view{i}": make_tower(int(d), (int(hidden),), int(bits), activation="tanh",
                                                         output_activation="sigmoid")
                                  for i, d in enumerate(in_dims)})

        self.generator = towers()
        self.discriminator = towers()


class UGACH(_HashingEstimator):
    """Unsupervised generative adversarial cross-modal hashing (module docstring).

    Parameters
    ----------
    bits : {16, 32, 64, 128}
    hidden : int
        Hidden width of every G / D tower (512; reference 8,192).
    n_neighbors : int
        Graph neighbours per modality (5).
    n_select : int
        Candidates G samples per query (2, the reference's ``SELECTNUM``).
    pool_ratio : int
        Candidate pool = ``n / pool_ratio`` items (at least 32; reference 50).
    beta : float or None
        Hinge margin (``None``: ``bits / 8``).
    g_steps : int
        G updates per D update (2).
    pretrain_epochs : int
        D passes with random negatives before the game (1).
    epochs, batch_size : rounds (30) and queries per step (64)
    d_lr, g_lr, weight_decay, g_lr_decay, g_lr_every : SGD settings (1e-3, 1e-2, 0.01, 0.9, 20000)
    patience, random_state, device, progress : as for every deep model

    Attributes
    ----------
    module_ : :class:`UGACHNetwork`; retrieval uses ``module_.discriminator``
    input_means_, input_scales_, history_ (``loss`` = D hinge, ``g_loss``, ``reward``), best_epoch_
    """

    requires_labels = False

    def __init__(self, bits: int = 64, hidden: int = 512, n_neighbors: int = 5, n_select: int = 2,
                 pool_ratio: int = 50, beta: float | None = None, g_steps: int = 2, pretrain_epochs: int = 1,
                 epochs: int = 30, batch_size: int = 64, d_lr: float = 1e-3, g_lr: float = 1e-2,
                 weight_decay: float = 0.01, g_lr_decay: float = 0.9, g_lr_every: int = 20000,
                 patience: int | None = None, random_state: int | None = 0, device: str = "cpu",
                 progress: bool = True):
        self.bits = bits
        self.hidden = hidden
        self.n_neighbors = n_neighbors
        self.n_select = n_select
        self.pool_ratio = pool_ratio
        self.beta = beta
        self.g_steps = g_steps
        self.pretrain_epochs = pretrain_epochs
        self.epochs = epochs
        self.batch_size = batch_size
        self.d_lr = d_lr
        self.g_lr = g_lr
        self.weight_decay = weight_decay
        self.g_lr_decay = g_lr_decay
        self.g_lr_every = g_lr_every
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.progress = progress

    def _check_params(self) -> None:
        self._check_bits()
        for name in ("hidden", "n_neighbors", "n_select", "pool_ratio", "g_steps", "g_lr_every"):
            check_positive_int(name, getattr(self, name))
        if int(self.pretrain_epochs) != self.pretrain_epochs or self.pretrain_epochs < 0:
            raise ValueError(f"pretrain_epochs must be an integer >= 0, got {self.pretrain_epochs!r}")
        if self.d_lr <= 0 or self.g_lr <= 0 or self.weight_decay < 0:
            raise ValueError("d_lr and g_lr must be > 0 and weight_decay >= 0")

    def _build_module(self) -> nn.Module:
        return UGACHNetwork(self.n_features_in_, self.hidden, self.bits)

    def _transform_arrays(self, views: list[np.ndarray]) -> list[np.ndarray]:
        return [2.0 * s - 1.0 for s in self._run_towers(self.module_.discriminator, self._scaled_inputs(views))]

    def fit(self, views: Sequence[np.ndarray], y: np.ndarray | None = None, validation: tuple | None = None,
            callback: Callable[[dict[str, Any]], Any] | None = None) -> "UGACH":
        """Build the graph, pretrain D, then play the game (``y`` is ignored: unsupervised).

        Parameters
        ----------
        views : [view0 (n, d0), view1 (n, d1)] row-paired flat features
        validation : ``(views_val, y_val)`` held-out training rows (MAP by cosine on D's relaxed
            codes selects the best round), or None
        """
        self._check_params()
        inputs = self._prepare_fit(views, None, validation)
        self._begin_fit(inputs)
        scaled = self._fit_input_scaling(inputs.views)
        graph = torch.as_tensor(knn_graph(scaled, self.n_neighbors, seed=inputs.seed), device=inputs.device)
        xs = [torch.as_tensor(x, device=inputs.device) for x in scaled]
        n = xs[0].shape[0]
        beta = float(self.bits) / 8.0 if self.beta is None else float(self.beta)
        pool_size = min(n, max(32, n // int(self.pool_ratio)))
        bs = min(int(self.batch_size), n)
        with seeded(inputs.seed, inputs.device) as generator:
            module = self._build_module().to(inputs.device)
            self.module_ = module
            gen, dis = module.generator, module.discriminator
            d_opt = torch.optim.SGD(dis.parameters(), lr=self.d_lr, weight_decay=self.weight_decay)
            g_opt = torch.optim.SGD(gen.parameters(), lr=self.g_lr, weight_decay=self.weight_decay)
            g_count = [0]

            def draw(size: int, high: int) -> torch.Tensor:
                return torch.randint(high, (size,), generator=generator).to(inputs.device)

            def triplet_parts(a: int, idx: torch.Tensor):
                b = 1 - a
                pos = graph[idx, draw(idx.shape[0], graph.shape[1])]
                pool = draw(pool_size, n)
                return xs[a][idx], xs[b][pos], pool, b

            def d_step(q, xpos, xneg) -> torch.Tensor:
                b_dq = dis_q(q)
                d_pos = (b_dq - dis_c(xpos)).pow(2).sum(1, keepdim=True)
                d_neg = (b_dq.unsqueeze(1) - dis_c(xneg.flatten(0, 1)).view(*xneg.shape[:2], -1)).pow(2).sum(2)
                return d_pos, d_neg

            def sample_negatives(a: int, b: int, q, pool, with_grad: bool):
                with torch.set_grad_enabled(with_grad):
                    gq = gen[f"view{a}"](q)
                    gc = gen[f"view{b}"](xs[b][pool])
                    logits = -torch.cdist(gq, gc).pow(2)
                    logp = F.log_softmax(logits, dim=1)
                pick = torch.multinomial(logp.detach().exp(), int(self.n_select), replacement=True,
                                         generator=generator)
                return pick, logp

            dis_q = dis_c = None

            def one_direction(a: int, idx: torch.Tensor, random_negatives: bool) -> dict[str, float]:
                nonlocal dis_q, dis_c
                q, xpos, pool, b = triplet_parts(a, idx)
                dis_q, dis_c = dis[f"view{a}"], dis[f"view{b}"]
                if random_negatives:
                    pick = torch.randint(pool.shape[0], (idx.shape[0], int(self.n_select)),
                                         generator=generator).to(inputs.device)
                else:
                    pick, _ = sample_negatives(a, b, q, pool, with_grad=False)
                xneg = xs[b][pool[pick]]
                d_pos, d_neg = d_step(q, xpos, xneg)
                # per query: mean over its samples; summed over the queries (see the docstring)
                d_loss = F.relu(beta + d_pos - d_neg).mean(1).sum()
                optimizer_step(d_opt, d_loss)
                out = {"d": float(d_loss.detach()) / idx.shape[0], "g": 0.0, "reward": 0.0}
                if random_negatives:
                    return out
                for _ in range(int(self.g_steps)):
                    pick, logp = sample_negatives(a, b, q, pool, with_grad=True)
                    with torch.no_grad():
                        d_pos, d_neg = d_step(q, xpos, xs[b][pool[pick]])
                        reward = ugach_reward(d_pos, d_neg, beta)
                    g_loss = -(logp.gather(1, pick) * reward).mean(1).sum()
                    optimizer_step(g_opt, g_loss)
                    g_count[0] += 1
                    if g_count[0] % int(self.g_lr_every) == 0:
                        for group in g_opt.param_groups:
                            group["lr"] *= self.g_lr_decay
                    out["g"] += float(g_loss.detach()) / idx.shape[0] / int(self.g_steps)
                    out["reward"] += float(reward.mean()) / int(self.g_steps)
                return out

            for _ in range(int(self.pretrain_epochs)):
                for idx in minibatches(n, bs, generator):
                    for a in (0, 1):
                        one_direction(a, idx.to(inputs.device), random_negatives=True)

            def step(idx: torch.Tensor) -> dict[str, float]:
                idx = idx.to(inputs.device)
                r0, r1 = one_direction(0, idx, False), one_direction(1, idx, False)
                return {"loss": (r0["d"] + r1["d"]) / 2, "g_loss": (r0["g"] + r1["g"]) / 2,
                        "reward": (r0["reward"] + r1["reward"]) / 2}

            self._train(module, step, n, None, generator, inputs, callback, desc="UGACH", batch_size=bs)
        return self

    def _numpy_state(self) -> dict[str, np.ndarray]:
        return self._input_scaling_state()

    def _set_numpy_state(self, arrays: dict[str, np.ndarray]) -> None:
        self._set_input_scaling_state(arrays)
        self._reject_unexpected_arrays(arrays)


# ============================================================================== AGAH
class AGAHNetwork(nn.Module):
    """Encoders, attention, hash head, classifier and one critic per modality."""

    def __init__(self, in_dims: Sequence[int], hidden: Sequence[int], emb_dim: int, bits: int, n_classes: int,
                 attention_mix: float, attention_gain: float):
        super().__init__()
        e = int(emb_dim)
        self.encoders = nn.ModuleDict({f"view{i}": make_tower(int(d), hidden, e, activation="relu",
                                                              output_activation="relu")
                                       for i, d in enumerate(in_dims)})
        self.hash_head = nn.Sequential(nn.Linear(e, int(bits)), nn.Tanh())
        self.classifier = nn.Sequential(nn.Linear(e, int(n_classes)), nn.Sigmoid())
        self.critics = nn.ModuleDict({f"view{i}": make_tower(e, (e, 256), 1, activation="relu")
                                      for i in range(len(in_dims))})
        self.attention_mix = float(attention_mix)
        self.attention_gain = float(attention_gain)
        # the class feature map M (C, emb); a buffer so checkpoints carry it
        self.register_buffer("feature_map", torch.randn(int(n_classes), e))

    def attend(self, f: torch.Tensor) -> torch.Tensor:
        a = torch.sigmoid(self.attention_gain * F.normalize(f, dim=1) @ self.feature_map.T)
        return (1 - self.attention_mix) * f + self.attention_mix * (a @ self.feature_map)

    def encode(self, view: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(f, h, class probabilities)`` of one modality's batch."""
        f = self.encoders[view](x)
        g = self.attend(f)
        return f, self.hash_head(g), self.classifier(g)


class AGAH(_HashingEstimator):
    """Adversarial-guided asymmetric hashing (module docstring).

    Parameters
    ----------
    bits : {16, 32, 64, 128} (64)
    hidden : tuple of int
        Encoder hidden widths ((1024,); reference 4,096).
    emb_dim : int
        Feature width (512).
    margin : triplet margin (0.3)
    balance_weight, class_weight, code_map_weight, quant_weight, adv_weight : loss weights
        (1, 1, 0.001, 1, 1)
    gp_weight : WGAN-GP penalty (10)
    attention_mix, attention_gain : ``m`` (0.2) and ``g`` (5) of the attention
    epochs, batch_size, lr, weight_decay : Adamax settings (50, 128, 1e-3, 5e-4)
    lr_decay, lr_step : lr × ``lr_decay`` at epoch 1 and every ``lr_step`` epochs
        (0.6; ``None``: ``max(1, epochs // 3)``)
    critic_lr : critics' Adamax lr (1e-3)
    patience, random_state, device, progress : as for every deep model

    Attributes
    ----------
    module_ : :class:`AGAHNetwork` (its ``feature_map`` buffer is the final class feature map)
    code_map_ : ``(C, bits)`` ±1 class codes
    n_classes_, input_means_, input_scales_, history_, best_epoch_
    """

    requires_labels = True

    def __init__(self, bits: int = 64, hidden: tuple[int, ...] = (1024,), emb_dim: int = 512, margin: float = 0.3,
                 balance_weight: float = 1.0, class_weight: float = 1.0, code_map_weight: float = 0.001,
                 quant_weight: float = 1.0, adv_weight: float = 1.0, gp_weight: float = 10.0,
                 attention_mix: float = 0.2, attention_gain: float = 5.0, epochs: int = 50, batch_size: int = 128,
                 lr: float = 1e-3, weight_decay: float = 5e-4, lr_decay: float = 0.6, lr_step: int | None = None,
                 critic_lr: float = 1e-3, patience: int | None = None, random_state: int | None = 0,
                 device: str = "cpu", progress: bool = True):
        self.bits = bits
        self.hidden = hidden
        self.emb_dim = emb_dim
        self.margin = margin
        self.balance_weight = balance_weight
        self.class_weight = class_weight
        self.code_map_weight = code_map_weight
        self.quant_weight = quant_weight
        self.adv_weight = adv_weight
        self.gp_weight = gp_weight
        self.attention_mix = attention_mix
        self.attention_gain = attention_gain
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.lr_decay = lr_decay
        self.lr_step = lr_step
        self.critic_lr = critic_lr
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.progress = progress

    def _check_params(self) -> None:
        self._check_bits()
        check_positive_int("emb_dim", self.emb_dim)
        weights = ("balance_weight", "class_weight", "code_map_weight", "quant_weight", "adv_weight", "gp_weight")
        for name in weights:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.attention_mix <= 1.0:
            raise ValueError(f"attention_mix must be in [0, 1], got {self.attention_mix}")
        if self.lr_step is not None:
            check_positive_int("lr_step", self.lr_step)

    def _build_module(self) -> nn.Module:
        return AGAHNetwork(self.n_features_in_, tuple(self.hidden), self.emb_dim, self.bits, self.n_classes_,
                           self.attention_mix, self.attention_gain)

    def _transform_arrays(self, views: list[np.ndarray]) -> list[np.ndarray]:
        scaled = self._scaled_inputs(views)
        # encode(view, x) = (f, h, class probabilities): the relaxed codes h
        return [self._run(EncoderOutput(self.module_, f"view{i}", 1), x) for i, x in enumerate(scaled)]

    def fit(self, views: Sequence[np.ndarray], y: np.ndarray | None = None, validation: tuple | None = None,
            callback: Callable[[dict[str, Any]], Any] | None = None) -> "AGAH":
        """Train encoders, heads and critics; re-solve the class code and feature maps each epoch.

        Parameters
        ----------
        views : [view0 (n, d0), view1 (n, d1)] row-paired flat features
        y : (n,) class labels (required)
        validation : ``(views_val, y_val)`` held-out training rows, or None
        callback : per-epoch callable
        """
        self._check_params()
        inputs = self._prepare_fit(views, y, validation)
        self._begin_fit(inputs, forget=("module_", "code_map_"))
        self.n_classes_ = int(inputs.y.max()) + 1
        x0, x1 = (torch.as_tensor(x, device=inputs.device) for x in self._fit_input_scaling(inputs.views))
        labels = torch.as_tensor(inputs.y, device=inputs.device)
        onehot = F.one_hot(labels, self.n_classes_).to(torch.float32)
        n, bits = x0.shape[0], int(self.bits)
        lr_step = int(self.lr_step) if self.lr_step is not None else max(1, int(self.epochs) // 3)
        with seeded(inputs.seed, inputs.device) as generator:
            module = self._build_module().to(inputs.device)
            self.module_ = module
            nets = [module.encoders, module.hash_head, module.classifier]
            opt = torch.optim.Adamax([p for m in nets for p in m.parameters()], lr=self.lr,
                                     weight_decay=self.weight_decay)
            critic_opt = torch.optim.Adamax(module.critics.parameters(), lr=self.critic_lr, betas=(0.5, 0.9),
                                            weight_decay=1e-4)
            code_map = _sign(torch.randn(self.n_classes_, bits, device=inputs.device))
            store = {"f0": torch.zeros(n, int(self.emb_dim), device=inputs.device),
                     "f1": torch.zeros(n, int(self.emb_dim), device=inputs.device),
                     "u": torch.zeros(n, bits, device=inputs.device), "v": torch.zeros(n, bits, device=inputs.device)}
            state = {"code_map": code_map}

            def batches(epoch: int):
                # the reference decays at epoch 0, 100, 200 (``epoch % 100 == 0`` after each epoch)
                if (epoch - 1) % lr_step == 0:
                    for group in opt.param_groups:
                        group["lr"] = max(group["lr"] * self.lr_decay, 1e-6)
                yield from minibatches(n, min(int(self.batch_size), n), generator)
                # end of the epoch (before validation): re-solve both maps from this epoch's codes
                with torch.no_grad():
                    state["code_map"] = update_code_map(store["u"], store["v"], state["code_map"], onehot)
                    module.feature_map.copy_(update_feature_map(store["f0"], store["f1"], onehot))

            c0, c1 = module.critics["view0"], module.critics["view1"]

            def step(idx: torch.Tensor) -> dict[str, float]:
                idx = idx.to(inputs.device)
                lab, oh = labels[idx], onehot[idx]
                f0, h0, p0 = module.encode("view0", x0[idx])
                f1, h1, p1 = module.encode("view1", x1[idx])
                store["f0"][idx], store["f1"][idx] = f0.detach(), f1.detach()
                store["u"][idx], store["v"][idx] = h0.detach(), h1.detach()
                # critics: each tells its own modality's features (real) from the other's (fake)
                critic_loss = h0.new_zeros(())
                if self.adv_weight > 0:
                    for critic, real, fake in ((c1, f1, f0), (c0, f0, f1)):
                        critic_loss = (critic_loss - critic(real.detach()).mean() + critic(fake.detach()).mean()
                                       + wgan_gradient_penalty(critic, real, fake, self.gp_weight, generator))
                    optimizer_step(critic_opt, critic_loss)
                adv = -(c1(f0).mean() + c0(f1).mean())
                tri = cosine_triplet_all_loss(h0, h1, lab, self.margin) + cosine_triplet_all_loss(h1, h0, lab, self.margin)
                balance = agah_balance_loss(h0) + agah_balance_loss(h1)
                cls = F.binary_cross_entropy(p0, oh, reduction="sum") + F.binary_cross_entropy(p1, oh, reduction="sum")
                cmap = code_map_loss(h0, state["code_map"], oh) + code_map_loss(h1, state["code_map"], oh)
                quant = quantization_loss(h0) + quantization_loss(h1)
                loss = (tri + self.balance_weight * balance + self.class_weight * cls + self.code_map_weight * cmap
                        + self.quant_weight * quant + self.adv_weight * adv)
                optimizer_step(opt, loss)
                return {"loss": float(loss.detach()), "triplet": float(tri.detach()),
                        "balance": float(balance.detach()), "class": float(cls.detach()),
                        "code_map": float(cmap.detach()), "quant": float(quant.detach()),
                        "adv": float(adv.detach()), "critic": float(critic_loss.detach())}

            self._train(module, step, n, None, generator, inputs, callback, desc="AGAH", batches=batches)
            self.code_map_ = state["code_map"].cpu().numpy().astype(np.float32)
        return self

    def _fitted_meta(self) -> dict[str, Any]:
        return {"n_classes_": int(self.n_classes_)}

    def _set_fitted_meta(self, meta: dict[str, Any]) -> None:
        self.n_classes_ = int(meta["n_classes_"])

    def _numpy_state(self) -> dict[str, np.ndarray]:
        return {**self._input_scaling_state(), "code_map": self.code_map_}

    def _set_numpy_state(self, arrays: dict[str, np.ndarray]) -> None:
        self._set_input_scaling_state(arrays)
        self.code_map_ = check_array_shape(arrays, "code_map", (self.n_classes_, int(self.bits)))
        self._reject_unexpected_arrays(arrays)
