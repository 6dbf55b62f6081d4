"""Score images in a real browser: a click on a point of the explorer shows that item's score
raster under the panels, and the retrieval page shows the rasters of the top-K (decoded by
the browser: loaded, with the raster's own size). Screenshots go to ``$CROSSMODAL_SCREENSHOTS``
(a temporary folder by default), never to the committed ``assets/screenshots/``."""

from __future__ import annotations

import pytest

from tests.browser.test_browser import (app_url, assert_no_exception, chromium_page, open_page,  # noqa: F401
                                        screenshot, wait_rendered)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: the loaded <img> elements of the main block: (natural width, natural height, src prefix)
IMAGES_JS = """() => Array.from(document.querySelectorAll('[data-testid="stMain"] [data-testid="stImage"] img'))
  .filter(i => i.complete && i.naturalWidth > 0 && i.offsetParent !== null)
  .map(i => [i.naturalWidth, i.naturalHeight, i.getAttribute('src').slice(-4)])"""

#: page coordinates of the first drawn point of the second panel (plotly's own axis mapping)
POINT_JS = """() => {
  const p = document.querySelectorAll('.js-plotly-plot')[1];
  const xa = p._fullLayout.xaxis, ya = p._fullLayout.yaxis;
  // _fullData: the decoded traces (data keeps plotly's base64 typed arrays as sent)
  const t = p._fullData.find(t => t.visible === true && t.x && t.x.length && t.x[0] !== null && t.x[0] !== undefined);
  const box = p.getBoundingClientRect();
  return [box.left + xa._offset + xa.l2p(t.x[0]), box.top + ya._offset + ya.l2p(t.y[0])];
}"""


def score_set_query() -> str:
    from tests.app.test_score_images import score_set_id

    return f"dataset={score_set_id()}&pair=audio~score_image"


def test_a_click_in_the_explorer_shows_the_items_score_image(app_url, chromium_page, app_assets):  # noqa: F811
    page = chromium_page
    open_page(page, app_url, f"explorer?{score_set_query()}")
    page.wait_for_selector(".js-plotly-plot .scatterlayer .point", timeout=60_000)
    assert page.locator(".js-plotly-plot").count() == 3
    assert page.evaluate(IMAGES_JS) == []  # nothing selected yet: a hint, no image
    x, y = page.evaluate(POINT_JS)
    page.mouse.click(x, y)
    page.get_by_text("score_image of the selected items").first.wait_for(timeout=60_000)
    wait_rendered(page)
    assert_no_exception(page, "explorer after a click")
    shown = page.evaluate(IMAGES_JS)
    assert shown and all(s == [64, 16, ".png"] for s in shown), shown  # the 16 x 64 raster, as PNG
    screenshot(page, "explorer_score_images")


def test_retrieval_shows_score_images_for_the_results(app_url, chromium_page, app_assets):  # noqa: F811
    page = chromium_page
    open_page(page, app_url, f"retrieval?{score_set_query()}&dir=audio~score_image&k=4")
    assert_no_exception(page, "retrieval")
    shown = page.evaluate(IMAGES_JS)
    # the top 4, and the query's own score image (in its expander: in the page, folded)
    assert len(shown) == 5 and all(s == [64, 16, ".png"] for s in shown), shown
    screenshot(page, "retrieval_score_images")
