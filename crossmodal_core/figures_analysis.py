"""Error-analysis figures for a poster: per-class AP, top-1 confusion, worst queries.

Pure matplotlib (the object API, no pyplot state, so it is safe in Streamlit's threads), drawn
from what :func:`crossmodal_core.appdata.panels.error_analysis` and
:func:`crossmodal_core.appdata.panels.worst_query_examples` compute once per (model,
direction, label): the figures never score anything themselves.

- :func:`per_class_ap_figure`: one bar per class, sorted from the best to the worst AP, the
  MAP as a dashed line; past ``max_classes`` classes, the lowest ones (the ones to discuss).
- :func:`confusion_figure`: the top-1 confusion as a heatmap, rows = class of the query,
  columns = class of its top-1 result, row-normalised (share of the class's queries), class
  names on both axes, counts written in the cells when the matrix is small.
- :func:`worst_queries_figure`: the worst queries (lowest AP), each with its top-ranked wrong
  results (rank, item, class, score).
- :func:`figure_bytes`: PNG (300 dpi), SVG (text kept as ``<text>``) or PDF bytes of a figure.
"""

from __future__ import annotations

import io
import textwrap
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["FIGURE_FORMATS", "per_class_ap_figure", "confusion_figure", "worst_queries_figure", "figure_bytes"]

