"""The poster's figures, drawn with matplotlib from what the app already stored.

- :func:`poster_figure`: the embedding maps side by side (default: original features, C-CCA,
  TNN-C-CCA), one panel per model, panel letters and titles, one shared legend, the same
  colour per class in every panel and the modality shown by the marker shape. The panels are
  the explorer's (:func:`poster_panels` reads the stored projections of
  :mod:`crossmodal_core.projection` through :mod:`crossmodal_core.appdata.panels`; nothing is
  trained or projected unless asked with ``prepare=True``). With many classes (the music
  dataset has 439 works) the ``top_n`` largest are coloured and the rest drawn in grey, and
  the legend says so.
- :func:`retrieval_figure`: the "visualised retrieval results": a query and its top-K in a
  row, each framed green (relevant) or red (not relevant) with a tick or cross, its class and
  a thumbnail of the item as its modality: the stored score raster for an image view such as
  ``score_image`` (:mod:`crossmodal_core.appdata.images`, the pixels the model read), a score snippet (verovio via
  :func:`crossmodal_core.render.fragment_svg`, rasterised with resvg and cached on disk), a
  log-mel spectrogram of the synthesised audio (:func:`crossmodal_core.synth.audio_for`,
  librosa), the lyrics, or, for feature files without media, a heat strip of the item's
  feature vector, labelled as such.
- :func:`figure_bytes` / :func:`save_figure`: SVG, PDF or PNG (300 dpi); files are written
  atomically (:func:`crossmodal_core.store.atomic_path`).

Figures are plain :class:`matplotlib.figure.Figure` objects (no pyplot, so no global figure
state is shared between the app's threads). A poster figure is ``figsize`` inches at any
format, so a 300-dpi PNG of the default ``(13, 4.8)`` figure is 3900 x 1440 pixels.
"""

from __future__ import annotations

import io
import shlex
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from crossmodal_core import store

if TYPE_CHECKING:  # the heavy imports stay lazy: the CLI's other commands never pay them
    from matplotlib.figure import Figure

    from crossmodal_core.appdata.panels import PanelData, RetrievalView
    from crossmodal_core.data.catalog import LoadedDataset

__all__ = ["FORMATS", "MIME_TYPES", "DEFAULT_POSTER_MODELS", "DEFAULT_TOP_N", "MissingArtifactError",
           "stored_model", "poster_panels", "poster_figure", "retrieval_figure", "score_thumbnail", "audio_thumbnail",
           "figure_bytes", "save_figure", "figure_filename"]

#: export formats and their MIME types (download buttons)
FORMATS = ("pdf", "svg", "png")
MIME_TYPES = {"pdf": "application/pdf", "svg": "image/svg+xml", "png": "image/png"}
DPI = 300
#: the poster's three panels
DEFAULT_POSTER_MODELS = ("original", "ccca", "tnn-ccca")
#: classes coloured by default; the rest are grey
DEFAULT_TOP_N = 10
MAX_TOP_N = 18  # tab20 without its two greys, which would read as "other classes"
MARKERS = ("o", "^", "s", "D")  # per modality, in the pair's order: audio circles, visual/sheet triangles
GREY = "#b8b8b8"
RELEVANT_COLOUR, IRRELEVANT_COLOUR, QUERY_COLOUR = "#2ca02c", "#d62728", "#1f77b4"
THUMBNAIL_VERSION = 1  # part of the cache key of rasterised score snippets
SCORE_THUMBNAIL_WIDTH = 900  # pixels

ProgressCallback = Callable[[float, str], None]


class MissingArtifactError(LookupError):
    """A model or projection the figure needs is not stored; ``command`` builds it (``None``:
    only ``prepare=True`` / ``--prepare`` can)."""

    def __init__(self, message: str, command: str | None):
        how = f"build it with `{command}` (or pass --prepare)" if command else "pass --prepare to build it"
        super().__init__(f"{message}: {how}")
        self.command = command


