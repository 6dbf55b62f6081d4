"""Hashing loss terms and map updates against hand-computed values and brute-force loops."""

import math

import numpy as np
import pytest
import torch

from crossmodal_core.models.deep.hash_losses import (
    agah_balance_loss,
    code_map_loss,
    cosine_triplet_all_loss,
    quantization_loss,
    ugach_hinge,
    ugach_reward,
    wgan_gradient_penalty,
)
from crossmodal_core.models.deep.hashing import binary_codes, knn_graph, update_code_map, update_feature_map


def test_quantization_loss_by_hand():
    h = torch.tensor([[0.5, -0.2], [1.0, -1.0]])
    assert float(quantization_loss(h)) == pytest.approx(0.25 + 0.64)


def test_balance_loss_by_hand():
    h = torch.tensor([[1.0, -1.0], [0.5, 0.0]])
    # |h| rows: (1, 1) has cosine 1 with the all-ones vector, (0.5, 0) has 1/sqrt(2)
    want = 1 / (1 + math.e) + 1 / (1 + math.exp(1 / math.sqrt(2)))
    assert float(agah_balance_loss(h)) == pytest.approx(want)


def test_code_map_loss_by_hand():
    h = torch.tensor([[1.0, 0.0]])
    m = torch.tensor([[1.0, 1.0], [1.0, -1.0]])
    onehot = torch.tensor([[1.0, 0.0]])
    # h Mᵀ = (1, 1); targets bits·(2L − 1) = (2, −2): (1 − 2)² + (1 + 2)² = 10
    assert float(code_map_loss(h, m, onehot)) == pytest.approx(10.0)


def test_cosine_triplet_all_matches_a_loop():
    rng = np.random.default_rng(0)
    a, t = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    y = np.array([0, 0, 1, 1, 2, 0])
    an = a / np.linalg.norm(a, axis=1, keepdims=True)
    tn = t / np.linalg.norm(t, axis=1, keepdims=True)
    d = 1 - an @ tn.T
    want = sum(max(0.0, 0.3 + d[i, p] - d[i, n]) for i in range(6) for p in range(6) for n in range(6)
               if y[p] == y[i] and y[n] != y[i])
    got = cosine_triplet_all_loss(torch.tensor(a), torch.tensor(t), torch.tensor(y), margin=0.3)
    assert float(got) == pytest.approx(want)


def test_ugach_hinge_and_reward_by_hand():
    d_pos, d_neg = torch.tensor([[1.0]]), torch.tensor([[0.5, 4.0]])
    # beta 2: hinge terms max(0, 2 + 1 − 0.5) = 2.5 and max(0, 2 + 1 − 4) = 0
    assert float(ugach_hinge(d_pos, d_neg, 2.0)) == pytest.approx(1.25)
    r = ugach_reward(d_pos, d_neg, 2.0)
    torch.testing.assert_close(r, torch.tensor([[1 / (1 + math.exp(-2.5)), 0.5]]))
    assert not r.requires_grad


def test_wgan_penalty_of_a_linear_critic_is_closed_form():
    w = torch.tensor([[3.0], [4.0]])
    critic = lambda x: x @ w  # noqa: E731 -- gradient is w everywhere, norm 5
    pen = wgan_gradient_penalty(critic, torch.randn(5, 2), torch.randn(5, 2), weight=10.0)
    assert float(pen) == pytest.approx(10.0 * (5.0 - 1.0) ** 2)


def test_code_map_update_matches_the_reference_loop():
    rng = np.random.default_rng(1)
    n, c, bits = 12, 3, 6
    u, v = torch.tensor(rng.normal(size=(n, bits))), torch.tensor(rng.normal(size=(n, bits)))
    labels = rng.integers(0, c, n)
    onehot = torch.tensor(np.eye(c)[labels])
    m0 = torch.tensor(np.sign(rng.normal(size=(c, bits))))
    before = m0.clone()
    got = update_code_map(u, v, m0, onehot)
    assert torch.equal(m0, before)  # the input map is not modified in place
    # the reference's loop, literally (matrix products in its order)
    U, V, M = np.sign(u.numpy()), np.sign(v.numpy()), m0.numpy().copy()
    S = np.eye(c) * 2 - 1
    Q = 2 * bits * (onehot.numpy().T @ (U + V) + S @ M)
    for k in range(bits):
        ind = np.setdiff1d(np.arange(bits), k)
        t1 = M[:, ind] @ U[:, ind].T @ U[:, k]
        t2 = M[:, ind] @ V[:, ind].T @ V[:, k]
        t3 = M[:, ind] @ M[:, ind].T @ M[:, k]
        M[:, k] = np.sign(Q[:, k] - 2 * (t1 + t2 + t3))
    np.testing.assert_array_equal(got.numpy(), M)


def test_feature_map_is_the_unit_class_mean_of_both_views():
    f0 = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    f1 = torch.tensor([[1.0, 2.0], [1.0, 2.0], [0.0, 4.0]])
    onehot = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    fm = update_feature_map(f0, f1, onehot)
    # class 0: ((2, 0) + (1, 2)) / 2 = (1.5, 1), normalised; class 1: (0, 3) -> (0, 1)
    torch.testing.assert_close(fm, torch.tensor([[1.5, 1.0], [0.0, 1.0]]) / torch.tensor([[math.hypot(1.5, 1)], [1.0]]))


def test_binary_codes_map_zero_to_plus_one():
    np.testing.assert_array_equal(binary_codes(np.array([[0.0, -0.1, 0.3]])), [[1, -1, 1]])
    assert binary_codes(np.zeros((1, 2))).dtype == np.int8


def test_knn_graph_lists_self_then_true_neighbours():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(30, 3)), rng.normal(size=(30, 2))
    g = knn_graph([a, b], n_neighbors=3, n_pca=64)
    assert g.shape == (30, 7) and (g[:, 0] == np.arange(30)).all()
    for x, cols in ((a, g[:, 1:4]), (b, g[:, 4:7])):
        d = ((x[:, None] - x[None]) ** 2).sum(-1)
        np.fill_diagonal(d, np.inf)
        np.testing.assert_array_equal(np.sort(cols, axis=1), np.sort(np.argsort(d, axis=1)[:, :3], axis=1))
