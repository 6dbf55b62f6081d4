"""Views that stay on disk: :class:`LazyArray`, read row block by row block.

A dataset of 10⁶ VEGAS-shaped items (128 + 1024 float32) is 4.6 GB of features; loading it
(:func:`crossmodal_core.data.io.load_dataset` with ``lazy=False``) needs that much RAM and
more. A :class:`LazyArray` instead keeps a view in its file (a chunked Zarr array, or an
HDF5 dataset) and reads rows only when asked, so opening costs memory independent of ``n``
(the labels, ids and metadata columns are still read: they are small).

What a ``LazyArray`` does
-------------------------
- ``shape``, ``dtype``, ``ndim``, ``len()``, ``nbytes`` as a NumPy array would;
- ``a[i]``, ``a[start:stop]``, ``a[rows, cols]`` read those rows now and return NumPy;
- ``a[index_array]`` / ``a[bool_mask]`` return another ``LazyArray`` over those rows (so
  :meth:`CrossModalDataset.subset` and the fold splits stay on disk);
- :meth:`LazyArray.iter_blocks` yields ``(start, block)`` row blocks (the streaming fits use it);
- :meth:`LazyArray.to_dask` is a ``dask.array`` with one chunk per row block;
- ``np.asarray(a)`` reads everything (charged to the memory budget of
  :func:`crossmodal_core.data.readers.max_load_bytes`: a view larger than the budget is a
  :class:`DatasetError`, never a swap storm).

Every block read is checked for NaN / inf (a :class:`DatasetError` naming the file, key and
row): a lazy open cannot scan the whole view up front without reading it all, so the check
moves to the reads. A ``LazyArray`` pickles as its description (file, key, rows, the file's
size and modification time) and reopens the file where it is unpickled (a Dask worker);
a file that changed since it was opened is refused there.

Files are untrusted (see :mod:`crossmodal_core.data.readers`)
------------------------------------------------------------
- **HDF5.** The whole structure is first checked in the forked child of
  :func:`crossmodal_core.data.readers.read_arrays` (links, external storage, virtual layouts,
  filters, dtypes, shape against stored bytes, and for lazy views the chunk index: every
  chunk inside the file, no chunk decoding to more than :data:`MAX_CHUNK_BYTES`). Only then
  is the file opened in this process, read-only, to read row blocks of the checked views.
  The part of a corrupt file the child cannot rule out is a damaged *compressed payload*,
  which HDF5's filter pipeline reports as an error (raised as a ``DatasetError``), not a
  crash. h5py handles are not shared across ``fork``: each process (a Dask worker, a
  forked reader child) opens its own handle, tracked by process id.
- **Zarr.** Only Zarr format 3 directories as :func:`save_zarr` writes them: every
  ``zarr.json`` is parsed as JSON and checked *before* zarr sees the directory; the data
  types are bool / int / uint / float32 / float64 / fixed-width UTF-32 text; a regular chunk
  grid with ``/``-separated keys; codecs only from :data:`ZARR_CODECS` (zarr's built-in
  ``bytes``, ``zstd``, ``gzip``, ``blosc``, ``crc32c``: no numcodecs object / pickle codec,
  no sharding, no storage transformer); every chunk file present (a missing chunk would read
  as fill values), uncompressed chunks exactly their size, compressed arrays within
  :data:`~crossmodal_core.data.readers.MAX_COMPRESSION_RATIO`; no symbolic link or
  special file anywhere in the tree (a link to ``/etc/passwd`` named ``c/0/0`` would be read).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from crossmodal_core.data.dataset import DatasetError
from crossmodal_core.data.readers import MAX_COMPRESSION_RATIO, _fmt_bytes, max_load_bytes

__all__ = [
    "LazyArray",
    "is_lazy",
    "iter_row_blocks",
    "block_rows_for",
    "MAX_CHUNK_BYTES",
    "ZARR_CODECS",
    "ZARR_SUFFIXES",
    "open_zarr_arrays",
    "write_zarr_arrays",
    "open_hdf5_arrays",
    "is_zarr_path",
    "RowConcat",
    "RowMean",
]

ZARR_SUFFIXES = (".zarr",)
#: largest decoded chunk a lazy view may have (one block read inflates whole chunks)
MAX_CHUNK_BYTES = 256 << 20
#: Zarr v3 codecs a file may use: zarr's own, none of which loads code or unpickles
ZARR_CODECS = ("bytes", "zstd", "gzip", "blosc", "crc32c")
#: bytes of row data one block aims at (the block is a whole number of file chunks)
BLOCK_BYTES = 64 << 20
_MAX_JSON_BYTES = 16 << 20
_MAX_NODES = 10_000
_PLAIN_TYPES = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                "float32", "float64"}


def is_lazy(arr: Any) -> bool:
    """True for arrays read block by block (a :class:`LazyArray` or a ``dask.array``)."""
    return isinstance(arr, LazyArray) or type(arr).__module__.startswith("dask.")


def block_rows_for(shape: Sequence[int], itemsize: int, chunk_rows: int = 1,
                   block_bytes: int | None = None) -> int:
    """Rows per block: about ``block_bytes`` (default :data:`BLOCK_BYTES`) of data, a multiple
    of ``chunk_rows``."""
    block_bytes = BLOCK_BYTES if block_bytes is None else block_bytes
    row_bytes = max(1, math.prod(int(s) for s in shape[1:]) * int(itemsize))
    rows = max(1, block_bytes // row_bytes)
    chunk_rows = max(1, int(chunk_rows))
    return max(chunk_rows, rows // chunk_rows * chunk_rows)


def iter_row_blocks(arr: Any, block_rows: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, rows start..start+len)`` blocks of a NumPy, lazy or dask array, as NumPy."""
    if isinstance(arr, LazyArray):
        yield from arr.iter_blocks(block_rows)
        return
    n = int(arr.shape[0])
    if block_rows is None:
        block_rows = block_rows_for(arr.shape, np.dtype(arr.dtype).itemsize)
    for start in range(0, n, block_rows):
        yield start, np.asarray(arr[start:start + block_rows])


