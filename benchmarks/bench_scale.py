"""Search at scale (issue 13, point 3): top-10 of 1,000 queries against 10^5 or 10^6 items.

Also the data rows (points 1 and 2, ``--data load,fit,dask``; see :func:`data_rows`): a seeded
VEGAS-shaped dataset (128 + 1024 float32, 10 classes) written to chunked Zarr / HDF5 files
block by block; ``load_dataset`` peak RSS of a fresh process (views on disk vs read whole); the
streamed ``ClusterCCA.fit`` against the joint float32 syrk of ``[X | Y]`` over the same blocks
(the floor); ``partial_fit`` over 50k-row blocks; the fit through ``dask.distributed``
``LocalCluster(2 x 1)`` against the in-process fit. ``--embeddings none`` runs only these.

And issue 13's "done when" end to end (``--end-to-end --n 1000000``): the dataset written to Zarr
in a temporary data folder, then opened, C-CCA trained, indexed, searched, projected and shown in
the explorer (Streamlit + Chromium) through the user's paths, each step a process with its wall
and CPU seconds and the peak RSS of every process involved; and the explorer's warm visits split
into server and browser time beside a peer size (``--explorer-warm 1000,100000``). Both live in
``scale_e2e.py`` (psutil, a dependency of ``distributed``, samples the process trees).

And the class-level MAP rows (point 4, ``--map 12500,25000,50000 --map-gallery 1000000``, off by
default; see :func:`map_rows`): the exact n x n MAP in both directions (``n_jobs`` 1 and 2) and
the sampled MAP of 1,000 queries against a 10^6 gallery with its confidence interval, each
beside the peer, a stable argsort per query (timed on a few hundred queries and scaled: its
cost is linear in the number of queries).

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
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # scale_e2e, bench_app

from crossmodal_core import retrieval  # noqa: E402
from crossmodal_core.index import ExactIndex, build_index, recall_at_k  # noqa: E402
from crossmodal_core.store import atomic_write_text  # noqa: E402

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

    params = {**proj.SCALE_PARAMS["umap"], **({"fit_points": fit_points} if fit_points else {})}
    # warm-up: pays the JIT of the code paths the timed fits take, once. Above 4,096 points
    # (UMAP's small-data limit) UMAP fits with NNDescent and transforms with its search, whose
    # JIT is paid on first use; at or below it both use exact distances, and a NNDescent warm-up
    # would only cost time (it was ~2 min CPU of the CI smoke test's ~5 min)
    largest = max(min(int(params["fit_points"]), 2 * n), min(umap_all_points, 2 * n))
    warm_fit = 5_000 if largest > 4_096 else 1_000
    warm_w, warm_c, _ = _timed_cpu(lambda: proj.compute_projection(
        _two_modalities(warm_fit // 2 + 500, seed + 1)[0], "umap", params={**proj.SCALE_PARAMS["umap"],
                                                                           "fit_points": warm_fit}))
    print(f"  [explorer] UMAP warm-up (JIT, fit {warm_fit:,} + transform 1,000 points): {warm_w:.1f} s wall, "
          f"{warm_c:.1f} s CPU", flush=True)
    views, labels = _two_modalities(n, seed)
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
        "warmup_wall_s": round(warm_w, 2), "warmup_cpu_s": round(warm_c, 2), "warmup_fit_points": warm_fit}]


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


# ---------------------------------------------------------------------- issue 13.1 / 13.2 rows
#: the data rows (``--data``): load_dataset RSS, streamed ClusterCCA fit vs the joint-syrk floor,
#: the same fit through dask.distributed LocalCluster(2 x 1)
DATA_ROWS = ("load", "fit", "partial", "dask")
VEGAS_DIMS = (128, 1024)
N_CLASSES = 10
_GEN_ROWS = 8192


class SyntheticView:
    """Seeded VEGAS-shaped rows made block by block (never all in memory): a 16-d class-structured
    latent shared by both views, through a per-view random map, plus noise; float32."""

    def __init__(self, n, d, labels, seed, view):
        self.shape, self.dtype, self.labels = (int(n), int(d)), np.dtype(np.float32), labels
        self.seed, self.view = seed, view
        rng = np.random.default_rng([seed, 999])
        self.centres = rng.standard_normal((N_CLASSES, 16))
        self.mix = np.random.default_rng([seed, view]).standard_normal((16, d)).astype(np.float32) / 4

    ndim = property(lambda self: 2)
    nbytes = property(lambda self: self.shape[0] * self.shape[1] * 4)

    def __len__(self):
        return self.shape[0]

    def _block(self, b):
        lo, hi = b * _GEN_ROWS, min(self.shape[0], (b + 1) * _GEN_ROWS)
        z = self.centres[self.labels[lo:hi]] + np.random.default_rng([self.seed, b, 0]).standard_normal((hi - lo, 16))
        noise = np.random.default_rng([self.seed, b, self.view + 1]).standard_normal((hi - lo, self.shape[1]),
                                                                                   dtype=np.float32)
        return z.astype(np.float32) @ self.mix + noise

    def __getitem__(self, index):
        start, stop, _ = index.indices(self.shape[0])
        blocks = range(start // _GEN_ROWS, (max(stop, start + 1) - 1) // _GEN_ROWS + 1)
        rows = np.concatenate([self._block(b) for b in blocks]) if stop > start else np.empty((0, self.shape[1]))
        first = blocks[0] * _GEN_ROWS if stop > start else 0
        return rows[start - first: stop - first].astype(np.float32)

    def iter_blocks(self, block_rows=None):
        step = block_rows or 8 * _GEN_ROWS
        for start in range(0, self.shape[0], step):
            yield start, self[start:start + step]


def write_synthetic(n, path, seed=0):
    """A seeded n-row VEGAS-shaped dataset written to ``path`` (.zarr / .h5) block by block."""
    from crossmodal_core.data import io as dio
    from crossmodal_core.data.dataset import CrossModalDataset

    labels = np.random.default_rng([seed, 7]).integers(0, N_CLASSES, n)
    views = {name: SyntheticView(n, d, labels, seed, i) for i, (name, d) in enumerate(zip(("audio", "visual"), VEGAS_DIMS))}
    ds = CrossModalDataset(views=views, labels={"class": labels}, class_names={"class": [f"c{i}" for i in range(N_CLASSES)]},
                           item_ids=np.char.add("r", np.arange(n).astype(str)), name=f"bench-{n}", info={"synthetic": True})
    t0 = time.perf_counter()
    dio.save_dataset(ds, path)
    return time.perf_counter() - t0


_LOAD_CHILD = r"""
import json, os, resource, sys, time
sys.path.insert(0, {repo!r})
import numpy as np
import h5py, zarr  # noqa: F401 - imported before the baseline: their code is not the dataset's memory
from crossmodal_core.data import io as dio
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
base = rss()
t0 = time.perf_counter()
ds = dio.load_dataset({path!r}, lazy={lazy!r})
opened, t_open = rss(), time.perf_counter() - t0
total = 0.0
t0 = time.perf_counter()
for name in ("audio", "visual"):
    v = ds.views[name]
    if hasattr(v, "iter_blocks"):
        for _, block in v.iter_blocks():
            total += float(block[:, 0].sum())
    else:
        total += float(v[:, 0].sum())
