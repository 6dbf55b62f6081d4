"""evaluate_paired on an image view: CNN models get the images, the others the pixel descriptor,
class-level MAP beside the instance metrics, validation rows from the training rows only."""

from __future__ import annotations

import numpy as np
import pytest

from sklearn.metrics import average_precision_score

from crossmodal_core.data.dataset import CrossModalDataset
from crossmodal_core.evaluate import evaluate_paired, format_table
from crossmodal_core.features.image_descriptors import pixel_blocks
from crossmodal_core.models.linear import CCA
from crossmodal_core.report import csv_text
from crossmodal_core.tables import paper_table


@pytest.fixture(scope="module")
def image_dataset():
    rng = np.random.default_rng(0)
    n, n_works = 150, 15
    work = np.arange(n) % n_works
    # faint noise everywhere: no two images (nor their 8 x 8 tile means) alike, so no ranking ties
    img = rng.integers(0, 40, size=(n, 1, 16, 64)).astype(np.uint8)
    for i, w in enumerate(work):
        img[i, 0, :, rng.integers(3)::3 + w % 5] = 255
        img[i, 0, rng.integers(16), :] = 255
    audio = (np.eye(n_works)[work] @ rng.normal(size=(n_works, 6)) + 0.5 * rng.normal(size=(n, 6))).astype(np.float32)
    return CrossModalDataset(views={"score_image": img, "audio": audio}, labels={"work": work},
                             class_names={"work": [f"w{i}" for i in range(n_works)]},
                             folds=work % 3, name="toy-images")


def test_paired_image_evaluation_protocol_and_baseline_reference(image_dataset):
    ds = image_dataset
    res = evaluate_paired(ds, ["cca", "dcca"], views=["score_image", "audio"], label="work",
                          validation_fraction=0.2, progress=False, on_error="raise",
                          model_params={"cca": {"n_components": 4},
                                        "dcca": {"n_components": 2, "hidden": [8], "epochs": 1, "batch_size": 50}})
    cca, dcca = res["models"]["cca"], res["models"]["dcca"]
    assert cca["views"] == ["score_image_pix", "audio"] and "views" not in dcca
    assert res["protocol"]["label"] == "work" and "pool" in res["protocol"]
    for fold, (rec_c, rec_d) in enumerate(zip(cca["folds"], dcca["folds"])):
        test = np.flatnonzero(ds.folds == fold)
        train = np.flatnonzero(ds.folds != fold)
        assert rec_c["n_test"] == rec_d["n_test"] == len(test)      # the pool is the test fold
        assert rec_c["n_validation"] == 0 and rec_c["n_train"] == len(train)  # CCA takes no validation
        assert rec_d["n_validation"] > 0 and rec_d["n_train"] + rec_d["n_validation"] == len(train)
        # the baseline equals CCA fitted by hand on the descriptor of the training rows
        x = pixel_blocks(ds.views["score_image"])
        zi, za = CCA(n_components=4).fit([x[train], ds.views["audio"][train]]).transform(
            [x[test], ds.views["audio"][test]])
        zi, za = zi.astype(np.float32), za.astype(np.float32)  # the evaluator scores float32 embeddings
        unit = lambda z: z / np.linalg.norm(z, axis=1, keepdims=True)  # noqa: E731
        sims = unit(zi) @ unit(za).T
        ranks = 1 + (sims > np.diag(sims)[:, None]).sum(axis=1)
        got = rec_c["metrics"]["test"]["score_image->audio"]
        assert got["MRR"] == pytest.approx(float(np.mean(1.0 / ranks)), rel=1e-4)
        y = ds.labels["work"][test]
        ap = [average_precision_score(y == y[q], sims.T[q]) for q in range(len(test))]  # audio queries
        assert rec_c["metrics"]["test"]["audio->score_image"]["map"] == pytest.approx(float(np.mean(ap)), rel=1e-4)
    assert "map" in cca["summary"]["metrics"]["test"]["score_image->audio"]
    assert csv_text(res).splitlines()[0].split(",")[6:12] == ["R@1", "R@5", "R@10", "MRR", "median_rank", "map"]
    assert "MAP" in format_table(res)
    # the app's results table (paper layout) shows the MAP-by-work columns of this document
    table = paper_table([res])
    assert [g.directions for g in table.groups] == [("score_image->audio", "audio->score_image")]
    assert "by work" in table.groups[0].title and "same label" in table.caption
    row = table.models.index("cca")
    assert table.mean[row, 1] == pytest.approx(100 * cca["summary"]["metrics"]["test"]["audio->score_image"]["map"]["mean"])


def test_without_a_label_the_paired_document_is_unchanged(image_dataset):
    res = evaluate_paired(image_dataset, ["cca"], views=["score_image", "audio"], progress=False, on_error="raise")
    summary = res["models"]["cca"]["summary"]["metrics"]["test"]["audio->score_image"]
    assert "map" not in summary and "MAP" not in format_table(res)
    assert paper_table([res]).empty  # no MAP: not a column of the paper-layout table
    assert csv_text(res).splitlines()[0].split(",")[6:12] == ["R@1", "R@5", "R@10", "MRR", "median_rank", "fit_seconds"]
