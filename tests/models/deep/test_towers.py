import pytest
import torch
from torch import nn

from crossmodal_core.models.deep.towers import make_tower


def test_tower_layout_and_shapes():
    t = make_tower(10, hidden=(100, 100, 100), out_features=10, activation="tanh", dropout=0.1)
    linears = [m for m in t if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(10, 100), (100, 100), (100, 100), (100, 10)]
    assert sum(isinstance(m, nn.Tanh) for m in t) == 3
    assert sum(isinstance(m, nn.Dropout) for m in t) == 3
    assert not isinstance(t[-1], (nn.Tanh, nn.Dropout))  # linear output
    assert t(torch.randn(4, 10)).shape == (4, 10)


def test_tower_options():
    t = make_tower(5, hidden=(8,), out_features=3, activation="relu", batch_norm=True, normalize=True)
    assert any(isinstance(m, nn.BatchNorm1d) for m in t) and any(isinstance(m, nn.ReLU) for m in t)
    out = t(torch.randn(6, 5))
    torch.testing.assert_close(out.norm(dim=1), torch.ones(6))
    assert len(make_tower(5, hidden=(), out_features=2)) == 1


@pytest.mark.parametrize("kwargs, match", [
    (dict(activation="swishy"), "unknown activation"),
    (dict(dropout=1.0), "dropout"),
    (dict(hidden=(0,)), "hidden"),
    (dict(out_features=0), "out_features"),
])
def test_tower_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_tower(4, **kwargs)
