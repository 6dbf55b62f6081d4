"""The figure downloads in a real browser: the explorer's poster figure as PDF and the
retrieval page's figure as PNG are clicked, saved and opened (pdfium, Pillow)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.browser.test_browser import (CHROMIUM, CHROMIUM_ARGS, assert_no_exception, open_page, serving,
                                        sync_api)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def figure_app_url(_app_assets_root):
    with serving(CROSSMODAL_ASSETS=str(_app_assets_root)) as url:
        yield url


def _non_blank(rgb: np.ndarray) -> float:
    return float((rgb[..., :3].astype(float).min(axis=-1) < 240).mean())


def test_poster_and_retrieval_figures_download_and_open(figure_app_url, tmp_path):
    import pypdfium2
    from PIL import Image

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000}, accept_downloads=True)
        open_page(page, figure_app_url, "explorer")
        assert_no_exception(page, "explorer")
        page.get_by_text("Poster figure: the three panels as one figure").click()
        with page.expect_download(timeout=180_000) as info:
            page.get_by_role("button", name="PDF", exact=True).click()
        pdf_path = tmp_path / info.value.suggested_filename
        info.value.save_as(pdf_path)
        assert pdf_path.name.startswith("crossmodal_poster_") and pdf_path.suffix == ".pdf"
        doc = pypdfium2.PdfDocument(str(pdf_path))
        assert len(doc) == 1 and [round(v) for v in doc[0].get_size()] == [13 * 72, round(4.8 * 72)]
        assert _non_blank(np.asarray(doc[0].render(scale=1).to_pil().convert("RGB"))) > 0.005
        doc.close()

        open_page(page, figure_app_url, "retrieval")
        assert_no_exception(page, "retrieval")
        with page.expect_download(timeout=300_000) as info:
            page.get_by_role("button", name="Figure PNG").click()
        png_path = tmp_path / info.value.suggested_filename
        info.value.save_as(png_path)
        image = Image.open(png_path)
        assert round(image.info["dpi"][0]) == 300 and image.size[0] > image.size[1] > 500
        assert _non_blank(np.asarray(image.convert("RGB"))) > 0.05
        assert_no_exception(page, "retrieval after the download")
        browser.close()
