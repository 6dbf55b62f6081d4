"""Shareable views: a page opened with query parameters shows that view, writes it back to the
URL (so a reload or a copied link reopens it), and a bad or stale parameter shows a notice
and the default instead of an exception (Streamlit's AppTest, which supports query params)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from crossmodal_core import appdata

APP = str(Path(__file__).resolve().parents[2] / "app.py")
TIMEOUT = 120


def tiny_id(which: str = "tiny_a") -> str:
    return next(e.id for e in appdata.list_datasets() if e.kind == "file" and e.path.name.startswith(which))


def open_link(page: str, params: dict[str, str]) -> AppTest:
    """A fresh session opened at ``page`` with ``params`` in its URL (a deep link)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(params)
    at.switch_page(page)  # before the first run: the page is found by its file name, as a URL path is
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def warnings(at: AppTest) -> list[str]:
    """The link's notices (the pages' other warnings, e.g. "synthetic data", are not counted)."""
    return [w.value for w in at.warning if w.value.startswith("The link")]


def test_home_link_chooses_the_dataset_label_and_pair(app_assets):
    b = tiny_id("tiny_b")
    at = open_link("app_pages/home.py", {"dataset": b, "label": "pair (true pair only)", "pair": "audio~visual"})
    assert at.selectbox(key="dataset_id").value == b
    assert at.selectbox(key="label_name").value == "pair (true pair only)"
    assert at.selectbox(key="pair").value == ("audio", "visual")
    assert not warnings(at)
    assert at.query_params["dataset"] == b and at.query_params["pair"] == "audio~visual"
    link = at.sidebar.code[-1].value
    assert link.startswith("?") and "dataset=file%3Atiny_b.npz" in link


def test_home_bad_shared_parameters_fall_back_with_notices(app_assets):
    default = appdata.list_datasets()[0].id
    at = open_link("app_pages/home.py", {"dataset": "../../etc/passwd", "pair": "nope~x"})
    assert at.selectbox(key="dataset_id").value == default
    notices = warnings(at)
    assert any("dataset" in n and "etc/passwd" in n for n in notices), notices
    assert any("modality pair" in n and "nope~x" in n for n in notices), notices
    # the URL now names the view shown, not the refused values
    assert at.query_params["dataset"] == default


def test_retrieval_deep_link_opens_that_model_direction_and_query(app_assets):
    a = tiny_id()
    app = appdata.load_dataset(a)
    _, test = appdata.split_indices(app.dataset)
    item = str(app.dataset.item_ids[test[7]])
    params = {"dataset": a, "model": "ccca", "q": item, "k": "5", "dir": "visual~audio", "show": "per-class-ap"}
    at = open_link("app_pages/retrieval.py", params)
    assert not warnings(at), warnings(at)
    model = at.selectbox(key="retrieval_model")
    assert model.format_func(model.value) == "C-CCA"
    assert at.selectbox(key="retrieval_query_list").value == 7
    assert at.number_input(key="retrieval_k").value == 5
    assert at.radio(key="retrieval_direction").value == ("visual", "audio")
    assert any(m.value.startswith(f"**visual query:** {item}") for m in at.markdown)
    assert at.get("plotly_chart"), "the per-class AP chart is the view the link asked for"
    for key, value in params.items():
        assert at.query_params[key] == value, key
    # a reload is a new session with the URL the page wrote: the same view
    again = open_link("app_pages/retrieval.py", dict(at.query_params))
    assert again.selectbox(key="retrieval_query_list").value == 7
    assert again.query_params == at.query_params


def test_retrieval_stale_model_and_unknown_query_fall_back_with_notices(app_assets):
    a = tiny_id()
    at = open_link("app_pages/retrieval.py", {"dataset": a, "model": "tnn-ccca", "q": "no-such-item",
                                              "k": "999", "dir": "x~y", "show": "<script>"})
    notices = warnings(at)
    for needle in ("model `tnn-ccca`", "query item `no-such-item`", "top K `999`", "direction `x~y`",
                   "analysis view `?script?`"):
        assert any(needle in n for n in notices), (needle, notices)
    model = at.selectbox(key="retrieval_model")
    assert model.format_func(model.value) == "CCA"  # the first trained model
    assert at.selectbox(key="retrieval_query_list").value == 0
    assert at.number_input(key="retrieval_k").value == 10
    assert at.query_params["model"] == "cca" and at.query_params["k"] == "10"


