"""A folder of the user's own scores as a source of works for the music build.

``build-music --scores DIR`` reads the works from ``DIR`` instead of the music21 corpus; the
rest of the pipeline (cutting, synthesis, features, folds) is the corpus build's
(:mod:`.build`). One file is one work. Supported files, by suffix (case-insensitive):
MusicXML (``.xml``, ``.musicxml``), compressed MusicXML (``.mxl``), MIDI (``.mid``, ``.midi``;
lyrics from lyric meta events in the note's own track) and Humdrum (``.krn``; lyrics from
``**text`` spines, which music21 attaches through ``*staff`` tokens).

Every file is hostile. What a file can do, and what stops it:

- **XML entities** (billion laughs, quadratic blow-up, external entities reading local files):
  music21 parses MusicXML with the standard library's ``ElementTree`` (expat). Expat 2.4+
  refuses the worst amplification, but lets a file expand up to 8 MiB freely and then 100x
  its size, and ``ElementTree`` reports an external entity only as undefined. MusicXML never
  needs an entity declaration, so :func:`check_xml` runs expat first with handlers that
  refuse any entity declaration (what ``defusedxml`` does; it is not a dependency here) and
  never loads external DTDs; only then does music21 see the bytes.
- **Zip bombs** (``.mxl``): the archive's member count and the declared uncompressed size are
  checked before reading, and the member is inflated in chunks, stopping at
  :data:`MAX_XML_BYTES` whatever the header claims.
- **Huge files**: a size limit per kind (:data:`MAX_FILE_BYTES`) before reading; a MIDI whose
  tracks last more than :data:`MAX_SCORE_QUARTERS` quarter notes, or any score with more than
  :data:`MAX_NOTES` notes, is refused before it is cut; a phrase longer than
  :data:`MAX_FRAGMENT_S` seconds is dropped and a work with more than :data:`MAX_WORK_AUDIO_S`
  seconds of phrases refused, so synthesis never allocates what a file claims.
- **Slow or crashing parses**: where the system has ``fork`` (Linux, macOS), each file is read
  and cut in a child process with a wall-clock limit (:data:`PARSE_TIMEOUT_S`), a CPU limit
  and an address-space limit (:data:`PARSE_MEMORY_BYTES` above what the parent already
  maps); the child sends back JSON (never a pickle). A child that is too slow is killed and
  the file skipped. Elsewhere the file is read in-process, without the time limit.
- **Names**: a file name is never turned into a path: files are found by listing the folder
  (symbolic links are not followed, hidden files are ignored, FIFOs and devices are refused),
  the name shown in reports is made printable (:func:`printable`), and the work id derived
  from it is slugged (:attr:`ScoreRef.work_id`).

Nothing here raises for a bad file: :func:`find_user_scores` and :func:`extract_fragments`
return the reason, which the build lists in its per-file report.
"""

from __future__ import annotations

import io
import json
import logging
import os
import select
import signal
import stat
import time
import zipfile
from pathlib import Path
from typing import Any

from crossmodal_core.data.dataset import DatasetError
from crossmodal_core.data.music.corpus import ScoreRef
from crossmodal_core.notes import Fragment

log = logging.getLogger(__name__)

_MIB = 1 << 20
#: suffix -> kind of file
SUFFIXES: dict[str, str] = {".xml": "musicxml", ".musicxml": "musicxml", ".mxl": "mxl", ".mid": "midi",
                            ".midi": "midi", ".krn": "humdrum"}
