"""Models by name: what the CLI, the evaluation and the app use to build and store estimators.

``make_model("ccca", n_components=10)`` returns a fresh estimator with the paper defaults,
overridden by the keyword arguments. Each model's module is imported only when that model
is asked for, so a missing optional dependency (torch) or an unfinished module breaks that
one name with a clear :class:`ModelUnavailableError`, never the registry.

==============  ==============  ==========  ==============================================
name            display name    supervised  estimator
==============  ==============  ==========  ==============================================
``cca``         CCA             no          ``models.linear.CCA``
``kcca``        KCCA            no          ``models.linear.KCCA`` (RBF, Nyström)
``ccca``        C-CCA           yes         ``models.linear.ClusterCCA``
``ckcca``       C-KCCA          yes         ``models.linear.ClusterKCCA``
``dcca``        DCCA            no          ``models.deep.DCCA``
``cdcca``       C-DCCA          yes         ``models.deep.ClusterDCCA``
``tnn-ccca``    TNN-C-CCA       yes         ``models.deep.TNNClusterCCA``
``contrastive`` Contrastive     yes         ``models.deep.ContrastiveAligner``
``ugaar``       UGAAR           no          ``models.deep.UGAAR`` (views sheet, lyrics, audio)
``acmr``        ACMR            yes         ``models.deep.ACMR`` (triplet / simple variants)
``ugach``       UGACH           no          ``models.deep.UGACH`` (hash codes, Hamming + cosine)
``agah``        AGAH            yes         ``models.deep.AGAH`` (hash codes, Hamming + cosine)
``ucal``        UCAL            no          ``models.deep.UCAL`` (reconstruction: no public code)
``sdcca``       S-DCCA          yes         ``models.deep.SupervisedDCCA``
``vae``         VAE             yes         ``models.deep.CrossModalVAE`` (the grant's VAE)
``lstm-ccca``   LSTM-C-CCA      yes         ``models.deep.LSTMClusterCCA`` (sequence views)
``attention``   Deep attention  no          ``models.deep.ChunkAttentionCCA`` (sequence views)
``transformer`` Transformer     yes         ``models.deep.CrossModalTransformer`` (sequence views)
==============  ==============  ==========  ==============================================

Sequence models (the last three) take ``(n, T, d)`` segment sequences: their ``views`` are
the synthetic set's ``("audio_seq", "visual_seq")``; on a dataset without those the store
uses its first two sequence views (music: ``audio_seq``, ``sheet_seq``), see
:func:`crossmodal_core.models.trained.model_views`.

This registry is the one source of a model's name, display name, required views, default
parameters, family and class: adding a model is its module, one :class:`ModelSpec` entry
here and its tests (``CONTRIBUTING.md``, "Adding a model"). :func:`get_spec` accepts a
resolved :class:`ModelSpec` as well, so callers resolve a name once and pass the spec on.

Stored models (:func:`save_model` / :func:`load_model`)
-------------------------------------------------------
- Deep (PyTorch) models use their own ``save`` / ``load`` (``.pt``: state_dict + JSON
  config, read with ``weights_only=True``).
- Linear models are stored without pickle as ``.npz``: a JSON tree (``__model__``) with the
  class, ``get_params()`` and the fitted attributes (names ending in ``_``), and one array
  entry per fitted array. Nested scikit-learn / crossmodal estimators (KCCA's Nyström maps,
  its inner CCA) are stored the same way, recursively. Only classes from ``sklearn`` or
  ``crossmodal_core`` are ever instantiated on load. Fitted state that is not needed to
  ``transform`` and cannot be stored that way (ClusterCCA's running sufficient statistics,
  which only ``partial_fit`` needs) is left out and listed under ``skipped`` in the JSON.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crossmodal_core import store

__all__ = [
    "ModelSpec",
    "MODELS",
    "MODEL_NAMES",
    "ModelUnavailableError",
    "get_spec",
    "display_name",
    "is_supervised",
    "model_class",
    "make_model",
    "parameter_names",
    "available_models",
    "save_model",
    "load_model",
]


class ModelUnavailableError(ImportError):
    """The model's module cannot be imported (missing dependency or not written yet)."""


@dataclass(frozen=True)
class ModelSpec:
    """How to build one named model."""

    name: str
    display: str
    module: str
    class_name: str
    supervised: bool
    family: str  # "linear" | "deep"
    defaults: dict[str, Any] = field(default_factory=dict)
    #: default views when the model needs specific modalities (UGAAR), else None = first two
    views: tuple[str, ...] | None = None
    description: str = ""


