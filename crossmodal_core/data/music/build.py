"""Build the music21-lyrics dataset: scores -> fragments -> audio -> features -> files.

``python -m crossmodal_core build-music --out assets/datasets/music21_lyrics [--jobs 2]
[--collections bach trecento] [--limit N]`` (or ``python -m crossmodal_core.data.music.build``).

``build-music --scores DIR --out OUT`` builds the same kind of dataset from a folder of the
user's own scores (one work per file): only step 1, the source of works, differs (and the
folds, for a folder with fewer works than folds); see :mod:`.userscores` for the formats and
the limits that keep a hostile file harmless. Files that cannot be used are skipped, never
fatal, and listed with the reason in ``build_report.json``; the build fails only when nothing
usable remains. ``OUT`` is required and never under ``assets/``.

Steps
-----
1. :func:`~crossmodal_core.data.music.corpus.find_lyric_scores` lists the texted scores
   (sorted by corpus path); with ``--scores``, :func:`~.userscores.find_user_scores` lists the
   folder's score files, which are then read and cut in a child process with time and
   memory limits (:func:`~.userscores.extract_fragments`).
2. Each score (a *work*) is processed in a worker process (``--jobs``): parse, cut into
   fragments (:mod:`.phrases`), synthesise each fragment (:func:`crossmodal_core.synth.synthesize`,
   not kept), compute audio and sheet features, engrave and rasterise the score image and the
   log-mel excerpt (:func:`fragment_score_views`; a fragment that cannot be engraved is dropped
   with the reason). The result is cached as one shard per work
   under ``<cache_dir>/music_build/`` (``.crossmodal/``, never inside the committed assets)
   keyed by the score file's bytes and the source code of every step, so an interrupted
   build resumes where it stopped, a subset rebuild reuses the full build's shards, and an
   edit to the code rebuilds.
3. Fragments whose audio is silent are dropped (logged); bad scores are skipped with a
   logged reason (kept in ``build_info.json``), never a crash.
4. Lyric features: a :class:`~crossmodal_core.features.lyrics.LyricsFeaturizer` is fitted on
   every lyric text of the build (or a given, stored one is reused), stored in
   ``lyrics_featurizer.npz`` and round-tripped through that file before use, so anyone can
   recompute the committed lyric view from it.
5. Folds: 5 folds by *work group*: works sharing an identical fragment (same melody and
   text, e.g. one chorale harmonised in two cantatas, or two editions of a Credo) form one
   group, and no group is split across folds. (Linking on a shared text alone would chain
   every Gloria and Credo of the trecento into one group holding 40 % of the data.)

Outputs (deterministic bytes for the same input), swapped in as one folder
----------------------------------------------------------------------------
Every file is written into a sibling temporary folder (named with
:func:`crossmodal_core.store.temporary_prefix`, so :func:`~crossmodal_core.store.clean_stale_temporaries`
removes it if the builder is killed), ``build_info.json`` last as the completeness marker;
files of the previous folder that the build does not produce (e.g. ``CARD.md``) are copied in;
then the folder replaces the previous one in a single atomic exchange (Linux ``renameat2``;
elsewhere two renames, with the previous folder kept as ``.<name>.replaced`` until the new one
is in place and restored by the next build if the builder died in between). A kill at any
moment leaves either the previous dataset or the new one, never a mix of the two.

``dataset.npz``             the :class:`CrossModalDataset` (see :mod:`crossmodal_core.data.io`);
                            views stored as float16 (compressed; :func:`load_music_dataset`
                            returns float32): ``audio`` (n, 192), ``audio_seq`` (n, 10, 64),
                            ``sheet`` (n, 340), ``sheet_seq`` (n, 10, 32), ``lyrics`` (n, 70);
                            segment ``k`` of ``sheet_seq`` covers the time of segment ``k``
                            of ``audio_seq`` (:func:`~crossmodal_core.features.audio.segment_times`);
                            and as uint8, for 2-D CNNs: ``score_image`` (n, 1, 64, 256), the
                            engraving with a time axis (:mod:`crossmodal_core.features.score_image`;
                            metadata ``score_image_t0`` / ``score_image_cols_per_s``), and
                            ``audio_mel`` (n, 1, 64, 128) (:func:`~crossmodal_core.features.audio.audio_mel`).
                            :func:`load_music_dataset` adds ``score_image_seq`` (n, 10, 256),
                            cut from ``score_image`` on ``audio_seq``'s segments
``fragments.json``          the :class:`Fragment` of every row, same order (notes, lyrics,
                            source references) for rendering and on-demand audio
``lyrics_featurizer.npz``   the fitted lyric featurizer state
``build_report.json``       (``--scores`` only) every file of the folder, used or skipped with
                            the reason, and the number of folds
``build_info.json``         counts, skipped scores with reasons, versions (no timestamps)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import multiprocessing
import os
import re
import secrets
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from crossmodal_core import store
from crossmodal_core.data.dataset import CrossModalDataset, DatasetError
from crossmodal_core.data.music import corpus as corpus_mod
from crossmodal_core.data.music import phrases as phrases_mod
from crossmodal_core.data.music import userscores as userscores_mod
from crossmodal_core.data.music.corpus import ScoreRef, find_lyric_scores
from crossmodal_core.notes import Fragment

log = logging.getLogger(__name__)

DATASET_NAME = "music21_lyrics"
DATASET_FILE = "dataset.npz"
FRAGMENTS_FILE = "fragments.json"
FEATURIZER_FILE = "lyrics_featurizer.npz"
INFO_FILE = "build_info.json"
#: the per-file report of a build from the user's own scores (``--scores``)
REPORT_FILE = "build_report.json"
#: every file a build writes; ``INFO_FILE`` is written last and marks a complete build
OUTPUT_FILES = (DATASET_FILE, FRAGMENTS_FILE, FEATURIZER_FILE, REPORT_FILE, INFO_FILE)
SAMPLE_RATE = 22050
N_SEGMENTS = 10
N_FOLDS = 5
#: RMS below this (full scale = 1) counts as silence
SILENCE_RMS = 1e-3
#: views are stored in this dtype (float16 halves the committed file; features are
#: descriptors, not signals, so 3 significant digits are plenty)
STORAGE_DTYPE = np.float16
#: the label sets, in order; "work" is the default relevance (same work = relevant)
LABEL_SETS = ("work", "collection", "language", "mode")

_WORKER_READY = False


def default_out_dir() -> Path:
    return store.datasets_dir() / DATASET_NAME


# ---------------------------------------------------------------------- code version
def _code_fingerprint() -> str:
    """Digest of the source of every step that shapes a shard (an edit invalidates caches)."""
    import crossmodal_core.features.audio as audio_mod
    import crossmodal_core.features.resample as resample_mod
    import crossmodal_core.features.score_image as score_image_mod
    import crossmodal_core.features.sheet as sheet_mod
    import crossmodal_core.notes as notes_mod
    import crossmodal_core.render as render_mod
    import crossmodal_core.synth as synth_mod

    h = hashlib.sha256()
    for mod in (corpus_mod, phrases_mod, notes_mod, synth_mod, audio_mod, sheet_mod, userscores_mod, render_mod,
                score_image_mod, resample_mod):
        h.update(Path(mod.__file__).read_bytes())
    h.update(f"sr={SAMPLE_RATE};seg={N_SEGMENTS}".encode())
    return h.hexdigest()[:16]


def _shard_path(cache: Path, ref: ScoreRef, fingerprint: str) -> Path | None:
    """The cache shard of a work, keyed by its file's bytes (``None``: a user's file that
    cannot be read, which is then not cached; the extraction says why)."""
    digest = userscores_mod.content_digest(ref) if ref.file else hashlib.sha256(ref.path.read_bytes()).hexdigest()
    if digest is None:
        return None
    key = store.cache_key(ref.corpus_path, ref.collection, digest, fingerprint)
    safe = re.sub(r"[^\w.-]+", "_", ref.work_id)[:80]
    return cache / f"{safe}-{key}.npz"


# ---------------------------------------------------------------------- per work
def _engraving_errors() -> tuple[type[Exception], ...]:
    """What engraving a fragment raises when verovio / music21 cannot draw its notes:
    ``ValueError`` (``RenderError``, ``ScoreImageError``), ``RuntimeError`` (a C++ exception
    through verovio's binding) and music21's ``Music21Exception``. One fragment is dropped for
    these; anything else (a programming error) still surfaces, as the work's failure."""
    from music21.exceptions21 import Music21Exception

    return (ValueError, RuntimeError, Music21Exception)


def _fragment_features(fragments: list[Fragment]) -> tuple[dict[str, np.ndarray], list[str]]:
    """Synthesise and featurise; returns arrays for the kept fragments and drop reasons."""
    from crossmodal_core.features.audio import audio_features_and_sequence
    from crossmodal_core.features.sheet import sheet_features
    from crossmodal_core.synth import synthesize

    keep, audio, seq, sheet, sheet_seq, rms, dropped = [], [], [], [], [], [], []
    images, mels, t0, cols_per_s = [], [], [], []
    engraving_errors = _engraving_errors()
    for i, fr in enumerate(fragments):
        try:
            y = synthesize(fr, sample_rate=SAMPLE_RATE)
        except (ValueError, RuntimeError) as exc:
            dropped.append(f"{fr.fragment_id}: cannot synthesise ({exc})")
            continue
        level = float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if y.size else 0.0
        if level < SILENCE_RMS:
            dropped.append(f"{fr.fragment_id}: silent audio (rms {level:.2g})")
            continue
        try:
            views = fragment_score_views(fr, y)
        except engraving_errors as exc:  # notes without a notation: this fragment only
            dropped.append(f"{fr.fragment_id}: cannot engrave ({type(exc).__name__}: {exc})")
            continue
        a, s = audio_features_and_sequence(y, SAMPLE_RATE, n_segments=N_SEGMENTS)
        keep.append(i)
        images.append(views["score_image"])
        mels.append(views["audio_mel"])
        t0.append(views["score_t0"])
        cols_per_s.append(views["score_cols_per_s"])
        audio.append(a)
        seq.append(s)
        sheet.append(sheet_features(fr.notes))
        sheet_seq.append(fragment_sheet_sequence(fr, len(y)))
        rms.append(level)
    arrays = {
        "keep": np.asarray(keep, dtype=np.int64),
        "audio": np.asarray(audio, dtype=np.float32).reshape(len(keep), -1),
        "audio_seq": np.asarray(seq, dtype=np.float32).reshape(len(keep), N_SEGMENTS, -1),
        "sheet": np.asarray(sheet, dtype=np.float32).reshape(len(keep), -1),
        "sheet_seq": np.asarray(sheet_seq, dtype=np.float32).reshape(len(keep), N_SEGMENTS, -1),
        "rms": np.asarray(rms, dtype=np.float32),
        **_score_arrays(images, mels, t0, cols_per_s),
    }
    return arrays, dropped


def _score_arrays(images: Sequence[np.ndarray], mels: Sequence[np.ndarray], t0: Sequence[float],
                  cols_per_s: Sequence[float]) -> dict[str, np.ndarray]:
    """Stack per-fragment :func:`fragment_score_views` results (any count, 0 included)."""
    from crossmodal_core.features.audio import MEL_FRAMES, N_MELS
    from crossmodal_core.features.score_image import IMAGE_HEIGHT, IMAGE_WIDTH

    n = len(images)
    return {
        "score_image": np.asarray(images, dtype=np.uint8).reshape(n, 1, IMAGE_HEIGHT, IMAGE_WIDTH),
        "audio_mel": np.asarray(mels, dtype=np.uint8).reshape(n, 1, N_MELS, MEL_FRAMES),
        "score_t0": np.asarray(t0, dtype=np.float64).reshape(n),
        "score_cols_per_s": np.asarray(cols_per_s, dtype=np.float64).reshape(n),
    }


def fragment_score_views(fragment: Fragment, y: np.ndarray) -> dict[str, Any]:
    """The CNN inputs of one fragment whose synthesised audio is ``y``.

    Returns
    -------
    dict with ``score_image`` (1, 64, 256) uint8 ink and its time axis ``score_t0`` (column of
    time 0) and ``score_cols_per_s`` (:func:`crossmodal_core.features.score_image.score_image`),
    and ``audio_mel`` (1, 64, 128) uint8 (:func:`crossmodal_core.features.audio.audio_mel`).

    Raises ``ValueError`` (``RenderError`` / ``ScoreImageError``) when the notes cannot be engraved.
    """
    from crossmodal_core.features.audio import audio_mel
    from crossmodal_core.features.score_image import score_image

    image, t0, cols_per_s = score_image(fragment)
    return {"score_image": image[None], "score_t0": float(t0), "score_cols_per_s": float(cols_per_s),
            "audio_mel": audio_mel(y, SAMPLE_RATE)[None]}


def fragment_sheet_sequence(fragment: Fragment, n_samples: int) -> np.ndarray:
    """``sheet_seq`` of one fragment whose audio has ``n_samples`` samples: symbolic features
    over the same ``N_SEGMENTS`` time stretches as its ``audio_seq`` (seconds to quarter
    lengths at the fragment's tempo). Shape ``(N_SEGMENTS, 32)``, float32."""
    from crossmodal_core.features.audio import segment_times
    from crossmodal_core.features.sheet import sheet_sequence

    edges_ql = segment_times(int(n_samples), SAMPLE_RATE, N_SEGMENTS) * float(fragment.tempo_bpm) / 60.0
    return sheet_sequence(fragment.notes, edges_ql)


#: per-work arrays of a shard (one row per kept fragment)
_SHARD_ARRAYS = ("audio", "audio_seq", "sheet", "sheet_seq", "rms", "score_image", "audio_mel", "score_t0",
                 "score_cols_per_s")
#: views kept in their stored integer dtype (images and quantised spectrograms, rank 4)
IMAGE_VIEWS = ("score_image", "audio_mel")


def process_work(ref: ScoreRef, cache: Path | None = None, fingerprint: str = "") -> dict[str, Any]:
    """Fragments and audio/sheet features of one score (cached per work when ``cache``).

    Returns
    -------
    dict with ``ref``, ``fragments`` (kept, in order), ``arrays`` (``audio`` (n, 192),
    ``audio_seq`` (n, 10, 64), ``sheet`` (n, 340), ``sheet_seq`` (n, 10, 32), ``rms`` (n,)), ``skipped`` (reason or
    None) and ``dropped`` (per-fragment reasons).
    """
    shard = _shard_path(cache, ref, fingerprint) if cache is not None else None
    if shard is not None and shard.exists():
        try:
            with np.load(shard, allow_pickle=False) as z:
                payload = json.loads(str(z["payload"]))
                arrays = {k: z[k] for k in _SHARD_ARRAYS}
            return {"ref": ref, "fragments": [Fragment.from_dict(d) for d in payload["fragments"]],
                    "arrays": arrays, "skipped": payload["skipped"], "dropped": payload["dropped"]}
        except Exception as exc:  # a damaged shard is recomputed, never trusted
            log.warning("recomputing damaged cache shard %s (%s)", shard, exc)
    if ref.file:  # a user's file: read in a child process with time and memory limits
        fragments, skipped, dropped = userscores_mod.extract_fragments(ref)
    else:
        fragments, skipped = phrases_mod.extract_fragments(ref)
        dropped = []
    if fragments:
        try:
            arrays, more = _fragment_features(fragments)
            dropped = dropped + more
            fragments = [fragments[i] for i in arrays.pop("keep")]
        except Exception as exc:  # a feature failure on one work must not stop the corpus
            skipped = f"{ref.corpus_path}: feature extraction failed ({type(exc).__name__}: {exc})"
            log.warning("skipping %s", skipped)
            fragments = []
    if not fragments:
        arrays = {"audio": np.zeros((0, 0), np.float32), "audio_seq": np.zeros((0, N_SEGMENTS, 0), np.float32),
                  "sheet": np.zeros((0, 0), np.float32), "sheet_seq": np.zeros((0, N_SEGMENTS, 0), np.float32),
                  "rms": np.zeros(0, np.float32), **_score_arrays([], [], [], [])}
        skipped = skipped or f"{ref.corpus_path}: no fragment with audible audio"
    for reason in dropped:
        log.info("dropping fragment %s", reason)
    if shard is not None and not userscores_mod.is_transient(skipped):  # a time-out is retried next build
        payload = {"fragments": [f.to_dict() for f in fragments], "skipped": skipped, "dropped": dropped}
        store.atomic_save_npz(shard, payload=np.array(json.dumps(payload, ensure_ascii=False)), **arrays)
    return {"ref": ref, "fragments": fragments, "arrays": arrays, "skipped": skipped, "dropped": dropped}


_THREAD_LIMIT: Any = None


def _single_threaded_blas() -> Any:
    """Pin BLAS/OpenMP pools to one thread: sums then run in one fixed order, so features
    and the SVD fit are bit-identical whatever the machine's core count (and 2 workers on 2
    cores do not oversubscribe)."""
    # threadpoolctl only limits libraries already loaded: load every BLAS the build uses first
    import scipy.linalg  # noqa: F401
    import sklearn.decomposition  # noqa: F401
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def _worker_init() -> None:
    global _THREAD_LIMIT
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _THREAD_LIMIT = _single_threaded_blas()


def _process_star(args: tuple) -> dict[str, Any]:
    return process_work(*args)


# ---------------------------------------------------------------------- selection
def select_scores(collections: Iterable[str] | None = None, limit: int | None = None,
                  works: Sequence[str] | None = None) -> list[ScoreRef]:
    """The scores a build uses, in a fixed order.

    ``works`` picks work ids or corpus paths exactly (unknown names raise). ``limit`` keeps
    ``limit`` works taken round-robin across the collections (so a small build still has
    every collection), returned in corpus-path order.
    """
    refs = find_lyric_scores(collections)
    if works is not None:
        wanted = list(works)
        by_name = {r.work_id: r for r in refs} | {r.corpus_path: r for r in refs}
        missing = [w for w in wanted if w not in by_name]
        if missing:
            raise ValueError(f"unknown or untexted work(s): {missing}")
        refs = sorted({by_name[w] for w in wanted}, key=lambda r: r.corpus_path)
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        per: dict[str, list[ScoreRef]] = {}
        for r in refs:
            per.setdefault(r.collection, []).append(r)
        chosen: list[ScoreRef] = []
        depth = 0
        while len(chosen) < limit and any(depth < len(v) for v in per.values()):
            for name in sorted(per):
                if depth < len(per[name]) and len(chosen) < limit:
                    chosen.append(per[name][depth])
            depth += 1
        refs = sorted(chosen, key=lambda r: r.corpus_path)
    return refs


# ---------------------------------------------------------------------- folds
def work_groups(fragments: Sequence[Fragment]) -> list[str]:
    """Group id per fragment: works linked by a shared (melody, text) fragment end up in one
    group (union-find over works).

    The group id is the smallest work id in the group, so it is stable and readable.
    """
    parent: dict[str, str] = {}

    def find(w: str) -> str:
        while parent.setdefault(w, w) != w:
            parent[w] = parent[parent[w]]
            w = parent[w]
        return w

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            lo, hi = sorted((ra, rb))
            parent[hi] = lo

    first_owner: dict[Any, str] = {}
    for fr in fragments:
        find(fr.work_id)
        owner = first_owner.setdefault(phrases_mod._fragment_key(fr), fr.work_id)
        if owner != fr.work_id:
            union(owner, fr.work_id)
    return [find(fr.work_id) for fr in fragments]


# ---------------------------------------------------------------------- assembly
def _labels(values: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    names = sorted(set(values))
    index = {n: i for i, n in enumerate(names)}
    return np.array([index[v] for v in values], dtype=np.int64), names


def _load_featurizer(path: str | Path):
    from crossmodal_core.features.lyrics import LyricsFeaturizer

    return LyricsFeaturizer.load(path)


def _fit_lyrics(texts: list[str]):
    from crossmodal_core.features.lyrics import LyricsFeaturizer

    fitted = LyricsFeaturizer(n_components=64, max_features=10000, random_state=0).fit(texts)
    arrays = fitted.to_arrays()
    # stored in float32 (half the bytes); round-tripping here makes the committed features
    # exactly what the stored featurizer computes
    arrays["components"] = arrays["components"].astype(np.float32)
    arrays["idf"] = arrays["idf"].astype(np.float32)
    return LyricsFeaturizer.from_arrays(arrays)


def assemble(results: Sequence[dict[str, Any]], lyrics_featurizer=None, n_folds: int = N_FOLDS,
             seed: int = 0) -> tuple[CrossModalDataset, list[Fragment], Any]:
    """Stack per-work results into a dataset (float32 views) and its fragment list."""
    fragments: list[Fragment] = [f for r in results for f in r["fragments"]]
    if not fragments:
        raise DatasetError("music build produced no fragment (every score was skipped)")
    stacked = {k: np.concatenate([r["arrays"][k] for r in results if r["fragments"]])
               for k in _SHARD_ARRAYS}
    texts = [f.lyrics for f in fragments]
    featurizer = lyrics_featurizer if lyrics_featurizer is not None else _fit_lyrics(texts)
    lyrics = featurizer.transform(texts, [f.notes for f in fragments])

    groups = work_groups(fragments)
    n_works = len({f.work_id for f in fragments})
    folds = None
    if len(set(groups)) >= n_folds:
        from crossmodal_core.data.splits import group_folds

        folds = group_folds(np.array(groups), n_splits=n_folds, seed=seed)
    labels, class_names = {}, {}
    for name in LABEL_SETS:
        values = [f.work_id if name == "work" else getattr(f, name) for f in fragments]
        labels[name], class_names[name] = _labels(values)
    meta = {
        "fragment_id": [f.fragment_id for f in fragments],
        "title": [f.title for f in fragments],
        "composer": [f.composer for f in fragments],
        "lyrics": texts,
        "collection": [f.collection for f in fragments],
        "language": [f.language for f in fragments],
        "corpus_path": [f.corpus_path for f in fragments],
        "work_id": [f.work_id for f in fragments],
        "work_group": groups,
        "part_index": np.array([f.part_index for f in fragments], dtype=np.int64),
        "part_name": [str(f.extra.get("part_name", "")) for f in fragments],
        "verse": np.array([f.verse for f in fragments], dtype=np.int64),
        "measure_start": np.array([f.measure_start for f in fragments], dtype=np.int64),
        "measure_end": np.array([f.measure_end for f in fragments], dtype=np.int64),
        "key": [f.key for f in fragments],
        "meter": [f.meter for f in fragments],
        "tempo_bpm": np.array([f.tempo_bpm for f in fragments], dtype=np.float64),
        "duration_s": np.array([round(f.duration_s, 4) for f in fragments], dtype=np.float64),
        "n_notes": np.array([len(f.notes) for f in fragments], dtype=np.int64),
        "n_syllables": np.array([int(f.extra.get("n_syllables", 0)) for f in fragments], dtype=np.int64),
        "audio_rms": stacked["rms"].astype(np.float64).round(6),
        # the time axis of score_image (score_image_seq is cut from it at load time)
        "score_image_t0": stacked["score_t0"],
        "score_image_cols_per_s": stacked["score_cols_per_s"],
    }
    meta = {k: (np.asarray(v) if isinstance(v, np.ndarray) else np.array(v, dtype=str)) for k, v in meta.items()}
    info = {
        "source": "music21 corpus (scores and lyrics); audio synthesised from the notes",
        "synthetic": False,
        "synthetic_audio": True,
        "default_label": "work",
        "fold_groups": "work_group",
        "n_works": n_works,
        "n_work_groups": len(set(groups)),
        "sample_rate": SAMPLE_RATE,
        "feature_dims": {"audio": int(stacked["audio"].shape[1]), "audio_seq": list(stacked["audio_seq"].shape[1:]),
                         "sheet": int(stacked["sheet"].shape[1]), "sheet_seq": list(stacked["sheet_seq"].shape[1:]),
                         "lyrics": int(lyrics.shape[1]), "score_image": list(stacked["score_image"].shape[1:]),
                         "audio_mel": list(stacked["audio_mel"].shape[1:])},
    }
    ds = CrossModalDataset(
        views={"audio": stacked["audio"], "sheet": stacked["sheet"], "lyrics": lyrics.astype(np.float32),
               "audio_seq": stacked["audio_seq"], "sheet_seq": stacked["sheet_seq"],
               "score_image": stacked["score_image"], "audio_mel": stacked["audio_mel"]},
        labels=labels, class_names=class_names,
        item_ids=np.array([f.fragment_id for f in fragments]),
        metadata=meta, folds=folds, name=DATASET_NAME, info=info,
    )
    return ds, fragments, featurizer


def _as_storage(ds: CrossModalDataset) -> CrossModalDataset:
    out = ds.subset(np.arange(ds.n_items))
    # float features as float16; the uint8 images / spectrograms as they are
    out.views = {k: v if v.dtype == np.uint8 else v.astype(STORAGE_DTYPE) for k, v in ds.views.items()}
    return out.validate()


def _summary(ds: CrossModalDataset, fragments: Sequence[Fragment], skipped: dict[str, str],
             dropped: list[str], n_scores: int) -> dict[str, Any]:
    dur = np.array([f.duration_s for f in fragments])
    by = lambda attr: dict(sorted(Counter(getattr(f, attr) for f in fragments).items()))  # noqa: E731
    hours = {}
    for f in fragments:
        hours[f.collection] = hours.get(f.collection, 0.0) + f.duration_s / 3600
    return {
        "n_fragments": len(fragments),
        "n_scores_considered": n_scores,
        "n_works": int(ds.info["n_works"]),
        "n_work_groups": int(ds.info["n_work_groups"]),
        "by_collection": by("collection"),
        "by_language": by("language"),
        "by_mode": by("mode"),
        "by_collection_language": dict(sorted(Counter(f"{f.collection}/{f.language}" for f in fragments).items())),
        "hours_by_collection": {k: round(v, 3) for k, v in sorted(hours.items())},
        "duration_s": {"total_hours": round(float(dur.sum()) / 3600, 3),
                       "median": round(float(np.median(dur)), 3), "p5": round(float(np.percentile(dur, 5)), 3),
                       "p95": round(float(np.percentile(dur, 95)), 3), "max": round(float(dur.max()), 3)},
        "median_notes": float(np.median([len(f.notes) for f in fragments])),
        "median_syllables": float(np.median([f.extra.get("n_syllables", 0) for f in fragments])),
        "boundaries": dict(sorted(Counter(f.extra.get("boundary", "") for f in fragments).items())),
        "tempo_source": dict(sorted(Counter(f.extra.get("tempo_source", "") for f in fragments).items())),
        "fold_sizes": None if ds.folds is None else np.bincount(ds.folds).tolist(),
        "skipped_scores": dict(sorted(skipped.items())),
        "dropped_fragments": sorted(dropped),
        "score_views": score_views_summary(ds),
    }


def score_views_summary(ds: CrossModalDataset) -> dict[str, Any]:
    """``build_info.json``'s account of the image views: sizes, the rasteriser, and how many
    fragments had to be squeezed to fit (fewer than 12 columns per quarter note in
    ``score_image``, frames longer than 0.1 s in ``audio_mel``)."""
    from importlib.metadata import PackageNotFoundError, version

    from crossmodal_core.features.audio import MEL_FPS, MEL_FRAMES
    from crossmodal_core.features.score_image import PX_PER_QUARTER
    from crossmodal_core.synth import RELEASE_S

    if "score_image" not in ds.views:
        return {}
    try:
        rasteriser = f"resvg-py {version('resvg-py')}"
    except PackageNotFoundError:
        rasteriser = "resvg-py"
    px_per_ql = ds.metadata["score_image_cols_per_s"] * 60.0 / ds.metadata["tempo_bpm"]
    clip_s = ds.metadata["duration_s"] + RELEASE_S  # the synthesised clip ends with the release tail
    return {
        "rasteriser": rasteriser,
        "score_image": list(ds.views["score_image"].shape[1:]),
        "audio_mel": list(ds.views["audio_mel"].shape[1:]),
        "score_image_squeezed": int(np.sum(px_per_ql < PX_PER_QUARTER - 1e-9)),
        "audio_mel_squeezed": int(np.sum(clip_s * MEL_FPS > MEL_FRAMES)),
    }


# ---------------------------------------------------------------------- public API
def build_music_dataset(out_dir: str | Path | None = None, collections: Iterable[str] | None = None,
                        limit: int | None = None, jobs: int = 2, progress: bool = True, *,
                        works: Sequence[str] | None = None, lyrics_featurizer: str | Path | None = None,
                        n_folds: int = N_FOLDS, seed: int = 0, use_cache: bool = True,
                        scores: str | Path | None = None,
                        progress_callback: Callable[[float, str], None] | None = None) -> CrossModalDataset:
    """Extract, synthesise, featurise and write the music21-lyrics dataset, or a dataset built
    the same way from a folder of the user's own scores (``scores``).

    Parameters
    ----------
    out_dir : output folder (default ``assets/datasets/music21_lyrics``)
    collections : subset of ``"bach"``, ``"trecento"``, ``"songs"`` (default all)
    limit : use only this many works, round-robin across collections (small builds, CI)
    jobs : worker processes (1 = in this process)
    progress : tqdm progress bar on stderr
    works : exact work ids / corpus paths to use (instead of all)
    lyrics_featurizer : a stored ``lyrics_featurizer.npz`` to reuse instead of fitting one
        (a subset rebuild then reproduces the full build's lyric features)
    n_folds, seed : folds by work group (:func:`crossmodal_core.data.splits.group_folds`)
    use_cache : reuse / write the per-work shards under ``<cache_dir>/music_build``
    scores : a folder of the user's MusicXML / MXL / MIDI / Humdrum files, one work per file
        (:mod:`.userscores`), used instead of the corpus; then ``out_dir`` is required and may
        not lie under ``assets/``, ``collections`` / ``works`` do not apply, ``limit`` keeps the
        first files, files that cannot be used are listed with the reason in
        ``build_report.json`` beside the dataset, and a folder with fewer works than
        ``n_folds`` gets one fold per work (at least 2 works are needed)
    progress_callback : ``callback(fraction, message)`` after each work and step (the app's bar)

    Returns
    -------
    the dataset with float32 views (the file stores them as float16)

    Raises
    ------
    DatasetError : nothing usable (every score skipped), a bad output folder
    """
    with _single_threaded_blas():
        return _build(out_dir, collections, limit, jobs, progress, works, lyrics_featurizer, n_folds, seed, use_cache,
                      scores, progress_callback)


def _build(out_dir, collections, limit, jobs, progress, works, lyrics_featurizer, n_folds, seed,
           use_cache, scores=None, progress_callback=None) -> CrossModalDataset:
    from tqdm.auto import tqdm

    tell = progress_callback or (lambda fraction, message: None)
    if scores is not None and out_dir is None:
        raise DatasetError("a dataset built from your own scores needs an output folder (--out)")
    out = Path(os.path.abspath(out_dir if out_dir is not None else default_out_dir()))  # "." has no name
    if out.is_symlink():
        out = out.resolve()  # swap the folder the link points to, not the link
    if scores is not None:
        _check_user_out_dir(out, Path(scores))
    _recover_interrupted_swap(out)
    _check_out_dir(out)
    tell(0.0, "finding the scores")
    refs, not_used = _select_source(scores, collections, limit, works)
    fingerprint = _code_fingerprint()
    cache = store.cache_dir() / "music_build" if use_cache else None
    tasks = [(r, cache, fingerprint) for r in refs]
    results: list[dict[str, Any]] = []
    what = "music21 works" if scores is None else "score files"
    bar = tqdm(total=len(tasks), desc=what, unit="work", disable=not progress, file=sys.stderr)

    def done(res: dict[str, Any]) -> None:
        results.append(res)
        bar.update()
        tell(0.9 * len(results) / len(tasks), f"{len(results)}/{len(tasks)} {what}: {res['ref'].corpus_path}")

    if jobs <= 1:
        for t in tasks:
            done(_process_star(t))
    else:
        with multiprocessing.get_context("fork").Pool(int(jobs), initializer=_worker_init) as pool:
            for res in pool.imap(_process_star, tasks, chunksize=1):  # imap keeps the order
                done(res)
    bar.close()
    skipped = {r["ref"].corpus_path: r["skipped"] for r in results if r["skipped"]}
    dropped = [d for r in results for d in r["dropped"]]
    for path, why in skipped.items():  # a user's build prints them in its report
        (log.info if scores is not None else log.warning)("skipped %s: %s", path, why)

    featurizer = None
    if lyrics_featurizer is not None:
        featurizer = _load_featurizer(lyrics_featurizer)
    folds_note = None
    if scores is not None:
        n_folds, folds_note = _user_folds(results, {**not_used, **skipped}, scores, n_folds)
    tell(0.92, "lyric features and folds")
    ds, fragments, featurizer = assemble(results, featurizer, n_folds=n_folds, seed=seed)
    summary = _summary(ds, fragments, skipped, dropped, len(refs))
    summary["selection"] = {"collections": None if collections is None else sorted(collections),
                            "limit": limit, "works": None if works is None else sorted(works)}
    summary["code_fingerprint"] = fingerprint
    report = None
    if scores is not None:
        ds.name = f"scores-{store.slug(out.name, 40)}"  # as the catalog names it (scores:<folder>)
        ds.info = {**ds.info, "source": "your own scores (one work per file); audio synthesised from the notes",
                   "n_folds": n_folds}
        report = build_report(scores, results, not_used, n_folds, folds_note)
        summary["selection"] = {"scores": report["source"], "limit": limit}
        summary["skipped_scores"] = dict(sorted({**not_used, **skipped}.items()))
    tell(0.95, "writing the dataset")
    _write_outputs(out, _as_storage(ds), fragments, featurizer, summary, report)
    tell(1.0, f"built {ds.n_items} fragments")
    return ds


# ---------------------------------------------------------------------- source of works
def _select_source(scores, collections, limit, works) -> tuple[list[ScoreRef], dict[str, str]]:
    """The works of the build and the files not used with the reason: the corpus selection
    (:func:`select_scores`), or the files of a user's folder (:mod:`.userscores`)."""
    if scores is None:
        refs = select_scores(collections, limit, works)
        if not refs:
            raise DatasetError("no texted score matches the selection")
        return refs, {}
    if collections is not None or works is not None:
        raise DatasetError("collections and works choose corpus scores; they do not apply to a folder of your scores")
    refs, not_used = userscores_mod.find_user_scores(scores)
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        not_used.update({r.corpus_path: f"beyond the limit of {limit} files" for r in refs[limit:]})
        refs = refs[:limit]
    if not refs:
        raise DatasetError(_nothing_usable(scores, not_used))
    return refs, not_used


def _nothing_usable(scores, reasons: dict[str, str]) -> str:
    where = userscores_mod.printable(str(scores))
    if not reasons:
        return (f"{where} holds no score file: put MusicXML (.xml, .musicxml, .mxl), MIDI (.mid) or Humdrum "
                "(.krn) files with lyrics in it, one work per file")
    shown = "; ".join(f"{k}: {v[:100]}" for k, v in sorted(reasons.items())[:6])
    more = f" (and {len(reasons) - 6} more)" if len(reasons) > 6 else ""
    return f"no usable score in {where}; every file was skipped: {shown}{more}"


def _user_folds(results, reasons: dict[str, str], scores, n_folds: int) -> tuple[int, str | None]:
    """Folds for a user's folder: by work group as for the corpus, one per group when there
    are fewer groups than ``n_folds``. Raises when nothing, or a single work, is usable."""
    fragments = [f for r in results for f in r["fragments"]]
    if not fragments:
        raise DatasetError(_nothing_usable(scores, reasons))
    n_groups = len(set(work_groups(fragments)))
    if n_groups < 2:
        raise DatasetError(f"only one usable work in {userscores_mod.printable(str(scores))} "
                           f"({fragments[0].corpus_path}); folds by work need at least 2 works (files)")
    if n_groups >= n_folds:
        return n_folds, None
    note = f"{n_groups} works (work groups): {n_groups} folds instead of {n_folds}, one work per fold"
    log.info(note)
    return n_groups, note


def build_report(scores, results: Sequence[dict[str, Any]], not_used: dict[str, str], n_folds: int,
                 folds_note: str | None) -> dict[str, Any]:
    """The per-file report of a build from a user's folder (``build_report.json``): every
    file, used (with its fragment count and dropped phrases) or skipped (with the reason)."""
    files = [{"file": path, "status": "skipped", "reason": why} for path, why in not_used.items()]
    for r in results:
        ref = r["ref"]
        if r["fragments"]:
            files.append({"file": ref.corpus_path, "status": "used", "work_id": ref.work_id,
                          "n_fragments": len(r["fragments"]), "dropped_fragments": list(r["dropped"])})
        else:
            files.append({"file": ref.corpus_path, "status": "skipped", "reason": r["skipped"]})
    files.sort(key=lambda f: f["file"])
    used = [f for f in files if f["status"] == "used"]
    return {
        "source": userscores_mod.printable(str(Path(scores).resolve())),
        "n_files": len(files), "n_used": len(used), "n_skipped": len(files) - len(used),
        "n_fragments": sum(f["n_fragments"] for f in used), "n_folds": n_folds, "folds_note": folds_note,
        "files": files,
    }


def format_report(report: dict[str, Any], max_lines: int = 40) -> str:
    """A few lines for the terminal: counts, folds, and each skipped file with the reason."""
    lines = [f"{report['n_used']} of {report['n_files']} files used ({report['n_fragments']} fragments, "
             f"{report['n_folds']} folds by work){'; ' + report['folds_note'] if report.get('folds_note') else ''}"]
    skipped = [f for f in report["files"] if f["status"] == "skipped"]
    if skipped:
        lines.append(f"skipped {len(skipped)}:")
        lines += [f"  {f['file']}: {f['reason']}" for f in skipped[:max_lines]]
        if len(skipped) > max_lines:
            lines.append(f"  ... and {len(skipped) - max_lines} more (see {REPORT_FILE})")
    return "\n".join(lines)


def _check_user_out_dir(out: Path, scores: Path) -> None:
    """A dataset from the user's scores never goes under ``assets/`` (committed files) nor
    into, above or onto the folder of scores (the build replaces the whole ``out`` folder)."""
    resolved = out.resolve()
    assets = store.assets_dir().resolve()
    if resolved == assets or assets in resolved.parents:
        raise DatasetError(f"{out} is under {assets} (committed files): write a dataset built from your scores "
                           f"elsewhere, e.g. under {store.user_music_dir()} where the app lists it")
    src = scores.resolve()
    if resolved == src or src in resolved.parents or resolved in src.parents:
        raise DatasetError(f"{out}: the output folder must lie outside the folder of scores {src} (and not hold it)")


# ---------------------------------------------------------------------- writing the folder
def _write_outputs(out: Path, ds_file: CrossModalDataset, fragments: Sequence[Fragment], featurizer,
                   summary: dict[str, Any], report: dict[str, Any] | None = None) -> None:
    """Write every output into a fresh sibling temporary folder (the marker ``INFO_FILE``
    last), carry over the previous folder's other files, then swap the folder in."""
    from crossmodal_core.data.io import save_dataset

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _make_temporary_folder(out)
    try:
        save_dataset(ds_file, tmp / DATASET_FILE)
        fr_json = json.dumps([f.to_dict() for f in fragments], ensure_ascii=False, separators=(",", ":"))
        store.atomic_write_text(tmp / FRAGMENTS_FILE, fr_json + "\n")
        arrays = featurizer.to_arrays()
        arrays["components"] = arrays["components"].astype(np.float32)
        arrays["idf"] = arrays["idf"].astype(np.float32)
        store.atomic_save_npz(tmp / FEATURIZER_FILE, **arrays)
        if report is not None:
            store.atomic_write_json(tmp / REPORT_FILE, report)
        _carry_over(out, tmp)
        store.atomic_write_json(tmp / INFO_FILE, summary)
        _fsync_dir(tmp)
        _swap_in(tmp, out)
    except BaseException:
        # ``tmp`` is the unfinished build, or after the exchange the previous folder
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(out.parent)


def _make_temporary_folder(out: Path) -> Path:
    """An empty sibling folder ``.<name>.cmtmp-<pid>-<random>`` with the mode of ``out``."""
    while True:
        tmp = out.with_name(store.temporary_prefix(out) + secrets.token_hex(4))
        try:
            tmp.mkdir()  # the umask's mode, not mkdtemp's 0o700
        except FileExistsError:
            continue
        if out.is_dir():
            shutil.copymode(out, tmp)
        return tmp


def _check_out_dir(out: Path) -> None:
    """The build replaces the whole ``out`` folder: refuse one that is not a music dataset
    folder (``--out .`` must not swap the working directory away)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise DatasetError(f"{out} exists and is not a folder")
    names = sorted(p.name for p in out.iterdir() if not store.is_temporary(p))
    if names and not set(names) & set(OUTPUT_FILES):
        raise DatasetError(f"{out} holds no music dataset ({', '.join(names[:5])}"
                           f"{', ...' if len(names) > 5 else ''}); the build replaces the whole folder, "
                           "so give a new or empty folder, or one a previous build wrote")


def _carry_over(old: Path, new: Path) -> None:
    """Copy what ``old`` holds besides the build's own outputs (``CARD.md``, notes) into ``new``."""
    if not old.is_dir():
        return
    for entry in sorted(old.iterdir()):
        target = new / entry.name
        if entry.name in OUTPUT_FILES or store.is_temporary(entry) or target.exists():
            continue
        if entry.is_symlink():
            target.symlink_to(os.readlink(entry))
        elif entry.is_dir():
            shutil.copytree(entry, target, symlinks=True)
        else:
            shutil.copy2(entry, target)


# The folder swap lives in the store (the model store uses it too); these names are the
# build's seams, looked up at call time so tests can stop or fail a swap in a chosen place.
_backup_path = store.replaced_path
_exchange = store.exchange_paths


def _swap_in(new: Path, out: Path) -> None:
    """Make the complete folder ``new`` become ``out`` and remove the previous ``out``."""
    store.swap_in_dir(new, out, exchange=lambda a, b: _exchange(a, b))


def _recover_interrupted_swap(out: Path) -> None:
    """Undo what a killed build left beside ``out`` (see :func:`store.recover_interrupted_swap`)."""
    if store.recover_interrupted_swap(out):
        log.warning("restored %s, which an interrupted build had moved aside", out)


def _fsync_dir(path: Path) -> None:
    """Flush a folder's entries (renames) to disk where the system allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_music_dataset(path: str | Path | None = None, derived: bool = True) -> tuple[CrossModalDataset, list[Fragment]]:
    """Read a built dataset folder (or its ``dataset.npz``).

    ``derived``: add the views computed at load time from the stored ones
    (``score_image_seq``, see :func:`score_image_sequence`), when the folder has
    ``score_image``.

    Returns
    -------
    (dataset, fragments in row order): float views as float32; ``score_image`` (n, 1, 64, 256)
    and ``audio_mel`` (n, 1, 64, 128) stay uint8 (4x less memory; a model converts a batch)

    Raises
    ------
    DatasetError : missing files, fragments that do not match the dataset rows, an image view
        of the wrong rank, dtype or size
    """
    from crossmodal_core.data.io import load_dataset

    path = Path(path) if path is not None else default_out_dir()
    folder = path.parent if path.suffix == ".npz" else path
    ds_path, fr_path = folder / DATASET_FILE, folder / FRAGMENTS_FILE
    for p in (ds_path, fr_path):
        if not p.exists():
            raise DatasetError(f"{p}: missing; build it with `python -m crossmodal_core build-music --out {folder}`")
    ds = load_dataset(ds_path)
    _check_image_views(ds, ds_path)
    ds.views = {k: v if k in IMAGE_VIEWS else v.astype(np.float32) for k, v in ds.views.items()}
    try:
        fragments = [Fragment.from_dict(d) for d in json.loads(fr_path.read_text(encoding="utf-8"))]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"{fr_path}: not a fragment list ({exc})") from None
    ids = [f.fragment_id for f in fragments]
    if len(ids) != ds.n_items or list(ds.item_ids) != ids:
        raise DatasetError(f"{fr_path}: fragments do not match the rows of {ds_path}")
    if derived and "score_image" in ds.views:
        ds.views["score_image_seq"] = score_image_sequence(ds, fragments, ds_path)
    return ds, fragments


def _image_shapes() -> dict[str, tuple[int, int, int]]:
    from crossmodal_core.features.audio import MEL_FRAMES, N_MELS
    from crossmodal_core.features.score_image import IMAGE_HEIGHT, IMAGE_WIDTH

    return {"score_image": (1, IMAGE_HEIGHT, IMAGE_WIDTH), "audio_mel": (1, N_MELS, MEL_FRAMES)}


def _check_image_views(ds: CrossModalDataset, source: Path) -> None:
    """The image views are (n, 1, H, W) uint8 of this code's sizes, and score_image has its
    time axis (the metadata columns score_image_t0 / score_image_cols_per_s, finite)."""
    for name, shape in _image_shapes().items():
        if name not in ds.views:
            continue
        arr = ds.views[name]
        if arr.ndim != 4 or arr.dtype != np.uint8 or tuple(arr.shape[1:]) != shape:
            raise DatasetError(f"{source}: view {name!r} must be (n, {', '.join(map(str, shape))}) uint8, got shape "
                               f"{tuple(arr.shape)} {arr.dtype}; rebuild the dataset with this version "
                               "(python -m crossmodal_core build-music)")
    if "score_image" in ds.views:
        for col in ("score_image_t0", "score_image_cols_per_s"):
            values = ds.metadata.get(col)
            if values is None or values.dtype.kind not in "fiu" or not np.all(np.isfinite(values)):
                raise DatasetError(f"{source}: score_image needs the numeric metadata column {col!r} (its time axis)")
        if np.any(ds.metadata["score_image_cols_per_s"] <= 0):
            raise DatasetError(f"{source}: metadata 'score_image_cols_per_s' must be positive")


def score_image_sequence(ds: CrossModalDataset, fragments: Sequence[Fragment], source: str | Path = "") -> np.ndarray:
    """``score_image_seq`` (n, 10, 64 * 4) float32 in [0, 1]: ``score_image`` cut into the
    ``N_SEGMENTS`` time stretches of ``audio_seq`` (:func:`~crossmodal_core.features.audio.segment_times`
    of each fragment's audio length, :func:`crossmodal_core.synth.audio_length`), each
    area-resampled to 4 columns (:func:`~crossmodal_core.features.score_image.score_image_segments`).
    Derived at load time (about 1 s for the corpus), never stored."""
    from crossmodal_core.features.audio import segment_times
    from crossmodal_core.features.score_image import score_image_segments
    from crossmodal_core.synth import audio_length

    try:
        edges = np.stack([segment_times(audio_length(fr, SAMPLE_RATE), SAMPLE_RATE, N_SEGMENTS) for fr in fragments])
    except ValueError as exc:
        raise DatasetError(f"{source}: cannot time the fragments' audio for score_image_seq ({exc})") from None
    return score_image_segments(ds.views["score_image"], ds.metadata["score_image_t0"],
                                ds.metadata["score_image_cols_per_s"], edges)


# ---------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``build-music`` options (shared with ``crossmodal_core.cli``)."""
    parser.add_argument("--out", default=None, help="output folder (default assets/datasets/music21_lyrics)")
    parser.add_argument("--collections", nargs="+", choices=sorted(corpus_mod.COLLECTIONS), default=None)
    parser.add_argument("--limit", type=int, default=None, help="use only N works (round-robin over collections)")
    parser.add_argument("--works", nargs="+", default=None, help="exact work ids, e.g. bach/bwv269")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--lyrics-featurizer", default=None, help="reuse a stored lyrics_featurizer.npz")
    parser.add_argument("--no-cache", action="store_true", help="ignore and do not write per-work shards")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--scores", default=None,
                        help="a folder of your own scores instead of the corpus (needs --out)")
    return parser


def run_from_args(args: argparse.Namespace) -> CrossModalDataset:
    ds = build_music_dataset(args.out, collections=args.collections, limit=args.limit, jobs=args.jobs,
                             progress=not args.quiet, works=args.works, lyrics_featurizer=args.lyrics_featurizer,
                             use_cache=not args.no_cache, scores=args.scores)
    if args.scores is not None:
        print(format_report(store.read_json(Path(args.out) / REPORT_FILE)), file=sys.stderr)
    print(json.dumps(ds.summary(), indent=1))
    return ds


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = add_arguments(argparse.ArgumentParser(prog="build-music", description=__doc__.split("\n")[0]))
    run_from_args(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
