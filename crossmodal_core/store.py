"""Where artifacts live, and how they are written without ever leaving half a file.

Two roots:

- :func:`assets_dir` -- ``<repo>/assets``: small committed artifacts (the prebuilt default
  dataset, the results tables, screenshots).
- :func:`cache_dir` -- ``$CROSSMODAL_HOME`` or ``<repo>/.crossmodal``: everything we can
  rebuild (trained models, projections, synthesised audio). Git ignores it.

Every write goes to a temporary file in the destination folder, is flushed and fsynced,
then renamed over the target (``os.replace`` is atomic on POSIX), so a crash or a bad
input never leaves a truncated artifact or destroys the previous good one.

Cache keys are short SHA-256 digests of a canonical JSON of (dataset, model, parameters),
so the same request always maps to the same file.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent


def assets_dir() -> Path:
    return Path(os.environ.get("CROSSMODAL_ASSETS", REPO_ROOT / "assets"))


def cache_dir() -> Path:
    path = Path(os.environ.get("CROSSMODAL_HOME", REPO_ROOT / ".crossmodal"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def datasets_dir() -> Path:
    return assets_dir() / "datasets"


def results_dir() -> Path:
    return assets_dir() / "results"


def models_dir() -> Path:
    return cache_dir() / "models"


def projections_dir() -> Path:
    return cache_dir() / "projections"


def audio_cache_dir() -> Path:
    return cache_dir() / "audio"


# ---------------------------------------------------------------------- keys
def _canonical(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def cache_key(*parts: Any, length: int = 16) -> str:
    """Deterministic short hex digest of JSON-able parts (dicts are key-sorted)."""
    blob = json.dumps(_canonical(list(parts)), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


# ---------------------------------------------------------------------- atomic writes
@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it over ``target``.

    On any exception the temporary file is removed and ``target`` is untouched.
    ``suffix`` keeps an extension some writers insist on (``np.savez`` adds ``.npz``).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or ".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        # mkstemp makes owner-only files; give the artifact the mode a plain open() would.
        os.chmod(tmp_path, 0o666 & ~_current_umask())
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def atomic_write_text(target: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_json(target: str | os.PathLike, obj: Any, indent: int = 2) -> Path:
    text = json.dumps(_canonical(obj), indent=indent, sort_keys=False, default=_json_default)
    return atomic_write_text(target, text + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def atomic_save_npz(target: str | os.PathLike, compressed: bool = True, **arrays: np.ndarray) -> Path:
    """``np.savez[_compressed]`` through a temp file. Deterministic bytes for equal input
    (zip entries carry a fixed timestamp)."""
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return atomic_write_bytes(target, _normalise_zip_timestamps(buf.getvalue()))


def _normalise_zip_timestamps(data: bytes) -> bytes:
    """Rewrite a zip with every entry dated 1980-01-01 so equal arrays give equal bytes."""
    import zipfile

    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = info.compress_type
            fixed.external_attr = info.external_attr
            dst.writestr(fixed, src.read(info.filename))
    return out.getvalue()


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None


def cached_npz(path: str | os.PathLike, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Load ``path`` if it exists, else ``compute()`` the arrays and store them atomically."""
    path = Path(path)
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    arrays = compute()
    atomic_save_npz(path, **arrays)
    return arrays
