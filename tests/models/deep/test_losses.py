"""Losses against hand-computed values and independent numpy / scipy references."""

import numpy as np
import pytest
import torch
from scipy import linalg

from crossmodal_core.models.deep.losses import (
    cluster_covariances,
    contrastive_objective,
    dcca_loss,
    info_nce_loss,
    mixed_cluster_covariances,
    mixed_cluster_dcca_loss,
    pairwise_covariances,
    supervised_contrastive_loss,
    triplet_loss_from_distances,
    triplet_margin_loss,
)
from crossmodal_core.models.deep.distances import pairwise_distance

A = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
P = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
N = torch.tensor([[0.0, 2.0], [0.5, 0.5]])


def test_triplet_squared_euclidean_hand_values():
    # d(a,p)=1; d(a,n)=4 and 0.5 -> max(1-4+.5, 0)=0, max(1-0.5+.5, 0)=1
    losses = triplet_margin_loss(A, P, N, margin=0.5, reduction="none")
    np.testing.assert_allclose(losses.numpy(), [0.0, 1.0])
    assert triplet_margin_loss(A, P, N, margin=0.5, reduction="mean").item() == pytest.approx(0.5)
    assert triplet_margin_loss(A, P, N, margin=0.5, reduction="mean_nonzero").item() == pytest.approx(1.0)
    assert triplet_margin_loss(A, P, N, margin=0.5, reduction="sum").item() == pytest.approx(1.0)


def test_triplet_euclidean_and_cosine_hand_values():
    losses = triplet_margin_loss(A + 1e-9, P, N, margin=0.5, distance="euclidean", reduction="none")
    # d(a,p)=1; d(a,n)=2 and sqrt(.5)
    np.testing.assert_allclose(losses.numpy(), [0.0, 1.5 - np.sqrt(0.5)], atol=1e-6)
    a = torch.tensor([[1.0, 0.0]])
    p = torch.tensor([[1.0, 1.0]])  # cos = 1/sqrt2
    n = torch.tensor([[0.0, 3.0]])  # cos = 0
    loss = triplet_margin_loss(a, p, n, margin=0.9, distance="cosine", reduction="none")
    np.testing.assert_allclose(loss.numpy(), [(1 - 1 / np.sqrt(2)) - 1 + 0.9], atol=1e-6)


def test_triplet_from_distance_matrix_matches_embedding_form():
    g = torch.Generator().manual_seed(0)
    a, v = torch.randn(6, 3, generator=g), torch.randn(5, 3, generator=g)
    ai = torch.tensor([0, 1, 5, 3])
    pi = torch.tensor([2, 2, 0, 4])
    ni = torch.tensor([1, 4, 3, 0])
    dist = pairwise_distance(a, v)
    got = triplet_loss_from_distances(dist, ai, pi, ni, margin=0.4, reduction="none")
    want = triplet_margin_loss(a[ai], v[pi], v[ni], margin=0.4, reduction="none")
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-5)


def test_pairwise_distance_matches_scipy():
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(7, 4)), rng.normal(size=(5, 4))
    ta, tb = torch.tensor(a), torch.tensor(b)
    np.testing.assert_allclose(pairwise_distance(ta, tb, "squared_euclidean").numpy(), cdist(a, b, "sqeuclidean"), atol=1e-10)
    np.testing.assert_allclose(pairwise_distance(ta, tb, "euclidean").numpy(), cdist(a, b), atol=1e-6)
    np.testing.assert_allclose(pairwise_distance(ta, tb, "cosine").numpy(), cdist(a, b, "cosine"), atol=1e-10)
    with pytest.raises(ValueError, match="distance must be"):
        pairwise_distance(ta, tb, "manhattan")


def _correlated(rng, n=400, o1=6, o2=5):
    z = rng.normal(size=(n, 3))
    h1 = z @ rng.normal(size=(3, o1)) + 0.7 * rng.normal(size=(n, o1))
    h2 = z @ rng.normal(size=(3, o2)) + 0.7 * rng.normal(size=(n, o2))
    return h1, h2


