"""crossmodal_core.retrieval against brute force over the full similarity matrix."""

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from crossmodal_core import metrics as M
from crossmodal_core import retrieval as R


def brute_order(scores_row):
    return np.argsort(-scores_row, kind="stable")  # score desc, index asc on ties


# ----------------------------------------------------------------------------- top_k
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_top_k_matches_full_sort(seed, metric):
    rng = np.random.default_rng(seed)
    q, g = rng.standard_normal((23, 5)), rng.standard_normal((57, 5))
    s = M.similarity(q, g, metric)
    for k in (1, 5, 57, 80):
        idx, sc = R.top_k(q, g, k, metric=metric, chunk_size=int(rng.integers(1, 30)))
        expected = np.array([brute_order(row)[: min(k, 57)] for row in s])
        np.testing.assert_array_equal(idx, expected)
        np.testing.assert_array_equal(sc, np.take_along_axis(s, expected, axis=1))
        assert (np.diff(sc, axis=1) <= 0).all()


@pytest.mark.parametrize("seed", range(6))
def test_top_k_ties_at_the_cut_follow_the_index_rule(seed):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((4, 3))
    g = base[rng.integers(0, 4, 30)]  # 4 distinct scores per query -> ties straddle every cut
    q = rng.standard_normal((9, 3))
    s = M.similarity(q, g)
    for k in (1, 3, 7, 12):
        idx, _ = R.top_k(q, g, k, chunk_size=4)
        np.testing.assert_array_equal(idx, np.array([brute_order(row)[:k] for row in s]))


def test_top_k_validation(rng):
    x = rng.standard_normal((4, 2))
    with pytest.raises(ValueError, match="k must be a positive integer"):
        R.top_k(x, x, 0)
    with pytest.raises(ValueError, match="features"):
        R.top_k(x, rng.standard_normal((4, 3)), 2)


# ----------------------------------------------------------------------------- query_report
@pytest.mark.parametrize("seed", range(5))
def test_query_report_agrees_with_metrics(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, 100)
    centers = rng.standard_normal((4, 6))
    x = centers[labels] + rng.standard_normal((100, 6))
    y = centers[labels] + rng.standard_normal((100, 6))
    ap = M.average_precision(x, y, labels, labels)
    ranks = M.pair_ranks(x, y)
    first = M.first_relevant_ranks(x, y, labels, labels)
    s = M.similarity(x, y)
    for i in (0, 7, 39, 70, 99):
        rep = R.query_report(i, x, y, labels, labels, k=8)
        order = brute_order(s[i])[:8]
        np.testing.assert_array_equal(rep.indices, order)
        np.testing.assert_array_equal(rep.scores, s[i][order])  # same bits as the batch computation
        np.testing.assert_array_equal(rep.relevant, labels[order] == labels[i])
        assert rep.ap == pytest.approx(ap[i], abs=1e-9)
        assert rep.pair_rank == ranks[i]
        assert rep.first_relevant_rank == first[i]
        assert rep.n_relevant == int((labels == labels[i]).sum())
        assert rep.query_label == labels[i]
        d = rep.as_dict()
        assert isinstance(d["indices"], list) and d["pair_rank"] == ranks[i]


def test_query_report_instance_level_without_labels(rng):
    x = rng.standard_normal((15, 4))
    y = x + 0.8 * rng.standard_normal((15, 4))
    ranks = M.pair_ranks(x, y, metric="euclidean")
    for i in range(15):
        rep = R.query_report(i, x, y, k=3, metric="euclidean")
        assert rep.pair_rank == ranks[i] and rep.n_relevant == 1
        assert rep.ap == pytest.approx(1 / ranks[i])
        assert rep.relevant.sum() == (ranks[i] <= 3)


def test_query_report_unpaired_and_errors(rng):
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((8, 3))
    rep = R.query_report(2, x, y, [0, 1, 0, 1, 2], [0, 0, 1, 1, 0, 0, 1, 1], k=20)
    assert rep.pair_rank is None and rep.indices.shape == (8,)
    assert rep.query_label == 0 and rep.n_relevant == 4
    ql, gl = [0, 1, 0, 1, 2], [0, 0, 1, 1, 0, 0, 1, 1]
    assert rep.ap == pytest.approx(M.average_precision(x, y, ql, gl)[2], abs=1e-9)
    rep2 = R.query_report(4, x, y, [0, 1, 0, 1, 2], [0, 0, 1, 1, 0, 0, 1, 1])
    assert np.isnan(rep2.ap) and rep2.n_relevant == 0 and rep2.first_relevant_rank == 0
    with pytest.raises(ValueError, match="out of range"):
        R.query_report(5, x, y, [0] * 5, [0] * 8)
    with pytest.raises(ValueError, match="must be paired"):
        R.query_report(0, x, y)
    with pytest.raises(ValueError, match="both query_labels and gallery_labels"):
        R.query_report(0, x, y, [0] * 5)
    with pytest.raises(ValueError, match="paired=True"):
        R.query_report(0, x, y, [0] * 5, [0] * 8, paired=True)


