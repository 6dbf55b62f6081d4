"""The grant's VAE model for audio-visual retrieval (Zhang, Yu, Tang, Wu, Li; ACM TOMM 2023,
doi 10.1145/3575658, arXiv 2112.02601).

Source: the released code ``zhangjiwei-japan/visual-audio-cross-modal-retrieval``
(``model_vae.py``: ``DEEP_C_CENTER_NN``; ``loss_functions.py``: ``calc_loss``;
``train_model.py``) and the grant report (``shared/RESEARCH.md``).

Network (released code; all layers linear unless said)
------------------------------------------------------
- encoders: view 0 (audio) ``128 → 512`` ReLU, view 1 (visual) ``1024 → 512`` ReLU;
- shared ``512 → 64``, then shared heads ``μ``: ``64 → 64`` and ``log σ²``: ``64 → 64``;
- ``z = μ + σ ε`` in training, ``z = μ`` at test (what :meth:`transform` returns);
- shared classifier ``64 → C`` (raw outputs, regressed onto the one-hot labels);
- shared decoder ``64 → 512``, then ``512 → 128`` / ``512 → 1024`` per view.

Loss (:mod:`~crossmodal_core.models.deep.vae_losses`, the released weights)::

    1e-4 · Σ_views (MSE(x̂, x) + KL(μ, log σ²))        vae_weight
    + Σ_views mean ‖p − y‖                              label_weight (1)
    + 1e-3 · label likelihood on centred cosines        likelihood_weight
    + 0.1 · mean ‖z_a − z_v‖                            distance_weight
    + 0.01 · ½ Σ_views centre loss (α = 0.5)            center_weight

Adam lr 1e-4, betas (0.5, 0.999), batch 128.

Mutual space (``mutual_space``)
-------------------------------
The grant report describes CCA-built mutual spaces; the released code has no CCA step and
retrieves with ``μ`` directly. ``mutual_space="none"`` (default) is the released code;
``"cca"`` fits a linear CCA (``cca_components`` components, ridge ``cca_reg``) on the
training ``μ`` of both views after training and returns its canonical variates (the
report's description, our implementation of it).

Departures
----------
- 100 epochs instead of the released 500 (CPU budget; measured per-epoch time in
  ``benchmarks/bench_deep.py``); ``epochs=500`` restores the reference.
- The released code computes the centre loss with an imported ``Center_Loss`` module that is
  not published; we use Wen et al.'s centre loss with its moving-centre update at
  ``α = 0.5`` (the argument the reference passes), centres initialised at 0.
- Our view order is ``[audio, visual]`` (the reference's is visual first); the loss is
  symmetric so nothing changes but the names.
- Inputs are standardised per feature (train statistics); the reconstruction targets are the
  standardised inputs.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from crossmodal_core.models.deep._base import (
    EncoderOutput,
    TorchCrossModalEstimator,
    check_array_shape,
    check_positive_int,
    linear_stage_state,
    project,
    set_linear_stage_state,
)
from crossmodal_core.models.deep.training import seeded
from crossmodal_core.models.deep.vae_losses import (
    center_loss,
    label_likelihood_loss,
    label_regression_loss,
    paired_distance_loss,
    update_centers,
    vae_view_loss,
)

__all__ = ["CrossModalVAE", "VAENetwork", "MUTUAL_SPACES"]

#: accepted ``mutual_space`` values
MUTUAL_SPACES = ("none", "cca")


class VAENetwork(nn.Module):
    """Per-view encoders and decoder outputs around shared latent layers (module docstring).

    ``encode(i, x)``: ``(b, d_i) → (μ, log σ²)``, each ``(b, latent)``; ``decode(i, z)``:
    ``(b, latent) → (b, d_i)``; ``classifier``: ``(b, latent) → (b, C)``.
    """

    def __init__(self, in_dims: Sequence[int], hidden: int, latent: int, n_classes: int):
        super().__init__()
        self.encoders = nn.ModuleList([nn.Linear(int(d), int(hidden)) for d in in_dims])
        self.shared = nn.Linear(int(hidden), int(latent))
        self.mu = nn.Linear(int(latent), int(latent))
        self.logvar = nn.Linear(int(latent), int(latent))
        self.classifier = nn.Linear(int(latent), int(n_classes))
        self.decoder = nn.Linear(int(latent), int(hidden))
        self.outputs = nn.ModuleList([nn.Linear(int(hidden), int(d)) for d in in_dims])

    def encode(self, i: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.shared(F.relu(self.encoders[i](x)))
        return self.mu(h), self.logvar(h)

    def decode(self, i: int, z: torch.Tensor) -> torch.Tensor:
        return self.outputs[i](self.decoder(z))


class CrossModalVAE(TorchCrossModalEstimator):
    """The grant's supervised cross-modal VAE (module docstring).

    Parameters
    ----------
    hidden, latent : widths of the encoders (512) and the shared latent (64)
    vae_weight, label_weight, likelihood_weight, distance_weight, center_weight : loss weights
        (1e-4, 1, 1e-3, 0.1, 0.01)
    center_alpha : centre update rate (0.5)
    mutual_space : {"none", "cca"}
        Retrieve with ``μ`` (released code) or with a CCA of the training ``μ`` (the report).
    cca_components, cca_reg : the CCA option's components (10) and ridge (1e-3)
    epochs, batch_size, lr, beta1 : Adam settings (100, 128, 1e-4, 0.5)
    patience, random_state, device, progress : as for every deep model

    Attributes
    ----------
    module_ : :class:`VAENetwork`
    centers_ : ``(C, latent)`` final class centres
    weights_, means_ : the CCA option's projection (only with ``mutual_space="cca"``)
    n_classes_, input_means_, input_scales_, history_, best_epoch_
    """

    requires_labels = True

    def __init__(self, hidden: int = 512, latent: int = 64, vae_weight: float = 1e-4, label_weight: float = 1.0,
                 likelihood_weight: float = 1e-3, distance_weight: float = 0.1, center_weight: float = 0.01,
                 center_alpha: float = 0.5, mutual_space: str = "none", cca_components: int = 10,
                 cca_reg: float = 1e-3, epochs: int = 100, batch_size: int = 128, lr: float = 1e-4,
                 beta1: float = 0.5, patience: int | None = None, random_state: int | None = 0,
                 device: str = "cpu", progress: bool = True):
        self.hidden = hidden
        self.latent = latent
        self.vae_weight = vae_weight
        self.label_weight = label_weight
        self.likelihood_weight = likelihood_weight
        self.distance_weight = distance_weight
        self.center_weight = center_weight
        self.center_alpha = center_alpha
        self.mutual_space = mutual_space
        self.cca_components = cca_components
        self.cca_reg = cca_reg
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.beta1 = beta1
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.progress = progress

    def _check_params(self) -> None:
        check_positive_int("hidden", self.hidden)
        check_positive_int("latent", self.latent)
        check_positive_int("cca_components", self.cca_components)
        if self.mutual_space not in MUTUAL_SPACES:
            raise ValueError(f"mutual_space must be one of {MUTUAL_SPACES}, got {self.mutual_space!r}")
        if self.mutual_space == "cca" and self.cca_components > self.latent:
            raise ValueError(f"cca_components ({self.cca_components}) cannot exceed latent ({self.latent})")
        for name in ("vae_weight", "label_weight", "likelihood_weight", "distance_weight", "center_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    def _build_module(self) -> nn.Module:
        return VAENetwork(self.n_features_in_, self.hidden, self.latent, self.n_classes_)

    def _mu(self, views: list[np.ndarray]) -> list[np.ndarray]:
        # encode(i, x) = (μ, log σ²): retrieval uses μ
        return [self._run(EncoderOutput(self.module_, i, 0), x) for i, x in enumerate(self._scaled_inputs(views))]

    def _transform_arrays(self, views: list[np.ndarray]) -> list[np.ndarray]:
        out = self._mu(views)
        if hasattr(self, "weights_"):
            out = [project(z, w, m) for z, w, m in zip(out, self.weights_, self.means_)]
        return out

    def fit(self, views: Sequence[np.ndarray], y: np.ndarray | None = None, validation: tuple | None = None,
            callback: Callable[[dict[str, Any]], Any] | None = None) -> "CrossModalVAE":
        """Train the VAE; with ``mutual_space="cca"`` fit the CCA on the training ``μ`` after.

        Parameters
        ----------
        views : [audio (n, d0), visual (n, d1)] row-paired flat features
        y : (n,) class labels (required)
        validation : ``(views_val, y_val)`` held-out training rows (scored on ``μ``), or None
        callback : per-epoch callable
        """
        self._check_params()
        inputs = self._prepare_fit(views, y, validation)
        self._begin_fit(inputs, forget=("module_", "weights_", "means_", "canonical_correlations_"))
        self.n_classes_ = int(inputs.y.max()) + 1
        x0, x1 = (torch.as_tensor(x, device=inputs.device) for x in self._fit_input_scaling(inputs.views))
        labels = torch.as_tensor(inputs.y, device=inputs.device)
        onehot = F.one_hot(labels, self.n_classes_).to(torch.float32)
        with seeded(inputs.seed, inputs.device) as generator:
            module = self._build_module().to(inputs.device)
            self.module_ = module
            centers = torch.zeros(self.n_classes_, int(self.latent), device=inputs.device)
            optimizer = torch.optim.Adam(module.parameters(), lr=self.lr, betas=(self.beta1, 0.999))

            def step(idx: torch.Tensor) -> dict[str, Any]:
                idx = idx.to(inputs.device)
                lab, oh = labels[idx], onehot[idx]
                parts = []
                for i, x in enumerate((x0[idx], x1[idx])):
                    mu, logvar = module.encode(i, x)
                    eps = torch.randn(mu.shape, generator=generator).to(mu.device)
                    z = mu + eps * torch.exp(0.5 * logvar)
                    parts.append((x, mu, logvar, z, module.classifier(z), module.decode(i, z)))
                vae = sum(vae_view_loss(rec, x, mu, lv) for x, mu, lv, _, _, rec in parts)
                label = sum(label_regression_loss(p, oh) for *_, p, _ in parts)
                (_, _, _, za, _, _), (_, _, _, zv, _, _) = parts
                likelihood = label_likelihood_loss(za, zv, oh, oh)
                distance = paired_distance_loss(za, zv)
                center = 0.5 * center_loss(za, lab, centers) + 0.5 * center_loss(zv, lab, centers)
                loss = (self.vae_weight * vae + self.label_weight * label + self.likelihood_weight * likelihood
                        + self.distance_weight * distance + self.center_weight * center)
                update_centers(centers, torch.cat([za, zv]), torch.cat([lab, lab]), self.center_alpha)
                return {"loss": loss, "vae": vae.detach(), "label": label.detach(), "likelihood": likelihood.detach(),
                        "distance": distance.detach(), "center": center.detach()}

            self._train(module, step, x0.shape[0], optimizer, generator, inputs, callback, desc="CrossModalVAE")
            self.centers_ = centers.cpu().numpy()
        if self.mutual_space == "cca":
            from crossmodal_core.models.linear import CCA

            cca = CCA(n_components=int(self.cca_components), reg=self.cca_reg).fit(self._mu(inputs.views))
            self.weights_ = [np.asarray(w, dtype=np.float64) for w in cca.weights_]
            self.means_ = [np.asarray(m, dtype=np.float64) for m in cca.means_]
            self.canonical_correlations_ = np.asarray(cca.canonical_correlations_, dtype=np.float64)
        return self

    def _fitted_meta(self) -> dict[str, Any]:
        return {"n_classes_": int(self.n_classes_)}

    def _set_fitted_meta(self, meta: dict[str, Any]) -> None:
        self.n_classes_ = int(meta["n_classes_"])

    def _numpy_state(self) -> dict[str, np.ndarray]:
        state = {**self._input_scaling_state(), "centers": self.centers_}
        if hasattr(self, "weights_"):
            state.update(linear_stage_state("cca", self.weights_, self.means_))
            state["cca.correlations"] = self.canonical_correlations_
        return state

    def _set_numpy_state(self, arrays: dict[str, np.ndarray]) -> None:
        self._set_input_scaling_state(arrays)
        self.centers_ = check_array_shape(arrays, "centers", (self.n_classes_, int(self.latent)))
        if self.mutual_space == "cca":
            k = int(self.cca_components)
            self.weights_, self.means_ = set_linear_stage_state(arrays, "cca", [int(self.latent)] * 2, k)
            self.canonical_correlations_ = check_array_shape(arrays, "cca.correlations", (k,))
        self._reject_unexpected_arrays(arrays)
