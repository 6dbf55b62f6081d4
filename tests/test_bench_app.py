"""``benchmarks/bench_app.py --users 2 --rounds 1 --no-warmup`` on a tiny dataset: two browser
sessions reach a cold server at once, visit the explorer and retrieval pages with no error, and
the JSON has every row.

The setup is one small synthetic feature file and one linear model (trained through the CLI,
as a user would), and no warm-up session, so the run is about the script, not the data:
about 50 s with the 2 cores shared at a load average of 7. Timings are never asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")

if not CHROMIUM.exists():
    pytest.skip("Debian chromium is not installed at /usr/bin/chromium", allow_module_level=True)
pytest.importorskip("playwright.async_api")


@pytest.fixture
def tiny_app(tmp_path) -> dict:
    """Environment of an app that shows one tiny dataset with one trained model."""
    from crossmodal_core.data import io
    from crossmodal_core.data.synthetic import make_synthetic_av

    assets, home = tmp_path / "assets", tmp_path / "home"
    (assets / "datasets").mkdir(parents=True)
    data = make_synthetic_av(n_train=240, n_test=120, n_classes=4, dims=(16, 32), seed=1, name="tiny-a")
    io.save_dataset(data, assets / "datasets" / "tiny_a.npz")
    env = {**os.environ, "CROSSMODAL_ASSETS": str(assets), "CROSSMODAL_HOME": str(home), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "crossmodal_core", "train", "--data", "file:tiny_a.npz",
                           "--model", "cca", "--threads", "1"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return env


def test_two_concurrent_users_render_without_errors(tiny_app, tmp_path):
    out, log = tmp_path / "users.json", tmp_path / "server.log"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_app.py"), "--users", "2", "--rounds", "1",
                           "--no-warmup", "--timeout", "120", "--json", str(out), "--server-log", str(log)],
                          env=tiny_app, cwd=ROOT, capture_output=True, text=True, timeout=300)
    server = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}\nserver log:\n{server}"
    report = json.loads(out.read_text())
    assert report["users"] == 2 and report["errors"] == 0 and not report["server_tracebacks"]
    rows = {(r["page"], r["visit"]): r for r in report["rows"]}
    assert set(rows) == {("explorer", "new session"), ("explorer", "sidebar"), ("retrieval", "sidebar")}
    assert all(r["visits"] == 2 and r["p50_s"] is not None and r["p50_s"] <= r["p95_s"] <= r["max_s"]
               for r in rows.values())
    # every user's visits: the explorer loaded, then retrieval and back through the sidebar
    for user in ("u0", "u1"):
        steps = [(v["page"], v["kind"]) for v in report["visits"] if v["user"] == user]
        assert steps == [("explorer", "new session"), ("retrieval", "sidebar"), ("explorer", "sidebar")]
    assert "| explorer | new session | 2 | 2 |" in done.stdout
