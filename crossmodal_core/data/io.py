"""Reading and writing :class:`CrossModalDataset` files in our own NPZ / HDF5 format.

:func:`load_dataset` tells two families of files apart by suffix (``.npz`` vs ``.h5`` /
``.hdf5`` / ``.hdf``) and, inside the file, by the format marker: files in our format load as
they were saved; files without the marker are read as the public VEGAS / AVE feature-file
layout (:func:`load_vegas_layout`, :mod:`crossmodal_core.data.vegas`, which lists every
accepted key spelling). Every array is read by :func:`crossmodal_core.data.readers.read_arrays`,
which treats each file as untrusted: no pickles, no links to other files, a memory budget
(:data:`MAX_LOAD_BYTES`, ``CROSSMODAL_MAX_LOAD_BYTES``), HDF5 parsed in a forked child; the
checks are listed in the "Safety" section of :mod:`crossmodal_core.data.readers`.

Our own format (``save_dataset`` / ``load_dataset``)
----------------------------------------------------
The same content is stored in NPZ or HDF5; nothing is ever pickled (NPZ files are read with
``allow_pickle=False``, strings are stored as fixed-width unicode in NPZ and UTF-8 in HDF5).

==============================  ======================================================
NPZ key / HDF5 path             content
==============================  ======================================================
``format`` (HDF5: attribute)    ``"crossmodal-dataset"``; ``format_version`` = ``1``
``name`` (HDF5: attribute)      dataset name (str)
``info`` (HDF5: attribute)      JSON text of ``dataset.info`` (source, ``synthetic``, ...)
``view/<name>``                 float array ``(n, d)`` or sequence ``(n, T, d)``
``label/<name>``                int64 ``(n,)``, class index into ``class_names/<name>``
``class_names/<name>``          str ``(n_classes,)``
``item_ids``                    str ``(n,)``, unique
``meta/<name>``                 ``(n,)`` str, int, float or bool metadata column
``folds`` (optional)            int64 ``(n,)`` fold id, ``-1`` = in no fold
``split`` (optional)            str ``(n,)``, ``"train"`` / ``"test"``
``order/<kind>``                str names of the views / label sets / metadata columns in
                                their original order (HDF5 lists members alphabetically)
==============================  ======================================================

In HDF5 the ``<kind>/<name>`` keys are groups and datasets (``/view/audio``). View, label
and column names must not contain ``/``. Files are written atomically through
:mod:`crossmodal_core.store` (temporary file + rename): a failed write never leaves a
truncated file and never destroys the previous one.

Errors
------
Every problem raises :class:`~crossmodal_core.data.dataset.DatasetError` whose message
starts with the file path and names the key (NPZ member / HDF5 path) when there is one: not
an HDF5 / NPZ file, missing keys (the message lists the keys that *are* there), row counts
that disagree, NaN / inf, a class without items, one-hot rows that do not sum to 1, unknown
format versions, and every failure while opening, reading or decoding (bad zip CRC, a
truncated file, invalid UTF-8, HDF5 library errors). No other exception type leaves
:func:`load_dataset` / :func:`load_vegas_layout` for anything a file contains.

Re-exports
----------
``load_vegas_layout`` (:mod:`.vegas`), ``read_arrays``, ``MAX_LOAD_BYTES``,
``max_load_bytes`` and the other limits and environment-variable names (:mod:`.readers`),
and ``DatasetError`` (:mod:`.dataset`) stay importable from here. They are bound at import:
to change a reader's limit or behaviour in a test, patch
:mod:`crossmodal_core.data.readers` (e.g. ``readers._read_hdf5_here``), not this module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from crossmodal_core import store
from crossmodal_core.data.dataset import CrossModalDataset, DatasetError, _on_disk
from crossmodal_core.data.lazy import (
    block_rows_for,
    is_zarr_path,
    iter_row_blocks,
    open_hdf5_arrays,
    open_zarr_arrays,
    write_zarr_arrays,
)
from crossmodal_core.data.readers import (
    BUDGET_ENV,
    HDF5_READ_TIMEOUT_S,
    HDF5_SUFFIXES,
    ISOLATION_ENV,
    MAX_ATTRIBUTE_BYTES,
    MAX_COMPRESSION_RATIO,
    MAX_LOAD_BYTES,
    NPZ_SUFFIXES,
    TIMEOUT_ENV,
    _suffix_kind,
    max_load_bytes,
    read_arrays,
)
from crossmodal_core.data.vegas import _vegas_from_arrays, load_vegas_layout

__all__ = [
    "MAX_LOAD_BYTES",
    "max_load_bytes",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "DatasetError",
    "save_dataset",
    "save_zarr",
    "load_dataset",
    "LAZY_AUTO_BYTES",
    "load_vegas_layout",
    "dataset_to_arrays",
    # re-exported from .readers (see "Re-exports" above)
    "MAX_COMPRESSION_RATIO",
    "MAX_ATTRIBUTE_BYTES",
    "HDF5_READ_TIMEOUT_S",
    "BUDGET_ENV",
    "ISOLATION_ENV",
    "TIMEOUT_ENV",
    "NPZ_SUFFIXES",
    "HDF5_SUFFIXES",
    "read_arrays",
]

FORMAT_NAME = "crossmodal-dataset"
FORMAT_VERSION = 1


# ---------------------------------------------------------------------- helpers
def _as_storable_column(name: str, col: np.ndarray, source: str) -> np.ndarray:
    """Metadata as a pickle-free array: object columns of str become unicode."""
    col = np.asarray(col)
    if col.dtype == object:
        if all(isinstance(v, str) for v in col.tolist()):
            return col.astype(str)
        kinds = sorted({type(v).__name__ for v in col.tolist()})
        raise DatasetError(
            f"{source}: metadata column {name!r} holds Python objects of type(s) {kinds}; "
            "only str, int, float and bool columns can be stored without pickle"
        )
    if col.dtype.kind not in "biufU":
        raise DatasetError(f"{source}: metadata column {name!r} has unsupported dtype {col.dtype}")
    return col


def _check_key_name(kind: str, name: str, source: str) -> None:
    if "/" in name or not name:
        raise DatasetError(f"{source}: {kind} name {name!r} must be non-empty and contain no '/'")


def dataset_to_arrays(ds: CrossModalDataset, source: str = "dataset") -> dict[str, np.ndarray]:
    """The flat ``key -> array`` mapping of our format (what the NPZ file holds)."""
    ds.validate(source)
    arrays: dict[str, np.ndarray] = {
        "format": np.array(FORMAT_NAME),
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "name": np.array(str(ds.name)),
        "info": np.array(json.dumps(store._canonical(ds.info), default=store._json_default)),
        "item_ids": np.asarray(ds.item_ids).astype(str),
    }
    for vname, arr in ds.views.items():
        _check_key_name("view", vname, source)
        # a view on disk stays lazy: the writers copy it block by block
        arrays[f"view/{vname}"] = arr if _on_disk(arr) else np.ascontiguousarray(arr)
    for lname, lab in ds.labels.items():
        _check_key_name("label set", lname, source)
        arrays[f"label/{lname}"] = np.asarray(lab, dtype=np.int64)
        arrays[f"class_names/{lname}"] = np.array(ds.class_names[lname], dtype=str).reshape(-1)
    for cname, col in ds.metadata.items():
        _check_key_name("metadata column", cname, source)
        arrays[f"meta/{cname}"] = _as_storable_column(cname, col, source)
    # HDF5 lists members alphabetically: keep the order (the first two views are the default pair)
    arrays["order/view"] = np.array(list(ds.views), dtype=str)
    arrays["order/label"] = np.array(list(ds.labels) or [""], dtype=str)[: len(ds.labels)]
    arrays["order/meta"] = np.array(list(ds.metadata) or [""], dtype=str)[: len(ds.metadata)]
    if ds.folds is not None:
        arrays["folds"] = np.asarray(ds.folds, dtype=np.int64)
    if ds.split is not None:
        arrays["split"] = np.asarray(ds.split).astype(str)
    return arrays


def _int_scalar(value: Any, path: Path, key: str) -> int:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu" or arr.size != 1:
        raise DatasetError(f"{path}: {key!r} must be a single integer, got {arr.dtype} of shape {arr.shape}")
    return int(arr.reshape(-1)[0])


def _arrays_to_dataset(arrays: Mapping[str, Any], path: Path) -> CrossModalDataset:
    """Inverse of :func:`dataset_to_arrays` (``arrays`` may be lazy, e.g. an NpzFile)."""
    keys = list(arrays.keys())
    version = _int_scalar(arrays["format_version"], path, "format_version") if "format_version" in keys else None
    if version != FORMAT_VERSION:
        raise DatasetError(f"{path}: unsupported {FORMAT_NAME} version {version}; this code reads {FORMAT_VERSION}")

    def grouped(prefix: str) -> dict[str, np.ndarray]:
        found = {k[len(prefix):]: (arrays[k] if _on_disk(arrays[k]) else np.asarray(arrays[k]))
                 for k in keys if k.startswith(prefix)}
        order_key = f"order/{prefix.rstrip('/')}"
        order = [str(n) for n in np.asarray(arrays[order_key]).reshape(-1).tolist()] if order_key in keys else []
        ranked = [n for n in order if n in found] + [n for n in found if n not in order]
        return {n: found[n] for n in ranked}

    views = grouped("view/")
    labels = grouped("label/")
    for lname, lab in labels.items():
        if lab.dtype.kind not in "iu":
            raise DatasetError(f"{path}: 'label/{lname}' must hold integer class indices, got dtype {lab.dtype}")
    class_names = {k: [str(c) for c in v.reshape(-1).tolist()] for k, v in grouped("class_names/").items()}
    missing_names = sorted(set(labels) - set(class_names))
    if missing_names:
        raise DatasetError(f"{path}: label set(s) {missing_names} have no class_names/<name> entry")
    try:
        info = json.loads(_text_scalar(arrays["info"], path, "info")) if "info" in keys else {}
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError(f"{path}: 'info' is not valid JSON ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(info, dict):
        raise DatasetError(f"{path}: 'info' must be a JSON object, got {type(info).__name__}")
    folds = np.asarray(arrays["folds"]) if "folds" in keys else None
    if folds is not None and folds.dtype.kind not in "iu":
        raise DatasetError(f"{path}: 'folds' must hold integers, got dtype {folds.dtype}")
    try:
        ds = CrossModalDataset(
            views=views,
            labels=labels,
            class_names=class_names,
            item_ids=np.asarray(arrays["item_ids"]) if "item_ids" in keys else None,
            metadata=grouped("meta/"),
            folds=folds,
            split=np.asarray(arrays["split"]) if "split" in keys else None,
            name=_text_scalar(arrays["name"], path, "name") if "name" in keys else path.stem,
            info=info,
        )
    except DatasetError as exc:
        # __post_init__ validated without knowing the file: name it.
        msg = str(exc)
        raise DatasetError(f"{path}: {msg.split(': ', 1)[-1]}") from None
    return ds


# ---------------------------------------------------------------------- save
def save_dataset(ds: CrossModalDataset, path: str | Path, format: str | None = None,
                 progress: bool = False) -> Path:
    """Write ``ds`` to ``path`` atomically; return the path.

    ``format``: ``"npz"``, ``"hdf5"`` or ``"zarr"``; ``None`` = by suffix (``.npz``, ``.h5`` /
    ``.hdf5``, ``.zarr``). Zarr (a folder, see :func:`save_zarr`) and HDF5 views are chunked
    by rows and written block by block, so a dataset whose views stay on disk is converted
    without being loaded.
    """
    path = Path(path)
    if format not in (None, "npz", "hdf5", "zarr"):
        raise ValueError(f"format must be 'npz', 'hdf5', 'zarr' or None, got {format!r}")
    if format == "zarr" or (format is None and is_zarr_path(path)):
        return save_zarr(ds, path, progress=progress)
    kind = _suffix_kind(path)
    if format is not None and format != kind:
        raise ValueError(f"{path}: format {format!r} does not match the suffix {path.suffix!r}")
    arrays = dataset_to_arrays(ds, str(path))
    if kind == "npz":
        if any(_on_disk(a) for a in arrays.values()):
            raise DatasetError(f"{path}: views on disk cannot be written to NPZ (it holds everything in "
                               "memory); write .zarr or .h5")
        # Deterministic bytes for equal content (fixed zip timestamps), written via temp file.
        store.atomic_save_npz(path, compressed=True, **arrays)
        return path
    import h5py

    with store.atomic_path(path, suffix=path.suffix) as tmp:
        with h5py.File(tmp, "w") as f:
            for attr in ("format", "name", "info"):
                f.attrs[attr] = str(arrays.pop(attr))
            f.attrs["format_version"] = int(arrays.pop("format_version"))
            for key, arr in arrays.items():
                if _on_disk(arr):  # chunked by rows, uncompressed: features barely compress, and a
                    # lazy reader would pay gzip on every pass (write .zarr for zstd chunks)
                    rows = max(1, min(block_rows_for(arr.shape, arr.dtype.itemsize, 1, 4 << 20), arr.shape[0]))
                    dset = f.create_dataset(key, shape=arr.shape, dtype=arr.dtype, chunks=(rows,) + arr.shape[1:])
                    for start, block in iter_row_blocks(arr):
                        dset[start:start + len(block)] = block
                elif arr.dtype.kind == "U":
                    f.create_dataset(key, data=arr.astype(object), dtype=h5py.string_dtype("utf-8"))
                elif arr.ndim >= 2 and arr.size > 4096:
                    f.create_dataset(key, data=arr, compression="gzip", compression_opts=4, shuffle=True)
                else:
                    f.create_dataset(key, data=arr)
    return path


# ---------------------------------------------------------------------- load
def _text_scalar(value: Any, path: Path, key: str) -> str:
    arr = np.asarray(value)
    if arr.dtype.kind not in "US" or arr.size != 1:
        raise DatasetError(f"{path}: {key!r} must be a single text value, got {arr.dtype} of shape {arr.shape}")
    return str(arr.reshape(-1)[0])


def save_zarr(ds: CrossModalDataset, path: str | Path, chunk_bytes: int = 16 << 20,
              compression: str | None = "zstd", progress: bool = False) -> Path:
    """Write ``ds`` as a Zarr (format 3) folder, atomically; return the path.

    The layout is our format's (module docstring): root attributes ``format``, ``name``,
    ``info`` (JSON text), ``format_version``; arrays ``view/<name>`` chunked by rows (about
    ``chunk_bytes`` per chunk, ``zstd`` level 1), ``label/<name>``, ``class_names/<name>``,
    ``item_ids``, ``meta/<name>``, ``folds``, ``split``, ``order/<kind>`` (text as
    fixed-width UTF-32). Views on disk are copied block by block. The folder is written under
    a temporary name beside ``path`` and swapped in whole (:func:`crossmodal_core.store.swap_in_dir`):
    a failed or killed write never leaves a half-written dataset and never loses the old one.
    """
    import os
    import shutil
    import tempfile

    path = Path(path)
    if not is_zarr_path(path):
        raise ValueError(f"{path}: a Zarr dataset folder must end with .zarr")
    arrays = dataset_to_arrays(ds, str(path))
    attrs = {"format": str(arrays.pop("format")), "name": str(arrays.pop("name")),
             "info": str(arrays.pop("info")), "format_version": int(arrays.pop("format_version"))}
    path.parent.mkdir(parents=True, exist_ok=True)
    store.recover_interrupted_swap(path)
    tmp = Path(tempfile.mkdtemp(prefix=store.temporary_prefix(path), suffix=".new", dir=path.parent))
    try:
        write_zarr_arrays(tmp / "data.zarr", arrays, attrs, chunk_bytes=chunk_bytes, compression=compression,
                          progress=progress)
        os.rename(tmp / "data.zarr", tmp / "ready")
        os.chmod(tmp / "ready", 0o777 & ~store.current_umask())
        store.swap_in_dir(tmp / "ready", path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


#: ``load_dataset(lazy="auto")`` leaves a view on disk when it would take more than this
LAZY_AUTO_BYTES = 1 << 30


def _view_key(key: str, ndim: int) -> bool:
    return key.startswith("view/") and ndim >= 2


def load_dataset(path: str | Path, lazy: bool | str = "auto") -> CrossModalDataset:
    """Load a dataset file (``.npz``, ``.h5`` / ``.hdf5``) or Zarr folder (``.zarr``).

    Files in our format (see the module docstring) load as they were saved; files without
    our format marker are read as the public VEGAS/AVE layout (:func:`load_vegas_layout`).
    Every problem, hostile files included, raises :class:`DatasetError` naming the file.

    ``lazy``: ``True`` leaves the views of a Zarr folder or an HDF5 file in our format on disk
    (:class:`crossmodal_core.data.lazy.LazyArray`; memory independent of the row count);
    ``False`` reads everything; ``"auto"`` (default) leaves Zarr views on disk, and HDF5
    views larger than :data:`LAZY_AUTO_BYTES`. NPZ and the VEGAS/AVE layout are always read
    whole (``lazy=True`` refuses them: convert them with ``python -m crossmodal_core convert``).
    """
    path = Path(path)
    if lazy not in (True, False, "auto"):
        raise ValueError(f"lazy must be True, False or 'auto', got {lazy!r}")
    if is_zarr_path(path):
        if not path.exists():
            raise DatasetError(f"{path}: no such Zarr folder")
        arrays, attrs = open_zarr_arrays(path, lambda key, plan: bool(lazy) and _view_key(key, len(plan["shape"])))
        return _from_marked(arrays, attrs, path, lazy)
    kind = _suffix_kind(path)
    if kind == "hdf5" and lazy is not False:
        if not path.is_file():
            raise DatasetError(f"{path}: no such file")

        def on_disk(key: str, dset: Any) -> bool:
            if dset.shape is None:  # a null dataspace: the reader's own check names it
                return False
            big = dset.size * dset.dtype.itemsize > LAZY_AUTO_BYTES
            return _view_key(key, dset.ndim) and dset.dtype.kind in "biuf" and (lazy is True or big)

        arrays, attrs = open_hdf5_arrays(path, on_disk)
        return _from_marked(arrays, attrs, path, lazy)
    if lazy is True:
        raise DatasetError(f"{path}: an NPZ file is read whole; convert it to .zarr to keep its views on disk")
    arrays, attrs = read_arrays(path)
    return _from_marked(arrays, attrs, path, lazy)


def _from_marked(arrays: dict[str, Any], attrs: dict[str, Any] | None, path: Path, lazy: bool | str) -> CrossModalDataset:
    """Our format (by its marker), else the VEGAS / AVE layout."""
    if attrs is None:
        marker = _text_scalar(arrays["format"], path, "format") if "format" in arrays else None
    else:
        marker = attrs.get("format")
        for attr in ("name", "info", "format_version"):
            if attr in attrs:
                arrays[attr] = np.asarray(attrs[attr])
    if marker is not None and not isinstance(marker, str):
        raise DatasetError(f"{path}: the format marker 'format' is not text ({type(marker).__name__})")
    if marker == FORMAT_NAME:
        return _arrays_to_dataset(arrays, path)
    if marker is not None:
        raise DatasetError(f"{path}: unknown format marker {marker[:100]!r} (expected {FORMAT_NAME!r})")
    if lazy is True or is_zarr_path(path):
        raise DatasetError(f"{path}: not in our format (no {FORMAT_NAME!r} marker), so its views cannot stay on "
                           "disk; convert it first: python -m crossmodal_core convert IN OUT.zarr")
    return _vegas_from_arrays(arrays, path)
