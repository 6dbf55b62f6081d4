"""The paper's results table across results documents, and its exports.

One table, built once by :func:`paper_table` from class-level results documents
(:func:`crossmodal_core.report.load_documents`, the files of ``evaluate``), read by the command
line (``python -m crossmodal_core report``), the app's home page and the results notebook:

- **rows**: models in the poster's order (:data:`crossmodal_core.report.POSTER_ORDER`, by
  registry name; then the other registry models, then unknown names), spelled as the
  documents spell them (``display``);
- **columns**: grouped per dataset (a readable name per document: ``"Synthetic VEGAS-like"``,
  ``"Synthetic VEGAS-like, zero-shot (unseen classes)"``, ...), one column per direction
  that the document names (``audio→visual``, ``visual→audio``);
- **cells**: MAP in %, ``mean ± std`` of the summary the document stores (sample std,
  ``ddof=1``, over folds; the mean alone for one fold), the best mean of each column in bold,
  ``–`` where the model was not run (or failed) on that dataset;
- **caption**: the protocol of each column group (folds, relevance label, similarity,
  zero-shot share), read from the documents' ``protocol``.

Exports: :meth:`PaperTable.to_text` (terminal, best marked ``*``), :meth:`~PaperTable.to_markdown`,
:meth:`~PaperTable.to_csv` (numbers: mean, std and n as separate columns, full precision),
:meth:`~PaperTable.to_latex` (booktabs, ``\\multicolumn`` per dataset, ``\\textbf`` for the best)
and :meth:`~PaperTable.to_image` (PNG / SVG / PDF drawn with matplotlib, no browser; SVG keeps
its text as ``<text>`` so a poster editor can restyle it).

Results files are untrusted input: a field of the wrong type is treated as missing, never
as a crash, and every text taken from a file is escaped in LaTeX and Markdown.
"""

from __future__ import annotations

import csv
import io
import math
import textwrap
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from crossmodal_core import report

__all__ = ["FORMATS", "ColumnGroup", "PaperTable", "paper_table", "dataset_title", "MISSING"]

#: what a cell reads when the model was not run on that dataset (an en dash, as in print)
MISSING = "–"
#: export formats (:meth:`PaperTable.export`)
FORMATS: tuple[str, ...] = ("text", "markdown", "csv", "latex", "png", "svg", "pdf")

#: readable names of the catalog's datasets (:mod:`crossmodal_core.data.catalog`); others are
#: spelled from their id (``my_set-2`` -> ``my set 2``)
_DATASET_NAMES = {
    "synthetic-vegas": "Synthetic VEGAS-like",
    "synthetic-vegas-small": "Synthetic VEGAS-like (small)",
    "music21_lyrics": "music21 lyrics",
    "music21": "music21 lyrics",
}
_MAX_TEXT = 80  # longest name taken from a file (a hostile file must not blow up the layout)


def _text(value: Any, fallback: str = "") -> str:
    text = " ".join(str(value).split()) if isinstance(value, (str, int)) and not isinstance(value, bool) else fallback
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT - 1] + "…"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _arrow(direction: str) -> str:
    return direction.replace("->", "→")


def dataset_title(document: Mapping[str, Any]) -> str:
    """A readable name of a document's dataset and protocol: the dataset's name; the view
    pair and the relevance label when the label is not the plain ``class``
    (``"music21 lyrics (audio↔sheet by work)"``); ``", zero-shot (unseen classes)"`` for a
    zero-shot document."""
    dataset = _text(document.get("dataset"), "unnamed dataset")
    name = _DATASET_NAMES.get(dataset, dataset.replace("_", " ").replace("-", " "))
    protocol = document.get("protocol") if isinstance(document.get("protocol"), dict) else {}
    label = _text(protocol.get("label"), "class")
    views = protocol.get("views") if isinstance(protocol.get("views"), list) else []
    if label != "class":
        pair = "↔".join(_text(v) for v in views[:2] if _text(v))
        name += f" ({pair} by {label})" if pair else f" (by {label})"
    if protocol.get("kind") == "zero-shot":
        name += ", zero-shot (unseen classes)"
    return name