KIND_NAMES = {"musicxml": "MusicXML", "mxl": "compressed MusicXML", "midi": "MIDI", "humdrum": "Humdrum"}
#: largest file read, per kind (a whole opera in MusicXML is about 20 MB)
MAX_FILE_BYTES: dict[str, int] = {"musicxml": 32 * _MIB, "mxl": 8 * _MIB, "midi": 2 * _MIB, "humdrum": 8 * _MIB}
#: largest MusicXML inflated from an ``.mxl``
MAX_XML_BYTES = 32 * _MIB
MAX_MXL_MEMBERS = 256
#: most score files used from one folder, and how deep sub-folders are searched
MAX_FILES = 2000
MAX_DEPTH = 4
#: most folder entries looked at (files of any kind), so a huge folder gives a short report
MAX_ENTRIES = 20_000
#: most notes in one score, and longest MIDI (quarter notes: about 4 hours at 80 bpm)
MAX_NOTES = 200_000
MAX_SCORE_QUARTERS = 20_000
#: longest phrase synthesised, and most phrase audio per work (seconds)
MAX_FRAGMENT_S = 120.0
MAX_WORK_AUDIO_S = 2 * 3600.0
#: per file: wall-clock limit of reading and cutting it, and memory it may add (child process)
PARSE_TIMEOUT_S = 120.0
PARSE_MEMORY_BYTES = 3 << 30
#: most bytes of JSON a child may send back
_MAX_RESULT_BYTES = 512 * _MIB
#: reasons that depend on the machine's load, not on the file (the build does not cache them)
_TIMEOUT_REASON = "took longer than"
_STOPPED_REASON = "the reader stopped"


def _memory_reason() -> str:
    return f"needs more than {_fmt(PARSE_MEMORY_BYTES)} of memory to read (limit)"


class ScoreFileError(ValueError):
    """A user's score file that cannot be used; the message says why (without the path)."""


def _fmt(n: float) -> str:
    return f"{n / _MIB:.1f} MiB" if n >= _MIB else f"{int(n):,} bytes"


def printable(name: str) -> str:
    """``name`` safe to print and to store in JSON: undecodable bytes of a file name become
    U+FFFD and control characters (a newline in a name) become ``?``."""
    text = str(name).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return "".join("?" if (ord(c) < 32 or 0x7F <= ord(c) < 0xA0) else c for c in text)


def kind_of(name: str) -> str | None:
    """The kind of score file a name's suffix says (``None``: not a score file)."""
    return SUFFIXES.get(Path(name).suffix.lower())


# ---------------------------------------------------------------------- finding the files
def find_user_scores(folder: str | os.PathLike, collection: str | None = None,
                     max_files: int = MAX_FILES) -> tuple[list[ScoreRef], dict[str, str]]:
    """The score files of ``folder`` (and its sub-folders, :data:`MAX_DEPTH` deep), one work each.

    Parameters
    ----------
    folder : the user's folder of scores
    collection : the ``collection`` label of files directly in ``folder`` (default: the
        folder's name); a file in a sub-folder takes the sub-folder's name

    Returns
    -------
    (refs, skipped) : refs sorted by relative path; ``skipped`` maps the relative path of each
    file (or folder, ending in ``/``) that is not used to the reason. Hidden files are ignored.

    Raises
    ------
    DatasetError : ``folder`` is not a folder
    """
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"{printable(str(root))}: not a folder")
    root = root.resolve()
    collection = printable(collection if collection is not None else root.name) or "scores"
    refs: list[ScoreRef] = []
    skipped: dict[str, str] = {}
    owner: dict[str, str] = {}
    seen = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        rel_dir = here.relative_to(root)
        keep = []
        for d in sorted(dirnames):
            rel = printable((rel_dir / d).as_posix()) + "/"
            if d.startswith("."):
                continue
            if (here / d).is_symlink():
                skipped[rel] = "a symbolic link (not followed)"
            elif len(rel_dir.parts) + 1 > MAX_DEPTH:
                skipped[rel] = f"a folder nested deeper than {MAX_DEPTH} levels (not searched)"
            else:
                keep.append(d)
        dirnames[:] = keep  # os.walk descends only into these, in this order
        for name in sorted(filenames):
            if name.startswith("."):  # .DS_Store, editors' backups, our own temporaries
                continue
            seen += 1
            if seen > MAX_ENTRIES:
                skipped["..."] = f"more than {MAX_ENTRIES:,} entries in the folder: the rest was not looked at"
                refs.sort(key=lambda r: r.corpus_path)
                return refs, skipped
            rel = printable((rel_dir / name).as_posix())
            reason = _file_problem(here / name, name)
            if reason is None and len(refs) >= max_files:
                reason = f"more than {max_files} score files in the folder; this one is not used"
            if reason is not None:
                skipped[rel] = reason
                continue
            group = printable(rel_dir.parts[0]) if rel_dir.parts else collection
            ref = ScoreRef(rel, group, 0, file=str(here / name))
            if ref.work_id in owner:
                skipped[rel] = f"same work name as {owner[ref.work_id]} (one file per work)"
                continue
            owner[ref.work_id] = rel
            refs.append(ref)
    refs.sort(key=lambda r: r.corpus_path)
    return refs, skipped


