"""The grant's VAE: loss terms against closed forms and loops, and the CCA mutual-space option."""

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from crossmodal_core.models import registry
from crossmodal_core.models.deep import CrossModalVAE
from crossmodal_core.models.deep.vae_losses import (
    center_loss,
    gaussian_kl,
    label_likelihood_loss,
    label_regression_loss,
    paired_distance_loss,
    update_centers,
    vae_view_loss,
)


def test_kl_matches_the_closed_form_of_torch_distributions():
    rng = np.random.default_rng(0)
    mu, logvar = torch.tensor(rng.normal(size=(5, 3))), torch.tensor(rng.normal(size=(5, 3)))
    want = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(torch.zeros(3), torch.ones(3))).sum()
    torch.testing.assert_close(gaussian_kl(mu, logvar), want)
    assert float(gaussian_kl(torch.zeros(2, 4), torch.zeros(2, 4))) == 0.0
    x, rec = torch.ones(2, 2), torch.zeros(2, 2)
    torch.testing.assert_close(vae_view_loss(rec, x, mu[:2], logvar[:2]), 1.0 + gaussian_kl(mu[:2], logvar[:2]))


def test_label_likelihood_matches_a_loop():
    rng = np.random.default_rng(1)
    z1, z2 = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    y = np.array([0, 1, 1, 2])
    oh = np.eye(3)[y]
    c1, c2 = z1 - z1.mean(1, keepdims=True), z2 - z2.mean(1, keepdims=True)
    total = 0.0
    for a, b in ((c1, c1), (c1, c2), (c2, c2)):
        vals = []
        for i in range(4):
            for j in range(4):
                theta = a[i] @ b[j] / max(np.linalg.norm(a[i]) * np.linalg.norm(b[j]), 1e-6) / 2
                vals.append(np.log1p(np.exp(theta)) - (y[i] == y[j]) * theta)
        total += np.mean(vals)
    got = label_likelihood_loss(torch.tensor(z1), torch.tensor(z2), torch.tensor(oh), torch.tensor(oh))
    assert float(got) == pytest.approx(total)


def test_regression_distance_and_centre_terms_by_hand():
    p = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    oh = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    assert float(label_regression_loss(p, oh)) == pytest.approx(0.5)  # (0 + 1) / 2
    assert float(paired_distance_loss(torch.tensor([[3.0, 4.0]]), torch.zeros(1, 2))) == pytest.approx(5.0)
    centers = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    z = torch.tensor([[2.0, 0.0], [1.0, 3.0]])
    labels = torch.tensor([0, 1])
    assert float(center_loss(z, labels, centers)) == pytest.approx(0.5 * (4 + 4) / 2)
    update_centers(centers, z, labels, alpha=0.5)
    # c_j -= 0.5 * (n_j c_j - Σ z) / (1 + n_j): class 0 -> 0.5 * (0 - 2) / 2 = -0.5 -> (0.5, 0)
    torch.testing.assert_close(centers, torch.tensor([[0.5, 0.0], [1.0, 1.5]]))


def test_cca_mutual_space_is_a_cca_of_the_training_mu(tmp_path):
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 150)
    views = [rng.normal(size=(150, 6)) + y[:, None], rng.normal(size=(150, 8)) - y[:, None]]
    kw = dict(hidden=16, latent=6, epochs=3, batch_size=50, lr=1e-3, progress=False)
    plain = CrossModalVAE(**kw).fit(views, y)
    cca = CrossModalVAE(mutual_space="cca", cca_components=3, **kw).fit(views, y)
    # same seed, same network; the option only adds the linear stage on μ
    mu = plain.transform(views)
    assert mu[0].shape == (150, 6) and cca.transform(views)[0].shape == (150, 3)
    from crossmodal_core.models.linear import CCA

    ref = CCA(n_components=3, reg=1e-3).fit([m.astype(np.float32) for m in mu])
    for a, b in zip(cca.transform(views), ref.transform([m.astype(np.float32) for m in mu])):
        np.testing.assert_allclose(np.abs(a), np.abs(b), atol=1e-4)
    loaded = registry.load_model(registry.save_model(cca, tmp_path / "vae.pt"))
    np.testing.assert_array_equal(loaded.transform(views)[1], cca.transform(views)[1])
    with pytest.raises(ValueError, match="mutual_space"):
        CrossModalVAE(mutual_space="pls").fit(views, y)
