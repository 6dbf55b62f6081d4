"""benchmarks/bench_score_raster.py runs end to end at a small size (timings are printed, never
asserted: they depend on the machine)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_bench_score_raster_runs_and_resvg_is_deterministic(tmp_path):
    pytest.importorskip("resvg_py")
    out = tmp_path / "raster.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_score_raster.py"), "--n", "4",
                           "--json", str(out)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    numbers = json.loads(out.read_text())
    assert numbers["n"] == 4 and numbers["resvg"]["deterministic"] is True
    assert numbers["canvas_median"][0] == 128  # the view's 64 rows, 2x supersampled
