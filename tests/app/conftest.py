"""Small app fixtures: two tiny feature files (one synthetic, VEGAS-shaped but small) in a
temporary assets folder, a results table, and quickly trained linear models in the test
cache. The real embedded music dataset is linked in when it has been built."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REAL_MUSIC = REPO / "assets" / "datasets" / "music21_lyrics"


#: the tiny score-image set's file (not "tiny*": the pages' generic tests keep their two datasets)
SCORE_IMAGE_FILE = "img_scores.npz"


def make_score_image_set(n_per_class: int = 30, n_classes: int = 4, seed: int = 3):
    """A small dataset shaped like the music dataset's audio <-> score-image views: ``audio``
    (n, 12) float32, ``audio_mel`` (n, 1, 8, 16) uint8, ``score_image`` (n, 1, 16, 64) uint8 (ink
    255 on paper 0: five "staff lines", class-dependent "notes", blank right padding) and its
    flat image feature ``score_hog`` (n, 16), a class label and a train/test split."""
    from crossmodal_core.data.dataset import CrossModalDataset
    import numpy as np

    rng = np.random.default_rng(seed)
    n = n_per_class * n_classes
    y = np.repeat(np.arange(n_classes), n_per_class)
    rng.shuffle(y)
    means = rng.normal(0, 2, (n_classes, 12))
    audio = (means[y] + rng.normal(0, 0.7, (n, 12))).astype(np.float32)
    images = np.zeros((n, 1, 16, 64), dtype=np.uint8)
    images[:, 0, 3:14:2, 2:44] = 160  # staff lines
    mel = rng.integers(0, 40, (n, 1, 8, 16)).astype(np.uint8)
    for i, c in enumerate(y):
        for k in range(6):  # notes on class-dependent rows, jittered
            x = 4 + 6 * k + int(rng.integers(0, 2))
            row = (2 * c + k) % 12 + 2
            images[i, 0, row:row + 2, x:x + 3] = 255
        mel[i, 0, (2 * c) % 8, :] = 200
    hog = np.stack([images[:, 0, r].mean(axis=1) for r in range(16)], axis=1).astype(np.float32) / 255
    hog += rng.normal(0, 0.05, hog.shape).astype(np.float32)
    split = np.where(np.arange(n) < int(0.7 * n), "train", "test")
    mel_pix = mel[:, 0].reshape(n, 8, 4, 4).mean(axis=(2, 3)).astype(np.float32)  # a flat descriptor of audio_mel
    return CrossModalDataset(
        views={"audio": audio, "audio_mel": mel, "score_image": images, "score_hog": hog, "audio_mel_pix": mel_pix},
        labels={"work": y}, class_names={"work": [f"work {c}" for c in range(n_classes)]},
        item_ids=np.array([f"item-{i}" for i in range(n)]), split=split, name="img-scores",
        info={"default_label": "work"})


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
    io.save_dataset(make_score_image_set(), datasets / SCORE_IMAGE_FILE)
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
                if entry.kind == "file" and entry.path.name == SCORE_IMAGE_FILE:
                    # audio <-> score_image: the poster's trio, TNN-C-CCA with its CNN towers (~5 s)
                    app = appdata.load_dataset(entry.id)
                    pair = appdata.view_pairs(app.dataset)[0]
                    for name in ("cca", "ccca", "tnn-ccca"):
                        if appdata.find_trained(app, name, pair, "work") is None:
                            appdata.train_model(app, name, pair, "work")
                elif entry.kind == "music" or (entry.kind == "file" and entry.path.name.startswith("tiny")):
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