print(json.dumps(dict(base=base, opened=opened, peak=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                      open_s=t_open, pass_s=time.perf_counter() - t0, check=total)))
"""


def _load_in_child(path, lazy):
    import subprocess

    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
    code = _LOAD_CHILD.format(repo=repo, path=str(path), lazy=lazy)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_load(n, folder, seed=0, eager_limit_gb=2.5, formats=(".zarr", ".h5")):
    """``load_dataset`` of a chunked HDF5 / Zarr file: peak RSS of a fresh process that opens it and
    streams both views once (ours: lazy) against reading it whole (the peer: ``lazy=False``, run
    only when the views fit in ``eager_limit_gb``)."""
    rows = []
    gb = n * sum(VEGAS_DIMS) * 4 / 1e9
    for suffix in formats:
        path = os.path.join(folder, f"data-{n}{suffix}")
        write_s = write_synthetic(n, path, seed)
        ours = _load_in_child(path, True)
        peer = _load_in_child(path, False) if gb <= eager_limit_gb else None
        mb = lambda r, k: (r[k] - r["base"]) / 2**20  # noqa: E731 - growth over the interpreter + imports
        rows.append({
            "row": f"load_dataset {suffix[1:]} (peak RSS MB)", "n": n, "ours": round(mb(ours, "peak"), 1),
            "peer": None if peer is None else round(mb(peer, "peak"), 1),
            "ratio": None if peer is None else round(mb(peer, "peak") / max(mb(ours, "peak"), 1e-9), 1),
            "note": (f"open {ours['open_s']:.1f}s (+{mb(ours, 'opened'):.0f} MB), one streamed pass {ours['pass_s']:.1f}s; "
                     f"write {write_s:.0f}s; interpreter+imports {ours['base'] / 2**20:.0f} MB"
                     + ("" if peer is not None else f"; peer skipped: reading {gb:.1f} GB whole exceeds this box's "
                                                    f"share (issue: 5.7 GB RSS at 10^6)")),
        })
        if suffix == ".h5":
            os.remove(path)
    return rows


def _joint_syrk_floor(views, block_rows):
    """The floor: one float32 syrk of [X | Y] per row block, read from the same files."""
    from crossmodal_core.models.linear._linalg import gram

    d = sum(v.shape[1] for v in views)
    total = np.zeros((d, d))
    buf = None
    for start in range(0, views[0].shape[0], block_rows):
        blocks = [v[start:start + block_rows] for v in views]
        m = len(blocks[0])
        if buf is None or len(buf) < m:
            buf = np.empty((m, d), dtype=np.float32)
        np.concatenate(blocks, axis=1, out=buf[:m])
        total += gram(buf[:m])
    return total


def bench_fit(n, folder, seed=0, client=None, with_partial=True, path=None):
    """Streamed ``ClusterCCA.fit`` (paper variant) from Zarr vs the joint float32 syrk floor (same
    blocks, same run), plus ``partial_fit`` over 50k-row blocks; with ``client``, the fit through
    dask.distributed against the in-process fit."""
    from crossmodal_core.data import io as dio
    from crossmodal_core.models.linear import ClusterCCA
    from crossmodal_core.models.linear import streaming

    # the load row's file when it ran, or a given one (--data-zarr: e.g. the end-to-end run's)
    path = path or os.path.join(folder, f"data-{n}.zarr")
    if not os.path.exists(path):
        write_synthetic(n, path, seed)
    ds = dio.load_dataset(path)
    if ds.n_items != n:
        raise SystemExit(f"{path} holds {ds.n_items} rows, not --n {n}")
    views, y = [ds.views["audio"], ds.views["visual"]], ds.labels["class"]
    step = streaming.block_rows_for_views(views)
    out = {}
    c0 = time.process_time()
    floor_s, floor_mb, _ = timed(lambda: _joint_syrk_floor(views, step))
    c1 = time.process_time()
    fit_s, fit_mb, model = timed(lambda: ClusterCCA(n_components=N_CLASSES - 1).fit(views, y))
    floor_cpu, fit_cpu = c1 - c0, time.process_time() - c1
    out["fit"] = {"row": "ClusterCCA streamed fit (s) vs joint-syrk floor", "n": n, "ours": round(fit_s, 1),
                  "peer": round(floor_s, 1), "ratio": round(fit_s / floor_s, 2),
                  "cpu_s": round(fit_cpu, 1), "peer_cpu_s": round(floor_cpu, 1),
                  "note": f"{n / fit_s:,.0f} rows/s vs {n / floor_s:,.0f}; CPU {fit_cpu:.0f} s vs {floor_cpu:.0f} s; "
                          f"RSS +{fit_mb / 2**20:.0f} MB "
                          f"(floor +{floor_mb / 2**20:.0f} MB); blocks of {step} rows"}

    def partial():
        m = ClusterCCA(n_components=N_CLASSES - 1)
        for start in range(0, n, 50_000):
            m.partial_fit([v[start:start + 50_000] for v in views], y[start:start + 50_000])
        return m.weights_  # the one solve, on first use

    if not with_partial:
        pf_s = None
    else:
        pf_s, pf_mb, _ = timed(partial)
    out["partial_fit"] = None if pf_s is None else {
        "row": "ClusterCCA.partial_fit 50k blocks (s) vs floor", "n": n, "ours": round(pf_s, 1),
        "peer": round(floor_s, 1), "ratio": round(pf_s / floor_s, 2),
        "note": f"{n / pf_s:,.0f} rows/s; RSS +{pf_mb / 2**20:.0f} MB; per-class Grams"}
    if client is not None:
        def worker_cpu():
            return sum(client.run(lambda: sum(__import__("os").times()[:2])).values())

        w0, c0 = worker_cpu(), time.process_time()
        dk_s, dk_mb, dmodel = timed(lambda: ClusterCCA(n_components=N_CLASSES - 1).fit(views, y, client=client))
        dk_cpu, dk_client_cpu = worker_cpu() - w0, time.process_time() - c0
        diff = float(np.max(np.abs(dmodel.canonical_correlations_ - model.canonical_correlations_)))
        workers = client.run(lambda: __import__("resource").getrusage(0).ru_maxrss * 1024)
        out["dask"] = {"row": "same through LocalCluster(2x1) (s) vs in-process fit", "n": n, "ours": round(dk_s, 1),
                       "peer": round(fit_s, 1), "ratio": round(dk_s / fit_s, 2),
                       "cpu_s": round(dk_cpu, 1), "client_cpu_s": round(dk_client_cpu, 1), "peer_cpu_s": round(fit_cpu, 1),
                       "note": f"speed-up {fit_s / dk_s:.2f}x; vs floor {dk_s / floor_s:.2f}x; workers' CPU {dk_cpu:.0f} s "
                               f"(+ client {dk_client_cpu:.0f} s) vs in-process {fit_cpu:.0f} s; max |d corr| {diff:.1e}; "
                               f"client RSS +{dk_mb / 2**20:.0f} MB, worker peak RSS "
                               f"{max(workers.values()) / 2**20:.0f} MB"}
    return out


def data_rows(n, kinds, seed=0, load_formats=(".zarr", ".h5"), zarr_path=None):
    """The rows of ``kinds`` (subset of DATA_ROWS) at ``n`` rows; files in a temp folder, removed after."""
    import shutil
    import tempfile

    if not kinds:
        return []
    folder = tempfile.mkdtemp(prefix=f"bench-scale-{n}-", dir=os.environ.get("BENCH_SCALE_DIR"))
    rows = []
    try:
        if "load" in kinds:
            rows += bench_load(n, folder, seed, formats=load_formats)
        if {"fit", "partial", "dask"} & set(kinds):
            client = cluster = None
            if "dask" in kinds:
                from distributed import Client

                from crossmodal_core.models.linear import streaming

                t0 = time.perf_counter()
                # the library's LocalCluster (streaming.WORKER_CONFIG: no malloc trim threshold, no profiler)
                cluster = streaming.local_cluster(2)
                client = Client(cluster)
                client.wait_for_workers(2)
                print(f"  LocalCluster(2x1) started in {time.perf_counter() - t0:.1f} s", flush=True)
            try:
                fit = bench_fit(n, folder, seed, client, with_partial="partial" in kinds, path=zarr_path)
            finally:
                if client is not None:
                    client.close()
                    cluster.close()
            rows += [fit[k] for k in ("fit", "partial_fit", "dask") if k in fit and fit[k] is not None]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"\ndata rows, n = {n:,} (VEGAS-shaped {VEGAS_DIMS[0]} + {VEGAS_DIMS[1]} float32, {N_CLASSES} classes)")
    print(f"{'row':<52}{'ours':>9}{'peer':>9}{'ratio':>7}  note")
    for r in rows:
        print(f"{r['row']:<52}{fmt(r['ours'], '.1f'):>9}{fmt(r['peer'], '.1f'):>9}{fmt(r['ratio'], '.2f'):>7}  {r['note']}")
    print(f"loadavg {open('/proc/loadavg').read().split()[:3]}", flush=True)
    return rows


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


# ------------------------------------------------------------------ class-level MAP at scale
def _stable_argsort_ap(q, g, ql, gl):
    """The peer: AP of each query by a full stable argsort of its scores (the documented rule
    written the obvious way; what a script without our rank counting does)."""
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    gn = g / np.linalg.norm(g, axis=1, keepdims=True)
    out = np.empty(q.shape[0])
    for i in range(q.shape[0]):
        order = np.argsort(-(gn @ qn[i]), kind="stable")
        rel = gl[order] == ql[i]
        hits = np.cumsum(rel)
        out[i] = (hits[rel] / (np.flatnonzero(rel) + 1)).sum() / rel.sum()
    return out


def _class_embeddings(n: int, seed: int):
    """Two 10-d 'modalities' of the same 10 classes (C-CCA-like test embeddings)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    centres = rng.standard_normal((10, 10)).astype(np.float32)
    a = (centres[y] + 0.8 * rng.standard_normal((n, 10))).astype(np.float32)
    v = (centres[y] + 0.8 * rng.standard_normal((n, 10))).astype(np.float32)
    return a, v, y


