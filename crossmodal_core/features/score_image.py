"""The ``score_image`` view: a fragment's engraving as a fixed-size grayscale raster whose
x axis follows time, and its split into the time segments of ``audio_seq``.

Route: :func:`crossmodal_core.render.fragment_staff_svg` (verovio, one staff system, no
lyrics / title / tempo mark) -> :func:`rasterize_svg` (``resvg``, no browser) -> a vertical
window around the staff -> a horizontal warp that puts every note and rest at its onset time.

Conventions (:func:`score_image`)
---------------------------------
- Shape ``(IMAGE_HEIGHT, IMAGE_WIDTH)`` = ``(64, 256)``, ``uint8`` **ink**: 0 = paper, 255 =
  full ink (so right padding is zeros). The dataset stores ``(n, 1, 64, 256)``: the channel
  axis lets a model pick a 2-D CNN tower from the view's rank alone.
- Rows: a fixed window of :data:`WINDOW_SPACES` (10.67) staff spaces around the staff (its top
  line :data:`SPACES_ABOVE` spaces below the top edge), so a pitch position is the same row in
  every image: :data:`PX_PER_SPACE` = 6 pixels per staff space, staff lines on rows 20, 26,
  32, 38, 44 (a line's centre on a row's centre, so lines are one crisp row), a step of the
  scale = 3 rows. Notes up to 3 ledger lines above and 2 below (3.4 / 3.25 spaces) fit;
  farther ink (a higher note, the tip of a long stem) is cut.
- Columns: the clef, key and time signature first, at the engraving's own scale (the same
  pixels per staff space as the rows; squeezed to at most :data:`MAX_PREFIX_COLUMNS`), ending
  at the first note's notehead: that column is time 0 (``t0``, stored as the metadata
  column ``score_image_t0``). From there the columns follow time linearly: every note and
  rest is moved so that its notehead's left edge sits at ``t0 + onset_ql * px_per_ql`` and
  the end of the staff at the end of the last note; between those anchors the engraving is
  stretched or squeezed linearly (area-averaged, so squeezing keeps the total ink).
  ``px_per_ql`` = :data:`PX_PER_QUARTER` (12 columns per quarter note) where the fragment
  fits, else whatever fits the width (``(IMAGE_WIDTH - t0) / length_ql``); columns per
  second = ``px_per_ql * tempo_bpm / 60`` (stored as ``score_image_cols_per_s``).
- Rendering is deterministic: the SVG's ids are seeded, resvg draws the glyph paths with no
  font (no text is left in the staff-only engraving) and all arithmetic is NumPy on fixed
  inputs; the same fragment gives the same bytes.

Safety: :func:`rasterize_svg` takes any SVG text but renders only self-contained documents of
bounded size (no DTD or entities, no reference outside the document, no embedded image) onto
a canvas whose size the caller fixes; anything else raises :class:`ScoreImageError`.
"""

from __future__ import annotations

import io
import math
import re
import xml.etree.ElementTree as ET
from typing import Sequence

import numpy as np

from crossmodal_core.features.resample import resample_columns, resample_columns_rows

#: bump when the images change (caches of computed views are keyed by it)
VIEW_VERSION = 2  # 2: anchors on the notes' own onsets through bracketless tuplets
IMAGE_HEIGHT = 64
IMAGE_WIDTH = 256
#: 6 rows per staff space, 64 rows = 10.67 spaces: the staff and about 3.3 spaces above and below
PX_PER_SPACE = 6.0
WINDOW_SPACES = IMAGE_HEIGHT / PX_PER_SPACE
#: staff spaces from the top edge to the staff's top line: its centre falls on the centre of
#: row 20 (20.5 rows), so the five lines are crisp rows 20, 26, 32, 38, 44
SPACES_ABOVE = 20.5 / PX_PER_SPACE
#: columns per quarter note where the fragment fits
PX_PER_QUARTER = 12.0
#: the clef / key / time signature take at most this many columns (a 7-sharp key is squeezed)
MAX_PREFIX_COLUMNS = 64
#: the engraving is drawn at this many times the target resolution, then area-averaged
SUPERSAMPLE = 2
#: columns per time segment in :func:`score_image_segments` (rows are kept)
SEGMENT_COLUMNS = 4