def _scipy_canonical_correlations(h1, h2):
    """Canonical correlations as the singular values of Q1ᵀQ2 (QR of the centred data)."""
    q1, _ = linalg.qr(h1 - h1.mean(0), mode="economic")
    q2, _ = linalg.qr(h2 - h2.mean(0), mode="economic")
    return linalg.svdvals(q1.T @ q2)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_dcca_loss_equals_minus_sum_of_top_k_scipy_correlations(rng, k):
    h1, h2 = _correlated(rng)
    loss = dcca_loss(torch.tensor(h1, dtype=torch.float32), torch.tensor(h2, dtype=torch.float32),
                     n_components=k, reg=0.0, eps=0.0)
    want = _scipy_canonical_correlations(h1, h2)[:k].sum()
    assert loss.item() == pytest.approx(-want, abs=1e-4)


def test_dcca_loss_with_ridge_matches_eigh_whitening(rng):
    """The Cholesky route equals the textbook S11^-1/2 S12 S22^-1/2 (eigh) with the same ridge."""
    h1, h2 = _correlated(rng, n=200)
    r = 0.05
    c1, c2 = h1 - h1.mean(0), h2 - h2.mean(0)
    n = h1.shape[0]
    s11 = c1.T @ c1 / (n - 1) + r * np.eye(h1.shape[1])
    s22 = c2.T @ c2 / (n - 1) + r * np.eye(h2.shape[1])
    s12 = c1.T @ c2 / (n - 1)

    def inv_sqrt(s):
        w, v = np.linalg.eigh(s)
        return v @ np.diag(w ** -0.5) @ v.T

    want = np.linalg.svd(inv_sqrt(s11) @ s12 @ inv_sqrt(s22), compute_uv=False)
    loss = dcca_loss(torch.tensor(h1), torch.tensor(h2), reg=r, eps=0.0)
    assert loss.item() == pytest.approx(-want.sum(), abs=1e-8)


def test_dcca_loss_gradient_finite_for_identical_views(rng):
    """All correlations equal 1 (repeated singular values): the gradient must stay finite."""
    h = torch.tensor(rng.normal(size=(100, 4)), requires_grad=True)
    loss = dcca_loss(h, h * 2.0 + 1.0, reg=1e-4)
    loss.backward()
    assert torch.isfinite(h.grad).all()
    assert loss.item() == pytest.approx(-4.0, abs=1e-2)


def test_cluster_covariances_equal_covariances_of_materialised_pairs(rng):
    h1, h2 = rng.normal(size=(30, 3)), rng.normal(size=(30, 4))
    y = rng.integers(0, 4, size=30)
    pairs = [(i, j) for i in range(30) for j in range(30) if y[i] == y[j]]
    x = h1[[i for i, _ in pairs]]
    z = h2[[j for _, j in pairs]]
    xc, zc = x - x.mean(0), z - z.mean(0)
    m = len(pairs)
    s11, s22, s12 = cluster_covariances(torch.tensor(h1), torch.tensor(h2), torch.tensor(y))
    np.testing.assert_allclose(s11.numpy(), xc.T @ xc / m, atol=1e-10)
    np.testing.assert_allclose(s22.numpy(), zc.T @ zc / m, atol=1e-10)
    np.testing.assert_allclose(s12.numpy(), xc.T @ zc / m, atol=1e-10)


# the cluster-mixed loss of S-DCCA and the sequence models (moved here with the function)
@pytest.fixture
def mixed_batch():
    rng = np.random.default_rng(0)
    y = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 1])
    h1 = rng.normal(size=(10, 3)) + y[:, None]
    h2 = rng.normal(size=(10, 2)) - y[:, None]
    return h1, h2, y


