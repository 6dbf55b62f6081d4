"""Folds x models -> results tables: the papers' evaluation protocols, reproducibly.

Protocols
---------
``kfold``
    Class-balanced k-fold cross-validation (the papers' 5 folds). The dataset's own
    ``folds`` are used when present and ``n_folds`` is not given or equals their number;
    otherwise folds are drawn with :func:`~crossmodal_core.data.splits.class_balanced_folds`
    (or :func:`~crossmodal_core.data.splits.group_folds` by ``work_id`` when the dataset has
    that metadata column, so one work never lies on both sides). Every item is tested once.
``split``
    The dataset's predefined ``split`` (train / test), one "fold".
``zero-shot`` (``unseen_fraction`` or ``unseen_classes`` given, with either partition)
    Classes are split into seen and unseen (:func:`~crossmodal_core.data.splits.zero_shot_split`,
    seeded). Models are fitted on training rows of *seen* classes only (checked before every
    ``fit``: an unseen label reaching training is a ``RuntimeError``). MAP is reported on the
    test rows of unseen classes (subset ``"unseen"``) and, separately, of seen classes
    (``"seen"``).
``paired`` (:func:`evaluate_paired`)
    Instance-level retrieval (sheet / lyrics / audio): the only relevant item of a query is
    its own pair. Recall@1/5/10, MRR and median rank for every ordered pair of the chosen
    views. Three-view models (UGAAR) are fitted once on all views; two-view models (the CCA
    baselines) are fitted once per pair of views. The candidate pool of a query is the other
    view of every test-fold item. With ``label`` (e.g. the work), supervised models are fitted
    with those training labels and every direction also gets the class-level ``map`` (relevant
    = same label) of the same embeddings. With ``validation_fraction``, deep models get that
    share of the *training* rows as an instance-level validation split (early stopping). An
    image view ``(n, C, H, W)`` goes to the models that take images (CNN towers); every other
    model sees its flat descriptor ``<view>_pix`` instead
    (:mod:`crossmodal_core.features.image_descriptors`; the dataset's own when it has one), and
    the model's record says so under ``views``.

Metrics per direction (``a->v`` = audio queries, visual gallery), one spelling each:

- class-level: ``map`` (AP over the whole gallery, R = all relevant items), ``mrr1`` (share
  of queries whose top-1 item is relevant) and ``pr_recall`` / ``pr_precision`` (the 11-point
  interpolated curve, mean over folds). :func:`class_metrics` computes all three from one
  :class:`~crossmodal_core.retrieval.ScoredDirection`: the similarities are computed once per
  direction and fold, and ranked once.
- instance-level (paired): ``R@1``, ``R@5``, ``R@10``, ``MRR``, ``median_rank`` (and ``n``
  per fold), :func:`crossmodal_core.metrics.rank_summary` (:data:`PAIRED_METRICS`). The
  alignment reports of :mod:`crossmodal_core.alignment` use the same keys and this engine.

Similarity: cosine unless ``metric`` says otherwise. A model whose class lists
``retrieval_metrics`` (the hashing models: ``("cosine", "hamming")``) is also scored with each
other similarity listed, reported as ``map_<metric>`` / ``mrr1_<metric>`` beside ``map`` /
``mrr1``. Fit time is wall-clock seconds of ``fit`` alone.

Std convention: every summary over folds is :func:`crossmodal_core.report.summarise`, the
mean and the **sample** standard deviation (``ddof=1``) of the finite per-fold values; the
std is ``0`` with a single fold.

Deep models that accept ``validation=`` get a class-balanced 10 % of their *training* rows as
validation (early stopping); test rows are never used for anything but scoring.

Results: one JSON-able document with the protocol, per model per fold per subset per
direction metrics and summaries, plus a flat ``rows`` list (one record per model and fold,
columns such as ``map.audio->visual`` or ``R@1.sheet->audio``) that tables and the app read.
Files and tables are :mod:`crossmodal_core.report` (``write_results``, ``format_table``,
``format_paired_table`` are re-exported here for existing callers).
"""

from __future__ import annotations

import inspect
import itertools
import platform
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from crossmodal_core import metrics
from crossmodal_core.data import splits as splits_mod
from crossmodal_core.data.dataset import CrossModalDataset
from crossmodal_core.metrics import PAIRED_METRICS, RECALL_KS
from crossmodal_core.models.registry import ModelSpec, get_spec, make_model, parameter_names
from crossmodal_core.report import (  # re-exported: the tables and files live in crossmodal_core.report
    CLASS_METRICS,
    format_paired_table,
    format_table,
    summarise,
    write_results,
)
from crossmodal_core.retrieval import ScoredDirection

__all__ = [
    "Partition",
    "make_partition",
    "evaluate",
    "evaluate_paired",
    "class_metrics",
    "paired_metrics",
    "paired_split_metrics",
    "write_results",
    "format_table",
    "format_paired_table",
    "parse_model_params",
    "training_budget",
    "PAIRED_METRICS",
    "CLASS_METRICS",
    "RECALL_KS",
]