# ----------------------------------------------------------------------------- worst_queries
def test_worst_queries():
    ap = np.array([0.5, np.nan, 0.1, 0.9, 0.1, 0.3])
    np.testing.assert_array_equal(R.worst_queries(ap, 3), [2, 4, 5])
    np.testing.assert_array_equal(R.worst_queries(ap, 10), [2, 4, 5, 0, 3])
    with pytest.raises(ValueError, match="n must be"):
        R.worst_queries(ap, 0)
    with pytest.raises(ValueError, match="ap must be"):
        R.worst_queries([], 1)


# ----------------------------------------------------------------------------- top1_confusion
@pytest.mark.parametrize("seed", range(4))
def test_top1_confusion_matches_sklearn_confusion_matrix(seed):
    rng = np.random.default_rng(seed)
    q, g = rng.standard_normal((50, 4)), rng.standard_normal((70, 4))
    ql, gl = rng.integers(0, 5, 50), rng.integers(0, 5, 70)
    s = M.similarity(q, g)
    retrieved = gl[np.array([brute_order(row)[0] for row in s])]
    expected = confusion_matrix(ql, retrieved, labels=np.arange(6))
    got = R.top1_confusion(q, g, ql, gl, n_classes=6, chunk_size=7)
    np.testing.assert_array_equal(got, expected)
    assert got.sum() == 50
    # the diagonal over all queries is class-level MRR@1
    first = M.first_relevant_ranks(q, g, ql, gl)
    assert np.trace(got) == (first == 1).sum()


def test_top1_confusion_tie_takes_lowest_index():
    q = np.array([[1.0, 0.0]])
    g = np.array([[0.0, 1.0], [2.0, 0.0], [1.0, 0.0]])  # g1 and g2 tie at cosine 1
    got = R.top1_confusion(q, g, [0], [2, 1, 0], n_classes=3)
    assert got[0].tolist() == [0, 1, 0]


def test_top1_confusion_validation(rng):
    x = rng.standard_normal((4, 2))
    with pytest.raises(ValueError, match="must lie in 0..2"):
        R.top1_confusion(x, x, [0, 1, 2, 3], [0, 1, 2, 2], n_classes=3)
    with pytest.raises(ValueError, match="integer class indices"):
        R.top1_confusion(x, x, ["a"] * 4, [0, 1, 2, 2], n_classes=3)
    with pytest.raises(ValueError, match="gallery_labels has 3 labels"):
        R.top1_confusion(x, x, [0, 1, 2, 2], [0, 1, 2], n_classes=3)


# ----------------------------------------------------------------------------- ScoredDirection
def _assert_reports_equal(a: R.QueryReport, b: R.QueryReport):
    da, db = a.as_dict(), b.as_dict()
    assert da.keys() == db.keys()
    for key in da:
        if isinstance(da[key], float) and np.isnan(da[key]):
            assert np.isnan(db[key]), key
        else:
            assert da[key] == db[key], key


