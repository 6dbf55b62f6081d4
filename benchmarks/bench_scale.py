"""Search at scale (issue 13, point 3): top-10 of 1,000 queries against 10^5 or 10^6 items.

Embeddings are seeded and synthetic, shaped like what our models produce:

- ``ccca10``: 10-d, 10 classes, class centres + anisotropic within-class spread (C-CCA /
  TNN-C-CCA outputs with 10 components: clustered, low rank);
- ``lowrank128``: 128-d = a 16-d clustered signal (50 classes) through a random 16 x 128 map,
  plus 5 % isotropic noise (DCCA / contrastive outputs: low effective rank);
- ``iso128``: isotropic Gaussian 128-d, the known hard case for HNSW / IVF (a control, not
  what our models produce).

Queries are drawn independently from the same distribution (another modality's embeddings
of the same classes); they are *not* the recall sample ``build_index`` tunes on (it perturbs
gallery rows), so the recall printed is out-of-sample.

Rows, measured in one process, in rounds that alternate every method (best round kept,
ratios per round, median ratio printed):

- ``numpy``: the peer, plain NumPy: ``q_block @ g.T`` + ``argpartition`` + a sort of the k,
  query blocks of <= 1,000 rows (fewer at 10^6 so one block stays within 256 MB of scores);
- ``retrieval.top_k``: today's library function;
- ``ExactIndex``: :class:`crossmodal_core.index.ExactIndex`;
- ``hnsw`` / ``ivf``: ``build_index(kind=...)`` with its parameters chosen by measured recall
  (target 0.95 at k = 10, exact reranking of 4 k candidates), searched with and without rerank.

Columns: build seconds, queries/s (best round; ``--peer-queries N`` times the two slow exact
peers on the first N queries only), recall@10 against ExactIndex, memory
(``peak RSS delta`` sampled every 5 ms during build or search; for FAISS also the index
structure's size), and queries/s over ExactIndex's queries/s.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_scale.py --n 100000 [--n 1000000] \
        [--embeddings ccca10,lowrank128,iso128] [--methods numpy,top_k,exact,hnsw,ivf] [--json out.json]

**Explorer rows** (issue 13, point 5; ``--explorer``, ``--no-search`` for only these), per ``--n``
items with two modalities (``ccca10`` embeddings, so ``2 n`` points):

- ``explorer map``: the explorer's projection (:data:`crossmodal_core.projection.SCALE_PARAMS`,
  UMAP requested: fitted on a sample + ``transform`` of the rest, or PCA above the UMAP limit)
  against the peer, UMAP fitted on all points, *measured* at ``--explorer-umap-all`` points
  and extrapolated linearly (a lower bound: UMAP grows faster than n), after a warm-up fit
  that pays the numba JIT once (printed apart). Wall and CPU seconds (the box is shared).
- ``explorer draw``: one panel's plotly figure as SVG (``go.Scatter``, every point), WebGL
  (``go.Scattergl``, every point) and what the explorer sends (``binned``: a numpy density of
  every point under a seeded sample, :func:`crossmodal_core.appdata.panels.plan_drawing`):
  JSON bytes and Chromium draw seconds (``Plotly.newPlot`` from the JSON string to two
  animation frames later, headless, software GL); SVG above ``--explorer-svg-max`` points is
  not drawn (it would take minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))

from crossmodal_core import retrieval  # noqa: E402
from crossmodal_core.index import ExactIndex, build_index, recall_at_k  # noqa: E402

EMBEDDINGS = ("ccca10", "lowrank128", "iso128")
METHODS = ("numpy", "top_k", "exact", "hnsw", "ivf")


def make_embeddings(name: str, n: int, n_queries: int, seed: int = 0):
    """Seeded ``(gallery (n, d), queries (n_queries, d))`` float32 of one kind (see module doc)."""
    rng = np.random.default_rng(seed)
    if name == "ccca10":
        d, c = 10, 10
        centres = rng.standard_normal((c, d))
        spread = rng.uniform(0.15, 0.6, d)

        def draw(m):
            return centres[rng.integers(c, size=m)] + rng.standard_normal((m, d)) * spread
    elif name == "lowrank128":
        r, d, c = 16, 128, 50
        centres = rng.standard_normal((c, r))
        mix = rng.standard_normal((r, d)) / np.sqrt(r)

        def draw(m):
            z = centres[rng.integers(c, size=m)] + 0.5 * rng.standard_normal((m, r))
            return z @ mix + 0.05 * rng.standard_normal((m, d))
    elif name == "iso128":
        def draw(m):
            return rng.standard_normal((m, 128))
    else:
        raise ValueError(f"unknown embeddings {name!r}; choose from {EMBEDDINGS}")
    out = []
    for m in (n, n_queries):
        x = np.empty((m, 10 if name == "ccca10" else 128), dtype=np.float32)
        for s in range(0, m, 100_000):  # float64 temporaries stay small
            x[s:s + 100_000] = draw(min(100_000, m - s))
        out.append(x)
    return out[0], out[1]


def numpy_top_k(q, g, k, block_bytes=256 * 1024**2):
    """The peer: plain NumPy, cosine, matmul + argpartition + sort of the k (no tie rule)."""
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    gn = g / np.linalg.norm(g, axis=1, keepdims=True)
    block = max(1, min(1000, block_bytes // (4 * g.shape[0])))
    out = np.empty((q.shape[0], k), dtype=np.int64)
    for s in range(0, q.shape[0], block):
        sc = qn[s:s + block] @ gn.T
        part = np.argpartition(-sc, k - 1, axis=1)[:, :k]
        vals = np.take_along_axis(sc, part, axis=1)
        out[s:s + block] = np.take_along_axis(part, np.argsort(-vals, axis=1), axis=1)
    return out


class PeakRSS:
    """Peak resident memory growth (bytes) of this process while the block runs."""

    def __init__(self, interval=0.005):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()

    @staticmethod
    def rss():
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.interval)

    def __enter__(self):
        self.base = self.peak = self.rss()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self.rss())
        self.delta = self.peak - self.base


def timed(fn):
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        value = fn()
        sec = time.perf_counter() - t0
    return sec, mem.delta, value


def run_one(name, n, n_queries, methods, repeats, k, seed, target, peer_queries=None, n_sample=1000):
    g, q = make_embeddings(name, n, n_queries, seed)
    qs = q[:peer_queries] if peer_queries else q  # the slow exact peers may be timed on fewer queries
    rows = {}
    builds = {}
    exact = ExactIndex(g)
    for kind in ("hnsw", "ivf"):
        if kind in methods:
            sec, mem, idx = timed(lambda: build_index(g, kind=kind, target_recall=target, k=k, seed=seed,
                                                             n_sample=n_sample, threads=1))
            builds[kind] = (sec, mem, idx)
            r = idx.report
            print(f"  [{name}] {kind}: kept {r.kind} {r.params} sample recall {r.recall:.4f} "
                  f"build {r.build_seconds:.1f}s tune {r.tune_seconds:.1f}s"
                  + (f"  FALLBACK: {r.fallback}" if r.fallback else ""), flush=True)
            print("    tried (sample recall, q/s): " + ", ".join(
                f"{t['kind']} {t['params'].get('efSearch', t['params'].get('nprobe', ''))}: "
                f"{t['recall']:.4f}, {t['queries_per_second']:.0f}" for t in r.tried), flush=True)

    searches = {}
    if "numpy" in methods:
        searches["numpy"] = lambda: numpy_top_k(qs, g, k)
    if "top_k" in methods:
        searches["retrieval.top_k"] = lambda: retrieval.top_k(qs, g, k)[0]
    searches["ExactIndex"] = lambda: exact.search(q, k)[0]
    for kind, (_, _, idx) in builds.items():
        if idx.kind == "exact":  # fell back: nothing approximate to time
            continue
        searches[f"{kind} rerank"] = (lambda ix=idx: ix.search(q, k, rerank=True)[0])
        searches[f"{kind} no rerank"] = (lambda ix=idx: ix.search(q, k, rerank=False)[0])

    nq = {m: (qs if m in ("numpy", "retrieval.top_k") else q).shape[0] for m in searches}
    best = {m: 0.0 for m in searches}
    mems, found, ratios = {}, {}, {m: [] for m in searches}
    for _ in range(repeats):
        round_qps = {}
        for m, fn in searches.items():  # alternate every method inside each round
            sec, mem, out = timed(fn)
            round_qps[m] = nq[m] / sec
            best[m] = max(best[m], round_qps[m])
            mems[m] = max(mems.get(m, 0), mem)
            found[m] = out
        for m in searches:
            ratios[m].append(round_qps[m] / round_qps["ExactIndex"])
    truth = found["ExactIndex"]
    for m in searches:
        kind = m.split()[0]
        b = builds.get(kind)
        rows[m] = {
            "embeddings": name, "n": n, "d": g.shape[1], "method": m,
            "build_s": None if b is None else round(b[0], 2),
            "build_rss_mb": None if b is None else round(b[1] / 2**20, 1),
            "index_mb": None if b is None else round(b[2].report.index_bytes / 2**20, 1),
            "params": None if b is None else b[2].report.params,
            "sample_recall": None if b is None else b[2].report.recall,
            "tried": None if b is None else b[2].report.tried,
            "queries_timed": nq[m],
            "qps": best[m],
            "recall@10": recall_at_k(found[m], truth[:nq[m]]),
            "search_rss_mb": round(mems[m] / 2**20, 1),
            "x_exact": float(np.median(ratios[m])),
        }
    for kind, (sec, mem, idx) in builds.items():
        if idx.kind == "exact":
            rows[kind] = {"embeddings": name, "n": n, "d": g.shape[1], "method": f"{kind} -> exact fallback",
                          "build_s": round(sec, 2), "fallback": idx.report.fallback, "qps": None,
                          "recall@10": 1.0, "x_exact": None, "params": None}
    ok = [m for m in rows if m.endswith("rerank") and not m.endswith("no rerank")]
    meeting = [m for m in ok if rows[m]["sample_recall"] is not None and rows[m]["sample_recall"] >= target]
    auto = max(meeting, key=lambda m: builds[m.split()[0]][2].report.queries_per_second) if meeting else "ExactIndex"
    return list(rows.values()), auto


# ---------------------------------------------------------------------------------- explorer rows
def _two_modalities(n, seed):
    """``n`` items in two modalities of a C-CCA-like 10-d space (the same classes)."""
    a, b = make_embeddings("ccca10", n, n, seed)
    labels = np.random.default_rng(seed).integers(10, size=n)
    return [a, b], labels


def _timed_cpu(fn):
    c0, t0 = time.process_time(), time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, time.process_time() - c0, value


def explorer_map_rows(n, seed=0, umap_all_points=20_000, fit_points=None):
    """The explorer's map of ``n`` items against UMAP on all points (see the module doc);
    ``fit_points`` overrides the explorer's (smoke tests)."""
    import umap  # noqa: F401 - the import is timed apart, as the app pays it once

    from crossmodal_core import projection as proj

    # warm-up: above 4,096 points UMAP switches to NNDescent, whose JIT is paid on its first use
    warm_w, warm_c, _ = _timed_cpu(lambda: proj.compute_projection(
        _two_modalities(3_000, seed + 1)[0], "umap", params={**proj.SCALE_PARAMS["umap"], "fit_points": 5_000}))
    print(f"  [explorer] UMAP warm-up (JIT, fit 5,000 + transform 1,000 points): {warm_w:.1f} s wall, "
          f"{warm_c:.1f} s CPU", flush=True)
    views, labels = _two_modalities(n, seed)
    params = {**proj.SCALE_PARAMS["umap"], **({"fit_points": fit_points} if fit_points else {})}
    wall, cpu, p = _timed_cpu(lambda: proj.compute_projection(views, "umap", labels=labels, params=params))
    m = min(umap_all_points, 2 * n)
    sub = proj.subsample_index(n, m // 2, labels, seed)
    peer_w, peer_c, _ = _timed_cpu(lambda: proj.compute_projection(
        [v[sub] for v in views], "umap", params={"max_points": None}))
    scale = 2 * n / (2 * len(sub))
    return [{
        "row": "explorer map", "n": n, "points": 2 * n, "method": p.method, "plan": p.plan,
        "description": proj.describe_projection(p), "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
        "peer": f"UMAP on all {2 * n:,} points, extrapolated x{scale:.0f} from {2 * len(sub):,}",
        "peer_measured_points": 2 * len(sub), "peer_measured_wall_s": round(peer_w, 2),
        "peer_measured_cpu_s": round(peer_c, 2), "peer_wall_s": round(peer_w * scale, 1),
        "peer_cpu_s": round(peer_c * scale, 1), "x_peer_cpu": round(peer_c * scale / max(cpu, 1e-9), 2),
        "warmup_wall_s": round(warm_w, 2)}]


def _panel_figures(coords, labels, seed, draw_max=None):
    """One panel as plotly JSON: SVG and WebGL of every point, and what the explorer sends."""
    import plotly.graph_objects as go

    from crossmodal_core.appdata import panels

    def scatter(trace, pos):
        fig = go.Figure()
        for m, xy in enumerate(coords):
            fig.add_trace(trace(x=xy[pos, 0], y=xy[pos, 1], mode="markers", customdata=pos,
                                marker=dict(size=4, color=labels[pos], colorscale="Turbo", opacity=0.8)))
        return fig

    n = len(coords[0])
    every = np.arange(n)
    panel = panels.PanelData("bench", "umap", coords, every, True, True)
    plan = panels.plan_drawing(panel, max_items=draw_max, seed=seed)
    binned = scatter(go.Scattergl, plan.positions)
    if plan.density is not None:
        z = np.log1p(plan.density.counts.astype(float))
        z[plan.density.counts == 0] = np.nan
        binned.add_trace(go.Heatmap(x=plan.density.x_centres, y=plan.density.y_centres, z=z, colorscale="Greys",
                                    showscale=False, hoverinfo="skip", opacity=0.55))
    layout = dict(width=520, height=520, dragmode="lasso", template="plotly_white", showlegend=False)
    out = {}
    for name, fig in (("svg", lambda: scatter(go.Scatter, every)), ("webgl", lambda: scatter(go.Scattergl, every)),
                      ("binned", lambda: binned)):
        f = fig()
        f.update_layout(**layout)
        out[name] = (f.to_json(), len(plan.positions))
    return out


DRAW_JS = """async (spec) => {
  const d = document.getElementById('p');
  Plotly.purge(d);
  const t0 = performance.now();
  const f = JSON.parse(spec);
  await Plotly.newPlot(d, f.data, f.layout);
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return (performance.now() - t0) / 1000;
}"""


def explorer_draw_rows(n, seed=0, svg_max=100_000, draw_max=None):
    """JSON size and Chromium draw time of one explorer panel of ``n`` items (2 n points)."""
    from pathlib import Path

    import plotly
    from playwright.sync_api import sync_playwright

    from benchmarks.bench_app import CHROMIUM, CHROMIUM_ARGS

    views, labels = _two_modalities(n, seed)
    from crossmodal_core import projection as proj

    coords = proj.compute_projection(views, "pca", params=proj.SCALE_PARAMS["pca"]).coords
    figs = _panel_figures(coords, labels, seed, draw_max)
    plotly_js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    rows = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 800, "height": 700})
        page.set_content("<html><body><div id='p' style='width:520px;height:520px'></div></body></html>")
        page.add_script_tag(path=str(plotly_js))
        page.evaluate(DRAW_JS, figs["binned"][0])  # warm-up: plotly's first plot compiles its code
        for name, (spec, drawn) in figs.items():
            points = 2 * n if name != "binned" else 2 * drawn
            seconds = None
            if name != "svg" or 2 * n <= svg_max:
                seconds = page.evaluate(DRAW_JS, spec)
            rows.append({"row": "explorer draw", "n": n, "method": name, "points_drawn": points,
                         "json_mb": round(len(spec) / 1e6, 2), "draw_s": None if seconds is None else round(seconds, 2)})
        browser.close()
    base = next(r["draw_s"] for r in rows if r["method"] == "webgl")
    for r in rows:
        r["x_webgl"] = None if r["draw_s"] is None or not base else round(base / max(r["draw_s"], 1e-9), 2)
    return rows


