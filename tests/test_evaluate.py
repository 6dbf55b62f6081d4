"""The evaluation driver: metrics equal a direct computation, zero-shot never trains on an
unseen class, results files, paired (instance-level) mode, error handling."""

import csv
import json

import numpy as np
import pytest

from crossmodal_core import evaluate as ev
from crossmodal_core import metrics
from crossmodal_core.data import splits
from crossmodal_core.data.synthetic import make_synthetic_av
from crossmodal_core.models.base import CrossModalEstimator

linear = pytest.importorskip("crossmodal_core.models.linear")
pytestmark = pytest.mark.filterwarnings("ignore:ClusterCCA.*exceeds:UserWarning")


@pytest.fixture(scope="module")
def small():
    return make_synthetic_av(n_train=600, n_test=200, n_classes=6, dims=(16, 24), seed=3, name="small-syn")


class SpyEstimator(CrossModalEstimator):
    """Records every ``y`` (and validation labels) that ``fit`` receives; projects onto the
    first ``n_components`` features."""

    calls: list = []
    requires_labels = True

    def __init__(self, n_components=4):
        self.n_components = n_components

    def fit(self, views, y=None, validation=None):
        SpyEstimator.calls.append({"y": None if y is None else np.array(y), "n": len(views[0]),
                                   "val": None if validation is None else np.array(validation[1])})
        self.fitted_ = True
        return self

    def transform(self, views):
        return [np.asarray(v)[:, : self.n_components] + 1e-3 for v in views]


class BrokenEstimator(CrossModalEstimator):
    def fit(self, views, y=None):
        raise FloatingPointError("exploded")


def test_split_mode_map_equals_direct_computation(small, tmp_path):
    res = ev.evaluate(small, ["cca", "ccca"], mode="split", progress=False, pr_points=None)
    assert res["protocol"]["mode"] == "split" and res["directions"] == ["audio->visual", "visual->audio"]
    train, test = np.nonzero(small.split == "train")[0], np.nonzero(small.split == "test")[0]
    y = small.labels["class"]
    for name, cls in (("cca", linear.CCA), ("ccca", linear.ClusterCCA)):
        model = cls(n_components=10).fit([small.views["audio"][train], small.views["visual"][train]],
                                         y[train] if name == "ccca" else None)
        za, zv = model.transform([small.views["audio"][test], small.views["visual"][test]])
        a2v = metrics.mean_average_precision(za, zv, y[test], y[test])
        v2a = metrics.mean_average_precision(zv, za, y[test], y[test])
        fold = res["models"][name]["folds"][0]
        assert fold["n_train"] == len(train) and fold["n_test"] == len(test)
        assert fold["metrics"]["test"]["audio->visual"]["map"] == pytest.approx(a2v, abs=1e-9)
        assert fold["metrics"]["test"]["visual->audio"]["map"] == pytest.approx(v2a, abs=1e-9)
        first = metrics.first_relevant_ranks(za, zv, y[test], y[test])
        assert fold["metrics"]["test"]["audio->visual"]["mrr1"] == pytest.approx(metrics.mrr(first, cutoff=1))
        assert fold["fit_seconds"] > 0
    cca = res["models"]["cca"]["summary"]["metrics"]["test"]["audio->visual"]["map"]["mean"]
    ccca = res["models"]["ccca"]["summary"]["metrics"]["test"]["audio->visual"]["map"]["mean"]
    assert ccca > cca  # the synthetic set is built so that class-level CCA helps


