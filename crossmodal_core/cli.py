"""Command line: ``python -m crossmodal_core <command> ...``.

Commands
--------
``evaluate``     folds x models -> table on stdout, JSON + CSV results (see :mod:`crossmodal_core.evaluate`)
``build-music``  build the embedded music21 sheet / lyrics / audio dataset
``train``        fit one model by name on a dataset and store it (``store.models_dir()``)
``project``      compute the 2-D maps (UMAP / PCA) the app's explorer shows, when missing
``prepare``      what ``make run`` calls: dataset, default models and projections, each only
                 when missing; a piece that fails is reported and the rest goes on

Examples::

    python -m crossmodal_core evaluate --data synthetic-vegas --models cca,ccca --folds 5
    python -m crossmodal_core evaluate --data features.h5 --zero-shot 0.3 --out zs.json
    python -m crossmodal_core evaluate --data music21 --models ugaar,cca --paired
    python -m crossmodal_core train --data synthetic-vegas --model ccca
    python -m crossmodal_core evaluate --data synthetic-vegas --models tnn-ccca --threads 1

Every command takes ``--threads N`` (see :mod:`crossmodal_core.runtime`).

Exit status: 0 on success, 1 when a model failed (the others' results are still written),
2 on bad arguments or unreadable data.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Sequence

__all__ = ["main", "build_parser"]

DEFAULT_MODELS = "cca,kcca,ccca,ckcca"
PREPARE_MODELS = ("ccca", "tnn-ccca", "ugaar", "cca")


class CLIError(Exception):
    """A user-facing error: printed without a traceback, exit status 2."""


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _csv_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    return items or None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1), got {value}")
    return value


# ====================================================================== parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m crossmodal_core",
                                     description="crossmodal: cross-modal embedding learning and retrieval")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    ev = sub.add_parser("evaluate", help="evaluate models over folds; print the table, write JSON + CSV",
                        description="Evaluate models by class-level MAP (or, with --paired, instance-level "
                                    "Recall@K) over folds; print the table and write JSON + CSV.")
    ev.add_argument("--data", required=True,
                    help="dataset file (.npz/.h5, our format or the VEGAS/AVE layout), "
                         "'synthetic-vegas', 'synthetic-vegas-small' or 'music21'")
    ev.add_argument("--models", default=DEFAULT_MODELS,
                    help=f"comma-separated model names (default {DEFAULT_MODELS}); "
                         "known: cca,kcca,ccca,ckcca,dcca,cdcca,tnn-ccca,contrastive,ugaar")
    ev.add_argument("--folds", type=_positive_int, default=None,
                    help="k for class-balanced k-fold (default: the dataset's folds, else its "
                         "train/test split, else 5)")
    ev.add_argument("--split", action="store_true", help="use the dataset's predefined train/test split")
    ev.add_argument("--out", default=None, help="results JSON path (CSV written beside it); "
                                               "default assets/results/<dataset>[-zeroshot|-paired].json")
    ev.add_argument("--views", default=None, help="comma-separated view names (default: the first two; "
                                                  "--paired: sheet,lyrics,audio when present)")
    ev.add_argument("--label", default=None, help="label set defining relevance (default: the dataset's)")
    ev.add_argument("--zero-shot", type=_fraction, default=None, metavar="FRACTION",
                    help="hold out this fraction of the classes: train on seen, report unseen MAP")
    ev.add_argument("--unseen-classes", default=None,
                    help="comma-separated class indices to hold out (instead of --zero-shot)")
    ev.add_argument("--paired", action="store_true",
                    help="instance-level retrieval (true pair only): Recall@1/5/10, MRR, median rank")
    ev.add_argument("--seed", type=int, default=0, help="seed of folds, zero-shot classes, subsampling")
    ev.add_argument("--limit-train", type=_positive_int, default=None, metavar="N",
                    help="use at most N training rows per fold (quick runs)")
    ev.add_argument("--metric", choices=("cosine", "euclidean"), default="cosine")
    ev.add_argument("--param", action="append", default=[], metavar="[MODEL.]KEY=VALUE",
                    help="model parameter override, e.g. ccca.n_components=10 or epochs=5 (repeatable)")
    ev.add_argument("--no-progress", action="store_true", help="no progress bar")

    bm = sub.add_parser("build-music", help="build the embedded music21 sheet/lyrics/audio dataset")
    bm.add_argument("--out", default=None, help="output folder (default assets/datasets/music21_lyrics)")
    bm.add_argument("--collections", default=None, help="comma-separated subset of bach,trecento,songs")
    bm.add_argument("--limit", type=_positive_int, default=None, help="use only this many works")
    bm.add_argument("--jobs", type=_positive_int, default=2, help="worker processes (default 2)")

    tr = sub.add_parser("train", help="fit one model on a dataset and store it")
    tr.add_argument("--data", required=True, help="as for evaluate")
    tr.add_argument("--model", required=True, help="model name (cca, ccca, tnn-ccca, ugaar, ...)")
    tr.add_argument("--views", default=None, help="comma-separated views (default: the model's, else the first two)")
    tr.add_argument("--label", default=None, help="label set for supervised models (default: the dataset's)")
    tr.add_argument("--rows", choices=("train", "all"), default="train",
                    help="fit on the training split (default; all rows when there is no split) or all rows")
    tr.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="model parameter (repeatable)")
    tr.add_argument("--out", default=None, help="model file (.npz linear, .pt deep); default under the models dir")
    tr.add_argument("--seed", type=int, default=0, help="dataset seed for synthetic data")

    pj = sub.add_parser("project", help="compute the explorer's 2-D maps for trained models (when missing)")
    pj.add_argument("--data", default=None, help="app dataset id ('music', 'synthetic:vegas-small', "
                                                 "'file:PATH'); default: the first the app lists")
    pj.add_argument("--method", choices=("umap", "pca"), default="umap")
    pj.add_argument("--pair", default=None, help="comma-separated two views (default: the app's first pair)")
    pj.add_argument("--label", default=None, help="label set (default: the dataset's)")

    pr = sub.add_parser("prepare", help="build what the app needs when missing (dataset, models, projections)")
    pr.add_argument("--models", default=",".join(PREPARE_MODELS), help="models to train when missing")
    pr.add_argument("--jobs", type=_positive_int, default=2, help="worker processes for the dataset build")
    pr.add_argument("--limit", type=_positive_int, default=None, help="build the music dataset from this many works")
    pr.add_argument("--no-projections", action="store_true", help="skip the UMAP projections")
    for command in sub.choices.values():
        command.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                             help="cap BLAS / OpenMP / torch threads (default: every core; 1 is faster "
                                  "when other jobs share the cores)")
    return parser


# ====================================================================== evaluate
def _load_data(spec: str, seed: int = 0):
    from crossmodal_core.data.dataset import DatasetError
    from crossmodal_core.evaluate import resolve_dataset

    try:
        return resolve_dataset(spec, seed=seed)
    except (DatasetError, FileNotFoundError, ImportError) as exc:
        raise CLIError(f"cannot load --data {spec!r}: {exc}") from None


def cmd_evaluate(args: argparse.Namespace) -> int:
    from crossmodal_core import evaluate as ev
    from crossmodal_core.models.registry import get_spec

    models = _csv_list(args.models)
    if not models:
        raise CLIError("--models is empty")
    try:
        models = [get_spec(m).name for m in models]
    except KeyError as exc:
        raise CLIError(str(exc.args[0])) from None
    if args.split and args.folds is not None:
        raise CLIError("--split and --folds exclude each other")
    if args.zero_shot is not None and args.unseen_classes is not None:
        raise CLIError("--zero-shot and --unseen-classes exclude each other")
    if args.paired and (args.zero_shot is not None or args.unseen_classes is not None):
        raise CLIError("--paired (instance-level) has no zero-shot variant")
    unseen = None
    if args.unseen_classes is not None:
        try:
            unseen = [int(c) for c in _csv_list(args.unseen_classes) or []]
        except ValueError:
            raise CLIError(f"--unseen-classes must be integers, got {args.unseen_classes!r}") from None
    if args.out is not None and Path(args.out).suffix.lower() != ".json":
        raise CLIError(f"--out must be a .json path (the CSV goes beside it), got {args.out}")
    ds = _load_data(args.data)
    views = _csv_list(args.views)
    for v in views or []:
        if v not in ds.views:
            raise CLIError(f"dataset {ds.name!r} has no view {v!r}; views: {ds.view_names}")
    if args.label is not None and args.label not in ds.labels:
        raise CLIError(f"dataset {ds.name!r} has no label set {args.label!r}; label sets: {ds.label_names}")
    try:
        params = ev.parse_model_params(args.param, models)
    except (ValueError, KeyError) as exc:
        raise CLIError(f"--param: {exc}") from None
    mode = "split" if args.split else "auto"
    paired = args.paired or not ds.labels
    _log(f"dataset {ds.name}: {ds.n_items} items, views {ds.view_names}"
         + ("  [SYNTHETIC]" if ds.is_synthetic else ""))
    try:
        if paired:
            results = ev.evaluate_paired(ds, models, views=views, mode=mode, n_folds=args.folds, seed=args.seed,
                                         limit_train=args.limit_train, metric=args.metric, model_params=params,
                                         progress=not args.no_progress)
            kind = "paired"
        else:
            results = ev.evaluate(ds, models, views=views, label=args.label, mode=mode, n_folds=args.folds,
                                  seed=args.seed, unseen_fraction=args.zero_shot, unseen_classes=unseen,
                                  limit_train=args.limit_train, metric=args.metric, model_params=params,
                                  progress=not args.no_progress)
            kind = "zeroshot" if results["protocol"]["kind"] == "zero-shot" else ""
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    out = Path(args.out) if args.out else ev.default_results_path(ds, kind)
    json_path, csv_path = ev.write_results(results, out)
    print(ev.format_table(results))
    _log(f"wrote {json_path} and {csv_path}")
    failed = {k: r["error"] for k, r in results["models"].items() if r.get("error")}
    for k, err in failed.items():
        _log(f"model {k} failed: {err}")
    return 1 if failed else 0


# ====================================================================== build-music
def cmd_build_music(args: argparse.Namespace) -> int:
    try:
        from crossmodal_core.data.music import build_music_dataset
    except ImportError as exc:
        raise CLIError(f"the music dataset builder is unavailable: {exc}") from None
    start = time.perf_counter()
    ds = build_music_dataset(args.out, collections=_csv_list(args.collections), limit=args.limit, jobs=args.jobs)
    _log(f"built {getattr(ds, 'name', 'music dataset')}: {getattr(ds, 'n_items', '?')} items "
         f"in {time.perf_counter() - start:.0f} s")
    return 0


# ====================================================================== train
def _parse_params(items: Sequence[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        if "=" not in item:
            raise CLIError(f"--param {item!r} must look like key=value")
        key, raw = item.split("=", 1)
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def cmd_train(args: argparse.Namespace) -> int:
    import numpy as np

    from crossmodal_core import store
    from crossmodal_core.models import registry

    try:
        spec = registry.get_spec(args.model)
    except KeyError as exc:
        raise CLIError(str(exc.args[0])) from None
    ds = _load_data(args.data, seed=args.seed)
    views = _csv_list(args.views) or (list(spec.views) if spec.views else
                                      [v for v in ds.view_names if ds.views[v].ndim == 2][:2])
    for v in views:
        if v not in ds.views:
            raise CLIError(f"dataset {ds.name!r} has no view {v!r}; views: {ds.view_names}")
    label = args.label or ds.default_label
    if spec.supervised and label is None:
        raise CLIError(f"{spec.display} is supervised but dataset {ds.name!r} has no labels")
    if label is not None and label not in ds.labels:
        raise CLIError(f"dataset {ds.name!r} has no label set {label!r}; label sets: {ds.label_names}")
    rows = np.arange(ds.n_items)
    if args.rows == "train" and ds.split is not None:
        rows = np.nonzero(ds.split == "train")[0]
    params = _parse_params(args.param)
    try:
        model = registry.make_model(spec.name, **params)
    except (ImportError, TypeError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    y = ds.label(label)[rows] if spec.supervised else None
    _log(f"training {spec.display} on {len(rows)} rows of {ds.name} (views {views})")
    start = time.perf_counter()
    model.fit([ds.views[v][rows] for v in views], y)
    seconds = time.perf_counter() - start
    out = Path(args.out) if args.out else registry.model_path(
        spec.name, ds.name, {"views": views, "label": label, "rows": args.rows, **params})
    extra = {"dataset": ds.name, "views": views, "label": label, "rows": args.rows,
             "n_train": int(len(rows)), "fit_seconds": seconds, "params": params}
    path = registry.save_model(model, out, name=spec.name, extra=extra)
    store.atomic_write_json(Path(path).with_suffix(".info.json"), {"model": spec.name, "path": str(path), **extra})
    _log(f"{spec.display} fitted in {seconds:.1f} s; saved to {path}")
    print(path)
    return 0


# ====================================================================== project / prepare (through the app's data layer)
def _app_dataset(dataset_id: str | None):
    from crossmodal_core import appdata

    entries = appdata.list_datasets()
    if not entries:
        raise CLIError("no dataset is available")
    if dataset_id is None:
        dataset_id = entries[0].id
    try:
        return appdata.load_dataset(dataset_id)
    except KeyError:
        raise CLIError(f"no app dataset {dataset_id!r}; available: {[e.id for e in entries]}") from None


def _progress_printer(prefix: str):
    from tqdm.auto import tqdm

    bar = tqdm(total=100, desc=prefix, file=sys.stderr, dynamic_ncols=True, leave=True)

    def update(fraction: float, message: str) -> None:
        bar.n = int(round(100 * max(0.0, min(1.0, fraction))))
        bar.set_postfix_str(message[:60], refresh=True)

    update.close = bar.close  # type: ignore[attr-defined]
    return update


def _project_missing(app, pair: tuple[str, str], label: str, method: str) -> tuple[int, int]:
    """Compute the explorer's projections that are missing; returns (computed, present)."""
    from crossmodal_core import appdata

    models = [None] + [m for m in appdata.list_trained(app) if set(pair) <= set(m.views)]
    computed = present = 0
    for model in models:
        title = "original features" if model is None else model.title
        # (a missing PCA is computed by panel_projection itself, so only UMAP is checked first)
        if method != "pca" and appdata.panel_projection(app, model, pair, method, label) is not None:
            present += 1
            _log(f"[project] {method} of {title}: already present, skipped")
            continue
        bar = _progress_printer(f"{method} {title}")
        try:
            appdata.compute_panel_projection(app, model, pair, method, label, progress=bar)
        finally:
            bar.close()
        computed += 1
    return computed, present


