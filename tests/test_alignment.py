"""Alignment evaluation against hand-computed ranks, the CCA-on-pairs baseline, fold
cross-validation through the one paired engine, the alignment report, and the
segment-similarity data of the alignment page."""

import numpy as np
import pytest

from crossmodal_core import evaluate as ev
from crossmodal_core import report
from crossmodal_core.alignment import (
    DIRECTIONS,
    METRIC_NAMES,
    PairCCA,
    alignment_report,
    direction_ranks,
    evaluate_alignment,
    evaluate_cca_on_pairs,
    run_alignment_evaluation,
    segment_similarity,
    work_segments,
)
from crossmodal_core.data.dataset import CrossModalDataset
from crossmodal_core.models.preprocessing import standardise


def tiny_embeddings():
    # four items on the unit circle (angles in degrees); cosine similarity ranks by angle gap
    def circle(deg):
        r = np.deg2rad(np.asarray(deg, dtype=float))
        return np.stack([np.cos(r), np.sin(r)], axis=1)

    return {
        "sheet": circle([0, 90, 180, 270]),
        "lyrics": circle([350, 170, 100, 265]),  # items 1 and 2 roughly swapped; no ties
        "audio": circle([0, 90, 180, 270]) * np.array([[2.0], [1.0], [3.0], [0.5]]),  # scaled copy
    }


def test_evaluate_alignment_against_hand_computed_ranks():
    res = evaluate_alignment(tiny_embeddings())
    assert set(res) == {f"{q}->{g}" for q, g in DIRECTIONS} | {"mean"}
    # sheet -> lyrics, angle gaps to lyrics (350, 170, 100, 265): sheet 0 (0 deg): 10 is the
    # smallest -> rank 1; sheet 1 (90): gaps 100, 80, 10, 175 -> its pair (80) is 2nd; sheet 2
    # (180): gaps 170, 10, 80, 85 -> pair 2nd; sheet 3 (270): gaps 80, 100, 170, 5 -> rank 1
    ranks = direction_ranks(tiny_embeddings())
    np.testing.assert_array_equal(ranks["sheet->lyrics"], [1, 2, 2, 1])
    # lyrics -> sheet: lyric 1 (170): gaps 170, 80, 10, 100 -> pair 2nd; lyric 2 (100): gaps
    # 100, 10, 80, 170 -> pair 2nd; lyrics 0 and 3 are nearest their own pair
    np.testing.assert_array_equal(ranks["lyrics->sheet"], [1, 2, 2, 1])
    # audio is a rescaled copy of sheet: cosine ignores the scale -> perfect
    np.testing.assert_array_equal(ranks["sheet->audio"], [1, 1, 1, 1])
    r = res["sheet->lyrics"]
    assert r["R@1"] == pytest.approx(0.5)
    assert r["R@5"] == r["R@10"] == 1.0
    assert r["MRR"] == pytest.approx((1 + 0.5 + 0.5 + 1) / 4)
    assert r["median_rank"] == pytest.approx(1.5)
    assert r["n"] == 4
    assert res["sheet->audio"]["MRR"] == 1.0 and res["audio->sheet"]["median_rank"] == 1.0
    expected_mean = np.mean([res[f"{q}->{g}"]["MRR"] for q, g in DIRECTIONS])
    assert res["mean"]["MRR"] == pytest.approx(expected_mean)
    # euclidean distance does see the scale of audio: sheet at (1,0), (0,1), (-1,0), (0,-1);
    # audio at (2,0), (0,1), (-3,0), (0,-0.5). Sheet 2 (-1,0) is 3 from audio 0, 1.414 from
    # audio 1, 2 from its pair audio 2 and 1.118 from audio 3 -> its pair ranks 3rd; the other
    # sheets are nearest their pair (distances 1, 0, 0.5). Every audio item is nearest its own
    # sheet (1 vs 2.24, 0, 2 vs 3.16, 0.5 vs 1.118).
    eu = direction_ranks(tiny_embeddings(), metric="euclidean")
    np.testing.assert_array_equal(eu["sheet->audio"], [1, 1, 3, 1])
    np.testing.assert_array_equal(eu["audio->sheet"], [1, 1, 1, 1])


def test_evaluate_alignment_rejects_bad_input():
    emb = tiny_embeddings()
    with pytest.raises(ValueError, match="lack"):
        evaluate_alignment({"sheet": emb["sheet"], "lyrics": emb["lyrics"]})
    with pytest.raises(ValueError, match="rows"):
        evaluate_alignment({**emb, "audio": emb["audio"][:3]})
    with pytest.raises(ValueError, match="NaN"):
        evaluate_alignment({**emb, "lyrics": np.full((4, 2), np.nan)})
    with pytest.raises(ValueError, match="width"):
        evaluate_alignment({**emb, "audio": np.ones((4, 3))})