# ====================================================================== poster figure: panels
def _label_option(ds, label_name: str) -> str:
    from crossmodal_core import appdata

    return "" if label_name in (ds.default_label, appdata.PAIR_LABEL) else f" --label {shlex.quote(label_name)}"


def stored_model(app: "LoadedDataset", name: str, pair: Sequence[str], label_name: str, *, prepare: bool = False,
                 data_arg: str | None = None, progress: ProgressCallback | None = None):
    """The newest stored model ``name`` for ``pair`` and ``label_name`` (the one the app shows);
    missing: trained when ``prepare``, else :class:`MissingArtifactError` with the ``train`` command."""
    from crossmodal_core import appdata
    from crossmodal_core.models import registry

    name = registry.get_spec(name).name
    model = appdata.find_trained(app, name, pair, label_name)
    if model is not None:
        return model
    if not prepare:
        what = (f"no {registry.display_name(name)} is trained on {app.dataset.name!r} for {pair[0]}/{pair[1]} "
                f"with label {label_name!r}")
        if label_name == appdata.PAIR_LABEL and app.dataset.default_label is not None:
            # `train` fits a labelled dataset with one of its label sets; the true-pair label is the app's
            raise MissingArtifactError(what + " (the train command fits one of the dataset's label sets)", None)
        raise MissingArtifactError(
            what, f"python -m crossmodal_core train --data {shlex.quote(data_arg or app.entry.id)} --model {name} "
                  f"--views {pair[0]},{pair[1]}{_label_option(app.dataset, label_name)}")
    return appdata.train_model(app, name, tuple(pair), label_name, progress=progress)


def poster_panels(app: "LoadedDataset", models: Sequence[str] = DEFAULT_POSTER_MODELS,
                  pair: Sequence[str] | None = None, method: str = "umap", label_name: str | None = None, *,
                  prepare: bool = False, data_arg: str | None = None,
                  progress: ProgressCallback | None = None) -> list["PanelData"]:
    """The explorer's panels of ``models`` from the model store and the stored projections.

    Parameters
    ----------
    app : the opened dataset (:func:`crossmodal_core.data.catalog.open_dataset`)
    models : model names of the registry, or ``"original"`` for the raw features
    pair : the two views drawn (default: the app's first pair)
    method : ``"umap"`` or ``"pca"``
    label_name : the relevance label the models were trained with (default: the app's first)
    prepare : train a missing model and compute a missing projection (with ``progress``)
        instead of raising :class:`MissingArtifactError`
    data_arg : how the user named the dataset, for the commands in error messages

    Returns
    -------
    One :class:`~crossmodal_core.appdata.panels.PanelData` per model, in the order given.
    """
    from crossmodal_core import appdata
    from crossmodal_core.models import registry

    ds = app.dataset
    pair = tuple(pair) if pair else appdata.view_pairs(ds)[0]
    if len(pair) != 2 or any(v not in ds.views for v in pair):
        raise ValueError(f"pair must name two views of {ds.name!r} ({ds.view_names}), got {list(pair)}")
    label_name = label_name or appdata.label_choices(ds)[0]
    if method not in ("umap", "pca"):
        raise ValueError(f"unknown map {method!r}; choose umap or pca")
    data_arg = data_arg or app.entry.id
    label_opt = _label_option(ds, label_name)
    names = [appdata.ORIGINAL if m == appdata.ORIGINAL else registry.get_spec(m).name for m in models]
    if not names:
        raise ValueError("no model to draw")
    # every model first: a missing one is reported before any projection work
    resolved = [None if name == appdata.ORIGINAL else
                stored_model(app, name, pair, label_name, prepare=prepare, data_arg=data_arg, progress=progress)
                for name in names]
    panels = []
    for model in resolved:
        if not appdata.has_panel_projection(app, model, pair, method):
            title = appdata.ORIGINAL_TITLE if model is None else model.title
            if not prepare:
                raise MissingArtifactError(
                    f"the {method.upper()} map of {title} ({pair[0]}/{pair[1]}) on {ds.name!r} is not stored",
                    f"python -m crossmodal_core project --data {shlex.quote(data_arg)} --method {method} "
                    f"--pair {pair[0]},{pair[1]}{label_opt}")
            appdata.compute_panel_projection(app, model, pair, method, label_name, progress=progress)
        panel = appdata.panel_projection(app, model, pair, method, label_name)
        if panel is None:  # stored a moment ago, then removed: say so rather than draw a gap
            raise MissingArtifactError(f"the {method.upper()} map disappeared while reading it",
                                       f"python -m crossmodal_core project --data {shlex.quote(data_arg)} "
                                       f"--method {method} --pair {pair[0]},{pair[1]}{label_opt}")
        panels.append(panel)
    return panels


