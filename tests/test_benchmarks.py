"""The benchmark scripts run end to end at a small size and report the numbers the library gives.

Benchmarks print timings and ratios (never asserted here: timing depends on the machine);
these tests only keep the scripts from rotting and check that the MAP they report is the MAP
the library computes for the same model on the same data.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from crossmodal_core.data.synthetic import make_synthetic_av
from crossmodal_core.metrics import map_both_directions
from crossmodal_core.models.linear import CCA, ClusterCCA

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_bench_linear_reports_the_library_map(tmp_path):
    out = tmp_path / "linear.json"
    stdout = _run("bench_linear.py", "--n-train", "1200", "--n-test", "300", "--repeats", "1",
                  "--sklearn-subset", "0", "--no-kernel", "--no-cca-zoo", "--json", str(out))
    rows = {r["model"]: r for r in json.loads(out.read_text())["rows"]}
    assert {"ours CCA reg=1e-3 f32", "ours CCA reg=0 f64", "ours ClusterCCA paper"} <= set(rows)
    assert "ClusterCCA (paper) fit / CCA fit" in stdout

    ds = make_synthetic_av(n_train=1200, n_test=300, seed=0)
    train, test = ds.split == "train", ds.split == "test"
    views, labels = [ds.view("audio"), ds.view("visual")], ds.label()
    for name, model, y in [("ours CCA reg=1e-3 f32", CCA(10, reg=1e-3), None),
                           ("ours ClusterCCA paper", ClusterCCA(9), labels[train])]:
        model.fit([v[train] for v in views], y)
        za, zv = model.transform([v[test] for v in views])
        a2v, v2a = map_both_directions(za, zv, labels[test])
        # the same MAP up to float32 rounding: at the default difficulty (1.5) some test scores
        # are near ties whose order follows the BLAS thread count and summation order of each
        # process (measured 6e-6 apart at 1 vs 2 threads, 8.6e-7 in CI); a different metric or
        # model would be off by far more
        assert rows[name]["map_a2v"] == pytest.approx(a2v, abs=2e-5)
        assert rows[name]["map_v2a"] == pytest.approx(v2a, abs=2e-5)
        assert np.all(np.isfinite(rows[name]["test_corr"]))


def test_bench_deep_runs_and_writes_its_rows(tmp_path):
    out = tmp_path / "deep.json"
    _run("bench_deep.py", "--n-train", "600", "--n-test", "200", "--epochs", "1",
         "--models", "ccca,tnn-ccca", "--threads", "1", "--json", str(out))
    rows = {r["model"]: r for r in json.loads(out.read_text())}
    assert set(rows) == {"ccca", "tnn-ccca"}
    assert rows["tnn-ccca"]["epochs_run"] == 1
    for r in rows.values():
        assert len(r["test_map"]) == 2 and all(0.0 <= m <= 1.0 for m in r["test_map"])
    # 10 balanced classes: chance MAP is about 0.1; cluster-CCA separates the classes (at the
    # generator's default difficulty 1.5 and 600 training rows it scores about 0.27)
    assert min(rows["ccca"]["test_map"]) > 0.2


def test_bench_metrics_score_once_gives_the_separate_answers(tmp_path):
    out = tmp_path / "once.json"
    stdout = _run("bench_metrics.py", "--score-once", "--class-n", "700", "--app-n", "300", "--repeats", "1",
                  "--json", str(out))
    rows = json.loads(out.read_text())
    assert [r["n"] for r in rows] == [700, 300] and all(r["identical"] for r in rows)
    assert "ScoredDirection" in stdout
    # the MAP it reports is the library's MAP on the same embeddings
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_metrics
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    from crossmodal_core.metrics import mean_average_precision

    x, y, labels = bench_metrics.embeddings(700, 10)
    assert rows[0]["map"] == mean_average_precision(x, y, labels, labels)


def test_bench_scale_search_rows_are_exact_where_they_claim(tmp_path):
    out = tmp_path / "scale.json"
    stdout = _run("bench_scale.py", "--n", "3000", "--queries", "100", "--embeddings", "ccca10", "--json", str(out),
                  "--data", "none")
    rows = {r["method"]: r for r in json.loads(out.read_text())["rows"]}
    assert {"numpy", "retrieval.top_k", "ExactIndex"} <= set(rows)
    for exact in ("numpy", "retrieval.top_k", "ExactIndex"):
        assert rows[exact]["recall@10"] == 1.0
    assert rows["ExactIndex"]["x_exact"] == 1.0
    assert "x exact" in stdout


def test_bench_scale_explorer_rows_state_their_method_and_sizes(tmp_path):
    out = tmp_path / "explorer.json"
    # its own timeout: the first UMAP in a process pays its numba JIT (~30 s CPU, more when shared);
    # sizes stay under UMAP's small-data limit (4,096 points), so the warm-up skips NNDescent's path
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_scale.py"), "--n", "2000", "--no-search",
                           "--explorer", "--explorer-umap-all", "500", "--explorer-fit-points", "1000",
                           "--explorer-draw-max", "500", "--data", "none", "--json", str(out)],
                          capture_output=True, text=True, timeout=1200, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    stdout = done.stdout
    rows = json.loads(out.read_text())["rows"]
    (mapped,) = [r for r in rows if r["row"] == "explorer map"]
    # 4,000 points: UMAP fitted on 1,000 (a stratified sample of the items), the rest transformed
    assert mapped["method"] == "umap" and mapped["plan"]["fit_points"] <= 1_000
    assert mapped["plan"]["fit_points"] + mapped["plan"]["transformed"] == 4_000
    assert mapped["peer_measured_points"] <= 500 and mapped["warmup_fit_points"] == 1_000
    draws = {r["method"]: r for r in rows if r["row"] == "explorer draw"}
    assert set(draws) == {"svg", "webgl", "binned"}
    # what the explorer sends: a 500-item sample (1,000 points) over the density image, whose
    # 160 x 160 grid keeps the JSON bounded whatever n (at this small n it outweighs the points)
    assert draws["binned"]["points_drawn"] == 1_000 and draws["webgl"]["points_drawn"] == 4_000
    assert draws["binned"]["json_mb"] < 1.0
    assert "explorer draw" in stdout and "peer / ours (CPU)" in stdout


def test_bench_scale_data_rows_at_2e4(tmp_path):
    """The load / fit / LocalCluster rows at 2·10^4 rows: every row printed, files removed, and the
    cluster's fit equal to the in-process one (ratios are printed, never asserted)."""
    out = tmp_path / "data.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_scale.py"), "--n", "20000",
                           "--embeddings", "none", "--json", str(out)], capture_output=True, text=True,
                          timeout=600, cwd=ROOT, env={**__import__("os").environ, "BENCH_SCALE_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {r["row"]: r for r in json.loads(out.read_text())["rows"]}
    assert {"load_dataset zarr (peak RSS MB)", "load_dataset h5 (peak RSS MB)",
            "ClusterCCA streamed fit (s) vs joint-syrk floor", "ClusterCCA.partial_fit 50k blocks (s) vs floor",
            "same through LocalCluster(2x1) (s) vs in-process fit"} <= set(rows)
    assert all(r["ours"] > 0 for r in rows.values())
    assert "max |d corr| 0.0e+00" in rows["same through LocalCluster(2x1) (s) vs in-process fit"]["note"] or \
        float(rows["same through LocalCluster(2x1) (s) vs in-process fit"]["note"].split("max |d corr| ")[1]
              .split(";")[0]) < 1e-6
    assert "ratio" in done.stdout and list(tmp_path.iterdir()) == [out]  # the generated files are gone


@pytest.mark.slow
def test_bench_scale_map_rows_print_ours_beside_the_peer(tmp_path):
    """The class-level MAP rows at 4,000 x 4,000 and a 20,000-item sampled gallery: both rows
    printed with the peer, and our APs equal to the stable-argsort peer's up to float32 scoring."""
    out = tmp_path / "map.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_scale.py"), "--map", "4000",
                           "--map-gallery", "20000", "--map-queries", "200", "--json", str(out)],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert [r["row"] for r in rows] == ["exact MAP both directions, 4,000 x 4,000",
                                        "sampled MAP, 200 queries x 20,000 gallery"]
    assert all(r["max_ap_diff_vs_peer"] < 1e-4 and r["ours_s"] > 0 and r["peer_s"] > 0 for r in rows)
    assert "peer: stable argsort" in done.stdout


