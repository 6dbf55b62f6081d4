"""Command line: ``python -m crossmodal_core <command> ...``.

Commands
--------
``evaluate``     folds x models -> table on stdout, JSON + CSV results (see :mod:`crossmodal_core.evaluate`)
``build-music``  build the embedded music21 sheet / lyrics / audio dataset, or (``--scores DIR
                 --out OUT``) the same kind of dataset from a folder of your own scores
``train``        fit one model by name on a dataset and store it in the model store
                 (:mod:`crossmodal_core.models.trained`), where the app finds it
``project``      compute the 2-D maps (UMAP / PCA) the app's explorer shows, when missing
``report``       the results table in the paper's layout (text, Markdown, CSV, LaTeX, PNG, SVG, PDF),
                 from the committed results and your own runs (:mod:`crossmodal_core.tables`)
``figure``       draw the poster's figures (``poster``: the embedding maps; ``retrieval``: a query and
                 its top-K) from the stored models and projections as PDF, SVG or 300-dpi PNG
``prepare``      what ``make run`` calls: dataset, default models and projections, each only
                 when missing; a piece that fails is reported and the rest goes on
``convert``      stream a dataset file (ours or the VEGAS/AVE layout) into a chunked Zarr folder
                 whose views stay on disk when opened; ``evaluate`` / ``train`` take
                 ``--scheduler tcp://host:8786`` to compute the linear models' statistics on a
                 Dask cluster

Examples::

    python -m crossmodal_core evaluate --data synthetic-vegas --models cca,ccca --folds 5
    python -m crossmodal_core evaluate --data features.h5 --zero-shot 0.3 --out zs.json
    python -m crossmodal_core evaluate --data music21 --models ugaar,cca --paired
    python -m crossmodal_core train --data synthetic-vegas --model ccca
    python -m crossmodal_core evaluate --data synthetic-vegas --models tnn-ccca --threads 1
    python -m crossmodal_core report --format latex --out table.tex

Datasets are named by the ids of :mod:`crossmodal_core.data.catalog` (``music21``,
``synthetic-vegas``, ``synthetic-vegas-small``, ``file:<name>``, ``upload:<name>``) or by a
path the user types. Every command takes ``--threads N`` (see :mod:`crossmodal_core.runtime`)
and ``--debug`` (before or after the command).

Outputs are checked before any work: never a directory, never the input dataset file, never
an existing committed file under ``assets/`` unless ``--out`` names it. ``evaluate`` writes
only when at least one model succeeded, by default to ``<cache>/results/``.

Exit status: 0 on success; 1 when a model failed (the others' results are still written) or
on an internal error; 2 on a user error (bad arguments, unreadable data, unknown model, a fit
the data makes impossible). Errors are one line on stderr; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Sequence

__all__ = ["main", "build_parser"]

DEFAULT_MODELS = "cca,kcca,ccca,ckcca"
DATA_HELP = ("dataset id: 'music21', 'synthetic-vegas', 'synthetic-vegas-small', 'file:<name>' (a file in "
             "assets/datasets/), 'upload:<name>' (an uploaded file); or a path to a .npz/.h5 file "
             "(our format or the VEGAS/AVE layout)")
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


def _limit_train(text: str) -> "int | dict[str, int]":
    """``N`` or ``[N,]model=N,...`` (a per-model training-row cap; a bare ``N`` covers the rest)."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if len(items) == 1 and "=" not in items[0]:
        return _positive_int(items[0])
    out: dict[str, int] = {}
    for item in items:
        name, sep, value = item.rpartition("=")
        key = name.strip().lower() if sep else "*"
        if key in out:
            raise argparse.ArgumentTypeError(f"--limit-train names {key!r} twice")
        out[key] = _positive_int(value.strip())
    return out


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
    ev.add_argument("--data", required=True, help=DATA_HELP)
    ev.add_argument("--models", default=DEFAULT_MODELS,
                    help=f"comma-separated model names (default {DEFAULT_MODELS}), or 'all': every registry "
                         "model that the chosen views allow (the others are named on stderr and skipped)")
    ev.add_argument("--folds", type=_positive_int, default=None,
                    help="k for class-balanced k-fold (default: the dataset's folds, else its "
                         "train/test split, else 5)")
    ev.add_argument("--split", action="store_true", help="use the dataset's predefined train/test split")
    ev.add_argument("--out", default=None, help="results JSON path (CSV written beside it); default "
                                               "<cache>/results/<dataset>[-zeroshot|-paired].json "
                                               "(the committed assets/results/ only when named here)")
    ev.add_argument("--views", default=None, help="comma-separated view names (default: the first two; "
                                                  "--paired: sheet,lyrics,audio when present)")
    ev.add_argument("--label", default=None, help="label set defining relevance (default: the dataset's); with "
                                                  "--paired: supervised models train on it and MAP by it is added")
    ev.add_argument("--validation", type=_fraction, default=None, metavar="FRACTION",
                    help="--paired: hold out this share of each fold's training rows as the deep models' "
                         "validation split (early stopping; default none)")
    ev.add_argument("--zero-shot", type=_fraction, default=None, metavar="FRACTION",
                    help="hold out this fraction of the classes: train on seen, report unseen MAP")
    ev.add_argument("--unseen-classes", default=None,
                    help="comma-separated class indices to hold out (instead of --zero-shot)")
    ev.add_argument("--paired", action="store_true",
                    help="instance-level retrieval (true pair only): Recall@1/5/10, MRR, median rank")
    ev.add_argument("--seed", type=int, default=0, help="seed of folds, zero-shot classes, subsampling")
    ev.add_argument("--limit-train", type=_limit_train, default=None, metavar="N|MODEL=N,...",
                    help="use at most N training rows per fold (seeded subsample; quick runs or a compute "
                         "budget); per model: 'lstm-ccca=1000,ugach=2000' or with a default for the rest "
                         "'4000,lstm-ccca=1000'. Recorded in the results file")
    ev.add_argument("--metric", choices=("cosine", "euclidean"), default="cosine")
    ev.add_argument("--param", action="append", default=[], metavar="[MODEL.]KEY=VALUE",
                    help="model parameter override, e.g. ccca.n_components=10 or epochs=5 (repeatable)")
    ev.add_argument("--no-progress", action="store_true", help="no progress bar")

    bm = sub.add_parser("build-music", help="build the embedded music21 sheet/lyrics/audio dataset")
    bm.add_argument("--out", default=None, help="output folder (default assets/datasets/music21_lyrics)")
    bm.add_argument("--collections", default=None, help="comma-separated subset of bach,trecento,songs")
    bm.add_argument("--limit", type=_positive_int, default=None, help="use only this many works")
    bm.add_argument("--jobs", type=_positive_int, default=2, help="worker processes (default 2)")
    bm.add_argument("--scores", default=None, metavar="DIR",
                    help="build from your own MusicXML / MXL / MIDI / Humdrum files in DIR (one work per file) "
                         "instead of the music21 corpus; needs --out (the app lists datasets written to "
                         "$CROSSMODAL_HOME/music_datasets/<name>)")

    tr = sub.add_parser("train", help="fit one model on a dataset and store it")
    tr.add_argument("--data", required=True, help=DATA_HELP)
    tr.add_argument("--model", required=True, help="model name (cca, ccca, tnn-ccca, ugaar, ...)")
    tr.add_argument("--views", default=None, help="comma-separated views (default: the model's, else the first two)")
    tr.add_argument("--label", default=None, help="label set for supervised models (default: the dataset's)")
    tr.add_argument("--rows", choices=("train", "all"), default="train",
                    help="fit on the training rows of the store's protocol (default: the dataset's split, "
                         "else every fold but 0, else a seeded 80 %%) or on all rows")
    tr.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="model parameter (repeatable)")
    tr.add_argument("--out", default=None, help="model file (.npz linear, .pt deep) instead of the model store "
                                               "(default: the store, where the app finds it)")
    tr.add_argument("--seed", type=int, default=0, help="dataset seed for synthetic data")

    _add_figure_parser(sub)

    pj = sub.add_parser("project", help="compute the explorer's 2-D maps for trained models (when missing)")
    pj.add_argument("--data", default=None, help=DATA_HELP + "; default: the first the app lists")
    pj.add_argument("--method", choices=("umap", "pca"), default="umap")
    pj.add_argument("--pair", default=None, help="comma-separated two views (default: the app's first pair)")
    pj.add_argument("--label", default=None, help="label set (default: the dataset's)")

    pr = sub.add_parser("prepare", help="build what the app needs when missing (dataset, models, projections)")
    pr.add_argument("--models", default=",".join(PREPARE_MODELS), help="models to train when missing")
    pr.add_argument("--jobs", type=_positive_int, default=2, help="worker processes for the dataset build")
    pr.add_argument("--limit", type=_positive_int, default=None, help="build the music dataset from this many works")
    pr.add_argument("--no-projections", action="store_true", help="skip the UMAP projections")
    _add_report_parser(sub)
    cv = sub.add_parser("convert", help="convert a dataset file (ours, VEGAS/AVE layout) to chunked Zarr, streaming",
                        description="Copy a dataset into a chunked Zarr folder whose views stay on disk when "
                                    "opened; HDF5 inputs are copied row block by row block.")
    cv.add_argument("input", help="dataset file (.h5 / .hdf5 / .npz, ours or the VEGAS/AVE layout) or .zarr folder")
    cv.add_argument("output", help="the Zarr folder to write (<name>.zarr)")
    cv.add_argument("--chunk-mb", type=_positive_int, default=16, help="MiB per row chunk of a view (default 16)")
    for command in (ev, tr):  # the linear fits stream their statistics through a Dask cluster
        command.add_argument("--scheduler", default=None, metavar="ADDRESS",
                             help="dask.distributed scheduler (tcp://host:8786, or 'local' for a LocalCluster "
                                  "here): CCA / C-CCA / KCCA / C-KCCA compute their statistics block by block on "
                                  "its workers (a dataset on disk must be at the same path there)")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    for command in sub.choices.values():
        # also accepted after the command; SUPPRESS keeps the global value when absent
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show the traceback of an error")
        command.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                             help="cap BLAS / OpenMP / torch threads (default: every core; 1 is faster "
                                  "when other jobs share the cores)")
    return parser


