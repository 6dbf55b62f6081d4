"""Untrusted names never become paths: a dataset whose stored ``name`` is crafted, and an
upload's file name, go through train, evaluate, projection and upload; every file written lies
under the store root (``$CROSSMODAL_HOME``), nothing anywhere else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crossmodal_core import cli, store
from crossmodal_core.data.io import load_dataset, save_dataset
from crossmodal_core.data.synthetic import make_synthetic_av

pytestmark = pytest.mark.filterwarnings("ignore:(Cluster)?CCA.*exceeds:UserWarning")

NAMES = {
    "dotdot": "../../x",
    "absolute": "/abs/path",
    "nul": "a\x00b",
    "long": "n" * 5000,
    "non-ascii": "Lindenbäume ♪ 菩提樹",
}


def files_under(root: Path) -> set[Path]:
    return {Path(d) / f for d, _, names in os.walk(root) for f in names}


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    home, assets, cwd, inputs = (tmp_path / n for n in ("home", "assets", "cwd", "inputs"))
    for folder in (home, assets, cwd, inputs):
        folder.mkdir()
    monkeypatch.setenv("CROSSMODAL_HOME", str(home))
    monkeypatch.setenv("CROSSMODAL_ASSETS", str(assets))
    monkeypatch.chdir(cwd)
    return tmp_path


@pytest.mark.parametrize("kind", list(NAMES))
def test_crafted_dataset_name_round_trip_writes_only_under_the_store(sandbox, kind, capsys):
    name = NAMES[kind]
    ds = make_synthetic_av(n_train=120, n_test=60, n_classes=3, dims=(6, 8), seed=0, name=name)
    path = save_dataset(ds, sandbox / "inputs" / "crafted.npz")
    assert load_dataset(path).name == name, "the crafted name survives the file format"
    before = files_under(sandbox)

    assert cli.main(["train", "--data", str(path), "--model", "cca"]) == 0
    assert cli.main(["evaluate", "--data", str(path), "--models", "cca", "--folds", "2", "--no-progress"]) == 0
    assert cli.main(["project", "--data", str(path), "--method", "pca"]) == 0
    from crossmodal_core import projection as proj

    proj.get_or_compute_projection(name, name, [ds.views["audio"], ds.views["visual"]], "pca")
    from crossmodal_core import appdata

    entry = appdata.save_upload("../../evil.npz", path.read_bytes())
    assert entry.path.parent == store.uploads_dir() and entry.path.name == "evil.npz"
    upload = appdata.load_dataset(entry.id)
    appdata.train_model(upload, "cca", ("audio", "visual"), "class")
    capsys.readouterr()

    home = (sandbox / "home").resolve()
    written = files_under(sandbox) - before
    assert written, "the round trip wrote its artifacts"
    outside = [p for p in written if home not in p.resolve().parents]
    assert not outside, outside
    assert not files_under(sandbox / "cwd") and not files_under(sandbox / "assets")
    assert not Path("/abs/path").exists() and not (sandbox.parent / "x").exists()
    for p in written:
        rel = p.resolve().relative_to(home)
        assert all(len(part) <= 255 and "\x00" not in part for part in rel.parts)
        assert not any(part.startswith(".") for part in rel.parts), f"hidden file left behind: {rel}"
    results = list(store.user_results_dir().glob("*.json"))
    assert len(results) == 1 and results[0].name == store.slug(name) + ".json"