def _file_problem(path: Path, name: str) -> str | None:
    kind = kind_of(name)
    if kind is None:
        return f"not a score file (supported: {', '.join(sorted(SUFFIXES))})"
    try:
        st = os.lstat(path)
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if stat.S_ISLNK(st.st_mode):
        return "a symbolic link (not followed)"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_size == 0:
        return "empty file"
    if st.st_size > MAX_FILE_BYTES[kind]:
        return f"too large ({_fmt(st.st_size)}; the limit for {KIND_NAMES[kind]} is {_fmt(MAX_FILE_BYTES[kind])})"
    return None


# ---------------------------------------------------------------------- reading one file
def read_score_file(ref: ScoreRef) -> bytes:
    """The bytes of a user's score file, at most its kind's size limit.

    Opens without following a symbolic link and without blocking on a FIFO swapped in since
    the folder was listed. Raises :class:`ScoreFileError`.
    """
    kind = kind_of(ref.corpus_path)
    if kind is None:
        raise ScoreFileError("not a score file")
    limit = MAX_FILE_BYTES[kind]
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(ref.path, flags)
    except OSError as exc:
        raise ScoreFileError(f"cannot be opened ({exc.strerror})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ScoreFileError("not a regular file")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(_MIB, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise ScoreFileError(f"too large (over {_fmt(limit)}, the limit for {KIND_NAMES[kind]})")
    except OSError as exc:
        raise ScoreFileError(f"cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if not data:
        raise ScoreFileError("empty file")
    return data


def check_xml(data: bytes) -> None:
    """Refuse XML that declares entities or is not well-formed; raises :class:`ScoreFileError`.

    Runs expat (which decodes the declared encoding, UTF-16 included) with external DTDs and
    parameter entities never loaded and a handler that stops at the first entity declaration,
    before anything expands.
    """
    from xml.parsers import expat

    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)

    def refuse(name: str, *_: Any) -> None:
        raise ScoreFileError(f"declares the XML entity {printable(name)[:40]!r}; MusicXML needs none and entities "
                             "can expand to gigabytes or read other files, so files declaring one are refused")

    def refuse_external(*_: Any) -> int:
        raise ScoreFileError("refers to an external XML entity (refused)")

    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse_external
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise ScoreFileError(f"not well-formed XML ({exc})") from None


def mxl_musicxml(data: bytes) -> bytes:
    """The MusicXML inside a compressed ``.mxl`` (the first ``.xml``/``.musicxml`` member
    outside ``META-INF``), inflated to at most :data:`MAX_XML_BYTES`."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ScoreFileError(f"not a readable .mxl archive ({exc})") from None
    if len(infos) > MAX_MXL_MEMBERS:
        raise ScoreFileError(f".mxl archive with {len(infos)} members (limit {MAX_MXL_MEMBERS})")
    members = [i for i in infos if not i.filename.startswith("META-INF")
               and i.filename.lower().endswith((".xml", ".musicxml")) and not i.is_dir()]
    if not members:
        raise ScoreFileError(".mxl archive holds no MusicXML file")
    info = members[0]
    if info.file_size > MAX_XML_BYTES:
        raise ScoreFileError(f".mxl member declares {_fmt(info.file_size)} uncompressed (limit {_fmt(MAX_XML_BYTES)})")
    out, total = [], 0
    try:
        with zf.open(info) as fh:
            while True:
                chunk = fh.read(_MIB)
                if not chunk:
                    break
                total += len(chunk)
                if total > MAX_XML_BYTES:  # the header lied: stop inflating
                    raise ScoreFileError(f".mxl member inflates past {_fmt(MAX_XML_BYTES)} (a zip bomb?)")
                out.append(chunk)
    except ScoreFileError:
        raise
    except Exception as exc:  # zlib.error, BadZipFile (CRC), NotImplementedError (method), RuntimeError (encrypted)
        raise ScoreFileError(f"cannot inflate the .mxl archive ({type(exc).__name__}: {exc})") from None
    return b"".join(out)


def _midi_file(data: bytes):
    """music21's low-level MIDI file, checked for length before any stream is made."""
    from music21 import midi

    if not data.startswith(b"MThd"):
        raise ScoreFileError("not a MIDI file (no MThd header)")
    mf = midi.MidiFile()
    try:
        mf.readstr(data)
    except Exception as exc:
        raise ScoreFileError(f"not a readable MIDI file ({type(exc).__name__}: {exc})") from None
    tpq = getattr(mf, "ticksPerQuarterNote", 0) or 0
    if tpq <= 0:
        raise ScoreFileError("MIDI with SMPTE (frame-based) timing is not supported")
    n_events = 0
    for track in mf.tracks:
        ticks = sum(getattr(e, "time", 0) or 0 for e in track.events if isinstance(e, midi.DeltaTime))
        n_events += len(track.events)
        if ticks / tpq > MAX_SCORE_QUARTERS:
            raise ScoreFileError(f"MIDI track lasting {ticks / tpq:,.0f} quarter notes (limit {MAX_SCORE_QUARTERS:,})")
    if n_events > 4 * MAX_NOTES:
        raise ScoreFileError(f"MIDI with {n_events:,} events (limit {4 * MAX_NOTES:,})")
    return mf


def parse_user_score(ref: ScoreRef):
    """Parse a user's score file with music21 after the checks above; returns a ``Score``.

    Raises :class:`ScoreFileError` naming the problem.
    """
    from music21 import converter, stream

    kind = kind_of(ref.corpus_path)
    data = read_score_file(ref)
    try:
        if kind in ("musicxml", "mxl"):
            xml = mxl_musicxml(data) if kind == "mxl" else data
            check_xml(xml)
            score = converter.parseData(xml, format="musicxml")
        elif kind == "midi":
            from music21.midi import translate

            score = translate.midiFileToStream(_midi_file(data))
        else:
            text = data.decode("utf-8") if _is_utf8(data) else data.decode("latin-1")
            score = converter.parseData(text, format="humdrum")
    except ScoreFileError:
        raise
    except Exception as exc:  # music21 raises many exception types for bad files
        raise ScoreFileError(f"music21 cannot read it as {KIND_NAMES[kind]} ({type(exc).__name__}: "
                             f"{printable(str(exc))[:200]})") from None
    if isinstance(score, stream.Opus):
        raise ScoreFileError(f"holds {len(score.scores)} works (an opus); put each work in its own file")
    if isinstance(score, stream.Part):
        whole = stream.Score()
        whole.insert(0, score)
        score = whole
    if not isinstance(score, stream.Score):
        raise ScoreFileError(f"music21 read a {type(score).__name__}, not a score")
    n_notes = sum(1 for _ in score.recurse().notes)
    if n_notes == 0:
        raise ScoreFileError("no notes")
    if n_notes > MAX_NOTES:
        raise ScoreFileError(f"{n_notes:,} notes (limit {MAX_NOTES:,})")
    return score


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def extract_user_fragments(ref: ScoreRef) -> tuple[list[Fragment], str | None, list[str]]:
    """Parse and cut one user's score in this process; never raises for a bad file.

    Returns
    -------
    (fragments, reason, dropped) : ``reason`` is ``None`` when the work is used, else why it
    is skipped (``fragments`` is then empty); ``dropped`` lists phrases left out (too long).
    """
    from crossmodal_core.data.music import phrases as phrases_mod

    try:
        score = parse_user_score(ref)
        fragments = phrases_mod.fragments_from_score(score, ref)
    except ScoreFileError as exc:
        return [], str(exc), []
    except RecursionError:
        return [], "nested too deeply to read", []
    except MemoryError:
        return [], _memory_reason(), []
    except Exception as exc:  # a malformed score must not stop the build
        return [], f"cannot be cut into phrases ({type(exc).__name__}: {printable(str(exc))[:200]})", []
    if not fragments:
        has_text = bool(phrases_mod.lyric_part_indices(score))
        return [], ("no texted phrase found" if has_text else "no lyrics under the notes"), []
    kept, dropped, total = [], [], 0.0
    for fr in fragments:
        if fr.duration_s > MAX_FRAGMENT_S:
            dropped.append(f"{fr.fragment_id}: a phrase of {fr.duration_s:,.0f} s (limit {MAX_FRAGMENT_S:.0f} s)")
            continue
        total += fr.duration_s
        if total > MAX_WORK_AUDIO_S:
            return [], f"more than {MAX_WORK_AUDIO_S / 3600:g} h of sung phrases (limit)", []
        kept.append(fr)
    if not kept:
        return [], "every phrase is too long to synthesise", dropped
    return kept, None, dropped


# ---------------------------------------------------------------------- isolation
def extract_fragments(ref: ScoreRef,
                      timeout_s: float = PARSE_TIMEOUT_S) -> tuple[list[Fragment], str | None, list[str]]:
    """:func:`extract_user_fragments` in a child process with time and memory limits
    (in-process where there is no ``fork``). Never raises for a bad file."""
    if not hasattr(os, "fork"):
        return extract_user_fragments(ref)
    # imported once here, not in every child
    import music21.converter  # noqa: F401
    import music21.midi.translate  # noqa: F401

    from crossmodal_core.data.music import phrases  # noqa: F401

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: read, cut, send JSON, exit without running the parent's cleanup
        try:
            os.close(r)
            _limit_child(timeout_s)
            try:
                frs, reason, dropped = extract_user_fragments(ref)
                payload = {"fragments": [f.to_dict() for f in frs], "reason": reason, "dropped": dropped}
            except MemoryError:
                payload = {"fragments": [], "dropped": [], "reason": _memory_reason()}
            blob = json.dumps(payload).encode("ascii")
            view = memoryview(blob)
            while view:
                view = view[os.write(w, view):]
        finally:
            os._exit(0)
    os.close(w)
    try:
        blob, timed_out = _read_child(r, pid, timeout_s)
    finally:
        os.close(r)
    if timed_out:
        return [], f"{_TIMEOUT_REASON} {timeout_s:g} s to read and cut (time limit)", []
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) or not blob:
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        name = signal.Signals(sig).name if sig else "no result"
        return [], f"{_STOPPED_REASON} ({name}): out of memory, out of time or crashed", []
    try:
        payload = json.loads(blob)
        fragments = [Fragment.from_dict(d) for d in payload["fragments"]]
        return fragments, payload["reason"], list(payload["dropped"])
    except (ValueError, KeyError, TypeError) as exc:
        return [], f"the reader sent an unreadable result ({exc})", []


