"""The evaluation driver: metrics equal a direct computation, zero-shot never trains on an
unseen class, results files, paired (instance-level) mode, error handling."""

import csv
import json

import numpy as np
import pytest

from crossmodal_core import evaluate as ev
from crossmodal_core import metrics, report, tables
from crossmodal_core.data import splits
from crossmodal_core.data.dataset import CrossModalDataset
from crossmodal_core.data.synthetic import make_synthetic_av
from crossmodal_core.models import linear
from crossmodal_core.models.base import CrossModalEstimator
from crossmodal_core.retrieval import ScoredDirection
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
    assert got["R@1"] == pytest.approx(metrics.recall_at_k(ranks, 1))
    assert got["R@10"] == pytest.approx(metrics.recall_at_k(ranks, 10))
    assert got["MRR"] == pytest.approx(metrics.mrr(ranks))
    assert got["median_rank"] == pytest.approx(metrics.median_rank(ranks))
    assert got["n"] == len(test)
    assert got["R@1"] > 0.5  # sheet is a noisy linear function of audio: pairs are easy
    assert set(res["models"]["cca"]["summary"]["metrics"]["test"]["audio->sheet"]) == set(metrics.PAIRED_METRICS)
    assert "R@1.audio->sheet" in res["rows"][0] and "n.audio->sheet" not in res["rows"][0]
    table = ev.format_paired_table(res)
    assert "R@1" in table and "audio→sheet" in table


def test_parse_model_params():
    params = ev.parse_model_params(["ccca.n_components=5", "reg=0.01", "cca.dtype=float64"], ["cca", "ccca"])
    assert params == {"cca": {"reg": 0.01, "dtype": "float64"}, "ccca": {"n_components": 5, "reg": 0.01}}
    with pytest.raises(ValueError, match="no evaluated model has a parameter 'bogus'"):
        ev.parse_model_params(["bogus=1"], ["cca"])
    with pytest.raises(ValueError, match="not being evaluated"):
        ev.parse_model_params(["kcca.reg=1"], ["cca"])


class FixedEmbedding(CrossModalEstimator):
    """Ignores training; maps each view's rows through a fixed (one per view) table lookup."""

    n_views = 2

    def __init__(self, tables=None):
        self.tables = tables

    def fit(self, views, y=None):
        self.fitted_ = True
        return self

    def transform(self, views):
        return [self.tables[int(v[0, 0])][v[:, 1].astype(int)] for v in views]


def _circle(deg):
    r = np.deg2rad(np.asarray(deg, dtype=float))
    return np.stack([np.cos(r), np.sin(r)], axis=1)


def test_paired_engine_against_a_hand_computed_4x4_case():
    # four items on the unit circle; view "a" at 0, 90, 180, 270 degrees, view "b" at
    # 350, 170, 100, 265 (items 1 and 2 roughly swapped), cosine similarity = angle gap.
    # a -> b: a0 (0): gaps 10, 170, 100, 95 -> pair first (rank 1); a1 (90): gaps 100, 80,
    # 10, 175 -> pair (80) second; a2 (180): gaps 170, 10, 80, 85 -> pair second; a3 (270):
    # gaps 80, 100, 170, 5 -> rank 1. Ranks [1, 2, 2, 1].
    tables = {0: _circle([0, 90, 180, 270]), 1: _circle([350, 170, 100, 265])}
    idx = np.arange(4, dtype=float)
    views = {"a": np.stack([np.zeros(4), idx], axis=1), "b": np.stack([np.ones(4), idx], axis=1)}
    # two copies of the four items, one per fold: every fold tests the same 4 x 4 case
    ds = CrossModalDataset(views={k: np.vstack([v, v]) for k, v in views.items()}, folds=np.repeat([0, 1], 4),
                           name="four")
    res = ev.evaluate_paired(ds, {"fixed": FixedEmbedding(tables)}, views=["a", "b"], progress=False)
    for fold in res["models"]["fixed"]["folds"]:
        got = fold["metrics"]["test"]["a->b"]
        assert got == {"R@1": 0.5, "R@5": 1.0, "R@10": 1.0, "MRR": (1 + 0.5 + 0.5 + 1) / 4, "median_rank": 1.5,
                       "n": 4}
    summary = res["models"]["fixed"]["summary"]["metrics"]["test"]["a->b"]
    assert summary["MRR"] == {"mean": 0.75, "std": 0.0, "n": 2}
    assert ev.paired_metrics(tables[0], tables[1]) == res["models"]["fixed"]["folds"][0]["metrics"]["test"]["a->b"]
    assert "50.00 ± 0.00" in ev.format_paired_table(res)