# ====================================================================== datasets and outputs
def _open(spec: str, seed: int = 0):
    """A dataset by catalog id, or a path the user typed (``catalog.resolve(allow_path=True)``)."""
    from crossmodal_core.data import catalog
    from crossmodal_core.data.dataset import DatasetError

    try:
        return catalog.open_dataset(spec, seed=seed, allow_path=True)
    except (DatasetError, FileNotFoundError) as exc:
        raise CLIError(f"cannot load --data {spec!r}: {exc}") from None


ALL_MODELS = "all"


def _resolve_models(names: Sequence[str]):
    """Registry specs of ``names``; ``all`` (alone or among names) stands for every registry
    model, in registry order, duplicates dropped."""
    from crossmodal_core.models import registry

    expanded: list[str] = []
    for name in names:
        expanded += list(registry.MODEL_NAMES) if name.strip().lower() == ALL_MODELS else [name]
    try:
        specs = [registry.get_spec(m) for m in expanded]
    except KeyError as exc:
        raise CLIError(str(exc.args[0])) from None
    return list({s.name: s for s in specs}.values())


def _registry_name(name: str) -> str:
    """The registry name of ``name`` (aliases and display names accepted); KeyError when unknown."""
    from crossmodal_core.models import registry

    return registry.get_spec(name).name


