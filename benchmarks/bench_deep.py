"""Deep models on the VEGAS-shaped synthetic set: seconds per epoch, peak memory, MAP vs C-CCA.

Usage::

    python benchmarks/bench_deep.py                      # every model, default settings
    python benchmarks/bench_deep.py --models tnn-ccca,ccca --threads 2
    python benchmarks/bench_deep.py --n-train 5000 --epochs 3   # quick look
    python benchmarks/bench_deep.py --models dcca,acmr,ugach,agah,ucal,sdcca,vae --epochs 2 --threads 1
    python benchmarks/bench_deep.py --models dcca,lstm-ccca,attention,transformer --epochs 1 --threads 1
    python benchmarks/bench_deep.py --score-image --epochs 2 --threads 1           # real score images
    python benchmarks/bench_deep.py --score-image --audio audio_mel --epochs 2 --threads 1

The sequence models (``lstm-ccca``, ``attention``, ``transformer``) train on the set's
``audio_seq`` / ``visual_seq`` views (10 segments; the data then hold 1.3 GB of float32
sequences) and are printed beside a DCCA epoch and the reference code's published budget.

Each model runs in its own subprocess so that its peak resident memory (``ru_maxrss``) is its
own; the table gives the peak minus the resident size right before ``fit`` (the data and the
imports), i.e. what training added. ``tracemalloc`` would miss torch's C++ allocations.

Protocol: the predefined train / test split of ``make_synthetic_av`` (22,483 / 5,620 pairs).
A stratified 10 % of the **training** rows is held out as the validation split (validation MAP
per epoch, early stopping when ``--patience`` is given); the test rows are only used for the
final MAP, never for choosing anything. C-CCA is fitted on the same 90 %.
Target: TNN-C-CCA, 10 epochs, under 2 minutes on 2 cores. On a machine whose cores are shared
with other work, use ``--threads 1``: two OpenMP threads on oversubscribed cores spin-wait and
ran several times slower here than one.

Score images (``--score-image``, issue 12): the embedded music dataset's ``score_image``
raster ``(n, 1, H, W)`` against audio (``--audio audio``: the flat 192-d features through an
MLP; ``audio_mel``: the log-mel excerpt through a second CNN tower), fold 0 of its
work-grouped folds (10 % of the training rows as validation), instance-level R@1 / MRR on the
test fold (the pool: every test-fold item). Seconds per epoch wall and CPU for the image
models (``*-img``: DCCA, TNN-C-CCA network-first, the contrastive model, UGAAR with the image
as its sheet view) beside CCA on the fixed ``score_image_pix`` descriptor.

Issue-11 models (``--models dcca,acmr,acmr-simple,ucal,ugach,agah,sdcca,vae --epochs 2``): the
second table gives each one's seconds per epoch (wall and CPU) as a multiple of DCCA's, our
default epochs and the reference code's published budget. Target: within 2x a DCCA epoch,
except where the method's design costs more: ACMR / UCAL take the reference's 64-row
batches (316 optimiser steps per epoch against DCCA's 20), UGACH scores a pool of n/50
candidates per query batch through G in 1 + ``g_steps`` passes for both directions (and
pretrains D and builds its kNN graph in the first epoch), AGAH back-propagates twice through
two WGAN-GP critics per batch and forms the B^3 triplet-all cube. Compare on CPU seconds
when the cores are shared: wall time then measures the other work.

The VAE's ~3.6x a DCCA epoch is its design (``benchmarks/profile_vae.py``, one thread, CPU
seconds, warm-up excluded): per row it does 1,254,016 multiply-adds forward against DCCA's
431,104 (2.91x: 512-wide encoders, a shared trunk, mu / log-variance heads, a classifier and
two decoders back to 1,024-d and 128-d, against two 256-wide towers) and has 1,256,906
parameters against 432,148. Measured at 8,000 rows: DCCA 0.552 s, VAE at the reference's
batch 128 1.790 s (x3.24), VAE at DCCA's batch 1,000 1.663 s (x3.01); at 2,000 rows x3.19 and
x2.66. So ~2.9x is the arithmetic and the rest is the 8x more Adam steps of batch 128 (under
``torch.profiler``, one epoch at 2,000 rows: matrix products (mm, addmm) 62 % of self CPU
time, the Adam step 13 %).

Two-thread figures: not measured in the issue-11 session; the two cores were shared by six
engineers (load 10-15), where a two-thread timing measures the other work, not the model.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MODELS = {
    # name: (class path, default params)
    "ccca": ("crossmodal_core.models.linear:ClusterCCA", {"n_components": 9}),
    "tnn-ccca": ("crossmodal_core.models.deep:TNNClusterCCA", {}),  # semi-hard mining
    "tnn-ccca-batchall": ("crossmodal_core.models.deep:TNNClusterCCA", {"mining": "batch-all"}),
    "tnn-ccca-batchhard": ("crossmodal_core.models.deep:TNNClusterCCA", {"mining": "batch-hard"}),
    "tnn-ccca-netfirst": ("crossmodal_core.models.deep:TNNClusterCCA", {"order": "network-first"}),
    "dcca": ("crossmodal_core.models.deep:DCCA", {}),
    "cdcca": ("crossmodal_core.models.deep:ClusterDCCA", {}),
    "contrastive": ("crossmodal_core.models.deep:ContrastiveAligner", {}),
    # issue 11, flat features
    "acmr": ("crossmodal_core.models.deep:ACMR", {}),
    "acmr-simple": ("crossmodal_core.models.deep:ACMR", {"variant": "simple"}),
    "ucal": ("crossmodal_core.models.deep:UCAL", {}),
    "ugach": ("crossmodal_core.models.deep:UGACH", {}),
    "agah": ("crossmodal_core.models.deep:AGAH", {}),
    "sdcca": ("crossmodal_core.models.deep:SupervisedDCCA", {}),
    "vae": ("crossmodal_core.models.deep:CrossModalVAE", {}),
    # sequence models: trained on audio_seq / visual_seq (10 segments), the set made with sequences=True
    "lstm-ccca": ("crossmodal_core.models.deep:LSTMClusterCCA", {}),
    "attention": ("crossmodal_core.models.deep:ChunkAttentionCCA", {}),
    "transformer": ("crossmodal_core.models.deep:CrossModalTransformer", {}),
}
SEQUENCE_MODELS = ("lstm-ccca", "attention", "transformer")
#: score-image models (issue 12): name -> (class path, params); "cca-pix" is the linear baseline
SCORE_IMAGE_MODELS = {
    "cca-pix": ("crossmodal_core.models.linear:CCA", {"n_components": 10, "reg": 1e-3}),
    "dcca-img": ("crossmodal_core.models.deep:DCCA", {"n_components": 10, "batch_size": 500}),
    "tnn-ccca-img": ("crossmodal_core.models.deep:TNNClusterCCA", {"order": "network-first"}),
    "contrastive-img": ("crossmodal_core.models.deep:ContrastiveAligner", {}),
    "ugaar-img": ("crossmodal_core.models.deep:UGAAR", {"patience": None}),
}
#: the reference code's / paper's published training budget (REFERENCE-MODELS.md), beside our
#: default: (epochs or None, what the reference states)
REFERENCE_BUDGET = {
    "dcca": (50, "ZenzenDatabase/CMR training_model: 50 epochs, batch 200, RMSprop"),
    "acmr": (50, "50 ep, batch 64"),
    "acmr-simple": (200, "200 ep, batch 64"),
    "ucal": (None, "none published"),
    "ugach": (None, "30 rounds, batch 1, hidden 8192"),
    "agah": (300, "300 ep, batch 128, hidden 4096"),
    "sdcca": (None, "batch 200 (epochs not given)"),
    "vae": (500, "500 ep, batch 128"),
    "lstm-ccca": (50, "ZenzenDatabase/CMR trained_model: 50 epochs, batch 200, RMSprop"),
    "attention": (None, "none published (poster only)"),
    "transformer": (None, "none published (grant's next step)"),
}
FLAT_MODELS = "dcca,acmr,acmr-simple,ucal,ugach,agah,sdcca,vae"
DEFAULT_MODELS = "ccca,tnn-ccca,tnn-ccca-batchall,tnn-ccca-batchhard,tnn-ccca-netfirst,dcca,cdcca,contrastive"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _default_epochs(cls, params: dict):
    """The model's own default epochs (ACMR resolves ``epochs=None`` by variant)."""
    model = cls(**params)
    return getattr(model, "_epochs", None) or getattr(model, "epochs", None)


