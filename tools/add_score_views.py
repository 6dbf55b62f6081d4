"""Add the ``score_image`` and ``audio_mel`` views to a built music dataset without rebuilding it
(issue 12).

``python tools/add_score_views.py --out assets/datasets/music21_lyrics [--jobs 2]``

A full ``build-music`` re-extracts every score, synthesises and featurises every fragment (hours
on a shared machine). The two new views need only each fragment's notes (the engraving) and its
synthesised audio, so this computes them for the stored fragments with the build's own function
(:func:`crossmodal_core.data.music.build.fragment_score_views`, given
:func:`crossmodal_core.synth.synthesize`'s audio, as the build's feature step does) and rewrites
the folder with the build's own writer (same storage dtypes, view order, ``feature_dims``,
metadata columns and atomic folder swap). Every other view, ``fragments.json`` and the lyric
featurizer are written back unchanged; ``build_info.json`` gets the current code fingerprint and
the timing of this step. Work is cached in chunks of fragments under
``<cache_dir>/score_views/`` (keyed by the fragments and the views' version constants, e.g.
:data:`crossmodal_core.features.score_image.VIEW_VERSION`), so a killed run resumes.
``tests/data/music/test_build.py``'s subset-rebuild check compares a fresh build of a few works
with the result, the new views included.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from crossmodal_core import store
from crossmodal_core.data.music import build as build_mod
from crossmodal_core.data.music.build import load_music_dataset
from crossmodal_core.notes import Fragment

CHUNK = 64


def _chunk(args: tuple[list[dict], str]) -> tuple[dict[str, np.ndarray], float]:
    """Views of one chunk of fragments (dicts) -> stacked arrays and the CPU seconds they took
    (stored with a cached chunk)."""
    from crossmodal_core.synth import synthesize

    rows, path = args
    cached = Path(path)
    if cached.exists():
        try:
            with np.load(cached, allow_pickle=False) as z:
                return {k: z[k] for k in z.files if k != "cpu_s"}, float(z["cpu_s"])
        except Exception:  # a damaged chunk is recomputed
            pass
    start = time.process_time()
    images, mels, t0, cps = [], [], [], []
    for d in rows:
        fr = Fragment.from_dict(d)
        views = build_mod.fragment_score_views(fr, synthesize(fr, sample_rate=build_mod.SAMPLE_RATE))
        images.append(views["score_image"])
        mels.append(views["audio_mel"])
        t0.append(views["score_t0"])
        cps.append(views["score_cols_per_s"])
    arrays = build_mod._score_arrays(images, mels, t0, cps)
    cpu = time.process_time() - start
    store.atomic_save_npz(cached, cpu_s=np.array(cpu), **arrays)
    return arrays, cpu


def compute(fragments: list[Fragment], jobs: int = 2, progress: bool = True) -> tuple[dict[str, np.ndarray], float]:
    """The score views of ``fragments`` in order, and the CPU seconds they took (cached chunks included)."""
    from crossmodal_core.features import audio as audio_mod
    from crossmodal_core.features import score_image as score_image_mod
    from crossmodal_core.synth import SYNTH_VERSION

    # keyed by the views' version constants (bumped when their output changes), not by the
    # source text, so a docstring edit keeps a half-finished run's chunks; the subset-rebuild
    # test compares the result with what the current code computes
    fingerprint = store.cache_key(score_image_mod.VIEW_VERSION, SYNTH_VERSION, audio_mod.MEL_FRAMES,
                                  audio_mod.MEL_FPS, audio_mod.MEL_RANGE_DB, audio_mod.ANALYSIS)
    cache = store.cache_dir() / "score_views"
    cache.mkdir(parents=True, exist_ok=True)
    dicts = [f.to_dict() for f in fragments]
    tasks = []
    for start in range(0, len(dicts), CHUNK):
        rows = dicts[start:start + CHUNK]
        key = store.cache_key(fingerprint, rows)
        tasks.append((rows, str(cache / f"chunk-{start:06d}-{key}.npz")))
    parts: list[dict[str, np.ndarray]] = []
    cpu = 0.0
    bar = tqdm(total=len(dicts), desc="score views", unit="fragment", disable=not progress, file=sys.stderr)
    if jobs <= 1:
        results = map(_chunk, tasks)
        pool = None
    else:
        pool = multiprocessing.get_context("fork").Pool(int(jobs), initializer=build_mod._worker_init)
        results = pool.imap(_chunk, tasks, chunksize=1)  # imap keeps the order
    try:
        for (rows, _), (arrays, spent) in zip(tasks, results):
            parts.append(arrays)
            cpu += spent
            bar.update(len(rows))
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        bar.close()
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="the built dataset folder to update")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    folder: Path = args.out
    ds, fragments = load_music_dataset(folder, derived=False)
    summary = json.loads((folder / build_mod.INFO_FILE).read_text())
    featurizer = build_mod._load_featurizer(folder / "lyrics_featurizer.npz")
    wall = time.perf_counter()
    with build_mod._single_threaded_blas():
        arrays, cpu = compute(fragments, jobs=args.jobs, progress=not args.quiet)
    wall = time.perf_counter() - wall
    print(f"computed score_image {arrays['score_image'].shape} and audio_mel {arrays['audio_mel'].shape} "
          f"in {wall:.0f} s wall, {cpu:.0f} s CPU (summed over the chunks, cached ones included)")
    # the build's view order, feature_dims and metadata layout (see build.assemble)
    views = {k: ds.views[k] for k in ("audio", "sheet", "lyrics", "audio_seq", "sheet_seq")}
    views["score_image"] = arrays["score_image"]
    views["audio_mel"] = arrays["audio_mel"]
    ds.views = views
    ds.metadata = {k: v for k, v in ds.metadata.items() if not k.startswith("score_image_")}
    ds.metadata["score_image_t0"] = arrays["score_t0"]
    ds.metadata["score_image_cols_per_s"] = arrays["score_cols_per_s"]
    dims = ds.info["feature_dims"]
    ds.info["feature_dims"] = {**{k: dims[k] for k in ("audio", "audio_seq", "sheet", "sheet_seq", "lyrics")},
                               "score_image": list(arrays["score_image"].shape[1:]),
                               "audio_mel": list(arrays["audio_mel"].shape[1:])}
    ds.validate()
    summary["code_fingerprint"] = build_mod._code_fingerprint()
    summary["score_views"] = build_mod.score_views_summary(ds)
    # CPU seconds summed over the chunks (a resumed run counts the chunks of earlier runs too)
    summary["score_views_added"] = {"by": "tools/add_score_views.py, from the stored notes",
                                    "cpu_s": round(cpu, 1)}
    build_mod._write_outputs(folder, build_mod._as_storage(ds), fragments, featurizer, summary)
    print(f"wrote {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
