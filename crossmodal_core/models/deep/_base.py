"""Base class of the PyTorch estimators: fit plumbing, inference, and checkpoints.

Checkpoint format (one file, written atomically through :func:`crossmodal_core.store.atomic_path`,
read with ``torch.load(..., weights_only=True)`` so no pickled code ever runs)::

    {"format": "crossmodal.torch-estimator", "version": 1,
     "class": "TNNClusterCCA",                  # the estimator class name
     "params": "<JSON of get_params()>",
     "fitted": "<JSON of scalar fitted state: n_features_in_, history_, ...>",
     "state_dict": {...},                       # the torch module's tensors
     "arrays": {name: tensor}}                  # fitted numpy state (e.g. the C-CCA weights)

A human-readable ``<name>.json`` (class, params, fitted metadata) is written beside it; loading
reads only the checkpoint itself. Loading a checkpoint of another class, a file that is not a
crossmodal checkpoint, or tensors whose shapes do not match the configured networks raises
:class:`CheckpointError` (a ``ValueError``) naming the problem.

Views and towers: a view is flat ``(n, d)`` (an MLP tower, inputs standardised per feature
here) or an image / spectrogram ``(n, C, H, W)`` (a CNN tower, :class:`~.towers.ConvTower`,
which scales its input itself with one global mean and deviation per channel: here it is
passed through untouched, in its own compact dtype such as uint8). ``n_features_in_[i]`` is
``d`` or ``(C, H, W)`` (:func:`~.towers.feature_spec`), so the rank of each view picks its
tower and no model has code of its own for images. A sequence view ``(n, T, d)`` is refused
with a message naming the sequence models.
"""

from __future__ import annotations

import inspect
import json
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from crossmodal_core.models.base import CrossModalEstimator, check_labels
from crossmodal_core.models.deep.towers import FeatureSpec, feature_spec, make_towers
from crossmodal_core.models.deep.training import (
    TrainingResult,
    fit_loop,
    resolve_device,
    resolve_seed,
    validation_map,
)
from crossmodal_core.models.preprocessing import fit_standardizer, standardize
from crossmodal_core.store import atomic_path, atomic_write_json

__all__ = ["TorchCrossModalEstimator", "CheckpointError", "FitInputs", "check_array_shape",
           "check_deep_views", "check_positive_int", "cluster_components", "fit_standardizer", "linear_stage_state",
           "project", "set_linear_stage_state", "standardize", "standardize_views"]

CHECKPOINT_FORMAT = "crossmodal.torch-estimator"
CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, foreign, or does not match the model's shapes."""


@dataclass
class FitInputs:
    """Validated arguments of ``fit``."""

    views: list[np.ndarray]
    y: np.ndarray | None
    val_views: list[np.ndarray] | None
    val_y: np.ndarray | None
    seed: int
    device: torch.device