# ====================================================================== partitions
@dataclass
class Partition:
    """Train / test row indices of each fold plus how they were made."""

    mode: str  # "kfold" | "split"
    folds: list[tuple[np.ndarray, np.ndarray]]
    description: str
    params: dict[str, Any] = field(default_factory=dict)


def make_partition(ds: CrossModalDataset, labels: np.ndarray, mode: str = "auto",
                   n_folds: int | None = None, seed: int = 0) -> Partition:
    """The folds of an evaluation.

    ``mode="auto"``: k-fold when ``n_folds`` is given or the dataset has folds, else the
    predefined split when present, else 5 class-balanced folds.
    """
    if mode not in ("auto", "kfold", "split"):
        raise ValueError(f"mode must be 'auto', 'kfold' or 'split', got {mode!r}")
    if mode == "auto":
        if n_folds is not None or ds.folds is not None or ds.split is None:
            mode = "kfold"
        else:
            mode = "split"
    if mode == "split":
        if ds.split is None:
            raise ValueError(f"dataset {ds.name!r} has no predefined train/test split; use k-fold")
        train, test = np.nonzero(ds.split == "train")[0], np.nonzero(ds.split == "test")[0]
        if len(train) == 0 or len(test) == 0:
            raise ValueError(f"dataset {ds.name!r}: the predefined split has {len(train)} train and {len(test)} test rows")
        return Partition("split", [(train, test)], "predefined train/test split",
                         {"n_train": int(len(train)), "n_test": int(len(test))})
    stored = splits_mod.n_folds(ds.folds) if ds.folds is not None else 0
    if ds.folds is not None and (n_folds is None or n_folds == stored) and stored >= 2:
        fold_ids, desc = ds.folds, f"the dataset's own {stored} folds"
    else:
        k = 5 if n_folds is None else int(n_folds)
        if "work_id" in ds.metadata:
            fold_ids = splits_mod.group_folds(ds.metadata["work_id"], k, seed)
            desc = f"{k} folds grouped by work_id (seed {seed})"
        else:
            fold_ids = splits_mod.class_balanced_folds(labels, k, seed)
            desc = f"{k} class-balanced folds (seed {seed})"
    folds = [(tr, te) for _, tr, te in splits_mod.iter_folds(fold_ids)]
    return Partition("kfold", folds, desc, {"n_folds": len(folds), "seed": int(seed)})


def _model_limit(limit_train: int | Mapping[str, int | None] | None, key: str) -> int | None:
    """The training-row cap of model ``key``: ``limit_train`` itself, or its entry for ``key``
    (else its ``"*"`` entry, else no cap) when it is a per-model mapping."""
    if limit_train is None or isinstance(limit_train, (int, np.integer)):
        return None if limit_train is None else int(limit_train)
    value = limit_train.get(key, limit_train.get("*"))
    return None if value is None else int(value)


def _limit_rows(rows: np.ndarray, limit: int | None, seed: int, fold: int) -> np.ndarray:
    if limit is None or len(rows) <= limit:
        return rows
    rng = np.random.default_rng([seed, fold, 7])
    return np.sort(rng.choice(rows, size=int(limit), replace=False))


def _validation_split(rows: np.ndarray, labels: np.ndarray | None, seed: int, fraction: float = 0.1):
    """Carve a class-balanced validation part out of the *training* rows."""
    from sklearn.model_selection import train_test_split

    if len(rows) < 20:
        return rows, None
    strat = labels[rows] if labels is not None else None
    if strat is not None and np.bincount(np.unique(strat, return_inverse=True)[1]).min() < 2:
        strat = None
    fit_rows, val_rows = train_test_split(rows, test_size=fraction, random_state=seed, stratify=strat)
    return np.sort(fit_rows), np.sort(val_rows)


# ====================================================================== models
# Registry names are resolved to their ModelSpec once, in _normalise_models; everything after
# reads the spec (name, display name, views, class) instead of looking the name up again.
def _build(model: Any, params: Mapping[str, Any] | None):
    """A fresh estimator from a :class:`ModelSpec` or an (unfitted) estimator prototype."""
    if isinstance(model, ModelSpec):
        return make_model(model, **dict(params or {}))
    from sklearn.base import clone

    est = clone(model)
    if params:
        est.set_params(**params)
    return est


def _model_info(key: str, model: Any) -> dict[str, Any]:
    if isinstance(model, ModelSpec):
        return {"name": model.name, "display": model.display, "supervised": model.supervised, "family": model.family}
    supervised = bool(getattr(model, "requires_labels", False))
    return {"name": key, "display": key, "supervised": supervised, "family": "custom"}


def _normalise_models(models: Sequence[Any] | Mapping[str, Any]) -> dict[str, Any]:
    """``key -> ModelSpec`` for registry names (resolved here, once), ``key -> estimator`` otherwise."""
    items = models.items() if isinstance(models, Mapping) else ((None, m) for m in models)
    out: dict[str, Any] = {}
    for key, m in items:
        if isinstance(m, (str, ModelSpec)):
            spec = get_spec(m)
            out[spec.name if key is None else key] = spec
        else:
            out[type(m).__name__ if key is None else key] = m
    return out


def _required_views(model: Any) -> tuple[str, ...] | None:
    """The views a registry model insists on (UGAAR: sheet, lyrics, audio), else None."""
    return model.views if isinstance(model, ModelSpec) else None


