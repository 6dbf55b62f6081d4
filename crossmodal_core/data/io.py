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
from crossmodal_core.data.dataset import CrossModalDataset, DatasetError
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
    "load_dataset",
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
        arrays[f"view/{vname}"] = np.ascontiguousarray(arr)
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
        found = {k[len(prefix):]: np.asarray(arrays[k]) for k in keys if k.startswith(prefix)}
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
def save_dataset(ds: CrossModalDataset, path: str | Path) -> Path:
    """Write ``ds`` to ``path`` (``.npz`` or ``.h5``/``.hdf5``) atomically; return the path."""
    path = Path(path)
    kind = _suffix_kind(path)
    arrays = dataset_to_arrays(ds, str(path))
    if kind == "npz":
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
                if arr.dtype.kind == "U":
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


def load_dataset(path: str | Path) -> CrossModalDataset:
    """Load a dataset file; the suffix picks NPZ or HDF5.

    Files in our format (see the module docstring) load as they were saved; files without
    our format marker are read as the public VEGAS/AVE layout (:func:`load_vegas_layout`).
    Every problem, hostile files included, raises :class:`DatasetError` naming the file.
    """
    path = Path(path)
    arrays, attrs = read_arrays(path)
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
    return _vegas_from_arrays(arrays, path)
