"""Rasterisers for the ``score_image`` view: resvg (``resvg-py``) against CairoSVG, on the
engravings of the embedded dataset's fragments.

Usage::

    .venv/bin/python benchmarks/bench_score_raster.py [--n 60] [--seed 0] [--cairo-path DIR]

For ``n`` fragments drawn at random (fixed seed) it engraves each one once
(:func:`crossmodal_core.render.fragment_staff_svg`) and draws the SVG onto the same canvas the
view uses (the staff window, 2x supersampled: 128 rows, as wide as the engraving at that scale)
with both rasterisers, in the same process and order, and reports:

* CPU ms per drawing (``time.process_time``, so a loaded machine does not inflate it), median and
  total, and the ratio Cairo / resvg;
* the agreement of the two drawings: mean and maximum absolute ink difference (0..1) and the
  ink totals (a rasteriser that lost glyphs would show a lower total);
* whether each is deterministic (the same bytes on a second drawing).

CairoSVG is not a project dependency: it needs Debian's ``libcairo2`` and the ``cairosvg`` wheel
(``pip install --target DIR cairosvg`` and ``--cairo-path DIR`` keeps it out of the venv). The
view uses resvg (see the CARD's "Score images" section for the numbers and the reasons).
"""

from __future__ import annotations

import argparse
import io
import json
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cairo_ink(document: str, width: int, height: int) -> np.ndarray:
    """CairoSVG's drawing of an SVG whose root already carries width/height/viewBox, as ink."""
    import cairosvg
    from PIL import Image

    png = cairosvg.svg2png(bytestring=document.encode("utf-8"), output_width=width, output_height=height)
    with Image.open(io.BytesIO(png)) as im:
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0
    luminance = rgba[..., :3] @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    return np.clip(rgba[..., 3] * (1.0 - luminance), 0.0, 1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cairo-path", default=None, help="a folder holding the cairosvg package (pip --target)")
    parser.add_argument("--json", default=None, help="write the numbers here")
    args = parser.parse_args(argv)
    if args.cairo_path:
        sys.path.insert(0, args.cairo_path)
    from crossmodal_core import render
    from crossmodal_core.data.music.build import default_out_dir
    from crossmodal_core.features import score_image as si
    from crossmodal_core.notes import Fragment

    rows = json.loads((default_out_dir() / "fragments.json").read_text(encoding="utf-8"))
    rng = np.random.default_rng(args.seed)
    picks = sorted(rng.choice(len(rows), size=min(args.n, len(rows)), replace=False).tolist())
    jobs = []
    for i in picks:
        svg, _events, _end = render.fragment_staff_svg(Fragment.from_dict(rows[i]))
        geo = si.staff_geometry(svg)
        space = (geo["lines"][4] - geo["lines"][0]) / 4.0
        window = si.WINDOW_SPACES * space
        pps = si.IMAGE_HEIGHT / window * si.SUPERSAMPLE
        cols, rows_px = int(np.ceil(geo["x_end"] * pps)), si.IMAGE_HEIGHT * si.SUPERSAMPLE
        s = geo["scale"]
        vb = (0.0, (geo["lines"][0] - si.SPACES_ABOVE * space) * s, cols / pps * s, window * s)
        jobs.append((svg, cols, rows_px, vb))

    def resvg_draw(job):
        svg, cols, rows_px, vb = job
        return si.rasterize_svg(svg, cols, rows_px, viewbox=vb)

    def cairo_draw(job):
        svg, cols, rows_px, vb = job
        # the same document resvg gets: rasterize_svg's root rewrite, reproduced here
        tag = re.search(r"<svg\b[^>]*>", svg).group(0)
        attrs = (f' width="{cols}" height="{rows_px}" viewBox="{vb[0]:.6g} {vb[1]:.6g} {vb[2]:.6g} {vb[3]:.6g}"'
                 ' preserveAspectRatio="none"')
        root = si._ROOT_ATTRS.sub("", tag[:-1]) + attrs + ">"
        return cairo_ink(svg.replace(tag, root, 1), cols, rows_px)

    try:
        import cairosvg  # noqa: F401
        have_cairo = True
    except (ImportError, OSError) as exc:
        print(f"CairoSVG unavailable ({exc}): resvg only")
        have_cairo = False
    times: dict[str, list[float]] = {"resvg": [], "cairosvg": []}
    diffs, maxdiffs, ink_r, ink_c, same_r, same_c = [], [], [], [], True, True
    resvg_draw(jobs[0])  # warm both (library loading)
    if have_cairo:
        cairo_draw(jobs[0])
    for job in jobs:
        t = time.process_time()
        a = resvg_draw(job)
        times["resvg"].append(time.process_time() - t)
        same_r &= bool(np.array_equal(a, resvg_draw(job)))
        ink_r.append(float(a.sum()))
        if have_cairo:
            t = time.process_time()
            b = cairo_draw(job)
            times["cairosvg"].append(time.process_time() - t)
            same_c &= bool(np.array_equal(b, cairo_draw(job)))
            ink_c.append(float(b.sum()))
            diffs.append(float(np.abs(a - b).mean()))
            maxdiffs.append(float(np.abs(a - b).max()))
    out = {"n": len(jobs), "canvas_median": [int(np.median([j[2] for j in jobs])), int(np.median([j[1] for j in jobs]))]}
    for name, ts in times.items():
        if ts:
            out[name] = {"cpu_ms_median": round(1000 * statistics.median(ts), 2),
                         "cpu_s_total": round(sum(ts), 3)}
    out["resvg"]["deterministic"] = same_r
    if have_cairo:
        out["cairosvg"]["deterministic"] = same_c
        out["cairo_over_resvg_cpu"] = round(sum(times["cairosvg"]) / sum(times["resvg"]), 2)
        out["mean_abs_ink_diff"] = round(float(np.mean(diffs)), 5)
        out["max_abs_ink_diff"] = round(float(np.max(maxdiffs)), 4)
        out["ink_total_ratio_cairo_over_resvg"] = round(sum(ink_c) / sum(ink_r), 4)
    print(json.dumps(out, indent=1))
    if args.json:
        from crossmodal_core.store import atomic_write_text

        atomic_write_text(args.json, json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