def _accepts(fn: Callable, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _fit(est: Any, views: list[np.ndarray], y: np.ndarray | None, supervised: bool,
         forbidden_labels: Sequence[int] | None, validation: tuple[list[np.ndarray], np.ndarray] | None) -> float:
    """Fit, guarding the zero-shot contract; returns fit seconds."""
    if forbidden_labels is not None and y is not None:
        leaked = np.intersect1d(np.unique(y), np.asarray(forbidden_labels))
        if len(leaked):
            raise RuntimeError(f"zero-shot violation: unseen classes {leaked.tolist()} reached training")
    kwargs: dict[str, Any] = {}
    if validation is not None and _accepts(est.fit, "validation"):
        kwargs["validation"] = validation
    start = time.perf_counter()
    est.fit(views, y if supervised else None, **kwargs)
    return time.perf_counter() - start


def parse_model_params(items: Sequence[str], model_names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["ccca.n_components=10", "epochs=5"]`` -> per-model parameter dicts.

    A key without a ``model.`` prefix applies to every listed model whose estimator has that
    parameter. Values are parsed as JSON when possible (``5``, ``1e-3``, ``true``, ``[1,2]``),
    else kept as strings.
    """
    import json

    specs = {spec.name: spec for spec in map(get_spec, model_names)}
    out: dict[str, dict[str, Any]] = {name: {} for name in specs}
    for item in items:
        if "=" not in item:
            raise ValueError(f"model parameter {item!r} must look like name.key=value or key=value")
        key, raw = item.split("=", 1)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if "." in key:
            model, param = key.split(".", 1)
            name = get_spec(model).name
            if name not in out:
                raise ValueError(f"parameter {item!r} names model {model!r}, which is not being evaluated")
            out[name][param] = value
        else:
            hit = False
            for name, spec in specs.items():
                try:
                    accepted = parameter_names(spec)
                except ImportError:
                    continue
                if key in accepted:
                    out[name][key] = value
                    hit = True
            if not hit:
                raise ValueError(f"no evaluated model has a parameter {key!r}")
    return out


# ====================================================================== metrics
def class_metrics(queries: np.ndarray | ScoredDirection, gallery: np.ndarray | None = None,
                  query_labels: np.ndarray | None = None, gallery_labels: np.ndarray | None = None,
                  metric: str = "cosine", pr_points: int | None = 11) -> dict[str, Any]:
    """MAP, MRR@1 and (optionally) the precision-recall curve of one direction.

    Pass a :class:`~crossmodal_core.retrieval.ScoredDirection` (scores computed once, one
    ranking pass for all three), or the arrays it is built from.
    """
    if isinstance(queries, ScoredDirection):
        scored = queries
    else:
        scored = ScoredDirection(queries, gallery, query_labels, gallery_labels, metric, pr_points=pr_points)
    out: dict[str, Any] = {"map": float(scored.mean_average_precision()), "mrr1": scored.mrr_at_1()}
    if pr_points:
        recall, precision = scored.precision_recall_curve(pr_points)
        out["pr_recall"] = np.asarray(recall, dtype=float).tolist()
        out["pr_precision"] = np.asarray(precision, dtype=float).tolist()
    return out


def paired_metrics(queries: np.ndarray, gallery: np.ndarray, metric: str = "cosine",
                   ks: Sequence[int] | None = None) -> dict[str, float]:
    """``R@1``, ``R@5``, ``R@10``, ``MRR``, ``median_rank`` and ``n`` of the true pair (row i of
    both), :func:`crossmodal_core.metrics.rank_summary` of :func:`~crossmodal_core.metrics.pair_ranks`.

    ``ks`` adds ``R@k`` for further cut-offs (the deep-attention poster reports R@1/5/10/20:
    ``ks=crossmodal_core.models.deep.attention.POSTER_RECALL_KS``)."""
    ranks = metrics.pair_ranks(queries, gallery, metric)
    out = metrics.rank_summary(ranks)
    for k in ks or ():
        out.setdefault(f"R@{int(k)}", metrics.recall_at_k(ranks, int(k)))
    return out


def _summarise(fold_records: list[dict[str, Any]], metric_names: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"fit_seconds": summarise([f["fit_seconds"] for f in fold_records])}
    subsets: dict[str, dict[str, Any]] = {}
    for rec in fold_records:
        for subset, dirs in rec["metrics"].items():
            for direction, vals in dirs.items():
                subsets.setdefault(subset, {}).setdefault(direction, {})
    for subset, dirs in subsets.items():
        for direction in dirs:
            per = [rec["metrics"].get(subset, {}).get(direction, {}) for rec in fold_records]
            dirs[direction] = {m: summarise([p.get(m, float("nan")) for p in per]) for m in metric_names}
            curves = [p["pr_precision"] for p in per if "pr_precision" in p]
            if curves:
                dirs[direction]["pr_recall"] = per[0]["pr_recall"]
                dirs[direction]["pr_precision"] = np.mean(np.asarray(curves, dtype=float), axis=0).tolist()
    out["metrics"] = subsets
    return out


# ====================================================================== class-level evaluation
def default_views(ds: CrossModalDataset, paired: bool) -> list[str]:
    """The views :func:`evaluate` (``paired=False``) and :func:`evaluate_paired` (``paired=True``)
    use when none are given: the first two 2-D views; paired, ``sheet``, ``lyrics``, ``audio``
    when the dataset has all three as 2-D views."""
    flat = [v for v in ds.view_names if ds.views[v].ndim == 2]
    if paired and {"sheet", "lyrics", "audio"} <= set(flat):
        return ["sheet", "lyrics", "audio"]
    return flat[:2]


def _direction_names(views: Sequence[str]) -> list[tuple[int, int, str]]:
    return [(i, j, f"{views[i]}->{views[j]}") for i, j in itertools.permutations(range(len(views)), 2)]


def evaluate(
    ds: CrossModalDataset,
    models: Sequence[Any] | Mapping[str, Any],
    *,
    views: Sequence[str] | None = None,
    label: str | None = None,
    mode: str = "auto",
    n_folds: int | None = None,
    seed: int = 0,
    unseen_fraction: float | None = None,
    unseen_classes: Sequence[int] | None = None,
    limit_train: int | Mapping[str, int | None] | None = None,
    metric: str = "cosine",
    model_params: Mapping[str, Mapping[str, Any]] | None = None,
    validation_fraction: float | None = 0.1,
    pr_points: int | None = 11,
    on_error: str = "record",
    progress: bool = True,
    on_model_done: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Class-relevance retrieval evaluation of ``models`` on ``ds`` (see module docstring).

    Parameters
    ----------
    ds : the dataset
    models : registry names (``"cca"``, ``"tnn-ccca"`` ...) or unfitted estimators (cloned per
        fold), or a mapping ``key -> name or estimator``
    views : two view names (query / gallery modalities); default: the first two 2-D views
    label : label set defining relevance; default: ``ds.default_label``
    mode, n_folds, seed : partition (:func:`make_partition`)
    unseen_fraction, unseen_classes : turn on the zero-shot protocol
    limit_train : subsample at most this many training rows per fold (seeded; quick runs), or
        ``model key -> rows`` (a per-model compute budget; a key absent or ``None`` = no cap;
        ``"*"`` = every other model). Each model's record says its ``limit_train``.
    metric : ``"cosine"`` or ``"euclidean"``
    model_params : ``key -> parameter overrides``
    validation_fraction : share of training rows given to deep models as validation
        (``None`` = none)
    pr_points : points of the precision-recall curve (``None`` = skip it)
    on_error : ``"record"`` (store the error, go on with the other models) or ``"raise"``
    progress : show a tqdm bar on stderr
    on_model_done : called with the results so far after each model's folds (the CLI writes
        them, so a long run that is cut keeps every finished model)

    Returns
    -------
    dict (JSON-serialisable): ``dataset``, ``protocol``, ``directions``, ``models`` (per model:
    ``folds`` with per-fold metrics, ``summary``, ``error``), ``rows`` (flat per-fold records).
    """
    if on_error not in ("record", "raise"):
        raise ValueError(f"on_error must be 'record' or 'raise', got {on_error!r}")
    views = list(views) if views else default_views(ds, paired=False)
    if len(views) != 2:
        raise ValueError(f"class-level evaluation needs exactly two views, got {views}")
    for v in views:
        ds.view(v)
        if ds.views[v].ndim != 2:
            raise ValueError(f"view {v!r} is a sequence view {ds.views[v].shape}; pick a 2-D view")
    label = label or ds.default_label
    if label is None:
        raise ValueError(f"dataset {ds.name!r} has no labels: class-level retrieval needs a label set "
                         "(use evaluate_paired for instance-level retrieval)")
    labels = ds.label(label)
    class_names = ds.class_names[label]
    partition = make_partition(ds, labels, mode, n_folds, seed)

    zero_shot = None
    if unseen_fraction is not None or unseen_classes is not None:
        zero_shot = splits_mod.zero_shot_split(labels, unseen_fraction, unseen_classes, seed)
    models = _normalise_models(models)
    model_params = {k: dict(v) for k, v in (model_params or {}).items()}
    directions = _direction_names(views)
    xs = [ds.views[v] for v in views]

    results: dict[str, Any] = {
        "dataset": ds.name,
        "dataset_info": {
            "n_items": ds.n_items, "synthetic": ds.is_synthetic,
            "description": ds.info.get("description", ""), "source": ds.info.get("source", ""),
        },
        "protocol": {
            "kind": "zero-shot" if zero_shot else "class",
            "mode": partition.mode,
            "partition": partition.description,
            **partition.params,
            "views": list(views),
            "label": label,
            "n_classes": len(class_names),
            "metric": metric,
            "seed": int(seed),
            "limit_train": limit_train if not isinstance(limit_train, Mapping) else dict(limit_train),
            "relevance": "same label",
        },
        "directions": [d for _, _, d in directions],
        "models": {},
        "rows": [],
        "environment": {"python": platform.python_version(), "numpy": np.__version__,
                        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
    }
    if zero_shot:
        results["protocol"]["zero_shot"] = {
            **zero_shot.to_dict(),
            "unseen_class_names": [class_names[c] for c in zero_shot.unseen_classes],
        }

    from tqdm.auto import tqdm

    total = len(models) * len(partition.folds)
    bar = tqdm(total=total, desc="evaluate", unit="fit", disable=not progress, file=sys.stderr,
               dynamic_ncols=True)
    try:
        for key, model in models.items():
            info = _model_info(key, model)
            record: dict[str, Any] = {**info, "params": model_params.get(key, {}), "folds": [], "error": None}
            results["models"][key] = record
            record["limit_train"] = model_limit = _model_limit(limit_train, key)
            needs = _required_views(model)
            if needs is not None and len(needs) != len(views):
                record["error"] = (f"{info['display']} takes the views {list(needs)}; evaluate it at the "
                                   "instance level (evaluate_paired / --paired)")
                if on_error == "raise":
                    raise ValueError(record["error"])
                bar.update(len(partition.folds))
                continue
            model_xs = xs
            if _is_sequence_spec(model):
                # a sequence model is scored on the same items through their *_seq views
                seq_views = [v if v.endswith("_seq") else f"{v}_seq" for v in views]
                if not all(v in ds.views and ds.views[v].ndim == 3 for v in seq_views):
                    record["error"] = (f"{info['display']} is a sequence model: it needs the views {seq_views}, "
                                       f"which {ds.name!r} does not have")
                    if on_error == "raise":
                        raise ValueError(record["error"])
                    bar.update(len(partition.folds))
                    continue
                model_xs = [ds.views[v] for v in seq_views]
                record["views"] = seq_views
            _run_folds(
                lambda fold, train, test, model_xs=model_xs: _run_fold(
                    model, model_params.get(key), info["supervised"], model_xs, labels, train, test, fold,
                    directions, zero_shot, model_limit, seed, metric, validation_fraction, pr_points,
                ),
                partition.folds, record, info, results, ds.name, bar, on_error,
            )
            fitted = [f.pop("fitted_params", {}) for f in record["folds"]]
            if record["folds"]:
                record["fitted_params"] = fitted[0]
                record["summary"] = _summarise(record["folds"], CLASS_METRICS + _extra_metric_names(record["folds"]))
            results["protocol"]["budget"] = training_budget(results)
            if on_model_done is not None:
                on_model_done(results)
    finally:
        bar.close()
    results["protocol"]["budget"] = training_budget(results)
    return results


def training_budget(results: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per model, what it was trained with beyond its registry defaults: its training-row cap
    (``limit_train``) and its parameter overrides (epochs, widths ...). Written into
    ``protocol["budget"]`` so a results file states every departure from the defaults."""
    return {key: {"limit_train": rec.get("limit_train"), **dict(rec.get("params") or {})}
            for key, rec in results["models"].items() if isinstance(rec, Mapping)}


def _extra_metric_names(fold_records: list[dict[str, Any]], known: Sequence[str] = CLASS_METRICS) -> tuple[str, ...]:
    """Per-direction metrics beyond ``known`` found in the folds: ``map_hamming`` of the hashing
    models (class level), ``R@20`` of the attention model (paired)."""
    names = {k for rec in fold_records for dirs in rec["metrics"].values() for vals in dirs.values()
             for k in vals if k not in known and k != "n" and not k.startswith("pr_")}
    return tuple(sorted(names))


def _run_folds(run_one: Callable[[int, np.ndarray, np.ndarray], dict[str, Any]], folds, record: dict[str, Any],
               info: dict[str, Any], results: dict[str, Any], dataset_name: str, bar, on_error: str) -> None:
    """Run one model over every fold, appending each fold's record and flat row.

    A failing fold is recorded in ``record["error"]`` (or re-raised with ``on_error="raise"``)
    and the model's remaining folds are skipped, so the other models still run.
    """
    for fold, (train, test) in enumerate(folds):
        bar.set_description(f"{info['display']} fold {fold + 1}/{len(folds)}")
        try:
            rec = run_one(fold, train, test)
        except Exception as exc:  # noqa: BLE001 -- recorded, then the next model runs
            if on_error == "raise":
                raise
            record["error"] = f"{type(exc).__name__}: {exc}"
            warnings.warn(f"{info['display']} failed on fold {fold}: {record['error']}", stacklevel=3)
            bar.update(len(folds) - fold)
            break
        record["folds"].append(rec)
        results["rows"].append(_flat_row(dataset_name, info, rec))
        bar.update(1)


def _run_fold(model, params, supervised, xs, labels, train, test, fold, directions, zero_shot,
              limit_train, seed, metric, validation_fraction, pr_points) -> dict[str, Any]:
    forbidden = None
    if zero_shot is not None:
        train = train[zero_shot.seen_mask[train]]
        forbidden = zero_shot.unseen_classes
    train = _limit_rows(train, limit_train, seed, fold)
    est = _build(model, params)
    validation = None
    fit_rows = train
    if validation_fraction and _accepts(est.fit, "validation"):
        fit_rows, val_rows = _validation_split(train, labels, seed + fold, validation_fraction)
        if val_rows is not None:
            validation = ([x[val_rows] for x in xs], labels[val_rows])
    y_fit = labels[fit_rows]
    if validation is not None and forbidden is not None and np.isin(validation[1], forbidden).any():
        raise RuntimeError("zero-shot violation: unseen classes reached the validation rows")
    fit_seconds = _fit(est, [x[fit_rows] for x in xs], y_fit, supervised, forbidden, validation)
    start = time.perf_counter()
    z = est.transform([x[test] for x in xs])
    transform_seconds = time.perf_counter() - start
    z = [np.asarray(e, dtype=np.float32) for e in z]
    subsets = {"test": np.ones(len(test), dtype=bool)}
    if zero_shot is not None:
        unseen = zero_shot.unseen_mask[test]
        subsets = {"unseen": unseen, "seen": ~unseen}
    out_metrics: dict[str, dict[str, Any]] = {}
    y_test = labels[test]
    for subset, mask in subsets.items():
        if mask.sum() < 2:
            continue
        out_metrics[subset] = {
            name: class_metrics(z[i][mask], z[j][mask], y_test[mask], y_test[mask], metric, pr_points)
            for i, j, name in directions
        }
        # hashing models are also ranked by Hamming distance of their binary codes (``map_hamming``)
        for extra in getattr(est, "retrieval_metrics", ()):
            if extra == metric:
                continue
            for i, j, name in directions:
                vals = class_metrics(z[i][mask], z[j][mask], y_test[mask], y_test[mask], extra, None)
                out_metrics[subset][name].update({f"{k}_{extra}": v for k, v in vals.items()})
    try:
        fitted_params = {k: v for k, v in est.get_params().items() if isinstance(v, (int, float, str, bool, type(None)))}
    except Exception:  # noqa: BLE001 -- display only
        fitted_params = {}
    return {
        "fold": int(fold),
        "n_train": int(len(fit_rows)),
        "n_validation": 0 if validation is None else int(len(validation[1])),
        "n_test": int(len(test)),
        "fit_seconds": float(fit_seconds),
        "transform_seconds": float(transform_seconds),
        "metrics": out_metrics,
        "fitted_params": fitted_params,
    }


def _flat_row(dataset: str, info: dict[str, Any], fold_rec: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"model": info["display"], "model_key": info["name"], "dataset": dataset,
                           "fold": fold_rec["fold"], "fit_seconds": round(fold_rec["fit_seconds"], 4)}
    for subset, dirs in fold_rec["metrics"].items():
        prefix = "" if subset == "test" else f"_{subset}"
        for direction, vals in dirs.items():
            for m, v in vals.items():
                if m.startswith("pr_") or m == "n":
                    continue
                row[f"{m}{prefix}.{direction}"] = v
    return row


# ====================================================================== paired (instance-level)
def evaluate_paired(
    ds: CrossModalDataset,
    models: Sequence[Any] | Mapping[str, Any],
    *,
    views: Sequence[str] | None = None,
    mode: str = "auto",
    n_folds: int | None = None,
    seed: int = 0,
    limit_train: int | Mapping[str, int | None] | None = None,
    metric: str = "cosine",
    model_params: Mapping[str, Mapping[str, Any]] | None = None,
    on_error: str = "record",
    progress: bool = True,
    on_model_done: Callable[[dict[str, Any]], None] | None = None,
    label: str | None = None,
    validation_fraction: float | None = None,
) -> dict[str, Any]:
    """Instance-level retrieval (true pair only) in every direction between ``views``.

    ``views`` defaults to ``("sheet", "lyrics", "audio")`` when the dataset has them, else
    the first two 2-D views. Models are fitted without labels unless ``label`` names a label
    set: then supervised models get the training rows' labels and each direction also reports
    class-level ``map`` by that label. ``validation_fraction``: share of each fold's training
    rows held out as validation for deep models (``None``: none). A model whose estimator takes
    as many views as given is fitted once; a two-view model is fitted once per view pair.
    Image views reach only models that take images; the others get ``<view>_pix`` (module
    docstring). Folds: as :func:`make_partition` (class labels, when present, balance the folds).

    Sequence models (registry views ``*_seq``) are fitted and scored on the same items
    through the ``<view>_seq`` views of the chosen views that have one (music: ``audio_seq``,
    ``sheet_seq``); their directions keep the flat names (``audio->sheet``) so the table lines
    up, ``record["views"]`` names the sequence views used, and directions of a view without a
    sequence (``lyrics``) are absent for them. Fewer than two such views: the model's error.
    ``on_model_done``: as in :func:`evaluate`.
    """
    if on_error not in ("record", "raise"):
        raise ValueError(f"on_error must be 'record' or 'raise', got {on_error!r}")
    if views is None:
        views = default_views(ds, paired=True)
    views = list(views)
    if len(views) < 2:
        raise ValueError("paired evaluation needs at least two views")
    for v in views:
        ds.view(v)
    relevance = ds.label(label) if label is not None else None
    label_set = ds.default_label if label is None else label
    strat = ds.label(label_set) if label_set is not None else np.zeros(ds.n_items, dtype=np.int64)
    if label_set is None and mode != "split" and ds.folds is None:
        # no classes to balance: plain seeded k-fold
        from sklearn.model_selection import KFold

        k = 5 if n_folds is None else int(n_folds)
        fold_ids = np.empty(ds.n_items, dtype=np.int64)
        for f, (_, te) in enumerate(KFold(k, shuffle=True, random_state=seed).split(np.zeros(ds.n_items))):
            fold_ids[te] = f
        partition = Partition("kfold", [(tr, te) for _, tr, te in splits_mod.iter_folds(fold_ids)],
                              f"{k} random folds (seed {seed})", {"n_folds": k, "seed": int(seed)})
    else:
        partition = make_partition(ds, strat, mode, n_folds, seed)
    models = _normalise_models(models)
    model_params = {k: dict(v) for k, v in (model_params or {}).items()}
    directions = _direction_names(views)
    xs = {v: ds.views[v] for v in views}
    flat_stand_ins: dict[str, np.ndarray] = {}
    metric_names = PAIRED_METRICS + (("map",) if relevance is not None else ())
    results: dict[str, Any] = {
        "dataset": ds.name,
        "dataset_info": {"n_items": ds.n_items, "synthetic": ds.is_synthetic,
                         "description": ds.info.get("description", "")},
        "protocol": {"kind": "paired", "mode": partition.mode, "partition": partition.description,
                     **partition.params, "views": views, "metric": metric, "seed": int(seed),
                     "limit_train": limit_train if not isinstance(limit_train, Mapping) else dict(limit_train),
                     "relevance": "true pair only", "recall_ks": list(RECALL_KS),
                     "pool": "every test-fold item of the gallery view (n_test per fold)",
                     "label": label, "validation_fraction": validation_fraction},
        "directions": [d for _, _, d in directions],
        "models": {},
        "rows": [],
        "environment": {"python": platform.python_version(), "numpy": np.__version__,
                        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
    }
    from tqdm.auto import tqdm

    bar = tqdm(total=len(models) * len(partition.folds), desc="evaluate (paired)", unit="fold",
               disable=not progress, file=sys.stderr, dynamic_ncols=True)
    try:
        for key, model in models.items():
            info = _model_info(key, model)
            record: dict[str, Any] = {**info, "params": model_params.get(key, {}), "folds": [], "error": None}
            results["models"][key] = record
            record["limit_train"] = model_limit = _model_limit(limit_train, key)
            model_xs, model_views, rename = xs, views, None
            if _is_sequence_spec(model):
                base = [v for v in views if f"{v}_seq" in ds.views and ds.views[f"{v}_seq"].ndim == 3]
                if len(base) < 2:
                    record["error"] = (f"{info['display']} is a sequence model: it needs at least two of "
                                       f"{[f'{v}_seq' for v in views]}, which {ds.name!r} does not have")
                    if on_error == "raise":
                        raise ValueError(record["error"])
                    bar.update(len(partition.folds))
                    results["protocol"]["budget"] = training_budget(results)
                    if on_model_done is not None:
                        on_model_done(results)
                    continue
                model_views = [f"{v}_seq" for v in base]
                model_xs = {sv: ds.views[sv] for sv in model_views}
                rename = dict(zip(model_views, base))
                record["views"] = model_views
            elif any(np.ndim(x) == 4 for x in xs.values()):
                try:
                    takes_images = bool(getattr(_build(model, model_params.get(key)), "accepts_images", False))
                except Exception:  # noqa: BLE001 -- the fold run reports the real error
                    takes_images = True
                if not takes_images:
                    model_xs = {v: _flat_stand_in(ds, v, flat_stand_ins) if np.ndim(x) == 4 else x
                                for v, x in xs.items()}
                    record["views"] = [f"{v}_pix" if np.ndim(xs[v]) == 4 else v for v in views]
            _run_folds(
                lambda fold, train, test, model_xs=model_xs, model_views=model_views, rename=rename: _run_paired_fold(
                    model, model_params.get(key), model_xs, model_views, train, test, fold, model_limit, seed,
                    metric, rename, relevance, info["supervised"], validation_fraction,
                ),
                partition.folds, record, info, results, ds.name, bar, on_error,
            )
            if record["folds"]:
                record["summary"] = _summarise(record["folds"], metric_names + _extra_metric_names(
                    record["folds"], metric_names))
            results["protocol"]["budget"] = training_budget(results)
            if on_model_done is not None:
                on_model_done(results)
    finally:
        bar.close()
    results["protocol"]["budget"] = training_budget(results)
    return results


def _n_views_of(est: Any) -> int | None:
    return getattr(est, "n_views", 2)


def _is_sequence_spec(model: Any) -> bool:
    """A registry model whose views are all sequences (``*_seq``)."""
    needs = _required_views(model)
    return bool(needs) and all(v.endswith("_seq") for v in needs)


def _flat_stand_in(ds: CrossModalDataset, view: str, cache: dict[str, np.ndarray]) -> np.ndarray:
    """The flat descriptor ``<view>_pix`` of an image view: the dataset's own, else computed once."""
    from crossmodal_core.features.image_descriptors import DERIVED_SUFFIX, pixel_blocks

    name = f"{view}{DERIVED_SUFFIX}"
    if name in ds.views:
        return ds.views[name]
    if name not in cache:
        cache[name] = pixel_blocks(ds.views[view])
    return cache[name]


def _run_paired_fold(model, params, xs, views, train, test, fold, limit_train, seed, metric,
                     rename: Mapping[str, str] | None = None, labels=None, supervised=False,
                     validation_fraction=None) -> dict[str, Any]:
    train = _limit_rows(train, limit_train, seed, fold)
    rec = paired_split_metrics(model, {v: xs[v][train] for v in views}, {v: xs[v][test] for v in views},
                               views=views, params=params, metric=metric,
                               y_train=None if labels is None else labels[train],
                               y_test=None if labels is None else labels[test],
                               supervised=supervised, validation_fraction=validation_fraction, seed=seed + fold)
    if rename:  # sequence views scored under their flat names (audio_seq->sheet_seq = audio->sheet)
        def flat(direction: str) -> str:
            q, g = direction.split("->")
            return f"{rename.get(q, q)}->{rename.get(g, g)}"

        rec["metrics"] = {sub: {flat(d): m for d, m in dirs.items()} for sub, dirs in rec["metrics"].items()}
    return {"fold": int(fold), **rec}


def paired_split_metrics(model: Any, train: Mapping[str, np.ndarray], test: Mapping[str, np.ndarray],
                         views: Sequence[str] | None = None, params: Mapping[str, Any] | None = None,
                         metric: str = "cosine", y_train: np.ndarray | None = None,
                         y_test: np.ndarray | None = None, supervised: bool = False,
                         validation_fraction: float | None = None, seed: int = 0) -> dict[str, Any]:
    """Fit ``model`` on the ``train`` views and score every direction between ``views`` on
    ``test``: one fold of :func:`evaluate_paired`.

    Parameters
    ----------
    model : registry name or unfitted estimator (cloned). A model taking ``len(views)``
        views (or any number) is fitted once; a two-view model once per pair of views, each
        pair's two directions scored in that pair's own space.
    train, test : view name -> ``(n, d)`` array, rows paired
    views : the views, in order (default: ``train``'s keys)
    y_train, y_test : labels of the rows (``y_train`` reaches ``fit`` when ``supervised``;
        ``y_test`` adds the class-level ``map`` of every direction)
    validation_fraction : share of the training rows given to a model that takes
        ``validation=`` (instance-level: labels are not passed), seeded by ``seed``

    Returns
    -------
    ``{"n_train", "n_validation", "n_test", "fit_seconds", "metrics": {"test": {"q->g": metrics}}}``;
    an estimator with a ``recall_ks`` attribute also gets those ``R@k`` (the attention model's R@20).
    """
    views = list(views or train)
    n_train, n_test = len(train[views[0]]), len(test[views[0]])
    probe = _build(model, params)
    n_views = _n_views_of(probe)
    embeddings: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    fit_seconds = 0.0
    y_fit = y_train if supervised else None
    held_out: dict[str, np.ndarray] | None = None
    if validation_fraction and _accepts(probe.fit, "validation"):
        fit_rows, val_rows = _validation_split(np.arange(n_train), y_train, seed, validation_fraction)
        if val_rows is not None:  # held-out rows come from this fold's training rows only
            held_out = {v: x[val_rows] for v, x in train.items()}
            train = {v: x[fit_rows] for v, x in train.items()}
            y_fit = None if y_fit is None else y_fit[fit_rows]
            n_train = len(fit_rows)

    def validation(names: Sequence[str]) -> tuple[list[np.ndarray], None] | None:
        return None if held_out is None else ([held_out[v] for v in names], None)

    if n_views is None or n_views == len(views):
        fit_seconds += _fit(probe, [train[v] for v in views], y_fit, supervised, None, validation(views))
        z = [np.asarray(e, dtype=np.float32) for e in probe.transform([test[v] for v in views])]
        for i, j, _ in _direction_names(views):
            embeddings[(i, j)] = (z[i], z[j])
    elif n_views == 2:
        for i, j in itertools.combinations(range(len(views)), 2):
            est = _build(model, params)
            fit_seconds += _fit(est, [train[views[i]], train[views[j]]], y_fit, supervised, None,
                                validation([views[i], views[j]]))
            zi, zj = (np.asarray(e, dtype=np.float32) for e in est.transform([test[views[i]], test[views[j]]]))
            embeddings[(i, j)] = (zi, zj)
            embeddings[(j, i)] = (zj, zi)
    else:
        raise ValueError(f"the model takes {n_views} views but {len(views)} were chosen: {views}")
    # a model may ask for more cut-offs (the attention model: the poster's R@1/5/10/20)
    ks = getattr(probe, "recall_ks", None)
    out = {name: paired_metrics(*embeddings[(i, j)], metric=metric, ks=ks) for i, j, name in _direction_names(views)}
    if y_test is not None:  # class-level MAP (relevant = same label) of the same embeddings
        for i, j, name in _direction_names(views):
            out[name]["map"] = class_metrics(*embeddings[(i, j)], y_test, y_test, metric, None)["map"]
    return {"n_train": int(n_train), "n_validation": 0 if held_out is None else len(next(iter(held_out.values()))),
            "n_test": int(n_test), "fit_seconds": float(fit_seconds), "metrics": {"test": out}}
