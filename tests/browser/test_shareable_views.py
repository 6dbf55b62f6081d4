"""Shareable views in a real browser: a deep link to the retrieval page opens that query with
that model, the page's link box holds the full address, a reload keeps the view, and going to
another page and back keeps the dataset and the query."""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlsplit

import pytest

from crossmodal_core import appdata
from tests.browser.test_browser import (app_url, assert_no_exception, chromium_page, open_page,  # noqa: F401
                                        screenshot, wait_rendered)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def url_params(page) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(page.url).query).items()}


def assert_view(page, item: str) -> None:
    main = page.locator('[data-testid="stMain"]')
    main.get_by_text(f"visual query: {item}").first.wait_for(timeout=60_000)
    main.get_by_text("Top 5 audio results (C-CCA)").first.wait_for(timeout=60_000)
    boxes = main.locator('[data-testid="stSelectbox"]')
    shown = [boxes.nth(i).evaluate("""e => e.textContent + ' ' + Array.from(e.querySelectorAll('input'))
                                        .map(i => i.value + ' ' + (i.getAttribute('aria-label') || '')).join(' ')""")
             for i in range(boxes.count())]
    assert "C-CCA" in shown[0], shown  # the model box
    assert any(f"{item} [" in s for s in shown[1:]), shown  # the query list shows the linked item
    assert_no_exception(page, "retrieval deep link")


def test_retrieval_deep_link_survives_reload_and_navigation(app_url, chromium_page, app_assets):  # noqa: F811
    page = chromium_page
    dataset = next(e.id for e in appdata.list_datasets() if e.kind == "file" and e.path.name.startswith("tiny_a"))
    app = appdata.load_dataset(dataset)
    _, test = appdata.split_indices(app.dataset)
    item = str(app.dataset.item_ids[test[11]])
    link = f"retrieval?dataset={quote(dataset)}&model=ccca&q={quote(item)}&dir=visual~audio&k=5"
    open_page(page, app_url, link)
    assert_view(page, item)
    assert page.locator('[data-testid="stAlert"]').filter(has_text="The link").count() == 0
    # the page wrote its whole view back into the address bar
    params = url_params(page)
    assert params["q"] == item and params["model"] == "ccca" and params["dataset"] == dataset, params
    # the link box holds the full address of this view (st.context.url gives the base)
    code = page.locator('[data-testid="stSidebar"] [data-testid="stCode"]').last.inner_text()
    assert code.startswith(f"{app_url}/retrieval?") and f"q={quote(item)}" in code, code
    screenshot(page, "retrieval_deep_link")

    page.reload(wait_until="domcontentloaded")
    wait_rendered(page)
    assert_view(page, item)

    # to the explorer: the dataset travels along; back to retrieval: the same query again
    page.locator('[data-testid="stSidebarNav"]').get_by_text("Embedding explorer").click()
    page.wait_for_url("**/explorer**", timeout=60_000)
    wait_rendered(page)
    assert_no_exception(page, "explorer after the deep link")
    page.wait_for_function("() => location.search.includes('panel1=')", timeout=60_000)
    assert url_params(page)["dataset"] == dataset
    page.locator('[data-testid="stSidebarNav"]').get_by_text("Retrieval").click()
    page.wait_for_url("**/retrieval**", timeout=60_000)
    wait_rendered(page)
    assert_view(page, item)
    assert url_params(page)["q"] == item


def test_a_garbage_link_shows_notices_and_the_default_view(app_url, chromium_page):  # noqa: F811
    page = chromium_page
    open_page(page, app_url, "retrieval?dataset=..%2F..%2Fetc%2Fpasswd&model=%3Cimg%20src%3Dx%3E&k=-4&q=" + "x" * 300)
    assert_no_exception(page, "retrieval with a garbage link")
    notices = page.locator('[data-testid="stAlert"]').filter(has_text="The link")
    assert notices.count() >= 3, [notices.nth(i).inner_text() for i in range(notices.count())]
    assert page.locator("main img[src='x']").count() == 0
    params = url_params(page)
    assert params["dataset"] != "../../etc/passwd" and "q" in params and len(params["q"]) < 300
