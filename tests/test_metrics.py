"""crossmodal_core.metrics against independent references: sklearn, brute force, hand-computed cases."""

import warnings

import numpy as np
import pytest
from sklearn.metrics import average_precision_score
from sklearn.metrics.pairwise import cosine_similarity, euclidean_distances

from crossmodal_core import metrics as M


# ----------------------------------------------------------------------------- references
def brute_force_ap(scores, query_labels, gallery_labels):
    """AP per query by the documented rule, written the obvious way: full stable sort, cumsum."""
    scores = np.asarray(scores, dtype=np.float32)
    out = np.full(scores.shape[0], np.nan)
    for i, row in enumerate(scores):
        order = np.argsort(-row, kind="stable")  # score desc, index asc on ties
        rel = np.asarray(gallery_labels)[order] == query_labels[i]
        if rel.sum() == 0:
            continue
        hits = np.cumsum(rel)
        ranks = np.arange(1, len(row) + 1)
        out[i] = (hits[rel] / ranks[rel]).sum() / rel.sum()
    return out


def brute_force_ap_with_order(row, rel, tie_key):
    """AP of one query when ties are ordered by ``tie_key`` (ascending) instead of index."""
    order = np.lexsort((tie_key, -row))
    r = rel[order]
    hits = np.cumsum(r)
    return (hits[r] / (np.flatnonzero(r) + 1)).sum() / r.sum()


def clustered(rng, n, d, n_classes, noise=1.0):
    labels = rng.integers(0, n_classes, n)
    centers = rng.standard_normal((n_classes, d))
    return centers[labels] + noise * rng.standard_normal((n, d)), labels, centers


# ----------------------------------------------------------------------------- similarity
def test_similarity_matches_sklearn(rng):
    q, g = rng.standard_normal((13, 7)), rng.standard_normal((21, 7))
    np.testing.assert_allclose(M.similarity(q, g, "cosine"), cosine_similarity(q, g), atol=1e-5)
    np.testing.assert_allclose(M.similarity(q, g, "euclidean"), -euclidean_distances(q, g), atol=1e-4)
    assert M.similarity(q, g).dtype == np.float32


def test_euclidean_round_off_is_small_and_offsets_do_not_matter(rng):
    x = rng.standard_normal((50, 3)) * 100
    s = M.similarity(x, x, "euclidean")
    assert np.isfinite(s).all() and (s <= 0).all()
    typical = np.abs(s).mean()
    assert np.abs(np.diag(s)).max() < 1e-3 * typical
    # a common offset far larger than the spread changes nothing beyond round-off
    shifted = M.similarity(x + 1e4, x + 1e4, "euclidean")
    np.testing.assert_allclose(shifted, s, atol=1e-3 * typical)


# ----------------------------------------------------------------------------- AP vs sklearn
@pytest.mark.parametrize("seed", range(25))
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_ap_equals_sklearn_without_ties(seed, metric):
    rng = np.random.default_rng(seed)
    nq, ng, d, c = rng.integers(5, 40), rng.integers(10, 90), rng.integers(2, 12), rng.integers(2, 6)
    q, g = rng.standard_normal((nq, d)), rng.standard_normal((ng, d))
    ql, gl = rng.integers(0, c, nq), rng.integers(0, c, ng)
    gl[: c] = np.arange(c)  # every class has a relevant gallery item
    ql = ql % c
    scores = M.similarity(q, g, metric)
    assert all(len(np.unique(r)) == ng for r in scores), "test data should have no ties"
    ap = M.average_precision(q, g, ql, gl, metric=metric, chunk_size=int(rng.integers(1, 20)))
    reference = np.array([average_precision_score(gl == ql[i], scores[i]) for i in range(nq)])
    np.testing.assert_allclose(ap, reference, rtol=0, atol=1e-12)
    assert M.mean_average_precision(q, g, ql, gl, metric=metric) == pytest.approx(reference.mean(), abs=1e-12)