def test_std_convention_is_the_sample_std_over_folds():
    s = report.summarise([0.1, 0.2, 0.6, float("nan")])
    assert s["n"] == 3 and s["mean"] == pytest.approx(0.3)
    assert s["std"] == pytest.approx(np.std([0.1, 0.2, 0.6], ddof=1)) and s["std"] != pytest.approx(np.std([0.1, 0.2, 0.6]))
    assert report.summarise([0.4]) == {"mean": 0.4, "std": 0.0, "n": 1}
    assert report.summarise([]) == {"mean": pytest.approx(float("nan"), nan_ok=True),
                                    "std": pytest.approx(float("nan"), nan_ok=True), "n": 0}
    assert ev.summarise is report.summarise  # the evaluator and the tables share it
    assert report.cell({"mean": 0.5, "std": 0.1, "n": 2}, 100) == "50.00 ± 10.00"
    assert report.cell({"mean": 0.5, "std": 0.0, "n": 1}, 100) == "50.00"


def test_class_metrics_take_a_scored_direction(rng):
    y = rng.integers(0, 4, 150)
    q = rng.standard_normal((150, 6)) + y[:, None]
    g = rng.standard_normal((150, 6)) + y[:, None]
    scored = ScoredDirection(q, g, y, y)
    out = ev.class_metrics(scored)
    assert out == ev.class_metrics(q, g, y, y)
    assert out["map"] == metrics.mean_average_precision(q, g, y, y)
    first = metrics.first_relevant_ranks(q, g, y, y)
    assert out["mrr1"] == metrics.mrr(first, cutoff=1)
    recall, precision = metrics.precision_recall_curve(q, g, y, y)
    assert out["pr_recall"] == recall.tolist() and out["pr_precision"] == precision.tolist()
    assert set(ev.class_metrics(q, g, y, y, pr_points=None)) == {"map", "mrr1"}


# ----------------------------------------------------------------------------- report
def _tiny_document():
    """A two-fold class-level results document, as evaluate() writes it."""
    maps = {"cca": [0.40, 0.50], "ccca": [0.80, 0.90]}
    models, rows = {}, []
    for key, display in (("cca", "CCA"), ("ccca", "C-CCA")):
        folds = []
        for f, m in enumerate(maps[key]):
            vals = {"audio->visual": {"map": m, "mrr1": m + 0.05}, "visual->audio": {"map": m - 0.1, "mrr1": m}}
            folds.append({"fold": f, "n_train": 10, "n_test": 5, "fit_seconds": 1.0 + f, "metrics": {"test": vals}})
            rows.append({"model": display, "model_key": key, "dataset": "tiny", "fold": f, "fit_seconds": 1.0 + f,
                         **{f"{name}.{d}": v for d, mv in vals.items() for name, v in mv.items()}})
        models[key] = {"display": display, "name": key, "folds": folds, "error": None,
                       "summary": ev._summarise(folds, report.CLASS_METRICS)}
    return {"dataset": "tiny", "dataset_info": {"synthetic": True},
            "protocol": {"kind": "class", "views": ["audio", "visual"], "partition": "2 folds", "label": "class"},
            "directions": ["audio->visual", "visual->audio"], "models": models, "rows": rows}