def _applicable(spec, ds, views: Sequence[str] | None, paired: bool) -> str | None:
    """Why ``spec`` cannot run on ``ds`` with these views (None when it can): what ``--models
    all`` skips instead of failing. A model named on its own still runs and reports the error."""
    from crossmodal_core.models import trained

    if trained.is_sequence_model(spec):
        from crossmodal_core.evaluate import default_views

        base = list(views) if views else default_views(ds, paired)
        seq = [v if v.endswith("_seq") else f"{v}_seq" for v in base]
        have = [v for v in seq if v in ds.views and ds.views[v].ndim == 3]
        # class-level: both views need a sequence; paired: any two (the others' directions are absent)
        enough = len(have) >= 2 if paired else len(have) == len(seq)
        return None if enough else f"a sequence model; {ds.name!r} has only the sequence views {have} of {seq}"
    if spec.views and not paired:
        return f"takes the views {list(spec.views)}; evaluate it with --paired"
    if spec.views and paired and not set(spec.views) <= set(trained.flat_views(ds)):
        return f"takes the views {list(spec.views)}, which {ds.name!r} does not all have"
    return None


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def check_output(path: Path, *, explicit: bool, inputs: Sequence[Path] = (), what: str = "output") -> Path:
    """Refuse an output path before any work is done: a directory, an input of this run (after
    resolving both paths), an unwritable place, or -- unless the user named it (``explicit``)
    -- an existing committed file under ``assets/``."""
    path = Path(path)
    if path.is_dir():
        raise CLIError(f"{what} {path} is a directory; name a file")
    resolved = path.resolve()
    for source in inputs:
        if source is not None and Path(source).exists() and Path(source).resolve() == resolved:
            raise CLIError(f"{what} {path} is the input dataset file itself; refusing to overwrite it")
    from crossmodal_core import store

    if not explicit and path.exists() and _inside(path, store.assets_dir()):
        raise CLIError(f"{what} {path} is a committed file under {store.assets_dir()}; "
                       "name it with --out to overwrite it on purpose")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise CLIError(f"{what} {path} is not writable")
    return path


def _input_files(data) -> list[Path]:
    entry = data.entry
    if entry.path is None:
        return []
    return [entry.path / "dataset.npz"] if entry.path.is_dir() else [entry.path]


