"""The one dataset resolver: every entry point (CLI, app, notebooks) names and opens datasets here.

Dataset ids
-----------
==========================  ===============================================================
id                          dataset
==========================  ===============================================================
``music21``                 the embedded music21 sheet / lyrics / audio dataset, the built
                            folder :func:`crossmodal_core.data.music.build.default_out_dir`
                            (listed only when :func:`is_built`)
``synthetic-vegas-small``   SYNTHETIC VEGAS-shaped audio / visual, 4,000 + 1,000 items
``synthetic-vegas``         SYNTHETIC VEGAS-shaped audio / visual at full VEGAS size
                            (22,483 + 5,620 items)
``file:<name>``             the feature file ``<name>`` (``.npz`` / ``.h5`` / ``.hdf5``) or
                            chunked Zarr folder (``<name>.zarr``, views stay on disk) in
                            the data folder ``assets/datasets/``
``upload:<name>``           the feature file ``<name>`` in the uploads folder
                            :func:`crossmodal_core.store.uploads_dir`
``scores:<name>``           a music dataset built from the user's own scores (``build-music
                            --scores``) into the folder ``<name>`` of
                            :func:`crossmodal_core.store.user_music_dir` (listed only when
                            :func:`is_built`)
==========================  ===============================================================

A ``file:`` / ``upload:`` / ``scores:`` id names a file or folder of one of the known folders
**by its name**, never a path: ``file:../../etc/passwd`` names nothing. Hidden files and the temporaries of unfinished
writes (:func:`crossmodal_core.store.is_temporary`) are never listed and never resolve.

Accepted old spellings (aliases): ``music`` and ``music21_lyrics`` for ``music21``;
``synthetic:vegas-small`` for ``synthetic-vegas-small``; ``synthetic`` and
``synthetic:vegas`` for ``synthetic-vegas``; ``file:<path>`` when ``<path>`` is a listed file.

Only the command line (:func:`resolve` with ``allow_path=True``) also takes a filesystem path
the user typed: that is the user's own choice, not a name read from a request.

The synthetic sets are generated (seeded) on first use and stored under
``<cache>/datasets/``, so the app and the CLI train on the same rows. Every loaded dataset
carries a :attr:`LoadedDataset.key` that changes when its content changes: the model store
(:mod:`crossmodal_core.models.trained`) files models under it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from crossmodal_core import store
from crossmodal_core.data.dataset import CrossModalDataset, DatasetError
from crossmodal_core.data.synthetic import DEFAULT_DIFFICULTY

__all__ = [
    "DatasetEntry", "LoadedDataset", "UnknownDatasetError", "MUSIC_ID", "SCORES_KIND", "SYNTHETIC_SMALL_ID",
    "SYNTHETIC_FULL_ID", "scores_entries",
    "SYNTHETIC_SIZES", "FILE_SUFFIXES", "BUILT_FILES", "is_built", "music_dir", "list_entries", "find_entry",
    "resolve", "open_dataset", "synthetic_path", "canonical_id",
]

ProgressCallback = Callable[[float, str], None]

MUSIC_ID = "music21"
#: id prefix of the music datasets built from the user's own scores
SCORES_KIND = "scores"
SYNTHETIC_SMALL_ID = "synthetic-vegas-small"
SYNTHETIC_FULL_ID = "synthetic-vegas"
FILE_SUFFIXES = (".npz", ".h5", ".hdf5")
#: a chunked Zarr dataset is a folder of this suffix (listed from the data folder; its views stay on disk)
ZARR_SUFFIX = ".zarr"
#: files of a built music dataset; the builder writes ``build_info.json`` last, so without it
#: a build is running or was cut
BUILT_FILES = ("dataset.npz", "fragments.json", "build_info.json")
#: the two synthetic sets (``make_synthetic_av`` arguments besides the seed; they are also the
#: stored file's cache key, so the difficulty is spelled out: a new default makes a new file).
#: Both carry the sequence views, so the app lists and trains the sequence models on them:
#: small 5,000 x 10 x (128 + 1024) float32 = 230 MB; full size in float16 = 648 MB (float32
#: would be 1.3 GB per open copy; float16 keeps about 3 significant digits, far below the
#: generator's noise, and the sequence models compute in float32).
SYNTHETIC_SIZES = {
    SYNTHETIC_SMALL_ID: {"n_train": 4000, "n_test": 1000, "n_classes": 10, "dims": (128, 1024),
                         "difficulty": DEFAULT_DIFFICULTY, "sequences": True, "sequence_dtype": "float32"},
    SYNTHETIC_FULL_ID: {"n_train": 22483, "n_test": 5620, "n_classes": 10, "dims": (128, 1024),
                        "difficulty": DEFAULT_DIFFICULTY, "sequences": True, "sequence_dtype": "float16"},
}
ALIASES = {
    "music": MUSIC_ID, "music21_lyrics": MUSIC_ID,
    "synthetic:vegas-small": SYNTHETIC_SMALL_ID, "synthetic": SYNTHETIC_FULL_ID, "synthetic:vegas": SYNTHETIC_FULL_ID,
}
_SYNTHETIC_NOTE = ("Generated Gaussian class clusters with VEGAS's shapes (128-d audio, 1024-d visual). "
                   "Numbers on it say nothing about real VEGAS performance.")


class UnknownDatasetError(DatasetError):
    """A dataset id (or typed path) that names no dataset."""


@dataclass
class DatasetEntry:
    """One dataset that can be opened: its id, a label for pickers and where it lives."""

    id: str
    label: str
    kind: str  # "music" | "synthetic" | "file" | "upload" | "path" (a path typed on the command line)
    path: Path | None = None
    note: str = ""


@dataclass
class LoadedDataset:
    """An opened dataset plus what the app and the model store derive from it."""

    entry: DatasetEntry
    dataset: CrossModalDataset
    fragments: list | None = None  # music fragments, row-aligned with the dataset
    key: str = ""  # changes when the content changes (the model store files models under it)
    works_cache: dict[str, list[int]] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.dataset.name


# ---------------------------------------------------------------------- folders
def is_built(folder: str | Path) -> bool:
    """Whether ``folder`` holds a complete music dataset build (every :data:`BUILT_FILES`)."""
    folder = Path(folder)
    return all((folder / f).is_file() for f in BUILT_FILES)


def music_dir() -> Path:
    from crossmodal_core.data.music.build import default_out_dir

    return default_out_dir()


def synthetic_path(dataset_id: str, seed: int = 0) -> Path:
    """Where the synthetic set ``dataset_id`` generated with ``seed`` is stored."""
    size = SYNTHETIC_SIZES[dataset_id]
    return store.child_path(store.cache_dir() / "datasets",
                            f"{dataset_id}-seed{int(seed)}-{store.cache_key(size, int(seed), length=8)}",
                            suffix=".npz")


def _listable(path: Path, folders: bool = False) -> bool:
    """A feature file of a known suffix; with ``folders``, also a chunked Zarr dataset folder
    (``<name>.zarr``, not a link: its content is validated when it is opened)."""
    if path.name.startswith(".") or store.is_temporary(path):
        return False
    if folders and path.suffix.lower() == ZARR_SUFFIX:
        return path.is_dir() and not path.is_symlink()
    return path.is_file() and path.suffix.lower() in FILE_SUFFIXES


def _file_entries(folder: Path, kind: str) -> list[DatasetEntry]:
    if not folder.is_dir():
        return []
    where = "uploaded" if kind == "upload" else "data folder"
    # Zarr folders are listed from the data folder only (an upload is one file)
    return [DatasetEntry(f"{kind}:{p.name}", f"{p.name} ({where})", kind, p)
            for p in sorted(folder.iterdir()) if _listable(p, folders=kind == "file")]


def scores_entries() -> list[DatasetEntry]:
    """The complete music datasets built from the user's own scores, one per folder of
    :func:`store.user_music_dir` (hidden folders and unfinished builds are not listed)."""
    root = store.user_music_dir()
    if not root.is_dir():
        return []
    return [DatasetEntry(f"{SCORES_KIND}:{p.name}", f"{p.name} (music built from your scores)", "music", p)
            for p in sorted(root.iterdir())
            if p.is_dir() and not p.name.startswith(".") and not store.is_temporary(p) and is_built(p)]


def _synthetic_entry(dataset_id: str, seed: int = 0) -> DatasetEntry:
    size = SYNTHETIC_SIZES[dataset_id]
    n = size["n_train"] + size["n_test"]
    what = "small" if dataset_id == SYNTHETIC_SMALL_ID else "full size"
    return DatasetEntry(dataset_id, f"SYNTHETIC VEGAS-shaped audio/visual, {what} ({n:,} items, "
                                    f"{size['n_classes']} classes; not real data)",
                        "synthetic", synthetic_path(dataset_id, seed), note=_SYNTHETIC_NOTE)


def list_entries() -> list[DatasetEntry]:
    """Every dataset that can be opened, the embedded music dataset first, then the music
    datasets built from the user's scores, the feature files of the data folder, the uploads,
    and the two synthetic sets."""
    entries: list[DatasetEntry] = []
    music = music_dir()
    if is_built(music):
        entries.append(DatasetEntry(MUSIC_ID, "Music: sheet / lyrics / audio (music21 corpus, embedded)",
                                    "music", music))
    entries += scores_entries()
    entries += _file_entries(store.datasets_dir(), "file")
    entries += _file_entries(store.uploads_dir(), "upload")
    entries += [_synthetic_entry(SYNTHETIC_SMALL_ID), _synthetic_entry(SYNTHETIC_FULL_ID)]
    return entries


def canonical_id(dataset_id: str) -> str:
    """``dataset_id`` with an old spelling replaced by the current id (others unchanged)."""
    text = str(dataset_id).strip()
    return ALIASES.get(text, text)


def find_entry(dataset_id: str, seed: int = 0) -> DatasetEntry:
    """The entry of a dataset id (or alias); raises :class:`UnknownDatasetError`."""
    text = canonical_id(dataset_id)
    if text in SYNTHETIC_SIZES:
        return _synthetic_entry(text, seed)
    entries = list_entries()
    for entry in entries:
        if entry.id == text:
            return entry
    kind, sep, rest = text.partition(":")
    if sep and kind in ("file", "upload") and ("/" in rest or "\\" in rest):
        # old spelling file:<path>: accepted only when it is one of the listed files
        try:
            wanted = Path(rest).resolve()
        except (OSError, RuntimeError, ValueError):
            wanted = None
        for entry in entries:
            if entry.kind in ("file", "upload") and wanted is not None and entry.path.resolve() == wanted:
                return entry
    known = ", ".join(e.id for e in entries)
    raise UnknownDatasetError(f"no dataset {_short(dataset_id)}; known ids: {known}")


def _short(text: str, n: int = 120) -> str:
    r = repr(str(text))
    return r if len(r) <= n else r[: n - 4] + "...'"


def resolve(spec: str | Path, *, allow_path: bool = False, seed: int = 0) -> DatasetEntry:
    """The entry for a dataset id, or (``allow_path``: the command line only) for a file path
    the user typed. Raises :class:`UnknownDatasetError` naming the spec."""
    text = str(spec)
    try:
        return find_entry(text, seed=seed)
    except UnknownDatasetError:
        if not allow_path:
            raise
    path = Path(text).expanduser()
    if path.is_dir() and is_built(path):
        return DatasetEntry(f"path:{path}", f"{path.name} (music dataset folder)", "music", path)
    if path.is_file() or (path.is_dir() and path.suffix.lower() == ".zarr"):  # a Zarr dataset is a folder
        return DatasetEntry(f"path:{path}", path.name, "path", path)
    known = ", ".join(e.id for e in list_entries())
    raise UnknownDatasetError(f"no dataset {_short(text)}: neither a known id ({known}) nor an existing file")


# ---------------------------------------------------------------------- opening
def _noop(fraction: float, message: str) -> None:
    pass


def file_key(path: Path) -> str:
    """A stamp of a file's (or a Zarr folder's) name, size and modification time. A Zarr
    folder is written whole into a temporary folder and swapped in, so its own and its
    ``zarr.json``'s stamps change when it is rewritten."""
    stat = path.stat()
    parts = [str(path.name), stat.st_size, int(stat.st_mtime)]
    if path.is_dir() and (path / "zarr.json").is_file():
        meta = (path / "zarr.json").stat()
        parts += [meta.st_size, meta.st_mtime_ns, stat.st_ino]
    return store.cache_key(*parts, length=12)