def test_poster_table_and_results_frame_on_a_small_document():
    doc = _tiny_document()
    rows = [{"source": "tiny", **r} for r in doc["rows"]]
    table = tables.paper_table([doc]).to_frame()
    assert list(table.index) == ["CCA", "C-CCA"]  # the poster's order, not alphabetical
    assert list(table.columns) == [("tiny", "audio→visual"), ("tiny", "visual→audio")]
    assert table.loc["CCA", ("tiny", "audio→visual")] == f"45.00 ± {100 * np.std([0.4, 0.5], ddof=1):.2f}"
    assert table.loc["C-CCA", ("tiny", "visual→audio")] == f"75.00 ± {100 * np.std([0.7, 0.8], ddof=1):.2f}"
    frame = report.results_frame(doc)
    assert list(frame.index) == ["CCA", "C-CCA"]
    assert list(frame.columns) == ["MAP a→v", "MAP v→a", "MRR@1 a→v", "MRR@1 v→a", "fit s"]
    assert frame.loc["CCA", "MAP a→v"] == table.loc["CCA", ("tiny", "audio→visual")]  # one cell format
    assert frame.loc["CCA", "fit s"] == "1.5 ± 0.7"
    text = report.format_table(doc)
    assert ev.format_table is report.format_table and ev.write_results is report.write_results
    for cell in frame.loc["C-CCA"]:
        assert cell in text
    assert "SYNTHETIC" in text and text.splitlines()[1].split() == ["Model", *" ".join(frame.columns).split()]
    assert tables.paper_table([]).empty


def test_load_results_labels_reference_and_yours(tmp_path):
    doc = _tiny_document()
    ref, mine = tmp_path / "ref", tmp_path / "mine"
    report.write_results(doc, ref / "tiny.json")
    report.write_results({**doc, "rows": doc["rows"][::2]}, mine / "tiny.json")  # fold 0 only
    (mine / "broken.json").write_text("{not json")
    rows = report.load_results({"reference": ref, "yours": mine})
    assert [r["origin"] for r in rows] == ["reference"] * 4 + ["yours"] * 2
    assert {r["source"] for r in rows} == {"tiny"} and rows[-1]["path"] == str(mine / "tiny.json")
    report.write_results({**doc, "models": {"cca": {**doc["models"]["cca"], "summary": ev._summarise(
        doc["models"]["cca"]["folds"][:1], report.CLASS_METRICS)}}}, mine / "tiny.json")
    docs = report.load_documents({"reference": ref, "yours": mine})
    assert [d["origin"] for d in docs] == ["reference", "yours"]  # the broken file is skipped
    table = tables.paper_table(docs).to_frame()
    assert list(table.columns) == [(f"tiny [{o}]", d) for o in ("reference", "yours")
                                   for d in ("audio→visual", "visual→audio")]
    assert table.loc["CCA", ("tiny [yours]", "audio→visual")] == "40.00"  # one fold: no std
    assert table.loc["C-CCA", ("tiny [yours]", "audio→visual")] == "–"  # not in that file
    # one origin only: no tag
    assert tables.paper_table(report.load_documents({"reference": ref})).columns[0] == ("tiny", "audio→visual")
    # the default folders are the committed results and the user's runs
    from crossmodal_core import store

    default = report.load_results()
    assert {r["origin"] for r in default} <= {"reference", "yours"}
    assert any(r["path"].startswith(str(store.results_dir())) for r in default)


def test_paired_metrics_add_the_posters_recall_at_20():
    from crossmodal_core.models.deep.attention import POSTER_RECALL_KS

    rng = np.random.default_rng(0)
    q = rng.standard_normal((60, 5))
    g = q[np.r_[1:60, 0]]  # the true pair of query i is gallery row i, which holds query i + 1
    out = ev.paired_metrics(q, g, ks=POSTER_RECALL_KS)
    sim = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (g / np.linalg.norm(g, axis=1, keepdims=True)).T
    ranks = 1 + (sim > np.diag(sim)[:, None]).sum(axis=1)  # cosine rank of the true pair
    assert [k for k in out if k.startswith("R@")] == ["R@1", "R@5", "R@10", "R@20"]
    assert out["R@20"] == np.mean(ranks <= 20) and out["R@5"] == np.mean(ranks <= 5)
    assert ev.paired_metrics(q, g) == {k: v for k, v in out.items() if k != "R@20"}