def cmd_project(args: argparse.Namespace) -> int:
    from crossmodal_core import appdata

    app = _app_dataset(args.data)
    pair = tuple(_csv_list(args.pair) or appdata.view_pairs(app.dataset)[0])
    if len(pair) != 2:
        raise CLIError(f"--pair needs two views, got {pair}")
    label = args.label or appdata.label_choices(app.dataset)[0]
    computed, present = _project_missing(app, pair, label, args.method)
    _log(f"[project] {computed} computed, {present} already present")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    """Each step is skipped when its output exists and never stops the next step."""
    from crossmodal_core import store

    problems: list[str] = []
    music_dir = store.datasets_dir() / "music21_lyrics"

    # 1. the default dataset
    # build_info.json is written last by the builder: without it a build was interrupted
    if all((music_dir / f).is_file() for f in ("dataset.npz", "fragments.json", "build_info.json")):
        _log(f"[prepare] dataset: {music_dir} present, skipped")
    else:
        _log(f"[prepare] dataset: building the music dataset into {music_dir} (about 15 min on 2 cores)")
        try:
            from crossmodal_core.data.music import build_music_dataset

            build_music_dataset(music_dir, limit=args.limit, jobs=args.jobs)
        except Exception as exc:  # noqa: BLE001 -- the app still works on the synthetic set
            problems.append(f"music dataset: {type(exc).__name__}: {exc}")
            _log(f"[prepare] dataset: build failed ({type(exc).__name__}: {exc}); continuing without it")

    # 2. default models, 3. projections -- through the app's data layer so the app finds them
    try:
        from crossmodal_core import appdata
    except ImportError as exc:
        _log(f"[prepare] the app data layer is unavailable ({exc}); models and projections skipped")
        return 0
    wanted = _csv_list(args.models) or []
    datasets = [e.id for e in appdata.list_datasets() if e.kind in ("music", "synthetic")]
    # the first dataset that opens (music, else the synthetic set) gets the default models
    for dataset_id in datasets:
        try:
            app = appdata.load_dataset(dataset_id)
            pair = appdata.view_pairs(app.dataset)[0]
            label = appdata.label_choices(app.dataset)[0]
        except Exception as exc:  # noqa: BLE001
            problems.append(f"dataset {dataset_id}: {type(exc).__name__}: {exc}")
            _log(f"[prepare] cannot open {dataset_id}: {type(exc).__name__}: {exc}; trying the next one")
            continue
        _log(f"[prepare] models on {dataset_id} ({pair[0]}/{pair[1]}, label {label!r})")
        from crossmodal_core.models import registry

        for name in wanted:
            try:
                registry.model_class(name)
            except (KeyError, ImportError) as exc:
                problems.append(f"model {name}: {exc}")
                _log(f"[prepare] model {name}: unavailable ({exc}); skipped")
                continue
            if not appdata.missing_models(app, pair, label, [name]):
                _log(f"[prepare] model {name}: already trained, skipped")
                continue
            bar = _progress_printer(f"train {name}")
            try:
                appdata.train_model(app, name, pair, label, progress=bar)
            except Exception as exc:  # noqa: BLE001 -- log and go on with the next model
                problems.append(f"model {name}: {type(exc).__name__}: {exc}")
                _log(f"[prepare] model {name}: training failed ({type(exc).__name__}: {exc})")
                _log(traceback.format_exc(limit=3))
            finally:
                bar.close()
        if not args.no_projections:
            try:
                computed, present = _project_missing(app, pair, label, "umap")
                _log(f"[prepare] projections: {computed} computed, {present} already present")
            except Exception as exc:  # noqa: BLE001
                problems.append(f"projections: {type(exc).__name__}: {exc}")
                _log(f"[prepare] projections failed ({type(exc).__name__}: {exc}); the app falls back to PCA")
        break
    if problems:
        _log("[prepare] finished with problems:\n  - " + "\n  - ".join(problems))
    else:
        _log("[prepare] everything is in place")
    return 0


# ====================================================================== entry point
COMMANDS = {
    "evaluate": cmd_evaluate,
    "build-music": cmd_build_music,
    "train": cmd_train,
    "project": cmd_project,
    "prepare": cmd_prepare,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads is not None:
        from crossmodal_core.runtime import limit_threads

        limit_threads(args.threads)
    try:
        return COMMANDS[args.command](args)
    except CLIError as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
