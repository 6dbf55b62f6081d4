"""The one model store: trained models, keyed the same way from the CLI, the app and a notebook.

Layout (under :func:`crossmodal_core.store.models_dir`)::

    <cache>/models/<dataset key>/<model>__<views>__<key>/
        embeddings.npz   one (n_items, k) float32 array per view, every item of the dataset
        model.npz        the fitted estimator (linear: pickle-free .npz; deep: model.pt + model.json)
        info.json        name, views, label, parameters, rows, test MAP, fit seconds, ...

``<dataset key>`` is :attr:`crossmodal_core.data.catalog.LoadedDataset.key` (it changes when
the dataset's content changes), ``<key>`` a digest of (dataset key, model, views, label,
parameters, rows). Every component goes through :func:`crossmodal_core.store.child_path`.

A model folder is written complete into a hidden temporary folder beside its place, then
renamed into place, so a reader (or a writer killed at any point) sees the previous model or
none, never half of one; a killed writer's temporary is removed by
:func:`crossmodal_core.store.clean_stale_temporaries`.

Evaluation protocol of a stored model (what the app scores): the dataset's own ``split`` when
it has both parts, else fold 0 of ``folds`` as test, else a seeded 80/20 split
(:func:`split_indices`). Models are fitted on the train rows (``rows="all"``: every row).
Relevance is the chosen label set, or the true pair only for the pseudo label
:data:`PAIR_LABEL`.

In a notebook::

    from crossmodal_core.data import catalog
    from crossmodal_core.models import trained
    ds = catalog.open_dataset("synthetic-vegas-small")
    m = trained.train_and_store(ds, "ccca", ("audio", "visual"), "class")
    trained.list_trained(ds)            # what `python -m crossmodal_core train` and the app stored too
"""

from __future__ import annotations

import contextlib
import inspect
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from crossmodal_core import store
from crossmodal_core.data.catalog import LoadedDataset
from crossmodal_core.data.dataset import CrossModalDataset
from crossmodal_core.models import registry

__all__ = [
    "PAIR_LABEL", "TrainedModel", "store_root", "split_indices", "labels_for", "flat_views", "model_views",
    "is_sequence_model", "embedding_names", "IMAGE_NDIM", "is_image_view", "modality_of", "modalities",
    "modality_inputs", "takes_image_views", "image_pair_views",
    "model_params", "model_dir", "list_trained", "find_trained", "load_embeddings", "load_model_object",
    "train_and_store", "fit_model",
]

ProgressCallback = Callable[[float, str], None]

#: pseudo label set: each item is its own class, so only the true pair is relevant
PAIR_LABEL = "pair (true pair only)"
INFO_FILE = "info.json"
EMBEDDINGS_FILE = "embeddings.npz"


def _noop(fraction: float, message: str) -> None:
    pass


@dataclass
class TrainedModel:
    """A stored model: embeddings of every item for each of its views."""

    name: str
    views: tuple[str, ...]
    label_name: str | None
    embeddings: dict[str, np.ndarray]
    info: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def id(self) -> str:
        return self.path.name if self.path else f"{self.name}__{'-'.join(self.views)}"

    @property
    def title(self) -> str:
        try:
            return registry.display_name(self.name)
        except KeyError:
            return self.name


