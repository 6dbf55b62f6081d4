"""Shared numerics of the linear models: syrk Gram and streamed centred statistics vs float64 references."""

import numpy as np
import pytest

from crossmodal_core.models.linear._linalg import centred_statistics, gram


def offset_data(n, d, seed, offset):
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((d, d)) / np.sqrt(d)
    return (rng.standard_normal((n, d)) @ mixing + offset * rng.uniform(0.5, 1.5, d)).astype(np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gram_equals_float64_product(dtype):
    a = offset_data(3001, 70, 0, 3.0).astype(dtype)
    ref = a.astype(np.float64).T @ a.astype(np.float64)
    g = gram(a)
    assert g.dtype == dtype and g.shape == (70, 70)
    np.testing.assert_array_equal(g, g.T)  # the mirrored triangle is an exact copy
    tol = 1e-5 if dtype == np.float32 else 1e-12  # float32: a few eps over ~3,000-term sums
    np.testing.assert_allclose(g, ref, rtol=0, atol=tol * np.abs(ref).max())


def test_gram_accepts_non_contiguous_and_integer_input_and_accumulates():
    a = offset_data(500, 12, 1, 1.0).astype(np.float64)
    strided = np.asfortranarray(a)[::2]
    np.testing.assert_allclose(gram(strided), strided.T @ strided, rtol=1e-12)
    ints = np.arange(40).reshape(10, 4)
    np.testing.assert_array_equal(gram(ints), (ints.T @ ints).astype(np.float64))
    out = np.eye(12)
    assert gram(a, out=out) is out
    np.testing.assert_allclose(out, np.eye(12) + a.T @ a, rtol=1e-12)


@pytest.mark.parametrize("chunk_rows", [1, 97, 1000, 5000])
def test_centred_statistics_match_float64_reference(chunk_rows):
    # means far from zero (offset 100 x the spread) would lose most float32 digits in a raw
    # Gram minus n·mean·meanᵀ; the first-block shift keeps them
    x = offset_data(1000, 9, 2, 100.0)
    y = offset_data(1000, 14, 3, -50.0)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    xc, yc = x64 - x64.mean(0), y64 - y64.mean(0)
    means, grams, cross = centred_statistics(x, y, np.float32, chunk_rows=chunk_rows)
    np.testing.assert_allclose(means[0], x64.mean(0), rtol=1e-6)
    np.testing.assert_allclose(means[1], y64.mean(0), rtol=1e-6)
    for g, ref in ((grams[0], xc.T @ xc), (grams[1], yc.T @ yc), (cross, xc.T @ yc)):
        assert g.dtype == np.float64
        np.testing.assert_allclose(g, ref, rtol=0, atol=2e-5 * np.abs(ref).max())
    np.testing.assert_array_equal(grams[1], grams[1].T)


def test_centred_statistics_single_view_float64_is_exact():
    x = offset_data(777, 6, 4, 5.0).astype(np.float64)
    xc = x - x.mean(0)
    means, (g,), cross = centred_statistics(x, None, np.float64, chunk_rows=100)
    assert cross is None
    np.testing.assert_allclose(means[0], x.mean(0), rtol=1e-13)
    np.testing.assert_allclose(g, xc.T @ xc, rtol=0, atol=1e-11 * np.abs(xc.T @ xc).max())


@pytest.mark.parametrize("flush_rows", [1, 20, 10**9])
def test_cluster_statistics_per_class_syrk_grams_match_direct_sums(monkeypatch, flush_rows):
    from crossmodal_core.models.linear import cluster

    monkeypatch.setattr(cluster, "_FLUSH_ROWS", flush_rows)
    rng = np.random.default_rng(5)
    x, y = offset_data(90, 5, 6, 4.0), offset_data(61, 8, 7, -3.0)  # unpaired, different lengths
    lx, ly = rng.integers(0, 4, 90), rng.integers(1, 5, 61)
    stats = cluster.ClusterStatistics(np.float32)
    stats.update([x, y], [lx, ly], paired=False, chunk_size=7)
    # classes in order of first appearance per view and chunk (sorted within a chunk)
    expected_order = []
    for lab in (lx, ly):
        for start in range(0, len(lab), 7):
            expected_order += [c for c in np.unique(lab[start:start + 7]) if c not in expected_order]
    assert stats.classes == expected_order
    for v, (view, lab) in enumerate(((x, lx), (y, ly))):
        shifted = view.astype(np.float64) - stats.shift[v].astype(np.float32)
        for c, label in enumerate(stats.classes):
            rows = shifted[lab == label]
            assert stats.counts[v][c] == len(rows)
            np.testing.assert_allclose(stats.sums[v][c], rows.sum(0), atol=1e-4)
            ref = rows.T @ rows
            np.testing.assert_allclose(stats.grams[v][c], ref, rtol=0, atol=1e-5 * max(np.abs(ref).max(), 1.0))
    assert stats.pair_cross is None and not stats.paired
