"""The one dataset resolver: ids, aliases, what is listed, what never resolves."""

from __future__ import annotations

import os

import pytest

from crossmodal_core import store
from crossmodal_core.data import catalog
from crossmodal_core.data.io import save_dataset
from crossmodal_core.data.synthetic import make_synthetic_av


@pytest.fixture
def folders(tmp_path, monkeypatch):
    assets, home = tmp_path / "assets", tmp_path / "home"
    monkeypatch.setenv("CROSSMODAL_ASSETS", str(assets))
    monkeypatch.setenv("CROSSMODAL_HOME", str(home))
    data = assets / "datasets"
    data.mkdir(parents=True)
    ds = make_synthetic_av(n_train=40, n_test=20, n_classes=3, dims=(4, 5), seed=0, name="tiny")
    save_dataset(ds, data / "tiny.npz")
    store.uploads_dir().mkdir(parents=True)
    save_dataset(ds, store.uploads_dir() / "mine.h5")
    return data


def test_ids_of_every_kind(folders):
    ids = [e.id for e in catalog.list_entries()]
    assert ids == ["file:tiny.npz", "upload:mine.h5", "synthetic-vegas-small", "synthetic-vegas"]
    music = folders / "music21_lyrics"
    music.mkdir()
    for name in catalog.BUILT_FILES[:-1]:
        (music / name).write_text("x")
    assert not catalog.is_built(music) and "music21" not in [e.id for e in catalog.list_entries()]
    (music / "build_info.json").write_text("{}")  # written last by the builder
    assert catalog.is_built(music) and catalog.list_entries()[0].id == "music21"


def test_aliases_keep_the_old_spellings(folders):
    assert catalog.find_entry("synthetic:vegas-small").id == "synthetic-vegas-small"
    assert catalog.find_entry("synthetic").id == "synthetic-vegas"
    assert catalog.canonical_id("music") == catalog.canonical_id("music21_lyrics") == "music21"
    old = catalog.find_entry(f"file:{folders / 'tiny.npz'}")  # the app's old file:PATH ids
    assert old.id == "file:tiny.npz"
    assert catalog.SYNTHETIC_SIZES["synthetic-vegas-small"] != catalog.SYNTHETIC_SIZES["synthetic-vegas"]


@pytest.mark.parametrize("spec", ["file:../assets/datasets/tiny.npz", "file:/etc/passwd", "file:..",
                                  "upload:../../x.npz", "file:.hidden.npz", "nope", "/etc/passwd"])
def test_ids_never_name_an_arbitrary_path(folders, spec):
    with pytest.raises(catalog.UnknownDatasetError, match="no dataset"):
        catalog.find_entry(spec)


def test_only_the_cli_may_open_a_typed_path(folders, tmp_path):
    elsewhere = tmp_path / "elsewhere.npz"
    save_dataset(make_synthetic_av(n_train=20, n_test=10, n_classes=2, dims=(3, 3), name="else"), elsewhere)
    with pytest.raises(catalog.UnknownDatasetError):
        catalog.open_dataset(str(elsewhere))
    data = catalog.open_dataset(str(elsewhere), allow_path=True)
    assert data.entry.kind == "path" and data.name == "else"
    # the same file opened by id or by path gets the same key, so the model store is shared
    by_path = catalog.open_dataset(str(folders / "tiny.npz"), allow_path=True)
    assert by_path.key == catalog.open_dataset("file:tiny.npz").key


def test_hidden_files_and_temporaries_are_never_listed(folders):
    (folders / ".secret.npz").write_bytes(b"x")
    stale = folders / (store.temporary_prefix(folders / "big.npz") + "abc.npz")
    stale.write_bytes(b"half")
    (folders / "notes.txt").write_text("not a dataset")
    ids = [e.id for e in catalog.list_entries()]
    assert ids[:2] == ["file:tiny.npz", "upload:mine.h5"] and not any("secret" in i or "cmtmp" in i for i in ids)
    with pytest.raises(catalog.UnknownDatasetError):
        catalog.find_entry(f"file:{stale.name}")


def test_synthetic_sets_are_generated_once_with_distinct_names(folders, monkeypatch):
    small = dict(catalog.SYNTHETIC_SIZES["synthetic-vegas-small"], n_train=30, n_test=10, dims=(3, 4))
    monkeypatch.setitem(catalog.SYNTHETIC_SIZES, "synthetic-vegas-small", small)
    entry = catalog.find_entry("synthetic-vegas-small")
    assert not entry.path.exists()
    first = catalog.open_dataset("synthetic-vegas-small")
    assert entry.path.exists() and first.name == "synthetic-vegas-small" and first.dataset.is_synthetic
    stamp = os.stat(entry.path).st_mtime_ns
    again = catalog.open_dataset("synthetic:vegas-small")
    assert os.stat(entry.path).st_mtime_ns == stamp and again.key == first.key
    assert catalog.open_dataset("synthetic-vegas-small", seed=1).key != first.key