# ---------------------------------------------------------------------- sources
class _Source:
    """One on-disk array: ``read(start, stop)`` and ``take(sorted_rows)`` return NumPy."""

    path: Path
    key: str
    shape: tuple[int, ...]
    dtype: np.dtype
    chunk_rows: int

    def _stamp(self) -> tuple[int, int]:
        st = os.stat(self.path)
        return int(st.st_size), int(st.st_mtime_ns)

    def _check_stamp(self) -> None:
        if self._stamp() != self.stamp:
            raise DatasetError(f"{self.path}: the file changed since it was opened; open it again")

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_handle", None)
        state.pop("_pid", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._check_stamp()  # a worker reopening a file that was rewritten since it was checked


class _HDF5Source(_Source):
    def __init__(self, path: Path, key: str, shape: Sequence[int], dtype: np.dtype, chunk_rows: int,
                 stamp: tuple[int, int]):
        self.path, self.key, self.shape = Path(path), str(key), tuple(int(s) for s in shape)
        self.dtype, self.chunk_rows, self.stamp = np.dtype(dtype), int(chunk_rows), tuple(stamp)

    def _dataset(self):
        import h5py

        # one handle per process: an h5py file inherited through fork must not be used
        if getattr(self, "_pid", None) != os.getpid():
            self._handle = h5py.File(self.path, "r")
            self._pid = os.getpid()
            dset = self._handle[self.key]
            if tuple(dset.shape) != self.shape or dset.dtype != self.dtype:
                raise DatasetError(f"{self.path}: dataset {self.key!r} changed since it was checked")
        return self._handle[self.key]

    def read(self, start: int, stop: int) -> np.ndarray:
        try:
            return np.asarray(self._dataset()[start:stop])
        except DatasetError:
            raise
        except Exception as exc:  # OSError from a damaged chunk, ...
            raise DatasetError(f"{self.path}: rows {start}..{stop} of {self.key!r} are unreadable "
                               f"({type(exc).__name__}: {exc})") from None

    def take(self, rows: np.ndarray) -> np.ndarray:
        try:
            return np.asarray(self._dataset()[rows])
        except Exception as exc:
            raise DatasetError(f"{self.path}: rows of {self.key!r} are unreadable ({type(exc).__name__}: {exc})") from None


class _ZarrSource(_Source):
    def __init__(self, path: Path, key: str, shape: Sequence[int], dtype: np.dtype, chunk_rows: int,
                 stamp: tuple[int, int]):
        self.path, self.key, self.shape = Path(path), str(key), tuple(int(s) for s in shape)
        self.dtype, self.chunk_rows, self.stamp = np.dtype(dtype), int(chunk_rows), tuple(stamp)

    def _stamp(self) -> tuple[int, int]:
        st = os.stat(self.path / self.key / "zarr.json")
        return int(st.st_size), int(st.st_mtime_ns)

    def _array(self):
        if getattr(self, "_pid", None) != os.getpid():
            import zarr

            self._handle = zarr.open_array(str(self.path / self.key), mode="r")
            self._pid = os.getpid()
        return self._handle

    def read(self, start: int, stop: int) -> np.ndarray:
        try:
            return np.asarray(self._array()[start:stop])
        except Exception as exc:
            raise DatasetError(f"{self.path}: rows {start}..{stop} of {self.key!r} are unreadable "
                               f"({type(exc).__name__}: {exc})") from None

    def take(self, rows: np.ndarray) -> np.ndarray:
        try:
            return np.asarray(self._array().get_orthogonal_selection((rows,)))
        except Exception as exc:
            raise DatasetError(f"{self.path}: rows of {self.key!r} are unreadable ({type(exc).__name__}: {exc})") from None


# ---------------------------------------------------------------------- the array
class LazyArray:
    """Rows ``rows`` (all when ``None``) of an on-disk array; see the module docstring.

    ``dtype`` is what reads return (the stored dtype, or a cast set by :meth:`astype`).
    """

    __array_priority__ = 20

    def __init__(self, source: _Source, rows: np.ndarray | None = None, dtype: Any = None):
        self._source = source
        self._rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self.dtype = np.dtype(source.dtype if dtype is None else dtype)

    # -- array protocol
    @property
    def shape(self) -> tuple[int, ...]:
        n = self._source.shape[0] if self._rows is None else len(self._rows)
        return (int(n),) + self._source.shape[1:]

    @property
    def ndim(self) -> int:
        return len(self._source.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def source(self) -> str:
        """``file:key`` of the data (for messages)."""
        return f"{self._source.path}:{self._source.key}"

    @property
    def chunk_rows(self) -> int:
        return self._source.chunk_rows

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"LazyArray({self.source}, shape={self.shape}, dtype={self.dtype})"

    def astype(self, dtype: Any, copy: bool = True) -> "LazyArray":
        """The same rows, read as ``dtype`` (still lazy)."""
        return LazyArray(self._source, self._rows, dtype)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        self._charge(self.nbytes, "the whole view")
        out = np.empty(self.shape, dtype=self.dtype)
        for start, block in self.iter_blocks():
            out[start:start + len(block)] = block
        return out if dtype is None else out.astype(dtype, copy=False)

    def _charge(self, nbytes: int, what: str) -> None:
        limit = max_load_bytes()
        if nbytes > limit:
            raise DatasetError(
                f"{self.source}: reading {what} ({_fmt_bytes(nbytes)}) into memory exceeds the memory budget of "
                f"{_fmt_bytes(limit)}; this view stays on disk: use a streaming fit (it reads row blocks), or "
                "raise the budget with CROSSMODAL_MAX_LOAD_BYTES"
            )

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, tuple):
            if not index:
                return np.asarray(self)
            rows, rest = index[0], index[1:]
            first = self[rows]
            first = np.asarray(first) if isinstance(first, LazyArray) else first
            if isinstance(rows, (int, np.integer)):
                return first[rest]
            return first[(slice(None),) + rest]
        if isinstance(index, (int, np.integer)):
            n = len(self)
            i = int(index) + (n if index < 0 else 0)
            if not 0 <= i < n:
                raise IndexError(f"row {index} out of range for {n} rows")
            return self._read_positions(i, i + 1)[0]
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step == 1:
                return self._read_positions(start, max(start, stop))
            return self._materialise_rows(np.arange(start, stop, step))
        if index is Ellipsis:
            return np.asarray(self)
        idx = np.asarray(index)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise IndexError(f"boolean index of shape {idx.shape} for {len(self)} rows")
            idx = np.nonzero(idx)[0]
        if idx.dtype.kind not in "iu" or idx.ndim != 1:
            raise IndexError(f"LazyArray rows must be an int or bool 1-D array, a slice or an int, got {idx.dtype}")
        n = len(self)
        if len(idx) and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"row index out of range for {n} rows")
        idx = np.where(idx < 0, idx + n, idx)
        base = idx if self._rows is None else self._rows[idx]
        return LazyArray(self._source, base, self.dtype)

    def _materialise_rows(self, positions: np.ndarray) -> np.ndarray:
        return np.asarray(self[positions])

    # -- reading
    def _source_rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start..stop`` of this array as NumPy (read from the source, cast, checked)."""
        src = self._source
        row_bytes = math.prod(self.shape[1:]) * self.dtype.itemsize
        self._charge((stop - start) * row_bytes, f"rows {start}..{stop}")
        if self._rows is None:
            data = src.read(start, stop)
        else:
            want = self._rows[start:stop]
            if len(want) == 0:
                data = np.empty((0,) + self.shape[1:], dtype=src.dtype)
            else:
                lo, hi = int(want.min()), int(want.max()) + 1
                if hi - lo <= 4 * len(want):  # dense selection: one range read, then pick
                    data = src.read(lo, hi)[want - lo]
                else:
                    uniq, inverse = np.unique(want, return_inverse=True)
                    data = src.take(uniq)[inverse]
        data = np.asarray(data)
        if data.dtype != self.dtype:
            data = data.astype(self.dtype)
        if data.dtype.kind in "fc":
            ok = np.isfinite(data).reshape(len(data), -1).all(axis=1)
            if not ok.all():
                bad = int(np.nonzero(~ok)[0][0]) + start
                raise DatasetError(f"{self.source}: NaN or inf in row {bad}")
        return data

    _read_positions = _source_rows

    def default_block_rows(self) -> int:
        return block_rows_for(self.shape, self.dtype.itemsize, self._source.chunk_rows)

    def iter_blocks(self, block_rows: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """``(start, block)`` for consecutive row blocks (``block_rows``, default about 64 MiB)."""
        step = int(block_rows or self.default_block_rows())
        for start in range(0, len(self), step):
            yield start, self._source_rows(start, min(len(self), start + step))

    def to_dask(self, block_rows: int | None = None):
        """This array as a ``dask.array`` with one chunk per row block (reads in the workers)."""
        import dask.array as da

        step = int(block_rows or self.default_block_rows())
        return da.from_array(self, chunks=(step,) + self.shape[1:], asarray=True, lock=False,
                             name=f"lazy-{self.__dask_tokenize__()}", meta=np.empty((0,) * self.ndim, self.dtype))

    def __dask_tokenize__(self) -> str:
        from crossmodal_core.store import cache_key

        rows = None if self._rows is None else cache_key(self._rows.tobytes().hex(), length=16)
        return cache_key(str(self._source.path), self._source.key, list(self._source.stamp), rows,
                         self.dtype.str, length=24)


# ---------------------------------------------------------------------- Zarr: checks
def _zarr_error(path: Path, key: str, what: str) -> DatasetError:
    where = f" array {key!r}" if key else ""
    return DatasetError(f"{path}:{where} {what}")


def _read_json(file: Path, path: Path, key: str) -> dict:
    try:
        size = file.stat().st_size
        if size > _MAX_JSON_BYTES:
            raise _zarr_error(path, key, f"zarr.json is {_fmt_bytes(size)}, larger than {_fmt_bytes(_MAX_JSON_BYTES)}")
        meta = json.loads(file.read_text(encoding="utf-8"))
    except DatasetError:
        raise
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _zarr_error(path, key, f"zarr.json is not valid JSON ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(meta, dict):
        raise _zarr_error(path, key, "zarr.json is not a JSON object")
    return meta


def _zarr_dtype(meta: dict, path: Path, key: str) -> np.dtype:
    dt = meta.get("data_type")
    if isinstance(dt, str) and dt in _PLAIN_TYPES:
        return np.dtype(dt)
    if isinstance(dt, dict) and dt.get("name") == "fixed_length_utf32":
        length = (dt.get("configuration") or {}).get("length_bytes")
        if isinstance(length, int) and not isinstance(length, bool) and 4 <= length <= 4 * 65536 and length % 4 == 0:
            return np.dtype(f"<U{length // 4}")
    shown = json.dumps(dt)[:100]
    raise _zarr_error(path, key, f"has the data type {shown}; only bool, int, uint, float32/64 and fixed-width "
                                 "text are read (no object, string or structured types)")


def _positive_ints(value: Any, n: int | None, allow_zero: bool) -> bool:
    return (isinstance(value, list) and (n is None or len(value) == n)
            and all(isinstance(v, int) and not isinstance(v, bool) and (v >= 0 if allow_zero else v > 0) for v in value))


def _check_zarr_array(node: Path, meta: dict, path: Path, key: str) -> dict[str, Any]:
    """Check one array's metadata and chunk files; return its plan (shape, dtype, chunks)."""
    shape = meta.get("shape")
    if not _positive_ints(shape, None, allow_zero=True) or not 0 <= len(shape) <= 3:
        raise _zarr_error(path, key, f"has an invalid shape {json.dumps(shape)[:100]}")
    dtype = _zarr_dtype(meta, path, key)
    grid = meta.get("chunk_grid") or {}
    chunks = (grid.get("configuration") or {}).get("chunk_shape")
    if grid.get("name") != "regular" or not _positive_ints(chunks, len(shape), allow_zero=False):
        raise _zarr_error(path, key, "needs a regular chunk grid with one positive chunk length per dimension")
    enc = meta.get("chunk_key_encoding") or {}
    if enc.get("name") != "default" or (enc.get("configuration") or {}).get("separator", "/") != "/":
        raise _zarr_error(path, key, "uses a chunk key encoding other than the default '/'")
    if meta.get("storage_transformers"):
        raise _zarr_error(path, key, "uses storage transformers; refused")
    if meta.get("dimension_names") not in (None,) and not isinstance(meta.get("dimension_names"), list):
        raise _zarr_error(path, key, "has invalid dimension names")
    codecs = meta.get("codecs")
    if not isinstance(codecs, list) or not codecs:
        raise _zarr_error(path, key, "has no codec list")
    names = []
    for codec in codecs:
        name = codec.get("name") if isinstance(codec, dict) else None
        if name not in ZARR_CODECS:
            raise _zarr_error(path, key, f"uses the codec {json.dumps(name)[:80]}; only {list(ZARR_CODECS)} are "
                                         "read (no pickle / object codec, no sharding, no plugin)")
        names.append(name)
    if names.count("bytes") != 1:
        raise _zarr_error(path, key, "needs exactly one 'bytes' codec")
    compressed = any(n in ("zstd", "gzip", "blosc") for n in names)
    itemsize = dtype.itemsize
    chunk_bytes = math.prod(chunks) * itemsize
    if chunk_bytes > MAX_CHUNK_BYTES:
        raise _zarr_error(path, key, f"has chunks of {_fmt_bytes(chunk_bytes)}, above {_fmt_bytes(MAX_CHUNK_BYTES)}; "
                                     "re-chunk it (python -m crossmodal_core convert)")
    grid_counts = [math.ceil(s / c) for s, c in zip(shape, chunks)]
    stored = 0
    checksum = 4 if "crc32c" in names else 0
    for idx in np.ndindex(*grid_counts) if all(grid_counts) else ():  # a 0-d array: one file "c"
        file = node.joinpath("c", *[str(i) for i in idx])
        try:
            size = file.lstat().st_size
        except OSError:
            raise _zarr_error(path, key, f"lacks the chunk file {file.relative_to(path)} (a missing chunk would read "
                                         "as fill values); refused") from None
        if not compressed and size != chunk_bytes + checksum:
            raise _zarr_error(path, key, f"chunk {file.relative_to(path)} holds {size} bytes, expected "
                                         f"{chunk_bytes + checksum}")
        stored += size
    claimed = math.prod(shape) * itemsize
    if compressed and claimed > (1 << 20) and claimed > stored * MAX_COMPRESSION_RATIO:
        raise _zarr_error(path, key, f"claims {_fmt_bytes(claimed)} from {_fmt_bytes(stored)} of compressed chunks, a "
                                     f"ratio above {MAX_COMPRESSION_RATIO}:1; refused before allocation")
    return {"shape": tuple(shape), "dtype": dtype, "chunks": tuple(chunks), "nbytes": claimed}