# ====================================================================== evaluate
def cmd_evaluate(args: argparse.Namespace) -> int:
    from crossmodal_core import evaluate as ev
    from crossmodal_core import store

    names = _csv_list(args.models)
    if not names:
        raise CLIError("--models is empty")
    specs = _resolve_models(names)
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
    data = _open(args.data)
    ds = data.dataset
    views = _csv_list(args.views)
    for v in views or []:
        if v not in ds.views:
            raise CLIError(f"dataset {ds.name!r} has no view {v!r}; views: {ds.view_names}")
    if args.label is not None and args.label not in ds.labels:
        raise CLIError(f"dataset {ds.name!r} has no label set {args.label!r}; label sets: {ds.label_names}")
    mode = "split" if args.split else "auto"
    paired = args.paired or not ds.labels
    if any(n.strip().lower() == ALL_MODELS for n in names):
        keep, skipped = [], set()
        for spec in specs:
            why = _applicable(spec, ds, views, paired)
            if why:
                _log(f"--models all: skipping {spec.name} ({why})")
                skipped.add(spec.name)
            else:
                keep.append(spec)
        specs = keep

        def for_skipped(item: str) -> bool:  # a budget written for every model may name a skipped one
            key = item.split("=", 1)[0]
            if "." not in key:
                return False
            try:
                return _registry_name(key.split(".", 1)[0]) in skipped
            except KeyError:
                return False

        args.param = [item for item in args.param if not for_skipped(item)]
    models = [s.name for s in specs]
    if isinstance(args.limit_train, dict):
        caps: dict[str, int] = {}
        for k, v in args.limit_train.items():
            try:
                name = "*" if k == "*" else _registry_name(k)
            except KeyError as exc:
                raise CLIError(f"--limit-train: {exc.args[0]}") from None
            if name in caps:  # an alias or display name of a model already given
                raise CLIError(f"--limit-train names {name!r} twice")
            caps[name] = v
        args.limit_train = caps
    if not models:
        raise CLIError(f"no model of --models {args.models!r} applies to {ds.name!r}")
    try:
        params = ev.parse_model_params(args.param, models)
    except (ValueError, KeyError) as exc:
        raise CLIError(f"--param: {exc}") from None
    zero_shot = args.zero_shot is not None or args.unseen_classes is not None
    kind = "paired" if paired else ("zeroshot" if zero_shot else "")
    inputs = _input_files(data)
    if args.out:
        out = check_output(Path(args.out), explicit=True, inputs=inputs, what="--out")
    else:  # the user's own results, named by the (slugged) dataset name, never over assets/
        out = store.child_path(store.user_results_dir(), ds.name + (f"-{kind}" if kind else ""), suffix=".json")
    check_output(out.with_suffix(".csv"), explicit=bool(args.out), inputs=inputs, what="CSV")
    _log(f"dataset {ds.name}: {ds.n_items} items, views {ds.view_names}"
         + ("  [SYNTHETIC]" if ds.is_synthetic else ""))
    def keep_so_far(partial: dict) -> None:
        # after each model: a long run that is cut (or a later model that crashes) keeps the finished ones
        if len(models) > 1 and any(r.get("folds") for r in partial["models"].values()):
            ev.write_results(partial, out)

    try:
        if paired:
            results = ev.evaluate_paired(ds, models, views=views, mode=mode, n_folds=args.folds, seed=args.seed,
                                         limit_train=args.limit_train, metric=args.metric, model_params=params,
                                         progress=not args.no_progress, on_model_done=keep_so_far,
                                         label=args.label, validation_fraction=args.validation)
        else:
            results = ev.evaluate(ds, models, views=views, label=args.label, mode=mode, n_folds=args.folds,
                                  seed=args.seed, unseen_fraction=args.zero_shot, unseen_classes=unseen,
                                  limit_train=args.limit_train, metric=args.metric, model_params=params,
                                  progress=not args.no_progress, on_model_done=keep_so_far)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    failed = {k: r["error"] for k, r in results["models"].items() if r.get("error")}
    for k, err in failed.items():
        _log(f"model {k} failed: {err}")
    if len(failed) == len(results["models"]):
        raise CLIError(f"no model succeeded on {ds.name!r}; nothing written")
    json_path, csv_path = ev.write_results(results, out)
    print(ev.format_table(results))
    _log(f"wrote {json_path} and {csv_path}")
    return 1 if failed else 0


# ====================================================================== report
REPORT_SUFFIXES = {".txt": "text", ".md": "markdown", ".csv": "csv", ".tex": "latex", ".png": "png",
                   ".svg": "svg", ".pdf": "pdf"}


def _add_report_parser(sub) -> None:
    from crossmodal_core.tables import FORMATS

    rp = sub.add_parser("report", help="the results table in the paper's layout (text, CSV, LaTeX, Markdown, "
                                       "PNG, SVG)",
                        description="Print or write the results table in the paper's layout: rows in the "
                                    "poster's model order, one column group per results file (dataset and "
                                    "protocol), MAP (%) mean ± std over folds, the best of each column "
                                    "marked, '–' where a model was not run.")
    rp.add_argument("--results", nargs="+", default=None, metavar="PATH",
                    help="results JSON files or folders of them (default: the committed assets/results/ "
                         "and your own runs in the cache)")
    rp.add_argument("--format", choices=FORMATS, default=None,
                    help="output format (default: from the --out suffix, else text)")
    rp.add_argument("--metric", choices=("map", "mrr1"), default="map", help="summary metric (default map)")
    rp.add_argument("--out", default=None, help="file to write (atomically); default: print to stdout")
    rp.add_argument("--force", action="store_true",
                    help="allow --out to replace an existing file under assets/ (never done silently)")


def _report_documents(paths: Sequence[str] | None) -> list[dict[str, Any]]:
    """The class-level documents to tabulate; a file the user named must be one (else CLIError)."""
    from crossmodal_core import report, store

    if paths is None:
        return report.load_documents()
    docs: list[dict[str, Any]] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            docs += report.load_documents({"": path})
            continue
        if not path.is_file():
            raise CLIError(f"--results {path}: no such file or folder")
        try:
            data = store.read_json(path)
        except (ValueError, OSError, UnicodeDecodeError) as exc:
            raise CLIError(f"--results {path}: cannot be read ({_one_line(exc)})") from None
        if not report.is_class_document(data):
            raise CLIError(f"--results {path}: not a class-level results file of `evaluate` "
                           "(paired and alignment reports have no MAP table)")
        docs.append({"origin": "", "source": path.stem, "path": str(path), "document": data})
    return docs


def cmd_report(args: argparse.Namespace) -> int:
    from crossmodal_core import store, tables

    fmt = args.format
    out = Path(args.out) if args.out else None
    if fmt is None:
        fmt = REPORT_SUFFIXES.get(out.suffix.lower(), None) if out is not None else "text"
        if fmt is None:
            raise CLIError(f"--out {out}: cannot tell the format from the suffix {out.suffix!r}; "
                           f"give --format ({', '.join(tables.FORMATS)})")
    if fmt in ("png", "svg", "pdf") and out is None:
        raise CLIError(f"--format {fmt} is an image: name the file with --out")
    docs = _report_documents(args.results)
    if out is not None:
        if out.exists() and _inside(out, store.assets_dir()) and not args.force:
            raise CLIError(f"--out {out} exists under {store.assets_dir()} (committed files); "
                           "add --force to replace it on purpose")
        check_output(out, explicit=True, inputs=[Path(d["path"]) for d in docs], what="--out")
    table = tables.paper_table(docs, metric=args.metric)
    if table.empty:
        raise CLIError("no class-level results to tabulate" + (f" in {' '.join(args.results)}" if args.results
                                                                else "; run `python -m crossmodal_core evaluate`"))
    data = table.export(fmt)
    if out is None:
        sys.stdout.write(data.decode("utf-8"))
        sys.stdout.flush()
    else:
        store.atomic_write_bytes(out, data)
        _log(f"wrote {out} ({fmt}, {len(table.models)} models x {len(table.columns)} columns)")
    return 0