def test_sequence_models_are_scored_through_the_sequence_views():
    from crossmodal_core.data.synthetic import make_synthetic_av

    params = {"attention": dict(n_components=2, hidden=8, attention_dim=4, out_features=4, epochs=1,
                                batch_size=100, progress=False)}
    ds = make_synthetic_av(n_train=200, n_test=60, n_classes=3, dims=(4, 6), sequences=True)
    res = ev.evaluate(ds, ["attention", "cca"], mode="split", model_params=params, progress=False, on_error="raise")
    assert res["models"]["attention"]["views"] == ["audio_seq", "visual_seq"]
    assert res["models"]["attention"]["error"] is None and res["models"]["attention"]["folds"]
    assert "views" not in res["models"]["cca"]
    flat = make_synthetic_av(n_train=200, n_test=60, n_classes=3, dims=(4, 6))
    res = ev.evaluate(flat, ["attention"], mode="split", model_params=params, progress=False)
    assert "is a sequence model: it needs the views ['audio_seq', 'visual_seq']" in res["models"]["attention"]["error"]


def test_paired_evaluation_scores_sequence_models_on_their_sequence_views():
    """evaluate_paired maps a sequence model to the ``*_seq`` views of the chosen views, scores
    it under the flat direction names, and gives the attention model the poster's R@20; the
    numbers equal a direct fit on the sequence views ranked by an independent cosine rank."""
    from crossmodal_core.data.synthetic import make_synthetic_av
    from crossmodal_core.models.registry import make_model

    params = dict(n_components=2, hidden=8, attention_dim=4, out_features=4, epochs=1, batch_size=100,
                  progress=False)
    ds = make_synthetic_av(n_train=200, n_test=60, n_classes=3, dims=(4, 6), sequences=True)
    res = ev.evaluate_paired(ds, ["attention"], mode="split", model_params={"attention": params},
                             progress=False, on_error="raise")
    rec = res["models"]["attention"]
    assert rec["views"] == ["audio_seq", "visual_seq"] and res["directions"] == ["audio->visual", "visual->audio"]
    train, test = np.nonzero(ds.split == "train")[0], np.nonzero(ds.split == "test")[0]
    direct = make_model("attention", **params).fit([ds.views["audio_seq"][train], ds.views["visual_seq"][train]])
    za, zv = direct.transform([ds.views["audio_seq"][test], ds.views["visual_seq"][test]])
    sim = (za / np.linalg.norm(za, axis=1, keepdims=True)) @ (zv / np.linalg.norm(zv, axis=1, keepdims=True)).T
    ranks = 1 + (sim > np.diag(sim)[:, None]).sum(axis=1)
    got = rec["folds"][0]["metrics"]["test"]["audio->visual"]
    assert got["R@1"] == pytest.approx(np.mean(ranks <= 1)) and got["R@20"] == pytest.approx(np.mean(ranks <= 20))
    assert "R@20" in rec["summary"]["metrics"]["test"]["visual->audio"]
    assert "R@20" in ev.format_paired_table(res)
    # three chosen views, one without a sequence: only the pair with sequences is scored
    ds.views["text"] = ds.views["audio"][:, :3].copy()
    res3 = ev.evaluate_paired(ds, ["attention"], views=["audio", "visual", "text"], mode="split",
                              model_params={"attention": params}, progress=False, on_error="raise")
    assert set(res3["models"]["attention"]["summary"]["metrics"]["test"]) == {"audio->visual", "visual->audio"}
    assert "text" not in ev.format_paired_table(res3).split("Direction")[1]
    flat = make_synthetic_av(n_train=200, n_test=60, n_classes=3, dims=(4, 6))
    res_flat = ev.evaluate_paired(flat, ["attention"], mode="split", progress=False)
    assert "is a sequence model" in res_flat["models"]["attention"]["error"]