def open_dataset(spec: str | DatasetEntry, *, seed: int = 0, allow_path: bool = False,
                 progress: ProgressCallback | None = None) -> LoadedDataset:
    """Open a dataset by id (or entry). The synthetic sets are generated and stored on first use."""
    progress = progress or _noop
    entry = spec if isinstance(spec, DatasetEntry) else resolve(spec, allow_path=allow_path, seed=seed)
    if entry.kind == "music":
        from crossmodal_core.data.music import load_music_dataset

        ds, fragments = load_music_dataset(entry.path)
        # derived flat views of image views (score_image -> score_image_pix) for the linear models
        from crossmodal_core.features.image_descriptors import add_descriptor_views

        ds.views = add_descriptor_views(ds.views)
        # the data files only (a README beside them must not orphan the trained models)
        kind, _, name = entry.id.partition(":")
        prefix = f"scores-{store.slug(name, 40)}-" if kind == SCORES_KIND else "music21-"
        key = prefix + store.cache_key([file_key(entry.path / f) for f in ("dataset.npz", "fragments.json")],
                                       length=12)
        return LoadedDataset(entry, ds, list(fragments), key)
    from crossmodal_core.data import io as data_io

    if entry.kind == "synthetic":
        size = SYNTHETIC_SIZES[entry.id]
        path = entry.path
        if not path.exists():
            from crossmodal_core.data.synthetic import make_synthetic_av

            progress(0.1, f"generating the synthetic set {entry.id} (once)")
            ds = make_synthetic_av(**size, seed=seed, name=entry.id)
            ds.info = {**ds.info, "synthetic": True}
            data_io.save_dataset(ds, path)
        ds = data_io.load_dataset(path)
        ds.info = {**ds.info, "synthetic": True}
        progress(1.0, "dataset ready")
        return LoadedDataset(entry, ds, None, f"{entry.id}-{store.cache_key(size, seed, length=12)}")
    ds = data_io.load_dataset(entry.path)
    # keyed by the file's own (slugged) name and content stamp, never by the name stored inside it
    return LoadedDataset(entry, ds, None, f"{store.slug(entry.path.stem, 40)}-{file_key(entry.path)}")
