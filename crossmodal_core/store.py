"""Where artifacts live, and how they are written without ever leaving half a file.

Two roots:

- :func:`assets_dir` -- ``<repo>/assets``: small committed artifacts (the prebuilt default
  dataset, the results tables, screenshots).
- :func:`cache_dir` -- ``$CROSSMODAL_HOME`` or ``<repo>/.crossmodal``: everything we can
  rebuild (trained models, projections, synthesised audio). Git ignores it.

Every write goes to a temporary file in the destination folder, is flushed and fsynced,
then renamed over the target (``os.replace`` is atomic on POSIX), so a crash or a bad
input never leaves a truncated artifact or destroys the previous good one.

Temporary files and folders are named ``.<target>.cmtmp-<pid>-<random><suffix>``: hidden
(listings skip them, :func:`is_temporary` says so) and tagged with the writer's process id, so
:func:`clean_stale_temporaries` can remove what a killed writer left without touching a write
still in progress in another process.

Cache keys are short SHA-256 digests of a canonical JSON of (dataset, model, parameters),
so the same request always maps to the same file.

Names read from files, uploads or URLs never become paths as they are: every path built from
such a name goes through :func:`slug` (or :func:`child_path`, which also proves the result
stays under its root).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import unicodedata
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
    """The committed reference results (``assets/results``): written only when asked by ``--out``."""
    return assets_dir() / "results"


def user_results_dir() -> Path:
    """Results of the user's own ``evaluate`` runs (in the cache, never over committed files)."""
    return cache_dir() / "results"


def models_dir() -> Path:
    return cache_dir() / "models"


def projections_dir() -> Path:
    return cache_dir() / "projections"


def audio_cache_dir() -> Path:
    return cache_dir() / "audio"


def uploads_dir() -> Path:
    return cache_dir() / "uploads"


def scores_dir() -> Path:
    """Where the user puts folders of their own scores for the app to build datasets from
    (``<cache>/scores/<folder>/``)."""
    return cache_dir() / "scores"


def user_music_dir() -> Path:
    """Music datasets built from the user's own scores (``<cache>/music_datasets/<name>/``),
    listed by the catalog as ``scores:<name>``."""
    return cache_dir() / "music_datasets"


# ---------------------------------------------------------------------- untrusted names
_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
SLUG_MAX_LENGTH = 80


def slug(name: Any, max_length: int = SLUG_MAX_LENGTH) -> str:
    """A file-name-safe form of an untrusted ``name`` (one path component, never a path).

    Keeps ASCII letters, digits, ``.``, ``_`` and ``-`` (accents are folded: ``"Lindenbäume"``
    -> ``"Lindenbaume"``); every other run of characters (``/``, ``\\``, NUL, spaces, ...)
    becomes ``-``; leading dots and dashes are dropped so the result is never ``.``, ``..`` or
    hidden. When anything had to change, or the name is longer than ``max_length``, a short
    digest of the original is appended so that distinct names keep distinct slugs.

    >>> slug("music21_lyrics")
    'music21_lyrics'
    >>> slug("../../etc/passwd")[:11]
    'etc-passwd-'
    >>> "/" in slug("/abs/path") or slug("..").startswith(".")
    False
    """
    text = str(name)
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    cleaned = _SLUG_UNSAFE.sub("-", folded).strip("-")
    cleaned = re.sub(r"-{2,}", "-", cleaned).lstrip(".-")
    cleaned = cleaned[: max(8, max_length - 9)].rstrip(".-")
    if cleaned and cleaned == text and len(text) <= max_length:
        return cleaned
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{cleaned}-{digest}" if cleaned else f"unnamed-{digest}"


def child_path(root: str | os.PathLike, *names: Any, suffix: str = "") -> Path:
    """``root / slug(name1) / ... / slug(nameN) + suffix``, checked to stay inside ``root``.

    ``suffix`` is ours (``".json"``), never the user's. Raises ``ValueError`` if the result
    would escape ``root`` (it cannot, by construction; the check guards future edits).
    """
    if not names:
        raise ValueError("child_path needs at least one name")
    root = Path(root)
    parts = [slug(n) for n in names]
    path = root.joinpath(*parts[:-1], parts[-1] + suffix)
    resolved_root = root.resolve()
    if resolved_root not in path.resolve().parents:
        raise ValueError(f"refusing a path outside {root}: {path}")
    return path


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
    fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(target), suffix=suffix or ".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        # mkstemp makes owner-only files; give the artifact the mode a plain open() would.
        os.chmod(tmp_path, 0o666 & ~current_umask())
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


