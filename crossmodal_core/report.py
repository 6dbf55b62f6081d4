"""Results documents -> files and tables: the one place that writes, reads and lays out results.

:mod:`crossmodal_core.evaluate` runs the protocols and returns a results document (a JSON-able
dict); this module turns documents into files and tables, for the command line, the app and
the notebooks alike.

Summaries (one convention, everywhere)
    A metric over folds is summarised by :func:`summarise`: the mean and the **sample**
    standard deviation (``ddof=1``) of its finite per-fold values, and their count ``n``;
    the std is ``0`` for a single fold. A table cell reads ``mean ± std`` when ``n > 1``,
    else ``mean``.

Metric keys
    Class-level (per direction): ``map``, ``mrr1`` (MRR@1) and ``pr_recall`` /
    ``pr_precision`` (the interpolated curve). Instance-level (paired):
    :data:`crossmodal_core.metrics.PAIRED_METRICS` = ``R@1``, ``R@5``, ``R@10``, ``MRR``,
    ``median_rank``, plus ``n`` (queries) per fold. Flat rows (``document["rows"]``) name a
    column ``<metric>[_<subset>].<query view>-><gallery view>`` (``map.audio->visual``,
    ``map_unseen.audio->visual``, ``R@1.sheet->audio``).

Files
    :func:`write_results`: the JSON document (atomic) and a CSV beside it (same stem) with one
    line per (model, subset, direction, fold) and the summary lines (fold ``mean`` / ``std``).
    :func:`load_results`: the flat rows of every results JSON of the committed reference folder
    (:func:`crossmodal_core.store.results_dir`, ``origin="reference"``) and of the user's own runs
    (:func:`crossmodal_core.store.user_results_dir`, ``origin="yours"``).

Tables
    :func:`results_frame` (one document, rows = models, poster columns ``MAP a→v`` ...,
    ``MRR@1 a→v`` ..., ``fit s``) is what :func:`format_table` prints and what the notebook
    saves as the poster table; the paper-layout table across many documents (rows in
    :data:`POSTER_ORDER`, one column group per dataset; the CLI's ``report``, the app's home
    page and the notebook) is :mod:`crossmodal_core.tables`, fed by :func:`load_documents`;
    :func:`format_paired_table` /
    :func:`paired_frame` the instance-level tables; :func:`format_alignment_table` the
    Markdown table of an alignment report (:func:`crossmodal_core.alignment.run_alignment_evaluation`).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from crossmodal_core import store
from crossmodal_core.metrics import PAIRED_METRICS

__all__ = [
    "CLASS_METRICS",
    "PAIRED_METRICS",
    "summarise",
    "cell",
    "write_results",
    "csv_text",
    "results_frame",
    "format_table",
    "format_paired_table",
    "paired_frame",
    "format_alignment_table",
    "load_results",
    "load_documents",
    "is_class_document",
    "POSTER_ORDER",
    "model_order",
    "render_text",
    "load_paired_documents",
]

#: the class-level metric keys (per direction)
CLASS_METRICS: tuple[str, ...] = ("map", "mrr1")

#: the six sheet / lyrics / audio directions, in the order of the alignment tables
_ALIGNMENT_DIRECTIONS = ("sheet->lyrics", "lyrics->sheet", "sheet->audio", "audio->sheet",
                         "lyrics->audio", "audio->lyrics")


# ====================================================================== summaries
def summarise(values: Iterable[float | None]) -> dict[str, float]:
    """``{"mean", "std", "n"}`` of the finite values: mean, sample std (``ddof=1``; 0 for one
    value), count. No finite value: mean and std ``nan``, ``n`` 0."""
    arr = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if len(arr) == 0:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    std = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
    return {"mean": float(arr.mean()), "std": std, "n": int(len(arr))}


def cell(summary: Mapping[str, float] | None, scale: float = 1.0, digits: int = 2) -> str:
    """One table cell: ``mean ± std`` (scaled, ``digits`` decimals) when ``n > 1``, the mean
    alone for one fold, ``-`` when there is nothing."""
    if not summary or not np.isfinite(summary.get("mean", float("nan"))):
        return "-"
    if summary.get("n", 0) > 1:
        return f"{summary['mean'] * scale:.{digits}f} ± {summary['std'] * scale:.{digits}f}"
    return f"{summary['mean'] * scale:.{digits}f}"


# ====================================================================== files
def _metric_names(results: Mapping[str, Any]) -> list[str]:
    if results["protocol"].get("kind") == "paired":
        # a paired run with a label set also scores class-level MAP by that label
        return list(PAIRED_METRICS) + (["map"] if _has_map(results) else [])
    return list(CLASS_METRICS)


def _has_map(results: Mapping[str, Any]) -> bool:
    """Whether a paired document carries class-level ``map`` beside the instance metrics."""
    return any("map" in vals for rec in results["models"].values()
               for vals in ((rec.get("summary") or {}).get("metrics", {}).get("test", {}) or {}).values())


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v) if np.isfinite(v) else "nan"
    return str(v)


def _extra_metrics(results: Mapping[str, Any]) -> list[str]:
    """Summary metrics some models add beyond the protocol's own (``map_hamming`` /
    ``mrr1_hamming`` of the hashing models, ``R@20`` of the attention model), sorted."""
    base = set(_metric_names(results))
    return sorted({m for rec in results["models"].values()
                   for dirs in ((rec.get("summary") or {}).get("metrics") or {}).values()
                   for vals in dirs.values() for m in vals
                   if m not in base and not m.startswith("pr_")})


def csv_text(results: Mapping[str, Any]) -> str:
    """The CSV of a results document: per-fold lines, then the ``mean`` / ``std`` lines.
    Metrics only some models report (``map_hamming``, ``R@20``) are extra columns after
    ``n_test``, empty for the other models, so the leading columns never move."""
    metric_names = _metric_names(results)
    extra = _extra_metrics(results)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["dataset", "model", "display", "subset", "direction", "fold", *metric_names,
                     "fit_seconds", "n_train", "n_test", *extra])
    for key, rec in results["models"].items():
        for fold in rec["folds"]:
            for subset, dirs in fold["metrics"].items():
                for direction, vals in dirs.items():
                    writer.writerow([results["dataset"], key, rec["display"], subset, direction, fold["fold"],
                                     *[_fmt(vals.get(m)) for m in metric_names],
                                     _fmt(fold["fit_seconds"]), fold["n_train"], fold["n_test"],
                                     *[_fmt(vals.get(m)) for m in extra]])
        summary = rec.get("summary")
        if not summary:
            continue
        for stat in ("mean", "std"):
            for subset, dirs in summary["metrics"].items():
                for direction, vals in dirs.items():
                    writer.writerow([results["dataset"], key, rec["display"], subset, direction, stat,
                                     *[_fmt(vals[m][stat]) for m in metric_names],
                                     _fmt(summary["fit_seconds"][stat]), "", "",
                                     *[_fmt(vals[m][stat]) if m in vals else "" for m in extra]])
    return buf.getvalue()


def write_results(results: Mapping[str, Any], path: str | Path) -> tuple[Path, Path]:
    """Write ``results`` as JSON at ``path`` and CSV beside it (same stem), both atomically."""
    path = Path(path)
    if path.suffix.lower() != ".json":
        raise ValueError(f"results path must end in .json, got {path}")
    store.atomic_write_json(path, results)
    csv_path = path.with_suffix(".csv")
    store.atomic_write_text(csv_path, csv_text(results))
    return path, csv_path


# ====================================================================== one document
def _abbrev(views: Sequence[str]) -> dict[str, str]:
    first = [v[0] for v in views]
    if len(set(first)) == len(first):
        return dict(zip(views, first))
    return {v: v for v in views}


def render_text(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(r):
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep, *[line(r) for r in rows]])


_LABELS = {"map": "MAP", "mrr1": "MRR@1", "map_hamming": "Hamming MAP"}


def _frame_rows(results: Mapping[str, Any], subset: str, metrics: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """Header and string rows of :func:`results_frame` (the logic :func:`format_table` prints)."""
    ab = _abbrev(results["protocol"]["views"])
    dirs = results["directions"]
    short = {d: "→".join(ab[p] for p in d.split("->")) for d in dirs}
    header = ["Model", *[f"{_LABELS.get(m, m)} {short[d]}" for m in metrics for d in dirs], "fit s"]
    rows = []
    for key in model_order(results["models"]):  # the poster's row order, like the paper table
        rec = results["models"][key]
        summ = rec.get("summary")
        if not summ or subset not in summ["metrics"]:
            rows.append([rec["display"], *(["-"] * (len(metrics) * len(dirs))), "failed" if rec.get("error") else "-"])
            continue
        m = summ["metrics"][subset]
        rows.append([rec["display"], *[cell(m[d].get(name), 100) for name in metrics for d in dirs],
                     cell(summ["fit_seconds"], 1, 1)])
    return header, rows


def results_frame(results: Mapping[str, Any], subset: str = "test", metrics: Sequence[str] = CLASS_METRICS):
    """The poster layout of one class-level results document as a pandas DataFrame.

    Index ``Model`` (display names, in the poster's order: :func:`model_order`); one column per metric and
    direction (``MAP a→v``, ``MAP v→a``, ``MRR@1 a→v`` ...; MAP and MRR@1 in %) and ``fit s``;
    cells are :func:`cell` strings (``mean ± std`` over folds). ``subset``: ``"test"``, or
    ``"unseen"`` / ``"seen"`` for a zero-shot document.
    """
    import pandas as pd

    header, rows = _frame_rows(results, subset, metrics)
    return pd.DataFrame(rows, columns=header).set_index("Model")


def _error_notes(results: Mapping[str, Any]) -> str:
    notes = [f"  {rec['display']}: {rec['error']}" for rec in results["models"].values() if rec.get("error")]
    return ("\nfailed:\n" + "\n".join(notes)) if notes else ""


def format_table(results: Mapping[str, Any]) -> str:
    """The poster's layout as text: rows = models, columns = MAP (%) per direction (mean ± std
    over folds), MRR@1 (%) per direction and fit seconds. Zero-shot: one block per subset.
    A paired document is printed by :func:`format_paired_table`."""
    if results["protocol"].get("kind") == "paired":
        return format_paired_table(results)
    subsets = ["unseen", "seen"] if results["protocol"].get("kind") == "zero-shot" else ["test"]
    title = f"{results['dataset']}: {results['protocol']['partition']}, label {results['protocol']['label']!r}"
    if results["dataset_info"].get("synthetic"):
        title += "  [SYNTHETIC data]"
    blocks = []
    for subset in subsets:
        header, rows = _frame_rows(results, subset, CLASS_METRICS)
        label = f"{title}" + (f" -- {subset} classes" if subset != "test" else "")
        blocks.append(label + " (MAP and MRR@1 in %)\n" + render_text(header, rows))
        if "map_hamming" in _extra_metrics(results):  # the hashing models' ±1 codes ranked by Hamming distance
            hashed = {k: r for k, r in results["models"].items()
                      if any("map_hamming" in v for v in ((r.get("summary") or {}).get("metrics", {})
                                                           .get(subset, {}).values()))}
            header, rows = _frame_rows({**results, "models": hashed}, subset, ("map_hamming",))
            blocks.append(f"{label}: MAP by Hamming distance of the binary codes (%)\n" + render_text(header, rows))
    return "\n\n".join(blocks) + _error_notes(results)


def _recall_ks(results: Mapping[str, Any]) -> list[int]:
    """Every ``R@k`` cut-off found in the models' summaries (R@1/5/10, plus R@20 of the
    attention model), ascending."""
    ks = {int(k[2:]) for rec in results["models"].values()
          for dirs in ((rec.get("summary") or {}).get("metrics", {}).get("test", {}).values())
          for k in dirs if k.startswith("R@") and k[2:].isdigit()}
    return sorted(ks or {1, 5, 10})


def format_paired_table(results: Mapping[str, Any]) -> str:
    """Rows = (model, direction); columns R@1, R@5, R@10 (and R@20 when a model reports it; %),
    MRR, median rank, [MAP (%) by the run's label set, when scored], fit s. A direction a model
    has no score for (a sequence model and a view without a sequence) is left out of its rows."""
    ks = _recall_ks(results)
    with_map = _has_map(results)
    header = ["Model", "Direction", *(f"R@{k}" for k in ks), "MRR", "MedR"] + (["MAP"] if with_map else []) + ["fit s"]
    rows = []
    for rec in results["models"].values():
        summ = rec.get("summary")
        if not summ:
            rows.append([rec["display"], *["-"] * (len(header) - 2), "failed" if rec.get("error") else "-"])
            continue
        for d in results["directions"]:
            m = summ["metrics"]["test"].get(d)
            if m is None:
                continue
            rows.append([rec["display"], d.replace("->", "→"), *(cell(m.get(f"R@{k}"), 100) for k in ks),
                         cell(m["MRR"], 1, 3), cell(m["median_rank"], 1, 1)]
                        + ([cell(m.get("map"), 100)] if with_map else []) + [cell(summ["fit_seconds"], 1, 1)])
    title = f"{results['dataset']}: instance-level retrieval, {results['protocol']['partition']} (R@K in %)"
    if with_map:
        title += f"; MAP (%) with relevance = same {results['protocol'].get('label')}"
    return title + "\n" + render_text(header, rows) + _error_notes(results)


def paired_frame(results: Mapping[str, Any]):
    """Long numeric table of a paired document: index (``Model``, ``Direction``), columns
    ``R@1``, ``R@5``, ``R@10`` (and ``R@20`` when a model reports it; fold means, in %), ``MRR``
    and ``MedR`` (fold means)."""
    import pandas as pd

    recall_cols = [f"R@{k}" for k in _recall_ks(results)]
    out = []
    for rec in results["models"].values():
        for direction, vals in (rec.get("summary") or {}).get("metrics", {}).get("test", {}).items():
            out.append({"Model": rec["display"], "Direction": direction.replace("->", "→"),
                        **{c: 100 * vals[c]["mean"] if c in vals else float("nan") for c in recall_cols},
                        "MRR": vals["MRR"]["mean"], "MedR": vals["median_rank"]["mean"],
                        **({"MAP": 100 * vals["map"]["mean"]} if "map" in vals else {})})
    if not out:
        return pd.DataFrame(columns=["Model", "Direction", *recall_cols, "MRR", "MedR"]).set_index(
            ["Model", "Direction"])
    return pd.DataFrame(out).set_index(["Model", "Direction"]).round(3)


def format_alignment_table(results: Mapping[str, Mapping[str, Mapping[str, float]]],
                           std: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None) -> str:
    """A Markdown table: one row per (method, direction), columns R@1, R@5, R@10, MRR, median rank.

    ``results`` maps method name -> direction -> metric -> value (e.g. the ``"mean"`` entry
    of each method of an alignment report); ``std`` the matching spreads.
    """
    lines = ["| method | direction | R@1 | R@5 | R@10 | MRR | median rank |", "|---|---|---|---|---|---|---|"]
    for method, res in results.items():
        for key in [*_ALIGNMENT_DIRECTIONS, "mean"]:
            if key not in res:
                continue
            cells = []
            for m in PAIRED_METRICS:
                v = res[key][m]
                s = None if std is None else std.get(method, {}).get(key, {}).get(m)
                text = f"{v:.1f}" if m == "median_rank" else f"{v:.3f}"
                if s is not None:
                    text += f" ± {s:.1f}" if m == "median_rank" else f" ± {s:.3f}"
                cells.append(text)
            lines.append(f"| {method} | {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ====================================================================== many documents (the app)
def _default_folders() -> dict[str, Path]:
    return {"reference": store.results_dir(), "yours": store.user_results_dir()}


def _records(data: Any) -> list:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for key in ("rows", "results", "records", "table"):
            if isinstance(data.get(key), list):
                meta = {k: v for k, v in data.items() if not isinstance(v, (list, dict))}
                return [{**meta, **r} if isinstance(r, dict) else r for r in data[key]]
        return [data]
    return []


#: the poster's row order, by registry name (:mod:`crossmodal_core.models.registry`): the seed
#: papers' models first, as the paper lists them. Names the registry does not know (yet) are
#: allowed: they only place a model when a results file has it. See :func:`model_order`.
POSTER_ORDER: tuple[str, ...] = ("cca", "kcca", "dcca", "ccca", "ckcca", "cdcca", "ugach", "agah", "ucal",
                                 "acmr", "lstm-ccca", "tnn-ccca")


def model_order(names: Iterable[str]) -> list[str]:
    """``names`` (registry names) in the poster's order: :data:`POSTER_ORDER` first, then the
    other registry models in registry order, then names the registry does not know, in the
    order given. Duplicates are dropped."""
    from crossmodal_core.models.registry import MODEL_NAMES

    given = list(dict.fromkeys(names))
    rank = {n: i for i, n in enumerate([*POSTER_ORDER, *(m for m in MODEL_NAMES if m not in POSTER_ORDER)])}
    known = sorted((n for n in given if n in rank), key=rank.__getitem__)
    return known + [n for n in given if n not in rank]


def _iter_json(folders: Mapping[str, str | Path]) -> Iterable[tuple[str, Path, Any]]:
    """``(origin, path, parsed JSON)`` of every results file of the folders (hidden files,
    unfinished writes and unreadable files skipped)."""
    for origin, folder in folders.items():
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.json")):
            if path.name.startswith(".") or store.is_temporary(path):
                continue  # hidden files and unfinished writes are never results
            try:
                yield origin, path, store.read_json(path)
            except (ValueError, OSError, UnicodeDecodeError):
                continue


def is_class_document(doc: Any) -> bool:
    """Whether ``doc`` is a class-level (MAP) results document of :func:`crossmodal_core.evaluate.evaluate`
    (protocol kind ``"class"`` or ``"zero-shot"``), or a paired document of
    :func:`~crossmodal_core.evaluate.evaluate_paired` that also scored MAP by a label set (the
    score-image task): the documents the paper-layout table reads."""
    if not (isinstance(doc, dict) and isinstance(doc.get("protocol"), dict) and isinstance(doc.get("models"), dict)):
        return False
    kind = doc["protocol"].get("kind")
    if kind == "paired":
        try:
            return _has_map(doc)
        except (AttributeError, TypeError):
            return False
    return kind in ("class", "zero-shot")


def load_documents(folders: Mapping[str, str | Path] | None = None) -> list[dict[str, Any]]:
    """The class-level results documents (:func:`is_class_document`) of the folders of
    :func:`load_results` (same default, same files, same skip rules), each as
    ``{"origin", "source" (file stem), "path", "document"}``. Paired and alignment documents
    (instance-level Recall@K, no MAP) are left out."""
    folders = _default_folders() if folders is None else dict(folders)
    return [{"origin": origin, "source": path.stem, "path": str(path), "document": data}
            for origin, path, data in _iter_json(folders) if is_class_document(data)]


def load_paired_documents(folders: Mapping[str, str | Path] | None = None) -> list[dict[str, Any]]:
    """The instance-level (``--paired``) results documents of the same folders, in the shape
    of :func:`load_documents` (``{"origin", "source", "path", "document"}``)."""
    folders = _default_folders() if folders is None else dict(folders)
    return [{"origin": origin, "source": path.stem, "path": str(path), "document": data}
            for origin, path, data in _iter_json(folders)
            if isinstance(data, dict) and isinstance(data.get("protocol"), dict)
            and isinstance(data.get("models"), dict) and data["protocol"].get("kind") == "paired"]


def load_results(folders: Mapping[str, str | Path] | None = None) -> list[dict[str, Any]]:
    """Flat rows of every results JSON, each naming where it came from.

    Parameters
    ----------
    folders : ``origin -> folder``; default ``{"reference": store.results_dir(),
        "yours": store.user_results_dir()}`` (the committed results, then the user's own runs)

    Returns
    -------
    list of dicts: the document's ``rows`` (each with the document's scalar fields such as
    ``dataset``), or the whole document as one row when it has none, plus ``origin`` (the
    folder's key), ``source`` (file stem) and ``path``. Unreadable files are skipped.
    """
    folders = _default_folders() if folders is None else dict(folders)
    rows: list[dict[str, Any]] = []
    for origin, path, data in _iter_json(folders):
        for rec in _records(data):
            if isinstance(rec, dict):
                rows.append({"source": path.stem, **rec, "origin": origin, "path": str(path)})
    return rows