# ====================================================================== poster figure: drawing
def _plain(text) -> str:
    """Text from a dataset or the user shown as written: matplotlib reads ``$...$`` as math, and a
    class name such as ``a$\\x$`` would otherwise fail the export or change what it says."""
    return str(text).replace("$", r"\$")


def _palette(n: int) -> list[tuple[float, float, float, float]]:
    """``n`` class colours: tab10's strong colours, then tab20's light ones, never a grey."""
    from matplotlib import colormaps

    tab20 = colormaps["tab20"]
    colours = [tab20(i) for i in list(range(0, 20, 2)) + list(range(1, 20, 2)) if i not in (14, 15)]
    return colours[:n]


def _top_classes(panels: Sequence["PanelData"], labels: np.ndarray, top_n: int) -> tuple[list[int], int]:
    """The ``top_n`` classes with the most drawn items (ties: smaller class index first) and the
    number of classes drawn at all."""
    rows = np.unique(np.concatenate([np.asarray(p.rows) for p in panels]))
    classes, counts = np.unique(labels[rows], return_counts=True)
    order = np.lexsort((classes, -counts))
    return sorted(int(c) for c in classes[order][:top_n]), len(classes)


def _axis_labels(panel: "PanelData", views: Sequence[str]) -> tuple[str, str]:
    method = panel.method.upper()
    if panel.joint:
        return f"{method} 1", f"{method} 2"
    return f"{method} 1 ({' | '.join(views)} mapped separately, side by side)", f"{method} 2"