def map_rows(sizes=(12_500, 25_000, 50_000), gallery: int = 1_000_000, n_sampled: int = 1000,
             peer_queries: int = 200, seed: int = 0, n_jobs: int = 2) -> list[dict]:
    """Exact n x n MAP (both directions; n_jobs 1 and 2) and sampled MAP against a large gallery,
    each beside the stable-argsort peer timed on ``peer_queries`` queries (cost is linear in
    the number of queries, so its time per query is scaled up; stated in the row)."""
    from crossmodal_core import metrics

    rows = []
    for n in sizes:
        a, v, y = _class_embeddings(n, seed)
        t = time.perf_counter()
        ours = metrics.map_both_directions(a, v, y)
        t1 = time.perf_counter() - t
        t = time.perf_counter()
        metrics.map_both_directions(a, v, y, n_jobs=n_jobs)
        t2 = time.perf_counter() - t
        m = min(peer_queries, n)
        t = time.perf_counter()
        peer = _stable_argsort_ap(a[:m], v, y[:m], y)
        t_peer = (time.perf_counter() - t) / m * n * 2
        check = metrics.average_precision(a[:m], v, y[:m], y)
        rows.append({
            "row": f"exact MAP both directions, {n:,} x {n:,}", "ours_s": round(t1, 2), "ours_2jobs_s": round(t2, 2),
            "peer_s": round(t_peer, 1), "peer": f"stable argsort per query ({m} queries timed, scaled)",
            "ratio_peer_over_ours": round(t_peer / t1, 1), "map": [round(x, 6) for x in ours],
            "max_ap_diff_vs_peer": float(np.abs(peer - check).max()),
        })
        print_map_row(rows[-1])
    if gallery:
        a, v, y = _class_embeddings(gallery, seed + 1)
        t = time.perf_counter()
        est, sampled, ap = metrics.sampled_average_precision(a, v, y, y, n_samples=n_sampled, seed=seed)
        t1 = time.perf_counter() - t
        m = min(peer_queries // 4, n_sampled)
        t = time.perf_counter()
        peer = _stable_argsort_ap(a[sampled[:m]], v, y[sampled[:m]], y)
        t_peer = (time.perf_counter() - t) / m * n_sampled
        rows.append({
            "row": f"sampled MAP, {n_sampled:,} queries x {gallery:,} gallery", "ours_s": round(t1, 2),
            "peer_s": round(t_peer, 1), "peer": f"stable argsort per query ({m} queries timed, scaled)",
            "ratio_peer_over_ours": round(t_peer / t1, 1), "estimate": str(est),
            "max_ap_diff_vs_peer": float(np.abs(peer - ap[:m]).max()),
        })
        print_map_row(rows[-1])
    return rows


def print_map_row(r):
    extra = (f"; {r['ours_2jobs_s']:.1f} s with n_jobs=2" if "ours_2jobs_s" in r else "") + \
        (f"; estimate {r['estimate']}" if "estimate" in r else "")
    print(f"{r['row']:<52}{r['ours_s']:>9.1f}{r['peer_s']:>10.1f}{r['ratio_peer_over_ours']:>8.1f}  peer: {r['peer']}; "
          f"max |AP - peer AP| {r['max_ap_diff_vs_peer']:.1e}{extra}", flush=True)


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
    p.add_argument("--data", default=",".join(DATA_ROWS),
                   help=f"data rows to run (subset of {','.join(DATA_ROWS)}, or 'none'); files go to a temporary "
                        "folder ($BENCH_SCALE_DIR or /tmp), removed afterwards")
    p.add_argument("--load-formats", default="zarr,h5", help="files of the load row (zarr,h5)")
    p.add_argument("--data-zarr", help="the fit rows read this Zarr dataset (written by this script, e.g. by "
                                       "--end-to-end --e2e-dir) instead of writing one; its row count must be --n")
    p.add_argument("--map", default="", help="class-level MAP rows: comma-separated n of the exact n x n MAP "
                                              "(e.g. 12500,25000,50000); off by default")
    p.add_argument("--map-gallery", type=int, default=0, help="gallery rows of the sampled-MAP row (e.g. 1000000)")
    p.add_argument("--map-queries", type=int, default=1000, help="sampled queries of the sampled-MAP row")
    e2e = p.add_argument_group("end to end (issue 13's 'done when'; see benchmarks/scale_e2e.py)")
    e2e.add_argument("--end-to-end", action="store_true",
                     help="generate --n rows to Zarr, then open, train C-CCA, index, search, project and show the "
                          "explorer in Streamlit + Chromium, each step a process: wall, CPU and peak RSS per step")
    e2e.add_argument("--threads", type=int, default=1, help="BLAS / FAISS threads of the steps (default 1)")
    e2e.add_argument("--e2e-index", default="ivf", choices=("auto", "ivf", "hnsw", "exact"), help="index kind")
    e2e.add_argument("--e2e-visits", type=int, default=3, help="warm explorer visits (default 3)")
    e2e.add_argument("--e2e-dir", help="work folder (kept; lets --e2e-steps rerun steps on its files)")
    e2e.add_argument("--e2e-steps", help="comma-separated subset of generate,open,train,index,search,project,explorer")
    e2e.add_argument("--e2e-keep", action="store_true", help="keep the temporary work folder")
    e2e.add_argument("--explorer-warm", help="comma-separated test-item counts (e.g. 1000,100000): warm explorer "
                                             "visits split into server script and browser render time, same run")
    e2e.add_argument("--explorer-warm-visits", type=int, default=5, help="warm visits per size (default 5)")
    args = p.parse_args(argv)
    if args.end_to_end or args.explorer_warm:
        import scale_e2e

        out = {}
        if args.explorer_warm:
            out["explorer_warm"] = scale_e2e.explorer_warm([int(x) for x in args.explorer_warm.split(",")],
                                                           args.explorer_warm_visits)
        if args.end_to_end:
            out["end_to_end"] = {n: scale_e2e.end_to_end(
                n, args.seed, args.threads, args.e2e_keep, args.e2e_index, args.e2e_visits, args.e2e_dir,
                set(args.e2e_steps.split(",")) if args.e2e_steps else None) for n in (args.n or [100_000])}
        if args.json:
            atomic_write_text(args.json, json.dumps({**out, "args": vars(args)}, indent=1, default=str))
        return 0
    methods = set(args.methods.split(","))
    if methods - set(METHODS):
        p.error(f"unknown methods {sorted(methods - set(METHODS))}; choose from {METHODS}")
    import faiss

    faiss.omp_set_num_threads(1)
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} faiss=1; loadavg "
          f"{open('/proc/loadavg').read().split()[:3]}", flush=True)
    all_rows = []
    if args.map or args.map_gallery:
        print(f"\n{'class-level MAP (10-d, 10 classes)':<52}{'ours s':>9}{'peer s':>10}{'peer/us':>8}")
        all_rows += map_rows(tuple(int(x) for x in args.map.split(",") if x), args.map_gallery, args.map_queries,
                             seed=args.seed)
    for n in args.n or ([] if (args.map or args.map_gallery) else [100_000]):
        all_rows += data_rows(n, [k for k in args.data.split(",") if k in DATA_ROWS], args.seed,
                              ["." + f for f in args.load_formats.split(",")], args.data_zarr)
        if args.explorer and not args.explorer_skip_map:
            all_rows += explorer_map_rows(n, args.seed, args.explorer_umap_all, args.explorer_fit_points)
        if args.explorer:
            all_rows += explorer_draw_rows(n, args.seed, args.explorer_svg_max, args.explorer_draw_max)
        for name in ([] if args.no_search else [e for e in args.embeddings.split(",") if e and e != "none"]):
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
        atomic_write_text(args.json, json.dumps({"rows": all_rows, "args": vars(args)}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