_LINEAR = "crossmodal_core.models.linear"
_DEEP = "crossmodal_core.models.deep"
#: default views of the sequence models (the synthetic VEGAS-shaped set's sequences)
SEQUENCE_VIEWS = ("audio_seq", "visual_seq")

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec("cca", "CCA", _LINEAR, "CCA", False, "linear", {"n_components": 10, "reg": 1e-3},
                  description="ridge-regularised linear CCA on paired items"),
        ModelSpec("kcca", "KCCA", _LINEAR, "KCCA", False, "linear",
                  {"n_components": 10, "reg": 1e-3, "n_nystroem": 1000, "random_state": 0},
                  description="RBF kernel CCA through a Nyström feature map"),
        ModelSpec("ccca", "C-CCA", _LINEAR, "ClusterCCA", True, "linear", {"n_components": 10},
                  description="cluster-CCA (Rasiwasia 2014): every same-class pair corresponds"),
        ModelSpec("ckcca", "C-KCCA", _LINEAR, "ClusterKCCA", True, "linear",
                  {"n_components": 10, "n_nystroem": 1000, "random_state": 0},
                  description="cluster-CCA on Nyström RBF features"),
        ModelSpec("dcca", "DCCA", _DEEP, "DCCA", False, "deep", {"random_state": 0},
                  description="deep CCA (Andrew et al. 2013)"),
        ModelSpec("cdcca", "C-DCCA", _DEEP, "ClusterDCCA", True, "deep", {"random_state": 0},
                  description="deep CCA over same-class correspondences"),
        ModelSpec("tnn-ccca", "TNN-C-CCA", _DEEP, "TNNClusterCCA", True, "deep", {"random_state": 0},
                  description="triplet network on cluster-CCA outputs (Zeng et al. 2020)"),
        ModelSpec("contrastive", "Contrastive", _DEEP, "ContrastiveAligner", True, "deep", {"random_state": 0},
                  description="symmetric InfoNCE with a supervised-contrastive term"),
        ModelSpec("ugaar", "UGAAR", _DEEP, "UGAAR", False, "deep", {"random_state": 0},
                  views=("sheet", "lyrics", "audio"),
                  description="unsupervised adversarial alignment of sheet, lyrics and audio"),
        ModelSpec("acmr", "ACMR", _DEEP, "ACMR", True, "deep", {"random_state": 0},
                  description="adversarial cross-modal retrieval (Wang et al. 2017), gradient reversal"),
        ModelSpec("ugach", "UGACH", _DEEP, "UGACH", False, "deep", {"random_state": 0},
                  description="unsupervised generative adversarial cross-modal hashing (Zhang et al. 2018)"),
        ModelSpec("agah", "AGAH", _DEEP, "AGAH", True, "deep", {"random_state": 0},
                  description="adversarial-guided asymmetric hashing (Gu et al. 2019)"),
        ModelSpec("ucal", "UCAL", _DEEP, "UCAL", False, "deep", {"random_state": 0},
                  description="unsupervised adversarial projectors (He et al. 2017), reconstructed"),
        ModelSpec("sdcca", "S-DCCA", _DEEP, "SupervisedDCCA", True, "deep", {"random_state": 0},
                  description="supervised DCCA with a cluster-mixed cross-covariance (Zeng et al. 2018)"),
        ModelSpec("vae", "VAE", _DEEP, "CrossModalVAE", True, "deep", {"random_state": 0},
                  description="the grant's supervised cross-modal VAE (Zhang et al. 2023)"),
        # sequence models: views (n, T, d); keep this block last
        ModelSpec("lstm-ccca", "LSTM-C-CCA", _DEEP, "LSTMClusterCCA", True, "deep", {"random_state": 0},
                  views=SEQUENCE_VIEWS,
                  description="LSTM towers over the segments, cluster-mixed CCA loss, linear CCA at test time"),
        ModelSpec("attention", "Deep attention", _DEEP, "ChunkAttentionCCA", False, "deep", {"random_state": 0},
                  views=SEQUENCE_VIEWS,
                  description="attention over chunks of the segments (a GRU inside each chunk), CCA objective"),
        ModelSpec("transformer", "Transformer", _DEEP, "CrossModalTransformer", True, "deep", {"random_state": 0},
                  views=SEQUENCE_VIEWS,
                  description="transformer encoders over the segments, InfoNCE + supervised contrastive"),
    ]
}
MODEL_NAMES: tuple[str, ...] = tuple(MODELS)

