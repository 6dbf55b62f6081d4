"""Add the ``sheet_seq`` view to a built music dataset without rebuilding it (issue 11).

``python tools/add_sheet_seq.py --out assets/datasets/music21_lyrics``

A full ``build-music`` re-extracts every score, synthesises and featurises every fragment.
``sheet_seq`` needs only the notes and the length of the fragment's audio, so this computes it
for the stored fragments with the build's own function
(:func:`crossmodal_core.data.music.build.fragment_sheet_sequence`, given the length of the
fragment's audio from :func:`crossmodal_core.synth.audio_length`, the function
:func:`~crossmodal_core.synth.synthesize` itself uses, so nothing is rendered) and rewrites the folder with the
build's own writer (same storage dtype, view order, ``feature_dims`` and atomic folder swap).
Every other view, ``fragments.json`` and the lyric featurizer are written back unchanged;
``build_info.json`` gets the current code fingerprint (the features of the other views are
what the current code computes: ``tests/data/music/test_build.py``'s subset-rebuild check
compares a fresh build of a few works with the result, every view included).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from crossmodal_core.data.music import build as build_mod
from crossmodal_core.data.music.build import fragment_sheet_sequence, load_music_dataset
from crossmodal_core.synth import audio_length


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="the built dataset folder to update")
    args = parser.parse_args(argv)
    folder: Path = args.out
    ds, fragments = load_music_dataset(folder)
    if "sheet_seq" in ds.views:
        print(f"{folder} already has sheet_seq {ds.views['sheet_seq'].shape}; nothing to do")
        return 0
    summary = json.loads((folder / build_mod.INFO_FILE).read_text())
    featurizer = build_mod._load_featurizer(folder / "lyrics_featurizer.npz")
    start = time.perf_counter()
    rows = [fragment_sheet_sequence(fr, audio_length(fr, build_mod.SAMPLE_RATE))
            for fr in tqdm(fragments, desc="sheet_seq", unit="fragment")]
    sheet_seq = np.stack(rows).astype(np.float32)
    print(f"computed sheet_seq {sheet_seq.shape} in {time.perf_counter() - start:.0f} s")
    # the build's view order and feature_dims layout (see build.assemble)
    views = {k: ds.views[k] for k in ("audio", "sheet", "lyrics", "audio_seq")}
    views["sheet_seq"] = sheet_seq
    ds.views = views
    dims = ds.info["feature_dims"]
    ds.info["feature_dims"] = {"audio": dims["audio"], "audio_seq": dims["audio_seq"], "sheet": dims["sheet"],
                               "sheet_seq": list(sheet_seq.shape[1:]), "lyrics": dims["lyrics"]}
    ds.validate()
    summary["code_fingerprint"] = build_mod._code_fingerprint()
    build_mod._write_outputs(folder, build_mod._as_storage(ds), fragments, featurizer, summary)
    print(f"wrote {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