def shared_latent_views(n, seed, noise=0.3):
    rng = np.random.default_rng(seed)
    maps = np.random.default_rng(99)
    z = rng.standard_normal((n, 3))
    return {name: z @ maps.standard_normal((3, d)) + noise * rng.standard_normal((n, d))
            for name, d in (("sheet", 8), ("lyrics", 12), ("audio", 6))}


def test_cca_on_pairs_retrieves_pairs_of_a_shared_latent():
    res = evaluate_cca_on_pairs(shared_latent_views(200, 0), shared_latent_views(100, 1), n_components=3)
    for q, g in DIRECTIONS:
        assert res[f"{q}->{g}"]["R@10"] > 0.6  # chance is 0.1
    # pure noise views: about chance
    rng = np.random.default_rng(5)
    noise = lambda n: {k: rng.standard_normal((n, 5)) for k in ("sheet", "lyrics", "audio")}  # noqa: E731
    res = evaluate_cca_on_pairs(noise(200), noise(100), n_components=3)
    assert res["mean"]["R@10"] < 0.25


def test_cross_validation_runs_through_the_paired_engine_on_held_out_folds_only():
    views = shared_latent_views(90, 0)
    folds = np.repeat([0, 1, 2], 30)
    ds = CrossModalDataset(views=views, folds=folds, name="toy")
    seen = []

    class Spy(PairCCA):
        def fit(self, views, y=None):
            seen.append(views[0].shape[0])
            return super().fit(views, y)

    res = ev.evaluate_paired(ds, {"spy": Spy(n_components=2)}, views=["sheet", "lyrics", "audio"], progress=False)
    assert seen == [60] * 9  # 3 folds x 3 pairs of views, each on the other two folds
    folds_out = res["models"]["spy"]["folds"]
    assert [f["n_test"] for f in folds_out] == [30, 30, 30]
    # fold 1 by hand: the same numbers as the single-split baseline on its rows
    test, train = folds == 1, folds != 1
    direct = evaluate_cca_on_pairs({k: v[train] for k, v in views.items()}, {k: v[test] for k, v in views.items()},
                                   n_components=2)
    for q, g in DIRECTIONS:
        assert folds_out[1]["metrics"]["test"][f"{q}->{g}"] == direct[f"{q}->{g}"]
    doc = alignment_report({"spy": res}, "toy")
    assert doc["folds"] == [0, 1, 2] and doc["n_test"] == [30, 30, 30]
    per_fold = doc["methods"]["spy"]["per_fold"]
    mrr = [r["mean"]["MRR"] for r in per_fold]
    assert doc["methods"]["spy"]["mean"]["mean"]["MRR"] == pytest.approx(np.mean(mrr))
    assert doc["methods"]["spy"]["std"]["mean"]["MRR"] == pytest.approx(np.std(mrr, ddof=1))  # sample std
    assert set(doc["methods"]["spy"]["mean"]["sheet->audio"]) == set(METRIC_NAMES)
    assert doc["table"].count("\n") == 2 + 6  # header, rule, six directions, mean
    assert doc["table"] == report.format_alignment_table({"spy": doc["methods"]["spy"]["mean"]},
                                                         {"spy": doc["methods"]["spy"]["std"]})


def test_pair_cca_standardises_with_the_shared_standardiser():
    views = shared_latent_views(80, 2)
    views["sheet"][:, 3] = 7.0  # a constant feature maps to 0, not to a division by zero
    train = {k: v[:60] for k, v in views.items()}
    test = {k: v[60:] for k, v in views.items()}
    est = PairCCA(n_components=3).fit([train["sheet"], train["audio"]])
    from crossmodal_core.models.linear import CCA

    scaled = {k: standardise(train[k], test[k]) for k in ("sheet", "audio")}
    cca = CCA(n_components=3, reg=1e-3).fit([scaled["sheet"][0], scaled["audio"][0]])
    for got, want in zip(est.transform([test["sheet"], test["audio"]]), cca.transform([scaled["sheet"][1],
                                                                                        scaled["audio"][1]])):
        np.testing.assert_array_equal(got, want)


def test_committed_alignment_reports_are_consistent_with_their_folds():
    """The committed reports: mean and std over folds are report.summarise of their own
    per-fold numbers, and the table is rendered from them."""
    from crossmodal_core import store

    paths = sorted(store.results_dir().glob("*_alignment*.json"))
    assert paths, "no committed alignment report"
    for path in paths:
        doc = store.read_json(path)
        for name, method in doc["methods"].items():
            for key, per_metric in method["mean"].items():
                for m in METRIC_NAMES:
                    s = report.summarise([f[key][m] for f in method["per_fold"]])
                    assert per_metric[m] == s["mean"], (path.name, name, key, m)
                    assert method["std"][key][m] == s["std"], (path.name, name, key, m)
        assert doc["table"] == report.format_alignment_table({n: m["mean"] for n, m in doc["methods"].items()},
                                                             {n: m["std"] for n, m in doc["methods"].items()})