_ALIASES = {
    "c-cca": "ccca", "clustercca": "ccca", "cluster-cca": "ccca",
    "c-kcca": "ckcca", "c-dcca": "cdcca", "tnn-c-cca": "tnn-ccca", "tnnccca": "tnn-ccca",
    "tnn_ccca": "tnn-ccca", "contrastivealigner": "contrastive",
    "s-dcca": "sdcca", "supervised-dcca": "sdcca", "crossmodalvae": "vae",
    "lstm-c-cca": "lstm-ccca", "lstm_c_cca": "lstm-ccca", "deep-attention": "attention",
}


def get_spec(name: "str | ModelSpec") -> ModelSpec:
    """The :class:`ModelSpec` for ``name`` (case-insensitive; display names accepted too; a
    :class:`ModelSpec` is returned as it is, so callers resolve a name once and pass the spec)."""
    if isinstance(name, ModelSpec):
        return name
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in MODELS:
        by_display = {s.display.lower(): s.name for s in MODELS.values()}
        key = by_display.get(key, key)
    if key not in MODELS:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(MODEL_NAMES)}")
    return MODELS[key]


def display_name(name: "str | ModelSpec") -> str:
    """The poster's spelling: ``"tnn-ccca" -> "TNN-C-CCA"``."""
    return get_spec(name).display


def is_supervised(name: str) -> bool:
    return get_spec(name).supervised


def model_class(name: "str | ModelSpec") -> type:
    """Import and return the estimator class of ``name`` (raises :class:`ModelUnavailableError`)."""
    spec = get_spec(name)
    try:
        return getattr(importlib.import_module(spec.module), spec.class_name)
    except (ImportError, AttributeError, SyntaxError) as exc:
        raise ModelUnavailableError(
            f"model {spec.name!r} ({spec.display}) is unavailable: cannot import "
            f"{spec.module}.{spec.class_name} ({type(exc).__name__}: {exc})"
        ) from exc


def make_model(name: "str | ModelSpec", **params: Any):
    """A fresh, unfitted estimator for ``name`` with the paper defaults updated by ``params``."""
    spec = get_spec(name)
    cls = model_class(spec)
    merged = {**spec.defaults, **params}
    try:
        return cls(**merged)
    except TypeError as exc:
        raise TypeError(f"bad parameters for model {spec.name!r}: {exc}") from None


def parameter_names(name: "str | ModelSpec") -> tuple[str, ...]:
    """The constructor parameters of ``name``'s estimator (read from the class, nothing built)."""
    return tuple(model_class(name)._get_param_names())


def available_models() -> dict[str, str | None]:
    """``name -> None`` if importable, else the reason it is not (for UIs and ``prepare``)."""
    out: dict[str, str | None] = {}
    for name in MODEL_NAMES:
        try:
            model_class(name)
            out[name] = None
        except ModelUnavailableError as exc:
            out[name] = str(exc)
    return out


# ---------------------------------------------------------------------- persistence
_LINEAR_FORMAT = "crossmodal.linear-estimator"
_LINEAR_VERSION = 1
_ALLOWED_MODULE_PREFIXES = ("crossmodal_core.", "sklearn.")


def _is_torch_model(model: Any) -> bool:
    return hasattr(model, "module_") or any(c.__name__ == "TorchCrossModalEstimator" for c in type(model).__mro__)


