"""The shared training loop: divergence errors, early stopping, callbacks, seeding, devices."""

import numpy as np
import pytest
import torch
from torch import nn

from crossmodal_core.models.deep.training import (
    TrainingDivergedError,
    fit_loop,
    minibatches,
    optimizer_step,
    resolve_device,
    seeded,
    validation_map,
)


def _regression(n=64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=g)
    return x, x @ torch.tensor([[1.0], [-2.0], [0.5]])


def _fit(module, step, **kw):
    with seeded(0) as g:
        opt = torch.optim.SGD(module.parameters(), lr=0.05)
        return fit_loop(module, step, 64, batch_size=16, optimizer=opt, generator=g, progress=False, **kw)


def test_nan_loss_names_epoch_and_batch():
    x, y = _regression()
    net = nn.Linear(3, 1)
    calls = {"n": 0}

    def step(idx):
        calls["n"] += 1
        loss = ((net(x[idx]) - y[idx]) ** 2).mean()
        return loss * float("nan") if calls["n"] == 7 else loss  # epoch 2, batch 3 (4 batches/epoch)

    with pytest.raises(TrainingDivergedError, match="NaN loss .* epoch 2, batch 3") as info:
        _fit(net, step, epochs=3)
    assert (info.value.epoch, info.value.batch) == (2, 3)


def test_exploding_loss_and_gradient():
    x, y = _regression()
    net = nn.Linear(3, 1)
    with pytest.raises(TrainingDivergedError, match="exploding"):
        _fit(net, lambda idx: ((net(x[idx]) - y[idx]) ** 2).mean() * 1e12, epochs=1)
    net2 = nn.Linear(3, 1)
    with pytest.raises(TrainingDivergedError, match="gradient"):
        # finite value (sqrt(0) = 0) with an infinite derivative
        _fit(net2, lambda idx: torch.sqrt(net2(x[idx]).sum() - net2(x[idx]).sum().detach()), epochs=1)


def test_early_stopping_restores_best_weights_and_callback_per_epoch():
    x, y = _regression()
    net = nn.Linear(3, 1)
    scores = iter([0.1, 0.5, 0.3, 0.2, 0.9, 0.9])
    weights_after_epoch = []
    records = []

    def validate():
        weights_after_epoch.append(net.weight.detach().clone())
        s = next(scores)
        return s, s

    result = _fit(net, lambda idx: ((net(x[idx]) - y[idx]) ** 2).mean(), epochs=6, validate=validate,
                  patience=2, callback=records.append)
    assert result.stopped_early and result.best_epoch == 2 and result.best_val_map == pytest.approx(0.5)
    assert [r["epoch"] for r in records] == [1, 2, 3, 4] == [h["epoch"] for h in result.history]
    assert all({"loss", "val_map", "n_epochs"} <= set(r) for r in records)
    assert not torch.equal(weights_after_epoch[1], weights_after_epoch[3])
    torch.testing.assert_close(net.weight.detach(), weights_after_epoch[1], rtol=0, atol=0)


def test_callback_returning_false_stops():
    x, y = _regression()
    net = nn.Linear(3, 1)
    result = _fit(net, lambda idx: ((net(x[idx]) - y[idx]) ** 2).mean(), epochs=5,
                  callback=lambda r: r["epoch"] < 2 or False)
    assert result.stopped_by_callback and len(result.history) == 2


def test_loss_decreases_on_regression():
    x, y = _regression()
    net = nn.Linear(3, 1)
    result = _fit(net, lambda idx: ((net(x[idx]) - y[idx]) ** 2).mean(), epochs=20)
    assert result.history[-1]["loss"] < 0.05 * result.history[0]["loss"]


def test_seeded_is_reproducible_and_leaves_global_rng_alone():
    before = torch.get_rng_state()
    with seeded(5) as g:
        a = torch.randn(3), torch.randperm(10, generator=g)
    with seeded(5) as g:
        b = torch.randn(3), torch.randperm(10, generator=g)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.equal(before, torch.get_rng_state())
    assert not torch.are_deterministic_algorithms_enabled()


def test_minibatches_cover_each_index_once():
    g = torch.Generator().manual_seed(0)
    batches = minibatches(33, 8, g)
    assert sorted(torch.cat(batches).tolist()) == list(range(33))
    assert [len(b) for b in batches] == [8, 8, 8, 9]  # the single leftover row is merged
    assert [len(b) for b in minibatches(33, 8, g, drop_last=True)] == [8, 8, 8, 8]
    assert [len(b) for b in minibatches(5, 8, g, drop_last=True)] == [5]


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def _brute_force_map(queries, gallery, labels_q, labels_g):
    """Cosine MAP by plain loops: rank the gallery by similarity (ties by index), then the mean
    over queries of (sum of precision at each relevant rank) / (number of relevant items)."""
    aps = []
    for q, lq in zip(queries, labels_q):
        sims = [float(np.dot(q, g) / (np.linalg.norm(q) * np.linalg.norm(g))) for g in gallery]
        order = sorted(range(len(gallery)), key=lambda j: (-sims[j], j))
        hits, precisions = 0, []
        for rank, j in enumerate(order, start=1):
            if labels_g[j] == lq:
                hits += 1
                precisions.append(hits / rank)
        if precisions:
            aps.append(sum(precisions) / len(precisions))
    return sum(aps) / len(aps)


def test_validation_map_matches_brute_force(rng):
    x, z = rng.normal(size=(40, 4)), rng.normal(size=(30, 4))
    y, yz = rng.integers(0, 3, 40), rng.integers(0, 3, 30)
    xy, yx = validation_map(x, z, y, yz)
    assert xy == pytest.approx(_brute_force_map(x, z, y, yz), abs=1e-12)
    assert yx == pytest.approx(_brute_force_map(z, x, yz, y), abs=1e-12)
    assert 0 < xy < 0.9  # random embeddings: far from perfect, so the comparison means something
    # one label array serves both sides when the rows are paired
    same = validation_map(x, x[::-1], y)
    assert same == pytest.approx((_brute_force_map(x, x[::-1], y, y), _brute_force_map(x[::-1], x, y, y)), abs=1e-12)
    # perfect embedding: one-hot class vectors -> MAP 1 both ways
    onehot = np.eye(3)[y]
    assert validation_map(onehot, onehot, y) == pytest.approx((1.0, 1.0))


def test_optimizer_step_zeroes_backpropagates_and_steps():
    w = nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = torch.optim.SGD([w], lr=0.1)
    w.grad = torch.tensor([100.0, 100.0])  # a stale gradient must not leak into the update
    optimizer_step(opt, (w ** 2).sum())  # gradient 2w
    torch.testing.assert_close(w.detach(), torch.tensor([1.0 - 0.2, -2.0 + 0.4]))