def _build_model(spec: tuple[str, dict], seed: int, epochs: int | None = None,
                 patience: int | None = None) -> tuple[object, bool, dict]:
    """The estimator of a ``"module:Class", params`` entry; deep models run on the CPU, quiet,
    seeded, with ``epochs`` / ``patience`` when given. Returns ``(model, is_deep, params)``."""
    import importlib

    path, params = spec
    module, cls_name = path.split(":")
    cls = getattr(importlib.import_module(module), cls_name)
    params = dict(params)
    deep = "deep" in module
    if deep:
        params.update(progress=False, random_state=seed, device="cpu")
        if epochs is not None:
            params["epochs"] = epochs
        if patience is not None:
            params["patience"] = patience
    return cls(**params), deep, params


def run_one(name: str, n_train: int, n_test: int, epochs: int | None, patience: int | None, seed: int) -> dict:
    """Fit one model in this process and return its measurements."""

    import numpy as np
    import torch

    from crossmodal_core.data.synthetic import make_synthetic_av
    from crossmodal_core.metrics import map_both_directions

    sequences = name in SEQUENCE_MODELS
    ds = make_synthetic_av(n_train=n_train, n_test=n_test, seed=seed, sequences=sequences)
    split = np.asarray(ds.split)
    suffix = "_seq" if sequences else ""
    audio, visual, y = ds.view("audio" + suffix), ds.view("visual" + suffix), ds.label(ds.default_label)
    train, test = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")
    rng = np.random.default_rng(seed)
    val = np.concatenate([rng.permutation(train[y[train] == c])[: max(1, int(0.1 * np.sum(y[train] == c)))]
                          for c in np.unique(y[train])])
    fit_rows = np.setdiff1d(train, val)

    model, deep, params = _build_model(MODELS[name], seed, epochs, patience)
    fit_views = [audio[fit_rows], visual[fit_rows]]
    rss_before = _rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    epoch_cpu: list[float] = []
    last = [c0]

    def on_epoch(record: dict) -> None:
        # CPU seconds of each epoch (all threads): unlike wall time, robust to shared cores
        now = time.process_time()
        epoch_cpu.append(now - last[0])
        last[0] = now

    if deep:
        model.fit(fit_views, y[fit_rows], validation=([audio[val], visual[val]], y[val]), callback=on_epoch)
    else:
        model.fit(fit_views, y[fit_rows])
    fit_s = time.perf_counter() - t0
    cpu_s = time.process_time() - c0  # all threads: robust to other processes sharing the cores
    peak = _rss_mb()
    za, zv = model.transform([audio[test], visual[test]])
    test_xy, test_yx = map_both_directions(za, zv, y[test])
    hamming = None
    if "hamming" in getattr(model, "retrieval_metrics", ()):
        hamming = list(map_both_directions(za, zv, y[test], metric="hamming"))
    va, vv = model.transform([audio[val], visual[val]])
    val_xy, val_yx = map_both_directions(va, vv, y[val])
    history = getattr(model, "history_", [])
    epoch_s = [h["seconds"] for h in history]
    return {
        "model": name,
        "params": {k: v for k, v in params.items() if k not in ("progress", "device")},
        "threads": torch.get_num_threads(),
        "n_fit": int(len(fit_rows)),
        "epochs_run": len(history),
        "best_epoch": getattr(model, "best_epoch_", None),
        "fit_s": fit_s,
        "fit_cpu_s": cpu_s,
        "s_per_epoch": float(np.mean(epoch_s)) if epoch_s else None,
        # the first epoch also carries the set-up before it (UGACH's graph and D pretraining)
        "cpu_s_per_epoch": float(np.mean(epoch_cpu[1:] or epoch_cpu)) if epoch_cpu else None,
        "cpu_s_first_epoch": epoch_cpu[0] if epoch_cpu else None,
        "added_rss_mb": peak - rss_before,
        "peak_rss_mb": peak,
        "val_map": [val_xy, val_yx],
        "test_map": [test_xy, test_yx],
        "test_map_hamming": hamming,
        "epochs_default": _default_epochs(type(model), MODELS[name][1]),
    }


