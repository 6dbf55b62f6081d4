"""Reading and writing :class:`CrossModalDataset` files.

Two families of files are understood; :func:`load_dataset` tells them apart by suffix
(``.npz`` vs ``.h5`` / ``.hdf5`` / ``.hdf``) and, inside the file, by the format marker.

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

Public VEGAS / AVE feature-file layout (``load_vegas_layout``)
--------------------------------------------------------------
The feature files distributed with the VEGAS / AVE cross-modal retrieval papers are
HDF5 (or NPZ) files with one array per modality and split plus label arrays. Accepted
keys (case-insensitive; ``<m>`` is ``audio`` or ``visual``, ``<s>`` is ``train`` or
``test``):

- features: ``<m>_<s>`` or ``<s>_<m>``; ``visual`` may also be spelled ``video``,
  ``image`` or ``img`` (``visual_train``, ``train_video``, ...). A ``val`` split
  (``audio_val``...) is merged into train and marked in the ``source_split`` column.
- shared labels: ``<s>_labels``, ``<s>_label``, ``<s>_lab``, ``lab_<s>``, ``label_<s>``,
  ``labels_<s>``, ``y_<s>``;
- or per-modality labels: ``<m>_<s>_labels``, ``<s>_<m>_labels``, ``lab_<s>_<m>``,
  ``label_<s>_<m>``, ``<m>_<s>_label``, ``<s>_<m>_label``; the two modalities' labels must
  be equal row by row (rows are paired clips);
- optional ``class_names`` / ``classes`` (str), and ``<s>_ids`` / ``ids_<s>`` (str).
- or one table for both splits (the layout of ``UnsupervisedMAE``'s ``data_loader.py``):
  ``audio_feat``, ``visual_feat``, ``Label_ID`` and ``Train_test`` or ``Split`` holding
  ``1`` (train) / ``0`` (test) per row (numbers or text; ``"train"`` / ``"test"`` too);
  item ids are then ``row-<i>``, the row in the file.

Labels are integer class indices ``(n,)`` / ``(n, 1)`` (``0..C-1``; if ``0`` never occurs
and no class names are given they are read as 1-based) or one-hot ``(n, C)`` rows of 0/1
summing to 1. Features ``(n, d)`` become the views ``"audio"`` / ``"visual"``; sequence
features ``(n, T, d)`` (e.g. 10 one-second segments) are kept as ``"audio_seq"`` /
``"visual_seq"`` and their time average becomes the main view, as in the papers. The
result has the label set ``"class"``, ``split`` = train/test and ``info["source"]`` =
the file.

Errors
------
Every problem raises :class:`~crossmodal_core.data.dataset.DatasetError` whose message
starts with the file path and names the key (NPZ member / HDF5 path) when there is one: not
an HDF5 / NPZ file, missing keys (the message lists the keys that *are* there), row counts
that disagree, NaN / inf, a class without items, one-hot rows that do not sum to 1, unknown
format versions, and every failure while opening, reading or decoding (bad zip CRC, a
truncated file, invalid UTF-8, HDF5 library errors). No other exception type leaves
:func:`load_dataset` / :func:`load_vegas_layout` for anything a file contains.

Safety: files are untrusted
---------------------------
A dataset file may come from anyone (the app accepts uploads), so the loaders refuse,
*before reading the data concerned*:

- **Other files.** HDF5 datasets with external storage (``Dataset.external``) or a virtual
  layout (``Dataset.is_virtual``), and every HDF5 link that is not a hard link (external
  links are never followed; soft links are refused too). h5py alone would read any file on
  the server through them.
- **Code.** Object / pickled arrays (an NPZ member whose ``.npy`` header says dtype
  object; HDF5 references, variable-length non-text data), structured, opaque and complex
  dtypes (only bool, int, float and text are read), and HDF5 filters other than the
  built-in gzip / shuffle / fletcher32 / szip / nbit / scaleoffset / lzf (others would load
  a plugin library).
- **Memory.** A shape claim the file's bytes cannot back, or one over the memory budget.
  NPZ: each member's ``.npy`` header is read first and ``prod(shape) * itemsize`` must fit
  in the member's uncompressed size (``ZipInfo.file_size``, which ``zipfile`` also enforces
  while inflating), and a member may not inflate by more than :data:`MAX_COMPRESSION_RATIO`
  (bzip2 / lzma members can; deflate cannot exceed about 1032:1). HDF5: unfiltered data must be backed by its stored bytes
  (``dataset.id.get_storage_size()``: unwritten data, i.e. fill values, is refused);
  compressed data may not claim more than :data:`MAX_COMPRESSION_RATIO` (4096) bytes per
  stored byte (claims under 1 MiB are exempt; a compressed chunk counts whole). All arrays
  of one file together may claim at most the **budget** :data:`MAX_LOAD_BYTES` (8 GiB, or
  half the physical memory when that is less), overridden by the environment variable
  ``CROSSMODAL_MAX_LOAD_BYTES`` (bytes, or ``512M`` / ``16G``). Decoded text counts 4
  bytes per character.

The HDF5 C library can crash or loop on a corrupt file, so HDF5 files are parsed in a
forked child process (POSIX) that sends the checked arrays back through a pipe (raw bytes
plus a JSON header; no pickle). A crash or a run past ``HDF5_READ_TIMEOUT_S`` (30 s plus
one second per 20 MB; ``CROSSMODAL_HDF5_TIMEOUT_S`` overrides) is a ``DatasetError``.
``CROSSMODAL_HDF5_ISOLATION=0`` reads in-process (debugging only).
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from crossmodal_core import store
from crossmodal_core.data.dataset import CrossModalDataset, DatasetError, nonfinite_rows

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
]

FORMAT_NAME = "crossmodal-dataset"
FORMAT_VERSION = 1
NPZ_SUFFIXES = (".npz",)
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")


# ---------------------------------------------------------------------- helpers
def _suffix_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in NPZ_SUFFIXES:
        return "npz"
    if suffix in HDF5_SUFFIXES:
        return "hdf5"
    raise DatasetError(
        f"{path}: unknown dataset file suffix {path.suffix!r}; expected one of "
        f"{', '.join(NPZ_SUFFIXES + HDF5_SUFFIXES)}"
    )


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


# ---------------------------------------------------------------------- load: limits
_GIB = 1 << 30
_MIB = 1 << 20


def _default_max_load_bytes() -> int:
    """8 GiB, or half the physical memory when that is smaller (and can be read)."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return 8 * _GIB
    return int(min(8 * _GIB, ram // 2)) if ram > 0 else 8 * _GIB


#: Default memory budget of one load: the decoded arrays of one file may not claim more.
#: Overridden by the environment variable ``CROSSMODAL_MAX_LOAD_BYTES`` (read at each load).
MAX_LOAD_BYTES: int = _default_max_load_bytes()
#: Compressed data (HDF5 filters, NPZ members) may not claim more than this many bytes per
#: stored byte (gzip / deflate cannot exceed about 1032:1; claims under 1 MiB are exempt).
MAX_COMPRESSION_RATIO = 4096
#: Largest root attribute (``format``, ``name``, ``info``, ``format_version``) read from HDF5.
MAX_ATTRIBUTE_BYTES = 16 * _MIB
#: Seconds the isolated HDF5 reader may take: this plus one second per 20 MB of file.
HDF5_READ_TIMEOUT_S = 30.0
BUDGET_ENV = "CROSSMODAL_MAX_LOAD_BYTES"
ISOLATION_ENV = "CROSSMODAL_HDF5_ISOLATION"
TIMEOUT_ENV = "CROSSMODAL_HDF5_TIMEOUT_S"

#: numpy kinds a loaded array may have: bool, signed/unsigned int, float, text.
_ALLOWED_KINDS = "biufUS"
#: HDF5 filters HDF5 and h5py ship (others would load a plugin library): id -> name.
_HDF5_FILTERS = {1: "gzip", 2: "shuffle", 3: "fletcher32", 4: "szip", 5: "nbit", 6: "scaleoffset", 32000: "lzf"}
_READ_CHUNK = 16 * _MIB


def max_load_bytes() -> int:
    """The memory budget of one load: ``$CROSSMODAL_MAX_LOAD_BYTES`` or :data:`MAX_LOAD_BYTES`.

    The variable takes a byte count, optionally with a ``K`` / ``M`` / ``G`` / ``T`` suffix
    (powers of 1024): ``CROSSMODAL_MAX_LOAD_BYTES=2G``.
    """
    raw = os.environ.get(BUDGET_ENV, "").strip()
    if not raw:
        return MAX_LOAD_BYTES
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    text = raw.upper().removesuffix("B").removesuffix("I")
    factor = 1
    if text and text[-1] in scale:
        factor, text = scale[text[-1]], text[:-1]
    try:
        value = int(float(text) * factor)
    except ValueError:
        raise DatasetError(f"{BUDGET_ENV}={raw!r} is not a byte count (e.g. 8000000000 or 8G)") from None
    if value <= 0:
        raise DatasetError(f"{BUDGET_ENV}={raw!r} must be a positive byte count")
    return value


def _fmt_bytes(n: int) -> str:
    for unit, size in (("TiB", 1 << 40), ("GiB", _GIB), ("MiB", _MIB), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


class _Budget:
    """Bytes the arrays of one file may still claim; :meth:`charge` refuses a claim over it."""

    def __init__(self, path: Path, limit: int | None = None):
        self.path = path
        self.limit = max_load_bytes() if limit is None else int(limit)
        self.used = 0

    def charge(self, nbytes: int, key: str, what: str) -> None:
        if self.used + nbytes > self.limit:
            raise DatasetError(
                f"{self.path}: {key!r} claims {what} = {_fmt_bytes(nbytes)}, which exceeds the memory "
                f"budget of {_fmt_bytes(self.limit)} per file ({_fmt_bytes(self.used)} already claimed by "
                f"earlier arrays); nothing was allocated. Raise the budget with {BUDGET_ENV}=<bytes> "
                "if the file is genuine"
            )
        self.used += nbytes


def _check_dtype(dtype: np.dtype, path: Path, key: str) -> None:
    """Refuse object / pickled, structured, sub-array, complex and other non-plain dtypes."""
    if dtype.hasobject or dtype.kind == "O":
        raise DatasetError(
            f"{path}: {key!r} is an object (pickled) array; pickles are never loaded (they can run code)"
        )
    if dtype.fields is not None or dtype.subdtype is not None:
        raise DatasetError(f"{path}: {key!r} has a structured or sub-array dtype {dtype}; only plain arrays are read")
    if dtype.kind == "c":
        raise DatasetError(
            f"{path}: {key!r} has the complex dtype {dtype}; features, labels and metadata must be real numbers"
        )
    if dtype.kind not in _ALLOWED_KINDS:
        raise DatasetError(f"{path}: {key!r} has the unsupported dtype {dtype} (allowed: bool, int, float, text)")


def _check_unicode(arr: np.ndarray, path: Path, key: str) -> np.ndarray:
    """A ``U`` array as native-endian, refusing code points that are not valid text."""
    arr = arr.astype(arr.dtype.newbyteorder("="), copy=False)
    if arr.size and arr.dtype.itemsize:
        codes = arr.reshape(-1).view(np.uint32)
        if (codes > 0x10FFFF).any() or ((codes >= 0xD800) & (codes <= 0xDFFF)).any():
            raise DatasetError(f"{path}: {key!r} holds invalid text (code points outside Unicode)")
    return arr


def _decode_bytes(arr: np.ndarray, path: Path, key: str) -> np.ndarray:
    try:
        return np.char.decode(arr, "utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: {key!r} is not valid UTF-8 text ({exc.reason} at byte {exc.start})") from None


# ---------------------------------------------------------------------- load: NPZ
def _read_npz(path: Path, budget: _Budget) -> dict[str, np.ndarray]:
    """Every ``.npy`` member of an NPZ file, each header checked before anything is allocated."""
    try:
        zf = zipfile.ZipFile(path)
    except Exception as exc:  # BadZipFile, OSError, EOFError, ValueError, UnicodeDecodeError, ...
        raise DatasetError(f"{path}: not a readable NPZ file ({type(exc).__name__}: {exc})") from None
    arrays: dict[str, np.ndarray] = {}
    with zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue  # np.savez writes only .npy members; anything else is not ours to read
            key = info.filename[: -len(".npy")]
            if key in arrays:
                raise DatasetError(f"{path}: member {info.filename!r} occurs twice in the archive")
            arrays[key] = _read_npz_member(zf, info, path, key, budget)
    return arrays


def _read_npz_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, key: str,
                     budget: _Budget) -> np.ndarray:
    from numpy.lib import format as npy

    try:
        with zf.open(info) as fp:
            version = npy.read_magic(fp)
            if version == (1, 0):
                shape, fortran, dtype = npy.read_array_header_1_0(fp)
            elif version == (2, 0):
                shape, fortran, dtype = npy.read_array_header_2_0(fp)
            else:
                raise DatasetError(f"{path}: member {key!r} uses .npy format version {version}, not 1.0 / 2.0")
            _check_dtype(dtype, path, key)
            count = math.prod(int(s) for s in shape)
            nbytes = count * dtype.itemsize
            stored = info.file_size - fp.tell()
            if nbytes > stored:
                raise DatasetError(
                    f"{path}: member {key!r} claims shape {tuple(shape)} of {dtype} = {_fmt_bytes(nbytes)}, but "
                    f"the archive stores only {_fmt_bytes(max(stored, 0))} for it; refused before allocation"
                )
            if nbytes > _MIB and info.file_size > max(info.compress_size, 1) * MAX_COMPRESSION_RATIO:
                raise DatasetError(  # a zip bomb: bzip2 / lzma members can inflate far beyond deflate
                    f"{path}: member {key!r} claims {_fmt_bytes(nbytes)} from {_fmt_bytes(info.compress_size)} "
                    f"of compressed data, a ratio above {MAX_COMPRESSION_RATIO}:1; refused before allocation"
                )
            decoded = nbytes * 4 if dtype.kind == "S" else 0  # bytes become 4-byte code points
            budget.charge(nbytes + decoded, key, f"shape {tuple(shape)} of {dtype}")
            arr = np.empty(tuple(shape[::-1]) if fortran else tuple(shape), dtype=dtype)
            if nbytes:
                _read_exactly(fp, arr.reshape(-1).view(np.uint8), path, key)
            while fp.read(_READ_CHUNK):  # the rest (np.save writes none), so the CRC gets checked
                pass
    except DatasetError:
        raise
    except Exception as exc:  # BadZipFile (CRC), zlib.error, EOFError, ValueError (header), ...
        raise DatasetError(
            f"{path}: member {key!r} of the NPZ archive is unreadable ({type(exc).__name__}: {exc})"
        ) from None
    if fortran:
        arr = arr.T
    if dtype.kind == "S":
        return _decode_bytes(arr, path, key)
    if dtype.kind == "U":
        return _check_unicode(arr, path, key)
    return arr


def _read_exactly(fp: Any, buf: np.ndarray, path: Path, key: str) -> None:
    mv = memoryview(buf)
    pos = 0
    while pos < len(mv):
        got = fp.readinto(mv[pos: pos + _READ_CHUNK])
        if not got:
            raise DatasetError(
                f"{path}: member {key!r} ends after {pos} of {len(mv)} data bytes (truncated archive)"
            )
        pos += got


# ---------------------------------------------------------------------- load: HDF5
def _hdf5_plan(dset: Any, key: str, path: Path, budget: _Budget) -> str:
    """Check one HDF5 dataset before any of its data is read; return how to read it.

    Refuses external storage, virtual layouts, unknown filters, non-plain dtypes, claims the
    stored bytes cannot back, and claims over the budget. Returns ``"vstr"`` (variable-length
    text), ``"bytes"`` (fixed-length text) or ``"plain"``.
    """
    import h5py

    if dset.is_virtual:
        raise DatasetError(
            f"{path}: dataset {key!r} is a virtual dataset (its data comes from other files); refused"
        )
    external = dset.external
    if external:
        targets = [str(e[0]) for e in external][:3]
        raise DatasetError(
            f"{path}: dataset {key!r} uses external storage (its bytes live in other files: "
            f"{repr(targets)[:200]}); refused, nothing was read"
        )
    plist = dset.id.get_create_plist()
    if plist.get_layout() == h5py.h5d.VIRTUAL:
        raise DatasetError(f"{path}: dataset {key!r} has a virtual layout; refused")
    filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    unknown = [f for f in filters if f not in _HDF5_FILTERS]
    if unknown:
        raise DatasetError(
            f"{path}: dataset {key!r} uses the HDF5 filter(s) {unknown}; only the built-in "
            f"{sorted(set(_HDF5_FILTERS.values()))} are read (others would load plugin code)"
        )
    dtype = dset.dtype
    string = h5py.check_string_dtype(dtype)
    if string is None:
        if h5py.check_ref_dtype(dtype) is not None:
            raise DatasetError(f"{path}: dataset {key!r} holds HDF5 object references; refused")
        if h5py.check_vlen_dtype(dtype) is not None:
            raise DatasetError(f"{path}: dataset {key!r} holds variable-length (ragged) data; refused")
        _check_dtype(dtype, path, key)
    shape = dset.shape
    if shape is None:
        raise DatasetError(f"{path}: dataset {key!r} has an empty (null) dataspace: no data")
    count = math.prod(int(s) for s in shape)
    elem_on_disk = dset.id.get_type().get_size()  # for variable-length text: a lower bound
    claimed = count * elem_on_disk
    stored = dset.id.get_storage_size()
    what = f"shape {tuple(shape)} of {dtype if string is None else 'text'}"
    if not filters:
        if claimed > stored:
            raise DatasetError(
                f"{path}: dataset {key!r} claims {what} = {_fmt_bytes(claimed)}, but the file stores only "
                f"{_fmt_bytes(stored)} for it (unwritten data / fill values are refused); nothing was allocated"
            )
    else:
        need = claimed
        if plist.get_layout() == h5py.h5d.CHUNKED and dset.chunks:  # a compressed chunk is inflated whole
            need = max(need, math.prod(dset.chunks) * elem_on_disk)
        if need > _MIB and need > stored * MAX_COMPRESSION_RATIO:
            raise DatasetError(
                f"{path}: dataset {key!r} claims {what} = {_fmt_bytes(need)} from {_fmt_bytes(stored)} of "
                f"compressed storage, a ratio above {MAX_COMPRESSION_RATIO}:1; refused before allocation"
            )
    if string is not None and string.length is None:
        budget.charge(count * 64, key, f"{what} (as Python strings)")
        return "vstr"
    itemsize = dtype.itemsize
    budget.charge(count * itemsize * (5 if string is not None else 1), key, what)
    return "plain" if string is None else "bytes"


def _hdf5_read_planned(dset: Any, kind: str, key: str, path: Path, budget: _Budget) -> np.ndarray:
    if kind == "vstr":
        try:
            values = dset.asstr()[()]
        except UnicodeDecodeError as exc:
            raise DatasetError(f"{path}: {key!r} is not valid UTF-8 text ({exc.reason})") from None
        obj = np.asarray(values, dtype=object)
        width = max((len(v) for v in obj.reshape(-1).tolist()), default=0)
        budget.charge(obj.size * width * 4, key, f"{obj.size} strings of up to {width} characters")
        return np.asarray(obj, dtype=f"<U{max(width, 1)}")
    data = np.asarray(dset[()])
    if kind == "bytes":
        return _decode_bytes(data, path, key)
    return data


def _read_root_attrs(f: Any, path: Path) -> dict[str, Any]:
    """The root attributes of our format (only these are read), each checked before reading."""
    import h5py

    attrs: dict[str, Any] = {}
    for name in ("format", "name", "info", "format_version"):
        if name not in f.attrs:
            continue
        aid = f.attrs.get_id(name)
        dtype, shape = aid.dtype, aid.shape
        is_text = h5py.check_string_dtype(dtype) is not None
        if not is_text and dtype.kind not in "iu":
            raise DatasetError(f"{path}: root attribute {name!r} has dtype {dtype}; expected text or an integer")
        if shape not in ((), (1,)):
            raise DatasetError(f"{path}: root attribute {name!r} has shape {shape}; expected a single value")
        if aid.get_storage_size() > MAX_ATTRIBUTE_BYTES:
            raise DatasetError(f"{path}: root attribute {name!r} is larger than {_fmt_bytes(MAX_ATTRIBUTE_BYTES)}")
        value = f.attrs[name]
        if isinstance(value, np.ndarray):
            value = value.reshape(-1)[0]
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise DatasetError(f"{path}: root attribute {name!r} is not valid UTF-8 text") from None
        attrs[name] = str(value) if is_text else int(value)
    return attrs


def _read_hdf5_here(path: Path, budget: _Budget) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The HDF5 reader proper (in this process): links, then every check, then the reads."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except Exception as exc:
        raise DatasetError(f"{path}: not a readable HDF5 file ({exc})") from None
    where = "the root attributes"
    with f:
        try:
            attrs = _read_root_attrs(f, path)
            where = "the group structure"
            links: list[tuple[bytes, int]] = []
            f.id.links.visit(lambda name, info: links.append((name, info.type)), info=True)
            datasets: list[tuple[str, Any]] = []
            seen: set = set()
            for raw, link_type in links:
                key = raw.decode("utf-8", errors="replace")
                where = repr(key)
                if link_type == h5py.h5l.TYPE_EXTERNAL:
                    target = f.get(raw, getlink=True)
                    raise DatasetError(
                        f"{path}: {key!r} is an external link (to {target.path!r} in {target.filename!r}); "
                        "links to other files are refused"
                    )
                if link_type != h5py.h5l.TYPE_HARD:
                    raise DatasetError(f"{path}: {key!r} is a soft or user-defined link; links are not followed")
                obj = f.get(raw)
                if isinstance(obj, h5py.Dataset) and obj.id not in seen:
                    seen.add(obj.id)
                    datasets.append((key, obj))
            planned = []
            for key, dset in datasets:  # every check before any data is read
                where = repr(key)
                planned.append((key, dset, _hdf5_plan(dset, key, path, budget)))
            arrays: dict[str, np.ndarray] = {}
            for key, dset, kind in planned:
                where = repr(key)
                arrays[key] = _hdf5_read_planned(dset, kind, key, path, budget)
        except DatasetError:
            raise
        except Exception as exc:  # OSError / KeyError / TypeError / ValueError / RuntimeError from HDF5
            raise DatasetError(
                f"{path}: HDF5 file unreadable at {where} ({type(exc).__name__}: {exc})"
            ) from None
    return arrays, attrs


def _isolation_enabled() -> bool:
    return hasattr(os, "fork") and os.environ.get(ISOLATION_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _read_hdf5(path: Path, budget: _Budget | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """All datasets of an HDF5 file as ``path-in-file -> array`` (text decoded), plus root attrs.

    The HDF5 C library can crash or hang on a corrupt file, so by default the file is parsed
    in a forked child process that sends the checked arrays back through a pipe (no pickle);
    a child that crashes or runs past its time limit becomes a :class:`DatasetError`.
    ``CROSSMODAL_HDF5_ISOLATION=0`` reads in this process instead.
    """
    budget = budget or _Budget(path)
    if not _isolation_enabled():
        return _read_hdf5_here(path, budget)
    return _read_hdf5_isolated(path, budget)


def _timeout_s(path: Path) -> float:
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if raw:
        try:
            return max(float(raw), 0.1)
        except ValueError:
            raise DatasetError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds") from None
    return HDF5_READ_TIMEOUT_S + path.stat().st_size / 20e6


def _hdf5_child(path: Path, budget: _Budget, fd: int) -> None:
    """Child side: read, then send one JSON header and the raw array bytes through ``fd``."""
    with os.fdopen(fd, "wb", buffering=0) as out:
        try:
            arrays, attrs = _read_hdf5_here(path, budget)
            header = {"attrs": attrs, "arrays": []}
            for key, arr in arrays.items():
                arrays[key] = arr = np.ascontiguousarray(arr)
                header["arrays"].append([key, arr.dtype.str, list(arr.shape)])
        except DatasetError as exc:
            header, arrays = {"error": str(exc)}, {}
        except BaseException as exc:  # noqa: BLE001 - the child reports everything, then exits
            header, arrays = {"error": f"{path}: HDF5 reader failed ({type(exc).__name__}: {exc})"}, {}
        blob = json.dumps(header).encode("utf-8")
        out.write(len(blob).to_bytes(8, "little") + blob)
        for arr in arrays.values():
            if arr.nbytes:
                out.write(memoryview(arr.reshape(-1).view(np.uint8)))


class _PipeReader:
    """Reads exactly n bytes from a pipe before a deadline."""

    def __init__(self, fd: int, deadline: float, path: Path):
        self.fd, self.deadline, self.path = fd, deadline, path

    def readinto(self, mv: memoryview) -> None:
        import select
        import time

        pos = 0
        while pos < len(mv):
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise TimeoutError
            got = os.readv(self.fd, [mv[pos: pos + _READ_CHUNK]])
            if not got:
                raise EOFError
            pos += got

    def read(self, n: int) -> bytes:
        buf = bytearray(n)
        self.readinto(memoryview(buf))
        return bytes(buf)


def _read_hdf5_isolated(path: Path, budget: _Budget) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    import signal
    import time

    import h5py  # imported (and its lock taken) before fork so the child never waits on it

    timeout = _timeout_s(path)
    rfd, wfd = os.pipe()
    with h5py._objects.phil:  # no other thread is inside h5py while we fork
        pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(rfd)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            import faulthandler

            faulthandler.disable()  # a crash is reported by the parent as a DatasetError
            _hdf5_child(path, budget, wfd)
        except BaseException:  # noqa: BLE001
            code = 1
        finally:
            os._exit(code)
    os.close(wfd)
    reader = _PipeReader(rfd, time.monotonic() + timeout, path)
    status = None
    try:
        size = int.from_bytes(reader.read(8), "little")
        if size > MAX_ATTRIBUTE_BYTES * 4 + 64 * _MIB:
            raise EOFError("oversized header")
        header = json.loads(reader.read(size).decode("utf-8"))
        if "error" in header:
            raise DatasetError(str(header["error"]))
        arrays: dict[str, np.ndarray] = {}
        parent_budget = _Budget(path, budget.limit)
        for key, dtype_str, shape in header["arrays"]:
            dtype = np.dtype(str(dtype_str))
            _check_dtype(dtype, path, key)
            shape = tuple(int(s) for s in shape)
            parent_budget.charge(math.prod(shape) * dtype.itemsize, key, f"shape {shape} of {dtype}")
            arr = np.empty(shape, dtype=dtype)
            if arr.nbytes:
                reader.readinto(memoryview(arr.reshape(-1).view(np.uint8)))
            arrays[str(key)] = arr
        return arrays, dict(header["attrs"])
    except DatasetError:
        raise
    except TimeoutError:
        raise DatasetError(
            f"{path}: reading the HDF5 file took longer than {timeout:.0f} s and was stopped "
            f"(a corrupt file can make the HDF5 library loop; set {TIMEOUT_ENV} for slow disks)"
        ) from None
    except (EOFError, OSError, ValueError, KeyError, TypeError) as exc:
        os.close(rfd)
        rfd = -1
        _, status = os.waitpid(pid, 0)  # the pipe ended or is closed: the child is gone or going
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else "?"
            raise DatasetError(
                f"{path}: the HDF5 library crashed reading this file (signal {sig}, {name}); "
                "the file is corrupt or hostile"
            ) from None
        raise DatasetError(f"{path}: the HDF5 reader stopped early ({type(exc).__name__}: {exc})") from None
    finally:
        if rfd >= 0:
            os.close(rfd)
        if status is None:  # still running (timeout, interrupt, refused header) or done: stop and reap it
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)


# ---------------------------------------------------------------------- load
def _read_arrays(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any] | None]:
    """Every array of an NPZ or HDF5 file (by suffix); HDF5 root attributes, or ``None`` for NPZ.

    Every check of the module docstring ("Safety") runs here; every failure is a
    :class:`DatasetError` whose message starts with the path and names the key.
    """
    kind = _suffix_kind(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    budget = _Budget(path)
    if kind == "npz":
        return _read_npz(path, budget), None
    return _read_hdf5(path, budget)


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
    arrays, attrs = _read_arrays(path)
    if attrs is None:
        marker = _text_scalar(arrays["format"], path, "format") if "format" in arrays else None
    else:
        marker = attrs.get("format")
        for attr in ("name", "info", "format_version"):
            if attr in attrs:
                arrays[attr] = np.asarray(attrs[attr])
    if marker == FORMAT_NAME:
        return _arrays_to_dataset(arrays, path)
    if marker is not None:
        raise DatasetError(f"{path}: unknown format marker {marker[:100]!r} (expected {FORMAT_NAME!r})")
    return _vegas_from_arrays(arrays, path)


# ---------------------------------------------------------------------- VEGAS / AVE layout
_MODALITY_ALIASES = {"audio": ("audio",), "visual": ("visual", "video", "image", "img")}
_SPLITS = ("train", "val", "test")


def _find_key(lower_to_key: dict[str, str], candidates: list[str]) -> str | None:
    for cand in candidates:
        if cand in lower_to_key:
            return lower_to_key[cand]
    return None


def _feature_key(lower_to_key: dict[str, str], modality: str, split: str) -> str | None:
    cands = []
    for alias in _MODALITY_ALIASES[modality]:
        cands += [f"{alias}_{split}", f"{split}_{alias}"]
    return _find_key(lower_to_key, cands)


def _label_keys(lower_to_key: dict[str, str], split: str) -> dict[str, str] | None:
    """``{"shared": key}`` or ``{"audio": key, "visual": key}`` or None."""
    shared = _find_key(lower_to_key, [
        f"{split}_labels", f"{split}_label", f"{split}_lab", f"lab_{split}",
        f"label_{split}", f"labels_{split}", f"y_{split}",
    ])
    if shared is not None:
        return {"shared": shared}
    per = {}
    for modality, aliases in _MODALITY_ALIASES.items():
        cands = []
        for a in aliases:
            cands += [f"{a}_{split}_labels", f"{split}_{a}_labels", f"lab_{split}_{a}",
                      f"label_{split}_{a}", f"{a}_{split}_label", f"{split}_{a}_label",
                      f"{a}_{split}_lab", f"{split}_{a}_lab", f"labels_{split}_{a}"]
        key = _find_key(lower_to_key, cands)
        if key is not None:
            per[modality] = key
    if len(per) == 2:
        return per
    if len(per) == 1:  # one modality's labels describe the paired rows of both
        return {"shared": next(iter(per.values()))}
    return None


def _decode_labels(raw: np.ndarray, key: str, path: Path) -> tuple[np.ndarray, int | None, bool]:
    """Integer class codes from integer or one-hot labels: (codes, n_columns or None, onehot)."""
    lab = np.asarray(raw)
    if lab.ndim == 2 and lab.shape[1] == 1:
        lab = lab[:, 0]
    if lab.ndim == 2:
        if not np.issubdtype(lab.dtype, np.number) or not np.isfinite(lab).all():
            raise DatasetError(f"{path}: one-hot labels {key!r} must be finite numbers")
        binary = np.isin(lab, (0, 1)).all()
        sums = lab.sum(axis=1)
        bad = np.nonzero(~np.isclose(sums, 1.0))[0]
        if not binary or len(bad):
            first = int(bad[0]) if len(bad) else int(np.nonzero(~np.isin(lab, (0, 1)).all(axis=1))[0][0])
            raise DatasetError(
                f"{path}: one-hot labels {key!r} must hold 0/1 rows summing to 1; "
                f"{max(len(bad), 1)} row(s) do not, first at row {first} (sum {float(sums[first]):g})"
            )
        return lab.argmax(axis=1).astype(np.int64), lab.shape[1], True
    if lab.ndim != 1:
        raise DatasetError(f"{path}: labels {key!r} must be (n,) integers or (n, C) one-hot, got shape {lab.shape}")
    if lab.dtype.kind == "f":
        if not np.isfinite(lab).all() or not np.all(lab == np.round(lab)):
            raise DatasetError(f"{path}: labels {key!r} must be whole numbers, found non-integer or NaN values")
        lab = lab.astype(np.int64)
    elif lab.dtype.kind not in "iub":
        raise DatasetError(f"{path}: labels {key!r} must be integer class indices or one-hot rows, got dtype {lab.dtype}")
    if len(lab) and lab.min() < 0:
        raise DatasetError(f"{path}: labels {key!r} hold negative class indices")
    if len(lab) and lab.max() >= 2**62:  # would wrap (uint64) or overflow (float) as int64
        raise DatasetError(f"{path}: labels {key!r} hold the class index {lab.max()}, far beyond any class count")
    return lab.astype(np.int64), None, False


def load_vegas_layout(path: str | Path, name: str | None = None) -> CrossModalDataset:
    """Load a VEGAS/AVE-style feature file (HDF5 or NPZ; layout in the module docstring).

    Returns a dataset with views ``"audio"`` and ``"visual"`` (plus ``"audio_seq"`` /
    ``"visual_seq"`` when the file holds ``(n, T, d)`` sequences), label set ``"class"``
    and ``split`` train/test (train rows first).
    """
    path = Path(path)
    arrays, _ = _read_arrays(path)
    return _vegas_from_arrays(arrays, path, name=name)


def _vegas_from_arrays(arrays: dict[str, np.ndarray], path: Path, name: str | None = None) -> CrossModalDataset:
    """The VEGAS/AVE layout read from ``arrays`` (feature arrays are popped as they are used)."""
    lower_to_key = {k.lower(): k for k in arrays}
    if _COMBINED_KEYS <= set(lower_to_key) and not _feature_key(lower_to_key, "audio", "train"):
        arrays = _split_combined_layout(arrays, lower_to_key, path)
        lower_to_key = {k.lower(): k for k in arrays}
    parts = _vegas_split_keys(arrays, lower_to_key, path)
    codes: dict[str, np.ndarray] = {}
    n_columns: set[int] = set()
    onehot_any = False
    for split, keys in parts.items():
        n_rows = _vegas_check_features(arrays, keys, path)
        codes[split], ncols, onehot = _vegas_split_labels(arrays, keys, split, n_rows, path)
        n_columns |= ncols
        onehot_any |= onehot
    codes, class_names = _vegas_resolve_classes(codes, n_columns, arrays, lower_to_key, path)
    return _vegas_assemble(arrays, lower_to_key, parts, codes, class_names, onehot_any, path, name)


_COMBINED_KEYS = {"audio_feat", "visual_feat", "label_id"}
_TRAIN_VALUES, _TEST_VALUES = ("1", "train"), ("0", "test")


def _split_combined_layout(arrays: dict[str, np.ndarray], lower_to_key: dict[str, str],
                           path: Path) -> dict[str, np.ndarray]:
    """The one-table layout (``audio_feat``, ``visual_feat``, ``Label_ID``, ``Train_test`` or
    ``Split`` with "1" = train, "0" = test) as per-split arrays with ids ``row-<i>`` (file row).

    The feature tables are popped from ``arrays`` as they are split, so each is held once.
    """
    split_key = _find_key(lower_to_key, ["train_test", "split"])
    if split_key is None:
        keys = sorted(arrays)[:30]
        raise DatasetError(
            f"{path}: 'audio_feat' / 'visual_feat' / 'Label_ID' need a 'Train_test' or 'Split' array "
            f"(1 = train, 0 = test); the file holds the keys {keys}"
        )
    raw = np.asarray(arrays[split_key]).reshape(-1)
    if raw.dtype.kind in "biuf":
        if raw.dtype.kind == "f" and not np.isfinite(raw).all():
            raise DatasetError(f"{path}: {split_key!r} holds NaN or inf")
        text = np.where(raw == 1, "1", np.where(raw == 0, "0", "other"))
    else:
        text = np.char.lower(np.char.strip(raw.astype(str)))
    train = np.isin(text, _TRAIN_VALUES)
    test = np.isin(text, _TEST_VALUES)
    odd = ~(train | test)
    if odd.any():
        shown = sorted({str(v) for v in raw[odd][:1000].tolist()})[:10]
        raise DatasetError(
            f"{path}: {split_key!r} must hold 1 (train) or 0 (test) per row; {int(odd.sum())} row(s) hold "
            f"other values, e.g. {shown}"
        )
    n = len(raw)
    out: dict[str, np.ndarray] = {}
    for name, key in (("audio", lower_to_key["audio_feat"]), ("visual", lower_to_key["visual_feat"]),
                      ("labels", lower_to_key["label_id"])):
        arr = np.asarray(arrays.pop(key))
        if name == "labels" and arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim == 0 or len(arr) != n:
            raise DatasetError(f"{path}: {key!r} has {0 if arr.ndim == 0 else len(arr)} rows but {split_key!r} has {n}")
        out[f"{name}_train"], out[f"{name}_test"] = arr[train], arr[test]
        del arr
    rows = np.arange(n)
    out["train_ids"] = np.array([f"row-{i:06d}" for i in rows[train]])
    out["test_ids"] = np.array([f"row-{i:06d}" for i in rows[test]])
    names_key = _find_key(lower_to_key, ["class_names", "classes", "label_names", "categories"])
    if names_key is not None:
        out[names_key] = arrays[names_key]
    return out


def _vegas_split_keys(arrays: Mapping[str, np.ndarray], lower_to_key: dict[str, str],
                      path: Path) -> dict[str, dict[str, Any]]:
    """``split -> {"audio": key, "visual": key, "labels": {...}}`` for train, (val,) test."""
    present = sorted(arrays)

    def missing(what: str) -> DatasetError:
        shown = present[:30] + (["..."] if len(present) > 30 else [])
        return DatasetError(
            f"{path}: not a crossmodal dataset and not the VEGAS/AVE layout: {what}; "
            f"the file holds the keys {shown}"
        )

    parts: dict[str, dict[str, Any]] = {}
    for split in _SPLITS:
        a_key = _feature_key(lower_to_key, "audio", split)
        v_key = _feature_key(lower_to_key, "visual", split)
        if split == "val" and a_key is None and v_key is None:
            continue
        if a_key is None or v_key is None:
            which = "audio" if a_key is None else "visual"
            raise missing(f"no {which} features for the {split} split (e.g. '{which}_{split}')")
        lab_keys = _label_keys(lower_to_key, split)
        if lab_keys is None:
            raise missing(f"no labels for the {split} split (e.g. '{split}_labels' or 'lab_{split}')")
        parts[split] = {"audio": a_key, "visual": v_key, "labels": lab_keys}
    return parts


def _vegas_check_features(arrays: Mapping[str, np.ndarray], keys: Mapping[str, Any], path: Path) -> int:
    """Check one split's audio / visual arrays (2-D or 3-D, numeric, finite, paired); return rows."""
    audio, visual = np.asarray(arrays[keys["audio"]]), np.asarray(arrays[keys["visual"]])
    for key, arr in ((keys["audio"], audio), (keys["visual"], visual)):
        if arr.ndim not in (2, 3):
            raise DatasetError(f"{path}: {key!r} must be (n, d) or (n, T, d), got shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.number):
            raise DatasetError(f"{path}: {key!r} is not numeric (dtype {arr.dtype})")
        rows = nonfinite_rows(arr)
        if len(rows):
            raise DatasetError(f"{path}: {key!r} contains NaN or inf in {len(rows)} row(s), first at row {int(rows[0])}")
    if len(audio) != len(visual):
        raise DatasetError(
            f"{path}: {keys['audio']!r} has {len(audio)} rows but {keys['visual']!r} has "
            f"{len(visual)}: audio and visual rows must be paired clips"
        )
    return len(audio)


def _vegas_split_labels(arrays: Mapping[str, np.ndarray], keys: Mapping[str, Any], split: str, n_rows: int,
                        path: Path) -> tuple[np.ndarray, set[int], bool]:
    """One split's class codes (shared, or per modality and equal row by row), one-hot widths, one-hot?"""
    labs: dict[str, np.ndarray] = {}
    n_columns: set[int] = set()
    onehot_any = False
    for which, key in keys["labels"].items():
        codes, ncol, onehot = _decode_labels(arrays[key], key, path)
        onehot_any |= onehot
        if ncol is not None:
            n_columns.add(ncol)
        if len(codes) != n_rows:
            raise DatasetError(f"{path}: labels {key!r} have {len(codes)} rows but {keys['audio']!r} has {n_rows}")
        labs[which] = codes
    if "shared" in labs:
        return labs["shared"], n_columns, onehot_any
    diff = np.nonzero(labs["audio"] != labs["visual"])[0]
    if len(diff):
        raise DatasetError(
            f"{path}: audio and visual labels of the {split} split differ in {len(diff)} row(s), "
            f"first at row {int(diff[0])}: rows must be paired clips of the same class"
        )
    return labs["audio"], n_columns, onehot_any


def _vegas_resolve_classes(codes: dict[str, np.ndarray], n_columns: set[int], arrays: Mapping[str, np.ndarray],
                           lower_to_key: dict[str, str], path: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """Class names (from the file, or ``class_<i>``), 1-based codes made 0-based, every class used.

    The number of classes comes from the one-hot width, else the class names, else the
    largest code; with no names and no 0 code the codes are read as 1-based.
    """
    if len(n_columns) > 1:
        raise DatasetError(f"{path}: one-hot label arrays disagree on the number of classes: {sorted(n_columns)}")
    all_codes = np.concatenate(list(codes.values()))
    names_key = _find_key(lower_to_key, ["class_names", "classes", "label_names", "categories"])
    class_names = None
    if names_key is not None:
        class_names = [str(c) for c in np.asarray(arrays[names_key]).reshape(-1).tolist()]
    if n_columns:
        n_classes = next(iter(n_columns))
    elif class_names is not None:
        n_classes = len(class_names)
    else:
        if len(all_codes) and all_codes.min() == 1:  # 1-based class numbers (MATLAB-style files)
            codes = {s: c - 1 for s, c in codes.items()}
            all_codes = all_codes - 1
        top = int(all_codes.max()) if len(all_codes) else -1
        if top >= len(all_codes):  # more classes than items: some class is empty (and names would not fit)
            raise DatasetError(
                f"{path}: labels hold class index {top} but there are only {len(all_codes)} items, "
                "so some classes have no item"
            )
        n_classes = top + 1
    if class_names is None:
        class_names = [f"class_{i}" for i in range(n_classes)]
    if len(class_names) != n_classes:
        raise DatasetError(f"{path}: {names_key!r} names {len(class_names)} classes but the labels have {n_classes}")
    if len(all_codes) and all_codes.max() >= n_classes:
        raise DatasetError(f"{path}: labels hold class index {int(all_codes.max())} but there are only {n_classes} classes")
    counts = np.bincount(all_codes, minlength=n_classes)
    empty = [class_names[i] for i in np.nonzero(counts == 0)[0]]
    if empty:
        raise DatasetError(
            f"{path}: {len(empty)} class(es) have no item in any split: {empty[:10]}"
            + (" ..." if len(empty) > 10 else "")
        )
    return codes, class_names


def _vegas_item_ids(arrays: Mapping[str, np.ndarray], lower_to_key: dict[str, str], split: str, n_rows: int,
                    path: Path) -> np.ndarray:
    id_key = _find_key(lower_to_key, [f"{split}_ids", f"ids_{split}", f"{split}_id", f"id_{split}"])
    if id_key is None:
        return np.array([f"{split}-{i:06d}" for i in range(n_rows)])
    ids = np.asarray(arrays[id_key]).astype(str).reshape(-1)
    if len(ids) != n_rows:
        raise DatasetError(f"{path}: {id_key!r} has {len(ids)} rows but the {split} features have {n_rows}")
    return ids


def _vegas_view(chunks: list[np.ndarray]) -> np.ndarray:
    """Concatenate one modality's splits in one copy (non-float input becomes float32)."""
    dtype = np.result_type(*chunks)
    if not np.issubdtype(dtype, np.floating):
        dtype = np.dtype(np.float32)
    return np.concatenate(chunks, axis=0, dtype=dtype)


def _vegas_assemble(arrays: dict[str, np.ndarray], lower_to_key: dict[str, str], parts: dict[str, dict[str, Any]],
                    codes: dict[str, np.ndarray], class_names: list[str], onehot_any: bool, path: Path,
                    name: str | None) -> CrossModalDataset:
    """Train (+val) rows first, then test; views, ids, split and ``source_split`` columns."""
    order = [s for s in ("train", "val", "test") if s in parts]
    split_col, source_split, ids = [], [], []
    for s in order:
        n_rows = len(codes[s])
        split_col += ["test" if s == "test" else "train"] * n_rows
        source_split += [s] * n_rows
        ids.append(_vegas_item_ids(arrays, lower_to_key, s, n_rows, path))
    views: dict[str, np.ndarray] = {}
    for modality in ("audio", "visual"):
        keys = [parts[s][modality] for s in order]
        shapes = {np.shape(arrays[k])[1:] for k in keys}
        if len(shapes) > 1:
            raise DatasetError(f"{path}: {modality} features have different shapes across splits: {sorted(shapes)}")
        arr = _vegas_view([np.asarray(arrays[k]) for k in keys])
        for k in keys:  # the file's copy is no longer needed once concatenated
            arrays.pop(k, None)
        if arr.ndim == 3:
            views[modality] = arr.mean(axis=1, dtype=np.float64).astype(arr.dtype)
            views[f"{modality}_seq"] = arr
        else:
            views[modality] = arr
    # Put the 2-D views first so "the first two views" are audio, visual.
    views = {k: views[k] for k in sorted(views, key=lambda k: (k.endswith("_seq"), k != "audio"))}
    item_ids = np.concatenate(ids)
    if len(np.unique(item_ids)) != len(item_ids):
        item_ids = np.array([f"{s}-{i}" for s, i in zip(source_split, item_ids)])
    metadata = {"source_split": np.array(source_split)} if "val" in parts else {}
    info = {
        "source": str(path),
        "layout": "vegas",
        "synthetic": False,
        "default_label": "class",
        "labels_were_onehot": bool(onehot_any),
        "description": f"audio-visual features read from {path.name} (VEGAS/AVE layout)",
    }
    try:
        return CrossModalDataset(
            views=views,
            labels={"class": np.concatenate([codes[s] for s in order])},
            class_names={"class": class_names},
            item_ids=item_ids,
            metadata=metadata,
            split=np.array(split_col),
            name=name or path.stem,
            info=info,
        )
    except DatasetError as exc:
        raise DatasetError(f"{path}: {str(exc).split(': ', 1)[-1]}") from None
