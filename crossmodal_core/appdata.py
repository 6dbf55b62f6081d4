"""What the Streamlit pages need, without Streamlit: datasets, trained models, projections,
results tables and retrieval for one query.

The pages stay thin: they read the user's choices, call these functions (cached with
``st.cache_data`` / ``st.cache_resource``) and draw. Nothing here imports Streamlit, and
nothing here runs on a page load unless the page asks (training and projecting are only
called from buttons).

Layout on disk (all under :mod:`crossmodal_core.store`):

- datasets: the embedded music dataset ``assets/datasets/music21_lyrics/``, any ``.npz`` /
  ``.h5`` / ``.hdf5`` file in ``assets/datasets/`` or ``<cache>/uploads/``, and a synthetic
  VEGAS-shaped set generated once into ``<cache>/datasets/``;
- trained models: ``<cache>/models/app/<dataset key>/<model>__<views>__<key>/`` with
  ``embeddings.npz`` (one ``(n_items, k)`` array per view, every item), ``info.json`` and the
  model state (``model.pt`` for deep models, ``state.npz`` for linear ones);
- projections: :mod:`crossmodal_core.projection`.

Evaluation protocol for the app: the dataset's own ``split`` when present (train/test), else
fold 0 of ``folds`` as test, else a seeded 80/20 split. Retrieval runs test queries against
the test gallery of the other modality; relevance = same label of the chosen label set, or
the true pair only for the pseudo label :data:`PAIR_LABEL`.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from crossmodal_core import projection as proj
from crossmodal_core import store
from crossmodal_core.data.dataset import CrossModalDataset, DatasetError

ProgressCallback = Callable[[float, str], None]

#: pseudo label set: each item is its own class, so only the true pair is relevant
PAIR_LABEL = "pair (true pair only)"
MUSIC_DATASET_DIR = "music21_lyrics"
SYNTHETIC_ID = "synthetic:vegas-small"
#: reduced VEGAS shape for the app (same dims and classes, fewer items, so training is quick)
SYNTHETIC_SIZE = {"n_train": 4000, "n_test": 1000, "n_classes": 10, "dims": (128, 1024), "seed": 0}
#: models the "train missing models" button trains, in this order
DEFAULT_MODELS = ("cca", "ccca", "tnn-ccca")
ORIGINAL = "original"  # pseudo model: the raw features
FILE_SUFFIXES = (".npz", ".h5", ".hdf5")

MODEL_LABELS = {
    "original": "Original features", "cca": "CCA", "kcca": "KCCA", "ccca": "C-CCA", "ckcca": "C-KCCA",
    "dcca": "DCCA", "cdcca": "C-DCCA", "tnn-ccca": "TNN-C-CCA", "contrastive": "Contrastive",
    "ugaar": "UGAAR",
}


def _noop(fraction: float, message: str) -> None:
    pass


def missing_piece(module: str) -> str | None:
    """``None`` when ``module`` imports, else a short reason (a part not built yet)."""
    try:
        importlib.import_module(module)
        return None
    except ImportError as exc:
        return f"`{module}` is not available yet ({exc})"


# ====================================================================== datasets
@dataclass
class DatasetEntry:
    """One choice in the dataset picker."""

    id: str
    label: str
    kind: str  # "music" | "synthetic" | "file"
    path: Path | None = None
    note: str = ""


@dataclass
class AppDataset:
    """A loaded dataset plus what the pages derive from it."""

    entry: DatasetEntry
    dataset: CrossModalDataset
    fragments: list | None = None  # music fragments, row-aligned with the dataset
    key: str = ""  # changes when the file changes
    works_cache: dict[str, list[int]] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.dataset.name


def _uploads_dir() -> Path:
    return store.cache_dir() / "uploads"


def _synthetic_path() -> Path:
    return store.cache_dir() / "datasets" / f"synthetic-vegas-{store.cache_key(SYNTHETIC_SIZE, length=8)}.npz"


def list_datasets() -> list[DatasetEntry]:
    """Every dataset the app can open, the embedded music dataset first."""
    entries: list[DatasetEntry] = []
    music = store.datasets_dir() / MUSIC_DATASET_DIR
    # build_info.json is written last by the builder: without it a build is running or was cut
    if all((music / f).is_file() for f in ("dataset.npz", "fragments.json", "build_info.json")):
        entries.append(DatasetEntry("music", "Music: sheet / lyrics / audio (music21 corpus, embedded)",
                                    "music", music))
    for folder in (store.datasets_dir(), _uploads_dir()):
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.is_file() and path.suffix.lower() in FILE_SUFFIXES:
                    where = "uploaded" if folder == _uploads_dir() else "data folder"
                    entries.append(DatasetEntry(f"file:{path}", f"{path.name} ({where})", "file", path))
    n = SYNTHETIC_SIZE["n_train"] + SYNTHETIC_SIZE["n_test"]
    entries.append(DatasetEntry(
        SYNTHETIC_ID, f"SYNTHETIC VEGAS-shaped audio/visual ({n} items, 10 classes; not real data)",
        "synthetic", _synthetic_path(),
        note="Generated Gaussian class clusters with VEGAS's shapes (128-d audio, 1024-d visual). "
             "Numbers on it say nothing about real VEGAS performance."))
    return entries


def save_upload(filename: str, data: bytes) -> DatasetEntry:
    """Store an uploaded feature file under ``<cache>/uploads`` after checking it loads."""
    suffix = Path(filename).suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise DatasetError(f"{filename}: unsupported file type {suffix!r}; use one of {FILE_SUFFIXES}")
    target = _uploads_dir() / Path(filename).name
    with store.atomic_path(target, suffix=suffix) as tmp:
        tmp.write_bytes(data)
        _read_dataset_file(tmp)  # raises DatasetError naming the problem; target untouched
    return DatasetEntry(f"file:{target}", f"{target.name} (uploaded)", "file", target)


def _read_dataset_file(path: Path) -> CrossModalDataset:
    from crossmodal_core.data import io as data_io

    return data_io.load_dataset(path)


def _file_key(path: Path) -> str:
    stat = path.stat()
    return store.cache_key(str(path.name), stat.st_size, int(stat.st_mtime), length=12)


def find_entry(dataset_id: str) -> DatasetEntry:
    for entry in list_datasets():
        if entry.id == dataset_id:
            return entry
    raise KeyError(f"no dataset {dataset_id!r}")


def load_dataset(dataset_id: str, progress: ProgressCallback | None = None) -> AppDataset:
    """Open a dataset by picker id (the synthetic one is generated and stored on first use)."""
    progress = progress or _noop
    entry = find_entry(dataset_id)
    if entry.kind == "music":
        from crossmodal_core.data.music import load_music_dataset

        ds, fragments = load_music_dataset(entry.path)
        # the data files only (a README beside them must not orphan the trained models)
        key = "music-" + store.cache_key([_file_key(entry.path / f) for f in ("dataset.npz", "fragments.json")],
                                         length=12)
        return AppDataset(entry, ds, list(fragments), key)
    if entry.kind == "synthetic":
        path = entry.path
        if not path.exists():
            from crossmodal_core.data import io as data_io
            from crossmodal_core.data.synthetic import make_synthetic_av

            progress(0.1, "generating the synthetic VEGAS-shaped set (once)")
            ds = make_synthetic_av(**SYNTHETIC_SIZE)
            ds.info = {**ds.info, "synthetic": True}
            data_io.save_dataset(ds, path)
        ds = _read_dataset_file(path)
        ds.info = {**ds.info, "synthetic": True}
        progress(1.0, "dataset ready")
        return AppDataset(entry, ds, None, "synthetic-" + store.cache_key(SYNTHETIC_SIZE, length=12))
    ds = _read_dataset_file(entry.path)
    return AppDataset(entry, ds, None, f"{entry.path.stem}-{_file_key(entry.path)}")


def label_choices(ds: CrossModalDataset) -> list[str]:
    """Label sets that can define relevance; the dataset's default first, then the pair label."""
    names = list(ds.label_names)
    if ds.default_label in names:
        names.remove(ds.default_label)
        names.insert(0, ds.default_label)
    return names + [PAIR_LABEL]