def _walk_zarr(path: Path) -> tuple[dict, dict[str, dict[str, Any]]]:
    """Check the whole tree (no links, only files and folders, valid metadata); return the root
    group's attributes and ``key -> plan`` of every array."""
    if path.is_symlink() or not path.is_dir():
        raise DatasetError(f"{path}: not a Zarr directory")
    count = 0
    arrays: dict[str, dict[str, Any]] = {}
    root_attrs: dict = {}
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        here = Path(dirpath)
        for name in dirnames + filenames:
            entry = here / name
            count += 1
            if count > _MAX_NODES * 100:
                raise DatasetError(f"{path}: more than {_MAX_NODES * 100} files; refused")
            mode = entry.lstat().st_mode
            import stat as _stat

            if _stat.S_ISLNK(mode):
                raise DatasetError(f"{path}: {entry.relative_to(path)} is a symbolic link; links are refused")
            if not (_stat.S_ISDIR(mode) or _stat.S_ISREG(mode)):
                raise DatasetError(f"{path}: {entry.relative_to(path)} is not a regular file; refused")
        key = here.relative_to(path).as_posix()
        key = "" if key == "." else key
        inside = next((a for a in arrays if key.startswith(a + "/")), None)
        if inside is not None:  # a chunk folder of an array: walked for links, holds no node
            if "zarr.json" in filenames:
                raise _zarr_error(path, inside, "holds another Zarr node inside its chunk folders; refused")
            continue
        if "zarr.json" not in filenames:
            continue
        meta = _read_json(here / "zarr.json", path, key)
        if meta.get("zarr_format") != 3:
            raise _zarr_error(path, key, f"is not Zarr format 3 (zarr_format {json.dumps(meta.get('zarr_format'))[:40]})")
        kind = meta.get("node_type")
        if kind == "group":
            if key == "":
                root_attrs = meta.get("attributes") or {}
                if not isinstance(root_attrs, dict):
                    raise DatasetError(f"{path}: the root attributes are not a JSON object")
        elif kind == "array":
            if not key:
                raise DatasetError(f"{path}: the root is an array, not a dataset group")
            if len(arrays) >= _MAX_NODES:
                raise DatasetError(f"{path}: more than {_MAX_NODES} arrays; refused")
            arrays[key] = _check_zarr_array(here, meta, path, key)
        else:
            raise _zarr_error(path, key, f"has the unknown node type {json.dumps(kind)[:40]}")
    return root_attrs, arrays


