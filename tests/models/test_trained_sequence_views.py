"""The model store with sequence models: which views they train on, and the error without any."""

import numpy as np
import pytest

from crossmodal_core.data.dataset import CrossModalDataset
from crossmodal_core.data.synthetic import make_synthetic_av
from crossmodal_core.models import trained


def _music_like(rng, n=40):
    return CrossModalDataset(
        views={"audio": rng.standard_normal((n, 6)), "sheet": rng.standard_normal((n, 5)),
               "lyrics": rng.standard_normal((n, 4)), "audio_seq": rng.standard_normal((n, 10, 3)),
               "sheet_seq": rng.standard_normal((n, 10, 2))},
        labels={"work": np.arange(n) % 4}, class_names={"work": [f"w{i}" for i in range(4)]},
        item_ids=np.array([f"i{i}" for i in range(n)]), name="music-like",
    ).validate()


def test_sequence_models_pick_sequence_views(rng):
    syn = make_synthetic_av(n_train=40, n_test=20, dims=(4, 6), sequences=True)
    assert trained.is_sequence_model("attention") and not trained.is_sequence_model("ugaar")
    assert trained.model_views(syn, "lstm-ccca") == ("audio_seq", "visual_seq")
    assert trained.model_views(syn, "lstm-ccca", ("audio", "visual")) == ("audio_seq", "visual_seq")
    music = _music_like(rng)
    assert trained.model_views(music, "transformer") == ("audio_seq", "sheet_seq")
    assert trained.model_views(music, "transformer", ("sheet", "audio")) == ("sheet_seq", "audio_seq")
    assert trained.embedding_names(music, ("audio_seq", "sheet_seq")) == ("audio", "sheet")
    assert trained.model_views(music, "cca", ("audio", "sheet")) == ("audio", "sheet")  # flat models unchanged


def test_sequence_model_without_sequence_views_is_a_clear_error(rng):
    flat = make_synthetic_av(n_train=40, n_test=20, dims=(4, 6))
    with pytest.raises(ValueError, match="LSTM-C-CCA is a sequence model: .* has no sequence view"):
        trained.model_views(flat, "lstm-ccca")
    with pytest.raises(ValueError, match=r"for the views \['audio', 'lyrics'\]"):
        trained.model_views(_music_like(rng), "attention", ("audio", "lyrics"))


def test_a_sequence_model_is_stored_under_its_modalities_and_found_by_the_flat_pair(tmp_path):
    from crossmodal_core.data.catalog import DatasetEntry, LoadedDataset

    ds = make_synthetic_av(n_train=120, n_test=40, n_classes=3, dims=(4, 6), sequences=True)
    data = LoadedDataset(DatasetEntry("unit-seq", "unit", "path", tmp_path), ds, None, "unit-seq-key")
    params = dict(n_components=2, hidden=8, attention_dim=4, out_features=4, epochs=1, batch_size=60, progress=False)
    model = trained.train_and_store(data, "attention", ("audio", "visual"), "class", params=params)
    assert model.views == ("audio", "visual") and model.info["input_views"] == ["audio_seq", "visual_seq"]
    assert model.info["test_map"] is not None and model.embeddings["audio"].shape == (160, 2)
    found = trained.find_trained(data, "attention", ("audio", "visual"), "class")
    assert found is not None and set(trained.load_embeddings(found)) == {"audio", "visual"}
    loaded = trained.load_model_object(found)
    z = loaded.transform([ds.views["audio_seq"][:5], ds.views["visual_seq"][:5]])
    np.testing.assert_allclose(z[0], model.embeddings["audio"][:5], rtol=1e-5, atol=1e-5)