#: the export formats and their MIME types
FIGURE_FORMATS: dict[str, str] = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf"}


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _short(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[:width - 1] + "…"


def per_class_ap_figure(per_class: Mapping[str, float], *, mean_ap: float | None = None, title: str = "",
                        max_classes: int = 40):
    """Bars of AP (%) per class, sorted descending.

    Parameters
    ----------
    per_class : class name -> mean AP of its queries (fraction in [0, 1]; ``nan`` = no relevant item)
    mean_ap : the MAP (fraction), drawn as a dashed line when given
    title : figure title (model, direction)
    max_classes : past this many classes, only the ``max_classes`` lowest are drawn (said in the title)

    Returns
    -------
    matplotlib Figure
    """
    if max_classes < 1:
        raise ValueError(f"max_classes must be >= 1, got {max_classes}")
    finite = {str(k): float(v) for k, v in per_class.items() if v is not None and np.isfinite(v)}
    if not finite:
        raise ValueError("no class has a finite AP to draw")
    items = sorted(finite.items(), key=lambda kv: (-kv[1], kv[0]))
    note = ""
    if len(items) > max_classes:
        note = f" (the {max_classes} lowest of {len(items)} classes)"
        items = items[-max_classes:]
    names, values = [k for k, _ in items], np.array([100 * v for _, v in items])
    fig = _figure(max(4.5, 0.28 * len(items) + 1.5), 3.6)
    ax = fig.add_subplot()
    colours = np.where(values >= (100 * mean_ap if mean_ap is not None else np.median(values)), "#4c72b0", "#dd8452")
    ax.bar(np.arange(len(items)), values, color=colours, width=0.75)
    if mean_ap is not None:
        ax.axhline(100 * mean_ap, color="0.3", linestyle="--", linewidth=1)
        ax.text(len(items) - 0.5, 100 * mean_ap, f"MAP {100 * mean_ap:.1f} %", ha="right", va="bottom", fontsize=8,
                color="0.3")
    ax.set_xticks(np.arange(len(items)), [_short(n, 28) for n in names], rotation=60, ha="right", fontsize=7)
    ax.set_xlim(-0.6, len(items) - 0.4)
    ax.set_ylim(0, 105)
    ax.set_ylabel("AP (%)")
    ax.grid(axis="y", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title((title or "Per-class AP") + note, fontsize=10)
    return fig


def confusion_figure(confusion: np.ndarray, class_names: Sequence[str], *, title: str = "",
                     normalise: bool = True, max_classes: int = 40, annotate_up_to: int = 12):
    """The top-1 confusion ``(n_classes, n_classes)`` as a heatmap with class names.

    Parameters
    ----------
    confusion : int counts, rows = class of the query, columns = class of its top-1 result
    class_names : ``n_classes`` names, in the matrix's order
    normalise : colour by the share of each row (the class's queries), else by count
    max_classes : refuse (``ValueError``) a matrix larger than this: unreadable as a figure
    annotate_up_to : write the counts in the cells up to this many classes
    """
    c = np.asarray(confusion)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] != len(class_names) or c.shape[0] == 0:
        raise ValueError(f"confusion must be square with one row per class name; got {c.shape} and "
                         f"{len(class_names)} names")
    n = c.shape[0]
    if n > max_classes:
        raise ValueError(f"{n} classes is too many for a readable confusion figure (at most {max_classes}); "
                         "pick a coarser relevance label")
    shown = c / np.maximum(c.sum(axis=1, keepdims=True), 1) if normalise else c.astype(float)
    size = max(3.8, 0.32 * n + 2.2)
    fig = _figure(size + 1.0, size)
    ax = fig.add_subplot()
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalise else max(shown.max(), 1))
    labels = [_short(x, 24) for x in class_names]
    ax.set_xticks(np.arange(n), labels, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(np.arange(n), labels, fontsize=7)
    ax.set_xlabel("class of the top-1 result")
    ax.set_ylabel("class of the query")
    if n <= annotate_up_to:
        for i in range(n):
            for j in range(n):
                if c[i, j]:
                    ax.text(j, i, str(int(c[i, j])), ha="center", va="center", fontsize=7,
                            color="white" if shown[i, j] > 0.6 * (im.norm.vmax or 1) else "black")
    fig.colorbar(im, ax=ax, shrink=0.8, label="share of the class's queries" if normalise else "queries")
    ax.set_title(title or "Top-1 confusion", fontsize=10)
    return fig


def worst_queries_figure(examples: Sequence[Mapping[str, Any]], *, title: str = "", text_width: int = 44):
    """The worst queries and their top-ranked wrong results, as a figure.

    Parameters
    ----------
    examples : one mapping per query (worst first), as
        :func:`crossmodal_core.appdata.panels.worst_query_examples` returns: ``"text"``,
        ``"class"``, ``"ap"`` (fraction) and ``"wrong"``: a list of mappings with ``"rank"``,
        ``"text"``, ``"class"`` and ``"score"``
    title : figure title (model, direction)
    text_width : characters kept of each item's description
    """
    if not examples:
        raise ValueError("no query to draw")
    n_wrong = max(1, max(len(e.get("wrong", [])) for e in examples))
    col_w = 0.075 * text_width + 0.4
    width = col_w * (1 + n_wrong) + 0.4
    row_h = 0.62
    fig = _figure(width, row_h * (len(examples) + 1) + 0.5)
    ax = fig.add_subplot()
    ax.set_xlim(0, width)
    ax.set_ylim(len(examples) + 0.9, -0.2)
    ax.axis("off")
    ax.text(0.1, 0.2, "query (AP)", fontsize=8, fontweight="bold", va="center")
    for k in range(n_wrong):
        ax.text(0.1 + col_w * (k + 1), 0.2, f"wrong result {k + 1} (rank, score)", fontsize=8,
                fontweight="bold", va="center")
    ax.plot([0.1, width - 0.1], [0.5, 0.5], color="black", linewidth=0.6)
    for i, e in enumerate(examples, start=1):
        wrap = lambda s: "\n".join(textwrap.wrap(_short(s, 2 * text_width), text_width)[:2])  # noqa: E731
        ax.text(0.1, i, f"{wrap(e['text'])}\n[{_short(e['class'], 30)}]  AP {100 * float(e['ap']):.1f} %",
                fontsize=7, va="center")
        for k, w in enumerate(e.get("wrong", [])):
            ax.text(0.1 + col_w * (k + 1), i,
                    f"✗ #{int(w['rank'])}  {float(w['score']):.3f}\n{wrap(w['text'])}\n[{_short(w['class'], 30)}]",
                    fontsize=7, va="center", color="#8b1a1a")
        ax.plot([0.1, width - 0.1], [i + 0.5, i + 0.5], color="0.85", linewidth=0.5)
    ax.set_title(title or "Worst queries and their top-ranked wrong results", fontsize=10)
    return fig


def figure_bytes(fig, fmt: str = "png", dpi: int = 300) -> bytes:
    """``fig`` saved as ``png`` (``dpi``), ``svg`` (text as ``<text>``, editable) or ``pdf``."""
    fmt = fmt.lower()
    if fmt not in FIGURE_FORMATS:
        raise ValueError(f"figure format must be one of {', '.join(FIGURE_FORMATS)}, got {fmt!r}")
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "pdf.fonttype": 42, "svg.hashsalt": "crossmodal"}):
        fig.savefig(buf, format=fmt, dpi=dpi, facecolor="white", bbox_inches="tight", pad_inches=0.08,
                    metadata={"Date": None} if fmt in ("svg", "pdf") else None)
    return buf.getvalue()