def test_a_zarr_folder_in_the_data_folder_is_listed_and_opens_on_disk(folders, tmp_path):
    """A chunked Zarr dataset (a folder) is listed like a file of the data folder and opens with
    its views on disk; a folder that merely ends in .zarr elsewhere (uploads), a link, or a
    hidden one is not listed; rewriting it changes its key (the model store files under it)."""
    from crossmodal_core.data.lazy import LazyArray

    ds = make_synthetic_av(n_train=30, n_test=10, n_classes=3, dims=(4, 5), seed=1, name="big")
    save_dataset(ds, folders / "big.zarr")
    save_dataset(ds, store.uploads_dir() / "up.zarr")  # an upload is one file: a folder there is not listed
    save_dataset(ds, tmp_path / "outside.zarr")
    (folders / "link.zarr").symlink_to(tmp_path / "outside.zarr", target_is_directory=True)
    save_dataset(ds, folders / ".hidden.zarr")
    ids = [e.id for e in catalog.list_entries()]
    assert ids[:3] == ["file:big.zarr", "file:tiny.npz", "upload:mine.h5"]
    assert not any("up.zarr" in i or "link" in i or "hidden" in i for i in ids)
    data = catalog.open_dataset("file:big.zarr")
    assert isinstance(data.dataset.views["visual"], LazyArray) and data.dataset.n_items == 40
    assert data.key.startswith("big-")
    save_dataset(make_synthetic_av(n_train=30, n_test=10, n_classes=3, dims=(4, 5), seed=2, name="big"),
                 folders / "big.zarr")
    assert catalog.open_dataset("file:big.zarr").key != data.key


def test_synthetic_sets_carry_sequence_views_so_the_app_trains_every_model(folders, monkeypatch):
    """Both synthetic sets are generated with ``audio_seq`` / ``visual_seq`` (the full one in
    float16: 648 MB instead of 1.3 GB) at the default difficulty, which is part of the file's
    key; every registry model but UGAAR (sheet, lyrics, audio) finds its views there, and a
    sequence model trains and stores through the app's own call."""
    from crossmodal_core.appdata import models as app_models
    from crossmodal_core.data.synthetic import DEFAULT_DIFFICULTY
    from crossmodal_core.models import registry, trained

    for size in catalog.SYNTHETIC_SIZES.values():
        assert size["sequences"] is True and size["difficulty"] == DEFAULT_DIFFICULTY
    assert catalog.SYNTHETIC_SIZES["synthetic-vegas"]["sequence_dtype"] == "float16"
    full = catalog.SYNTHETIC_SIZES["synthetic-vegas"]
    n = full["n_train"] + full["n_test"]
    assert n * 10 * sum(full["dims"]) * 2 < 700e6  # what the full set's sequences cost in memory
    small = dict(catalog.SYNTHETIC_SIZES["synthetic-vegas-small"], n_train=60, n_test=30, dims=(4, 6))
    monkeypatch.setitem(catalog.SYNTHETIC_SIZES, "synthetic-vegas-small", small)
    before = catalog.find_entry("synthetic-vegas-small").path
    app = catalog.open_dataset("synthetic-vegas-small")
    ds = app.dataset
    assert ds.views["audio_seq"].shape == (90, 10, 4) and ds.views["visual_seq"].shape == (90, 10, 6)
    assert ds.info["generator"]["difficulty"] == DEFAULT_DIFFICULTY
    for name in registry.MODEL_NAMES:
        if name != "ugaar":
            views = app_models.model_views(app, name, ("audio", "visual"))
            assert views == (("audio_seq", "visual_seq") if trained.is_sequence_model(name) else ("audio", "visual"))
    monkeypatch.setitem(catalog.SYNTHETIC_SIZES, "synthetic-vegas-small", dict(small, difficulty=1.0))
    assert catalog.find_entry("synthetic-vegas-small").path != before  # a new difficulty, a new file
    monkeypatch.setattr(trained, "model_params", lambda ds, name, views, overrides=None: dict(
        n_components=2, hidden=8, attention_dim=4, out_features=4, epochs=1, batch_size=50, progress=False))
    model = app_models.train_model(app, "attention", ("audio", "visual"), "class")
    # stored under the flat pair the app shows, embedded from the sequences: one row per item
    assert model.name == "attention" and model.views == ("audio", "visual") and model.path.is_dir()
    assert {k: v.shape[0] for k, v in model.embeddings.items()} == {"audio": 90, "visual": 90}
