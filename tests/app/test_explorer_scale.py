"""The explorer with a large test set (2·10^4 items): WebGL, a stated seeded sample over the
density of every point, the map described on screen, capped highlighting of a big selection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")
N_TEST = 20_000


@pytest.fixture(scope="module")
def big_assets(tmp_path_factory) -> Path:
    from crossmodal_core.data import io
    from crossmodal_core.data.synthetic import make_synthetic_av

    root = tmp_path_factory.mktemp("big_assets")
    (root / "datasets").mkdir()
    ds = make_synthetic_av(n_train=1_000, n_test=N_TEST, n_classes=5, dims=(6, 10), seed=3, name="big")
    io.save_dataset(ds, root / "datasets" / "big.npz")
    return root


@pytest.fixture(autouse=True)
def _forget_the_listing():
    """The app caches the dataset listing for 30 s: later tests must not see this folder's."""
    yield
    st.cache_data.clear()


def run_explorer(monkeypatch, root: Path, **state) -> AppTest:
    monkeypatch.setenv("CROSSMODAL_ASSETS", str(root))
    st.cache_data.clear()  # the dataset listing is cached for 30 s
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["dataset_id"] = "file:big.npz"
    at.session_state["explorer_method"] = "pca"
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    at.switch_page("app_pages/explorer.py")
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def test_large_panel_draws_a_stated_sample_over_the_density_of_all(monkeypatch, big_assets):
    at = run_explorer(monkeypatch, big_assets)
    specs = [json.loads(el.proto.spec) for el in at.get("plotly_chart")]
    assert len(specs) == 3
    for spec in specs:
        kinds = {t["type"] for t in spec["data"] if "customdata" in t}
        assert kinds == {"scattergl"}, kinds
        density = [t for t in spec["data"] if t["type"] == "heatmap"]
        assert len(density) == 1 and density[0]["hoverinfo"] == "skip"
    captions = [c.value for c in at.caption]
    notice = [c for c in captions if c.startswith("Showing")]
    assert len(notice) == 3
    assert notice[0].startswith(f"Showing 10,000 of {N_TEST:,} items ({2 * N_TEST:,} points), sampled uniformly "
                                "(seed 0), over the density of all of them (WebGL); a box or lasso selects every "
                                "item in the region, not only the drawn ones.")
    assert f"Map: PCA of all {2 * N_TEST:,} points." in notice[0]


def test_a_large_selection_is_outlined_by_a_stated_sample(monkeypatch, big_assets):
    from crossmodal_core import appdata

    monkeypatch.setenv("CROSSMODAL_ASSETS", str(big_assets))
    app = appdata.load_dataset("file:big.npz")
    test_rows = appdata.split_indices(app.dataset)[1]
    at = run_explorer(monkeypatch, big_assets, selection=test_rows[:3_000].tolist())
    for el in at.get("plotly_chart"):
        spec = json.loads(el.proto.spec)
        outlined = [t for t in spec["data"] if t["name"].startswith("selected")]
        assert len(outlined) == 2 and all(t["type"] == "scattergl" for t in outlined)
    assert any("3000 item(s) selected" in m.value and "a seeded sample of 2,000 outlined per panel" in m.value
               for m in at.markdown)
