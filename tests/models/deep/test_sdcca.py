"""S-DCCA: the cluster-mixed covariance and loss against a numpy computation, and the model."""

import numpy as np
import pytest
import torch
from scipy import linalg

from crossmodal_core.models.deep import SupervisedDCCA
from crossmodal_core.models.deep.losses import cluster_covariances, pairwise_covariances
from crossmodal_core.models.deep.sdcca import mixed_cluster_covariances, mixed_cluster_dcca_loss


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    y = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 1])
    h1 = rng.normal(size=(10, 3)) + y[:, None]
    h2 = rng.normal(size=(10, 2)) - y[:, None]
    return h1, h2, y


def test_mixed_covariances_interpolate_pair_and_cluster(batch):
    h1, h2, y = (torch.tensor(a) for a in batch)
    s11, s22, s12 = pairwise_covariances(h1, h2)
    c12 = cluster_covariances(h1, h2, y)[2]
    m11, m22, m12 = mixed_cluster_covariances(h1, h2, y, beta=0.2)
    torch.testing.assert_close(m11, s11)
    torch.testing.assert_close(m22, s22)
    torch.testing.assert_close(m12, 0.2 * s12 + 0.8 * c12)
    # the cluster block by brute force over every same-class pair
    a, b, lab = batch
    pairs = [(i, j) for i in range(10) for j in range(10) if lab[i] == lab[j]]
    p, q = np.array([a[i] for i, _ in pairs]), np.array([b[j] for _, j in pairs])
    want = (p - p.mean(0)).T @ (q - q.mean(0)) / len(pairs)
    np.testing.assert_allclose(c12.numpy(), want, atol=1e-12)
    with pytest.raises(ValueError, match="beta"):
        mixed_cluster_covariances(h1, h2, y, beta=1.5)


def test_loss_is_minus_the_sum_of_canonical_correlations(batch):
    h1, h2, y = batch
    t = [torch.tensor(a) for a in batch]
    s11, s22, s12 = (m.numpy() for m in mixed_cluster_covariances(*t, beta=0.2))
    r = 1e-4
    w1 = linalg.inv(linalg.sqrtm(s11 + r * np.eye(3)))
    w2 = linalg.inv(linalg.sqrtm(s22 + r * np.eye(2)))
    sv = linalg.svdvals(w1 @ s12 @ w2)
    assert float(mixed_cluster_dcca_loss(*t, beta=0.2, reg=r, eps=0.0)) == pytest.approx(-sv.sum(), rel=1e-9)
    assert float(mixed_cluster_dcca_loss(*t, beta=0.2, n_components=1, reg=r, eps=0.0)) == pytest.approx(-sv[0])


def test_model_uses_per_view_towers_rmsprop_and_clips_components():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 200)
    views = [rng.normal(size=(200, 6)) + y[:, None], rng.normal(size=(200, 9)) - y[:, None]]
    m = SupervisedDCCA(hidden0=(8,), hidden1=(12, 4), epochs=3, batch_size=100, progress=False).fit(views, y)
    assert m.n_components_ == 2  # classes - 1
    assert m.transform(views)[0].shape == (200, 2)
    assert isinstance(m.module_["view0"][0], torch.nn.BatchNorm1d)
    assert m.module_["view1"][1][0].out_features == 12 and m.module_["view0"][1][0].out_features == 8
    assert isinstance(m._optimizer(m.module_), torch.optim.RMSprop)
    with pytest.raises(ValueError, match="labels"):
        SupervisedDCCA(progress=False).fit(views)