# ---------------------------------------------------------------------- protocol
def split_indices(ds: CrossModalDataset, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(train rows, test rows)`` of the store's protocol (see the module docstring)."""
    n = ds.n_items
    if ds.split is not None and (ds.split == "test").any() and (ds.split == "train").any():
        return np.nonzero(ds.split == "train")[0], np.nonzero(ds.split == "test")[0]
    if ds.folds is not None and (ds.folds == 0).any() and (ds.folds > 0).any():
        return np.nonzero(ds.folds > 0)[0], np.nonzero(ds.folds == 0)[0]
    perm = np.random.default_rng(seed).permutation(n)
    n_test = max(1, n // 5)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def labels_for(ds: CrossModalDataset, label_name: str | None) -> tuple[np.ndarray, list[str]]:
    """``(labels (n,), class names)`` for a label choice (:data:`PAIR_LABEL` or None: item ids)."""
    if label_name is None or label_name == PAIR_LABEL:
        return np.arange(ds.n_items), [str(i) for i in ds.item_ids]
    return ds.label(label_name), ds.class_names[label_name]


def flat_views(ds: CrossModalDataset) -> list[str]:
    """Views usable by the pair models (2-D ones)."""
    return [v for v in ds.view_names if ds.views[v].ndim == 2]


# ---------------------------------------------------------------------- modalities
# A modality can have several input views: the music dataset's engraved score is the raster
# ``score_image`` (n, 1, H, W) for the CNN towers and a flat image feature of it (e.g. HOG,
# (n, d)) for the linear models; its audio is the flat ``audio`` features and the log-mel
# ``audio_mel`` (n, 1, n_mels, T). The app pairs *modalities*, and every model's embeddings
# are stored under the modality's name, whichever input view it read, so "audio <->
# score_image" lists the C-CCA fitted on the image feature beside the TNN-C-CCA fitted on the
# raster. Views belong together by the name before their first "_" (``audio_mel`` -> audio).
#: rank of an image-like view: (n, channels, height, width)
IMAGE_NDIM = 4


def is_image_view(ds: CrossModalDataset, view: str) -> bool:
    """Whether ``view`` is image-like, ``(n, channels, height, width)`` (a raster, a log-mel)."""
    return view in ds.views and ds.views[view].ndim == IMAGE_NDIM


def _family(view: str) -> str:
    return view.split("_", 1)[0]


def modality_of(ds: CrossModalDataset, view: str) -> str:
    """The modality whose embeddings ``view`` gives (the name they are stored and paired under):

    - a sequence view ``x_seq`` -> ``x`` when the flat view ``x`` exists;
    - an image-like view whose family has a flat view of the family's name -> that view
      (``audio_mel`` -> ``audio``); any other image-like view is its own modality (``score_image``);
    - a flat descriptor of an image-like view, named after it (``score_image_pix``,
      ``audio_mel_pix``) -> that view's modality: it stands for the image in the linear models;
    - a flat view of a family whose modality is an image (``score_hog`` with ``score_image``)
      -> that image view, likewise;
    - any other view is its own modality.
    """
    family = _family(view)
    if view.endswith("_seq") and view[:-4] in ds.views and ds.views[view[:-4]].ndim == 2:
        return view[:-4]
    arr = ds.views.get(view)
    if arr is None:
        return view
    if arr.ndim == IMAGE_NDIM:
        own = ds.views.get(family)
        return family if family != view and own is not None and own.ndim == 2 else view
    if arr.ndim == 2:
        sources = [w for w in ds.view_names if view.startswith(w + "_") and ds.views[w].ndim == IMAGE_NDIM]
        if sources:
            return modality_of(ds, max(sources, key=len))
    if arr.ndim == 2 and family != view and not (family in ds.views and ds.views[family].ndim == 2):
        images = [w for w in ds.view_names if w != view and _family(w) == family and ds.views[w].ndim == IMAGE_NDIM
                  and modality_of(ds, w) == w]
        if images:
            return images[0]
    return view


def modalities(ds: CrossModalDataset) -> list[str]:
    """The modalities the pair models can align, in the dataset's view order: every flat view
    that is its own modality, and every image-like view that is (``score_image``)."""
    out = []
    for v in ds.view_names:
        if ds.views[v].ndim in (2, IMAGE_NDIM) and modality_of(ds, v) == v:
            out.append(v)
    return out


def modality_inputs(ds: CrossModalDataset, modality: str) -> dict[str, str]:
    """Input views of ``modality``: ``{"flat": (n, d) view, "image": (n, c, h, w) view}``, each
    present only when the dataset has one (the view named like the modality first)."""
    out: dict[str, str] = {}
    for v in sorted(ds.view_names, key=lambda v: v != modality):
        if modality_of(ds, v) != modality:
            continue
        kind = {2: "flat", IMAGE_NDIM: "image"}.get(ds.views[v].ndim)
        if kind and kind not in out:
            out[kind] = v
    return out


def takes_image_views(name: str | registry.ModelSpec) -> bool:
    """Whether the model reads image-like views itself (a deep model: its tower is a CNN,
    picked from the view's rank); a linear model reads a modality's flat feature instead."""
    return registry.get_spec(name).family == "deep"


def image_pair_views(ds: CrossModalDataset, name: str | registry.ModelSpec, pair: Sequence[str]) -> tuple[str, ...]:
    """Input views of a model for a pair of modalities of which one is an image: a deep model
    reads each side's image-like view (the raster, the log-mel) where there is one, a linear
    model each side's flat feature. A clear ``ValueError`` when a side lacks what it needs."""
    spec = registry.get_spec(name)
    out = []
    for m in pair:
        inputs = modality_inputs(ds, m)
        view = (inputs.get("image") or inputs.get("flat")) if takes_image_views(spec) else inputs.get("flat")
        if view is None:
            raise ValueError(f"{spec.display} needs a flat (n, d) feature view of {m!r}, and the dataset "
                             f"{ds.name!r} has none (views: {ds.view_names}); the deep models read the image itself")
        out.append(view)
    return tuple(out)


def model_views(ds: CrossModalDataset, name: str | registry.ModelSpec, pair: Sequence[str] | None = None) -> tuple[str, ...]:
    """Views a model trains on: the registry's ``ModelSpec.views`` when the dataset has them
    all (UGAAR: sheet, lyrics, audio), else ``pair`` (default: the first two flat views); a
    pair with an image modality (``score_image``) gives each model the input views it can
    read (:func:`image_pair_views`)."""
    spec = registry.get_spec(name)
    if is_sequence_model(spec):
        return _sequence_views(ds, spec, pair)
    flat = flat_views(ds)
    if spec.views and all(v in flat for v in spec.views):
        return tuple(spec.views)
    if pair and any(is_image_view(ds, p) for p in pair):
        return image_pair_views(ds, spec, pair)
    return tuple(pair) if pair else tuple(flat[:2])


def is_sequence_model(name: str | registry.ModelSpec) -> bool:
    """Whether a model takes ``(n, T, d)`` sequence views (its registry views are ``*_seq``)."""
    views = registry.get_spec(name).views
    return bool(views) and all(v.endswith("_seq") for v in views)


def _sequence_views(ds: CrossModalDataset, spec: registry.ModelSpec, pair: Sequence[str] | None) -> tuple[str, ...]:
    """A sequence model's input views: ``pair`` (or the ``*_seq`` views of a flat ``pair``), else
    the registry's views, else the dataset's first two sequence views; a clear error without."""
    seq = [v for v in ds.view_names if ds.views[v].ndim == 3]
    if pair:
        wanted = [v if v in seq else f"{v}_seq" for v in pair]
        if all(v in seq for v in wanted):
            return tuple(wanted)
    elif all(v in seq for v in spec.views):
        return tuple(spec.views)
    elif len(seq) >= 2:
        return tuple(seq[:2])
    raise ValueError(
        f"{spec.display} is a sequence model: it needs two (n, T, d) sequence views"
        + (f" for the views {list(pair)}" if pair else "")
        + f", and the dataset {ds.name!r} has {'the sequence views ' + str(seq) if seq else 'no sequence view'}"
        " (the synthetic set has audio_seq / visual_seq when generated with sequences=True; the music "
        "dataset has audio_seq / sheet_seq)"
    )


def embedding_names(ds: CrossModalDataset, views: Sequence[str]) -> tuple[str, ...]:
    """What each input view's embeddings are stored as: its modality (:func:`modality_of`: a
    sequence view ``x_seq`` embeds ``x``, ``audio_mel`` embeds ``audio``, a flat image feature
    embeds ``score_image``), so pair lookups by modality work; the view's own name when that
    modality is itself an input of the model or two inputs share a modality."""
    mods = [modality_of(ds, v) for v in views]
    return tuple(m if m == v or (m not in views and mods.count(m) == 1) else v for v, m in zip(views, mods))


#: parameters a model needs when an input is image-like, where its default refuses images
#: (TNN-C-CCA's default fits Cluster-CCA on the raw inputs first; with a raster it runs the CNN
#: branches first and fits Cluster-CCA on their outputs)
IMAGE_PARAMS: dict[str, dict[str, Any]] = {"tnn-ccca": {"order": "network-first"}}


def model_params(ds: CrossModalDataset, name: str, views: Sequence[str],
                 overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Parameters a stored model is trained with, beyond the registry defaults: the default
    ``n_components`` capped by the smallest view width, :data:`IMAGE_PARAMS` when an input
    is image-like, then ``overrides``."""
    spec = registry.get_spec(name)
    defaults = spec.defaults
    widths = [ds.views[v].shape[-1] for v in views]
    params: dict[str, Any] = {}
    if defaults.get("n_components"):
        params["n_components"] = int(min(defaults["n_components"], *widths))
    if any(ds.views[v].ndim == IMAGE_NDIM for v in views):
        params.update(IMAGE_PARAMS.get(spec.name, {}))
    params.update(overrides or {})
    return params


# ---------------------------------------------------------------------- locations
def store_root(data: LoadedDataset) -> Path:
    return store.child_path(store.models_dir(), data.key)


def model_dir(data: LoadedDataset, name: str, views: Sequence[str], label_name: str | None,
              params: Mapping[str, Any], rows: str = "train") -> Path:
    spec = registry.get_spec(name)
    key = store.cache_key(data.key, spec.name, list(views), label_name, dict(params), rows, length=10)
    return store.child_path(store.models_dir(), data.key, f"{spec.name}__{'-'.join(views)}__{key}")


def list_trained(data: LoadedDataset, label_name: str | None = None) -> list[TrainedModel]:
    """Models stored for this dataset (any label set unless ``label_name`` is given)."""
    root = store_root(data)
    out: list[TrainedModel] = []
    if not root.is_dir():
        return out
    for folder in sorted(root.iterdir()):
        if folder.name.startswith(".") or not folder.is_dir():
            continue  # temporaries of unfinished writes are hidden
        info_path, emb_path = folder / INFO_FILE, folder / EMBEDDINGS_FILE
        if not (info_path.is_file() and emb_path.is_file()):
            continue
        try:
            info = store.read_json(info_path)
            model = TrainedModel(str(info["name"]), tuple(info["views"]), info.get("label_name"), {}, info, folder)
        except (ValueError, KeyError, TypeError):
            continue
        if label_name is not None and model.label_name != label_name:
            continue
        out.append(model)
    return out


def find_trained(data: LoadedDataset, name: str, pair: Sequence[str], label_name: str | None) -> TrainedModel | None:
    """The newest stored model ``name`` covering both views of ``pair``, or ``None``."""
    name = registry.get_spec(name).name
    hits = [m for m in list_trained(data, label_name) if m.name == name and set(pair) <= set(m.views)]
    return max(hits, key=lambda m: m.info.get("trained_at", 0)) if hits else None


def load_embeddings(model: TrainedModel) -> dict[str, np.ndarray]:
    if model.embeddings:
        return model.embeddings
    with np.load(model.path / EMBEDDINGS_FILE, allow_pickle=False) as z:
        model.embeddings = {v: z[v] for v in model.views}
    return model.embeddings


def load_model_object(model: TrainedModel) -> Any:
    """The fitted estimator (for embedding new inputs, e.g. alignment segments)."""
    state = model.info.get("state_file")
    if not state or store.slug(state) != state or not (model.path / state).is_file():
        raise ValueError(f"model {model.id} has no stored state; retrain it")
    return registry.load_model(model.path / state)


# ---------------------------------------------------------------------- training
def _accepts(fn: Callable, arg: str) -> bool:
    try:
        return arg in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _float32_view(arr: Any) -> Any:
    """A float32 view for fitting; a view on disk stays there (the linear models stream it).
    An image-like view ``(n, c, h, w)`` keeps its compact dtype (uint8 rasters, float16
    log-mels): the CNN towers cast each batch, and the music dataset's rasters would take
    over 1 GB as float32."""
    if hasattr(arr, "iter_blocks") and hasattr(arr, "astype"):
        return arr.astype(np.float32)
    if np.ndim(arr) == IMAGE_NDIM:
        return np.asarray(arr)
    return np.asarray(arr, dtype=np.float32)


def fit_model(ds: CrossModalDataset, name: str, views: Sequence[str], label_name: str | None, rows: np.ndarray,
              params: Mapping[str, Any], progress: ProgressCallback | None = None) -> tuple[Any, float]:
    """Fit a fresh ``name`` on ``rows``; returns ``(model, fit seconds)``. A ``ValueError``
    means the data cannot fit this model (the message says why)."""
    progress = progress or _noop
    spec = registry.get_spec(name)
    model = registry.make_model(spec, **params)
    y = labels_for(ds, label_name)[0][rows] if spec.supervised else None
    fit_args: dict[str, Any] = {}
    if _accepts(model.fit, "callback"):
        def callback(state: dict) -> None:
            epoch, total = state.get("epoch", 0), max(1, state.get("n_epochs", 1))
            progress(0.05 + 0.85 * epoch / total,
                     f"{spec.display}: epoch {epoch}/{total}, loss {state.get('loss', float('nan')):.4g}")
        fit_args["callback"] = callback
    progress(0.02, f"training {spec.display} on {len(rows)} items")
    start = time.perf_counter()
    model.fit([_float32_view(ds.views[v][rows]) for v in views], y, **fit_args)
    return model, time.perf_counter() - start


#: test items up to which the stored test MAP is the exact n x n MAP; above, it is estimated
#: from :data:`TEST_MAP_QUERIES` sampled queries per direction against every test item (the
#: exact MAP of 2·10^5 test items, a 10^6-row dataset's 20 %, would take hours on 2 cores)
TEST_MAP_EXACT_MAX = 20_000
TEST_MAP_QUERIES = 1_000


def _test_map(a: np.ndarray, b: np.ndarray, labels: np.ndarray) -> tuple[list[float], dict | None]:
    """``([MAP a->b, MAP b->a], None)`` exactly up to :data:`TEST_MAP_EXACT_MAX` rows; above,
    the sampled estimates and ``{"queries", "of", "stderr", "low", "high", "confidence"}``
    per direction (lists), so whoever shows the number can say it is an estimate."""
    from crossmodal_core import metrics

    if len(labels) <= TEST_MAP_EXACT_MAX:
        return [float(m) for m in metrics.map_both_directions(a, b, labels)], None
    est = [metrics.sampled_average_precision(q, g, labels, labels, n_samples=TEST_MAP_QUERIES, seed=0)[0]
           for q, g in ((a, b), (b, a))]
    return [e.value for e in est], {"queries": [e.n_sampled for e in est], "of": [e.n_population for e in est],
                                    "stderr": [e.stderr for e in est], "low": [e.low for e in est],
                                    "high": [e.high for e in est], "confidence": est[0].confidence}


@contextlib.contextmanager
def _atomic_dir(target: Path):
    """Yield a hidden temporary folder beside ``target``; on success it replaces ``target``
    whole (:func:`crossmodal_core.store.swap_in_dir`: a kill at any moment leaves the previous
    folder or the new one, never neither)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    store.recover_interrupted_swap(target)  # what a killed writer of this key left
    tmp = Path(tempfile.mkdtemp(prefix=store.temporary_prefix(target), suffix=".new", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~store.current_umask())
        store.swap_in_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def state_filename(name: str | registry.ModelSpec) -> str:
    return "model.pt" if registry.get_spec(name).family == "deep" else "model.npz"


def train_and_store(data: LoadedDataset, name: str, pair: Sequence[str] | None = None,
                    label_name: str | None = None, *, params: Mapping[str, Any] | None = None,
                    rows: str = "train", views: Sequence[str] | None = None,
                    progress: ProgressCallback | None = None) -> TrainedModel:
    """Fit ``name`` (a registry name or a resolved :class:`~crossmodal_core.models.registry.ModelSpec`)
    on the train rows (``rows="all"``: every row), embed every item and store the model; returns it. ``views`` default: :func:`model_views` of ``pair``; ``params``
    override :func:`model_params`. ``label_name`` default: the dataset's default label (the
    pseudo label :data:`PAIR_LABEL` when it has none, as the app picks)."""
    progress = progress or _noop
    spec = registry.get_spec(name)
    ds = data.dataset
    views = tuple(views) if views else model_views(ds, spec, pair)
    names = embedding_names(ds, views)
    pair = tuple(names[views.index(p)] if p in views else p for p in pair) if pair else tuple(names[:2])
    if label_name is None:  # the dataset's default label; without labels, the true pair
        label_name = ds.default_label or PAIR_LABEL
    full_params = model_params(ds, spec, views, params)
    folder = model_dir(data, spec, views, label_name, full_params, rows)
    train, test = split_indices(ds)
    fit_rows = np.arange(ds.n_items) if rows == "all" else train
    model, fit_seconds = fit_model(ds, spec, views, label_name, fit_rows, full_params, progress)
    progress(0.92, "embedding every item")
    embedded = model.transform([_float32_view(ds.views[v]) for v in views])
    embeddings = {v: np.asarray(e, dtype=np.float32) for v, e in zip(names, embedded)}
    labels, _ = labels_for(ds, label_name)
    test_map, test_map_sampled = None, None
    if len(test) and all(v in embeddings for v in pair):
        test_map, test_map_sampled = _test_map(embeddings[pair[0]][test], embeddings[pair[1]][test], labels[test])
    state_file = state_filename(spec)
    info = {"name": spec.name, "views": list(names), "label_name": label_name, "params": full_params,
            "rows": rows, "dataset": data.key, "dataset_id": data.entry.id, "n_train": int(len(fit_rows)),
            "n_test": int(len(test)), "fit_seconds": round(fit_seconds, 2), "trained_at": time.time(),
            "state_file": state_file, "test_map": test_map, "test_map_pair": list(pair)}
    if test_map_sampled is not None:
        info["test_map_sampled"] = test_map_sampled
    if names != views:
        info["input_views"] = list(views)
    with _atomic_dir(folder) as tmp:
        store.atomic_save_npz(tmp / EMBEDDINGS_FILE, **embeddings)
        registry.save_model(model, tmp / state_file, name=spec.name,
                            extra={"dataset": data.key, "views": list(views), "label": label_name})
        store.atomic_write_json(tmp / INFO_FILE, info)
    progress(1.0, f"{spec.display} trained in {fit_seconds:.1f} s")
    return TrainedModel(spec.name, names, label_name, embeddings, info, folder)