@pytest.mark.parametrize("seed", range(40))
def test_ap_with_ties_matches_brute_force_and_brackets_sklearn(seed):
    rng = np.random.default_rng(seed)
    nq, ng, c = rng.integers(3, 25), rng.integers(5, 60), rng.integers(2, 5)
    scores = rng.integers(0, rng.integers(2, 6), size=(nq, ng)).astype(np.float32)  # heavy ties
    ql, gl = rng.integers(0, c, nq), rng.integers(0, c, ng)
    ap = M.average_precision_from_scores(scores, ql, gl)
    np.testing.assert_allclose(ap, brute_force_ap(scores, ql, gl), rtol=0, atol=1e-12, equal_nan=True)
    for i in range(nq):
        rel = gl == ql[i]
        if not rel.any():
            assert np.isnan(ap[i])
            continue
        optimistic = brute_force_ap_with_order(scores[i], rel, ~rel)  # relevant first within a tie
        pessimistic = brute_force_ap_with_order(scores[i], rel, rel)  # relevant last within a tie
        sk = average_precision_score(rel, scores[i])
        assert pessimistic - 1e-12 <= ap[i] <= optimistic + 1e-12
        # sklearn gives every relevant item of a tied group the precision at the group's end:
        # never below the pessimistic order, equal to it when no group holds 2+ relevant items
        # (with several it can even exceed the optimistic order, so it brackets nothing)
        assert sk >= pessimistic - 1e-12
        _, tie_group = np.unique(scores[i], return_inverse=True)
        if np.bincount(tie_group[rel]).max() <= 1:
            assert sk == pytest.approx(pessimistic, abs=1e-12)


def test_sklearn_can_exceed_every_strict_ranking_when_relevant_items_tie():
    # ranks 1..5 irrelevant, then two relevant items tied: any strict order gives (1/6 + 2/7) / 2
    scores = np.array([[9, 8, 7, 6, 5, 1, 1.0]])
    rel = np.array([0, 0, 0, 0, 0, 1, 1], dtype=bool)
    ours = M.average_precision_from_scores(scores, [1], rel.astype(int))[0]
    assert ours == pytest.approx((1 / 6 + 2 / 7) / 2)
    assert average_precision_score(rel, scores[0]) == pytest.approx(2 / 7)


