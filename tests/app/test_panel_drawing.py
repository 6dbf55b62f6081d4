"""The explorer's drawing at 10^5-10^6 points: a seeded sample, a density of every point, and
selections that count every item in a box or lasso (checked against brute-force counts)."""

from __future__ import annotations

import numpy as np
import pytest

from crossmodal_core.appdata import panels


def in_polygon_reference(x: float, y: float, px: list[float], py: list[float]) -> bool:
    """Even-odd ray casting, one point at a time (the textbook rule, no library)."""
    inside = False
    j = len(px) - 1
    for i in range(len(px)):
        if (py[i] > y) != (py[j] > y):
            cross = px[i] + (y - py[i]) * (px[j] - px[i]) / (py[j] - py[i])
            if x < cross:
                inside = not inside
        j = i
    return inside


def make_panel(rng, n: int = 50_000, shift: bool = True) -> panels.PanelData:
    a = rng.normal(size=(n, 2)).astype(np.float32)
    b = (rng.normal(size=(n, 2)) + (np.array([5.0, 0.0]) if shift else 0.0)).astype(np.float32)
    rows = np.sort(rng.choice(10 * n, size=n, replace=False))  # dataset rows of the test items
    return panels.PanelData("t", "pca", [a, b], rows, joint=False, stored=True, description="PCA of all")


def test_draw_sample_is_seeded_uniform_and_sorted():
    a = panels.draw_sample(100_000, 5_000, seed=0)
    assert len(a) == 5_000 and len(np.unique(a)) == 5_000 and np.all(np.diff(a) > 0)
    np.testing.assert_array_equal(a, panels.draw_sample(100_000, 5_000, seed=0))
    assert not np.array_equal(a, panels.draw_sample(100_000, 5_000, seed=1))
    # uniform: each tenth of the items holds about a tenth of the sample (binomial sd ~ 21)
    counts = np.bincount(a // 10_000, minlength=10)
    assert np.all(np.abs(counts - 500) < 100), counts
    np.testing.assert_array_equal(panels.draw_sample(30, 100), np.arange(30))
    with pytest.raises(ValueError):
        panels.draw_sample(-1, 3)


def test_density_counts_every_point_of_every_modality(rng):
    panel = make_panel(rng, n=20_000)
    d = panels.density_grid(panel.coords, bins=40)
    assert d.counts.shape == (40, 40) and d.counts.sum() == 40_000
    pts = np.concatenate(panel.coords).astype(np.float64)
    # one bin by brute force: counts[j, i] holds x in bin i and y in bin j
    j, i = np.unravel_index(np.argmax(d.counts), d.counts.shape)
    x0, x1, y0, y1 = d.x_edges[i], d.x_edges[i + 1], d.y_edges[j], d.y_edges[j + 1]
    brute = np.sum((pts[:, 0] >= x0) & (pts[:, 0] < x1) & (pts[:, 1] >= y0) & (pts[:, 1] < y1))
    assert d.counts[j, i] == brute
    # the grid spans every point: the extreme points sit on the outer edges
    assert d.x_edges[0] == pytest.approx(pts[:, 0].min()) and d.x_edges[-1] == pytest.approx(pts[:, 0].max())
    assert d.y_edges[0] == pytest.approx(pts[:, 1].min()) and d.y_edges[-1] == pytest.approx(pts[:, 1].max())


def test_plan_states_the_sample_and_the_renderer(rng):
    big = make_panel(rng, n=50_000)
    plan = panels.plan_drawing(big, max_items=10_000)
    assert plan.sampled and plan.renderer == "webgl" and len(plan.positions) == 10_000
    assert plan.density is not None and plan.density.counts.sum() == 100_000
    np.testing.assert_array_equal(plan.positions, panels.plan_drawing(big, max_items=10_000).positions)
    assert panels.drawing_notice(plan) == (
        "Showing 10,000 of 50,000 items (100,000 points), sampled uniformly (seed 0), over the density of all "
        "of them (WebGL); a box or lasso selects every item in the region, not only the drawn ones.")
    small = make_panel(rng, n=1_000)
    plan = panels.plan_drawing(small)
    assert not plan.sampled and plan.renderer == "svg" and plan.density is None
    assert panels.drawing_notice(plan) == "All 1,000 items (2,000 points) drawn (SVG)."
    assert panels.plan_drawing(make_panel(rng, n=5_000)).renderer == "webgl"


def test_box_selection_counts_every_item_in_the_region_not_only_the_drawn(rng):
    panel = make_panel(rng)
    plan = panels.plan_drawing(panel, max_items=2_000)
    box = {"xref": "x", "yref": "y", "x": [0.5, -0.3], "y": [-0.2, 1.1]}  # corners in any order
    rows = panels.selection_rows(panel, {"selection": {"points": [], "box": [box], "lasso": []}})
    a, b = (c.astype(np.float64) for c in panel.coords)
    brute = [r for r, pa, pb in zip(panel.rows, a, b)
             if any(-0.3 <= p[0] <= 0.5 and -0.2 <= p[1] <= 1.1 for p in (pa, pb))]
    assert rows.tolist() == brute
    drawn_inside = np.isin(panel.rows[plan.positions], rows).sum()
    assert len(brute) > 5 * drawn_inside > 0  # the sample alone would have counted far fewer


def test_lasso_selection_matches_brute_force_ray_casting(rng):
    panel = make_panel(rng, n=3_000, shift=False)  # both modalities overlap: an item counts once
    # a non-convex star polygon around the origin
    angles = np.linspace(0, 2 * np.pi, 14, endpoint=False)
    radius = np.where(np.arange(14) % 2 == 0, 1.6, 0.6)
    px, py = (radius * np.cos(angles)).tolist(), (radius * np.sin(angles)).tolist()
    lasso = {"xref": "x", "yref": "y", "x": px, "y": py}
    got = panels.region_positions(panel.coords, lassos=[lasso])
    brute = [i for i in range(3_000)
             if any(in_polygon_reference(float(c[i, 0]), float(c[i, 1]), px, py) for c in panel.coords)]
    assert got.tolist() == brute and 100 < len(brute) < 3_000
    # two regions: the union; a clicked point (customdata = dataset row) is added
    box = {"x": [2.0, 3.0], "y": [2.0, 3.0]}
    clicked = int(panel.rows[0])
    rows = panels.selection_rows(panel, {"selection": {"points": [{"customdata": [clicked]}], "box": [box],
                                                       "lasso": [lasso]}})
    expected = set(panel.rows[brute].tolist()) | set(panel.rows[panels.region_positions(panel.coords, [box])]
                                                      .tolist()) | {clicked}
    assert rows.tolist() == sorted(expected)


def test_empty_or_malformed_events_select_nothing(rng):
    panel = make_panel(rng, n=100)
    assert panels.selection_rows(panel, None).tolist() == []
    assert panels.selection_rows(panel, {"selection": {"points": [], "box": [{"x": [1.0]}],
                                                       "lasso": [{"x": [0, 1], "y": [0, 1]}]}}).tolist() == []


def test_highlight_is_capped_and_counts_every_selected_item(rng):
    panel = make_panel(rng, n=20_000)
    selected = panel.rows[::4]  # 5,000 items, plus rows that are not in this panel
    shown, total = panels.highlight_positions(panel, np.concatenate([selected, [-5, 10**9]]), max_items=2_000)
    assert total == 5_000 and len(shown) == 2_000
    assert set(panel.rows[shown].tolist()) <= set(selected.tolist())
    shown_all, total = panels.highlight_positions(panel, selected[:10])
    assert total == 10 and panel.rows[shown_all].tolist() == selected[:10].tolist()