# ====================================================================== build-music
def cmd_build_music(args: argparse.Namespace) -> int:
    from crossmodal_core.data.music import build_music_dataset

    start = time.perf_counter()
    if args.scores is not None:
        return _build_from_scores(args, start)
    ds = build_music_dataset(args.out, collections=_csv_list(args.collections), limit=args.limit, jobs=args.jobs)
    _log(f"built {getattr(ds, 'name', 'music dataset')}: {getattr(ds, 'n_items', '?')} items "
         f"in {time.perf_counter() - start:.0f} s")
    return 0


def _build_from_scores(args: argparse.Namespace, start: float) -> int:
    from crossmodal_core import store
    from crossmodal_core.data.music import build as music_build

    if args.out is None:
        raise CLIError(f"--scores needs --out (a new folder, e.g. {store.user_music_dir()}/<name>, where the app "
                       "lists it)")
    if args.collections is not None:
        raise CLIError("--collections chooses corpus works; it does not apply with --scores")
    if not Path(args.scores).is_dir():
        raise CLIError(f"--scores {args.scores}: not a folder")
    ds = music_build.build_music_dataset(args.out, limit=args.limit, jobs=args.jobs, scores=args.scores)
    out = Path(os.path.abspath(args.out))
    report = store.read_json(out / music_build.REPORT_FILE)
    _log(music_build.format_report(report))
    _log(f"built {ds.name}: {ds.n_items} items in {time.perf_counter() - start:.0f} s; report: "
         f"{out / music_build.REPORT_FILE}")
    if out.parent.resolve() == store.user_music_dir().resolve():
        _log(f"the app lists it as dataset 'scores:{out.name}'")
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
    """Fit one model into the model store (the app lists it), or into ``--out``."""
    import numpy as np

    from crossmodal_core import store
    from crossmodal_core.models import registry, trained

    spec = _resolve_models([args.model])[0]
    data = _open(args.data, seed=args.seed)
    ds = data.dataset
    views = tuple(_csv_list(args.views) or trained.model_views(ds, spec))
    for v in views:
        if v not in ds.views:
            raise CLIError(f"dataset {ds.name!r} has no view {v!r}; views: {ds.view_names}")
    if len(views) < 2:
        raise CLIError(f"--views needs at least two views, got {list(views)}")
    label = args.label or ds.default_label
    if spec.supervised and label is None:
        raise CLIError(f"{spec.display} is supervised but dataset {ds.name!r} has no labels")
    if label is not None and label not in ds.labels:
        raise CLIError(f"dataset {ds.name!r} has no label set {label!r}; label sets: {ds.label_names}")
    params = trained.model_params(ds, spec, views, _parse_params(args.param))
    try:
        registry.make_model(spec, **params)  # bad parameters fail now, not after the fit
    except TypeError as exc:
        raise CLIError(str(exc)) from None
    inputs = _input_files(data)
    if args.out:
        out = check_output(Path(args.out), explicit=True, inputs=inputs, what="--out")
        wanted = trained.state_filename(spec).rsplit(".", 1)[1]
        if out.suffix != f".{wanted}":  # registry.load_model reads a file by its suffix
            raise CLIError(f"--out: {spec.display} is stored as .{wanted}, got {out}")
        info_path = out.with_suffix(".info.json")
        check_output(info_path, explicit=False, inputs=inputs, what="info file")
        if spec.family == "deep":  # the readable config a deep checkpoint writes beside itself
            check_output(out.with_suffix(".json"), explicit=False, inputs=inputs, what="config file")
    else:
        folder = trained.model_dir(data, spec, views, label, params, args.rows)
        check_output(folder.parent / "probe", explicit=False, inputs=inputs, what="model store")
    _log(f"training {spec.display} on {ds.name} (views {list(views)}, rows: {args.rows})")
    try:
        if args.out:
            train_rows, _ = trained.split_indices(ds)
            rows = np.arange(ds.n_items) if args.rows == "all" else train_rows
            model, seconds = trained.fit_model(ds, spec, views, label, rows, params)
        else:
            stored = trained.train_and_store(data, spec, views[:2], label, params=params, rows=args.rows,
                                             views=views)
    except ValueError as exc:
        raise CLIError(f"{spec.display} cannot be fitted on {ds.name!r}: {exc}") from None
    if args.out:
        extra = {"dataset": data.key, "dataset_id": data.entry.id, "views": list(views), "label": label,
                 "rows": args.rows, "n_train": int(len(rows)), "fit_seconds": round(seconds, 2), "params": params}
        path = registry.save_model(model, out, name=spec.name, extra=extra)
        store.atomic_write_json(info_path, {"model": spec.name, "path": str(path), **extra})
    else:
        path = stored.path
        seconds = stored.info["fit_seconds"]
    _log(f"{spec.display} fitted in {seconds:.1f} s; saved to {path}")
    print(path)
    return 0


