"""Gradient reversal: identity forward, ``-λ`` times the gradient backward, Ganin's schedule."""

import math

import pytest
import torch

from crossmodal_core.models.deep.gradient_reversal import GradientReversal, grad_reverse, grl_lambda


def test_forward_is_identity_and_backward_flips_and_scales():
    x = torch.tensor([[1.0, -2.0, 3.0]], requires_grad=True)
    w = torch.tensor([[0.5, 4.0, -1.0]])
    y = grad_reverse(x, 0.3)
    assert torch.equal(y, x.detach())
    (y * w).sum().backward()
    torch.testing.assert_close(x.grad, -0.3 * w)
    # the module form behaves the same with its own weight
    x.grad = None
    layer = GradientReversal(2.0)
    (layer(x) * w).sum().backward()
    torch.testing.assert_close(x.grad, -2.0 * w)


def test_negative_weight_is_refused():
    with pytest.raises(ValueError, match=">= 0"):
        grad_reverse(torch.ones(2), -1.0)


def test_schedule_matches_ganins_formula():
    assert grl_lambda(0.0) == 0.0
    for p in (0.1, 0.5, 1.0):
        assert grl_lambda(p) == pytest.approx(2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0)
    assert grl_lambda(2.0) == grl_lambda(1.0) and grl_lambda(-1.0) == 0.0  # clipped to [0, 1]
    assert all(a < b for a, b in zip([grl_lambda(p / 10) for p in range(10)], [grl_lambda(p / 10) for p in range(1, 11)]))