def test_segment_similarity_and_work_segments():
    emb = tiny_embeddings()
    s = segment_similarity(emb["sheet"], emb["audio"])
    assert s.shape == (4, 4)
    np.testing.assert_allclose(np.diag(s), 1.0)
    np.testing.assert_allclose(s, emb["sheet"] @ emb["sheet"].T, atol=1e-12)
    with pytest.raises(ValueError, match="same fragments"):
        segment_similarity(emb["sheet"], emb["audio"][:3])

    ds = CrossModalDataset(
        views={"sheet": np.zeros((5, 2))},
        metadata={"work_id": np.array(["a", "b", "a", "a", "b"]),
                  "part_index": np.array([0, 0, 0, 0, 0]),
                  "verse": np.array([2, 1, 1, 1, 1]),
                  "measure_start": np.array([1, 1, 9, 1, 5])},
    )
    # work a: rows 0 (verse 2, m1), 2 (verse 1, m9), 3 (verse 1, m1) -> verse 1 first, by measure
    np.testing.assert_array_equal(work_segments(ds, "a"), [3, 2, 0])
    np.testing.assert_array_equal(work_segments(ds, "b"), [1, 4])
    with pytest.raises(KeyError):
        work_segments(ds, "zzz")


def test_run_alignment_evaluation_writes_a_report(tmp_path):
    import json

    views = shared_latent_views(120, 0)
    ds = CrossModalDataset(views=views, folds=np.repeat([0, 1], 60), name="toy")
    params = dict(n_components=3, hidden_dims=(16,), generator_hidden=(8,), discriminator_hidden=(8,), epochs=3,
                  batch_size=32)
    report = run_alignment_evaluation(ds, ugaar_params=params, out=tmp_path / "toy.json", progress=False)
    saved = json.loads((tmp_path / "toy.json").read_text())
    assert saved["methods"].keys() == {"UGAAR", "CCA-on-pairs"}
    assert saved["methods"]["CCA-on-pairs"]["params"] == {"n_components": 3, "reg": 1e-3}
    assert saved["n_test"] == [60, 60]
    assert len(saved["methods"]["UGAAR"]["per_fold"]) == 2
    assert report["table"] == saved["table"] and "UGAAR" in report["table"]
    assert saved["folds"] == [0, 1]
    for method in saved["methods"].values():
        assert set(method["per_fold"][0]) == {f"{q}->{g}" for q, g in DIRECTIONS} | {"mean"}
        assert set(method["per_fold"][0]["mean"]) == set(METRIC_NAMES) | {"n"}


def test_duplicate_ceiling_by_hand_and_it_bounds_a_perfect_model():
    from crossmodal_core.alignment import duplicate_ceiling

    # lyrics rows 0, 1, 2 identical (one text, three melodies); sheet rows 3, 4 identical
    sheet = np.array([[0.0], [1.0], [2.0], [3.0], [3.0], [5.0]])
    lyrics = np.array([[7.0], [7.0], [7.0], [1.0], [2.0], [3.0]])
    audio = np.arange(6.0)[:, None]
    ceil = duplicate_ceiling({"sheet": sheet, "lyrics": lyrics, "audio": audio})
    # lyrics->audio: group of 3 gets RR 1, 1/2, 1/3; the other three 1 each
    assert ceil["lyrics->audio"]["MRR"] == pytest.approx((1 + 1 / 2 + 1 / 3 + 3) / 6)
    assert ceil["lyrics->audio"]["R@1"] == pytest.approx(4 / 6)
    assert ceil["lyrics->audio"]["R@5"] == 1.0
    # sheet->lyrics: min of the sheet bound (pair 3, 4) and the lyrics bound (triple)
    assert ceil["sheet->lyrics"]["MRR"] == pytest.approx(min((1 + 1 / 2 + 4) / 6, (1 + 1 / 2 + 1 / 3 + 3) / 6))
    assert ceil["sheet->audio"]["MRR"] == pytest.approx((1 + 1 / 2 + 4) / 6)
    # a "perfect" model that embeds each view's input exactly cannot beat the ceiling
    emb = {"sheet": np.hstack([sheet, np.ones((6, 1))]), "lyrics": np.hstack([lyrics, np.ones((6, 1))]),
           "audio": np.hstack([audio, np.ones((6, 1))])}
    res = evaluate_alignment(emb, metric="euclidean")
    for key in ceil:
        assert res[key]["MRR"] <= ceil[key]["MRR"] + 1e-12