def _protocol(document: Mapping[str, Any]) -> dict[str, Any]:
    return document.get("protocol") if isinstance(document.get("protocol"), dict) else {}


def _relevance(document: Mapping[str, Any]) -> str:
    """Relevance of the document's MAP: a paired document's MAP is by its label set (its own
    ``relevance``, "true pair only", is that of its Recall@K)."""
    if _protocol(document).get("kind") == "paired":
        return "same label"
    return _text(_protocol(document).get("relevance"), "same label")


def _shared_sentence(documents: Sequence[Mapping[str, Any]]) -> tuple[str, bool]:
    """The caption's protocol part common to every document (relevance and similarity), and
    whether it is common (else each group's sentence names its own)."""
    found = {(_relevance(d), _text(_protocol(d).get("metric"), "cosine")) for d in documents}
    if len(found) != 1:
        return "", False
    relevance, metric = found.pop()
    return f"Relevant = {relevance}; {metric} similarity.", True


def _row_cap(limit: Any) -> str:
    """The caption's words for a training-row cap (a compute budget): ``"at most 1,500
    training rows per fold (LSTM-C-CCA: 800)"``; ``""`` when there is none."""
    if isinstance(limit, dict):
        rest = _number(limit.get("*"))
        own = []
        for key, value in limit.items():
            n = _number(value)
            if key != "*" and n:
                own.append(f"{_display(str(key), {})}: {int(n):,}")
        head = f"at most {int(rest):,} training rows per fold" if rest else "training rows capped per fold"
        return head + (f" ({'; '.join(own)})" if own else "")
    n = _number(limit)
    return f"at most {int(n):,} training rows per fold" if n else ""


def _protocol_sentence(title: str, document: Mapping[str, Any], shared: bool) -> str:
    """One caption sentence: how the column group was measured, from the document's protocol."""
    p = _protocol(document)
    parts = []
    partition = _text(p.get("partition"))
    n_folds = _number(p.get("n_folds"))
    if partition:
        parts.append(partition)
    elif n_folds:
        parts.append(f"{int(n_folds)} folds")
    label = _text(p.get("label"), "class")
    if shared:
        parts.append(f"relevance label {label!r}")
    else:
        parts.append(f"relevant = {_relevance(document)} ({label!r}), "
                     f"{_text(p.get('metric'), 'cosine')} similarity")
    zs = p.get("zero_shot") if isinstance(p.get("zero_shot"), dict) else None
    if zs is not None:
        unseen = zs.get("unseen_classes") if isinstance(zs.get("unseen_classes"), list) else []
        n_classes = _number(p.get("n_classes"))
        share = f"{len(unseen)} of {int(n_classes)} classes ({100 * len(unseen) / n_classes:.0f} %)" \
            if n_classes else f"{len(unseen)} classes"
        parts.append(f"{share} unseen in training, scored among their test items")
    cap = _row_cap(p.get("limit_train"))
    if cap:
        parts.append(cap)
    info = document.get("dataset_info") if isinstance(document.get("dataset_info"), dict) else {}
    synthetic = " (SYNTHETIC data)" if info.get("synthetic") is True else ""
    return f"{title}{synthetic}: {', '.join(parts)}."


def _group_rank(document: Mapping[str, Any]) -> tuple[int, int]:
    """Column groups in the paper's order: the VEGAS-like sets first, then the music set,
    then other datasets; within a dataset the plain protocol before zero-shot."""
    order = list(_DATASET_NAMES)
    dataset = _text(document.get("dataset"))
    kind = _protocol(document).get("kind")
    return (order.index(dataset) if dataset in order else len(order), 1 if kind == "zero-shot" else 0)


@dataclass(frozen=True)
class ColumnGroup:
    """The columns of one results document: its readable title and its directions."""

    title: str
    directions: tuple[str, ...]  # as the document names them, "audio->visual"
    source: str  # where it came from (file stem), for messages
    origin: str = ""
    protocol: str = ""  # the caption sentence

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(_arrow(d) for d in self.directions)


