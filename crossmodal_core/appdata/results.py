"""The results table the home page shows: the committed reference results
(``assets/results/*.json``) and the user's own ``evaluate`` runs (:func:`store.user_results_dir`),
in the paper's layout (:func:`crossmodal_core.tables.paper_table`), with its downloads.

The one implementation lives in :mod:`crossmodal_core.report` (files) and
:mod:`crossmodal_core.tables` (layout and exports); the pages import it from here.
"""

from __future__ import annotations

from pathlib import Path

from crossmodal_core import store
from crossmodal_core.report import load_documents, load_paired_documents, load_results, model_order, paired_frame
from crossmodal_core.tables import PaperTable, dataset_title, paper_table

__all__ = ["load_results", "load_documents", "paper_table", "PaperTable", "results_table", "results_signature",
           "TABLE_DOWNLOADS", "hamming_table", "paired_tables"]

#: the downloads the home page offers: (format, file suffix, MIME type)
TABLE_DOWNLOADS: tuple[tuple[str, str, str], ...] = (
    ("csv", ".csv", "text/csv"), ("latex", ".tex", "application/x-tex"),
    ("png", ".png", "image/png"), ("svg", ".svg", "image/svg+xml"),
)


def results_table() -> PaperTable:
    """The paper-layout table of every class-level results file (reference, then yours)."""
    return paper_table(load_documents())


def results_signature() -> tuple[tuple[str, int, int], ...]:
    """``(path, mtime_ns, size)`` of every results file the table reads: a cache key that
    changes when a new ``evaluate`` run lands or a file is rewritten."""
    out = []
    for folder in (store.results_dir(), store.user_results_dir()):
        folder = Path(folder)
        if folder.is_dir():
            for path in sorted(folder.glob("*.json")):
                try:
                    st = path.stat()
                except OSError:
                    continue
                out.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(out)


def hamming_table():
    """The hashing models' MAP by Hamming distance of their ±1 codes (``map_hamming``), beside
    their cosine MAP on the relaxed codes: one row per results file and model, mean ± std over
    folds in %, ``{"Results", "Model", "<direction> cosine", "<direction> Hamming" ...}``
    (a pandas DataFrame; empty when no file has a hashing model)."""
    import pandas as pd

    from crossmodal_core.report import cell

    rows = []
    for doc in load_documents():
        d = doc["document"]
        subset = "unseen" if d["protocol"].get("kind") == "zero-shot" else "test"
        for key in model_order(d["models"]):
            rec = d["models"][key]
            try:
                metrics = ((rec.get("summary") or {}).get("metrics") or {}).get(subset, {}) if isinstance(rec, dict) else {}
                if not any("map_hamming" in v for v in metrics.values()):
                    continue
                row = {"Results": dataset_title(d) + (" [yours]" if doc["origin"] == "yours" else ""),
                       "Model": str(rec.get("display", key))}
                for direction, vals in metrics.items():
                    arrow = str(direction).replace("->", "→")
                    row[f"{arrow} cosine"] = cell(vals.get("map"), 100)
                    row[f"{arrow} Hamming"] = cell(vals.get("map_hamming"), 100)
            except (AttributeError, TypeError, KeyError, ValueError):
                continue  # a malformed record of a (user's) results file: left out, as unreadable files are
            rows.append(row)
    return pd.DataFrame(rows)


def paired_tables() -> list[tuple[str, "object"]]:
    """``(title, DataFrame)`` of every instance-level (paired) results file of the results
    folders: R@1/5/10 (and R@20 where a model reports it, the deep-attention model) in %, MRR,
    median rank per model and direction (:func:`crossmodal_core.report.paired_frame`)."""
    out = []
    for doc in load_paired_documents():
        title = f"{dataset_title(doc['document'])}: instance-level ({Path(doc['path']).name})"
        try:
            frame = paired_frame(doc["document"])
        except (AttributeError, TypeError, KeyError, ValueError):
            continue  # a malformed (user's) results file: left out, as unreadable files are
        out.append((title + (" [yours]" if doc["origin"] == "yours" else ""), frame))
    return out
