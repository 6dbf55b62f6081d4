"""Rows or epochs? Why C-CCA and TNN-C-CCA fall behind in the committed results (issue 11).

Usage::

    python benchmarks/row_budget_check.py

Validation split of TRAINING rows only (seed 0, ``make_synthetic_av()`` defaults): each model
fits on the first N rows of a seeded permutation of the training rows and is scored on 2,000
other training rows (mean MAP of the two directions, %). Measured 2026-12-07 (the README's
Results section): C-CCA 30.3 / 47.6 / 55.6 % from 1,500 / 4,000 / 20,000 rows; TNN-C-CCA
43.9 % (1,500 rows, 10 epochs), 48.2 % (1,500 rows, 40 epochs), 69.3 % (4,000 rows, 10 epochs).
The two 1,500-row TNN-C-CCA figures came from a first run that scored the next 2,000 rows of the
same permutation (``perm[1500:3500]``) instead of its last 2,000; a rerun of this script may
differ from them by a point or so.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RUNS = [("ccca", 1500, None), ("ccca", 4000, None), ("ccca", 20000, None),
        ("tnn-ccca", 1500, 10), ("tnn-ccca", 1500, 40), ("tnn-ccca", 4000, 10)]


def main() -> int:
    from crossmodal_core.data.synthetic import make_synthetic_av
    from crossmodal_core.metrics import map_both_directions
    from crossmodal_core.models.registry import make_model

    ds = make_synthetic_av(seed=0)
    train = np.nonzero(ds.split == "train")[0]
    perm = np.random.default_rng(11).permutation(train)
    val = np.sort(perm[-2000:])
    y, xa, xv = ds.labels["class"], ds.views["audio"], ds.views["visual"]
    for name, rows, epochs in RUNS:
        fit = np.sort(perm[:rows])
        start = time.process_time()
        model = make_model(name, **({"epochs": epochs, "progress": False} if epochs else {}))
        model.fit([xa[fit], xv[fit]], y[fit])
        za, zv = model.transform([xa[val], xv[val]])
        maps = map_both_directions(np.asarray(za, np.float32), np.asarray(zv, np.float32), y[val])
        print(json.dumps({"model": name, "rows": rows, "epochs": epochs, "val_map": round(float(np.mean(maps)) * 100, 1),
                          "cpu_s": round(time.process_time() - start, 1)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
