"""How the default ``make_synthetic_av(difficulty=...)`` was chosen (issue 11): validation MAP
of a few fast models per difficulty, on TRAINING rows only (the test split is never read).

Usage::

    python benchmarks/choose_difficulty.py 1 1.25 1.5 1.75 2

Seed 0, full VEGAS size; 4,000 random training rows fit each model and 2,000 other training
rows are scored (mean MAP of the two directions, %). Models: C-CCA, C-KCCA, TNN-C-CCA (5
epochs) and the contrastive model (8 epochs). The rule (module docstring of
``crossmodal_core.data.synthetic``): the smallest difficulty at which the best model stays
clearly below 90 % and C-CCA lies at least 10 points below the best deep model.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

N_FIT, N_VAL = 4000, 2000
MODELS = {"ccca": {}, "ckcca": {}, "tnn-ccca": {"epochs": 5, "progress": False},
          "contrastive": {"epochs": 8, "progress": False}}


def main(argv: list[str]) -> int:
    from crossmodal_core.data.synthetic import make_synthetic_av
    from crossmodal_core.metrics import map_both_directions
    from crossmodal_core.models.registry import make_model

    for difficulty in [float(a) for a in argv or ["1", "1.25", "1.5", "1.75", "2"]]:
        ds = make_synthetic_av(difficulty=difficulty, seed=0)
        train = np.nonzero(ds.split == "train")[0]
        perm = np.random.default_rng(11).permutation(train)
        fit, val = np.sort(perm[:N_FIT]), np.sort(perm[N_FIT:N_FIT + N_VAL])
        y, xa, xv = ds.labels["class"], ds.views["audio"], ds.views["visual"]
        out = {}
        for name, params in MODELS.items():
            start = time.process_time()
            model = make_model(name, **params).fit([xa[fit], xv[fit]], y[fit])
            za, zv = model.transform([xa[val], xv[val]])
            maps = map_both_directions(np.asarray(za, np.float32), np.asarray(zv, np.float32), y[val])
            out[name] = {"val_map": round(float(np.mean(maps)) * 100, 1), "cpu_s": round(time.process_time() - start, 1)}
        print(json.dumps({"difficulty": difficulty, **out}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
