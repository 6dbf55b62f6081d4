"""Every page runs without an exception, and changing the dataset, model or query changes
what the page shows (Streamlit's AppTest: no browser, no JavaScript)."""

from __future__ import annotations

import base64
import os
import json
from pathlib import Path

import numpy as np
import pytest

from crossmodal_core import appdata

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PAGES = ["app_pages/home.py", "app_pages/explorer.py", "app_pages/retrieval.py", "app_pages/alignment.py"]
TIMEOUT = 120


def tiny_ids() -> list[str]:
    return [e.id for e in appdata.list_datasets() if e.kind == "file" and e.path.name.startswith("tiny")]


def run_page(page: str, dataset_id: str | None = None, **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if dataset_id:
        at.session_state["dataset_id"] = dataset_id
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    if page != "app_pages/home.py":
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def plotly_specs(at: AppTest) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def values(encoded) -> list:
    """A plotly trace array: plain JSON list, or plotly's base64 typed array."""
    if isinstance(encoded, dict) and "bdata" in encoded:
        data = np.frombuffer(base64.b64decode(encoded["bdata"]), dtype=np.dtype(encoded["dtype"]))
        return data.tolist()
    return list(encoded)


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("which", [0, 1])
def test_every_page_runs_without_exception(app_assets, page, which):
    run_page(page, tiny_ids()[which])


def test_home_lists_the_datasets_and_the_results_table(app_assets):
    at = run_page("app_pages/home.py", tiny_ids()[0])
    options = at.selectbox(key="dataset_id").options
    assert any("tiny_a.npz" in o for o in options) and any("tiny_b.npz" in o for o in options)
    assert any("SYNTHETIC" in o for o in options), "the synthetic set must be labelled as synthetic"
    table = at.table[-1].value
    # paper layout: rows in the poster's order, a column group per file, mean ± std (ddof=1) over folds
    results = json.loads((app_assets / "results" / "tiny-a.json").read_text())
    assert list(table.index) == ["CCA", "C-CCA"]
    cca = [100 * r["map.audio->visual"] for r in results["rows"] if r["model"] == "CCA"]
    assert len(cca) == 3
    assert table.loc["CCA", ("tiny a", "audio→visual")] == f"{np.mean(cca):.2f} ± {np.std(cca, ddof=1):.2f}"
    downloads = {b.proto.label for b in at.get("download_button")}
    assert downloads == {"CSV", "LaTeX", "PNG", "SVG"}


def test_changing_the_dataset_changes_home(app_assets):
    a, b = tiny_ids()
    at = run_page("app_pages/home.py", a)
    before = {m.label: m.value for m in at.metric}
    at.selectbox(key="dataset_id").set_value(b).run()
    assert not at.exception
    after = {m.label: m.value for m in at.metric}
    assert before["Classes"] == "4" and after["Classes"] == "6"


def test_explorer_draws_three_panels_with_both_modalities(app_assets):
    at = run_page("app_pages/explorer.py", tiny_ids()[0], explorer_method="pca")
    specs = plotly_specs(at)
    assert len(specs) == 3
    for spec in specs:
        points = [t for t in spec["data"] if "customdata" in t]  # the rest are legend keys
        names = {t["name"].split(" · ")[-1] for t in points}
        assert names == {"audio", "visual"}
        symbols = {t["marker"]["symbol"] for t in points}
        assert len(symbols) == 2, "one marker per modality"
        legend = {t["name"] for t in spec["data"] if "customdata" not in t}
        assert {"audio (marker)", "visual (marker)"} <= legend and len(legend) == 2 + 4  # 4 classes
        # pan: Streamlit keeps click-to-select on only outside the lasso / box tools
        assert spec["layout"]["dragmode"] == "pan"


def trained_ids(dataset_id: str) -> list[str]:
    app = appdata.load_dataset(dataset_id)
    label = appdata.label_choices(app.dataset)[0]
    return [m.id for m in appdata.list_trained(app, label)]


def test_explorer_panel_model_changes_the_map(app_assets):
    at = run_page("app_pages/explorer.py", tiny_ids()[0], explorer_method="pca")
    ids = trained_ids(tiny_ids()[0])
    assert len(ids) >= 2
    shown = []
    for model_id in ids[:2]:
        at.selectbox(key="explorer_model_1").set_value(model_id).run()
        assert not at.exception
        spec = plotly_specs(at)[1]
        shown.append((spec["layout"]["title"]["text"], values(spec["data"][0]["x"])[:5]))
    assert shown[0][0] != shown[1][0] and shown[0][1] != shown[1][1]


def test_explorer_selection_highlights_in_every_panel(app_assets):
    at = run_page("app_pages/explorer.py", tiny_ids()[0], explorer_method="pca")
    rows = [int(r) for r in values(plotly_specs(at)[0]["data"][0]["customdata"])[:3]]
    at.session_state["selection"] = rows
    at.run()
    assert not at.exception
    for spec in plotly_specs(at):
        highlighted = [t for t in spec["data"] if t["name"].startswith("selected")]
        assert len(highlighted) == 2  # both modalities
        assert sorted(int(r) for r in values(highlighted[0]["customdata"])) == sorted(rows)


def top_results(at: AppTest) -> list[tuple]:
    table = at.dataframe[0].value  # the top-K table (feature-only datasets)
    return list(zip(table["item"], table["score"]))


def test_retrieval_changes_with_query_and_model(app_assets):
    at = run_page("app_pages/retrieval.py", tiny_ids()[0])
    first = top_results(at)
    assert len(first) == 10
    at.selectbox(key="retrieval_query_list").set_value(5).run()
    assert not at.exception
    second = top_results(at)
    assert first != second, "another query must show other results"
    current = at.selectbox(key="retrieval_model").value
    other = next(i for i in trained_ids(tiny_ids()[0]) if i != current)
    at.selectbox(key="retrieval_model").set_value(other).run()
    assert not at.exception
    assert top_results(at) != second, "another model must rank differently"
    ap = [m for m in at.metric if m.label == "AP of this query"]
    assert ap and ap[0].value.endswith("%")
    # error analysis: the worst queries with their top-ranked wrong results, each view exportable
    worst = at.dataframe[1].value
    assert len(worst) == 10 and (worst["AP (%)"].diff().dropna() >= 0).all()
    assert worst["top-ranked wrong results"].str.startswith("#").all()
    def analysis_downloads():  # the query's own figure ("Figure PDF", ...) is exported apart
        return {b.proto.label for b in at.get("download_button") if not b.proto.label.startswith("Figure")}

    assert analysis_downloads() == {"PNG", "SVG", "PDF"}
    for view, key in (("Per-class AP", "per_class_ap"), ("Top-1 confusion", "confusion"),
                      ("Precision-recall", "pr_curves")):
        at.session_state["retrieval_analysis"] = view
        at.run()
        assert not at.exception
        specs = plotly_specs(at)
        assert len(specs) == 1, view
        if key != "pr_curves":
            assert analysis_downloads() == {"PNG", "SVG", "PDF"}, view
    pr = specs[0]["data"]
    assert {t["name"] for t in pr} == {"CCA", "C-CCA"}, "one precision-recall curve per trained model"


def test_retrieval_search_filters_the_query_list(app_assets):
    at = run_page("app_pages/retrieval.py", tiny_ids()[0])
    n_all = len(at.selectbox(key="retrieval_query_list").options)
    at.text_input(key="retrieval_search").input("class 2").run()
    assert not at.exception
    options = at.selectbox(key="retrieval_query_list").options
    assert 0 < len(options) < n_all and all("class 2" in o for o in options)


# ---------------------------------------------------------------- the music dataset (media, alignment)
def music_or_skip() -> str:
    ids = [e.id for e in appdata.list_datasets() if e.kind == "music"]
    if not ids:
        pytest.skip("no music dataset (neither embedded nor the fixture's small build)")
    return ids[0]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs_on_the_music_dataset(app_assets, page):
    run_page(page, music_or_skip())


def test_retrieval_plays_audio_and_shows_scores_and_lyrics(app_assets):
    music = music_or_skip()
    at = run_page("app_pages/retrieval.py", music, pair=("sheet", "audio"), retrieval_k=3)
    assert tuple(at.session_state["pair"]) == ("sheet", "audio")
    audio = at.get("audio")
    assert len(audio) == 3, "one player per audio result"
    assert at.get("image"), "the sheet query is drawn as an engraved score"
    at.radio(key="retrieval_direction").set_value(("audio", "sheet")).run()
    assert not at.exception
    assert len(at.get("audio")) == 1  # now only the query is audio
    assert len(at.get("image")) >= 3


def test_retrieval_worst_queries_play_their_wrong_results(app_assets):
    music = music_or_skip()
    at = run_page("app_pages/retrieval.py", music, pair=("sheet", "audio"), retrieval_k=1,
                  retrieval_worst_media=True, retrieval_worst_n=2)
    # 1 audio result of the query's top-1, then 2 worst sheet queries x their 3 wrong audio results
    assert len(at.get("audio")) == 1 + 2 * 3
    assert len(at.get("image")) >= 1 + 2  # the sheet query on top, and each worst query engraved


def test_alignment_matrices_follow_the_chosen_song(app_assets):
    music = music_or_skip()
    at = run_page("app_pages/alignment.py", music, alignment_model="cca")
    specs = plotly_specs(at)
    assert len(specs) == 3, "sheet-lyrics, sheet-audio, lyrics-audio"
    heat = specs[0]["data"][0]
    n = len(values(heat["x"]))
    diagonal = next(t for t in specs[0]["data"] if t.get("name") == "true pair")
    assert values(diagonal["x"]) == values(diagonal["y"]) and len(values(diagonal["x"])) == n
    assert at.get("iframe"), "the score with the highlighting player"
    songs = at.selectbox(key="alignment_work").options
    if len(songs) > 1:
        at.selectbox(key="alignment_work").select_index(1).run()
        assert not at.exception
        assert plotly_specs(at)[0]["data"][0]["z"] != heat["z"]


@pytest.mark.slow
def test_explorer_computes_umap_on_request_then_loads_it(app_assets):
    """A page load never computes UMAP; the button does, once, and later loads read it."""
    dataset = tiny_ids()[1]
    at = run_page("app_pages/explorer.py", dataset, explorer_method="umap")
    assert any("UMAP not computed" in w.value for w in at.warning)
    assert all("PCA" in spec["layout"]["title"]["text"] for spec in plotly_specs(at))
    button = next(b for b in at.button if b.label.startswith("Compute UMAP"))
    button.click()
    at.run(timeout=600)
    assert not at.exception
    assert not any("UMAP not computed" in w.value for w in at.warning)
    assert all("UMAP" in spec["layout"]["title"]["text"] for spec in plotly_specs(at))
    again = run_page("app_pages/explorer.py", dataset, explorer_method="umap")
    assert not any(b.label.startswith("Compute UMAP") for b in again.button)


# ---------------------------------------------------------------- one model store, one results table, uploads
def test_a_model_trained_with_the_cli_shows_on_home(app_assets, capsys):
    """`python -m crossmodal_core train` and the app use the same store."""
    import streamlit as st

    from crossmodal_core import cli
    from crossmodal_core.data import io
    from crossmodal_core.data.synthetic import make_synthetic_av

    ds = make_synthetic_av(n_train=200, n_test=100, n_classes=3, dims=(10, 14), seed=5, name="cli-made")
    io.save_dataset(ds, app_assets / "datasets" / "cli_made.npz")
    st.cache_data.clear()  # the picker's listing is cached for 30 s
    at = run_page("app_pages/home.py", "file:cli_made.npz")
    assert any("No model trained yet" in i.value for i in at.info)
    assert cli.main(["train", "--data", "file:cli_made.npz", "--model", "kcca", "--param", "n_nystroem=40"]) == 0
    at = run_page("app_pages/home.py", "file:cli_made.npz")
    tables = [d.value for d in at.dataframe if "model" in d.value.columns]
    assert tables and list(tables[0]["model"]) == ["KCCA"]
    assert tables[0]["train items"].tolist() == [200]


def test_results_table_shows_reference_and_own_runs(app_assets):
    from crossmodal_core import cli, store

    own = store.user_results_dir() / "tiny-b.json"
    try:
        assert cli.main(["evaluate", "--data", "file:tiny_b.npz", "--models", "cca", "--folds", "2",
                         "--no-progress"]) == 0
        assert own.is_file()
        at = run_page("app_pages/home.py", tiny_ids()[0])
        table = at.table[-1].value
        assert ("tiny a [reference]", "audio→visual") in table.columns  # committed reference results
        assert ("tiny b [yours]", "audio→visual") in table.columns  # the user's own run, labelled
        assert table.loc["CCA", ("tiny b [yours]", "audio→visual")].count("±") == 1
        assert table.loc["C-CCA", ("tiny b [yours]", "audio→visual")] == "–"  # not in the user's run
    finally:
        own.unlink(missing_ok=True)
        own.with_suffix(".csv").unlink(missing_ok=True)


def test_a_killed_upload_is_never_listed_and_is_cleaned_at_start(app_assets):
    import subprocess
    import sys

    import streamlit as st

    from crossmodal_core import store

    uploads = store.uploads_dir()
    uploads.mkdir(parents=True, exist_ok=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    prefix = store.temporary_prefix(uploads / "killed.npz")
    stale = uploads / (prefix.replace(f"-{os.getpid()}-", f"-{dead.pid}-") + "x1.npz")
    live = uploads / (prefix + "x2.npz")  # a write in progress in this (live) process
    for path in (stale, live):
        path.write_bytes(b"half an upload")
    try:
        assert store.is_temporary(stale) and not any("killed" in e.id for e in appdata.list_datasets())
        st.cache_resource.clear()  # a fresh server: app.py cleans once when it starts
        at = run_page("app_pages/home.py", tiny_ids()[0])
        assert not any("killed" in o for o in at.selectbox(key="dataset_id").options)
        assert not stale.exists(), "the killed upload's temporary is removed at start"
        assert live.exists(), "a write in progress is left alone"
    finally:
        live.unlink(missing_ok=True)
        stale.unlink(missing_ok=True)


def test_upload_is_stored_under_a_slugged_name(app_assets):
    from crossmodal_core import store
    from crossmodal_core.data import io
    from crossmodal_core.data.dataset import DatasetError
    from crossmodal_core.data.synthetic import make_synthetic_av

    tmp = app_assets.parent / "upload-src.npz"
    io.save_dataset(make_synthetic_av(n_train=20, n_test=10, n_classes=2, dims=(3, 3), name="up"), tmp)
    entry = appdata.save_upload("../../Évil name.npz", tmp.read_bytes())
    try:
        assert entry.path.parent == store.uploads_dir() and entry.id == f"upload:{entry.path.name}"
        assert entry.path.name.startswith("Evil-name-") and entry.path.suffix == ".npz"
        assert entry.id in [e.id for e in appdata.list_datasets()]
        with pytest.raises(DatasetError):
            appdata.save_upload("broken.npz", b"not a zip")
        assert not (store.uploads_dir() / "broken.npz").exists()
        assert not [p for p in store.uploads_dir().iterdir() if store.is_temporary(p)]
    finally:
        entry.path.unlink()