_TEMP_TAG = ".cmtmp-"
# the LAST tag names the writer: a target's own name may contain the tag (names are untrusted)
_TEMP_PID = re.compile(r".*\.cmtmp-(\d+)-", re.DOTALL)


def temporary_prefix(target: str | os.PathLike) -> str:
    """Name prefix of a temporary file or folder written for ``target`` by this process."""
    return f".{Path(target).name}{_TEMP_TAG}{os.getpid()}-"


def is_temporary(path: str | os.PathLike) -> bool:
    """True for a temporary file or folder of an unfinished (or killed) atomic write."""
    return _TEMP_TAG in Path(path).name and Path(path).name.startswith(".")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def clean_stale_temporaries(*roots: str | os.PathLike) -> list[Path]:
    """Remove temporaries under ``roots`` (recursively) whose writer process is gone.

    Called when the app and the CLI start, so a killed write leaves nothing behind for long.
    Returns what was removed. Temporaries of live processes (a write in progress) are kept.
    """
    removed: list[Path] = []
    for root in roots or (cache_dir(), assets_dir()):
        root = Path(root)
        if not root.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            for name in list(dirnames) + filenames:
                match = _TEMP_PID.match(name)
                if not (name.startswith(".") and match) or _pid_alive(int(match.group(1))):
                    continue
                path = Path(dirpath) / name
                with contextlib.suppress(OSError):
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path)
                        dirnames.remove(name)
                    else:
                        path.unlink()
                    removed.append(path)
    return removed


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------- whole folders
def replaced_path(target: str | os.PathLike) -> Path:
    """Where the previous ``target`` folder waits during a two-rename swap. Not a temporary
    on purpose: :func:`clean_stale_temporaries` must never delete the only copy."""
    target = Path(target)
    return target.with_name(f".{target.name}.replaced")


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange_paths(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Swap the paths ``a`` and ``b`` in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``).

    Returns False where the system or the file system cannot; callers then fall back to
    :func:`swap_in_dir`'s two renames.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    return renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


def swap_in_dir(new: str | os.PathLike, out: str | os.PathLike,
                exchange: Callable[[Path, Path], bool] | None = None) -> None:
    """Make the complete folder ``new`` become ``out`` and remove the previous ``out``.

    One atomic exchange where the system has it; otherwise two renames, with the previous
    folder kept at :func:`replaced_path` (which :func:`recover_interrupted_swap` puts back if
    the process dies between them), so a kill never leaves neither. A concurrent writer of
    the same ``out``: the last one wins.
    """
    new, out = Path(new), Path(out)
    exchange = exchange or exchange_paths  # looked up at call time
    if not out.exists():
        try:
            os.rename(new, out)
            return
        except OSError:
            if not out.exists():
                raise  # not a writer that landed first: a real failure
    if exchange(new, out):
        shutil.rmtree(new, ignore_errors=True)  # now the previous folder: a stale temporary if killed here
        return
    backup = replaced_path(out)
    shutil.rmtree(backup, ignore_errors=True)
    os.rename(out, backup)
    try:
        os.rename(new, out)
    except BaseException:
        os.rename(backup, out)
        raise
    shutil.rmtree(backup, ignore_errors=True)


def recover_interrupted_swap(out: str | os.PathLike) -> bool:
    """Undo what a killed :func:`swap_in_dir` left beside ``out``: put back the previous folder
    a two-rename swap had moved aside, and remove temporaries of ``out`` whose writer is
    dead. Returns True when a previous folder was put back."""
    out = Path(out)
    backup = replaced_path(out)
    restored = False
    if backup.is_dir():
        if out.exists():
            shutil.rmtree(backup, ignore_errors=True)  # the swap had finished
        else:
            os.rename(backup, out)
            restored = True
    if out.parent.is_dir():
        prefix = f".{out.name}{_TEMP_TAG}"
        for entry in out.parent.iterdir():
            match = _TEMP_PID.match(entry.name)
            if entry.name.startswith(prefix) and match and not _pid_alive(int(match.group(1))):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
    return restored


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