def test_kfold_results_files_and_table(small, tmp_path):
    res = ev.evaluate(small, ["cca", "ccca"], n_folds=3, seed=1, progress=False)
    folds = splits.class_balanced_folds(small.labels["class"], 3, seed=1)
    y = small.labels["class"]
    # fold 2 of C-CCA recomputed by hand
    train, test = splits.fold_indices(folds, 2)
    model = linear.ClusterCCA(n_components=10).fit([small.views["audio"][train], small.views["visual"][train]], y[train])
    za, zv = model.transform([small.views["audio"][test], small.views["visual"][test]])
    rec = res["models"]["ccca"]["folds"][2]
    assert rec["metrics"]["test"]["visual->audio"]["map"] == pytest.approx(
        metrics.mean_average_precision(zv, za, y[test], y[test]), abs=1e-9)
    maps = [f["metrics"]["test"]["audio->visual"]["map"] for f in res["models"]["ccca"]["folds"]]
    summ = res["models"]["ccca"]["summary"]["metrics"]["test"]["audio->visual"]["map"]
    assert summ["mean"] == pytest.approx(np.mean(maps)) and summ["std"] == pytest.approx(np.std(maps, ddof=1))
    assert len(res["models"]["ccca"]["summary"]["metrics"]["test"]["audio->visual"]["pr_precision"]) == 11

    json_path, csv_path = ev.write_results(res, tmp_path / "out" / "res.json")
    data = json.loads(json_path.read_text())
    assert data["models"]["ccca"]["display"] == "C-CCA" and data["protocol"]["n_folds"] == 3
    assert len(data["rows"]) == 6 and data["rows"][0]["map.audio->visual"] == pytest.approx(
        res["models"]["cca"]["folds"][0]["metrics"]["test"]["audio->visual"]["map"])
    with open(csv_path) as fh:
        rows = list(csv.DictReader(fh))
    per_fold = [r for r in rows if r["model"] == "ccca" and r["direction"] == "audio->visual" and r["fold"].isdigit()]
    assert [float(r["map"]) for r in per_fold] == pytest.approx(maps)
    mean_row = [r for r in rows if r["model"] == "ccca" and r["direction"] == "audio->visual" and r["fold"] == "mean"]
    assert float(mean_row[0]["map"]) == pytest.approx(np.mean(maps))
    table = ev.format_table(res)
    assert "C-CCA" in table and "MAP a→v" in table and "±" in table and "SYNTHETIC" in table


def test_dataset_folds_are_used_when_present(small):
    ds = small.subset(np.arange(small.n_items))
    ds.folds = np.arange(ds.n_items) % 4
    res = ev.evaluate(ds, ["cca"], progress=False, pr_points=None)
    assert res["protocol"]["partition"] == "the dataset's own 4 folds"
    assert [f["n_test"] for f in res["models"]["cca"]["folds"]] == [200, 200, 200, 200]
    res = ev.evaluate(ds, ["cca"], n_folds=2, progress=False, pr_points=None)
    assert res["protocol"]["n_folds"] == 2


@pytest.mark.parametrize("mode", ["split", "kfold"])
def test_zero_shot_never_trains_on_unseen_classes(small, mode):
    SpyEstimator.calls = []
    res = ev.evaluate(small, {"spy": SpyEstimator()}, mode=mode, n_folds=3 if mode == "kfold" else None,
                      unseen_fraction=0.34, seed=2, progress=False, pr_points=None)
    zs = res["protocol"]["zero_shot"]
    unseen = zs["unseen_classes"]
    assert len(unseen) == 2 and set(unseen) == set(splits.zero_shot_split(small.labels["class"], 0.34, seed=2).unseen_classes)
    assert len(SpyEstimator.calls) == (1 if mode == "split" else 3)
    for call in SpyEstimator.calls:
        assert call["y"] is not None and len(call["y"]) == call["n"] > 0
        assert not np.isin(call["y"], unseen).any()
        assert set(np.unique(call["y"])) == set(zs["seen_classes"])
        assert call["val"] is not None and not np.isin(call["val"], unseen).any()
    fold = res["models"]["spy"]["folds"][0]
    assert set(fold["metrics"]) == {"unseen", "seen"}
    # the unseen MAP is computed on unseen-class test rows only
    y = small.labels["class"]
    if mode == "split":
        test = np.nonzero(small.split == "test")[0]
        rows = test[np.isin(y[test], unseen)]
        z = small.views["audio"][rows][:, :4] + 1e-3, small.views["visual"][rows][:, :4] + 1e-3
        assert fold["metrics"]["unseen"]["audio->visual"]["map"] == pytest.approx(
            metrics.mean_average_precision(z[0], z[1], y[rows], y[rows]), abs=1e-9)
    assert "unseen classes" in ev.format_table(res)


