"""The results table the home page shows: the committed reference results
(``assets/results/*.json``) and the user's own ``evaluate`` runs (:func:`store.user_results_dir`),
in the paper's layout (:func:`crossmodal_core.tables.paper_table`), with its downloads.

The one implementation lives in :mod:`crossmodal_core.report` (files) and
:mod:`crossmodal_core.tables` (layout and exports); the pages import it from here.
"""

from __future__ import annotations

from pathlib import Path

from crossmodal_core import store
from crossmodal_core.report import load_documents, load_results
from crossmodal_core.tables import PaperTable, paper_table

__all__ = ["load_results", "load_documents", "paper_table", "PaperTable", "results_table", "results_signature",
           "TABLE_DOWNLOADS"]

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