def test_mixed_covariances_interpolate_pair_and_cluster(mixed_batch):
    h1, h2, y = (torch.tensor(a) for a in mixed_batch)
    s11, s22, s12 = pairwise_covariances(h1, h2)
    c12 = cluster_covariances(h1, h2, y)[2]
    m11, m22, m12 = mixed_cluster_covariances(h1, h2, y, beta=0.2)
    torch.testing.assert_close(m11, s11)
    torch.testing.assert_close(m22, s22)
    torch.testing.assert_close(m12, 0.2 * s12 + 0.8 * c12)
    # the cluster block by brute force over every same-class pair
    a, b, lab = mixed_batch
    pairs = [(i, j) for i in range(10) for j in range(10) if lab[i] == lab[j]]
    p, q = np.array([a[i] for i, _ in pairs]), np.array([b[j] for _, j in pairs])
    want = (p - p.mean(0)).T @ (q - q.mean(0)) / len(pairs)
    np.testing.assert_allclose(c12.numpy(), want, atol=1e-12)
    with pytest.raises(ValueError, match="beta"):
        mixed_cluster_covariances(h1, h2, y, beta=1.5)


def test_mixed_loss_is_minus_the_sum_of_canonical_correlations(mixed_batch):
    h1, h2, y = mixed_batch
    t = [torch.tensor(a) for a in mixed_batch]
    s11, s22, s12 = (m.numpy() for m in mixed_cluster_covariances(*t, beta=0.2))
    r = 1e-4
    w1 = linalg.inv(linalg.sqrtm(s11 + r * np.eye(3)))
    w2 = linalg.inv(linalg.sqrtm(s22 + r * np.eye(2)))
    sv = linalg.svdvals(w1 @ s12 @ w2)
    assert float(mixed_cluster_dcca_loss(*t, beta=0.2, reg=r, eps=0.0)) == pytest.approx(-sv.sum(), rel=1e-9)
    assert float(mixed_cluster_dcca_loss(*t, beta=0.2, n_components=1, reg=r, eps=0.0)) == pytest.approx(-sv[0])


def _inv_sqrt(c):
    w, v = np.linalg.eigh(c)
    return v @ np.diag(w ** -0.5) @ v.T


def _mixed_cca_reference(h1, h2, y, beta, reg):
    """The formula written out with explicit same-class pairs (no class sums)."""
    n = len(h1)
    c1, c2 = h1 - h1.mean(0), h2 - h2.mean(0)
    s11 = c1.T @ c1 / (n - 1) + reg * np.eye(h1.shape[1])
    s22 = c2.T @ c2 / (n - 1) + reg * np.eye(h2.shape[1])
    s12 = c1.T @ c2 / (n - 1)
    pairs = [(i, j) for i in range(n) for j in range(n) if y[i] == y[j]]
    p1 = np.array([h1[i] for i, _ in pairs])
    p2 = np.array([h2[j] for _, j in pairs])
    p1, p2 = p1 - p1.mean(0), p2 - p2.mean(0)
    cluster = p1.T @ p2 / len(pairs)
    t = _inv_sqrt(s11) @ (beta * s12 + (1 - beta) * cluster) @ _inv_sqrt(s22)
    return -np.linalg.svd(t, compute_uv=False).sum()


@pytest.mark.parametrize("beta", [0.0, 0.2, 1.0])
def test_mixed_cluster_dcca_loss_matches_the_formula_with_explicit_pairs(rng, beta):
    h1, h2 = rng.standard_normal((30, 4)), rng.standard_normal((30, 3))
    h2[:, 0] += h1[:, 0]
    y = np.arange(30) % 3
    got = mixed_cluster_dcca_loss(torch.tensor(h1), torch.tensor(h2), torch.tensor(y), beta=beta, reg=1e-4, eps=0.0)
    np.testing.assert_allclose(got.item(), _mixed_cca_reference(h1, h2, y, beta, 1e-4), rtol=1e-8)
    if beta == 1.0:  # plain DCCA: no labels needed, equals dcca_loss over all components
        alone = mixed_cluster_dcca_loss(torch.tensor(h1), torch.tensor(h2), None, beta=1.0, reg=1e-4, eps=0.0)
        np.testing.assert_allclose(alone.item(), dcca_loss(torch.tensor(h1), torch.tensor(h2), reg=1e-4, eps=0).item())
    with pytest.raises(ValueError, match="needs class labels"):
        mixed_cluster_dcca_loss(torch.tensor(h1), torch.tensor(h2), None, beta=0.5)


