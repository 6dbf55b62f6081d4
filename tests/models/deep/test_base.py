"""Checkpoints of the torch estimators: round trips, foreign / mismatched / corrupt files."""

import json

import numpy as np
import pytest
import torch

from crossmodal_core.data.synthetic import make_synthetic_av
from crossmodal_core.models.deep import (
    DCCA,
    CheckpointError,
    ClusterDCCA,
    ContrastiveAligner,
    TNNClusterCCA,
    TorchCrossModalEstimator,
)


@pytest.fixture(scope="module")
def data():
    ds = make_synthetic_av(n_train=200, n_test=60, n_classes=4, dims=(10, 14), seed=4)
    split = np.asarray(ds.split)
    a, v, y = ds.view("audio"), ds.view("visual"), ds.label(ds.default_label)
    tr = split == "train"
    return [a[tr], v[tr]], y[tr], [a[~tr], v[~tr]]


MODELS = [
    lambda: TNNClusterCCA(hidden=(8,), epochs=1, batch_size=64, progress=False),
    lambda: TNNClusterCCA(hidden=(8,), epochs=1, batch_size=64, order="network-first", embedding_dim=5, progress=False),
    lambda: DCCA(n_components=3, hidden=(8,), epochs=1, batch_size=100, progress=False),
    lambda: ClusterDCCA(n_components=3, hidden=(8,), epochs=1, batch_size=100, progress=False),
    lambda: ContrastiveAligner(n_components=4, hidden=(8,), epochs=1, batch_size=64, progress=False),
]


@pytest.mark.parametrize("make", MODELS)
def test_round_trip_identical_transform(data, make, tmp_path):
    views, y, test_views = data
    m = make().fit(views, y)
    path = m.save(tmp_path / "model.pt")
    sidecar = json.loads((tmp_path / "model.json").read_text())
    assert sidecar["class"] == type(m).__name__ and sidecar["params"]["epochs"] == 1
    for loaded in (type(m).load(path), TorchCrossModalEstimator.load(path)):
        assert type(loaded) is type(m) and loaded.get_params() == m.get_params()
        for a, b in zip(m.transform(test_views), loaded.transform(test_views)):
            np.testing.assert_array_equal(a, b)
        assert loaded.history_ == m.history_
    assert not list(tmp_path.glob(".model.pt.*"))  # no temp file left behind


def test_foreign_class_mismatched_shapes_and_corrupt_files(data, tmp_path):
    views, y, _ = data
    m = TNNClusterCCA(hidden=(8,), epochs=1, batch_size=64, progress=False).fit(views, y)
    path = m.save(tmp_path / "tnn.pt")
    with pytest.raises(CheckpointError, match="holds a TNNClusterCCA checkpoint, not a DCCA"):
        DCCA.load(path)
    # tamper: claim wider hidden layers than the stored weights have
    payload = torch.load(path, weights_only=True)
    params = json.loads(payload["params"])
    params["hidden"] = [9]
    payload["params"] = json.dumps(params)
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="do not match"):
        TNNClusterCCA.load(tmp_path / "mismatch.pt")
    # a plain torch state_dict is not a crossmodal checkpoint
    torch.save(m.module_.state_dict(), tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a crossmodal estimator checkpoint"):
        TorchCrossModalEstimator.load(tmp_path / "foreign.pt")
    (tmp_path / "garbage.pt").write_bytes(b"\x00not a zip file at all")
    with pytest.raises(CheckpointError, match="not a readable"):
        TNNClusterCCA.load(tmp_path / "garbage.pt")
    truncated = path.read_bytes()[:200]
    (tmp_path / "truncated.pt").write_bytes(truncated)
    with pytest.raises(CheckpointError):
        TNNClusterCCA.load(tmp_path / "truncated.pt")
    with pytest.raises(FileNotFoundError):
        TNNClusterCCA.load(tmp_path / "missing.pt")


def test_save_before_fit_and_load_device_override(data, tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        DCCA().save(tmp_path / "x.pt")
    views, y, test_views = data
    m = DCCA(n_components=2, hidden=(8,), epochs=1, batch_size=100, progress=False).fit(views)
    m.save(tmp_path / "d.pt")
    loaded = DCCA.load(tmp_path / "d.pt", device="auto")
    assert loaded.device == "auto"
    np.testing.assert_allclose(loaded.transform(test_views)[0], m.transform(test_views)[0], atol=1e-5)