def print_explorer_rows(rows):
    for r in rows:
        if r["row"] == "explorer map":
            print(f"\nexplorer map, n = {r['n']:,} items ({r['points']:,} points): {r['description']}")
            print(f"  ours {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU | peer {r['peer']}: measured "
                  f"{r['peer_measured_wall_s']:.1f} s wall / {r['peer_measured_cpu_s']:.1f} s CPU -> "
                  f"{r['peer_cpu_s']:.0f} s CPU | peer / ours (CPU) {r['x_peer_cpu']:.2f}")
    draws = [r for r in rows if r["row"] == "explorer draw"]
    if draws:
        print(f"\n{'explorer draw':<16}{'n items':>10}{'points drawn':>14}{'JSON MB':>9}{'draw s':>8}{'webgl / it':>11}")
        for r in draws:
            print(f"{r['method']:<16}{r['n']:>10,}{r['points_drawn']:>14,}{r['json_mb']:>9.2f}"
                  f"{fmt(r['draw_s'], '.2f'):>8}{fmt(r['x_webgl'], '.2f'):>11}")


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, action="append", help="gallery rows (repeatable; default 100000)")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--target", type=float, default=0.95)
    p.add_argument("--embeddings", default=",".join(EMBEDDINGS))
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--peer-queries", type=int, help="time numpy and retrieval.top_k on only this many queries")
    p.add_argument("--n-sample", type=int, default=1000, help="recall sample of build_index (perturbed gallery rows)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the rows here")
    p.add_argument("--explorer", action="store_true", help="add the explorer rows (map time, figure size, draw time)")
    p.add_argument("--no-search", action="store_true", help="skip the search rows")
    p.add_argument("--explorer-umap-all", type=int, default=20_000,
                   help="points the peer (UMAP on all) is measured on before extrapolating (default 20000)")
    p.add_argument("--explorer-svg-max", type=int, default=100_000, help="largest SVG figure drawn (points)")
    p.add_argument("--explorer-skip-map", action="store_true", help="explorer: only the draw rows")
    p.add_argument("--explorer-fit-points", type=int, help="override the explorer's UMAP fit sample (smoke tests)")
    p.add_argument("--explorer-draw-max", type=int, help="override the explorer's drawn items (smoke tests)")
    args = p.parse_args(argv)
    methods = set(args.methods.split(","))
    if methods - set(METHODS):
        p.error(f"unknown methods {sorted(methods - set(METHODS))}; choose from {METHODS}")
    import faiss

    faiss.omp_set_num_threads(1)
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} faiss=1; loadavg "
          f"{open('/proc/loadavg').read().split()[:3]}", flush=True)
    all_rows = []
    for n in args.n or [100_000]:
        if args.explorer and not args.explorer_skip_map:
            all_rows += explorer_map_rows(n, args.seed, args.explorer_umap_all, args.explorer_fit_points)
        if args.explorer:
            all_rows += explorer_draw_rows(n, args.seed, args.explorer_svg_max, args.explorer_draw_max)
        for name in ([] if args.no_search else args.embeddings.split(",")):
            t0 = time.perf_counter()
            rows, auto = run_one(name, n, args.queries, methods, args.repeats, args.k, args.seed, args.target,
                                 args.peer_queries, args.n_sample)
            all_rows += rows
            print(f"\n{name}, n = {n:,}, {args.queries} queries, k = {args.k} ({time.perf_counter() - t0:.0f} s; "
                  f"auto would keep: {auto})")
            print(f"{'method':<20}{'build s':>9}{'q/s':>10}{'recall@10':>11}{'x exact':>9}"
                  f"{'index MB':>10}{'RSS+ build':>11}{'RSS+ search':>12}  params")
            for r in rows:
                print(f"{r['method']:<20}{fmt(r['build_s'], '.1f'):>9}{fmt(r['qps'], '.0f'):>10}"
                      f"{fmt(r['recall@10'], '.4f'):>11}{fmt(r['x_exact'], '.2f'):>9}"
                      f"{fmt(r.get('index_mb'), '.0f'):>10}{fmt(r.get('build_rss_mb'), '.0f'):>11}"
                      f"{fmt(r.get('search_rss_mb'), '.0f'):>12}  {r['params'] or ''}")
            print(f"loadavg {open('/proc/loadavg').read().split()[:3]}", flush=True)
    print_explorer_rows([r for r in all_rows if str(r.get("row", "")).startswith("explorer")])
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": all_rows, "args": vars(args)}, fh, indent=1, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