# ====================================================================== figure
def _add_figure_parser(sub) -> None:
    """``figure poster`` / ``figure retrieval``: the poster's figures from what is stored."""
    fg = sub.add_parser("figure", help="draw the poster's figures (embedding maps, retrieval results) to a file",
                        description="Draw a poster figure from the stored models and projections (the ones the "
                                    "app shows) as PDF, SVG or 300-dpi PNG. Nothing is trained or projected "
                                    "unless --prepare is given.")
    kinds = fg.add_subparsers(dest="figure_kind", metavar="KIND")
    kinds.required = True
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dataset", "--data", dest="data", required=True, help=DATA_HELP)
    common.add_argument("--label", default=None, help="relevance label the models were trained with "
                                                      "(default: the dataset's)")
    common.add_argument("--format", choices=("pdf", "svg", "png"), default=None,
                        help="file format (default: the suffix of --out)")
    common.add_argument("--out", required=True, help="output file (.pdf, .svg or .png)")
    common.add_argument("--prepare", action="store_true",
                        help="train a missing model / compute a missing projection (with progress) instead "
                             "of stopping with the command that builds it")
    # also after the kind (SUPPRESS keeps the values parsed before it)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument("--threads", type=_positive_int, default=argparse.SUPPRESS, metavar="N", help=argparse.SUPPRESS)
    po = kinds.add_parser("poster", parents=[common], help="the embedding maps side by side, one shared legend")
    po.add_argument("--models", default="original,ccca,tnn-ccca",
                    help="comma-separated panels: 'original' (the raw features) or model names "
                         "(default original,ccca,tnn-ccca)")
    po.add_argument("--pair", default=None, help="comma-separated two views (default: the app's first pair)")
    po.add_argument("--method", "--map", dest="method", choices=("umap", "pca"), default="umap",
                    help="the 2-D map (default umap)")
    po.add_argument("--colour-by", default=None,
                    help="label set that colours the points (default: the relevance label)")
    po.add_argument("--top", type=_positive_int, default=10,
                    help="colour the N largest classes, grey the rest (default 10, at most 18)")
    po.add_argument("--title", default=None, help="figure title (default: the dataset's name)")
    re_ = kinds.add_parser("retrieval", parents=[common], help="a query and its top-K with relevance marks")
    re_.add_argument("--model", required=True, help="model name (cca, ccca, tnn-ccca, ...)")
    re_.add_argument("--query", required=True, help="item id of the query (a test item)")
    re_.add_argument("--k", type=_positive_int, default=5, help="results shown (default 5, at most 20)")
    re_.add_argument("--direction", default=None,
                     help="comma-separated query view and gallery view (default: the app's first pair)")


def _figure_out(args: argparse.Namespace, inputs: Sequence[Path]) -> tuple[Path, str]:
    out = check_output(Path(args.out), explicit=True, inputs=inputs, what="--out")
    suffix = out.suffix.lower().lstrip(".")
    fmt = args.format or suffix
    if fmt not in ("pdf", "svg", "png"):
        raise CLIError(f"--out {out}: name a .pdf, .svg or .png file, or give --format")
    if suffix in ("pdf", "svg", "png") and suffix != fmt:
        raise CLIError(f"--format {fmt} does not match --out {out}")
    return out, fmt


def _figure_pair(app, text: str | None, what: str) -> tuple[str, str]:
    from crossmodal_core import appdata

    pair = tuple(_csv_list(text) or appdata.view_pairs(app.dataset)[0])
    if len(pair) != 2 or pair[0] == pair[1]:
        raise CLIError(f"{what} needs two different views, got {list(pair)}")
    for v in pair:
        if v not in app.dataset.views:
            raise CLIError(f"dataset {app.name!r} has no view {v!r}; views: {app.dataset.view_names}")
    return pair


def cmd_figure(args: argparse.Namespace) -> int:
    """Draw a figure from the stored models and projections; a missing one is named with the
    command that builds it, or built with ``--prepare``."""
    from crossmodal_core import appdata, figures

    app = _open(args.data)
    out, fmt = _figure_out(args, _input_files(app))
    ds = app.dataset
    label = args.label or appdata.label_choices(ds)[0]
    if label not in appdata.label_choices(ds):
        raise CLIError(f"dataset {ds.name!r} has no label set {label!r}; label sets: {ds.label_names}")
    bar = _progress_printer("figure") if args.prepare else None
    try:
        if args.figure_kind == "poster":
            pair = _figure_pair(app, args.pair, "--pair")
            names = _csv_list(args.models) or []
            if not names:
                raise CLIError("--models is empty")
            _resolve_models([n for n in names if n != appdata.ORIGINAL])
            colour = args.colour_by or label
            if colour not in appdata.label_choices(ds):
                raise CLIError(f"--colour-by: dataset {ds.name!r} has no label set {colour!r}; "
                               f"label sets: {ds.label_names}")
            if args.top > figures.MAX_TOP_N:
                raise CLIError(f"--top is at most {figures.MAX_TOP_N} (distinct colours), got {args.top}")
            panels = figures.poster_panels(app, names, pair, args.method, label, prepare=args.prepare,
                                           data_arg=args.data, progress=bar)
            labels, class_names = appdata.labels_for(ds, colour)
            title = args.title or (ds.name + ("  (SYNTHETIC data)" if ds.is_synthetic else ""))
            fig = figures.poster_figure(panels, labels, class_names, pair, top_n=args.top, label_title=colour,
                                        title=title)
        else:
            pair = _figure_pair(app, args.direction, "--direction")
            spec = _resolve_models([args.model])[0]
            if args.k > 20:
                raise CLIError(f"--k is at most 20, got {args.k}")
            model = figures.stored_model(app, spec.name, pair, label, prepare=args.prepare, data_arg=args.data,
                                         progress=bar)
            rv = appdata.retrieval_view(app, model, pair[0], pair[1], label)
            ids = [str(i) for i in ds.item_ids[rv.rows]]
            if args.query not in ids:
                known = str(args.query) in {str(i) for i in ds.item_ids}
                raise CLIError(f"--query {args.query!r} is " + ("a training item; queries are test items"
                                                                if known else f"not an item of {ds.name!r}")
                               + f" (test items: {', '.join(ids[:3])}, ... {len(ids)} in all)")
            fig = figures.retrieval_figure(app, rv, ids.index(args.query), args.k)
    except figures.MissingArtifactError as exc:
        raise CLIError(str(exc)) from None
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    finally:
        if bar is not None:
            bar.close()
    figures.save_figure(fig, out, fmt)
    _log(f"wrote {out} ({fmt}{', 300 dpi' if fmt == 'png' else ''})")
    print(out)
    return 0