class _Encoder:
    """Fitted-estimator state -> (JSON tree, flat dict of arrays); no pickle."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.skipped: list[str] = []

    def value(self, obj: Any, where: str) -> Any:
        from sklearn.base import BaseEstimator

        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        if isinstance(obj, np.generic):
            return {"__scalar__": obj.item(), "dtype": obj.dtype.str}
        if isinstance(obj, np.dtype):
            return {"__dtype__": obj.str}
        if isinstance(obj, np.ndarray):
            if obj.dtype == object:
                raise TypeError(f"{where}: object arrays cannot be stored without pickle")
            key = f"a{len(self.arrays)}"
            self.arrays[key] = obj
            return {"__array__": key}
        if isinstance(obj, tuple):
            return {"__tuple__": [self.value(v, f"{where}[{i}]") for i, v in enumerate(obj)]}
        if isinstance(obj, list):
            return [self.value(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        if isinstance(obj, dict) and all(isinstance(k, str) for k in obj):
            return {"__dict__": {k: self.value(v, f"{where}.{k}") for k, v in obj.items()}}
        if isinstance(obj, BaseEstimator):
            return self.estimator(obj, where)
        raise TypeError(f"{where}: cannot store a {type(obj).__name__}")

    def estimator(self, est: Any, where: str) -> dict:
        cls = type(est)
        if not cls.__module__.startswith(_ALLOWED_MODULE_PREFIXES):
            raise TypeError(f"{where}: class {cls.__module__}.{cls.__qualname__} is not from sklearn or crossmodal_core")
        fitted = {}
        for attr, val in vars(est).items():
            if not attr.endswith("_") or attr.startswith("__"):
                continue
            try:
                fitted[attr] = self.value(val, f"{where}.{attr}")
            except TypeError:
                self.skipped.append(f"{where}.{attr} ({type(val).__name__})")
        return {
            "__estimator__": f"{cls.__module__}:{cls.__qualname__}",
            "params": self.value(est.get_params(deep=False), f"{where}.params"),
            "fitted": fitted,
        }


def _decode(tree: Any, arrays: dict[str, np.ndarray], path: Path) -> Any:
    from sklearn.base import BaseEstimator

    if isinstance(tree, list):
        return [_decode(v, arrays, path) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if "__array__" in tree:
        return arrays[tree["__array__"]]
    if "__scalar__" in tree:
        return np.dtype(tree["dtype"]).type(tree["__scalar__"])
    if "__dtype__" in tree:
        return np.dtype(tree["__dtype__"])
    if "__tuple__" in tree:
        return tuple(_decode(v, arrays, path) for v in tree["__tuple__"])
    if "__dict__" in tree:
        return {k: _decode(v, arrays, path) for k, v in tree["__dict__"].items()}
    if "__estimator__" in tree:
        module_name, _, qualname = tree["__estimator__"].partition(":")
        if not (module_name + ".").startswith(_ALLOWED_MODULE_PREFIXES):
            raise ValueError(f"{path}: refuses to build class {tree['__estimator__']!r} (not sklearn / crossmodal_core)")
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        if not (isinstance(obj, type) and issubclass(obj, BaseEstimator)):
            raise ValueError(f"{path}: {tree['__estimator__']!r} is not an estimator class")
        est = obj(**_decode(tree["params"], arrays, path))
        for attr, val in tree["fitted"].items():
            setattr(est, attr, _decode(val, arrays, path))
        return est
    raise ValueError(f"{path}: malformed model tree entry {sorted(tree)[:5]}")


def save_model(model: Any, path: str | Path, name: str | None = None, extra: dict | None = None) -> Path:
    """Store a fitted model atomically.

    Deep models: ``model.save(path)`` (``.pt``). Linear models: pickle-free ``.npz`` (see the
    module docstring). ``name`` (registry name) and ``extra`` (e.g. dataset, views, metrics)
    are stored beside the state for display.
    """
    path = Path(path)
    if _is_torch_model(model):
        return Path(model.save(path))
    if path.suffix != ".npz":
        raise ValueError(f"linear models are stored as .npz, got {path}")
    enc = _Encoder()
    tree = enc.estimator(model, type(model).__name__)
    if not any(k.endswith("_") for k in tree["fitted"]):
        raise ValueError(f"cannot save an unfitted {type(model).__name__}")
    header = {
        "format": _LINEAR_FORMAT,
        "version": _LINEAR_VERSION,
        "name": name,
        "model": tree,
        "skipped": enc.skipped,
        "extra": extra or {},
    }
    text = json.dumps(header, default=store._json_default)
    store.atomic_save_npz(path, compressed=True, __model__=np.array(text), **enc.arrays)
    return path


def load_model(path: str | Path):
    """Load a model stored by :func:`save_model` (``.npz`` linear or ``.pt`` deep)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no stored model at {path}")
    if path.suffix != ".npz":
        deep = importlib.import_module(_DEEP)
        return deep.TorchCrossModalEstimator.load(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # zip / format errors all mean the same to the caller
        raise ValueError(f"{path}: not a readable stored model ({type(exc).__name__}: {exc})") from None
    if "__model__" not in arrays:
        raise ValueError(f"{path}: not a crossmodal linear model file (no __model__ entry)")
    try:
        header = json.loads(str(arrays.pop("__model__")))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: corrupt model header ({exc})") from None
    if header.get("format") != _LINEAR_FORMAT or header.get("version") != _LINEAR_VERSION:
        raise ValueError(f"{path}: unsupported model format {header.get('format')!r} v{header.get('version')}")
    model = _decode(header["model"], arrays, path)
    model.stored_info_ = {"name": header.get("name"), "skipped": header.get("skipped", []), **header.get("extra", {})}
    return model
