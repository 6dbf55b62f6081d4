"""The hamming similarity of :mod:`crossmodal_core.scoring` against a brute-force bit count."""

import numpy as np
import pytest

from crossmodal_core import metrics, scoring
from crossmodal_core.index import build_index


def _brute_hamming(q, g):
    bq, bg = q >= 0, g >= 0
    return np.array([[np.count_nonzero(a != b) for b in bg] for a in bq])


def test_hamming_similarity_is_minus_the_number_of_differing_bits():
    rng = np.random.default_rng(0)
    q = np.tanh(rng.normal(size=(70, 32)))  # relaxed codes: 70 rows span two BLAS blocks
    g = np.tanh(rng.normal(size=(50, 32)))
    q[0, :3] = 0.0  # a zero entry counts as the +1 bit
    s = scoring.similarity(q, g, "hamming")
    np.testing.assert_array_equal(s, -_brute_hamming(q, g))
    # ±1 codes give the same scores as the relaxed codes they are the signs of
    np.testing.assert_array_equal(scoring.similarity(np.where(q >= 0, 1, -1), g, "hamming"), s)
    # chunking does not change a row's scores
    blocks = np.concatenate([b for _, b in scoring.iter_score_chunks(
        scoring.check_matrix(q, "q"), scoring.check_matrix(g, "g"), "hamming", 64)])
    np.testing.assert_array_equal(blocks, s)


def test_hamming_map_matches_a_ranking_by_bit_count():
    rng = np.random.default_rng(1)
    yq, yg = rng.integers(0, 3, 20), rng.integers(0, 3, 30)
    q, g = rng.normal(size=(20, 8)) + yq[:, None], rng.normal(size=(30, 8)) + yg[:, None]
    d = _brute_hamming(q, g)
    aps = []
    for i in range(20):
        order = np.lexsort((np.arange(30), d[i]))  # distance ascending, ties by gallery index
        rel = yg[order] == yq[i]
        hits = np.cumsum(rel)
        aps.append(np.sum(hits[rel] / (np.flatnonzero(rel) + 1)) / rel.sum())
    got = metrics.mean_average_precision(q, g, yq, yg, metric="hamming")
    assert got == pytest.approx(np.mean(aps))


def test_the_ann_index_refuses_hamming():
    with pytest.raises(ValueError, match="metric must be one of \\('cosine', 'euclidean'\\)"):
        build_index(np.ones((10, 4)), metric="hamming")