# ====================================================================== project / prepare (the app's data layer)
def _app_dataset(dataset_id: str | None):
    from crossmodal_core.data import catalog

    entries = catalog.list_entries()
    if dataset_id is None:
        dataset_id = entries[0].id
    return _open(dataset_id)


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
    for v in pair:
        if v not in app.dataset.views:
            raise CLIError(f"dataset {app.name!r} has no view {v!r}; views: {app.dataset.view_names}")
    label = args.label or appdata.label_choices(app.dataset)[0]
    computed, present = _project_missing(app, pair, label, args.method)
    _log(f"[project] {computed} computed, {present} already present")
    return 0


def prepare_pairs(ds) -> list[tuple[str, str]]:
    """The modality pairs ``prepare`` trains the default models on: the app's first pair
    (:func:`crossmodal_core.appdata.view_pairs`) and, when that one has an image modality
    (audio <-> score_image), also the first pair without one (sheet <-> audio on the music
    dataset: the alignment page's models and the view the app opened on before)."""
    from crossmodal_core import appdata
    from crossmodal_core.models import trained

    pairs = appdata.view_pairs(ds)
    if not pairs:
        return []
    out = [pairs[0]]
    if any(trained.is_image_view(ds, v) for v in pairs[0]):
        flat = [p for p in pairs if not any(trained.is_image_view(ds, v) for v in p)]
        out += flat[:1]
    return out


def _prepare_pair(app, pair: tuple[str, str], label: str, wanted: list[str], args: argparse.Namespace,
                  problems: list[str]) -> None:
    """Train the missing ``wanted`` models that cover ``pair`` (a model whose registry views do
    not, e.g. UGAAR's sheet/lyrics/audio for audio <-> score_image, is left to its own pair),
    then its UMAP panels; every failure is logged in ``problems`` and the rest goes on."""
    from crossmodal_core import appdata
    from crossmodal_core.models import registry, trained

    start = time.perf_counter()
    _log(f"[prepare] models on {app.entry.id} ({pair[0]}/{pair[1]}, label {label!r})")
    for name in wanted:
        try:
            spec = registry.get_spec(name)
            registry.model_class(spec)
        except (KeyError, ImportError) as exc:
            problems.append(f"model {name}: {exc}")
            _log(f"[prepare] model {name}: unavailable ({exc}); skipped")
            continue
        try:
            views = trained.model_views(app.dataset, spec, pair)
        except ValueError as exc:
            problems.append(f"model {spec.name} on {pair[0]}/{pair[1]}: {exc}")
            _log(f"[prepare] model {spec.name}: cannot train on {pair[0]}/{pair[1]} ({exc})")
            continue
        if not set(pair) <= set(trained.embedding_names(app.dataset, views)):  # e.g. UGAAR: sheet, lyrics, audio
            _log(f"[prepare] model {spec.name}: reads {'/'.join(views)}, not {pair[0]}/{pair[1]}; left to its own pair")
            continue
        if not appdata.missing_models(app, pair, label, [spec.name]):
            _log(f"[prepare] model {spec.name}: already trained, skipped")
            continue
        bar = _progress_printer(f"train {spec.name} ({'/'.join(views)})")
        try:
            appdata.train_model(app, spec.name, pair, label, progress=bar)
        except Exception as exc:  # noqa: BLE001 -- log and go on with the next model
            problems.append(f"model {spec.name} on {pair[0]}/{pair[1]}: {type(exc).__name__}: {exc}")
            _log(f"[prepare] model {spec.name}: training failed ({type(exc).__name__}: {exc})")
        finally:
            bar.close()
    if not args.no_projections:
        try:
            computed, present = _project_missing(app, pair, label, "umap")
            _log(f"[prepare] projections of {pair[0]}/{pair[1]}: {computed} computed, {present} already present")
        except Exception as exc:  # noqa: BLE001
            problems.append(f"projections of {pair[0]}/{pair[1]}: {type(exc).__name__}: {exc}")
            _log(f"[prepare] projections failed ({type(exc).__name__}: {exc}); the app falls back to PCA")
    _log(f"[prepare] {pair[0]}/{pair[1]} done in {time.perf_counter() - start:.0f} s")