#: refuse SVG text longer than this (a 70-note fragment's staff engraving is about 60 k)
MAX_SVG_CHARS = 4_000_000
#: refuse canvases larger than this (pixels) or wider / taller than MAX_CANVAS_SIDE
MAX_CANVAS_PIXELS = 1 << 24
MAX_CANVAS_SIDE = 1 << 15

_SVG_NS = "{http://www.w3.org/2000/svg}"
_XLINK = "{http://www.w3.org/1999/xlink}href"
_TRANSLATE = re.compile(r"translate\(\s*(-?[\d.]+)[\s,]+(-?[\d.]+)\s*\)")
_PATH_H = re.compile(r"^M\s*(-?[\d.]+)[\s,]+(-?[\d.]+)\s*L\s*(-?[\d.]+)[\s,]+(-?[\d.]+)\s*$")
_ROOT_ATTRS = re.compile(r"\s(?:width|height|viewBox|preserveAspectRatio)=\"[^\"]*\"")
_HREF = re.compile(r"(?:href|src)\s*=\s*[\"']\s*([^\"']*)", re.IGNORECASE)
_URL = re.compile(r"url\(\s*[\"']?\s*([^)\"'\s]*)", re.IGNORECASE)
# an element start: optional namespace prefix (``svg:``, ``xlink:``, any prefix bound to SVG) and name
_ELEMENT = re.compile(r"<([A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)")
_FORBIDDEN_ELEMENTS = ("image", "foreignobject", "script", "iframe")
#: refuse more ``<use>`` elements than this, or more elements drawn through them in all (a
#: 70-note fragment's staff engraving has a few hundred ``<use>`` of one-path glyphs)
MAX_SVG_USES = 20_000
MAX_SVG_USE_DRAWN = 200_000


class ScoreImageError(ValueError):
    """An SVG that cannot or may not be rasterised, or an engraving without a staff."""


# ---------------------------------------------------------------------- SVG -> pixels
def check_svg(svg: str) -> None:
    """Refuse SVG text that could reach outside itself or blow up: too long, a DTD or entity,
    an ``<image>`` / ``<foreignObject>`` / ``<script>`` (namespaced forms such as ``<svg:image>``
    too) or an element in the xlink namespace, an ``href`` / ``url()`` that is not a
    ``#fragment`` of the same document, or ``<use>`` fan-out (:func:`_check_use_fanout`), or
    text that is not well-formed XML. Raises :class:`ScoreImageError`."""
    if not isinstance(svg, str):
        raise ScoreImageError(f"SVG must be text, got {type(svg).__name__}")
    if len(svg) > MAX_SVG_CHARS:
        raise ScoreImageError(f"SVG of {len(svg):,} characters is larger than the {MAX_SVG_CHARS:,} allowed")
    low = svg.lower()
    if "<svg" not in low:
        raise ScoreImageError("not an SVG document (no <svg> element)")
    for bad in ("<!doctype", "<!entity", "<image", "<foreignobject", "<script", "<iframe", "@import"):
        if bad in low:
            raise ScoreImageError(f"SVG holds {bad.lstrip('<!@')!r}, which a score engraving never needs; refused")
    for prefix, name in _ELEMENT.findall(svg):
        # namespaced forms (<svg:image>, <x:script> with x bound to SVG) draw like the plain ones
        if prefix.lower() == "xlink:":
            raise ScoreImageError(f"SVG holds the element <{prefix}{name}>, which a score engraving never needs; refused")
        if name.lower() in _FORBIDDEN_ELEMENTS:
            raise ScoreImageError(f"SVG holds {name.lower()!r} (<{prefix}{name}>), which a score engraving never needs; refused")
    for ref in _HREF.findall(svg) + _URL.findall(svg):
        if not ref.startswith("#"):
            raise ScoreImageError(f"SVG refers outside itself ({ref[:60]!r}); only #fragment references are allowed")
    _check_use_fanout(svg)


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _check_use_fanout(svg: str) -> None:
    """Bound what ``<use>`` can multiply: a ``<use>`` whose target holds a ``<use>`` (nesting
    multiplies the drawing exponentially, or loops) is refused, and so are more than
    ``MAX_SVG_USES`` ``<use>`` or more than ``MAX_SVG_USE_DRAWN`` elements drawn through them."""
    try:  # (no DTD or entity got this far: check_svg refused them)
        root = ET.fromstring(svg)
    except ET.ParseError as exc:
        raise ScoreImageError(f"SVG is not well-formed XML ({exc})") from None
    ids = {el.get("id"): el for el in root.iter() if el.get("id") is not None}
    uses = drawn = 0
    for el in root.iter():
        if _local(el.tag) != "use":
            continue
        uses += 1
        ref = el.get(_XLINK) or el.get("href") or ""
        target = ids.get(ref[1:]) if ref.startswith("#") else None
        if target is not None:
            for sub in target.iter():
                drawn += 1
                if _local(sub.tag) == "use":
                    raise ScoreImageError(f"SVG <use> of {ref[:60]!r} refers to an element holding a <use> "
                                          "(nested references multiply the drawing); refused")
        if uses > MAX_SVG_USES or drawn > MAX_SVG_USE_DRAWN:
            raise ScoreImageError(f"SVG draws more through <use> than the {MAX_SVG_USES:,} <use> / "
                                  f"{MAX_SVG_USE_DRAWN:,} elements allowed; refused")


