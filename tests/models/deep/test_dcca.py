"""DCCA and ClusterDCCA estimators."""

import numpy as np
import pytest
from scipy import linalg
from sklearn.exceptions import NotFittedError

from crossmodal_core.models.deep import DCCA, ClusterDCCA
from crossmodal_core.models.linear._linalg import column_correlations


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n = 300
    y = rng.integers(0, 4, n)
    z = rng.normal(size=(n, 3)) + np.eye(4)[y] @ rng.normal(size=(4, 3)) * 2
    x1 = np.tanh(z @ rng.normal(size=(3, 8))) + 0.3 * rng.normal(size=(n, 8))
    x2 = (z @ rng.normal(size=(3, 6))) ** 2 / 4 + 0.3 * rng.normal(size=(n, 6))
    return [x1.astype(np.float32), x2.astype(np.float32)], y


def test_dcca_trains_and_final_cca_is_on_outputs(data):
    views, _ = data
    m = DCCA(n_components=3, hidden=(32,), epochs=15, batch_size=150, progress=False).fit(views)
    losses = [h["loss"] for h in m.history_]
    assert losses[-1] < losses[0] and losses[-1] >= -3
    z0, z1 = m.transform(views)
    assert z0.shape == (300, 3)
    # the final linear CCA makes the returned components the (ridge-regularised) canonical
    # variates of the tower outputs: their sum close to (never above) the sum of scipy's
    # unregularised canonical correlations, and uncorrelated across components
    h0, h1 = m._outputs([v.astype(np.float32) for v in views])
    q0, _ = linalg.qr(h0 - h0.mean(0), mode="economic")
    q1, _ = linalg.qr(h1 - h1.mean(0), mode="economic")
    reference = linalg.svdvals(q0.T @ q1)[:3]
    corr = column_correlations(z0, z1)
    assert reference.sum() - 0.05 <= corr.sum() <= reference.sum() + 1e-4
    cross = np.corrcoef(z0.T, z1.T)[:3, 3:]
    assert np.abs(cross - np.diag(np.diag(cross))).max() < 0.05


def test_cluster_dcca_clips_components_and_needs_labels(data):
    views, y = data
    m = ClusterDCCA(n_components=5, out_features=5, hidden=(16,), epochs=3, batch_size=150, progress=False)
    with pytest.raises(ValueError, match="labels"):
        m.fit(views)
    m.fit(views, y)
    assert m.n_components_ == 3 and m.transform(views)[0].shape == (300, 3)
    assert all(np.isfinite(h["loss"]) for h in m.history_)


def test_dcca_errors(data):
    views, _ = data
    with pytest.raises(NotFittedError):
        DCCA().transform(views)
    with pytest.raises(ValueError, match="out_features"):
        DCCA(n_components=5, out_features=3).fit(views)
    with pytest.raises(ValueError, match="rows"):
        DCCA(progress=False).fit([views[0], views[1][:10]])


def test_nan_loss_stops_fit_with_training_diverged_error(data, monkeypatch):
    import torch

    from crossmodal_core.models.deep import TrainingDivergedError
    from crossmodal_core.models.deep import dcca as dcca_module

    monkeypatch.setattr(dcca_module, "dcca_loss", lambda h1, h2, **kw: (h1.sum() + h2.sum()) * torch.tensor(float("nan")))
    with pytest.raises(TrainingDivergedError, match="epoch 1, batch 1"):
        DCCA(n_components=2, hidden=(8,), epochs=2, batch_size=100, progress=False).fit(data[0])
