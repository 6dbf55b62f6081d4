"""S-DCCA: the model (its cluster-mixed loss is tested in test_losses.py)."""

import numpy as np
import pytest
import torch

from crossmodal_core.models.deep import SupervisedDCCA


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
