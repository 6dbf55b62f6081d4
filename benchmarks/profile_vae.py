"""Why a VAE epoch costs ~3.6 DCCA epochs (issue 11): measure it.

Usage::

    python benchmarks/profile_vae.py --sizes 2000,8000 --threads 1

Three measurements on the same rows, in one process (CPU seconds, so other work on shared
cores does not enter the ratios):

1. multiply-accumulates per row of one forward pass, counted from the ``nn.Linear`` layers of
   the fitted networks (the VAE has encoders, a shared trunk, μ / log σ² heads, a classifier
   and two decoders back to 1024-d and 128-d; DCCA has two towers only);
2. CPU seconds per epoch of DCCA (its batch 1,000), the VAE at its reference batch 128, and
   the VAE at batch 1,000: the gap between the last two is the per-step overhead of 8x more
   optimiser steps;
3. ``torch.profiler``'s top operators by self CPU time over one VAE epoch at batch 128.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def linear_macs(module) -> int:
    """Multiply-accumulates per row of every ``nn.Linear`` in ``module`` (one pass each)."""
    import torch

    return sum(m.in_features * m.out_features for m in module.modules() if isinstance(m, torch.nn.Linear))


def cpu_epoch(make, views, y, epochs: int) -> tuple[float, object]:
    model = make(epochs)
    start = time.process_time()
    model.fit(views, y)
    return (time.process_time() - start) / epochs, model


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="2000,8000", help="training rows, comma-separated")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from crossmodal_core.data.synthetic import make_synthetic_av
    from crossmodal_core.models.deep import DCCA, CrossModalVAE

    sizes = [int(s) for s in args.sizes.split(",")]
    ds = make_synthetic_av(n_train=max(sizes), n_test=100, seed=0)
    train = ds.split == "train"
    xa, xv, y = ds.views["audio"][train], ds.views["visual"][train], ds.labels["class"][train]
    makers = {
        "DCCA (batch 1000)": lambda e: DCCA(epochs=e, progress=False, random_state=0),
        "VAE (batch 128)": lambda e: CrossModalVAE(epochs=e, progress=False, random_state=0),
        "VAE (batch 1000)": lambda e: CrossModalVAE(epochs=e, batch_size=1000, progress=False, random_state=0),
    }
    for make in makers.values():  # warm-up: thread pools and allocator, outside every timing
        make(1).fit([xa[:300], xv[:300]], y[:300])
    print(f"{args.threads} thread(s); CPU seconds per epoch (mean of {args.epochs}); x = ratio to DCCA at that size")
    for n in sizes:
        views = [xa[:n], xv[:n]]
        base = None
        for name, make in makers.items():
            sec, model = cpu_epoch(make, views, y[:n], args.epochs)
            base = base or sec
            steps = -(-n // model.batch_size)
            print(f"  n={n:>6}  {name:<18} {sec:7.3f} s  x{sec / base:4.2f}  steps/epoch {steps:>4}  "
                  f"params {n_params(model.module_):>9,}  forward MACs/row {linear_macs(model.module_):>9,}")
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        CrossModalVAE(epochs=1, progress=False, random_state=0).fit([xa[:sizes[0]], xv[:sizes[0]]], y[:sizes[0]])
    print(f"one VAE epoch at n={sizes[0]} under torch.profiler (its own overhead inflates the total):")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
