"""Sequence models (LSTM-C-CCA, deep attention, transformer): loss terms against hand-computed
values, padding masks, determinism, checkpoints, input-shape errors, and small fits."""

import numpy as np
import pytest
import torch

from crossmodal_core.data.synthetic import make_synthetic_av
from crossmodal_core.metrics import map_both_directions
from crossmodal_core.models import registry
from crossmodal_core.models.deep import (
    DCCA,
    ChunkAttentionCCA,
    CrossModalTransformer,
    LSTMClusterCCA,
    TorchCrossModalEstimator,
)
from crossmodal_core.models.deep.losses import info_nce_loss, supervised_contrastive_loss
from crossmodal_core.models.deep.sequence import check_sequence_views, pad_sequences
from crossmodal_core.models.deep.sequence_towers import ChunkAttentionTower, LSTMTower, TransformerTower

pytestmark = pytest.mark.filterwarnings("ignore:(Cluster)?CCA.*exceeds:UserWarning")

N_CLASSES = 4


@pytest.fixture(scope="module")
def data():
    ds = make_synthetic_av(n_train=600, n_test=200, n_classes=N_CLASSES, dims=(12, 16), seed=4, sequences=True)
    tr = ds.split == "train"
    a, v, y = ds.views["audio_seq"], ds.views["visual_seq"], ds.labels["class"]
    return [a[tr], v[tr]], y[tr], [a[~tr], v[~tr]], y[~tr]


_SMALL = {
    "lstm-ccca": (LSTMClusterCCA, dict(n_components=3, units=(16, 16), time_units=(4, 4), out_features=8,
                                       epochs=2, batch_size=200, progress=False)),
    "attention": (ChunkAttentionCCA, dict(n_components=3, hidden=16, attention_dim=8, out_features=8,
                                          epochs=2, batch_size=200, progress=False)),
    "transformer": (CrossModalTransformer, dict(n_components=8, d_model=16, n_heads=2, n_layers=1, epochs=2,
                                                batch_size=100, progress=False)),
}


def small(name, **overrides):
    cls, params = _SMALL[name]
    return cls(**{**params, **overrides})