def _np_log_softmax(x, axis):
    x = x - x.max(axis=axis, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=axis, keepdims=True))


def test_info_nce_matches_numpy(rng):
    za, zb = rng.normal(size=(8, 5)), rng.normal(size=(8, 5))
    t = 0.2
    an = za / np.linalg.norm(za, axis=1, keepdims=True)
    bn = zb / np.linalg.norm(zb, axis=1, keepdims=True)
    logits = an @ bn.T / t
    want = 0.5 * (-np.diag(_np_log_softmax(logits, 1)).mean() - np.diag(_np_log_softmax(logits, 0)).mean())
    got = info_nce_loss(torch.tensor(za), torch.tensor(zb), temperature=t)
    assert got.item() == pytest.approx(want, abs=1e-10)


def test_supervised_contrastive_matches_loop(rng):
    za, zb = rng.normal(size=(10, 4)), rng.normal(size=(10, 4))
    y = np.array([0, 0, 1, 1, 1, 2, 2, 3, 0, 1])
    yb = np.array([0, 1, 1, 1, 2, 2, 2, 0, 0, 1])  # class 3 has no positive in b
    t = 0.5
    s = (za / np.linalg.norm(za, axis=1, keepdims=True)) @ (zb / np.linalg.norm(zb, axis=1, keepdims=True)).T / t

    def direction(s, la, lb):
        terms = []
        for i in range(len(la)):
            pos = [j for j in range(len(lb)) if lb[j] == la[i]]
            if not pos:
                continue
            log_den = np.log(np.exp(s[i]).sum())
            terms.append(-np.mean([s[i, j] - log_den for j in pos]))
        return np.mean(terms)

    want = 0.5 * (direction(s, y, yb) + direction(s.T, yb, y))
    got = supervised_contrastive_loss(torch.tensor(za), torch.tensor(zb), torch.tensor(y), torch.tensor(yb), temperature=t)
    assert got.item() == pytest.approx(want, abs=1e-10)


def test_bad_arguments():
    with pytest.raises(ValueError, match="temperature"):
        info_nce_loss(torch.ones(2, 2), torch.ones(2, 2), temperature=0)
    with pytest.raises(ValueError, match="row-paired"):
        info_nce_loss(torch.ones(2, 2), torch.ones(3, 2))
    with pytest.raises(ValueError, match="n_components"):
        dcca_loss(torch.randn(10, 2), torch.randn(10, 2), n_components=3)
    with pytest.raises(ValueError, match="reduction"):
        triplet_margin_loss(A, P, N, reduction="max")


def test_contrastive_objective_is_the_weighted_sum_of_its_terms(rng):
    za = torch.nn.functional.normalize(torch.tensor(rng.normal(size=(8, 5))), dim=1)
    zb = torch.nn.functional.normalize(torch.tensor(rng.normal(size=(8, 5))), dim=1)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    nce = info_nce_loss(za, zb, 0.2, normalize=False).item()
    sc = supervised_contrastive_loss(za, zb, y, y, 0.2, normalize=False).item()
    out = contrastive_objective(za, zb, y, 0.2, infonce_weight=0.5, supcon_weight=2.0)
    assert out["loss"].item() == pytest.approx(0.5 * nce + 2.0 * sc, rel=1e-12)
    assert out["infonce"].item() == pytest.approx(nce) and out["supcon"].item() == pytest.approx(sc)
    assert set(contrastive_objective(za, zb, None, 0.2)) == {"loss", "infonce"}  # no labels: InfoNCE only
    only_sc = contrastive_objective(za, zb, y, 0.2, infonce_weight=0.0, supcon_weight=1.0)
    assert set(only_sc) == {"loss", "supcon"} and only_sc["loss"].item() == pytest.approx(sc, rel=1e-12)