def run_score_image(name: str, audio_view: str, epochs: int | None, seed: int) -> dict:
    """One score-image model on fold 0 of the music dataset, in this process."""

    import numpy as np

    from crossmodal_core.data.catalog import open_dataset
    from crossmodal_core.evaluate import paired_metrics
    from crossmodal_core.features.image_descriptors import pixel_blocks

    ds = open_dataset("music21").dataset
    if "score_image" not in ds.views:
        raise SystemExit(f"the music dataset has no score_image view (views: {ds.view_names}); rebuild it")
    folds = np.asarray(ds.folds)
    train, test = np.flatnonzero(folds != 0), np.flatnonzero(folds == 0)
    rng = np.random.default_rng(seed)
    val = np.sort(rng.choice(train, size=len(train) // 10, replace=False))
    fit_rows = np.setdiff1d(train, val)
    y = ds.label(ds.default_label)
    image = ds.view("score_image") if name != "cca-pix" else pixel_blocks(ds.view("score_image"))
    names = ["score_image", audio_view]
    arrays = [image, ds.view(audio_view)]
    if name == "ugaar-img":
        names.insert(1, "lyrics")
        arrays.insert(1, ds.view("lyrics"))
    model, deep, _ = _build_model(SCORE_IMAGE_MODELS[name], seed, epochs)
    epoch_cpu: list[float] = []
    last = [time.process_time()]

    def on_epoch(record: dict) -> None:
        now = time.process_time()
        epoch_cpu.append(now - last[0])
        last[0] = now

    t0, c0 = time.perf_counter(), time.process_time()
    last[0] = c0
    fit_views = [a[fit_rows] for a in arrays]
    if deep:
        model.fit(fit_views, y[fit_rows], validation=([a[val] for a in arrays], None), callback=on_epoch)
    else:
        model.fit(fit_views)
    fit_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    z = model.transform([a[test] for a in arrays])
    zi, za = z[0], z[-1]
    history = getattr(model, "history_", [])
    return {
        "model": name, "audio": audio_view, "n_fit": int(len(fit_rows)), "n_test": int(len(test)),
        "image_shape": list(ds.view("score_image").shape[1:]), "epochs_run": len(history),
        "fit_s": fit_s, "fit_cpu_s": cpu_s,
        "s_per_epoch": float(np.mean([h["seconds"] for h in history])) if history else None,
        "cpu_s_per_epoch": float(np.mean(epoch_cpu)) if epoch_cpu else None,
        "image_to_audio": paired_metrics(zi, za), "audio_to_image": paired_metrics(za, zi),
    }


def print_score_image_table(rows: list[dict], threads: int) -> None:
    if not rows:
        return
    r0 = rows[0]
    print(f"\nScore images {tuple(r0['image_shape'])} vs {r0['audio']}: fold 0, {r0['n_fit']} fit rows, "
          f"pool {r0['n_test']} (the test fold), {threads} thread(s), CPU")
    print(f"{'model':<16} {'epochs':>6} {'s/epoch':>8} {'CPU s/ep':>8} {'fit s':>7} {'CPU s':>7} "
          f"{'i->a R@1':>8} {'i->a MRR':>8} {'a->i R@1':>8} {'a->i MRR':>8}")
    for r in rows:
        spe = f"{r['s_per_epoch']:.2f}" if r.get("s_per_epoch") is not None else "-"
        cpe = f"{r['cpu_s_per_epoch']:.2f}" if r.get("cpu_s_per_epoch") is not None else "-"
        ia, ai = r["image_to_audio"], r["audio_to_image"]
        print(f"{r['model']:<16} {r['epochs_run']:>6} {spe:>8} {cpe:>8} {r['fit_s']:>7.1f} {r['fit_cpu_s']:>7.1f} "
              f"{ia['R@1']:>8.3f} {ia['MRR']:>8.3f} {ai['R@1']:>8.3f} {ai['MRR']:>8.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=DEFAULT_MODELS, help=f"comma list from {sorted(MODELS)}")
    parser.add_argument("--threads", type=int, default=2, help="torch / BLAS threads per model")
    parser.add_argument("--n-train", type=int, default=22483)
    parser.add_argument("--n-test", type=int, default=5620)
    parser.add_argument("--epochs", type=int, default=None, help="override every deep model's epochs")
    parser.add_argument("--patience", type=int, default=None, help="early stopping on validation MAP")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this file")
    parser.add_argument("--from-json", type=Path, default=None, help="only print the table of a saved --json run")
    parser.add_argument("--score-image", action="store_true",
                        help=f"issue 12: score images of the music dataset; models from {sorted(SCORE_IMAGE_MODELS)}")
    parser.add_argument("--audio", default="audio", choices=("audio", "audio_mel"),
                        help="--score-image: the audio view (flat features or the log-mel excerpt)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # child mode
    args = parser.parse_args(argv)

    if args.one:
        import torch

        torch.set_num_threads(args.threads)
        if args.score_image:
            print("RESULT " + json.dumps(run_score_image(args.one, args.audio, args.epochs, args.seed)))
        else:
            print("RESULT " + json.dumps(run_one(args.one, args.n_train, args.n_test, args.epochs, args.patience,
                                                 args.seed)))
        return 0

    if args.from_json:
        rows = json.loads(args.from_json.read_text())
        if rows and "image_to_audio" in rows[0]:
            print_score_image_table(rows, args.threads)
        else:
            print_table(rows, args)
        return 0
    catalog = SCORE_IMAGE_MODELS if args.score_image else MODELS
    if args.score_image and args.models == DEFAULT_MODELS:
        args.models = ",".join(SCORE_IMAGE_MODELS)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in catalog]
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {sorted(catalog)}")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads))
    rows = []
    for name in names:
        cmd = [sys.executable, __file__, "--one", name, "--threads", str(args.threads), "--n-train", str(args.n_train),
               "--n-test", str(args.n_test), "--seed", str(args.seed)]
        if args.epochs is not None:
            cmd += ["--epochs", str(args.epochs)]
        if args.patience is not None:
            cmd += ["--patience", str(args.patience)]
        if args.score_image:
            cmd += ["--score-image", "--audio", args.audio]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if proc.returncode != 0 or line is None:
            print(f"{name}: FAILED\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        row = json.loads(line[len("RESULT "):])
        rows.append(row)
        print(f"  done {name}: fit {row['fit_s']:.1f} s", file=sys.stderr, flush=True)
        if args.json:  # keep partial results of a long run
            args.json.write_text(json.dumps(rows, indent=2))
    if args.score_image:
        print_score_image_table(rows, args.threads)
    else:
        print_table(rows, args)
    return 0


def print_table(rows: list[dict], args: argparse.Namespace) -> None:
    """The results table: timings (wall and CPU), added memory, validation and test MAP."""
    base = next((r for r in rows if r["model"] == "ccca"), None)
    print(f"\nVEGAS-shaped synthetic set: {args.n_train} train ({rows[0]['n_fit'] if rows else '?'} fit + 10% "
          f"validation from train) / {args.n_test} test, {args.threads} threads, CPU")
    header = (f"{'model':<20} {'epochs':>6} {'s/epoch':>8} {'fit s':>7} {'CPU s':>7} {'+RSS MB':>8} "
              f"{'val a->v':>8} {'val v->a':>8} {'test a->v':>9} {'test v->a':>9} {'test mean':>9} {'vs C-CCA':>8}")
    print(header)
    print("-" * len(header))
    for r in rows:
        mean = sum(r["test_map"]) / 2
        ratio = f"{mean / (sum(base['test_map']) / 2):.3f}x" if base else "-"
        spe = f"{r['s_per_epoch']:.2f}" if r["s_per_epoch"] is not None else "-"
        epochs = f"{r['epochs_run']}" + (f"(b{r['best_epoch']})" if r.get("best_epoch") else "")
        cpu = f"{r['fit_cpu_s']:.1f}" if "fit_cpu_s" in r else "-"
        print(f"{r['model']:<20} {epochs:>6} {spe:>8} {r['fit_s']:>7.1f} {cpu:>7} {r['added_rss_mb']:>8.0f} "
              f"{r['val_map'][0]:>8.4f} {r['val_map'][1]:>8.4f} {r['test_map'][0]:>9.4f} {r['test_map'][1]:>9.4f} "
              f"{mean:>9.4f} {ratio:>8}")
    dcca = next((r for r in rows if r["model"] == "dcca"), None)
    flat = [r for r in rows if r["model"] in REFERENCE_BUDGET and r["model"] not in ("dcca",) + SEQUENCE_MODELS]
    if flat:
        print(f"\nIssue-11 models: seconds per epoch against DCCA's ({args.threads} threads), "
              "our default epochs and the reference's published budget")
        print(f"{'model':<14} {'s/epoch':>8} {'CPU s/ep':>8} {'x DCCA':>7} {'+RSS MB':>8} {'ours':>6}  "
              f"{'reference':<34} {'Hamming MAP a->v / v->a':>24}")
        for r in flat:
            # the ratio is of CPU seconds per epoch when measured (wall time on shared cores is noise)
            key = "cpu_s_per_epoch" if r.get("cpu_s_per_epoch") and dcca and dcca.get("cpu_s_per_epoch") else "s_per_epoch"
            ratio = (f"{r[key] / dcca[key]:.2f}" if dcca and dcca.get(key) and r.get(key) else "-")
            cpu_e = f"{r['cpu_s_per_epoch']:.2f}" if r.get("cpu_s_per_epoch") is not None else "-"
            ham = r.get("test_map_hamming")
            ham_s = f"{ham[0]:.4f} / {ham[1]:.4f}" if ham else "-"
            spe = f"{r['s_per_epoch']:.2f}" if r.get("s_per_epoch") is not None else "-"
            print(f"{r['model']:<14} {spe:>8} {cpu_e:>8} {ratio:>7} {r['added_rss_mb']:>8.0f} {str(r.get('epochs_default')):>6}  "
                  f"{REFERENCE_BUDGET[r['model']][1]:<34} {ham_s:>24}")
    for r in rows:
        if r["model"] not in ("dcca",) + SEQUENCE_MODELS or r["s_per_epoch"] is None:
            continue
        epochs, budget = REFERENCE_BUDGET[r["model"]]
        vs = (f", {r['s_per_epoch'] / dcca['s_per_epoch']:.1f}x a DCCA epoch"
              if dcca and dcca.get("s_per_epoch") and r is not dcca else "")
        full = f" -> {epochs} epochs = {epochs * r['s_per_epoch'] / 60:.1f} min" if epochs else ""
        print(f"{r['model']:<12} {r['s_per_epoch']:.1f} s/epoch{vs}; reference budget: {budget}{full}")
    tnn = next((r for r in rows if r["model"] == "tnn-ccca"), None)
    if tnn:
        target = 120.0
        cpu = tnn.get("fit_cpu_s")
        print(f"\nTNN-C-CCA {tnn['epochs_run']} epochs: {tnn['fit_s']:.1f} s wall "
              f"({tnn['fit_s'] / target:.2f}x of the 2-minute target, C-CCA fit included)"
              + (f"; {cpu:.1f} CPU s over {tnn['threads']} threads = {cpu / tnn['threads']:.1f} s "
                 f"if the cores were not shared ({cpu / tnn['threads'] / target:.2f}x)" if cpu else ""))
        if base:
            beats = all(t > b for t, b in zip(tnn["test_map"], base["test_map"]))
            print(f"TNN-C-CCA beats C-CCA in both directions: {beats} "
                  f"(a->v {tnn['test_map'][0]:.4f} vs {base['test_map'][0]:.4f}, "
                  f"v->a {tnn['test_map'][1]:.4f} vs {base['test_map'][1]:.4f})")


if __name__ == "__main__":
    raise SystemExit(main())
