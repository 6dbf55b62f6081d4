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
        for name in args.embeddings.split(","):
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
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": all_rows, "args": vars(args)}, fh, indent=1, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