def test_per_model_training_row_caps_and_results_after_each_model(small):
    seen = []
    res = ev.evaluate(small, ["cca", "ccca"], n_folds=2, limit_train={"ccca": 50, "*": 120}, progress=False,
                      on_model_done=lambda r: seen.append([k for k, v in r["models"].items() if v["folds"]]))
    assert res["models"]["ccca"]["limit_train"] == 50 and res["models"]["cca"]["limit_train"] == 120
    assert {f["n_train"] for f in res["models"]["ccca"]["folds"]} == {50}
    assert {f["n_train"] for f in res["models"]["cca"]["folds"]} == {120}
    assert res["protocol"]["limit_train"] == {"ccca": 50, "*": 120}
    assert res["protocol"]["budget"] == {"cca": {"limit_train": 120}, "ccca": {"limit_train": 50}}
    assert seen == [["cca"], ["cca", "ccca"]]
    assert ev.evaluate(small, ["cca"], n_folds=2, limit_train=80, progress=False)["models"]["cca"]["folds"][0][
        "n_train"] == 80


def test_printed_table_in_poster_order_with_the_hashing_models_hamming_map_in_csv_and_text():
    """format_table prints the poster's row order whatever the document's order; a model's
    extra metrics (``map_hamming``) become CSV columns after ``n_test`` (the leading columns
    keep their places) and a Hamming block in the text table, for that model only."""
    doc = _tiny_document()
    doc["models"] = {"ccca": doc["models"]["ccca"], "cca": doc["models"]["cca"]}  # not the poster's order
    for f in doc["models"]["ccca"]["folds"]:
        for d, vals in f["metrics"]["test"].items():
            vals["map_hamming"] = vals["map"] - 0.2
    rec = doc["models"]["ccca"]
    rec["summary"] = ev._summarise(rec["folds"], report.CLASS_METRICS + ("map_hamming",))
    text = ev.format_table(doc)
    main, hamming = text.split("MAP by Hamming distance")
    assert main.index("\nCCA ") < main.index("\nC-CCA ")
    assert "C-CCA" in hamming and "\nCCA " not in hamming and "65.00 ± 7.07" in hamming  # (0.6, 0.7) in %
    lines = report.csv_text(doc).splitlines()
    header = lines[0].split(",")
    assert header[:11] == ["dataset", "model", "display", "subset", "direction", "fold", "map", "mrr1",
                           "fit_seconds", "n_train", "n_test"] and header[11] == "map_hamming"
    ccca0 = next(l.split(",") for l in lines if l.startswith("tiny,ccca,C-CCA,test,audio->visual,0,"))
    cca0 = next(l.split(",") for l in lines if l.startswith("tiny,cca,CCA,test,audio->visual,0,"))
    assert float(ccca0[11]) == pytest.approx(0.6) and cca0[11] == ""


def test_the_table_caption_states_the_training_row_cap():
    doc = _tiny_document()
    assert "training rows" not in tables.paper_table([doc]).caption
    doc["protocol"]["limit_train"] = {"*": 1500, "lstm-ccca": 800}
    assert "at most 1,500 training rows per fold (LSTM-C-CCA: 800)" in tables.paper_table([doc]).caption
    doc["protocol"]["limit_train"] = 3000
    assert "at most 3,000 training rows per fold." in tables.paper_table([doc]).caption


def test_default_views_class_level_and_paired():
    """One default for evaluate, evaluate_paired and the CLI's --models all filter."""
    from crossmodal_core.evaluate import default_views

    rng = np.random.default_rng(0)
    n = 6
    views = {"audio": rng.normal(size=(n, 3)), "audio_seq": rng.normal(size=(n, 2, 3)),
             "lyrics": rng.normal(size=(n, 4)), "sheet": rng.normal(size=(n, 5))}
    ds = CrossModalDataset(views=views, labels={"work": np.arange(n) % 2}, class_names={"work": ["a", "b"]})
    flat = [v for v in ds.view_names if ds.views[v].ndim == 2]
    assert default_views(ds, paired=False) == flat[:2]
    assert default_views(ds, paired=True) == ["sheet", "lyrics", "audio"]
    two = CrossModalDataset(views={k: views[k] for k in ("audio", "audio_seq", "lyrics")},
                            labels={"work": np.arange(n) % 2}, class_names={"work": ["a", "b"]})
    assert default_views(two, paired=True) == ["audio", "lyrics"]