def rasterize_svg(svg: str, width: int, height: int, viewbox: Sequence[float] | None = None) -> np.ndarray:
    """Draw an SVG onto a ``height x width`` canvas and return its ink.

    Parameters
    ----------
    svg : str
        An SVG document (checked by :func:`check_svg`).
    width, height : int
        Canvas size in pixels (each at most ``MAX_CANVAS_SIDE``, together at most
        ``MAX_CANVAS_PIXELS``): the document is drawn into exactly this canvas, whatever
        size it claims.
    viewbox : (x, y, w, h) in the root element's user units, optional
        The region drawn onto the canvas, stretched to fill it (``preserveAspectRatio="none"``);
        default: the document's own ``viewBox``.

    Returns
    -------
    ink : np.ndarray, shape (height, width), float32 in [0, 1]
        ``alpha * (1 - luminance)`` of the drawing over a transparent canvas: 0 = nothing
        drawn, 1 = opaque black.
    """
    check_svg(svg)
    width, height = int(width), int(height)
    if not (1 <= width <= MAX_CANVAS_SIDE and 1 <= height <= MAX_CANVAS_SIDE and width * height <= MAX_CANVAS_PIXELS):
        raise ScoreImageError(f"canvas {width} x {height} is outside the allowed size "
                              f"(sides 1..{MAX_CANVAS_SIDE}, at most {MAX_CANVAS_PIXELS:,} pixels)")
    match = re.search(r"<svg\b[^>]*>", svg)
    if match is None:
        raise ScoreImageError("not an SVG document (no <svg> start tag)")
    tag = match.group(0)
    if viewbox is None:
        found = re.search(r"\sviewBox=\"([^\"]*)\"", tag)
        if found is None:
            raise ScoreImageError("the SVG has no viewBox: give the region to draw")
        viewbox = [float(v) for v in found.group(1).replace(",", " ").split()]
    vb = [float(v) for v in viewbox]
    if len(vb) != 4 or not all(math.isfinite(v) for v in vb) or vb[2] <= 0 or vb[3] <= 0:
        raise ScoreImageError(f"viewBox {viewbox!r} is not (x, y, width > 0, height > 0)")
    attrs = (f' width="{width}" height="{height}" viewBox="{vb[0]:.6g} {vb[1]:.6g} {vb[2]:.6g} {vb[3]:.6g}"'
             ' preserveAspectRatio="none"')
    root = _ROOT_ATTRS.sub("", tag[:-1].rstrip("/")) + attrs + ("/>" if tag.endswith("/>") else ">")
    document = svg[:match.start()] + root + svg[match.end():]
    import resvg_py
    from PIL import Image

    try:
        png = bytes(resvg_py.svg_to_bytes(svg_string=document, width=width, height=height, skip_system_fonts=True))
        with Image.open(io.BytesIO(png)) as im:
            rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0
    except (ValueError, OSError) as exc:
        raise ScoreImageError(f"the SVG cannot be drawn ({type(exc).__name__}: {str(exc)[:200]})") from None
    if rgba.shape[:2] != (height, width):  # resvg keeps the aspect ratio of a canvas it sizes itself
        raise ScoreImageError(f"the renderer gave {rgba.shape[1]} x {rgba.shape[0]} pixels, not {width} x {height}")
    luminance = rgba[..., :3] @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    return np.clip(rgba[..., 3] * (1.0 - luminance), 0.0, 1.0)


