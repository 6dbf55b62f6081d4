"""Deep models train from views that stay on disk: a DataLoader over seeded, block-shuffled row
blocks (every row once per epoch, one block in memory), never reading a view whole."""

import numpy as np
import pytest
import torch

from crossmodal_core.data import io as dio
from crossmodal_core.data import lazy
from crossmodal_core.data.dataset import CrossModalDataset
from crossmodal_core.metrics import map_both_directions
from crossmodal_core.models.deep import DCCA, ClusterDCCA, SupervisedDCCA
from crossmodal_core.models.deep.training import RowBlockBatches, streamed_batches


@pytest.fixture(scope="module")
def zarr_views(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 600
    lab = rng.integers(0, 4, n)
    z = rng.standard_normal((n, 2)) + 2.0 * lab[:, None]
    x = (z @ rng.standard_normal((2, 10)) + 0.5 * rng.standard_normal((n, 10))).astype(np.float32)
    y = (np.tanh(z @ rng.standard_normal((2, 12))) + 0.3 * rng.standard_normal((n, 12))).astype(np.float32)
    ids = np.arange(n, dtype=np.float32)[:, None]
    ds = CrossModalDataset(views={"a": x, "b": y, "id": np.repeat(ids, 2, axis=1)}, labels={"c": lab},
                           class_names={"c": list("wxyz")})
    opened = dio.load_dataset(dio.save_zarr(ds, tmp_path_factory.mktemp("deep") / "d.zarr", chunk_bytes=1024))
    return x, y, lab, opened.views["a"], opened.views["b"], opened.views["id"]


def test_row_blocks_cover_every_row_once_per_epoch(zarr_views, monkeypatch):
    *_, ids = zarr_views
    monkeypatch.setattr(lazy.LazyArray, "__array__", lambda *a, **k: pytest.fail("a view was read whole"))
    data = RowBlockBatches([ids, ids], None, batch_size=32, seed=3, block_rows=128)
    batches = streamed_batches(data)
    seen = []
    for epoch in (1, 2):
        rows = torch.cat([b[0][:, 0] for b in batches(epoch)]).numpy().astype(int)
        assert sorted(rows) == list(range(600))  # every row exactly once
        seen.append(rows)
    assert not np.array_equal(seen[0], seen[1])  # reshuffled each epoch...
    again = torch.cat([b[0][:, 0] for b in streamed_batches(RowBlockBatches([ids, ids], None, 32, 3, 128))(1)])
    np.testing.assert_array_equal(again.numpy().astype(int), seen[0])  # ...and seeded


@pytest.mark.parametrize("model", [DCCA, ClusterDCCA])
def test_deep_models_train_from_views_on_disk(zarr_views, model, monkeypatch):
    x, y, lab, lx, ly, _ = zarr_views
    params = dict(n_components=3, hidden=(16,), epochs=4, batch_size=100, random_state=0, progress=False)
    with monkeypatch.context() as mp:
        mp.setattr(lazy.LazyArray, "__array__", lambda *a, **k: pytest.fail("a view was read whole"))
        streamed = model(**params).fit([lx, ly], lab)
        again = model(**params).fit([lx, ly], lab)
        z_lazy = streamed.transform([lx, ly])
    for a, b in zip(streamed.weights_, again.weights_):
        np.testing.assert_array_equal(a, b)  # deterministic
    z = streamed.transform([x, y])
    for a, b in zip(z, z_lazy):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * np.abs(a).max())
    assert len(streamed.history_) == 4 and all(np.isfinite(h["loss"]) for h in streamed.history_)
    # it learns as well as the in-memory fit (other batches, so not the same weights); chance is ~0.25
    in_memory = model(**params).fit([x, y], lab).transform([x, y])
    got = np.mean(map_both_directions(z[0], z[1], lab, lab, metric="cosine"))
    want = np.mean(map_both_directions(in_memory[0], in_memory[1], lab, lab, metric="cosine"))
    assert got > 0.35 and got > want - 0.1, (got, want)


def test_streamed_fit_uses_the_models_optimizer_hook(zarr_views, monkeypatch):
    """S-DCCA trains with its own RMSprop (the ``_optimizer`` hook) from views on disk too."""
    _, _, lab, lx, ly, _ = zarr_views
    made = []
    hook = SupervisedDCCA._optimizer
    monkeypatch.setattr(SupervisedDCCA, "_optimizer", lambda self, module: made.append(hook(self, module)) or made[-1])
    SupervisedDCCA(hidden0=(8,), hidden1=(8,), epochs=1, batch_size=100, progress=False).fit([lx, ly], lab)
    assert len(made) == 1 and isinstance(made[0], torch.optim.RMSprop)