def labels_for(ds: CrossModalDataset, label_name: str) -> tuple[np.ndarray, list[str]]:
    """``(labels (n,), class names)`` for a label choice (:data:`PAIR_LABEL`: item ids)."""
    if label_name == PAIR_LABEL:
        return np.arange(ds.n_items), [str(i) for i in ds.item_ids]
    return ds.label(label_name), ds.class_names[label_name]


def flat_views(ds: CrossModalDataset) -> list[str]:
    """Views usable by the pair models (2-D ones)."""
    return [v for v in ds.view_names if ds.views[v].ndim == 2]


def view_pairs(ds: CrossModalDataset) -> list[tuple[str, str]]:
    """Modality pairs to retrieve between, the most natural first.

    On the music dataset sheet/audio comes first: it is the pair the models align well
    (R@1 about 0.84) and it has audio to play, so a new user's first view is not a
    near-chance lyrics pairing.
    """
    names = flat_views(ds)
    preferred = [("audio", "visual"), ("sheet", "audio"), ("sheet", "lyrics"), ("lyrics", "audio")]
    pairs = []
    for a, b in combinations(names, 2):
        pairs.append((b, a) if (b, a) in preferred else (a, b))
    order = {p: i for i, p in enumerate(preferred)}
    return sorted(pairs, key=lambda p: order.get(p, len(order)))


