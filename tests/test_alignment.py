"""Alignment evaluation against hand-computed ranks, the CCA-on-pairs baseline, fold
cross-validation, and the segment-similarity data of the alignment page."""

import numpy as np
import pytest

from crossmodal_core.alignment import (
    DIRECTIONS,
    cca_on_pairs_method,
    cross_validate_alignment,
    direction_ranks,
    evaluate_alignment,
    evaluate_cca_on_pairs,
    format_alignment_table,
    run_alignment_evaluation,
    segment_similarity,
    work_segments,
)
from crossmodal_core.data.dataset import CrossModalDataset


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
    # euclidean distance does see the scale of audio
    eu = direction_ranks(tiny_embeddings(), metric="euclidean")
    assert eu["sheet->audio"].tolist() != [1, 1, 1, 1] or eu["audio->sheet"].tolist() != [1, 1, 1, 1]


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


def test_cross_validate_alignment_uses_held_out_folds_only():
    views = shared_latent_views(90, 0)
    folds = np.repeat([0, 1, 2], 30)
    ds = CrossModalDataset(views=views, folds=folds, name="toy")
    seen = []

    def spy(train, test):
        seen.append((train["sheet"].shape[0], test["sheet"].shape[0],
                     {tuple(r) for r in np.round(test["sheet"], 6)} & {tuple(r) for r in np.round(train["sheet"], 6)}))
        return cca_on_pairs_method(n_components=2)(train, test)

    out = cross_validate_alignment(ds, {"spy": spy}, progress=False)
    assert out["folds"] == [0, 1, 2] and out["n_test"] == [30, 30, 30]
    assert [(a, b) for a, b, _ in seen] == [(60, 30)] * 3
    assert all(not overlap for _, _, overlap in seen)
    assert len(out["spy"]["per_fold"]) == 3
    mrr = [r["mean"]["MRR"] for r in out["spy"]["per_fold"]]
    assert out["spy"]["mean"]["mean"]["MRR"] == pytest.approx(np.mean(mrr))
    table = format_alignment_table({"spy": out["spy"]["mean"]}, {"spy": out["spy"]["std"]})
    assert table.count("\n") == 2 + 6  # header, rule, six directions, mean


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