def test_zero_shot_guard_rejects_leaked_labels():
    est = SpyEstimator()
    views = [np.ones((4, 2)), np.ones((4, 2))]
    with pytest.raises(RuntimeError, match=r"zero-shot violation: unseen classes \[3\]"):
        ev._fit(est, views, np.array([0, 1, 3, 1]), True, [3, 4], None)


def test_errors_are_recorded_or_raised(small):
    with pytest.warns(UserWarning, match="broken failed on fold 0"):
        res = ev.evaluate(small, {"broken": BrokenEstimator(), "cca": "cca"}, mode="split", progress=False,
                          pr_points=None)
    assert "FloatingPointError: exploded" in res["models"]["broken"]["error"]
    assert res["models"]["cca"]["error"] is None and res["models"]["cca"]["folds"]
    assert "failed:\n  broken: FloatingPointError: exploded" in ev.format_table(res)
    with pytest.raises(FloatingPointError):
        ev.evaluate(small, {"broken": BrokenEstimator()}, mode="split", progress=False, on_error="raise")


def test_bad_arguments(small):
    with pytest.raises(ValueError, match="exactly two views"):
        ev.evaluate(small, ["cca"], views=["audio"], progress=False)
    with pytest.raises(KeyError, match="no view 'sheet'"):
        ev.evaluate(small, ["cca"], views=["audio", "sheet"], progress=False)
    with pytest.raises(KeyError, match="unknown model"):
        ev.evaluate(small, ["nope"], progress=False)
    ds = small.subset(np.arange(small.n_items))
    ds.split = None
    with pytest.raises(ValueError, match="no predefined train/test split"):
        ev.evaluate(ds, ["cca"], mode="split", progress=False)


def test_paired_mode_three_views_with_a_two_view_model(small):
    rng = np.random.default_rng(0)
    ds = small.subset(np.arange(small.n_items))
    ds.views["sheet"] = (ds.views["audio"] @ rng.standard_normal((16, 12))).astype(np.float32) \
        + 0.1 * rng.standard_normal((ds.n_items, 12)).astype(np.float32)
    res = ev.evaluate_paired(ds, ["cca"], views=["sheet", "audio", "visual"], mode="split", progress=False)
    assert len(res["directions"]) == 6 and "audio->sheet" in res["directions"]
    train, test = np.nonzero(ds.split == "train")[0], np.nonzero(ds.split == "test")[0]
    model = linear.CCA(n_components=10).fit([ds.views["sheet"][train], ds.views["audio"][train]])
    zs, za = model.transform([ds.views["sheet"][test], ds.views["audio"][test]])
    ranks = metrics.pair_ranks(za, zs)
    got = res["models"]["cca"]["folds"][0]["metrics"]["test"]["audio->sheet"]
    assert got["r1"] == pytest.approx(metrics.recall_at_k(ranks, 1))
    assert got["r10"] == pytest.approx(metrics.recall_at_k(ranks, 10))
    assert got["mrr"] == pytest.approx(metrics.mrr(ranks))
    assert got["median_rank"] == pytest.approx(metrics.median_rank(ranks))
    assert got["r1"] > 0.5  # sheet is a noisy linear function of audio: pairs are easy
    table = ev.format_paired_table(res)
    assert "R@1" in table and "audio→sheet" in table


def test_parse_model_params():
    params = ev.parse_model_params(["ccca.n_components=5", "reg=0.01", "cca.dtype=float64"], ["cca", "ccca"])
    assert params == {"cca": {"reg": 0.01, "dtype": "float64"}, "ccca": {"n_components": 5, "reg": 0.01}}
    with pytest.raises(ValueError, match="no evaluated model has a parameter 'bogus'"):
        ev.parse_model_params(["bogus=1"], ["cca"])
    with pytest.raises(ValueError, match="not being evaluated"):
        ev.parse_model_params(["kcca.reg=1"], ["cca"])


def test_resolve_dataset_specs(tmp_path):
    from crossmodal_core.data.io import save_dataset

    ds = make_synthetic_av(n_train=50, n_test=20, dims=(4, 6), name="tiny")
    path = save_dataset(ds, tmp_path / "tiny.h5")
    assert ev.resolve_dataset(str(path)).name == "tiny"
    assert ev.resolve_dataset("synthetic-vegas-small").n_items == 5000