@dataclass
class PaperTable:
    """The paper-layout table (see the module docstring). Arrays are ``(n_models, n_columns)``
    with the columns of :attr:`groups` in order; ``mean`` / ``std`` are MAP in % (``nan``
    where not run), ``n`` the number of folds (0 where not run)."""

    models: list[str]  # registry names (the documents' keys), in the poster's order
    displays: list[str]  # their printed names
    groups: list[ColumnGroup]
    mean: np.ndarray
    std: np.ndarray
    n: np.ndarray
    metric: str = "MAP"
    digits: int = 2
    notes: list[str] = field(default_factory=list)  # failed models etc.
    common: str = ""  # the protocol shared by every group

    # ------------------------------------------------------------------ structure
    @property
    def columns(self) -> list[tuple[str, str]]:
        """``(group title, direction label)`` of every column."""
        return [(g.title, label) for g in self.groups for label in g.labels]

    @property
    def best(self) -> np.ndarray:
        """Boolean ``(n_models, n_columns)``: the largest mean of each column (all of them on
        an exact tie); nothing in an empty column."""
        out = np.zeros(self.mean.shape, dtype=bool)
        for j in range(self.mean.shape[1]):
            col = self.mean[:, j]
            if np.isfinite(col).any():
                out[:, j] = col == np.nanmax(col)
        return out

    @property
    def empty(self) -> bool:
        return not self.models or not self.groups

    @property
    def caption(self) -> str:
        head = (f"{self.metric} (%) of class-level cross-modal retrieval, mean ± std over folds "
                f"(sample std, ddof=1); best of each column in bold; {MISSING} = not run.")
        return " ".join(x for x in [head, self.common, *(g.protocol for g in self.groups), *self.notes] if x)

    def cell(self, i: int, j: int) -> str:
        """The printed cell: ``mean ± std`` (``digits`` decimals), the mean for one fold, ``–``."""
        if self.n[i, j] == 0:
            return MISSING
        text = f"{self.mean[i, j]:.{self.digits}f}"
        return text + (f" ± {self.std[i, j]:.{self.digits}f}" if self.n[i, j] > 1 else "")

    def cells(self) -> list[list[str]]:
        return [[self.cell(i, j) for j in range(self.mean.shape[1])] for i in range(len(self.models))]

    # ------------------------------------------------------------------ pandas
    def to_frame(self):
        """Display strings as a pandas DataFrame: index ``Model``, two-level columns
        (dataset, direction)."""
        import pandas as pd

        columns = pd.MultiIndex.from_tuples(self.columns, names=["dataset", "direction"])
        return pd.DataFrame(self.cells(), index=pd.Index(self.displays, name="Model"), columns=columns)

    def styled(self):
        """:meth:`to_frame` with the best of each column in bold (a pandas Styler, what the app shows)."""
        import pandas as pd

        frame = self.to_frame()
        css = np.where(self.best, "font-weight: bold", "")
        return frame.style.apply(lambda _: pd.DataFrame(css, index=frame.index, columns=frame.columns), axis=None)

    # ------------------------------------------------------------------ text formats
    def to_text(self) -> str:
        """Plain text for a terminal: a dataset header line over its directions; ``*`` marks the best."""
        best = self.best
        cells = [[c + ("*" if best[i, j] else " ") if c != MISSING else c + " " for j, c in enumerate(row)]
                 for i, row in enumerate(self.cells())]
        labels = [label + " " for _, label in self.columns]
        widths = [max(len(labels[j]), *(len(r[j]) for r in cells)) for j in range(len(labels))] if cells else \
            [len(x) for x in labels]
        first = max([len("Model"), *(len(d) for d in self.displays)])
        # widen a group's columns when its title is longer than they are together
        start = 0
        for g in self.groups:
            k = len(g.directions)
            span = sum(widths[start:start + k]) + 2 * (k - 1)
            extra = len(g.title) - span
            for j in range(max(extra, 0)):  # spread the overflow over the group's columns
                widths[start + j % k] += 1
            start += k
        group_line, start = [" " * first], 0
        for g in self.groups:
            k = len(g.directions)
            span = sum(widths[start:start + k]) + 2 * (k - 1)
            group_line.append(g.title.center(span))
            start += k
        lines = ["  ".join(group_line).rstrip(),
                 "  ".join(["Model".ljust(first), *(x.rjust(w) for x, w in zip(labels, widths))]).rstrip(),
                 "  ".join(["-" * first, *("-" * w for w in widths)])]
        for d, row in zip(self.displays, cells):
            lines.append("  ".join([d.ljust(first), *(c.rjust(w) for c, w in zip(row, widths))]).rstrip())
        return "\n".join(lines) + "\n\n" + self.caption.replace("in bold", "marked *") + "\n"

    def to_markdown(self) -> str:
        """A Markdown (GitHub) table, headers ``dataset: direction``, best in ``**bold**``, the caption below."""
        def esc(text: str) -> str:
            return text.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")

        best = self.best
        header = ["Model", *(f"{esc(t)}: {esc(d)}" for t, d in self.columns)]
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":---", *(["---:"] * len(self.columns))]) + "|"]
        for i, (d, row) in enumerate(zip(self.displays, self.cells())):
            lines.append("| " + " | ".join([esc(d), *(f"**{c}**" if best[i, j] else c for j, c in enumerate(row))])
                         + " |")
        return "\n".join(lines) + f"\n\n*{esc(self.caption)}*\n"

    def to_csv(self) -> str:
        """Machine-readable CSV: one line per model (``model`` = registry name, ``display``),
        then for every column ``<dataset> | <direction> | mean`` / ``std`` / ``n`` (MAP in %,
        full precision; empty where not run) and ``... | best`` (1 or 0)."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        header = ["model", "display"]
        for t, d in self.columns:
            header += [f"{t} | {d} | {s}" for s in ("mean", "std", "n", "best")]
        writer.writerow(header)
        best = self.best
        for i, (key, d) in enumerate(zip(self.models, self.displays)):
            row: list[Any] = [key, d]
            for j in range(len(self.columns)):
                if self.n[i, j] == 0:
                    row += ["", "", 0, 0]
                else:
                    row += [repr(float(self.mean[i, j])), repr(float(self.std[i, j])), int(self.n[i, j]),
                            int(best[i, j])]
            writer.writerow(row)
        return buf.getvalue()

    def to_latex(self, label: str = "tab:results") -> str:
        """A LaTeX ``table`` with booktabs rules (``\\usepackage{booktabs}``): one
        ``\\multicolumn`` header per dataset with a ``\\cmidrule`` under it, the directions
        below, ``\\textbf`` for the best of each column, the caption above the table."""
        best = self.best
        n_cols = len(self.columns)
        spec = "l" + "".join(" " + "c" * len(g.directions) for g in self.groups)
        lines = [r"\begin{table}[t]", r"\centering", r"\small",
                 r"\caption{" + _latex(self.caption) + "}", r"\label{" + _latex(label) + "}",
                 r"\begin{tabular}{" + spec + "}", r"\toprule"]
        heads, rules, start = [""], [], 2
        for g in self.groups:
            k = len(g.directions)
            heads.append(r"\multicolumn{%d}{c}{%s}" % (k, _latex(g.title)))
            rules.append(r"\cmidrule(lr){%d-%d}" % (start, start + k - 1))
            start += k
        lines.append(" & ".join(heads) + r" \\")
        lines.append(" ".join(rules))
        lines.append(" & ".join(["Model", *(_latex(d) for _, d in self.columns)]) + r" \\")
        lines.append(r"\midrule")
        for i, d in enumerate(self.displays):
            row = [_latex(d)]
            for j in range(n_cols):
                c = _latex(self.cell(i, j))
                row.append(r"\textbf{" + c + "}" if best[i, j] else c)
            lines.append(" & ".join(row) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
        return "\n".join(lines) + "\n"

    # ------------------------------------------------------------------ images
    def figure(self):
        """The table drawn with matplotlib (booktabs look: three rules, dataset titles over
        their directions, the best in bold, the caption under it). Returns the Figure."""
        from matplotlib.figure import Figure

        cells, best = self.cells(), self.best
        n_rows = len(self.displays)
        char = 0.075  # inches per character at 9 pt
        first = max([5, *(len(d) for d in self.displays)]) * char + 0.3
        col_w = [max(len(lab), *(len(r[j]) for r in cells)) * char + 0.35 if cells else len(lab) * char + 0.35
                 for j, (_, lab) in enumerate(self.columns)]
        start = 0  # a group title wider than its columns widens them
        for g in self.groups:
            k = len(g.directions)
            need = len(g.title) * char + 0.2
            have = sum(col_w[start:start + k])
            if need > have:
                for j in range(start, start + k):
                    col_w[j] += (need - have) / k
            start += k
        width = first + sum(col_w) + 0.2
        row_h = 0.24
        caption = textwrap.fill(self.caption, width=max(40, int(width / (char * 0.75))))
        cap_lines = caption.count("\n") + 1
        height = row_h * (n_rows + 3) + 0.17 * cap_lines + 0.3
        fig = Figure(figsize=(width, height))
        ax = fig.add_axes([0, 0, 1, 1])
        ax.set_xlim(0, width)
        ax.set_ylim(height, 0)  # y grows downwards, like the table
        ax.axis("off")
        x_edges = np.concatenate([[0.1, 0.1 + first], 0.1 + first + np.cumsum(col_w)])
        centres = (x_edges[1:-1] + x_edges[2:]) / 2
        y = 0.15
        rule = dict(color="black", linewidth=1.0)
        ax.plot([0.1, x_edges[-1]], [y, y], **rule)  # toprule
        y += row_h * 0.75
        start = 0
        for g in self.groups:
            k = len(g.directions)
            lo, hi = x_edges[1 + start], x_edges[1 + start + k]
            ax.text((lo + hi) / 2, y, g.title, ha="center", va="center", fontsize=9)
            ax.plot([lo + 0.05, hi - 0.05], [y + row_h * 0.5] * 2, color="black", linewidth=0.5)  # cmidrule
            start += k
        y += row_h
        ax.text(0.15, y, "Model", ha="left", va="center", fontsize=9)
        for x, (_, lab) in zip(centres, self.columns):
            ax.text(x, y, lab, ha="center", va="center", fontsize=9)
        y += row_h * 0.6
        ax.plot([0.1, x_edges[-1]], [y, y], color="black", linewidth=0.6)  # midrule
        y += row_h * 0.5
        for i, d in enumerate(self.displays):
            ax.text(0.15, y, d, ha="left", va="center", fontsize=9)
            for j, x in enumerate(centres):
                ax.text(x, y, cells[i][j], ha="center", va="center", fontsize=9,
                        fontweight="bold" if best[i, j] else "normal")
            y += row_h
        y -= row_h * 0.5
        ax.plot([0.1, x_edges[-1]], [y, y], **rule)  # bottomrule
        ax.text(0.1, y + 0.12, caption, ha="left", va="top", fontsize=7, color="0.2")
        return fig

    def to_image(self, fmt: str = "png", dpi: int = 300) -> bytes:
        """The table as ``png`` (``dpi``), ``svg`` (text kept as ``<text>`` elements) or ``pdf`` bytes."""
        fmt = fmt.lower()
        if fmt not in ("png", "svg", "pdf"):
            raise ValueError(f"image format must be png, svg or pdf, got {fmt!r}")
        from crossmodal_core.figures_analysis import figure_bytes

        return figure_bytes(self.figure(), fmt, dpi=dpi)

    def export(self, fmt: str) -> bytes:
        """The table in one of :data:`FORMATS`, as bytes (text formats in UTF-8)."""
        fmt = fmt.lower()
        writers = {"text": self.to_text, "markdown": self.to_markdown, "csv": self.to_csv, "latex": self.to_latex}
        if fmt in writers:
            return writers[fmt]().encode("utf-8")
        if fmt in ("png", "svg", "pdf"):
            return self.to_image(fmt)
        raise ValueError(f"unknown table format {fmt!r}; choose one of {', '.join(FORMATS)}")


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "→": r"$\rightarrow$", "↔": r"$\leftrightarrow$", "±": r"$\pm$", "–": "--", "…": r"\dots{}"}


def _latex(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def _subset(document: Mapping[str, Any]) -> str:
    return "unseen" if document["protocol"].get("kind") == "zero-shot" else "test"


def _stat(record: Any, subset: str, direction: str, metric: str) -> tuple[float, float, int] | None:
    """``(mean, std, n)`` of one summary entry, or None when absent or malformed."""
    try:
        entry = record["summary"]["metrics"][subset][direction][metric]
    except (KeyError, TypeError, IndexError):
        return None
    if not isinstance(entry, dict):
        return None
    mean, std, n = _number(entry.get("mean")), _number(entry.get("std")), _number(entry.get("n"))
    if mean is None:
        return None
    n_folds = int(n) if n is not None and n >= 1 else 1
    return mean, (std if std is not None else 0.0), n_folds


def paper_table(documents: Sequence[Mapping[str, Any]], metric: str = "map") -> PaperTable:
    """The paper-layout table of class-level results documents.

    Parameters
    ----------
    documents : results documents (the JSON of :func:`crossmodal_core.evaluate.evaluate`), or
        the entries of :func:`crossmodal_core.report.load_documents` (``{"document", "origin",
        "source", ...}``); other kinds of document (paired, alignment) are skipped. One column
        group per document, in the order given; a zero-shot document shows its unseen classes.
    metric : summary key, ``"map"`` (default) or ``"mrr1"``; shown in %.

    Returns
    -------
    PaperTable (``empty`` when no document has a model).
    """
    entries = [d if "document" in d else {"document": d, "origin": "", "source": _text(d.get("dataset"))}
               for d in documents]
    entries = [e for e in entries if report.is_class_document(e["document"])]
    entries = sorted(entries, key=lambda e: _group_rank(e["document"]))  # stable: files keep their order
    common, shared = _shared_sentence([e["document"] for e in entries])
    origins = {e.get("origin") or "" for e in entries}
    groups: list[ColumnGroup] = []
    values: list[dict[str, tuple[float, float, int]]] = []  # per column: model -> stat
    displays: dict[str, str] = {}
    notes: list[str] = []
    seen_titles: dict[str, int] = {}
    for e in entries:
        doc = e["document"]
        title = dataset_title(doc)
        if len(origins) > 1 and e.get("origin"):
            title += f" [{_text(e['origin'])}]"
        seen_titles[title] = seen_titles.get(title, 0) + 1
        if seen_titles[title] > 1:  # two files of one dataset and protocol: name the file
            title += f" ({_text(e.get('source'), str(seen_titles[title]))})"
        directions = tuple(_text(d) for d in doc.get("directions", []) if isinstance(d, str)) \
            if isinstance(doc.get("directions"), list) else ()
        if not directions:
            continue
        subset = _subset(doc)
        group_values = [dict() for _ in directions]
        for key, rec in doc["models"].items():
            if not isinstance(key, str) or not isinstance(rec, dict):
                continue
            key = _text(key)
            displays.setdefault(key, _display(key, rec))
            if rec.get("error"):
                notes.append(f"{displays[key]} failed on {title}.")
            for k, direction in enumerate(directions):
                stat = _stat(rec, subset, direction, metric)
                if stat is not None:
                    group_values[k][key] = stat
        groups.append(ColumnGroup(title, directions, _text(e.get("source")), _text(e.get("origin")),
                                  _protocol_sentence(title, doc, shared)))
        values.extend(group_values)
    models = report.model_order(displays)
    shape = (len(models), len(values))
    mean, std, n = np.full(shape, np.nan), np.full(shape, np.nan), np.zeros(shape, dtype=int)
    for j, col in enumerate(values):
        for i, key in enumerate(models):
            if key in col:
                m, s, k = col[key]
                mean[i, j], std[i, j], n[i, j] = 100 * m, 100 * s, k
    label = {"map": "MAP", "mrr1": "MRR@1"}.get(metric, metric)
    return PaperTable(models, [displays[m] for m in models], groups, mean, std, n, metric=label, notes=notes,
                      common=common)


def _display(key: str, record: Mapping[str, Any]) -> str:
    shown = _text(record.get("display"))
    if shown:
        return shown
    from crossmodal_core.models import registry

    try:
        return registry.display_name(key)
    except KeyError:
        return key