def open_zarr_arrays(path: str | Path, lazy_keys: Any = None) -> tuple[dict[str, Any], dict]:
    """The arrays of a checked Zarr directory: small ones read, ``lazy_keys(key, plan)`` ones as
    :class:`LazyArray`; plus the root group's attributes. Every failure is a ``DatasetError``."""
    import zarr

    path = Path(path)
    attrs, plans = _walk_zarr(path)
    lazy_keys = lazy_keys or (lambda key, plan: False)
    budget = max_load_bytes()
    used = 0
    out: dict[str, Any] = {}
    for key, plan in plans.items():
        node = path / key
        if lazy_keys(key, plan):
            st = (node / "zarr.json").stat()
            src = _ZarrSource(path, key, plan["shape"], plan["dtype"], plan["chunks"][0] if plan["shape"] else 1,
                              (int(st.st_size), int(st.st_mtime_ns)))
            out[key] = LazyArray(src)
            continue
        need = plan["nbytes"]
        if used + need > budget:
            raise DatasetError(f"{path}: {key!r} claims {_fmt_bytes(need)}, which exceeds the memory budget of "
                               f"{_fmt_bytes(budget)} per file; nothing was allocated")
        used += need
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                arr = np.asarray(zarr.open_array(str(node), mode="r")[...])
        except Exception as exc:
            raise DatasetError(f"{path}: array {key!r} is unreadable ({type(exc).__name__}: {exc})") from None
        if arr.shape != plan["shape"] or arr.dtype != plan["dtype"]:
            raise DatasetError(f"{path}: array {key!r} decoded to {arr.shape} {arr.dtype}, not what it declares")
        out[key] = arr
    return out, attrs


