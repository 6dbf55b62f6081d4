"""Home's "Build a dataset from your own scores": folders of the data directory only, a
progress bar, the per-file report, and the new dataset then opens from the picker."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("music21")
mido = pytest.importorskip("mido")

from streamlit.testing.v1 import AppTest  # noqa: E402

from crossmodal_core import appdata, store  # noqa: E402
from crossmodal_core.data.dataset import DatasetError  # noqa: E402

APP = str(Path(__file__).resolve().parents[2] / "app.py")
KERN = ("**kern\t**text\n*staff1\t*staff1\n*M4/4\t*\n=1\t=1\n4c\tAl-\n4d\t-le\n4e\tmei-\n4f\t-ne\n=2\t=2\n"
        "4g\tEn-\n4a\t-ten\n2g\tsind.\n=3\t=3\n4e\tDie\n4d\tSon-\n4c\t-ne\n4d\tscheint.\n==\t==\n*-\t*-\n")


def _midi(path: Path) -> None:
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    for i, w in enumerate("Christ ist er- stan- den von der Mar- ter al- le.".split()):
        track.append(mido.MetaMessage("lyrics", text=w, time=0))
        track.append(mido.Message("note_on", note=60 + 2 * (i % 4), velocity=80, time=0))
        track.append(mido.Message("note_off", note=60 + 2 * (i % 4), velocity=0, time=480))
    mid.save(path)


@pytest.fixture
def tiny_assets(tmp_path, monkeypatch):
    from crossmodal_core.data import io
    from crossmodal_core.data.synthetic import make_synthetic_av

    datasets = tmp_path / "assets" / "datasets"
    datasets.mkdir(parents=True)
    io.save_dataset(make_synthetic_av(n_train=60, n_test=30, n_classes=3, dims=(4, 6), seed=0, name="tiny"),
                    datasets / "tiny.npz")
    monkeypatch.setenv("CROSSMODAL_ASSETS", str(tmp_path / "assets"))
    # a data folder of its own, and no cached dataset list left behind: a built user dataset must
    # not reach later tests (the app fixtures train on every music dataset they find)
    monkeypatch.setenv("CROSSMODAL_HOME", str(tmp_path / "home"))
    yield tmp_path
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()


def test_only_folders_of_the_scores_directory_can_be_built(tiny_assets):
    root = store.scores_dir()
    (root / "songs").mkdir(parents=True, exist_ok=True)
    (root / ".hidden").mkdir(exist_ok=True)
    link = root / "elsewhere"
    if not link.exists():
        link.symlink_to(tiny_assets)
    assert "songs" in appdata.score_folders()
    assert not {".hidden", "elsewhere"} & set(appdata.score_folders())
    for bad in ("../songs", "/etc", "elsewhere", str(root / "songs")):
        with pytest.raises(DatasetError, match="no folder"):
            appdata.build_from_scores(bad)


@pytest.mark.slow
def test_home_builds_a_dataset_from_a_scores_folder_and_opens_it(tiny_assets):
    folder = store.scores_dir() / "form songs"
    folder.mkdir(parents=True)
    (folder / "enten.krn").write_text(KERN)
    _midi(folder / "christ.mid")
    (folder / "broken.xml").write_bytes(b"<score-partwise>")
    at = AppTest.from_file(APP, default_timeout=240)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert "form songs" in at.selectbox(key="scores_folder").options
    at.selectbox(key="scores_folder").set_value("form songs")
    at.button(key="scores_build").click()
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    success = " ".join(s.value for s in at.success)
    assert "2 of 3 files used" in success and "2 folds" in success
    table = next(d.value for d in at.dataframe if "why skipped" in d.value.columns)
    assert table["file"].tolist() == ["broken.xml"] and "not well-formed" in table["why skipped"].iloc[0]
    at.button(key="scores_open").click()
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    new_id = "scores:" + store.slug("form songs")
    assert at.session_state["dataset_id"] == new_id
    label = appdata.find_entry(new_id).label
    assert label in at.sidebar.selectbox[0].options and at.sidebar.selectbox[0].value == new_id  # picked
    assert label in [h.value for h in at.header]  # home shows the new dataset
