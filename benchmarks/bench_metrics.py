"""Speed and memory of crossmodal_core.metrics at VEGAS scale, against naive references.

Embeddings are synthetic (seeded class centres + Gaussian noise, 10 classes), shaped like
learned shared spaces: 128-d (e.g. DCCA/contrastive outputs) and 10-d (C-CCA / TNN-C-CCA
with k = 10). Timings are wall-clock best-of-N; on a shared machine they are inflated.

Rows:
- ``map_both_directions`` at 5,620 x 5,620 (VEGAS test split) and 22,483 x 22,483 (train
  split size), with peak traced memory (tracemalloc, numpy allocations included) in a
  separate run so tracing does not distort the timing.
- reference 1: a per-query ``sklearn.metrics.average_precision_score`` loop, timed on a
  subset of queries and extrapolated to all queries of both directions (ratio printed);
  the subset's APs are also compared with ours.
- reference 2: the obvious vectorised numpy version (full similarity matrix, stable
  argsort of every row, cumsum), same size, both directions.

Usage: ``python benchmarks/bench_metrics.py [--quick]`` (``--quick`` skips 22,483).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))

from sklearn.metrics import average_precision_score  # noqa: E402

from crossmodal_core import metrics as M  # noqa: E402


def embeddings(n: int, d: int, n_classes: int = 10, noise: float = 1.6, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    centres = rng.standard_normal((n_classes, d))
    scale = 1.0 / np.sqrt(d)  # same class separation whatever d is
    x = (centres[labels] + noise * rng.standard_normal((n, d))) * scale
    y = (centres[labels] + noise * rng.standard_normal((n, d))) * scale
    return x.astype(np.float32), y.astype(np.float32), labels


def best_of(fn, repeats: int):
    """Best wall seconds, the CPU seconds of that run, and the value.

    CPU time is reported too because this machine is shared: with one BLAS thread it is
    what the wall time would be on an idle core (contention still inflates it somewhat).
    """
    best, best_cpu, value = float("inf"), float("inf"), None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        value = fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if wall < best:
            best, best_cpu = wall, cpu
    return best, best_cpu, value


def peak_traced_mb(fn) -> float:
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1024**2


def naive_numpy_map(x, y, labels):
    """Full matrix, stable argsort per row, cumsum: the textbook vectorised version."""
    out = []
    for q, g in ((x, y), (y, x)):
        s = M.similarity(q, g)
        order = np.argsort(-s, axis=1, kind="stable")
        rel = labels[order] == labels[:, None]
        hits = np.cumsum(rel, axis=1)
        ranks = np.arange(1, s.shape[1] + 1)
        out.append(float((((hits / ranks) * rel).sum(axis=1) / rel.sum(axis=1)).mean()))
    return tuple(out)


def sklearn_loop_seconds(x, y, labels, n_sub: int):
    """Seconds per query of the sklearn per-query loop, and max |AP difference| with ours."""
    # the first rows (labels are random): an aligned slice gets bit-identical scores, see metrics
    idx = np.arange(min(n_sub, len(x)))
    s = M.similarity(x[idx], y)
    t0 = time.perf_counter()
    ref = np.array([average_precision_score(labels == labels[i], row) for i, row in zip(idx, s)])
    per_query = (time.perf_counter() - t0) / n_sub
    ours = M.average_precision(x, y, labels, labels)[idx]
    return per_query, float(np.abs(ref - ours).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 22,483 x 22,483 rows")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sklearn-subset", type=int, default=200)
    args = parser.parse_args()

    cases = [(5620, 128), (5620, 10)]
    if not args.quick:
        cases += [(22483, 10), (22483, 128)]

    print(f"numpy {np.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"default chunk rows: 5,620 -> {M.default_chunk_size(5620)}, 22,483 -> {M.default_chunk_size(22483)}")
    header = (f"{'n x n':>15} {'d':>4} {'MAP x->y':>9} {'MAP y->x':>9} {'ours s':>8} {'cpu s':>7} {'peak MB':>8} "
              f"{'sklearn s*':>10} {'ratio':>7} {'|dAP|':>8} {'argsort s':>9} {'ratio':>6}")
    print(header)
    print("-" * len(header))
    for n, d in cases:
        x, y, labels = embeddings(n, d)
        repeats = args.repeats if n <= 6000 else 1
        seconds, cpu, (fwd, bwd) = best_of(lambda: M.map_both_directions(x, y, labels), repeats)
        peak = peak_traced_mb(lambda: M.map_both_directions(x, y, labels))
        per_query, diff = sklearn_loop_seconds(x, y, labels, args.sklearn_subset)
        sklearn_total = per_query * 2 * n  # extrapolated: all queries, both directions
        if n <= 6000:
            naive_s, _, naive_maps = best_of(lambda: naive_numpy_map(x, y, labels), 1)
            assert abs(naive_maps[0] - fwd) < 1e-9 and abs(naive_maps[1] - bwd) < 1e-9, (naive_maps, fwd, bwd)
            naive_txt = f"{naive_s:9.2f} {naive_s / seconds:6.1f}"
        else:
            naive_txt = f"{'(skip)':>9} {'':>6}"  # its 22,483^2 matrices need ~10 GB
        print(f"{n:>7,} x {n:<6,} {d:>4} {fwd:9.4f} {bwd:9.4f} {seconds:8.2f} {cpu:7.2f} {peak:8.0f} "
              f"{sklearn_total:10.1f} {sklearn_total / seconds:7.0f} {diff:8.1e} {naive_txt}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("-" * len(header))
    print("ours s / cpu s: map_both_directions wall and CPU time (both directions, best of repeats); "
          "peak MB: tracemalloc peak of one call")
    print(f"sklearn s*: per-query average_precision_score loop on {args.sklearn_subset} queries, extrapolated "
          "to all queries both directions; ratio = sklearn / ours; |dAP| = max difference on that subset "
          "(above 1e-12 only where a relevant and an irrelevant item tie: sklearn scores a tie as one threshold)")
    print("argsort s: full-matrix stable argsort + cumsum, both directions; ratio = argsort / ours")
    print(f"process peak RSS (all rows, includes the embeddings and the naive reference): {rss:.0f} MB")


if __name__ == "__main__":
    main()
