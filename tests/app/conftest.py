"""Small app fixtures: two tiny feature files (one synthetic, VEGAS-shaped but small) in a
temporary assets folder, a results table, and quickly trained linear models in the test
cache. The real embedded music dataset is linked in when it has been built."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REAL_MUSIC = REPO / "assets" / "datasets" / "music21_lyrics"


def build_app_assets(root: Path, train: bool = True, with_music: bool = True) -> Path:
    """Write tiny datasets and a results table under ``root`` (an assets folder)."""
    from crossmodal_core import appdata
    from crossmodal_core.data import io
    from crossmodal_core.data.synthetic import make_synthetic_av

    datasets = root / "datasets"
    datasets.mkdir(parents=True, exist_ok=True)
    a = make_synthetic_av(n_train=240, n_test=120, n_classes=4, dims=(16, 32), seed=1, name="tiny-a")
    b = make_synthetic_av(n_train=240, n_test=120, n_classes=6, dims=(12, 24), seed=2, name="tiny-b")
    io.save_dataset(a, datasets / "tiny_a.npz")
    io.save_dataset(b, datasets / "tiny_b.npz")
    music = datasets / REAL_MUSIC.name
    if (REAL_MUSIC / "build_info.json").exists() and not music.exists():
        music.symlink_to(REAL_MUSIC)
    elif not music.exists() and with_music:
        # no embedded dataset built yet: a 3-work build (about 30 s) so media and alignment run
        from crossmodal_core.data.music.build import build_music_dataset

        build_music_dataset(music, limit=3, jobs=1, progress=False)
    from crossmodal_core import evaluate

    evaluate.write_results(evaluate.evaluate(a, ["cca", "ccca"], n_folds=3, progress=False),
                           root / "results" / "tiny-a.json")
    if train:
        old = os.environ.get("CROSSMODAL_ASSETS")
        os.environ["CROSSMODAL_ASSETS"] = str(root)
        try:
            for entry in appdata.list_datasets():
                if entry.kind == "music" or (entry.kind == "file" and entry.path.name.startswith("tiny")):
                    app = appdata.load_dataset(entry.id)
                    label = appdata.label_choices(app.dataset)[0]
                    pairs = appdata.view_pairs(app.dataset)
                    for pair in pairs if entry.kind == "music" else pairs[:1]:
                        for name in ("cca", "ccca"):
                            if appdata.find_trained(app, name, pair, label) is None:
                                appdata.train_model(app, name, pair, label)
        finally:
            if old is None:
                os.environ.pop("CROSSMODAL_ASSETS", None)
            else:
                os.environ["CROSSMODAL_ASSETS"] = old
    return root


@pytest.fixture(scope="session")
def _app_assets_root(tmp_path_factory) -> Path:
    """Built once per session; never left in the environment of tests that did not ask for it."""
    return build_app_assets(tmp_path_factory.mktemp("assets"))


@pytest.fixture
def app_assets(_app_assets_root, monkeypatch) -> Path:
    monkeypatch.setenv("CROSSMODAL_ASSETS", str(_app_assets_root))
    return _app_assets_root
