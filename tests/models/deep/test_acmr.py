"""ACMR: loss terms against hand-computed values, the GRL reaching the projectors, the schedule."""

import numpy as np
import pytest
import torch

from crossmodal_core.models.deep import ACMR
from crossmodal_core.models.deep.acmr import (
    AdversarialProjectors,
    acmr_simple_loss,
    acmr_triplet_loss,
    hardest_other_label,
    modality_loss,
)
from crossmodal_core.models.deep.gradient_reversal import grl_lambda


def test_triplet_loss_on_batch_sums_by_hand():
    ev, ew = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.0]])
    ew_neg, ev_neg = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    # pos = ½·1 = 0.5; v_neg = ½·‖(1,0)−(2,0)‖² = 0.5; w_neg = ½·‖(0,0)−(0,1)‖² = 0.5
    # each hinge: 0.1 + 5·0.5 − 0.5 = 2.1
    assert float(acmr_triplet_loss(ev, ew, ew_neg, ev_neg, margin=0.1, alpha=5.0)) == pytest.approx(4.2)
    # a far negative switches the hinge off
    far = torch.tensor([[10.0, 0.0]])
    assert float(acmr_triplet_loss(ev, ew, far, far, margin=0.1, alpha=1.0)) == 0.0


def test_simple_loss_by_hand():
    rng = np.random.default_rng(0)
    ev, ew = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    y = np.array([0, 0, 1, 2])
    total, similar, dissimilar = acmr_simple_loss(torch.tensor(ev), torch.tensor(ew), torch.tensor(y), 0.1, 0.02)
    want_dis = np.mean([[max(0.0, 0.1 - (y[i] != y[j]) * (ev[i].sum() - ev[i] @ ew[j] + ew[j].sum()))
                         for j in range(4)] for i in range(4)])
    want_sim = np.sqrt(((ev - ew) ** 2).sum())
    assert float(similar) == pytest.approx(want_sim)
    assert float(dissimilar) == pytest.approx(want_dis)
    assert float(total) == pytest.approx(want_sim + 0.02 * want_dis)


def test_hardest_other_label_is_the_most_cosine_similar_other_label_row():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(7, 4))
    y = np.array([0, 0, 1, 1, 2, 2, 2])
    got = hardest_other_label(torch.tensor(x), torch.tensor(y)).numpy()
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    for i in range(7):
        others = [j for j in range(7) if y[j] != y[i]]
        assert got[i] == max(others, key=lambda j: xn[i] @ xn[j])
    # a batch of one label: each row points at itself
    assert hardest_other_label(torch.tensor(x), torch.zeros(7, dtype=torch.long)).tolist() == list(range(7))


def test_modality_loss_of_an_undecided_classifier_is_log_two():
    assert float(modality_loss(torch.zeros(3, 2), torch.zeros(5, 2))) == pytest.approx(np.log(2))


def test_adversarial_gradient_reaches_the_projectors_reversed_and_scaled():
    torch.manual_seed(0)
    net = AdversarialProjectors([5, 6], hidden=(4,), n_components=4, n_classes=3)
    x0, x1 = torch.randn(8, 5), torch.randn(8, 6)
    net.grl.lam = 0.7
    modality_loss(net.modality(net.projectors["view0"](x0)), net.modality(net.projectors["view1"](x1))).backward()
    through_grl = [p.grad.clone() for p in net.projectors.parameters()]
    clf_grl = [p.grad.clone() for p in net.modality_classifier.parameters()]
    net.zero_grad()
    # the same loss without the layer: the classifier's gradient is the same, the projectors' is -1/λ
    e0, e1 = net.projectors["view0"](x0), net.projectors["view1"](x1)
    modality_loss(net.modality_classifier(e0), net.modality_classifier(e1)).backward()
    for a, b in zip(through_grl, net.projectors.parameters()):
        torch.testing.assert_close(a, -0.7 * b.grad)
    for a, b in zip(clf_grl, net.modality_classifier.parameters()):
        torch.testing.assert_close(a, b.grad)


def test_fit_follows_the_schedule_and_needs_labels():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 120)
    views = [rng.normal(size=(120, 6)) + y[:, None], rng.normal(size=(120, 5)) - y[:, None]]
    m = ACMR(hidden=(8,), n_components=4, epochs=4, batch_size=120, progress=False).fit(views, y)
    # one batch per epoch: the logged λ is the epoch's λ((epoch - 1) / epochs)
    assert [h["grl_lambda"] for h in m.history_] == pytest.approx([grl_lambda(e / 4) for e in range(4)])
    assert m.epochs == 4 and m.module_.label_classifier.out_features == 3
    assert ACMR(epochs=None)._epochs == 50 and ACMR(variant="simple", epochs=None)._epochs == 200
    with pytest.raises(ValueError, match="labels"):
        ACMR(progress=False).fit(views)
    with pytest.raises(ValueError, match="variant"):
        ACMR(variant="quadruplet").fit(views, y)
