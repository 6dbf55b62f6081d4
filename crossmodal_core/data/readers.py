"""Reading the arrays of an untrusted NPZ or HDF5 file: :func:`read_arrays`.

``read_arrays(path) -> (arrays, attrs)`` returns every array of a file as ``key -> array``
(NPZ member name / HDF5 path in the file; text decoded to unicode) and, for HDF5, the root
attributes of our format (``format``, ``name``, ``info``, ``format_version``; ``None`` for
NPZ). The suffix picks the reader (``.npz`` vs ``.h5`` / ``.hdf5`` / ``.hdf``). It knows
nothing of what the arrays mean: :mod:`crossmodal_core.data.io` (our format) and
:mod:`crossmodal_core.data.vegas` (the public VEGAS / AVE layout) interpret them. Every
failure is a :class:`~crossmodal_core.data.dataset.DatasetError` whose message starts with
the file path and names the key (NPZ member / HDF5 path) when there is one.

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
from typing import Any

import numpy as np

from crossmodal_core.data.dataset import DatasetError

__all__ = [
    "MAX_LOAD_BYTES",
    "max_load_bytes",
    "MAX_COMPRESSION_RATIO",
    "MAX_ATTRIBUTE_BYTES",
    "HDF5_READ_TIMEOUT_S",
    "BUDGET_ENV",
    "ISOLATION_ENV",
    "TIMEOUT_ENV",
    "NPZ_SUFFIXES",
    "HDF5_SUFFIXES",
    "read_arrays",
    "read_hdf5_lazy",
    "LAZY_MAX_CHUNK_BYTES",
]

NPZ_SUFFIXES = (".npz",)
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")


# ---------------------------------------------------------------------- file kind
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
#: bytes an NPZ member may hold after its data (np.save writes none; a little slack for other writers)
_MEMBER_SLACK = 4096


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
            if stored > nbytes + _MEMBER_SLACK:  # np.save writes nothing after the data: a padded bomb
                raise DatasetError(
                    f"{path}: member {key!r} stores {_fmt_bytes(stored)} after its header but its shape "
                    f"{tuple(shape)} of {dtype} needs {_fmt_bytes(nbytes)}; refused before reading the rest"
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


#: rows of variable-length text read at a time: the budget is charged after each block, so a
#: file whose strings share one heap object (tiny on disk, huge decoded) is refused after at
#: most this many rows, not after all of them
_VSTR_ROWS = 256


def _read_vlen_text(dset: Any, key: str, budget: _Budget) -> np.ndarray:
    """Variable-length UTF-8 text as a fixed-width unicode array, charged block by block for
    what the fixed-width array will take (``count x longest x 4`` bytes)."""
    reader = dset.asstr()
    count = int(dset.size)
    charged = count * 64  # what _hdf5_plan charged before reading
    width = 0

    def account(block: np.ndarray) -> None:
        nonlocal width, charged
        width = max(width, max((len(v) for v in block.reshape(-1).tolist()), default=0))
        need = count * width * 4
        if need > charged:
            budget.charge(need - charged, key, f"{count} strings of up to {width} characters")
            charged = need

    if dset.ndim == 0:
        obj = np.asarray(reader[()], dtype=object)
        account(obj)
    else:
        blocks = []
        for start in range(0, dset.shape[0], _VSTR_ROWS):
            block = np.asarray(reader[start:start + _VSTR_ROWS], dtype=object)
            account(block)
            blocks.append(block)
        obj = np.concatenate(blocks) if blocks else np.empty(dset.shape, dtype=object)
    return np.asarray(obj, dtype=f"<U{max(width, 1)}")


def _hdf5_read_planned(dset: Any, kind: str, key: str, path: Path, budget: _Budget) -> np.ndarray:
    if kind == "vstr":
        try:
            return _read_vlen_text(dset, key, budget)
        except UnicodeDecodeError as exc:
            raise DatasetError(f"{path}: {key!r} is not valid UTF-8 text ({exc.reason})") from None
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


#: largest decoded chunk a dataset left on disk may have (a block read inflates whole chunks)
LAZY_MAX_CHUNK_BYTES = 256 * _MIB


def _hdf5_lazy_plan(dset: Any, key: str, path: Path) -> list[Any]:
    """Check a dataset that stays on disk (read later, block by block, in the caller's
    process): the checks of :func:`_hdf5_plan` without the budget, a plain numeric dtype, chunks
    of at most :data:`LAZY_MAX_CHUNK_BYTES`, and every chunk written and inside the file (this
    walks the chunk index here, in the isolated reader). Returns ``[dtype, shape, chunk_rows]``."""
    import h5py

    kind = _hdf5_plan(dset, key, path, _Budget(path, limit=1 << 62))
    if kind != "plain" or dset.dtype.kind not in "biuf" or dset.ndim < 1:
        raise DatasetError(f"{path}: dataset {key!r} ({dset.dtype}, shape {dset.shape}) cannot stay on disk; "
                           "only numeric arrays of one or more dimensions can")
    chunk_rows = 1
    if dset.id.get_create_plist().get_layout() == h5py.h5d.CHUNKED and dset.chunks:
        chunk_bytes = math.prod(dset.chunks) * dset.dtype.itemsize
        if chunk_bytes > LAZY_MAX_CHUNK_BYTES:
            raise DatasetError(f"{path}: dataset {key!r} has chunks of {_fmt_bytes(chunk_bytes)}, above "
                               f"{_fmt_bytes(LAZY_MAX_CHUNK_BYTES)}; re-chunk it (python -m crossmodal_core convert)")
        expected = math.prod(math.ceil(s / c) for s, c in zip(dset.shape, dset.chunks))
        count = dset.id.get_num_chunks()
        if count != expected:
            raise DatasetError(f"{path}: dataset {key!r} has {count} of its {expected} chunks written "
                               "(unwritten chunks read as fill values); refused")
        size = path.stat().st_size
        for i in range(count):
            info = dset.id.get_chunk_info(i)
            if info.byte_offset is None or info.byte_offset + info.size > size:
                raise DatasetError(f"{path}: dataset {key!r}: chunk {i} lies outside the file (truncated?)")
        chunk_rows = int(dset.chunks[0])
    return [dset.dtype.str, [int(s) for s in dset.shape], chunk_rows]


def _read_hdf5_here(path: Path, budget: _Budget, lazy: Any = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The HDF5 reader proper (in this process): links, then every check, then the reads.

    ``lazy(key, dataset) -> bool`` picks datasets that are checked (:func:`_hdf5_lazy_plan`)
    but not read; their ``[dtype, shape, chunk_rows]`` come back in ``attrs["__lazy__"]``."""
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
            lazy_specs: dict[str, list[Any]] = {}
            for key, dset in datasets:  # every check before any data is read
                where = repr(key)
                if lazy is not None and lazy(key, dset):
                    lazy_specs[key] = _hdf5_lazy_plan(dset, key, path)
                    continue
                planned.append((key, dset, _hdf5_plan(dset, key, path, budget)))
            if lazy is not None:
                attrs["__lazy__"] = lazy_specs
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