class TorchCrossModalEstimator(CrossModalEstimator):
    """Shared machinery of the deep estimators.

    Subclasses implement ``fit`` (using :meth:`_prepare_fit` and :meth:`_train`),
    :meth:`_build_module` (the network for ``n_features_in_``, also used by :meth:`load`),
    :meth:`_transform_arrays`, and, when they hold fitted numpy state, :meth:`_numpy_state` /
    :meth:`_set_numpy_state` and :meth:`_fitted_meta` / :meth:`_set_fitted_meta`.

    Fitted attributes common to all: ``module_`` (``torch.nn.Module``), ``n_features_in_``
    (list of int), ``history_`` (list of per-epoch dicts: epoch, loss, val_map, val_map_xy,
    val_map_yx, seconds), ``best_epoch_`` (epoch restored by early stopping, or ``None``),
    ``stopped_early_``, ``device_``.
    """

    _registry: ClassVar[dict[str, type["TorchCrossModalEstimator"]]] = {}
    #: whether the model builds its towers with :meth:`_towers` / :func:`~.towers.make_towers`
    #: from ``n_features_in_`` and so takes image views (a CNN tower per rank-4 view)
    accepts_images: ClassVar[bool] = False
    #: inference chunk size (rows per forward pass in ``transform``)
    _transform_chunk: ClassVar[int] = 8192

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        TorchCrossModalEstimator._registry[cls.__name__] = cls

    # ------------------------------------------------------------------ subclass hooks
    def _build_module(self) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def _transform_arrays(self, views: list[np.ndarray]) -> list[np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def _numpy_state(self) -> dict[str, np.ndarray]:
        return {}

    def _set_numpy_state(self, arrays: dict[str, np.ndarray]) -> None:
        self._reject_unexpected_arrays(arrays)

    def _fitted_meta(self) -> dict[str, Any]:
        return {}

    def _set_fitted_meta(self, meta: dict[str, Any]) -> None:
        pass

    # ------------------------------------------------------------------ fit plumbing
    def _prepare_fit(self, views: Sequence[np.ndarray], y: np.ndarray | None,
                     validation: tuple | None, requires_labels: bool | None = None) -> FitInputs:
        from crossmodal_core.models.linear.streaming import check_stream_views

        requires_labels = self.requires_labels if requires_labels is None else requires_labels
        # views on disk stay there (shape / dtype checked; NaN / inf as blocks are read)
        views = check_deep_views(views, n_views=self.n_views, min_rows=2, what="views")
        if not self.accepts_images and any(v.ndim == 4 for v in views):
            raise ValueError(f"{type(self).__name__} takes flat (n, d) views; image views (n, C, H, W) work with "
                             "DCCA, C-DCCA, TNN-C-CCA (network-first), the contrastive model and UGAAR, or pass "
                             "the image's flat descriptor view (<view>_pix)")
        y = check_labels(y, views[0].shape[0], required=requires_labels)
        val_views = val_y = None
        if validation is not None:
            if not isinstance(validation, (tuple, list)) or len(validation) != 2:
                raise ValueError("validation must be a (views_val, y_val) pair (y_val may be None)")
            val_views = check_deep_views(validation[0], n_views=len(views), min_rows=2, what="validation views")
            for i, (v, t) in enumerate(zip(val_views, views)):
                if v.shape[1:] != t.shape[1:]:
                    raise ValueError(f"validation views[{i}] has item shape {tuple(v.shape[1:])}, training has "
                                     f"{tuple(t.shape[1:])}")
            if validation[1] is None:
                # unlabelled validation: instance-level retrieval (the paired item is relevant)
                val_y = np.arange(val_views[0].shape[0])
            else:
                val_y = check_labels(validation[1], val_views[0].shape[0], required=True, min_classes=1)
        for name in ("epochs", "batch_size"):
            value = getattr(self, name, None)
            if value is not None:
                check_positive_int(name, value)
        if getattr(self, "lr", 1.0) <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        return FitInputs(views, y, val_views, val_y, resolve_seed(getattr(self, "random_state", None)),
                         resolve_device(getattr(self, "device", "cpu")))

    def _begin_fit(self, inputs: FitInputs, forget: Sequence[str] = ("module_",)) -> None:
        """Drop the previous fit's attributes ``forget`` (a failed fit must not leave a stale
        half-model behind) and record ``n_features_in_`` and ``device_`` of this fit."""
        for attr in forget:
            if hasattr(self, attr):
                delattr(self, attr)
        self.n_features_in_ = [feature_spec(v.shape[1:], f"views[{i}]") for i, v in enumerate(inputs.views)]
        self.device_ = inputs.device

    # ------------------------------------------------------------------ shared building blocks
    def _towers(self, in_features: Mapping[str, FeatureSpec], out_features: int, **options: Any) -> nn.ModuleDict:
        """One tower per named input (width: MLP; ``(C, H, W)``: CNN with an MLP head) with this
        estimator's ``hidden``, ``activation``, ``dropout`` and ``batch_norm`` (see
        :func:`~crossmodal_core.models.deep.towers.make_tower`)."""
        return make_towers(in_features, hidden=tuple(self.hidden), out_features=int(out_features),
                           activation=self.activation, dropout=float(self.dropout),
                           batch_norm=bool(self.batch_norm), **options)

    def _run_towers(self, towers: nn.ModuleDict, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """``inputs[i]`` through the ``i``-th tower of ``towers`` (see :meth:`_run`)."""
        return [self._run(net, x) for net, x in zip(towers.values(), inputs)]

    def _fit_input_scaling(self, views: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Fit ``input_means_`` / ``input_scales_`` on the training views; return them standardised.

        Image views (rank 4) get ``None`` for both: their CNN tower scales them (see the module
        docstring), and they are returned as they are."""
        self.input_means_, self.input_scales_ = fit_input_standardizer(views)
        return self._scaled_inputs(views)

    def _fit_input_scaling_streamed(self, views: Sequence[Any]) -> None:
        """``input_means_`` / ``input_scales_`` of views on disk from one streamed pass of column
        moments (the constant-feature rule of :mod:`crossmodal_core.models.preprocessing`)."""
        from crossmodal_core.models.linear.streaming import column_moments
        from crossmodal_core.models.preprocessing import CONSTANT_STD

        self.input_means_, self.input_scales_ = [], []
        for v in views:
            mean, var = column_moments(v, client=False)
            std = np.sqrt(var)
            floor = CONSTANT_STD * max(float(std.max(initial=0.0)), 1e-30)
            self.input_means_.append(mean)
            self.input_scales_.append(np.where(std > floor, std, 1.0))

    def _streamed_outputs(self, towers: nn.ModuleDict, views: Sequence[Any]) -> list[np.ndarray]:
        """Tower outputs of views on disk, standardised and forwarded row block by row block."""
        from crossmodal_core.data.lazy import iter_row_blocks

        out = []
        for i, (net, v) in enumerate(zip(towers.values(), views)):
            parts = [self._run(net, standardize(np.asarray(b, dtype=np.float32), self.input_means_[i],
                                                self.input_scales_[i])) for _, b in iter_row_blocks(v)]
            out.append(np.concatenate(parts) if parts else np.zeros((0, 0), np.float32))
        return out

    def _scaled_inputs(self, views: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The views standardised with the fitted ``input_means_`` / ``input_scales_`` (float32)."""
        return standardize_views(views, self.input_means_, self.input_scales_)

    def _input_scaling_state(self) -> dict[str, np.ndarray]:
        """Checkpoint arrays ``input.means.<i>`` / ``input.scales.<i>`` of the input standardisation."""
        state = {}
        for i, (m, s) in enumerate(zip(self.input_means_, self.input_scales_)):
            if m is not None:  # image views: scaled inside their CNN tower (its buffers)
                state[f"input.means.{i}"], state[f"input.scales.{i}"] = m, s
        return state

    def _set_input_scaling_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Read back :meth:`_input_scaling_state`, checking the shapes against ``n_features_in_``."""
        dims = list(enumerate(self.n_features_in_))
        self.input_means_ = [None if isinstance(d, tuple) else check_array_shape(arrays, f"input.means.{i}", (d,))
                             for i, d in dims]
        self.input_scales_ = [None if isinstance(d, tuple) else check_array_shape(arrays, f"input.scales.{i}", (d,))
                              for i, d in dims]

    def _reject_unexpected_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """A checkpoint holding arrays this model does not write is not one of its checkpoints."""
        extra = set(arrays) - set(self._numpy_state())
        if extra:
            raise CheckpointError(f"unexpected arrays in a {type(self).__name__} checkpoint: {sorted(extra)}")

    def _make_validate(self, inputs: FitInputs) -> Callable[[], tuple[float, float]] | None:
        """``validate()`` computing (view0->view1, view1->view0) MAP of the current weights."""
        if inputs.val_views is None:
            return None

        def validate() -> tuple[float, float]:
            z = self._transform_arrays(inputs.val_views)
            return validation_map(z[0], z[1], inputs.val_y)

        return validate

    def _train(self, module: nn.Module, step: Callable[[torch.Tensor], Any], n_samples: int,
               optimizer: torch.optim.Optimizer | None, generator: torch.Generator,
               inputs: FitInputs, callback: Callable | None, desc: str,
               batch_size: int | None = None, **kwargs: Any) -> TrainingResult:
        """Run :func:`fit_loop` with this estimator's epochs / patience / progress settings and
        store ``history_``, ``best_epoch_`` and ``stopped_early_``."""
        result = fit_loop(
            module, step, n_samples,
            epochs=self.epochs,
            batch_size=batch_size or self.batch_size,
            optimizer=optimizer,
            generator=generator,
            validate=self._make_validate(inputs),
            patience=getattr(self, "patience", None),
            callback=callback,
            progress=getattr(self, "progress", True),
            desc=desc,
            **kwargs,
        )
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.stopped_early_ = result.stopped_early
        return result

    # ------------------------------------------------------------------ inference
    def _run(self, net: nn.Module, x: np.ndarray) -> np.ndarray:
        """Forward ``x`` through ``net`` in eval mode, in chunks, without gradients."""
        device = getattr(self, "device_", torch.device("cpu"))
        was_training = net.training
        net.eval()
        out = []
        # flat rows go as float32; images keep their dtype (the CNN tower casts per chunk), and
        # a chunk holds at most ~32 MiB of float32 pixels, not 8,192 images
        image = x.ndim == 4
        rows = self._transform_chunk
        if image:
            rows = max(1, min(rows, (32 << 20) // (4 * int(np.prod(x.shape[1:])))))
        with torch.no_grad():
            for start in range(0, x.shape[0], rows):
                chunk = np.ascontiguousarray(x[start:start + rows])
                chunk = torch.as_tensor(chunk, device=device) if image else torch.as_tensor(
                    chunk, dtype=torch.float32, device=device)
                out.append(net(chunk).cpu().numpy())
        net.train(was_training)
        return np.concatenate(out, axis=0) if out else np.zeros((0, 0), np.float32)

    def transform(self, views: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Project each view into the shared space.

        Parameters
        ----------
        views : list of (n_i, d_i) arrays
            One per modality, features as at fit time; row counts may differ.

        Returns
        -------
        list of (n_i, n_components) float64 arrays
        """
        self._check_fitted("module_")
        views = self._check_transform_views(views, self.n_features_in_)
        return [np.asarray(z, dtype=np.float64) for z in self._transform_arrays(views)]

    def _check_transform_view(self, i: int, v: Any, d: FeatureSpec) -> Any:
        """The base class's check for a flat view (cast to float32), plus image views: rank 4 with
        the fitted ``(C, H, W)`` (dtype kept), finite; a view of the wrong rank is refused by name."""
        if isinstance(d, tuple):
            a = check_deep_views([v], n_views=1, min_rows=1, what=f"views[{i}]")[0]
            if a.ndim != 4 or tuple(a.shape[1:]) != d:
                raise ValueError(f"views[{i}] has shape {tuple(np.shape(a))}; the model was fitted on images "
                                 f"(n, {', '.join(map(str, d))})")
            return a
        if np.ndim(v) == 4:
            raise ValueError(f"views[{i}] is an image view {tuple(np.shape(v))}; the model was fitted with "
                             f"{d} flat features there")
        a = super()._check_transform_view(i, v, d)
        return a if hasattr(a, "iter_blocks") else a.astype(np.float32, copy=False)

    # ------------------------------------------------------------------ checkpoints
    def _json_params(self) -> dict[str, Any]:
        params = self.get_params(deep=False)
        for key, value in params.items():
            if isinstance(value, tuple):
                params[key] = list(value)
            if isinstance(value, np.generic):
                params[key] = value.item()
        try:
            json.dumps(params)
        except TypeError as exc:
            raise ValueError(f"cannot save {type(self).__name__}: a parameter is not JSON-serialisable ({exc})") from None
        return params

    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted model to ``path`` atomically (plus a readable ``.json`` beside it)."""
        self._check_fitted("module_")
        path = Path(path)
        if path.suffix == ".json":
            raise ValueError(f"{path}: the checkpoint itself must not end in .json (that name is used for "
                             "the readable config beside it); use e.g. .pt")
        meta = {
            "n_features_in_": [list(d) if isinstance(d, tuple) else int(d) for d in self.n_features_in_],
            "history_": getattr(self, "history_", []),
            "best_epoch_": getattr(self, "best_epoch_", None),
            "stopped_early_": bool(getattr(self, "stopped_early_", False)),
            **self._fitted_meta(),
        }
        params = self._json_params()
        payload = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "class": type(self).__name__,
            "params": json.dumps(params),
            "fitted": json.dumps(meta),
            "state_dict": {k: v.detach().cpu() for k, v in self.module_.state_dict().items()},
            "arrays": {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in self._numpy_state().items()},
        }
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
        atomic_write_json(path.with_suffix(".json"),
                          {"format": CHECKPOINT_FORMAT, "class": type(self).__name__,
                           "checkpoint": path.name, "params": params, "fitted": meta})
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = None) -> "TorchCrossModalEstimator":
        """Load a model written by :meth:`save`.

        Called on the base class, returns an instance of whichever class is stored; called on
        a subclass, the checkpoint must hold that class. ``device`` overrides the saved one.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint at {path}")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
            raise CheckpointError(f"{path} is not a readable crossmodal checkpoint "
                                  f"(corrupt, truncated or foreign): {type(exc).__name__}: {exc}") from None
        if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path} is not a crossmodal estimator checkpoint "
                                  "(missing format marker; was it written by TorchCrossModalEstimator.save?)")
        if payload.get("version") != CHECKPOINT_VERSION:
            raise CheckpointError(f"{path} has checkpoint version {payload.get('version')}, "
                                  f"this code reads version {CHECKPOINT_VERSION}")
        stored = payload.get("class")
        if cls is TorchCrossModalEstimator:
            if stored not in cls._registry:
                raise CheckpointError(f"{path} holds an unknown model class {stored!r}")
            target = cls._registry[stored]
        else:
            if stored != cls.__name__:
                raise CheckpointError(f"{path} holds a {stored} checkpoint, not a {cls.__name__}; "
                                      f"load it with {stored}.load or TorchCrossModalEstimator.load")
            target = cls
        try:
            params = json.loads(payload["params"])
            meta = json.loads(payload["fitted"])
            state_dict = payload["state_dict"]
            arrays = {k: v.numpy() for k, v in payload["arrays"].items()}
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{path}: malformed checkpoint ({type(exc).__name__}: {exc})") from None
        # JSON turns tuples into lists: give tuple-valued defaults their type back
        signature = inspect.signature(target.__init__)
        for key, value in list(params.items()):
            if key not in signature.parameters:
                raise CheckpointError(f"{path}: parameter {key!r} is unknown to {target.__name__}")
            if isinstance(value, list) and isinstance(signature.parameters[key].default, tuple):
                params[key] = tuple(value)
        if device is not None:
            params["device"] = device
        est = target(**params)
        est.device_ = resolve_device(params.get("device", "cpu"))
        try:
            est.n_features_in_ = [feature_spec(d, "n_features_in_") for d in meta["n_features_in_"]]
            est.history_ = meta.get("history_", [])
            est.best_epoch_ = meta.get("best_epoch_")
            est.stopped_early_ = meta.get("stopped_early_", False)
            est._set_fitted_meta(meta)
            est._set_numpy_state(arrays)
            module = est._build_module()
        except CheckpointError:
            raise
        except (KeyError, ValueError, TypeError) as exc:
            raise CheckpointError(f"{path}: fitted state does not match {target.__name__} ({exc})") from None
        try:
            module.load_state_dict(state_dict, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()
            raise CheckpointError(f"{path}: the stored weights do not match the {target.__name__} networks "
                                  f"built from its parameters ({' '.join(first[:3])})") from None
        est.module_ = module.to(est.device_).eval()
        return est


def check_array_shape(arrays: dict[str, np.ndarray], name: str, shape: tuple[int, ...]) -> np.ndarray:
    """Fetch ``arrays[name]`` and insist on ``shape`` (for ``_set_numpy_state``)."""
    if name not in arrays:
        raise CheckpointError(f"checkpoint lacks the fitted array {name!r}")
    a = arrays[name]
    if tuple(a.shape) != tuple(shape):
        raise CheckpointError(f"fitted array {name!r} has shape {tuple(a.shape)}, expected {tuple(shape)}")
    return a


class EncoderOutput(nn.Module):
    """``x → net.encode(key, x)[index]``: one output of a network with several outputs per
    modality, as a tower :meth:`TorchCrossModalEstimator._run` can forward (the VAE's ``μ``,
    AGAH's relaxed codes). ``x``: ``(b, d_key)``; the output's shape is ``encode``'s."""

    def __init__(self, net: nn.Module, key: int | str, index: int):
        super().__init__()
        self.net, self.key, self.index = net, key, int(index)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.encode(self.key, x)[self.index]


def linear_stage_state(prefix: str, weights: Sequence[np.ndarray], means: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Arrays of a fitted linear projection ``(x - means[i]) @ weights[i]`` for a checkpoint."""
    out = {}
    for i, (w, m) in enumerate(zip(weights, means)):
        out[f"{prefix}.weights.{i}"] = np.asarray(w, dtype=np.float64)
        out[f"{prefix}.means.{i}"] = np.asarray(m, dtype=np.float64)
    return out


def set_linear_stage_state(arrays: dict[str, np.ndarray], prefix: str, n_features: Sequence[int],
                           n_components: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Read back :func:`linear_stage_state` arrays, checking their shapes."""
    weights, means = [], []
    for i, d in enumerate(n_features):
        weights.append(check_array_shape(arrays, f"{prefix}.weights.{i}", (d, n_components)))
        means.append(check_array_shape(arrays, f"{prefix}.means.{i}", (d,)))
    return weights, means


def project(x: np.ndarray, weights: np.ndarray, means: np.ndarray) -> np.ndarray:
    """``(x - means) @ weights`` in float32 (the networks' precision)."""
    return ((x - means.astype(np.float32)) @ weights.astype(np.float32)).astype(np.float32, copy=False)


def standardize_views(views: Sequence[np.ndarray], means: Sequence[np.ndarray | None],
                      scales: Sequence[np.ndarray | None]) -> list[np.ndarray]:
    """:func:`~crossmodal_core.models.preprocessing.standardize` of each view with its own
    statistics (from :func:`fit_input_standardizer`); a view whose statistics are ``None`` (an
    image, scaled inside its CNN tower) is passed through as it is."""
    return [v if m is None else standardize(v, m, s) for v, m, s in zip(views, means, scales)]


def fit_input_standardizer(views: Sequence[np.ndarray]) -> tuple[list[np.ndarray | None], list[np.ndarray | None]]:
    """:func:`~crossmodal_core.models.preprocessing.fit_standardizer` of the flat ``(n, d)``
    views; ``None`` for image views ``(n, C, H, W)`` (their CNN tower scales them globally)."""
    means: list[np.ndarray | None] = []
    scales: list[np.ndarray | None] = []
    for v in views:
        if np.ndim(v) == 4:
            means.append(None)
            scales.append(None)
        else:
            (m,), (s_,) = fit_standardizer([v])
            means.append(m)
            scales.append(s_)
    return means, scales


def check_deep_views(views: Sequence[Any], n_views: int | None = 2, min_rows: int = 2,
                     what: str = "views") -> list[Any]:
    """Validate the views of a deep model: flat ``(n, d)`` views as
    :func:`~crossmodal_core.models.linear.streaming.check_stream_views` (returned as float32;
    views on disk stay there), image / spectrogram views ``(n, C, H, W)`` numeric and finite,
    returned in their own dtype (uint8 stays uint8; float64 becomes float32). A sequence view
    ``(n, T, d)`` or any other rank raises ``ValueError`` naming the problem
    (:func:`~.towers.feature_spec`). All views must have the same number of rows."""
    from crossmodal_core.data.dataset import check_paired_rows, nonfinite_rows
    from crossmodal_core.models.linear.streaming import check_stream_views

    if isinstance(views, np.ndarray):
        raise ValueError(f"{what} must be a list of arrays (one per modality), got a single array")
    views = list(views)
    if not any(np.ndim(v) == 4 for v in views if not hasattr(v, "iter_blocks")):
        # flat (or wrong-rank) views: the flat check's messages (sequence views name the sequence models)
        return [v.astype(np.float32, copy=False)
                for v in check_stream_views(views, n_views=n_views, min_rows=min_rows, what=what)]
    if n_views is not None and len(views) != n_views:
        raise ValueError(f"expected {n_views} {what}, got {len(views)}")
    out = []
    for i, v in enumerate(views):
        if hasattr(v, "iter_blocks"):
            raise ValueError(f"{what}[{i}] stays on disk; a model with image views reads every view into memory")
        a = np.asarray(v)
        if a.ndim != 4:
            out.append(check_stream_views([a], n_views=1, min_rows=0, what=f"{what}[{i}]")[0].astype(np.float32, copy=False))
            continue
        feature_spec(a.shape[1:], f"{what}[{i}]")
        if a.dtype.kind not in "biuf":
            raise ValueError(f"{what}[{i}] must be numeric, got dtype {a.dtype}")
        if a.dtype.kind == "f":
            if a.dtype == np.float64:
                a = a.astype(np.float32)
            bad = nonfinite_rows(a)
            if len(bad):
                raise ValueError(f"{what}[{i}] contains NaN or inf in {len(bad)} item(s), first at row {int(bad[0])}")
        elif a.dtype.kind == "b":
            a = a.astype(np.uint8)
        out.append(a)
    check_paired_rows(out, min_rows, what)
    return out


def check_positive_int(name: str, value: Any, strict: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is a whole number >= 1.

    ``strict`` also rejects floats (``3.0``) and bools: only ``int`` / NumPy integers pass.
    """
    if strict:
        ok = not isinstance(value, bool) and isinstance(value, (int, np.integer)) and value >= 1
    else:
        ok = int(value) == value and value >= 1
    if not ok:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def cluster_components(n_components: int, y: np.ndarray) -> int:
    """``min(n_components, classes - 1)``: Cluster-CCA's cross-covariance over same-class pairs
    has rank at most ``classes - 1``, so no more components are useful."""
    return min(int(n_components), int(np.unique(y).size) - 1)