def poster_figure(panels: Sequence["PanelData"], labels: np.ndarray, class_names: Sequence[str],
                  views: Sequence[str], *, top_n: int = DEFAULT_TOP_N, label_title: str | None = None,
                  title: str | None = None, figsize: tuple[float, float] = (13.0, 4.8),
                  point_size: float = 9.0) -> "Figure":
    """One figure with the ``panels`` side by side and one shared legend.

    Parameters
    ----------
    panels : the explorer's panels (:func:`poster_panels` or the explorer page's own), each with
        ``coords`` (one ``(n_points, 2)`` array per view) and ``rows`` (dataset rows, shared)
    labels : ``(n_items,)`` integer class of every dataset row (the colouring label)
    class_names : name of each class index
    views : the modality of each coordinate array (marker shape: circle, triangle, square, diamond)
    top_n : colour the ``top_n`` classes with the most points (at most 20); the rest are grey
    label_title : what the colours are (legend title), e.g. ``"work"``
    title : optional figure title (e.g. the dataset, with "SYNTHETIC" for generated data)
    figsize : inches; the PNG is ``figsize * dpi`` pixels exactly (constrained layout, no crop)

    Returns
    -------
    matplotlib Figure with ``len(panels)`` axes; every scatter's ``gid`` is
    ``points-<view index>-c<class>`` (``-other`` for the grey classes), the same class has the same
    facecolour in every panel.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    if not panels:
        raise ValueError("no panel to draw")
    if not 1 <= int(top_n) <= MAX_TOP_N:
        raise ValueError(f"top_n must be between 1 and {MAX_TOP_N}, got {top_n}")
    views = list(views)
    if len(views) > len(MARKERS):
        raise ValueError(f"at most {len(MARKERS)} modalities can be told apart by marker, got {len(views)}")
    labels = np.asarray(labels)
    for i, panel in enumerate(panels):
        if len(panel.coords) != len(views):
            raise ValueError(f"panel {i} ({panel.title}) has {len(panel.coords)} coordinate sets for "
                             f"{len(views)} views")
        if len(panel.rows) and (panel.rows.min() < 0 or panel.rows.max() >= len(labels)):
            raise ValueError(f"panel {i} ({panel.title}) has rows outside the {len(labels)} labels")
    top, n_classes = _top_classes(panels, labels, int(top_n))
    colours = dict(zip(top, _palette(len(top))))
    n_grey = n_classes - len(top)

    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    letters = "abcdefghijklmnopqrstuvwxyz"
    for i, (ax, panel) in enumerate(zip(axes, panels)):
        lab = labels[np.asarray(panel.rows)]
        for m, xy in enumerate(panel.coords):
            xy = np.asarray(xy)
            grey = ~np.isin(lab, top)
            if grey.any():  # background first, so coloured classes stay on top
                ax.scatter(xy[grey, 0], xy[grey, 1], s=point_size * 0.7, marker=MARKERS[m], color=GREY,
                           alpha=0.45, linewidths=0, gid=f"points-{m}-other")
            for c in top:
                keep = lab == c
                if keep.any():
                    ax.scatter(xy[keep, 0], xy[keep, 1], s=point_size, marker=MARKERS[m], color=colours[c],
                               alpha=0.75, linewidths=0, gid=f"points-{m}-c{c}")
        ax.set_title(f"({letters[i % 26]})", loc="left", fontweight="bold", fontsize=11)
        ax.set_title(_plain(panel.title), fontsize=11)
        xlabel, ylabel = _axis_labels(panel, views)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [Line2D([], [], ls="", marker="s", markersize=7, color=colours[c], label=_plain(class_names[c]))
               for c in top]
    if n_grey:
        handles.append(Line2D([], [], ls="", marker="s", markersize=7, color=GREY,
                              label=f"other {n_grey} classes (grey)"))
    handles += [Line2D([], [], ls="", marker=MARKERS[m], markersize=7, color="#444444", label=f"{view} (marker)")
                for m, view in enumerate(views)]
    what = _plain(label_title or "class")
    legend_title = (f"colour: {what}, the {len(top)} largest\nof {n_classes} classes" if n_grey
                    else f"colour: {what}")
    fig.legend(handles=handles, loc="outside right upper", title=legend_title, fontsize=8, title_fontsize=8,
               frameon=False, ncols=1 if len(handles) <= 16 else 2)
    if title:
        fig.suptitle(_plain(title), fontsize=12)
    return fig


# ====================================================================== thumbnails
def _drop_tempo(svg: str) -> str:
    """The SVG without verovio's tempo mark: its note glyph is set in a web font (Leipzig) that
    resvg cannot load, and it would show as a box; a thumbnail does not need it."""
    import xml.etree.ElementTree as ET

    ns = "http://www.w3.org/2000/svg"
    ET.register_namespace("", ns)
    ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")
    root = ET.fromstring(svg)
    for parent in root.iter():
        for child in list(parent):
            if "tempo" in (child.get("class") or "").split():
                parent.remove(child)
    return ET.tostring(root, encoding="unicode")


def _png_array(data: bytes) -> np.ndarray:
    from matplotlib.image import imread

    return imread(io.BytesIO(data), format="png")


def _trim_white(image: np.ndarray, pad: int = 8) -> np.ndarray:
    """The image cropped to its non-white content plus ``pad`` pixels (verovio's page is as wide
    as asked, so a short fragment leaves most of it empty)."""
    ink = image[..., :3].min(axis=-1) < 0.95
    if not ink.any():
        return image
    rows, cols = np.nonzero(ink.any(axis=1))[0], np.nonzero(ink.any(axis=0))[0]
    return image[max(0, rows[0] - pad): rows[-1] + pad + 1, max(0, cols[0] - pad): cols[-1] + pad + 1]


def score_thumbnail(fragment, width: int = SCORE_THUMBNAIL_WIDTH) -> np.ndarray:
    """The engraved fragment as an RGBA raster ``(height, at most width, 4)`` float in [0, 1],
    cropped to the notes.

    Engraving costs about a second per fragment, so the PNG is cached under
    ``<cache>/thumbnails`` keyed by the fragment's content and ``width``."""
    from crossmodal_core import render

    key = store.cache_key("score-thumbnail", THUMBNAIL_VERSION, fragment.to_dict(), int(width))
    path = store.child_path(store.cache_dir() / "thumbnails", f"score-{key}", suffix=".png")
    if path.is_file():
        try:
            return _trim_white(_png_array(path.read_bytes()))
        except (OSError, ValueError, SyntaxError):  # a corrupt cache entry is rebuilt, never trusted
            pass
    import resvg_py

    svg, _timemap = render.fragment_svg(fragment)
    png = bytes(resvg_py.svg_to_bytes(svg_string=_drop_tempo(svg), background="#ffffff", width=int(width)))
    store.atomic_write_bytes(path, png)
    return _trim_white(_png_array(png))