def _read_hdf5(path: Path, budget: _Budget | None = None, lazy: Any = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """All datasets of an HDF5 file as ``path-in-file -> array`` (text decoded), plus root attrs.

    The HDF5 C library can crash or hang on a corrupt file, so by default the file is parsed
    in a forked child process that sends the checked arrays back through a pipe (no pickle);
    a child that crashes or runs past its time limit becomes a :class:`DatasetError`.
    ``CROSSMODAL_HDF5_ISOLATION=0`` reads in this process instead.
    """
    budget = budget or _Budget(path)
    if not _isolation_enabled():
        return _read_hdf5_here(path, budget, lazy)
    return _read_hdf5_isolated(path, budget, lazy)


def _timeout_s(path: Path) -> float:
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if raw:
        try:
            return max(float(raw), 0.1)
        except ValueError:
            raise DatasetError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds") from None
    return HDF5_READ_TIMEOUT_S + path.stat().st_size / 20e6


def _hdf5_child(path: Path, budget: _Budget, fd: int, lazy: Any = None) -> None:
    """Child side: read, then send one JSON header and the raw array bytes through ``fd``."""
    with os.fdopen(fd, "wb", buffering=0) as out:
        try:
            arrays, attrs = _read_hdf5_here(path, budget, lazy)
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

        poller = select.poll()  # not select.select: it fails on descriptors above 1023
        poller.register(self.fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        pos = 0
        while pos < len(mv):
            left = self.deadline - time.monotonic()
            if left <= 0 or not poller.poll(max(1, int(left * 1000))):
                raise TimeoutError
            got = os.readv(self.fd, [mv[pos: pos + _READ_CHUNK]])
            if not got:
                raise EOFError
            pos += got

    def read(self, n: int) -> bytes:
        buf = bytearray(n)
        self.readinto(memoryview(buf))
        return bytes(buf)


def _read_hdf5_isolated(path: Path, budget: _Budget, lazy: Any = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
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
            _hdf5_child(path, budget, wfd, lazy)
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
        # the pipe ended or is closed: the child is gone or going; give it a moment to exit
        # (a crash is reported as one), but never wait on one still running
        done, status = os.waitpid(pid, os.WNOHANG)
        for _ in range(50):
            if done:
                break
            time.sleep(0.02)
            done, status = os.waitpid(pid, os.WNOHANG)
        if not done:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            raise DatasetError(f"{path}: the HDF5 reader stopped early ({type(exc).__name__}: {exc})") from None
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


# ---------------------------------------------------------------------- entry point
def read_hdf5_lazy(path: str | Path, lazy: Any) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, list[Any]]]:
    """Like :func:`read_arrays` for HDF5, but the datasets ``lazy(key, h5py_dataset)`` picks are
    only checked, in the isolated reader (:func:`_hdf5_lazy_plan`), not read. Returns the
    read arrays, the root attributes and ``key -> [dtype str, shape, chunk_rows]`` of the
    others, which :mod:`crossmodal_core.data.lazy` then reads block by block."""
    path = Path(path)
    if _suffix_kind(path) != "hdf5":
        raise DatasetError(f"{path}: only HDF5 datasets can stay on disk this way")
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    arrays, attrs = _read_hdf5(path, _Budget(path), lazy)
    specs = attrs.pop("__lazy__", {}) or {}
    for key, (dtype_str, shape, chunk_rows) in specs.items():
        _check_dtype(np.dtype(str(dtype_str)), path, key)
    return arrays, attrs, specs


def read_arrays(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any] | None]:
    """Every array of an NPZ or HDF5 file (by suffix); HDF5 root attributes, or ``None`` for NPZ.

    Every check of the module docstring ("Safety") runs here; every failure is a
    :class:`DatasetError` whose message starts with the path and names the key.
    """
    path = Path(path)
    kind = _suffix_kind(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    budget = _Budget(path)
    if kind == "npz":
        return _read_npz(path, budget), None
    return _read_hdf5(path, budget)