def test_leaving_a_page_and_coming_back_keeps_its_view(app_assets):
    a = tiny_id()
    app = appdata.load_dataset(a)
    _, test = appdata.split_indices(app.dataset)
    item = str(app.dataset.item_ids[test[3]])
    at = open_link("app_pages/retrieval.py", {"dataset": a, "model": "ccca", "q": item, "k": "7"})
    at.switch_page("app_pages/home.py").run()
    assert "q" not in at.query_params and at.query_params["dataset"] == a  # home's own view: no stale keys
    at.switch_page("app_pages/retrieval.py").run()
    assert not at.exception
    assert at.selectbox(key="retrieval_query_list").value == 3 and at.number_input(key="retrieval_k").value == 7
    assert at.query_params["q"] == item
    assert not warnings(at)


def test_a_flood_of_parameters_is_ignored_with_one_notice(app_assets):
    params = {f"p{i}": "x" for i in range(60)}
    at = open_link("app_pages/retrieval.py", {"dataset": tiny_id(), "model": "ccca", **params})
    notices = warnings(at)
    assert len(notices) == 1 and "61 parameters" in notices[0], notices
    model = at.selectbox(key="retrieval_model")
    assert model.format_func(model.value) == "CCA", "a flooded link's page values are all ignored"
    assert not any(k.startswith("p") and k[1:].isdigit() for k in at.query_params)


def test_explorer_link_sets_panels_map_colouring_and_selection(app_assets):
    a = tiny_id()
    at = open_link("app_pages/explorer.py", {"dataset": a, "map": "pca", "panel1": "ccca", "panel2": "original",
                                             "panel3": "cca", "sel": "3-5.40"})
    assert not warnings(at), warnings(at)
    titles = [at.selectbox(key=f"explorer_model_{i}") for i in range(3)]
    assert [s.format_func(s.value) for s in titles] == ["C-CCA", "Original features", "CCA"]
    assert at.radio(key="explorer_method").value == "pca"
    assert at.session_state["selection"] == [3, 4, 5, 40]
    assert any("4 item(s) selected" in m.value for m in at.markdown)
    assert at.query_params["sel"] == "3-5.40" and at.query_params["panel1"] == "ccca"


def test_explorer_bad_panel_and_selection_show_notices(app_assets):
    a = tiny_id()
    at = open_link("app_pages/explorer.py", {"dataset": a, "panel2": "ugaar", "sel": "0-99999", "map": "tsne",
                                             "colour": "nope"})
    notices = warnings(at)
    for needle in ("model of panel 2 `ugaar`", "selection `0-99999`", "map `tsne`", "colouring `nope`"):
        assert any(needle in n for n in notices), (needle, notices)
    assert not at.session_state["selection"]
    assert "sel" not in at.query_params


@pytest.mark.slow
def test_alignment_link_opens_the_song_and_phrase(app_assets):
    music = next((e for e in appdata.list_datasets() if e.kind == "music"), None)
    if music is None or not music.path.exists():
        pytest.skip("no music dataset built")
    app = appdata.load_dataset(music.id)
    works = appdata.works(app)
    songs = sorted((w for w, rows in works.items() if len(rows) >= 3), key=lambda w: appdata.work_title(app, w))
    if len(songs) < 2:
        pytest.skip("the music dataset has fewer than two songs of three phrases")
    work = songs[1]  # not the default (first) song
    at = open_link("app_pages/alignment.py", {"dataset": music.id, "pair": "sheet~lyrics", "work": work,
                                               "phrase": "3", "model": "ccca", "cell": "sheet~lyrics.2.1"})
    assert not warnings(at), warnings(at)
    assert at.selectbox(key="alignment_work").value == work
    assert at.radio(key=f"alignment_phrase_{work}").value == 2
    assert any(s.value == "sheet phrase 2 ↔ lyrics phrase 1" for s in at.subheader)
    assert at.query_params["phrase"] == "3" and at.query_params["cell"] == "sheet~lyrics.2.1"
    # the model travels to a page visited for the first time (retrieval's default would be CCA)
    at.switch_page("app_pages/retrieval.py").run()
    model = at.selectbox(key="retrieval_model")
    assert model.format_func(model.value) == "C-CCA" and at.query_params["model"] == "ccca"
    bad = open_link("app_pages/alignment.py", {"dataset": music.id, "work": "no-such-song", "cell": "sheet~lyrics.99.1"})
    notices = warnings(bad)
    assert any("song `no-such-song`" in n for n in notices) and any("matrix cell" in n for n in notices), notices