@pytest.mark.parametrize("keep", [True, False])
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("seed", range(3))
def test_scored_direction_equals_the_separate_functions(seed, metric, keep):
    rng = np.random.default_rng(seed)
    n_q, n_g, n_classes = 150, 130, 5
    ql, gl = rng.integers(0, n_classes, n_q), rng.integers(0, n_classes - 1, n_g)  # class 4: no relevant item
    base = rng.standard_normal((n_classes, 6))
    q = base[ql] + rng.standard_normal((n_q, 6))
    g = base[gl] + rng.standard_normal((n_g, 6))
    g[7] = g[3]  # exact ties in every row
    sd = R.ScoredDirection(q, g, ql, gl, metric=metric, pr_points=11, chunk_size=70,
                           keep_matrix_bytes=10**9 if keep else 0)
    assert sd.keeps_matrix is keep
    np.testing.assert_array_equal(sd.average_precision(), M.average_precision(q, g, ql, gl, metric, chunk_size=70))
    with pytest.warns(UserWarning, match="no relevant item"):
        got_map = sd.mean_average_precision()
    with pytest.warns(UserWarning, match="no relevant item"):
        assert got_map == M.mean_average_precision(q, g, ql, gl, metric, chunk_size=70)
    first = M.first_relevant_ranks(q, g, ql, gl, metric, chunk_size=70)
    np.testing.assert_array_equal(sd.first_relevant_ranks(), first)
    assert sd.mrr_at_1() == M.mrr(first[first > 0], cutoff=1)
    for n_points in (11, 5):  # 11: from the ranking pass; 5: a second pass
        with pytest.warns(UserWarning):
            r, p = sd.precision_recall_curve(n_points)
        with pytest.warns(UserWarning):
            r0, p0 = M.precision_recall_curve(q, g, ql, gl, metric, n_points=n_points, chunk_size=70)
        np.testing.assert_array_equal(r, r0)
        np.testing.assert_array_equal(p, p0)
    np.testing.assert_array_equal(sd.top1_confusion(n_classes),
                                  R.top1_confusion(q, g, ql, gl, n_classes, metric, chunk_size=70))
    # over the classes present (what the app shows): top1_confusion of the label codes
    classes = np.unique(np.concatenate([ql, gl]))
    np.testing.assert_array_equal(sd.classes, classes)
    codes = {c: i for i, c in enumerate(classes)}
    np.testing.assert_array_equal(sd.top1_confusion(), R.top1_confusion(
        q, g, [codes[c] for c in ql], [codes[c] for c in gl], len(classes), metric, chunk_size=70))
    np.testing.assert_array_equal(sd.worst_queries(12), R.worst_queries(M.average_precision(q, g, ql, gl, metric), 12))
    for i in (0, 63, 64, 100, 149):
        _assert_reports_equal(sd.query_report(i, k=9), R.query_report(i, q, g, ql, gl, k=9, metric=metric))
    # scores: the matrix metrics.similarity gives
    np.testing.assert_array_equal(sd.scores(), M.similarity(q, g, metric))


def test_scored_direction_paired_and_sklearn_without_ties(rng):
    from sklearn.metrics import average_precision_score

    y = rng.integers(0, 4, 90)
    q = rng.standard_normal((90, 8)) + y[:, None]
    g = rng.standard_normal((90, 8)) + y[:, None]
    sd = R.ScoredDirection(q, g, y, y)
    assert sd.paired and sd.keeps_matrix
    s = M.similarity(q, g)
    assert all(len(np.unique(row)) == len(row) for row in s)  # tie-free
    expected = [average_precision_score(y == y[i], s[i]) for i in range(90)]
    np.testing.assert_allclose(sd.average_precision(), expected, rtol=1e-12)
    np.testing.assert_array_equal(sd.pair_ranks(), M.pair_ranks(q, g))
    rep = sd.query_report(5, k=4)
    assert rep.pair_rank == sd.pair_ranks()[5] and rep.ap == pytest.approx(expected[5])
    # instance level: no labels, only the true pair is relevant (AP = 1 / pair rank)
    inst = R.ScoredDirection(q, g)
    np.testing.assert_allclose(inst.average_precision(), 1.0 / M.pair_ranks(q, g))
    _assert_reports_equal(inst.query_report(3, 5), R.query_report(3, q, g, k=5))
    with pytest.raises(ValueError, match="confusion matrix needs class labels"):
        inst.top1_confusion(3)


def test_scored_direction_validation(rng):
    x = rng.standard_normal((6, 3))
    with pytest.raises(ValueError, match="both query_labels and gallery_labels"):
        R.ScoredDirection(x, x, [0] * 6)
    with pytest.raises(ValueError, match="must be paired"):
        R.ScoredDirection(x, x[:4])
    with pytest.raises(ValueError, match="paired=True"):
        R.ScoredDirection(x, x[:4], [0] * 6, [0] * 4, paired=True)
    sd = R.ScoredDirection(x, x[:4], [0] * 6, [0] * 4)
    with pytest.raises(ValueError, match="pair ranks need paired sets"):
        sd.pair_ranks()
    with pytest.raises(ValueError, match="out of range"):
        sd.query_report(6)
    with pytest.raises(ValueError, match="n_points"):
        sd.precision_recall_curve(1)
    with pytest.raises(ValueError, match="give n_points"):
        R.ScoredDirection(x, x, [0] * 6, [0] * 6, pr_points=None).precision_recall_curve()