def cmd_prepare(args: argparse.Namespace) -> int:
    """Each step is skipped when its output exists and never stops the next step."""
    from crossmodal_core import appdata
    from crossmodal_core.data import catalog

    problems: list[str] = []
    music_dir = catalog.music_dir()

    # 1. the default dataset
    if catalog.is_built(music_dir):
        _log(f"[prepare] dataset: {music_dir} present, skipped")
    else:
        _log(f"[prepare] dataset: building the music dataset into {music_dir} (about 15 min on 2 cores)")
        try:
            from crossmodal_core.data.music import build_music_dataset

            build_music_dataset(music_dir, limit=args.limit, jobs=args.jobs)
        except Exception as exc:  # noqa: BLE001 -- the app still works on the synthetic set
            problems.append(f"music dataset: {type(exc).__name__}: {exc}")
            _log(f"[prepare] dataset: build failed ({type(exc).__name__}: {exc}); continuing without it")

    # 2. default models, 3. projections -- into the one model store, so the app finds them
    wanted = _csv_list(args.models) or []
    datasets = [e.id for e in catalog.list_entries() if e.kind == "music" or e.id == catalog.SYNTHETIC_SMALL_ID]
    # the first dataset that opens (music, else the small synthetic set) gets the default models,
    # for each of its default pairs (audio <-> score_image when it has the rasters, and the pair
    # the app opened on before them), so the explorer's first view has its three panels
    for dataset_id in datasets:
        try:
            app = appdata.load_dataset(dataset_id)
            pairs = prepare_pairs(app.dataset)
            label = appdata.label_choices(app.dataset)[0]
        except Exception as exc:  # noqa: BLE001
            problems.append(f"dataset {dataset_id}: {type(exc).__name__}: {exc}")
            _log(f"[prepare] cannot open {dataset_id}: {type(exc).__name__}: {exc}; trying the next one")
            continue
        for pair in pairs:
            _prepare_pair(app, pair, label, wanted, args, problems)
        break
    if problems:
        _log("[prepare] finished with problems:\n  - " + "\n  - ".join(problems))
    else:
        _log("[prepare] everything is in place")
    return 0


# ====================================================================== entry point
# ====================================================================== convert / --scheduler
def cmd_convert(args: argparse.Namespace) -> int:
    """Stream a dataset into a chunked Zarr folder (see :func:`crossmodal_core.data.vegas.convert_to_zarr`)."""
    from crossmodal_core.data.vegas import convert_to_zarr

    src, out = Path(args.input), Path(args.output)
    if out.suffix.lower() != ".zarr":
        raise CLIError(f"output must be a .zarr folder, got {out}")
    if out.exists() and not out.is_dir():
        raise CLIError(f"output {out} exists and is not a folder")
    check_output(out.with_name(out.name + ".probe"), explicit=True, inputs=[src], what="output")
    start = time.perf_counter()
    path = convert_to_zarr(src, out, chunk_bytes=args.chunk_mb << 20, progress=True)
    _log(f"converted {src} to {path} in {time.perf_counter() - start:.1f} s")
    print(path)
    return 0


def _with_scheduler(command):
    """Run ``command(args)`` with the linear fits' statistics on ``--scheduler`` (when given)."""

    def run(args: argparse.Namespace) -> int:
        address = getattr(args, "scheduler", None)
        if not address:
            return command(args)
        from crossmodal_core.models.linear import streaming

        try:
            client = streaming.connect(address)
        except ValueError as exc:
            raise CLIError(str(exc)) from None
        _log(f"dask scheduler {address}: {len(client.scheduler_info().get('workers', {}))} worker(s)")
        try:
            with streaming.use_client(client):
                return command(args)
        finally:
            cluster = getattr(client, "cluster", None) if address == "local" else None
            client.close()
            if cluster is not None:
                cluster.close()

    return run


COMMANDS = {
    "evaluate": _with_scheduler(cmd_evaluate),
    "build-music": cmd_build_music,
    "train": _with_scheduler(cmd_train),
    "figure": cmd_figure,
    "project": cmd_project,
    "prepare": cmd_prepare,
    "report": cmd_report,
    "convert": cmd_convert,
}


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 500 else text[:497] + "..."


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Exit status: 0 success; 1 a model failed (others written) or an
    internal error; 2 a user error (bad argument, unreadable data, impossible fit), printed as
    one line on stderr (``--debug``: with the traceback)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads is not None:
        from crossmodal_core.runtime import limit_threads

        limit_threads(args.threads)
    prog = f"{parser.prog} {args.command}"
    try:
        from crossmodal_core import store

        store.clean_stale_temporaries()  # what killed writes left behind
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 -- one readable line; the traceback only with --debug
        from crossmodal_core.data.dataset import DatasetError
        from crossmodal_core.models.registry import ModelUnavailableError

        if args.debug:
            traceback.print_exc()
        user_error = isinstance(exc, (CLIError, DatasetError, ModelUnavailableError))
        if user_error:
            print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
            return 2
        print(f"{prog}: internal error: {type(exc).__name__}: {_one_line(exc)}"
              + ("" if args.debug else " (run with --debug for the traceback)"), file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