def is_transient(reason: str | None) -> bool:
    """Whether a skip reason came from the time limit or a killed reader, which a less busy
    machine may not hit again (such results are not cached)."""
    return bool(reason) and reason.startswith((_TIMEOUT_REASON, _STOPPED_REASON))


def _read_child(fd: int, pid: int, timeout_s: float) -> tuple[bytes, bool]:
    """Everything the child writes before it closes the pipe, or ``(b"", True)`` after killing
    it when ``timeout_s`` passes first (or it sends more than the result limit)."""
    deadline = time.monotonic() + timeout_s
    poller = select.poll()  # poll, not select: descriptors above 1023 are fine
    poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    chunks, total = [], 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or total > _MAX_RESULT_BYTES:
            _kill(pid)
            return b"", True
        if not poller.poll(max(1, int(left * 1000))):
            continue
        chunk = os.read(fd, _MIB)
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)
        total += len(chunk)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)


def _limit_child(timeout_s: float) -> None:
    """CPU seconds and address space of the reading child (best effort; Linux and macOS)."""
    try:
        import resource
    except ImportError:
        return
    try:
        cpu = int(timeout_s) + 5
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    except (ValueError, OSError):
        pass
    try:
        with open("/proc/self/statm") as fh:
            mapped = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return
    try:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = mapped + PARSE_MEMORY_BYTES
        if hard == resource.RLIM_INFINITY or limit < hard:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError):
        pass


def content_digest(ref: ScoreRef) -> str | None:
    """SHA-256 of a user's score file (the build's cache key), ``None`` when it cannot be read."""
    import hashlib

    try:
        return hashlib.sha256(read_score_file(ref)).hexdigest()
    except ScoreFileError:
        return None
