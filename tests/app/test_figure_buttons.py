"""The explorer and the retrieval page offer the poster figures as PDF, SVG and PNG downloads
(drawn on click; the files themselves are opened in tests/test_figures.py and the browser test)."""

from __future__ import annotations

from tests.app.test_pages import run_page, tiny_ids


def _download_labels(at) -> list[str]:
    return [el.proto.label for el in at.get("download_button")]


def test_explorer_offers_the_poster_figure_in_three_formats(app_assets):
    at = run_page("app_pages/explorer.py", tiny_ids()[0])
    labels = _download_labels(at)
    assert {"PDF", "SVG", "PNG"} <= set(labels)
    assert any(e.label.startswith("Poster figure") for e in at.expander)


def test_retrieval_offers_the_query_figure_in_three_formats(app_assets):
    at = run_page("app_pages/retrieval.py", tiny_ids()[0])
    assert {"Figure PDF", "Figure SVG", "Figure PNG"} <= set(_download_labels(at))