# ---------------------------------------------------------------------- loss terms
def test_transformer_loss_terms_by_hand():
    """InfoNCE and supervised contrastive on three unit vectors, written out."""
    za = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=torch.float64)
    zb = torch.tensor([[0.8, 0.6], [0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    tau = 0.5
    s = (za @ zb.T).numpy() / tau

    def ce(logits, targets):
        return np.mean([np.log(np.exp(r).sum()) - r[t] for r, t in zip(logits, targets)])

    expected_nce = 0.5 * (ce(s, [0, 1, 2]) + ce(s.T, [0, 1, 2]))
    np.testing.assert_allclose(info_nce_loss(za, zb, tau, normalize=False).item(), expected_nce, rtol=1e-10)
    labels = torch.tensor([0, 1, 0])
    pos = labels.numpy()[:, None] == labels.numpy()[None, :]

    def supcon(logits, pos):
        logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
        return np.mean([-(logp[i][pos[i]]).mean() for i in range(len(logits))])

    expected_sc = 0.5 * (supcon(s, pos) + supcon(s.T, pos.T))
    np.testing.assert_allclose(supervised_contrastive_loss(za, zb, labels, labels, tau, normalize=False).item(),
                               expected_sc, rtol=1e-10)


# ---------------------------------------------------------------------- padding masks
TOWERS = {
    "lstm": lambda d: LSTMTower(d, 6, units=8, time_units=3, out_features=5),
    "chunk-attention": lambda d: ChunkAttentionTower(d, hidden=8, out_features=5, chunk_size=2, attention_dim=4),
    "transformer": lambda d: TransformerTower(d, 6, d_model=8, n_heads=2, n_layers=2, out_features=5),
}


@pytest.mark.parametrize("kind", sorted(TOWERS))
def test_padded_segments_never_change_the_output(kind):
    torch.manual_seed(0)
    tower = TOWERS[kind](3).eval()
    x = torch.randn(4, 6, 3)
    mask = torch.ones(4, 6, dtype=torch.bool)
    mask[0, 4:] = False  # trailing padding
    mask[1, 1] = False  # a gap
    mask[2, 2:4] = False  # a whole chunk of padding
    other = x.clone()
    other[~mask] = torch.randn(int((~mask).sum()), 3) * 100
    with torch.no_grad():
        out, out_other = tower(x, mask), tower(other, mask)
        unmasked = tower(other, None)
    torch.testing.assert_close(out, out_other, rtol=0, atol=1e-6)
    assert not torch.allclose(out[:3], unmasked[:3], atol=1e-3)  # the mask is what hides them
    torch.testing.assert_close(out[3], unmasked[3], rtol=0, atol=1e-6)  # an unpadded item is unaffected


def test_chunk_attention_gives_padding_chunks_no_weight():
    torch.manual_seed(0)
    tower = ChunkAttentionTower(3, hidden=8, out_features=5, chunk_size=2, attention_dim=4).eval()
    mask = torch.ones(2, 5, dtype=torch.bool)
    mask[0, 2:4] = False
    with torch.no_grad():
        _, alpha = tower.chunk_weights(torch.randn(2, 5, 3), mask)
    assert alpha.shape == (2, 3)  # 5 segments in chunks of 2: the last chunk is padded
    torch.testing.assert_close(alpha.sum(1), torch.ones(2))
    assert alpha[0, 1] == 0 and (alpha[1] > 0).all()


def test_nan_segments_are_padding_at_the_estimator_level(data):
    views, y, test_views, _ = data
    model = small("attention").fit(views, y)
    a, v = (t[:5].copy() for t in test_views)
    short = [a[i, :7] for i in range(5)]
    padded = pad_sequences(short, n_segments=10)
    assert np.isnan(padded[:, 7:]).all()
    z_pad = model.transform([padded, v])[0]
    z_full = model.transform([a, v])[0]
    assert np.isfinite(z_pad).all() and not np.allclose(z_pad, z_full)
    a2 = a.copy()
    a2[:, 7:] = np.nan
    np.testing.assert_array_equal(model.transform([a2, v])[0], z_pad)
    bad = a.copy()
    bad[0, 3, 0] = np.nan
    with pytest.raises(ValueError, match="item 0 has a segment only partly NaN"):
        model.transform([bad, v])
    empty = a.copy()
    empty[2] = np.nan
    with pytest.raises(ValueError, match="item 2 has no real segment"):
        model.transform([empty, v])


# ---------------------------------------------------------------------- estimator contract
@pytest.mark.parametrize("name", sorted(_SMALL))
def test_seeded_fit_is_deterministic(data, name):
    views, y, test_views, _ = data
    a = small(name, random_state=3).fit(views, y).transform(test_views)
    b = small(name, random_state=3).fit(views, y).transform(test_views)
    c = small(name, random_state=4).fit(views, y).transform(test_views)
    for u, w in zip(a, b):
        np.testing.assert_array_equal(u, w)
    assert not np.allclose(a[0], c[0])


@pytest.mark.parametrize("name", sorted(_SMALL))
def test_checkpoint_round_trip_loads_with_weights_only(data, name, tmp_path):
    views, y, test_views, _ = data
    model = small(name).fit(views, y)
    path = model.save(tmp_path / f"{name}.pt")
    payload = torch.load(path, weights_only=True)  # no pickled code in the file
    assert payload["class"] == type(model).__name__
    for loaded in (type(model).load(path), TorchCrossModalEstimator.load(path),
                   registry.load_model(path)):
        assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
        assert loaded.n_segments_ == [10, 10]
        for u, w in zip(model.transform(test_views), loaded.transform(test_views)):
            np.testing.assert_array_equal(u, w)


@pytest.mark.parametrize("name", sorted(_SMALL))
def test_wrong_input_shapes_are_clear_errors(data, name):
    views, y, test_views, _ = data
    flat = [v.mean(axis=1) for v in views]
    with pytest.raises(ValueError, match=r"is a sequence model: views\[0\] must be \(n, T, d\) segment sequences"):
        small(name).fit(flat, y)
    model = small(name).fit(views, y)
    with pytest.raises(ValueError, match="sequence model"):
        model.transform([test_views[0].mean(axis=1), test_views[1]])
    with pytest.raises(ValueError, match=r"views\[1\] has 12 features per segment, the model was fitted with 16"):
        model.transform([test_views[0], test_views[0]])
    with pytest.raises(ValueError, match="has 8 segments, the model was fitted with 10"):
        model.transform([test_views[0][:, :8], test_views[1]])
    with pytest.raises(ValueError, match="takes 2 views, got 1"):
        small(name).fit(views[:1], y)


def test_a_flat_model_given_sequences_names_the_problem(data):
    views, y, _, _ = data
    with pytest.raises(ValueError, match=r"views\[0\] is a sequence view .* pass its time average or use a sequence model"):
        DCCA(n_components=2, hidden=(4,), epochs=1, progress=False).fit(views)


def test_supervision_rules(data):
    views, y, _, _ = data
    with pytest.raises(ValueError, match="supervised"):
        small("lstm-ccca").fit(views)
    small("attention").fit(views)  # beta = 1: unsupervised DCCA objective
    with pytest.raises(ValueError, match="needs class labels y"):
        small("attention", beta=0.5).fit(views)
    small("transformer").fit(views)  # InfoNCE only


@pytest.mark.parametrize("name, params", [
    ("lstm-ccca", dict(epochs=8, lr=3e-3)),
    ("attention", dict(epochs=8, beta=0.2)),
    ("transformer", dict(epochs=8, lr=2e-3, batch_size=64)),
])
def test_small_fit_beats_chance(data, name, params):
    views, y, test_views, y_test = data
    model = small(name, **params).fit(views, y)
    za, zv = model.transform(test_views)
    chance = np.mean(np.bincount(y_test) / len(y_test))  # MAP of a random ranking ~ class frequency
    m_av, m_va = map_both_directions(za, zv, y_test)
    assert min(m_av, m_va) > chance + 0.15, (m_av, m_va, chance)


def test_check_sequence_views_returns_masks():
    x = pad_sequences([np.ones((3, 2)), np.ones((5, 2))])
    ((a, m),) = check_sequence_views([x], "M", n_views=1)
    assert a.shape == (2, 5, 2) and (a[0, 3:] == 0).all()
    np.testing.assert_array_equal(m, [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])


# ---------------------------------------------------------------------- the music dataset's sequences
@pytest.fixture(scope="module")
def music():
    from crossmodal_core.data.music.build import load_music_dataset
    from crossmodal_core.store import assets_dir

    folder = assets_dir() / "datasets" / "music21_lyrics"
    if not (folder / "dataset.npz").exists():
        pytest.skip("no committed music dataset")
    return load_music_dataset(folder)[0]


def test_music_sheet_seq_is_time_aligned_with_audio_seq(music):
    """Per fragment, the audio's loudness over the ten segments follows the fraction of each
    segment in which a note sounds; it does not when one of them is reversed or shifted."""
    assert music.views["sheet_seq"].shape == (music.n_items, 10, 32)
    loud = music.views["audio_seq"].mean(axis=2)
    sounding = music.views["sheet_seq"][:, :, 24]

    def corr(x, z):
        x, z = x - x.mean(1, keepdims=True), z - z.mean(1, keepdims=True)
        return np.nanmean((x * z).sum(1) / np.sqrt((x * x).sum(1) * (z * z).sum(1) + 1e-12))

    aligned = corr(loud, sounding)
    assert aligned > 0.6
    assert aligned > corr(loud, sounding[:, ::-1]) + 0.3 and aligned > corr(loud[:, 1:], sounding[:, :-1]) + 0.3


def test_a_sequence_model_runs_on_the_music_sequences(music):
    from crossmodal_core.evaluate import paired_metrics

    rows = np.random.default_rng(0).permutation(music.n_items)[:900]
    a, s = music.views["audio_seq"][rows], music.views["sheet_seq"][rows]
    model = small("attention", epochs=4, batch_size=300).fit([a[:700], s[:700]])  # unsupervised, paired
    za, zs = model.transform([a[700:], s[700:]])
    out = paired_metrics(za, zs, ks=(10,))
    assert out["R@10"] > 3 * 10 / 200, out  # chance: 10 of 200