def audio_thumbnail(fragment, n_mels: int = 64) -> tuple[np.ndarray, float]:
    """Log-mel spectrogram ``(n_mels, frames)`` in dB (0 = the fragment's peak) of the
    synthesised audio (cached by :func:`crossmodal_core.synth.audio_for`), and its length in s.
    librosa compiles code on its first use in a process (a few seconds)."""
    import librosa

    from crossmodal_core import synth

    y = synth.audio_for(fragment)
    sr = synth.DEFAULT_SAMPLE_RATE
    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_mels=n_mels, n_fft=2048, hop_length=512)
    return librosa.power_to_db(mel, ref=np.max(mel) if mel.size and np.max(mel) > 0 else 1.0, top_db=80.0), \
        len(y) / sr


def _feature_grid(vector: np.ndarray, width: int = 64) -> np.ndarray:
    """A feature vector ``(d,)`` as a grid of ``width`` columns (padding NaN, drawn blank)."""
    v = np.asarray(vector, dtype=np.float32).ravel()
    cols = min(width, max(1, v.size))
    rows = -(-v.size // cols)
    grid = np.full(rows * cols, np.nan, dtype=np.float32)
    grid[: v.size] = v
    return grid.reshape(rows, cols)


def _draw_item(ax, app: "LoadedDataset", view: str, row: int, scale: tuple[float, float]) -> str:
    """Draw item ``row`` of ``view`` into ``ax``; returns what the thumbnail is (a caption)."""
    from crossmodal_core.appdata import images

    if view in images.raster_views(app):  # the stored raster the model read: nothing re-engraved
        image = images.raster(app, view, row)
        ax.imshow(255 - image, cmap="gray", vmin=0, vmax=255, aspect="equal", interpolation="antialiased")
        return f"{view} ({image.shape[0]} x {image.shape[1]} raster)"
    fragment = app.fragments[row] if app.fragments is not None else None
    if fragment is not None and view.startswith("sheet"):
        try:
            ax.imshow(score_thumbnail(fragment), interpolation="antialiased")
            return "score (engraved by verovio)"
        except Exception as exc:  # noqa: BLE001 -- an unrenderable score is a note on the figure, not a crash
            ax.text(0.5, 0.5, "score not rendered", ha="center", va="center", fontsize=7, transform=ax.transAxes)
            return f"score not rendered ({type(exc).__name__})"
    if fragment is not None and view.startswith("audio"):
        mel, seconds = audio_thumbnail(fragment)
        ax.imshow(mel, origin="lower", aspect="auto", cmap="magma", vmin=-80, vmax=0,
                  extent=(0, seconds, 0, mel.shape[0]), interpolation="nearest")
        return f"log-mel of the synthesised audio ({seconds:.1f} s)"
    if fragment is not None and view.startswith("lyric"):
        text = textwrap.fill(" ".join(str(fragment.lyrics).split()), 26, max_lines=6, placeholder=" …")
        ax.text(0.5, 0.5, _plain(f"\u201c{text}\u201d"), ha="center", va="center", fontsize=7, style="italic",
                transform=ax.transAxes, wrap=True)
        return "lyrics"
    x = np.asarray(app.dataset.views[view][row], dtype=np.float32)
    grid = _feature_grid(x) if x.ndim == 1 else x.T  # a sequence view: (d, T) heat map
    ax.imshow(grid, aspect="auto", cmap="viridis", vmin=scale[0], vmax=scale[1], interpolation="nearest")
    shape = f"{x.shape[0]}-d" if x.ndim == 1 else f"{x.shape[0]} x {x.shape[1]}"
    return f"{view} feature vector ({shape}), no media"


def _feature_scale(app: "LoadedDataset", view: str, rows: Sequence[int]) -> tuple[float, float]:
    """Shared colour limits of the shown items of a view (2nd-98th percentile), so strips compare."""
    x = np.asarray(app.dataset.views[view][np.asarray(rows)], dtype=np.float32)
    x = x[np.isfinite(x)]
    if not x.size:
        return 0.0, 1.0
    lo, hi = np.percentile(x, [2, 98])
    return float(lo), float(hi if hi > lo else lo + 1.0)


# ====================================================================== retrieval figure
def retrieval_figure(app: "LoadedDataset", rv: "RetrievalView", query_pos: int, k: int = 5, *,
                     class_names: Sequence[str] | None = None, title: str | None = None,
                     cell_size: tuple[float, float] = (2.3, 3.1)) -> "Figure":
    """A query and its top-``k`` results in a row, as the retrieval page shows them.

    Parameters
    ----------
    app : the opened dataset (its ``fragments`` give the media of the music dataset)
    rv : the model's retrieval view (:func:`crossmodal_core.appdata.retrieval_view`)
    query_pos : position of the query among ``rv.rows`` (the test items)
    k : results shown (1 to 20)
    class_names : names of ``rv.labels``' classes (default: those of the model's relevance label)
    title : figure title (default: model, direction, the query's AP and the dataset)
    cell_size : inches per item (width, height)

    Returns
    -------
    matplotlib Figure with ``k + 1`` axes: the query (blue frame), then rank 1..k framed green with
    a tick when relevant (same class as the query), red with a cross when not; a star marks the
    query's true pair. Axes ``gid``: ``query``, ``result-<rank>-relevant`` / ``-irrelevant``.
    """
    from matplotlib.figure import Figure

    from crossmodal_core import appdata
    from crossmodal_core.appdata import images

    if not 1 <= int(k) <= 20:
        raise ValueError(f"k must be between 1 and 20, got {k}")
    if not 0 <= int(query_pos) < len(rv.rows):
        raise ValueError(f"query position {query_pos} outside the {len(rv.rows)} test items")
    q = appdata.query_results(rv, int(query_pos), int(k))
    label_name = rv.model.label_name if rv.model is not None else None
    if class_names is None:
        _, class_names = appdata.labels_for(app.dataset, label_name)
    query_row = int(rv.rows[int(query_pos)])
    # (view, dataset row, position among the test items, (rank, score, relevant, true pair) or None)
    items = [(rv.query_view, query_row, int(query_pos), None)] + [
        (rv.gallery_view, int(r), int(pos), (rank, float(s), bool(rel), bool(p)))
        for rank, (r, pos, s, rel, p) in enumerate(zip(q["rows"], q["positions"], q["scores"], q["relevant"],
                                                       q["is_pair"]), 1)]
    scales = {}
    for view in {rv.query_view, rv.gallery_view}:
        if app.fragments is None and app.dataset.views[view].ndim >= 2:
            scales[view] = _feature_scale(app, view, [r for v, r, _, _ in items if v == view])
    # a score snippet is a wide strip: its cells get more width so the notes stay readable
    rasters = images.raster_views(app)
    widths = [1.8 if v in rasters or (app.fragments is not None and v.startswith("sheet")) else 1.0
              for v, _, _, _ in items]
    fig = Figure(figsize=(cell_size[0] * sum(widths), cell_size[1]), layout="constrained")
    axes = fig.subplots(1, len(items), squeeze=False, width_ratios=widths)[0]
    texts = appdata.item_text(app, [r for _, r, _, _ in items], None)
    query_class = rv.labels[int(query_pos)]
    for ax, (view, row, pos, result), text in zip(axes, items, texts):
        caption = _draw_item(ax, app, view, row, scales.get(view, (0.0, 1.0)))
        ax.set_xticks([])
        ax.set_yticks([])
        cls = str(class_names[int(rv.labels[pos])])
        if result is None:
            colour, head, gid = QUERY_COLOUR, f"query ({view})", "query"
        else:
            rank, score, relevant, is_pair = result
            colour = RELEVANT_COLOUR if relevant else IRRELEVANT_COLOUR
            head = f"#{rank} {'✓' if relevant else '✗'}  {score:.3f}" + ("  ★ pair" if is_pair else "")
            gid = f"result-{rank}-{'relevant' if relevant else 'irrelevant'}"
        ax.set_gid(gid)
        for spine in ax.spines.values():
            spine.set_edgecolor(colour)
            spine.set_linewidth(3.5)
        ax.set_title(head, color=colour, fontsize=9, fontweight="bold")
        short = textwrap.shorten(text.split(" [")[0], 60, placeholder="…")
        lines = [textwrap.fill(short, 30, max_lines=2, placeholder="…")]
        if label_name != appdata.PAIR_LABEL:  # with true-pair relevance the class is the item itself
            line = f"{label_name or 'class'}: {cls}"
            lines.append(line if len(line) <= 34 else line[:33] + "…")  # one line, even for a long name
        lines.append(textwrap.fill(caption, 34, max_lines=2, placeholder="…"))
        ax.set_xlabel(_plain("\n".join(lines)), fontsize=6.5)
    same = int(np.sum(rv.labels == query_class))
    if title is None:
        model_title = rv.model.title if rv.model is not None else "model"
        title = (f"{model_title}: {rv.query_view} → {rv.gallery_view} on {app.dataset.name}"
                 + ("  (SYNTHETIC data)" if app.dataset.is_synthetic else "")
                 + f" · AP of this query {100 * q['ap']:.1f} % · {same} relevant of {len(rv.rows)}")
    fig.suptitle(_plain(title), fontsize=10)
    return fig


# ====================================================================== export
def _save_kwargs(fmt: str, dpi: int) -> dict:
    # no creation date in the file (matplotlib's SVG clip ids still differ between runs)
    meta = {"pdf": {"CreationDate": None}, "svg": {"Date": None}, "png": {}}[fmt]
    return {"format": fmt, "dpi": dpi, "metadata": meta}


def _check_format(fmt: str) -> str:
    fmt = str(fmt).lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"unknown figure format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return fmt


def _savefig(fig: "Figure", target, fmt: str, dpi: int) -> None:
    fig.savefig(target, **_save_kwargs(fmt, dpi))


def figure_bytes(fig: "Figure", fmt: str, dpi: int = DPI) -> bytes:
    """The figure as ``fmt`` (``pdf``, ``svg`` or ``png``, at ``dpi`` for PNG) bytes."""
    fmt = _check_format(fmt)
    buf = io.BytesIO()
    _savefig(fig, buf, fmt, dpi)
    return buf.getvalue()


def save_figure(fig: "Figure", path: str | Path, fmt: str | None = None, dpi: int = DPI) -> Path:
    """Write the figure to ``path`` atomically (temporary file, then rename); the format is
    ``fmt`` or the path's suffix."""
    path = Path(path)
    fmt = _check_format(fmt or path.suffix or "")
    with store.atomic_path(path, suffix=f".{fmt}") as tmp:
        _savefig(fig, tmp, fmt, dpi)
    return path


def figure_filename(kind: str, dataset: str, parts: Sequence[str], fmt: str) -> str:
    """A safe download name, e.g. ``crossmodal_poster_music21_original-ccca-tnn-ccca.pdf``."""
    return store.slug(f"crossmodal_{kind}_{dataset}_{'-'.join(parts)}") + f".{_check_format(fmt)}"