# ---------------------------------------------------------------------- engraving geometry
def _viewbox(el: ET.Element) -> list[float] | None:
    raw = el.get("viewBox")
    try:
        vb = [float(v) for v in raw.replace(",", " ").split()] if raw else None
    except ValueError:
        return None
    return vb if vb is not None and len(vb) == 4 and vb[2] > 0 and vb[3] > 0 else None


def staff_geometry(svg: str) -> dict:
    """Where verovio put things, from its SVG (inner ``definition-scale`` units).

    Returns
    -------
    dict with ``scale`` (root units per inner unit), ``lines`` (the 5 staff-line y of the
    first staff, top to bottom), ``x_end`` (right end of the staff lines), ``x`` (element id
    -> x of the first glyph drawn inside it: a note's notehead, a rest), ``prefix_end`` (the
    right edge of the clef / key / time signature glyph origins, see below).
    """
    check_svg(svg)
    try:
        root = ET.fromstring(svg)
    except ET.ParseError as exc:
        raise ScoreImageError(f"the SVG is not well-formed XML ({exc})") from None
    outer = _viewbox(root)
    inner_el = next((el for el in root.iter(f"{_SVG_NS}svg") if "definition-scale" in (el.get("class") or "")), None)
    inner = _viewbox(inner_el) if inner_el is not None else None
    if outer is None or inner is None:
        raise ScoreImageError("not a verovio engraving (no definition-scale viewBox)")
    lines: list[float] = []
    x_end = 0.0
    xs: dict[str, float] = {}
    for g in root.iter(f"{_SVG_NS}g"):
        kind = (g.get("class") or "").split()
        if "staff" in kind:
            ys = []
            for path in g.findall(f"{_SVG_NS}path"):
                m = _PATH_H.match((path.get("d") or "").strip())
                if m and m.group(2) == m.group(4):
                    ys.append(float(m.group(2)))
                    x_end = max(x_end, float(m.group(1)), float(m.group(3)))
            if not lines and len(ys) == 5:
                lines = sorted(ys)
        elif ("note" in kind or "rest" in kind) and g.get("id"):
            use = next(g.iter(f"{_SVG_NS}use"), None)
            m = _TRANSLATE.search(use.get("transform") or "") if use is not None else None
            if m:
                xs[g.get("id")] = float(m.group(1))
    if len(lines) != 5 or lines[4] <= lines[0]:
        raise ScoreImageError("the engraving has no five-line staff")
    return {"scale": outer[2] / inner[2], "outer": outer, "lines": lines, "x_end": x_end, "x": xs}


def _pin_inner_viewport(svg: str, outer: Sequence[float]) -> str:
    """Give verovio's nested ``definition-scale`` ``<svg>`` an explicit size (the root's
    original ``viewBox`` size): without one it takes 100 % of whatever region the root now
    shows, so cropping the root would rescale the whole drawing."""
    def fix(m: re.Match) -> str:
        tag = _ROOT_ATTRS.sub(lambda a: a.group(0) if "viewBox" in a.group(0) else "", m.group(0))
        return tag[:-1] + f' x="{outer[0]:.6g}" y="{outer[1]:.6g}" width="{outer[2]:.6g}" height="{outer[3]:.6g}">'
    out, n = re.subn(r"<svg\b[^>]*class=\"definition-scale\"[^>]*>", fix, svg, count=1)
    if n != 1:
        raise ScoreImageError("not a verovio engraving (no definition-scale element)")
    return out


