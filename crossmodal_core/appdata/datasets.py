"""Datasets for the pages: the catalog's entries, uploads, label and view choices, item text.

Opening goes through :mod:`crossmodal_core.data.catalog` (the one resolver, the one id scheme);
this module adds what only the pages need.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any, Sequence

import numpy as np

from crossmodal_core import store
from crossmodal_core.data import catalog
from crossmodal_core.data.catalog import FILE_SUFFIXES, DatasetEntry, LoadedDataset, ProgressCallback
from crossmodal_core.data.dataset import CrossModalDataset, DatasetError
from crossmodal_core.models.trained import PAIR_LABEL, flat_views, labels_for, modalities, split_indices

__all__ = [
    "AppDataset", "DatasetEntry", "FILE_SUFFIXES", "PAIR_LABEL", "list_datasets", "find_entry", "load_dataset",
    "save_upload", "label_choices", "labels_for", "flat_views", "view_pairs", "split_indices", "item_text",
    "item_details", "works", "work_title", "score_folders", "build_from_scores",
]

#: a loaded dataset as the pages see it (the catalog's :class:`LoadedDataset`)
AppDataset = LoadedDataset


def list_datasets() -> list[DatasetEntry]:
    """Every dataset the app can open, the embedded music dataset first (hidden files and
    temporaries of unfinished writes are never listed)."""
    return catalog.list_entries()


def find_entry(dataset_id: str) -> DatasetEntry:
    return catalog.find_entry(dataset_id)


def load_dataset(dataset_id: str, progress: ProgressCallback | None = None) -> LoadedDataset:
    """Open a dataset by catalog id (never a path: ids from the pages name known files only)."""
    return catalog.open_dataset(dataset_id, progress=progress)


def save_upload(filename: str, data: bytes) -> DatasetEntry:
    """Store an uploaded feature file under :func:`store.uploads_dir` with a slugged name,
    after checking it loads (a bad file raises ``DatasetError`` and leaves nothing behind)."""
    base = str(filename).replace("\\", "/").rsplit("/", 1)[-1]
    suffix = next((s for s in FILE_SUFFIXES if base.lower().endswith(s)), None)
    if suffix is None:
        raise DatasetError(f"{store.slug(base)}: unsupported file type; use one of {', '.join(FILE_SUFFIXES)}")
    target = store.child_path(store.uploads_dir(), base[: -len(suffix)], suffix=suffix)
    from crossmodal_core.data import io as data_io

    with store.atomic_path(target, suffix=suffix) as tmp:
        tmp.write_bytes(data)
        data_io.load_dataset(tmp)  # raises DatasetError naming the problem; target untouched
    return catalog.find_entry(f"upload:{target.name}")


def score_folders() -> list[str]:
    """Names of the folders of the user's scores, the sub-folders of :func:`store.scores_dir`
    (hidden folders and symbolic links are not listed), sorted."""
    root = store.scores_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))


def build_from_scores(folder: str, progress: ProgressCallback | None = None,
                      jobs: int = 1) -> tuple[DatasetEntry, dict[str, Any]]:
    """Build a music dataset from the folder ``folder`` of :func:`store.scores_dir` into
    :func:`store.user_music_dir` (as the CLI's ``build-music --scores`` does).

    ``folder`` must be one of :func:`score_folders` (a listed name, never a path). Returns the
    catalog entry of the new dataset (``scores:<name>``) and the per-file build report.
    Raises ``DatasetError`` (nothing usable, unknown folder).
    """
    from crossmodal_core.data.music import build as music_build

    if folder not in score_folders():
        raise DatasetError(f"no folder {store.slug(folder)!r} in {store.scores_dir()}")
    out = store.child_path(store.user_music_dir(), folder)
    music_build.build_music_dataset(out, jobs=jobs, progress=False, scores=store.scores_dir() / folder,
                                    progress_callback=progress)
    report = store.read_json(out / music_build.REPORT_FILE)
    return catalog.find_entry(f"{catalog.SCORES_KIND}:{out.name}"), report


def label_choices(ds: CrossModalDataset) -> list[str]:
    """Label sets that can define relevance; the dataset's default first, then the pair label."""
    names = list(ds.label_names)
    if ds.default_label in names:
        names.remove(ds.default_label)
        names.insert(0, ds.default_label)
    return names + [PAIR_LABEL]


def view_pairs(ds: CrossModalDataset) -> list[tuple[str, str]]:
    """Modality pairs to retrieve between (:func:`crossmodal_core.models.trained.modalities`:
    flat views and image views such as ``score_image``), the most natural first.

    On the music dataset audio/score_image comes first when the dataset has the engraved
    rasters: it is the seeds' audio-visual task (the poster's three panels), with audio to
    play and score images to show. Then sheet/audio: the pair the models align well (R@1
    about 0.84), so a new user's first view is not a near-chance lyrics pairing.
    """
    names = modalities(ds)
    preferred = [("audio", "visual"), ("audio", "score_image"), ("sheet", "audio"), ("sheet", "lyrics"),
                 ("lyrics", "audio")]
    pairs = []
    for a, b in combinations(names, 2):
        pairs.append((b, a) if (b, a) in preferred else (a, b))
    order = {p: i for i, p in enumerate(preferred)}
    return sorted(pairs, key=lambda p: order.get(p, len(order)))


def item_text(app: LoadedDataset, rows: Sequence[int] | np.ndarray, label_name: str | None = None) -> list[str]:
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


def _lyrics_of(app: LoadedDataset, row: int) -> str:
    if app.fragments is not None:
        return str(app.fragments[row].lyrics)
    for col in ("lyrics", "text"):
        if col in app.dataset.metadata:
            return str(app.dataset.metadata[col][row])
    return ""


def _snippet(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def item_details(app: LoadedDataset, row: int) -> dict[str, Any]:
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


def works(app: LoadedDataset) -> dict[str, list[int]]:
    """Work id -> dataset rows of its fragments (in fragment order), music dataset only."""
    if app.fragments is None:
        return {}
    if app.works_cache is None:
        out: dict[str, list[int]] = {}
        for i, f in enumerate(app.fragments):
            out.setdefault(f.work_id or f.corpus_path, []).append(i)
        # score order: part, verse, first bar (what crossmodal_core.alignment.work_segments uses)
        for rows in out.values():
            rows.sort(key=lambda r: (app.fragments[r].part_index, app.fragments[r].verse,
                                     app.fragments[r].measure_start, app.fragments[r].measure_end, r))
        app.works_cache = out
    return app.works_cache


def work_title(app: LoadedDataset, work_id: str) -> str:
    rows = works(app).get(work_id, [])
    if not rows:
        return work_id
    f = app.fragments[rows[0]]
    return f"{f.title or work_id} ({f.composer or f.collection}, {len(rows)} fragments)"