def test_bench_scale_end_to_end_steps_report_time_and_memory(tmp_path):
    """``--end-to-end`` at 3,000 rows, the steps up to search (project and explorer are the UMAP /
    browser paths of the other smoke tests): each step ran in its own process through the user's
    paths, with wall, CPU and peak RSS; the index was saved in the model store; files removed."""
    out = tmp_path / "e2e.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_scale.py"), "--end-to-end", "--n", "3000",
                           "--e2e-steps", "generate,open,train,index,search", "--json", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env={**__import__("os").environ, "BENCH_SCALE_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    (rows,) = json.loads(out.read_text())["end_to_end"].values()
    assert [r["step"] for r in rows] == ["generate", "open", "train", "index", "search"]
    for r in rows:
        assert r["rc"] == 0 and r["wall_s"] > 0 and r["cpu_s"] > 0 and 50 < r["peak_rss_mb"] < 4096
    by = {r["step"]: r for r in rows}
    assert by["open"]["result"]["n"] == 3000 and by["open"]["result"]["lazy"] == "LazyArray"
    assert by["index"]["result"]["path"].endswith("index-visual.faiss")
    assert by["search"]["result"]["kind"] == by["index"]["result"]["kind"]
    assert 0.0 <= by["search"]["result"]["recall_at_10"] <= 1.0
    assert "peak RSS MB" in done.stdout and list(tmp_path.iterdir()) == [out]  # the work folder is gone


def test_profile_vae_counts_multiply_adds_by_hand_and_runs(tmp_path):
    """The VAE-cost explanation rests on the per-row multiply-add count: check it against a
    hand count, then run the script at a tiny size."""
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("profile_vae", ROOT / "benchmarks" / "profile_vae.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    assert mod.linear_macs(net) == 3 * 4 + 4 * 2 and mod.n_params(net) == (3 * 4 + 4) + (4 * 2 + 2)
    out = _run("profile_vae.py", "--sizes", "300", "--epochs", "1")
    assert "VAE (batch 128)" in out and "forward MACs/row 1,254,016" in out and "aten::" in out