def split_indices(ds: CrossModalDataset, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(train rows, test rows)`` for the app's evaluation (see module docstring)."""
    n = ds.n_items
    if ds.split is not None and (ds.split == "test").any() and (ds.split == "train").any():
        return np.nonzero(ds.split == "train")[0], np.nonzero(ds.split == "test")[0]
    if ds.folds is not None and (ds.folds == 0).any() and (ds.folds > 0).any():
        return np.nonzero(ds.folds > 0)[0], np.nonzero(ds.folds == 0)[0]
    perm = np.random.default_rng(seed).permutation(n)
    n_test = max(1, n // 5)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def item_text(app: AppDataset, rows: Sequence[int] | np.ndarray, label_name: str | None = None) -> list[str]:
    """One-line description of items for lists and hovers: title, class, lyrics snippet."""
    ds = app.dataset
    rows = np.asarray(rows, dtype=int)
    out = []
    meta = ds.metadata
    lab_name = label_name if label_name and label_name != PAIR_LABEL else ds.default_label
    for r in rows:
        parts = []
        for col in ("title", "name"):
            if col in meta:
                parts.append(str(meta[col][r]))
                break
        else:
            if app.fragments is not None and app.fragments[r].title:
                parts.append(app.fragments[r].title)
            else:
                parts.append(str(ds.item_ids[r]))
        if lab_name is not None:
            parts.append(f"[{ds.class_names[lab_name][ds.labels[lab_name][r]]}]")
        lyrics = _lyrics_of(app, r)
        if lyrics:
            parts.append(f"\u201c{_snippet(lyrics, 60)}\u201d")
        out.append(" ".join(parts))
    return out


def _lyrics_of(app: AppDataset, row: int) -> str:
    if app.fragments is not None:
        return str(app.fragments[row].lyrics)
    for col in ("lyrics", "text"):
        if col in app.dataset.metadata:
            return str(app.dataset.metadata[col][row])
    return ""


def _snippet(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def item_details(app: AppDataset, row: int) -> dict[str, Any]:
    """Metadata of one item (for the retrieval and alignment pages)."""
    ds = app.dataset
    d: dict[str, Any] = {"id": str(ds.item_ids[row])}
    for name in ds.label_names:
        d[name] = ds.class_names[name][ds.labels[name][row]]
    for col, values in ds.metadata.items():
        d[col] = values[row].item() if hasattr(values[row], "item") else values[row]
    if app.fragments is not None:
        f = app.fragments[row]
        d.update(title=f.title, composer=f.composer, lyrics=f.lyrics, measures=f"{f.measure_start}-{f.measure_end}",
                 language=f.language, key=f.key, duration_s=round(f.duration_s, 2))
    return d


# ====================================================================== models
@dataclass
class TrainedModel:
    """A model trained by the app: embeddings of every item for each of its views."""

    name: str
    views: tuple[str, ...]
    label_name: str
    embeddings: dict[str, np.ndarray]
    info: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def id(self) -> str:
        return self.path.name if self.path else f"{self.name}__{'-'.join(self.views)}"

    @property
    def title(self) -> str:
        return MODEL_LABELS.get(self.name, self.name)


def _models_root(app: AppDataset) -> Path:
    return store.models_dir() / "app" / app.key


def model_params(app: AppDataset, name: str, views: Sequence[str]) -> dict[str, Any]:
    """Hyper-parameters the app trains with: the registry defaults, ``n_components`` capped
    by the smallest view width, fewer epochs on small sets."""
    widths = [app.dataset.views[v].shape[-1] for v in views]
    params: dict[str, Any] = {}
    try:
        from crossmodal_core.models.registry import make_model

        defaults = make_model(name).get_params()
    except (ImportError, TypeError, ValueError):
        defaults = {}
    if "n_components" in defaults:
        params["n_components"] = int(min(defaults["n_components"] or 10, *widths))
    if "random_state" in defaults:
        params["random_state"] = 0
    return params


def _model_dir(app: AppDataset, name: str, views: Sequence[str], label_name: str, params: dict) -> Path:
    key = store.cache_key(app.key, name, list(views), label_name, params, length=10)
    return _models_root(app) / f"{name}__{'-'.join(views)}__{key}"


def model_views(app: AppDataset, name: str, pair: tuple[str, str]) -> tuple[str, ...]:
    """Views a model trains on: UGAAR takes sheet, lyrics and audio; the rest the pair."""
    if name == "ugaar":
        three = ("sheet", "lyrics", "audio")
        if all(v in flat_views(app.dataset) for v in three):
            return three
    return tuple(pair)


def list_trained(app: AppDataset, label_name: str | None = None) -> list[TrainedModel]:
    """Models trained on this dataset (any label set unless ``label_name`` is given)."""
    root = _models_root(app)
    out = []
    if not root.is_dir():
        return out
    for folder in sorted(root.iterdir()):
        info_path = folder / "info.json"
        emb_path = folder / "embeddings.npz"
        if not (info_path.exists() and emb_path.exists()):
            continue
        try:
            info = store.read_json(info_path)
        except ValueError:
            continue
        if label_name is not None and info.get("label_name") != label_name:
            continue
        out.append(TrainedModel(info["name"], tuple(info["views"]), info["label_name"], {}, info, folder))
    return out


def load_embeddings(model: TrainedModel) -> dict[str, np.ndarray]:
    if model.embeddings:
        return model.embeddings
    with np.load(model.path / "embeddings.npz", allow_pickle=False) as z:
        model.embeddings = {v: z[v] for v in model.views}
    return model.embeddings


def find_trained(app: AppDataset, name: str, pair: tuple[str, str], label_name: str) -> TrainedModel | None:
    """The trained model ``name`` covering both views of ``pair`` (latest), or ``None``."""
    hits = [m for m in list_trained(app, label_name) if m.name == name and set(pair) <= set(m.views)]
    return max(hits, key=lambda m: m.info.get("trained_at", 0)) if hits else None


def train_model(app: AppDataset, name: str, pair: tuple[str, str], label_name: str,
                progress: ProgressCallback | None = None) -> TrainedModel:
    """Fit ``name`` on the train rows, embed every item, store it; return the trained model."""
    from crossmodal_core.models.registry import make_model

    progress = progress or _noop
    ds = app.dataset
    views = model_views(app, name, pair)
    params = model_params(app, name, views)
    folder = _model_dir(app, name, views, label_name, params)
    train, test = split_indices(ds)
    labels, _ = labels_for(ds, label_name)
    model = make_model(name, **params)
    xs = [ds.views[v].astype(np.float32) for v in views]
    progress(0.02, f"training {MODEL_LABELS.get(name, name)} on {len(train)} items")
    start = time.perf_counter()
    fit_args: dict[str, Any] = {}
    if _accepts(model.fit, "callback"):
        def callback(state: dict) -> None:
            epoch, total = state.get("epoch", 0), max(1, state.get("n_epochs", 1))
            progress(0.05 + 0.85 * epoch / total,
                     f"{MODEL_LABELS.get(name, name)}: epoch {epoch}/{total}, loss {state.get('loss', float('nan')):.4g}")
        fit_args["callback"] = callback
    model.fit([x[train] for x in xs], labels[train], **fit_args)
    fit_seconds = time.perf_counter() - start
    progress(0.92, "embedding every item")
    embedded = model.transform(xs)
    embeddings = {v: np.asarray(e, dtype=np.float32) for v, e in zip(views, embedded)}
    folder.mkdir(parents=True, exist_ok=True)
    store.atomic_save_npz(folder / "embeddings.npz", **embeddings)
    state_file = _save_state(model, name, folder)
    test_map = None
    try:
        from crossmodal_core.metrics import map_both_directions

        a, b = embeddings[pair[0]][test], embeddings[pair[1]][test]
        test_map = [float(m) for m in map_both_directions(a, b, labels[test])]
    except ImportError:
        pass
    info = {"name": name, "views": list(views), "label_name": label_name, "params": params,
            "dataset": app.key, "n_train": int(len(train)), "n_test": int(len(test)),
            "fit_seconds": round(fit_seconds, 2), "trained_at": time.time(), "state_file": state_file,
            "test_map": test_map, "test_map_pair": list(pair)}
    store.atomic_write_json(folder / "info.json", info)
    progress(1.0, f"{MODEL_LABELS.get(name, name)} trained in {fit_seconds:.1f} s")
    return TrainedModel(name, views, label_name, embeddings, info, folder)


def _accepts(fn: Callable, arg: str) -> bool:
    import inspect

    try:
        return arg in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _save_state(model: Any, name: str, folder: Path) -> str:
    """Store the fitted model with the registry (deep: ``.pt``; linear: pickle-free ``.npz``)."""
    from crossmodal_core.models import registry

    filename = "model.pt" if registry.get_spec(name).family == "deep" else "model.npz"
    registry.save_model(model, folder / filename, name=name)
    return filename


def load_model_object(model: TrainedModel) -> Any:
    """The fitted estimator (for embedding new inputs, e.g. alignment segments)."""
    from crossmodal_core.models import registry

    state = model.info.get("state_file")
    if not state or not (model.path / state).exists():
        raise ValueError(f"model {model.id} has no stored state; retrain it")
    return registry.load_model(model.path / state)


def default_models(app: AppDataset) -> tuple[str, ...]:
    """What "train missing models" trains: the poster's trio, plus UGAAR on the music dataset."""
    if all(v in flat_views(app.dataset) for v in ("sheet", "lyrics", "audio")):
        return DEFAULT_MODELS + ("ugaar",)
    return DEFAULT_MODELS


def missing_models(app: AppDataset, pair: tuple[str, str], label_name: str,
                   wanted: Sequence[str] | None = None) -> list[str]:
    wanted = default_models(app) if wanted is None else wanted
    return [m for m in wanted if find_trained(app, m, pair, label_name) is None]


def train_missing(app: AppDataset, pair: tuple[str, str], label_name: str,
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


# ====================================================================== panels and projections
@dataclass
class PanelData:
    """What the explorer draws for one panel: 2-D points of the two modalities."""

    title: str
    method: str
    coords: list[np.ndarray]  # per modality, (n_points, 2)
    rows: np.ndarray  # dataset rows of the points
    joint: bool
    stored: bool  # False when PCA was computed on the fly because the UMAP is missing


def panel_matrices(app: AppDataset, model: TrainedModel | None, pair: tuple[str, str]) -> list[np.ndarray]:
    """Test-row matrices of the two modalities for a panel (raw features when ``model`` is None)."""
    _, test = split_indices(app.dataset)
    if model is None:
        return [app.dataset.views[v][test] for v in pair]
    emb = load_embeddings(model)
    return [emb[v][test] for v in pair]


def _panel_ids(app: AppDataset, model: TrainedModel | None, pair: tuple[str, str]) -> tuple[str, str]:
    model_id = f"{ORIGINAL}:{'-'.join(pair)}" if model is None else f"{model.id}:{'-'.join(pair)}"
    return app.key, model_id


def panel_projection(app: AppDataset, model: TrainedModel | None, pair: tuple[str, str], method: str,
                     label_name: str) -> PanelData | None:
    """The stored projection of a panel; for PCA compute it (instant) when missing; for UMAP
    return ``None`` when missing (never computed on load)."""
    ds_id, model_id = _panel_ids(app, model, pair)
    stored = proj.load_projection(ds_id, model_id, method)
    fresh = False
    if stored is None:
        if method != "pca":
            return None
        stored = proj.get_or_compute_projection(ds_id, model_id, panel_matrices(app, model, pair), "pca",
                                                labels=_test_labels(app, label_name))
        fresh = True
    _, test = split_indices(app.dataset)
    title = MODEL_LABELS[ORIGINAL] if model is None else model.title
    return PanelData(title, method, stored.coords, test[stored.index], stored.joint, not fresh)


def _test_labels(app: AppDataset, label_name: str) -> np.ndarray:
    labels, _ = labels_for(app.dataset, label_name)
    return labels[split_indices(app.dataset)[1]]


def compute_panel_projection(app: AppDataset, model: TrainedModel | None, pair: tuple[str, str], method: str,
                             label_name: str, progress: ProgressCallback | None = None) -> None:
    ds_id, model_id = _panel_ids(app, model, pair)
    proj.get_or_compute_projection(ds_id, model_id, panel_matrices(app, model, pair), method,
                                   labels=_test_labels(app, label_name), progress=progress)


# ====================================================================== retrieval
@dataclass
class RetrievalView:
    """Test-set embeddings of one model for one direction (queries -> gallery)."""

    model: TrainedModel
    query_view: str
    gallery_view: str
    rows: np.ndarray  # dataset rows of the test items (queries and gallery share them)
    queries: np.ndarray
    gallery: np.ndarray
    labels: np.ndarray  # relevance labels of the test items


def retrieval_view(app: AppDataset, model: TrainedModel, query_view: str, gallery_view: str,
                   label_name: str) -> RetrievalView:
    _, test = split_indices(app.dataset)
    emb = load_embeddings(model)
    labels, _ = labels_for(app.dataset, label_name)
    return RetrievalView(model, query_view, gallery_view, test, emb[query_view][test], emb[gallery_view][test],
                         labels[test])


def query_results(rv: RetrievalView, query_pos: int, k: int = 10) -> dict[str, Any]:
    """Top-``k`` of one query (position in the test rows): gallery rows, scores, relevance,
    the query's AP and the rank of its true pair."""
    from crossmodal_core.retrieval import query_report

    rep = query_report(int(query_pos), rv.queries, rv.gallery, rv.labels, rv.labels, k=min(k, len(rv.gallery)),
                       paired=True)
    idx = np.asarray(rep.indices)
    return {
        "positions": idx,
        "rows": rv.rows[idx],
        "scores": np.asarray(rep.scores),
        "relevant": np.asarray(rep.relevant),
        "is_pair": idx == query_pos,
        "ap": float(rep.ap),
        "pair_rank": int(rep.pair_rank),
        "n_relevant": int(rep.n_relevant),
    }


def all_query_ap(rv: RetrievalView) -> np.ndarray:
    from crossmodal_core import metrics

    return np.asarray(metrics.average_precision(rv.queries, rv.gallery, rv.labels, rv.labels))


def error_analysis(rv: RetrievalView, class_names: list[str], n_worst: int = 10) -> dict[str, Any]:
    """Worst queries by AP, per-class AP and the top-1 class confusion matrix (classes
    present among the test items only)."""
    from crossmodal_core import metrics
    from crossmodal_core.retrieval import top1_confusion, worst_queries

    ap = all_query_ap(rv)
    classes, codes = np.unique(rv.labels, return_inverse=True)
    per_class = metrics.per_class_average_precision(ap, rv.labels)
    confusion = top1_confusion(rv.queries, rv.gallery, codes, codes, len(classes))
    return {
        "ap": ap, "map": float(np.nanmean(ap)), "worst": worst_queries(ap, n_worst),
        "per_class": {class_names[int(c)]: float(v) for c, v in per_class.items()},
        "confusion": np.asarray(confusion), "confusion_classes": [class_names[int(c)] for c in classes],
    }


def pr_curve(rv: RetrievalView, n_points: int = 11) -> tuple[np.ndarray, np.ndarray]:
    from crossmodal_core import metrics

    r, p = metrics.precision_recall_curve(rv.queries, rv.gallery, rv.labels, rv.labels, n_points=n_points)
    return np.asarray(r), np.asarray(p)


# ====================================================================== results tables
def load_results() -> list[dict[str, Any]]:
    """Rows of every ``assets/results/*.json`` as flat dicts (each names its source file)."""
    rows: list[dict[str, Any]] = []
    folder = store.results_dir()
    if not folder.is_dir():
        return rows
    for path in sorted(folder.glob("*.json")):
        try:
            data = store.read_json(path)
        except ValueError:
            continue
        for rec in _records(data):
            if isinstance(rec, dict):
                rows.append({"source": path.stem, **rec})
    return rows


def _records(data: Any) -> list:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for key in ("rows", "results", "records", "table"):
            if isinstance(data.get(key), list):
                meta = {k: v for k, v in data.items() if not isinstance(v, (list, dict))}
                return [{**meta, **r} if isinstance(r, dict) else r for r in data[key]]
        return [data]
    return []


def poster_table(rows: list[dict[str, Any]]):
    """Results in the poster's layout: one row per model, one column per (dataset, direction),
    cells ``mean ± std`` of MAP (%) over folds. Returns a pandas DataFrame (empty if none)."""
    import pandas as pd

    if not rows:
        return pd.DataFrame()
    df = pd.json_normalize(rows, sep=".")
    model_col = _first_col(df, ("model", "model_name", "name"))
    dataset_col = _first_col(df, ("dataset", "dataset_name", "source"))
    if model_col is None:
        return df
    long = []
    for _, r in df.iterrows():
        for col in df.columns:
            direction = _direction_of(col)
            if direction is None:
                continue
            value = r[col]
            if isinstance(value, (int, float, np.floating)) and np.isfinite(value):
                dataset = str(r[dataset_col]) if dataset_col else ""
                subset = r.get("subset") if "subset" in df.columns else None
                if isinstance(subset, str) and subset not in ("", "all"):
                    dataset = f"{dataset} ({subset})"
                long.append({"model": r[model_col], "dataset": dataset, "direction": direction, "map": float(value)})
    if not long:
        return df
    ldf = pd.DataFrame(long)
    if ldf["map"].max() <= 1.0:
        ldf["map"] *= 100.0
    agg = ldf.groupby(["model", "dataset", "direction"])["map"].agg(["mean", "std", "count"]).reset_index()
    agg["cell"] = [f"{m:.2f} ± {s:.2f}" if c > 1 and np.isfinite(s) else f"{m:.2f}"
                   for m, s, c in zip(agg["mean"], agg["std"], agg["count"])]
    table = agg.pivot_table(index="model", columns=["dataset", "direction"], values="cell", aggfunc="first")
    table.columns = [f"{d} {dirn}".strip() for d, dirn in table.columns]
    return table


def _first_col(df, names: Sequence[str]) -> str | None:
    for n in names:
        if n in df.columns:
            return n
    return None


def _direction_of(column: str) -> str | None:
    """Direction name of a MAP column (``map_a2v``, ``map.audio->visual``, ``map_xy`` ...)."""
    c = column.lower()
    if "map" not in c or "std" in c or "mrr" in c:
        return None
    tail = c.split("map", 1)[1].strip("._ -")
    if not tail:
        return None
    for sep in ("->", "2", "_to_", "→"):
        if sep in tail:
            a, b = tail.split(sep, 1)
            a, b = a.strip("._ "), b.strip("._ ")
            if a and b:
                return f"{a}→{b}"
    return {"xy": "x→y", "yx": "y→x"}.get(tail, tail)


# ====================================================================== music helpers
def works(app: AppDataset) -> dict[str, list[int]]:
    """Work id -> dataset rows of its fragments (in fragment order), music dataset only."""
    if app.fragments is None:
        return {}
    if app.works_cache is not None:
        return app.works_cache
    app.works_cache = _works(app)
    return app.works_cache


def _works(app: AppDataset) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, f in enumerate(app.fragments):
        out.setdefault(f.work_id or f.corpus_path, []).append(i)
    # score order: part, verse, first bar (what crossmodal_core.alignment.work_segments uses)
    for rows in out.values():
        rows.sort(key=lambda r: (app.fragments[r].part_index, app.fragments[r].verse,
                                 app.fragments[r].measure_start, app.fragments[r].measure_end, r))
    return out


def work_title(app: AppDataset, work_id: str) -> str:
    rows = works(app).get(work_id, [])
    if not rows:
        return work_id
    f = app.fragments[rows[0]]
    return f"{f.title or work_id} ({f.composer or f.collection}, {len(rows)} fragments)"



# ====================================================================== media of one item
def has_media(app: AppDataset) -> bool:
    """Whether items carry notes we can synthesise and engrave (the music dataset)."""
    return app.fragments is not None


def audio_wav(app: AppDataset, row: int, start_s: float | None = None, end_s: float | None = None) -> bytes | None:
    """WAV bytes of item ``row`` synthesised from its notes (``None`` without notes).

    ``start_s`` / ``end_s`` cut a segment (seconds from the fragment start)."""
    if app.fragments is None:
        return None
    from crossmodal_core import synth

    y = synth.audio_for(app.fragments[row])
    sr = synth.DEFAULT_SAMPLE_RATE
    if start_s is not None or end_s is not None:
        a = int(max(0.0, start_s or 0.0) * sr)
        b = len(y) if end_s is None else int(min(len(y), end_s * sr))
        y = y[a:max(a + 1, b)]
    return synth.audio_bytes_wav(y, sr)


def audio_file(app: AppDataset, row: int) -> tuple[bytes, str] | tuple[None, None]:
    """``(bytes, mime type)`` of item ``row``'s synthesised audio, the compact FLAC that
    :func:`crossmodal_core.synth.audio_for` caches (about half a WAV's size), else WAV."""
    if app.fragments is None:
        return None, None
    from crossmodal_core import synth

    fragment = app.fragments[row]
    y = synth.audio_for(fragment)  # makes sure the cached file exists
    cached = store.audio_cache_dir() / f"{synth.audio_cache_key(fragment)}.flac"
    if cached.is_file():
        return cached.read_bytes(), "audio/flac"
    return synth.audio_bytes_wav(y, synth.DEFAULT_SAMPLE_RATE), "audio/wav"


def score_svg(app: AppDataset, row: int) -> str | None:
    """Engraved SVG of item ``row`` with its lyrics under the notes (``None`` without notes)."""
    if app.fragments is None:
        return None
    from crossmodal_core import render

    svg, _timemap = render.fragment_svg(app.fragments[row])
    return svg


def segment_similarity_matrix(app: AppDataset, model: TrainedModel, rows: Sequence[int],
                              view_a: str, view_b: str) -> np.ndarray:
    """Cosine similarity ``(len(rows), len(rows))`` between the ``view_a`` embeddings of the
    segments ``rows`` (e.g. the phrases of one song) and their ``view_b`` embeddings; the
    diagonal holds the true pairs."""
    from crossmodal_core.alignment import segment_similarity

    emb = load_embeddings(model)
    rows = np.asarray(rows, dtype=int)
    return np.asarray(segment_similarity(emb[view_a][rows], emb[view_b][rows]))


def player_html(app: AppDataset, row: int) -> str | None:
    """HTML with the engraved score and an audio player that highlights the sounding note."""
    if app.fragments is None:
        return None
    from crossmodal_core import render

    return render.highlight_player_html(app.fragments[row])