@pytest.mark.parametrize("seed", range(10))
def test_ap_with_ties_from_duplicate_embeddings(seed):
    """Ties that reach the embedding path: identical gallery rows score identically."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((6, 3))
    g = base[rng.integers(0, 6, 40)]  # many identical gallery rows
    q = rng.standard_normal((15, 3))
    gl, ql = rng.integers(0, 3, 40), rng.integers(0, 3, 15)
    for metric in ("cosine", "euclidean"):
        scores = M.similarity(q, g, metric)
        assert max(len(np.unique(row)) for row in scores) <= 6  # the ties really are there
        ap = M.average_precision(q, g, ql, gl, metric=metric, chunk_size=4)
        np.testing.assert_allclose(ap, brute_force_ap(scores, ql, gl), atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(ap, brute_force_ap(scores, ql, gl), atol=1e-12, equal_nan=True)


def test_mixed_ties_on_large_rows_are_exact():
    """The counted fast path and its tie fallback agree with a full stable sort on wide rows."""
    rng = np.random.default_rng(7)
    scores = np.round(rng.standard_normal((30, 3000)), 2).astype(np.float32)  # many ties per row
    ql, gl = rng.integers(0, 4, 30), rng.integers(0, 4, 3000)
    np.testing.assert_allclose(
        M.average_precision_from_scores(scores, ql, gl), brute_force_ap(scores, ql, gl), atol=1e-12
    )


# ----------------------------------------------------------------------------- hand cases
def test_hand_computed_ap():
    # ranking: r, n, r, n, r -> (1/1 + 2/3 + 3/5) / 3
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5]])
    ap = M.average_precision_from_scores(scores, [1], [1, 0, 1, 0, 1])
    assert ap[0] == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)


def test_hand_computed_ap_with_tie_broken_by_index():
    # scores 1,1,0,0.5,1 -> order by (score desc, index asc): 0,1,4,3,2; relevant {0, 2} at ranks 1 and 5
    scores = np.array([[1, 1, 0, 0.5, 1]])
    assert M.average_precision_from_scores(scores, [1], [1, 0, 1, 0, 0])[0] == pytest.approx((1 + 2 / 5) / 2)
    # relevant item with the larger index loses the tie: order 0,1 -> rank 2
    assert M.average_precision_from_scores(np.array([[3.0, 3.0]]), [1], [0, 1])[0] == pytest.approx(1 / 2)
    assert M.average_precision_from_scores(np.array([[3.0, 3.0]]), [1], [1, 0])[0] == pytest.approx(1.0)
    # -0.0 and +0.0 are the same score: a tie, decided by index
    assert M.average_precision_from_scores(np.array([[0.0, -0.0, -1.0]]), [1], [0, 1, 0])[0] == pytest.approx(1 / 2)
    assert M.average_precision_from_scores(np.array([[-0.0, 0.0, -1.0]]), [1], [0, 1, 0])[0] == pytest.approx(1 / 2)
    assert M.average_precision_from_scores(np.array([[-0.0, 0.0, 1.0]]), [1], [1, 0, 0])[0] == pytest.approx(1 / 2)


def test_denominator_counts_all_relevant_items_in_gallery():
    # 2 relevant items; both found at ranks 1 and 4 -> (1 + 2/4) / 2, not a top-k truncation
    scores = np.array([[4.0, 3.0, 2.0, 1.0]])
    assert M.average_precision_from_scores(scores, ["a"], ["a", "b", "b", "a"])[0] == pytest.approx(0.75)


def test_hand_case_embeddings_and_per_class():
    q = np.array([[1.0, 0.0], [0.0, 1.0]])
    g = np.array([[1.0, 0.1], [0.1, 1.0], [0.9, 0.2], [-1.0, 0.0]])
    ql, gl = np.array([0, 1]), np.array([0, 1, 1, 0])
    # query 0 cosine order: g0 (0.995), g2 (0.976), g1 (0.0995), g3 (-1) -> relevant at 1, 4
    # query 1 order: g1, g2, g0, g3 -> relevant at 1, 2
    ap = M.average_precision(q, g, ql, gl)
    np.testing.assert_allclose(ap, [(1 + 2 / 4) / 2, 1.0])
    assert M.per_class_average_precision(ap, ql) == {0: pytest.approx(0.75), 1: pytest.approx(1.0)}
    np.testing.assert_array_equal(M.first_relevant_ranks(q, g, ql, gl), [1, 1])


def test_per_class_ap_ignores_nan_and_keeps_label_values():
    ap = np.array([0.5, np.nan, 1.0, 0.25, np.nan])
    out = M.per_class_average_precision(ap, np.array(["x", "y", "x", "z", "z"]))
    assert out["x"] == pytest.approx(0.75) and np.isnan(out["y"]) and out["z"] == pytest.approx(0.25)


# ----------------------------------------------------------------------------- R = 0 convention
def test_query_without_relevant_items_is_nan_and_excluded_with_warning():
    scores = np.array([[0.9, 0.1, 0.5], [0.2, 0.8, 0.1], [0.3, 0.2, 0.1]])
    ql, gl = np.array([0, 1, 7]), np.array([0, 1, 0])
    ap = M.average_precision_from_scores(scores, ql, gl)
    assert np.isnan(ap[2]) and ap[0] == 1.0 and ap[1] == 1.0
    q = np.eye(3)
    with pytest.warns(UserWarning, match="1 of 3 queries have no relevant item"):
        value = M.mean_average_precision(q, q, ql, gl)
    assert np.isfinite(value)
    assert M.relevant_counts(ql, gl).tolist() == [2, 1, 0]


def test_map_raises_when_no_query_has_relevant_items():
    with pytest.raises(ValueError, match="no query has a relevant item"):
        M.mean_average_precision(np.eye(2), np.eye(2), [0, 0], [1, 1])


def test_no_warning_when_every_query_has_relevant_items(rng):
    x, y = rng.standard_normal((10, 3)), rng.standard_normal((10, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        M.mean_average_precision(x, y, np.arange(10) % 2, np.arange(10) % 2)


# ----------------------------------------------------------------------------- chunking
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_results_do_not_depend_on_chunk_size(metric):
    rng = np.random.default_rng(3)
    n = 300
    x, labels, centers = clustered(rng, n, 37, 4)
    y = centers[labels] + rng.standard_normal((n, 37))
    ref_scores = M.similarity(x, y, metric)
    # rows at the same offset modulo 64 get the same bits, whatever else is in the product
    for lo, hi in ((0, 1), (64, 65), (128, 300), (0, 300)):
        np.testing.assert_array_equal(M.similarity(x[lo:hi], y, metric), ref_scores[lo:hi])
    ref_ap = M.average_precision(x, y, labels, labels, metric=metric, chunk_size=n)
    ref_first = M.first_relevant_ranks(x, y, labels, labels, metric=metric, chunk_size=n)
    ref_pairs = M.pair_ranks(x, y, metric=metric, chunk_size=n)
    ref_pr = M.precision_recall_curve(x, y, labels, labels, metric=metric, chunk_size=n)
    for chunk in (1, 7, 64, 100, 200, 1000, None):
        np.testing.assert_array_equal(M.average_precision(x, y, labels, labels, metric=metric, chunk_size=chunk), ref_ap)
        np.testing.assert_array_equal(M.first_relevant_ranks(x, y, labels, labels, metric=metric, chunk_size=chunk), ref_first)
        np.testing.assert_array_equal(M.pair_ranks(x, y, metric=metric, chunk_size=chunk), ref_pairs)
        pr = M.precision_recall_curve(x, y, labels, labels, metric=metric, chunk_size=chunk)
        np.testing.assert_allclose(pr[1], ref_pr[1], rtol=0, atol=1e-12)


def test_default_chunk_size_respects_memory_budget():
    rows = M.default_chunk_size(22_483)
    assert 100 <= rows <= 2_000
    assert rows * 22_483 * 4 < M.DEFAULT_MEMORY_BUDGET  # the score block alone is well under budget
    assert M.default_chunk_size(10, memory_budget=1) == 1


def test_chunking_bounds_memory():
    """A chunked MAP must not hold anything near the full score matrix (64 MB here)."""
    import tracemalloc

    rng = np.random.default_rng(0)
    n = 4000
    x, y = rng.standard_normal((n, 8)).astype(np.float32), rng.standard_normal((n, 8)).astype(np.float32)
    labels = rng.integers(0, 10, n)
    full_matrix = n * n * 4
    tracemalloc.start()
    try:
        M.average_precision(x, y, labels, labels, chunk_size=64)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < full_matrix / 4, f"peak {peak / 2**20:.1f} MB"


# ----------------------------------------------------------------------------- both directions
def test_map_both_directions_is_two_single_directions(rng):
    x, labels, centers = clustered(rng, 60, 4, 3)
    y = centers[labels] + rng.standard_normal((60, 4))
    fwd, bwd = M.map_both_directions(x, y, labels)
    assert fwd == M.mean_average_precision(x, y, labels, labels)
    assert bwd == M.mean_average_precision(y, x, labels, labels)
    sk_fwd = np.mean([average_precision_score(labels == labels[i], r) for i, r in enumerate(cosine_similarity(x, y))])
    sk_bwd = np.mean([average_precision_score(labels == labels[i], r) for i, r in enumerate(cosine_similarity(y, x))])
    assert (fwd, bwd) == (pytest.approx(sk_fwd, abs=1e-6), pytest.approx(sk_bwd, abs=1e-6))


def test_map_both_directions_unpaired_needs_labels_y(rng):
    x, y = rng.standard_normal((10, 3)), rng.standard_normal((12, 3))
    with pytest.raises(ValueError, match="labels_y"):
        M.map_both_directions(x, y, np.arange(10) % 2)
    fwd, bwd = M.map_both_directions(x, y, np.arange(10) % 2, np.arange(12) % 2)
    assert 0 < fwd <= 1 and 0 < bwd <= 1


def test_perfect_embedding_gives_map_one(rng):
    labels = np.repeat(np.arange(4), 5)
    centers = rng.standard_normal((4, 8)) * 10
    x = centers[labels] + 0.01 * rng.standard_normal((20, 8))
    y = centers[labels] + 0.01 * rng.standard_normal((20, 8))
    assert M.map_both_directions(x, y, labels) == (pytest.approx(1.0), pytest.approx(1.0))


# ----------------------------------------------------------------------------- paired retrieval
@pytest.mark.parametrize("seed", range(8))
def test_pair_ranks_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = 30
    q = rng.integers(-1, 2, size=(n, 2)).astype(float)  # ties on purpose
    g = rng.integers(-1, 2, size=(n, 2)).astype(float)
    s = M.similarity(q, g, "euclidean")
    expected = []
    for i in range(n):
        order = np.argsort(-s[i], kind="stable")
        expected.append(int(np.flatnonzero(order == i)[0]) + 1)
    np.testing.assert_array_equal(M.pair_ranks(q, g, metric="euclidean", chunk_size=7), expected)


def test_rank_summaries_hand_computed():
    ranks = np.array([1, 2, 5, 1, 10])
    assert M.recall_at_k(ranks, 1) == pytest.approx(0.4)
    assert M.recall_at_k(ranks, 5) == pytest.approx(0.8)
    assert M.precision_at_k(ranks, 5) == pytest.approx(0.8 / 5)
    assert M.mrr(ranks) == pytest.approx((1 + 0.5 + 0.2 + 1 + 0.1) / 5)
    assert M.mrr(ranks, cutoff=1) == pytest.approx(0.4)
    assert M.mrr(ranks, cutoff=2) == pytest.approx((1 + 0.5 + 1) / 5)
    assert M.median_rank(ranks) == 2.0
    assert M.median_rank([1, 2, 3, 4]) == 2.5


def test_pair_retrieval_on_identical_views_is_perfect(rng):
    x = rng.standard_normal((25, 6))
    ranks = M.pair_ranks(x, x)
    assert ranks.tolist() == [1] * 25
    assert M.mrr(ranks, cutoff=1) == 1.0 and M.median_rank(ranks) == 1.0


@pytest.mark.parametrize("seed", range(5))
def test_first_relevant_ranks_brute_force(seed):
    rng = np.random.default_rng(seed)
    q, g = rng.standard_normal((20, 4)), rng.standard_normal((35, 4))
    ql, gl = rng.integers(0, 5, 20), rng.integers(0, 4, 35)
    s = M.similarity(q, g)
    expected = []
    for i in range(20):
        rel = gl[np.argsort(-s[i], kind="stable")] == ql[i]
        expected.append(int(np.flatnonzero(rel)[0]) + 1 if rel.any() else 0)
    got = M.first_relevant_ranks(q, g, ql, gl, chunk_size=6)
    np.testing.assert_array_equal(got, expected)
    # class-level MRR@1 equals precision at 1 over queries that have a relevant item
    top1_correct = np.array([gl[np.argmax(s[i])] == ql[i] for i in range(20) if (gl == ql[i]).any()])
    assert M.mrr(got[got > 0], cutoff=1) == pytest.approx(top1_correct.mean())


# ----------------------------------------------------------------------------- PR curve
def brute_force_pr(scores, ql, gl, n_points):
    levels = np.linspace(0, 1, n_points)
    curves = []
    for i, row in enumerate(scores):
        rel = gl[np.argsort(-row, kind="stable")] == ql[i]
        if not rel.any():
            continue
        hits = np.cumsum(rel)
        precision = hits / np.arange(1, len(row) + 1)
        recall = hits / rel.sum()
        curves.append([precision[recall >= r - 1e-12].max() for r in levels])
    return levels, np.mean(curves, axis=0)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n_points", [2, 11, 7])
def test_precision_recall_curve_brute_force(seed, n_points):
    rng = np.random.default_rng(seed)
    q, g = rng.standard_normal((18, 3)), rng.standard_normal((41, 3))
    ql, gl = rng.integers(0, 3, 18), rng.integers(0, 3, 41)
    recall, precision = M.precision_recall_curve(q, g, ql, gl, n_points=n_points, chunk_size=5)
    ref_recall, ref_precision = brute_force_pr(M.similarity(q, g), ql, gl, n_points)
    np.testing.assert_allclose(recall, ref_recall)
    np.testing.assert_allclose(precision, ref_precision, atol=1e-12)
    assert np.all(np.diff(precision) <= 1e-12)  # interpolated precision never rises with recall


def test_precision_recall_curve_hand_case():
    # ranking r, n, r, n: precision at hits 1, 2/3; 3-point levels 0, .5, 1 -> 1, 1, 2/3
    q = np.array([[1.0, 0.0]])
    g = np.array([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0]])
    recall, precision = M.precision_recall_curve(q, g, [1], [1, 0, 1, 0], n_points=3)
    np.testing.assert_allclose(recall, [0, 0.5, 1])
    np.testing.assert_allclose(precision, [1, 1, 2 / 3])


# ----------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "queries, gallery, ql, gl, match",
    [
        (np.ones((3, 2)), np.ones((4, 3)), [0] * 3, [0] * 4, "features"),
        (np.ones((0, 2)), np.ones((4, 2)), [], [0] * 4, "queries is empty"),
        (np.ones((3, 2)), np.ones((0, 2)), [0] * 3, [], "gallery is empty"),
        (np.array([[1.0, np.nan]] * 3), np.ones((4, 2)), [0] * 3, [0] * 4, "queries contains NaN"),
        (np.ones((3, 2)), np.array([[np.inf, 1.0]] * 4), [0] * 3, [0] * 4, "gallery contains NaN or inf"),
        (np.ones((3, 2)), np.ones((4, 2)), [0] * 2, [0] * 4, "query_labels has 2 labels"),
        (np.ones((3, 2)), np.ones((4, 2)), [0] * 3, [0] * 5, "gallery_labels has 5 labels"),
        (np.ones(3), np.ones((4, 2)), [0] * 3, [0] * 4, "queries must be a 2-D"),
        (np.ones((3, 2)), np.ones((4, 2)), np.eye(3), [0] * 4, "one-hot"),
        (np.array([[0.0, 0.0], [1, 1], [1, 0]]), np.ones((4, 2)), [0] * 3, [0] * 4, "queries row 0 is all zeros"),
    ],
)
def test_validation_errors_name_the_argument(queries, gallery, ql, gl, match):
    with pytest.raises(ValueError, match=match):
        M.average_precision(queries, gallery, ql, gl)


def test_other_validation_errors(rng):
    x = rng.standard_normal((4, 2))
    with pytest.raises(ValueError, match="metric must be one of"):
        M.similarity(x, x, metric="dot")
    with pytest.raises(ValueError, match="chunk_size"):
        M.average_precision(x, x, [0, 1, 0, 1], [0, 1, 0, 1], chunk_size=0)
    with pytest.raises(ValueError, match="paired rows"):
        M.pair_ranks(x, x[:3])
    with pytest.raises(ValueError, match="ranks must be >= 1"):
        M.mrr([0, 1, 2])
    with pytest.raises(ValueError, match="ranks is empty"):
        M.recall_at_k([], 1)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        M.recall_at_k([1, 2], 0)
    with pytest.raises(ValueError, match="cutoff"):
        M.mrr([1, 2], cutoff=0)
    with pytest.raises(ValueError, match="n_points"):
        M.precision_recall_curve(x, x, [0, 1, 0, 1], [0, 1, 0, 1], n_points=1)
    with pytest.raises(ValueError, match="ap must be"):
        M.per_class_average_precision(np.array([]), [])
    with pytest.raises(ValueError, match="query_labels has 2 labels but ap has 3"):
        M.per_class_average_precision(np.ones(3), [0, 1])
    with pytest.raises(ValueError, match="scores contains NaN"):
        M.average_precision_from_scores(np.array([[np.nan, 1.0]]), [0], [0, 1])


# ----------------------------------------------------------------------------- one spelling, one scoring module
def test_rank_summary_is_the_one_paired_summary():
    ranks = np.array([1, 2, 2, 1, 7, 12])
    got = M.rank_summary(ranks)
    assert list(got) == [*M.PAIRED_METRICS, "n"] and M.PAIRED_METRICS == ("R@1", "R@5", "R@10", "MRR", "median_rank")
    assert got["R@1"] == pytest.approx(2 / 6) and got["R@5"] == pytest.approx(4 / 6) and got["R@10"] == pytest.approx(5 / 6)
    assert got["MRR"] == pytest.approx((1 + 0.5 + 0.5 + 1 + 1 / 7 + 1 / 12) / 6)
    assert got["median_rank"] == 2.0 and got["n"] == 6
    with pytest.raises(ValueError, match=">= 1"):
        M.rank_summary([0, 1])


def test_interpolated_precision_by_hand():
    # relevant items at ranks 1, 3, 4 of some ranking: precision 1, 2/3, 3/4 at recall 1/3, 2/3, 1
    p = M.interpolated_precision(np.array([[1, 3, 4]]), 5)  # levels 0, .25, .5, .75, 1
    np.testing.assert_allclose(p, [[1.0, 1.0, 0.75, 0.75, 0.75]])
    recall, mean = M.curve_from_sums(p.sum(axis=0), 1, 1)
    np.testing.assert_allclose(recall, [0, 0.25, 0.5, 0.75, 1.0])
    with pytest.raises(ValueError, match="undefined"):
        M.curve_from_sums(np.zeros(3), 0, 4)


def test_scoring_helpers_are_public_and_shared():
    from crossmodal_core import retrieval, scoring

    assert M.similarity is scoring.similarity and M.default_chunk_size is scoring.default_chunk_size
    assert set(scoring.__all__) >= {"similarity", "iter_score_chunks", "iter_relevant_ranks", "check_pair",
                                    "encode_labels", "BLAS_ROWS"}
    source = open(retrieval.__file__, encoding="utf-8").read()
    assert "from crossmodal_core.metrics import (" not in source and "import _" not in source


# ----------------------------------------------------------------------------- at scale
def test_many_mixed_ties_on_a_wide_row_are_exact_and_memory_stays_per_row():
    """Thousands of mixed tie groups in one 200k-wide row: exact against a full stable sort,
    and the tie correction's working memory is a few rows, not one gallery row per tie group
    (the old code copied 13,724 rows x 10^6 floats = 51 GiB at 10^6 items)."""
    import tracemalloc

    rng = np.random.default_rng(11)
    n = 200_000
    scores = np.round(rng.standard_normal((2, n)), 3).astype(np.float32)  # ~6,000 distinct values: every group mixed
    ql, gl = np.array([0, 1]), rng.integers(0, 3, n)
    tracemalloc.start()
    ap = M.average_precision_from_scores(scores, ql, gl)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    np.testing.assert_allclose(ap, brute_force_ap(scores, ql, gl), atol=1e-12)
    assert peak < 60 * n * 4, f"peak {peak / 2**20:.0f} MiB for a {n}-wide row"  # ~60 rows of scores, not thousands


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_parallel_ap_is_bitwise_the_serial_ap(metric):
    rng = np.random.default_rng(3)
    x, labels, _ = clustered(rng, 700, 4, 5)
    y = np.round(x + 0.5 * rng.standard_normal(x.shape), 1)  # ties, so the tie rule is exercised
    serial = M.average_precision(np.round(x, 1), y, labels, labels, metric=metric, chunk_size=100)
    parallel = M.average_precision(np.round(x, 1), y, labels, labels, metric=metric, chunk_size=100, n_jobs=2)
    np.testing.assert_array_equal(parallel, serial)
    f, b = M.map_both_directions(np.round(x, 1), y, labels, metric=metric, n_jobs=2)
    assert f == pytest.approx(float(np.nanmean(serial)), abs=0)


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2"])
def test_n_jobs_is_validated(bad):
    rng = np.random.default_rng(0)
    x, labels, _ = clustered(rng, 10, 3, 2)
    with pytest.raises(ValueError, match="n_jobs"):
        M.average_precision(x, x, labels, labels, n_jobs=bad)


def test_estimate_mean_by_hand_and_finite_population():
    from scipy.stats import norm

    v = np.array([0.2, 0.4, 0.9, np.nan])
    e = M.estimate_mean(v, n_population=11)  # one nan: 3 sampled of 10 with a defined value
    sd = np.std([0.2, 0.4, 0.9], ddof=1)
    se = sd / np.sqrt(3) * np.sqrt((10 - 3) / (10 - 1))
    assert (e.value, e.n_sampled, e.n_population) == (pytest.approx(0.5), 3, 10)
    assert e.stderr == pytest.approx(se)
    assert e.high - e.value == pytest.approx(norm.ppf(0.975) * se)
    full = M.estimate_mean(np.array([0.1, 0.3]), n_population=2)
    assert full.stderr == 0 and full.low == full.high == pytest.approx(0.2)
    with pytest.raises(ValueError, match="smaller than the sample"):
        M.estimate_mean(np.ones(5), n_population=3)


def test_sampled_map_is_the_exact_ap_of_its_rows_and_its_interval_covers_the_map():
    rng = np.random.default_rng(5)
    x, labels, _ = clustered(rng, 2000, 6, 8, noise=1.5)
    y = x + rng.standard_normal(x.shape)
    full = M.average_precision(x, y, labels, labels)
    est, rows, ap = M.sampled_average_precision(x, y, labels, labels, n_samples=150, seed=1)
    np.testing.assert_array_equal(ap, full[rows])
    assert len(rows) == 150 and est.n_population == 2000
    # coverage of the documented interval over many seeds (sampling from the exact APs)
    true_map = full.mean()
    covered = sum(
        M.estimate_mean(full[M.sample_queries(2000, 150, seed=s)], 2000).low <= true_map
        <= M.estimate_mean(full[M.sample_queries(2000, 150, seed=s)], 2000).high
        for s in range(200)
    )
    assert 180 <= covered <= 199, covered  # 95 % nominal; binomial(200, .95) is within this range w.p. > 0.99
    exact, _, _ = M.sampled_average_precision(x, y, labels, labels, n_samples=10**6)
    assert exact.value == pytest.approx(true_map) and exact.stderr == 0


def test_sampled_pair_ranks_equal_the_full_ranks_of_those_rows():
    rng = np.random.default_rng(2)
    x = rng.integers(1, 4, size=(400, 2)).astype(float)  # ties on purpose
    y = x + rng.integers(0, 2, size=x.shape)
    rows, ranks = M.sampled_pair_ranks(x, y, n_samples=50, seed=4)
    np.testing.assert_array_equal(ranks, M.pair_ranks(x, y)[rows])
    with pytest.raises(ValueError, match="pair_index"):
        M.pair_ranks(x[:3], y, pair_index=np.array([0, 1]))


def test_ap_at_k_by_hand_and_equal_to_ap_over_the_whole_gallery():
    gl = np.array([0, 1, 0, 0, 1])  # query label 0: R = 3
    nb = np.array([[1, 0, 4, 2, 3]])
    # top-3: irrelevant, relevant (P@2 = 1/2), irrelevant -> AP@3 = (1/2) / min(3, 3)
    assert M.average_precision_at_k(nb, [0], gl, k=3)[0] == pytest.approx(0.5 / 3)
    # top-2 -> (1/2) / min(3, 2)
    assert M.average_precision_at_k(nb, [0], gl, k=2)[0] == pytest.approx(0.25)
    assert np.isnan(M.average_precision_at_k(nb, [7], gl)[0])  # no relevant item
    rng = np.random.default_rng(9)
    scores = rng.standard_normal((20, 60)).astype(np.float32)
    ql, g2 = rng.integers(0, 3, 20), rng.integers(0, 3, 60)
    order = np.argsort(-scores, axis=1, kind="stable")
    np.testing.assert_allclose(M.average_precision_at_k(order, ql, g2), brute_force_ap(scores, ql, g2), atol=1e-12)
    with pytest.raises(ValueError, match="outside the gallery"):
        M.average_precision_at_k(np.array([[60]]), [0], g2)