# ---------------------------------------------------------------------- the view
def warp_anchors(geometry: dict, events: Sequence[tuple[str, float]], end_ql: float,
                 px_per_source: float) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Source column -> target column anchors of the time warp (see module docstring).

    ``px_per_source``: target columns per inner SVG unit at the engraving's own scale.
    Returns ``(source_x, target_x, t0, px_per_ql)``: increasing anchor positions (source in
    inner units, target in columns), the column of time 0 and the columns per quarter note.
    """
    xs = geometry["x"]
    timed = [(q, xs[i]) for i, q in events if i in xs and q >= 0]
    if not timed:
        raise ScoreImageError("no engraved note or rest matches the timemap")
    timed.sort()
    x_first = timed[0][1] if timed[0][0] == 0 else None
    if x_first is None:
        raise ScoreImageError("the engraving has no event at time 0")
    t0 = min(x_first * px_per_source, float(MAX_PREFIX_COLUMNS))
    length = max(float(end_ql), timed[-1][0], 1e-6)
    px_per_ql = min(PX_PER_QUARTER, (IMAGE_WIDTH - t0) / length)
    src, tgt = [0.0], [0.0]
    for q, x in timed + [(length, max(geometry["x_end"], timed[-1][1]))]:
        if x > src[-1] and t0 + q * px_per_ql > tgt[-1]:  # strictly increasing (one anchor per onset)
            src.append(x)
            tgt.append(t0 + q * px_per_ql)
    return np.array(src), np.array(tgt), t0, px_per_ql


def engraving_image(svg: str, events: Sequence[tuple[str, float]], end_ql: float) -> tuple[np.ndarray, float, float]:
    """Rasterise a staff engraving (:func:`crossmodal_core.render.fragment_staff_svg`) onto
    the fixed grid of the module docstring.

    Returns
    -------
    image : (IMAGE_HEIGHT, IMAGE_WIDTH) uint8 ink
    t0 : float, the column of time 0 (the first note's notehead)
    px_per_ql : float, columns per quarter note
    """
    geo = staff_geometry(svg)
    top, bottom = geo["lines"][0], geo["lines"][4]
    space = (bottom - top) / 4.0
    y0 = top - SPACES_ABOVE * space
    window = WINDOW_SPACES * space
    px_per_source = IMAGE_HEIGHT / window  # target pixels per inner unit (both axes)
    src_x, tgt_x, t0, px_per_ql = warp_anchors(geo, events, end_ql, px_per_source)
    x_end = float(src_x[-1])
    ss = SUPERSAMPLE
    cols = int(math.ceil(x_end * px_per_source * ss))
    rows = IMAGE_HEIGHT * ss
    if cols * rows > MAX_CANVAS_PIXELS:
        raise ScoreImageError(f"the engraving is {x_end / space:.0f} staff spaces long, too long for one image")
    s = geo["scale"]
    ink = rasterize_svg(_pin_inner_viewport(svg, geo["outer"]), cols, rows,
                        viewbox=(0.0, y0 * s, cols / (px_per_source * ss) * s, window * s))
    ink = ink.reshape(IMAGE_HEIGHT, ss, cols).mean(axis=1)  # rows: exact box filter
    # target column edges -> source columns (supersampled grid), through the anchors
    content = float(tgt_x[-1])
    n = min(IMAGE_WIDTH, int(math.ceil(content - 1e-9)))
    edges_t = np.minimum(np.arange(n + 1, dtype=np.float64), content)
    edges_s = np.interp(edges_t, tgt_x, src_x) * px_per_source * ss
    out = np.zeros((IMAGE_HEIGHT, IMAGE_WIDTH), dtype=np.float64)
    widths = np.diff(edges_t)
    out[:, :n] = resample_columns(ink, edges_s) * widths  # a last partial column keeps its share
    # a one-sided ulp may round 0.5 up or down: round half to even on a fixed grid is stable
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8), t0, px_per_ql


def score_image(fragment) -> tuple[np.ndarray, float, float]:
    """The ``score_image`` of one :class:`~crossmodal_core.notes.Fragment`.

    Returns
    -------
    image : np.ndarray, shape (IMAGE_HEIGHT, IMAGE_WIDTH), uint8 ink (0 = paper)
    t0 : float, column of time 0 of the fragment's audio
    cols_per_s : float, columns per second of audio (``px_per_ql * tempo_bpm / 60``)

    Raises :class:`crossmodal_core.render.RenderError` (notes that cannot be engraved) or
    :class:`ScoreImageError`.
    """
    from crossmodal_core import render

    # (durations without a notation are engraved snapped to a 1/48 quarter grid, at most
    # 0.13 column away: render.fragment_musicxml)
    svg, events, end_ql = render.fragment_staff_svg(fragment)
    image, t0, px_per_ql = engraving_image(svg, events, end_ql)
    return image, t0, px_per_ql * float(fragment.tempo_bpm) / 60.0


def segment_column_edges(t0: float | np.ndarray, cols_per_s: float | np.ndarray, edges_s: np.ndarray) -> np.ndarray:
    """Columns of an image bounding time stretches: ``t0 + edges_s * cols_per_s``, clipped to
    the image. ``edges_s``: (K + 1,) seconds (e.g. :func:`~crossmodal_core.features.audio.segment_times`),
    or (n, K + 1) with ``t0`` and ``cols_per_s`` of shape (n, 1) (broadcast)."""
    t0 = np.asarray(t0, dtype=np.float64)
    cols_per_s = np.asarray(cols_per_s, dtype=np.float64)
    return np.clip(t0 + np.asarray(edges_s, dtype=np.float64) * cols_per_s, 0.0, float(IMAGE_WIDTH))


def score_image_segments(images: np.ndarray, t0: np.ndarray, cols_per_s: np.ndarray, edges_s: np.ndarray,
                         columns: int = SEGMENT_COLUMNS) -> np.ndarray:
    """Split score images into time segments: the ``score_image_seq`` view.

    Parameters
    ----------
    images : (n, 1, H, W) or (n, H, W) uint8 ink
    t0, cols_per_s : (n,) column of time 0 and columns per second of each image
    edges_s : (n, K + 1) segment edges in seconds of each item (the ``audio_seq`` segments:
        :func:`~crossmodal_core.features.audio.segment_times` of the item's audio)
    columns : columns each segment is area-resampled to

    Returns
    -------
    (n, K, H * columns) float32 in [0, 1]: segment ``k`` of item ``i`` is the stretch of the
    image between the columns of ``edges_s[i, k]`` and ``edges_s[i, k + 1]`` (time-aligned
    with ``audio_seq[i, k]``), resampled to ``columns`` columns, flattened row by row
    (``(H, columns)`` in C order). The clef / key / time signature before ``t0`` are in no
    segment (they have no time).
    """
    imgs = np.asarray(images)
    if imgs.ndim == 4:
        imgs = imgs[:, 0]
    if imgs.ndim != 3:
        raise ValueError(f"images must be (n, 1, H, W) or (n, H, W), got shape {np.shape(images)}")
    n, h, _ = imgs.shape
    edges_s = np.asarray(edges_s, dtype=np.float64)
    if edges_s.ndim != 2 or edges_s.shape[0] != n or edges_s.shape[1] < 2:
        raise ValueError(f"edges_s must be (n, K + 1) = ({n}, K + 1), got shape {edges_s.shape}")
    k = edges_s.shape[1] - 1
    c = int(columns)
    t0 = np.asarray(t0, dtype=np.float64).reshape(n)
    cols_per_s = np.asarray(cols_per_s, dtype=np.float64).reshape(n)
    cols = segment_column_edges(t0[:, None], cols_per_s[:, None], edges_s)  # (n, K + 1)
    # every segment's sub-column edges in one (K * columns + 1) grid per item
    sub = np.arange(c, dtype=np.float64) / c
    grid = np.concatenate([(cols[:, :-1, None] + sub * np.diff(cols, axis=1)[:, :, None]).reshape(n, k * c),
                           cols[:, -1:]], axis=1)
    out = np.empty((n, k, h * c), dtype=np.float32)
    block = 256  # items per step: ~35 MB of float64 cumulative sums
    for start in range(0, n, block):
        seg = resample_columns_rows(imgs[start:start + block], grid[start:start + block]) / 255.0  # (b, h, K * c)
        b = seg.shape[0]
        out[start:start + b] = seg.reshape(b, h, k, c).transpose(0, 2, 1, 3).reshape(b, k, h * c)
    return out