# ---------------------------------------------------------------------- Zarr: writing
def write_zarr_arrays(tmp: Path, arrays: dict[str, Any], attrs: dict[str, Any], chunk_bytes: int = 16 << 20,
                      compression: str | None = "zstd", progress: bool = False) -> None:
    """Write ``arrays`` (NumPy or lazy) into the new Zarr group ``tmp``, big ones row block by block.

    Row chunks hold about ``chunk_bytes`` each; the ``view/...`` arrays share one chunk row
    count (that of the widest view), so a row block of a dataset is whole chunks of every
    view. Lazy inputs are read in blocks of whole chunks, so memory stays at a few blocks
    whatever the row count.
    """
    view_rows = [block_rows_for(a.shape, np.dtype(a.dtype).itemsize, 1, chunk_bytes)
                 for k, a in arrays.items() if k.startswith("view/") and len(a.shape) >= 1]
    shared_rows = min(view_rows) if view_rows else None
    import zarr
    from zarr.codecs import ZstdCodec

    group = zarr.open_group(str(tmp), mode="w", zarr_format=3)
    group.attrs.update(attrs)
    compressors = [ZstdCodec(level=1)] if compression == "zstd" else None
    total = sum(int(getattr(a, "nbytes", 0)) for a in arrays.values())
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="B", unit_scale=True, desc="writing zarr", disable=not progress, leave=False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fixed-width UTF-32 text has no Zarr v3 spec yet (zarr warns)
            for key, arr in arrays.items():
                shape = tuple(int(s) for s in arr.shape)
                dtype = np.dtype(arr.dtype)
                rows = block_rows_for(shape, dtype.itemsize, 1, chunk_bytes) if shape else 1
                if shared_rows and key.startswith("view/"):
                    rows = shared_rows
                chunks = (min(rows, max(shape[0], 1)),) + shape[1:] if shape else ()
                z = group.create_array(key, shape=shape, chunks=chunks or None, dtype=dtype,
                                       compressors=compressors if dtype.kind != "U" else "auto",
                                       fill_value=None if dtype.kind != "U" else "")
                if not shape:
                    z[...] = np.asarray(arr)
                    continue
                step = chunks[0] * max(1, BLOCK_BYTES // max(chunks[0] * (dtype.itemsize * math.prod(shape[1:]) or 1), 1))
                for start, block in iter_row_blocks(arr, step):
                    z[start:start + len(block)] = block
                    bar.update(block.nbytes)
    finally:
        bar.close()


# ---------------------------------------------------------------------- HDF5
def open_hdf5_arrays(path: str | Path, lazy_keys: Any) -> tuple[dict[str, Any], dict]:
    """The arrays of an HDF5 file, those ``lazy_keys(key, h5py_dataset)`` picks as
    :class:`LazyArray` (checked in the isolated reader, read later block by block), plus the
    root attributes. Every failure is a ``DatasetError``."""
    from crossmodal_core.data.readers import read_hdf5_lazy

    path = Path(path)
    arrays, attrs, specs = read_hdf5_lazy(path, lazy_keys)
    st = path.stat()
    stamp = (int(st.st_size), int(st.st_mtime_ns))
    out: dict[str, Any] = dict(arrays)
    for key, (dtype_str, shape, chunk_rows) in specs.items():
        out[key] = LazyArray(_HDF5Source(path, key, shape, np.dtype(str(dtype_str)), int(chunk_rows), stamp))
    return out, attrs


def is_zarr_path(path: str | Path) -> bool:
    """A ``.zarr`` directory (or a path to write one)."""
    return Path(path).suffix.lower() in ZARR_SUFFIXES


# ---------------------------------------------------------------------- derived views
class RowConcat:
    """Rows of several arrays (NumPy or lazy) one after the other, read block by block; what
    the converter writes for a view whose splits are separate arrays in the source file."""

    def __init__(self, parts: Sequence[Any], dtype: Any):
        self.parts = list(parts)
        self.dtype = np.dtype(dtype)
        self._starts = np.cumsum([0] + [p.shape[0] for p in self.parts])
        self.shape = (int(self._starts[-1]),) + tuple(self.parts[0].shape[1:])

    ndim = property(lambda self: len(self.shape))
    nbytes = property(lambda self: math.prod(self.shape) * self.dtype.itemsize)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: slice) -> np.ndarray:
        if not isinstance(index, slice):
            raise IndexError("RowConcat reads row slices only")
        start, stop, _ = index.indices(len(self))
        out = []
        for part, lo, hi in zip(self.parts, self._starts[:-1], self._starts[1:]):
            a, b = max(start, lo), min(stop, hi)
            if a < b:
                out.append(np.asarray(part[a - lo:b - lo]).astype(self.dtype, copy=False))
        return np.concatenate(out) if out else np.empty((0,) + self.shape[1:], self.dtype)

    def iter_blocks(self, block_rows: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        step = int(block_rows or block_rows_for(self.shape, self.dtype.itemsize))
        for start in range(0, len(self), step):
            yield start, self[start:start + step]


class RowMean(RowConcat):
    """The time average ``(n, d)`` of a sequence view ``(n, T, d)`` (float64 mean, stored dtype)."""

    def __init__(self, seq: Any):
        self.seq = seq
        self.dtype = np.dtype(seq.dtype)
        self.shape = (int(seq.shape[0]), int(seq.shape[2]))

    def __getitem__(self, index: slice) -> np.ndarray:
        block = np.asarray(self.seq[index])
        return block.mean(axis=1, dtype=np.float64).astype(self.dtype)
