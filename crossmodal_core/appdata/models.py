"""Trained models for the pages: the one model store (:mod:`crossmodal_core.models.trained`),
seen per dataset and modality pair, plus the "train missing models" button's logic.

A model trained with ``python -m crossmodal_core train`` lands in the same store, so the
pages list it like one trained here.
"""

from __future__ import annotations

from typing import Any, Sequence

from crossmodal_core.data.catalog import LoadedDataset, ProgressCallback
from crossmodal_core.models import registry, trained
from crossmodal_core.models.trained import TrainedModel, find_trained, list_trained, load_embeddings, \
    load_model_object

__all__ = [
    "TrainedModel", "ORIGINAL", "ORIGINAL_TITLE", "DEFAULT_MODELS", "model_names", "model_title", "model_views",
    "model_params", "list_trained", "find_trained", "load_embeddings", "load_model_object", "train_model",
    "default_models", "missing_models", "train_missing",
]

#: models the "train missing models" button trains, in this order
DEFAULT_MODELS = ("cca", "ccca", "tnn-ccca")
ORIGINAL = "original"  # pseudo model: the raw features
ORIGINAL_TITLE = "Original features"


def _noop(fraction: float, message: str) -> None:
    pass


def model_names() -> tuple[str, ...]:
    """Every registered model, in the registry's order."""
    return registry.MODEL_NAMES


def model_title(name: str) -> str:
    """Display name of a model (or of the :data:`ORIGINAL` pseudo model)."""
    return ORIGINAL_TITLE if name == ORIGINAL else registry.display_name(name)


def model_views(app: LoadedDataset, name: str, pair: tuple[str, str]) -> tuple[str, ...]:
    """Views a model trains on: its registry views when the dataset has them, else ``pair``."""
    return trained.model_views(app.dataset, name, pair)


def model_params(app: LoadedDataset, name: str, views: Sequence[str]) -> dict[str, Any]:
    return trained.model_params(app.dataset, name, views)


def train_model(app: LoadedDataset, name: str, pair: tuple[str, str], label_name: str,
                progress: ProgressCallback | None = None) -> TrainedModel:
    """Fit ``name`` on the train rows, embed every item, store it; return the trained model."""
    return trained.train_and_store(app, name, pair, label_name, progress=progress)


def default_models(app: LoadedDataset, pair: Sequence[str] | None = None) -> tuple[str, ...]:
    """What "train missing models" trains: the poster's trio, plus UGAAR where its views exist
    and (when ``pair`` is given) cover ``pair``: UGAAR's views are sheet, lyrics and audio,
    so for audio <-> score_image it would train and still be missing."""
    ugaar = registry.get_spec("ugaar").views
    if all(v in trained.flat_views(app.dataset) for v in ugaar) and (pair is None or set(pair) <= set(ugaar)):
        return DEFAULT_MODELS + ("ugaar",)
    return DEFAULT_MODELS


def missing_models(app: LoadedDataset, pair: tuple[str, str], label_name: str,
                   wanted: Sequence[str] | None = None) -> list[str]:
    wanted = default_models(app, pair) if wanted is None else wanted
    return [m for m in wanted if find_trained(app, m, pair, label_name) is None]


def train_missing(app: LoadedDataset, pair: tuple[str, str], label_name: str,
                  wanted: Sequence[str] | None = None, progress: ProgressCallback | None = None) -> list[TrainedModel]:
    """Train every model of ``wanted`` not trained yet, with one overall progress."""
    progress = progress or _noop
    todo = missing_models(app, pair, label_name, wanted)
    out = []
    for i, name in enumerate(todo):
        def sub(f: float, msg: str, i=i) -> None:
            progress((i + f) / len(todo), f"[{i + 1}/{len(todo)}] {msg}")
        out.append(train_model(app, name, pair, label_name, sub))
    progress(1.0, "all models trained" if todo else "nothing to train")
    return out
