"""Models by name: names, display names, lazy failures, and pickle-free storage."""

import json

import numpy as np
import pytest

from crossmodal_core import store
from crossmodal_core.models import registry

pytestmark = pytest.mark.filterwarnings("ignore:(Cluster)?CCA.*exceeds:UserWarning")


def test_names_display_and_supervision():
    assert registry.MODEL_NAMES[:9] == ("cca", "kcca", "ccca", "ckcca", "dcca", "cdcca", "tnn-ccca", "contrastive",
                                        "ugaar")
    flat_models = ("acmr", "ugach", "agah", "ucal", "sdcca", "vae")
    assert set(flat_models) <= set(registry.MODEL_NAMES)
    assert registry.MODEL_NAMES[-3:] == ("lstm-ccca", "attention", "transformer")  # the sequence block, last
    assert registry.display_name("tnn-ccca") == "TNN-C-CCA"
    assert registry.display_name("C-CCA") == "C-CCA"  # display names are accepted as names
    assert registry.get_spec("TNN-C-CCA").name == "tnn-ccca"
    assert [n for n in registry.MODEL_NAMES[:9] if registry.is_supervised(n)] == ["ccca", "ckcca", "cdcca",
                                                                                "tnn-ccca", "contrastive"]
    assert [n for n in flat_models if registry.is_supervised(n)] == ["acmr", "agah", "sdcca", "vae"]
    assert [n for n in registry.MODEL_NAMES[-3:] if registry.is_supervised(n)] == ["lstm-ccca", "transformer"]
    assert registry.get_spec("ugaar").views == ("sheet", "lyrics", "audio")
    with pytest.raises(KeyError, match="unknown model 'xyz'; known models: cca, kcca"):
        registry.get_spec("xyz")


def test_make_model_applies_defaults_and_overrides():
    model = registry.make_model("ccca", reg=0.05)
    assert type(model).__name__ == "ClusterCCA"
    assert model.get_params()["n_components"] == 10 and model.get_params()["reg"] == 0.05
    with pytest.raises(TypeError, match="bad parameters for model 'cca'"):
        registry.make_model("cca", no_such_param=1)


def test_unavailable_module_fails_only_that_name(monkeypatch):
    spec = registry.ModelSpec("ghost", "Ghost", "crossmodal_core.models.not_written_yet", "Ghost", False, "deep")
    monkeypatch.setitem(registry.MODELS, "ghost", spec)
    with pytest.raises(registry.ModelUnavailableError, match="model 'ghost' \\(Ghost\\) is unavailable"):
        registry.make_model("ghost")
    status = registry.available_models()
    assert status["cca"] is None  # the others are unaffected


@pytest.mark.parametrize("name, params", [("cca", {}), ("ccca", {"n_components": 3}),
                                          ("kcca", {"n_nystroem": 40}), ("ckcca", {"n_nystroem": 40})])
def test_linear_models_round_trip_without_pickle(tmp_path, rng, name, params):
    y = np.arange(120) % 4
    views = [rng.standard_normal((120, 6)) + y[:, None], rng.standard_normal((120, 9)) - y[:, None]]
    model = registry.make_model(name, **params).fit(views, y if registry.is_supervised(name) else None)
    path = registry.save_model(model, tmp_path / f"{name}.npz", name=name, extra={"dataset": "unit"})
    with np.load(path, allow_pickle=False) as z:  # loads without pickle
        header = json.loads(str(z["__model__"]))
    assert header["name"] == name and header["extra"] == {"dataset": "unit"}
    loaded = registry.load_model(path)
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    new = [rng.standard_normal((7, 6)), rng.standard_normal((7, 9))]
    for a, b in zip(model.transform(new), loaded.transform(new)):
        np.testing.assert_array_equal(a, b)
    assert loaded.stored_info_["dataset"] == "unit"


def test_load_refuses_foreign_classes_and_bad_files(tmp_path):
    tree = {"format": "crossmodal.linear-estimator", "version": 1, "name": "x", "skipped": [], "extra": {},
            "model": {"__estimator__": "os:system", "params": {"__dict__": {}}, "fitted": {}}}
    path = tmp_path / "evil.npz"
    store.atomic_save_npz(path, __model__=np.array(json.dumps(tree)))
    with pytest.raises(ValueError, match="refuses to build class 'os:system'"):
        registry.load_model(path)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="junk.npz: not a readable stored model"):
        registry.load_model(junk)
    with pytest.raises(FileNotFoundError):
        registry.load_model(tmp_path / "missing.npz")


def test_unfitted_model_is_not_saved(tmp_path):
    with pytest.raises(ValueError, match="unfitted"):
        registry.save_model(registry.make_model("cca"), tmp_path / "m.npz")


def test_class_is_the_named_attribute_of_the_spec_module(monkeypatch):
    """No search of submodules: ``spec.module`` must export ``spec.class_name`` itself."""
    from crossmodal_core.models import linear

    assert registry.model_class("ccca") is linear.ClusterCCA
    spec = registry.ModelSpec("hidden", "Hidden", "crossmodal_core.models", "TNNClusterCCA", False, "deep")
    monkeypatch.setitem(registry.MODELS, "hidden", spec)
    with pytest.raises(registry.ModelUnavailableError, match="crossmodal_core.models.TNNClusterCCA"):
        registry.model_class("hidden")


def test_a_spec_resolves_to_itself_and_carries_views_and_defaults():
    spec = registry.get_spec("tnn-ccca")
    assert registry.get_spec(spec) is spec and registry.display_name(spec) == "TNN-C-CCA"
    assert registry.get_spec("cca").defaults == {"n_components": 10, "reg": 1e-3}
    assert {registry.get_spec(n).family for n in registry.MODEL_NAMES} == {"linear", "deep"}
    model = registry.make_model(registry.get_spec("cca"), n_components=3)
    assert model.get_params()["n_components"] == 3


def test_parameter_names_are_the_constructor_parameters():
    import inspect

    from crossmodal_core.models import registry

    for name in ("cca", "ccca", "kcca"):
        cls = registry.model_class(name)
        want = sorted(p for p in inspect.signature(cls.__init__).parameters if p != "self")
        assert sorted(registry.parameter_names(name)) == want
        assert set(registry.get_spec(name).defaults) <= set(want)


def test_sequence_models_default_to_the_sequence_views():
    for name in ("lstm-ccca", "attention", "transformer"):
        spec = registry.get_spec(name)
        assert spec.views == registry.SEQUENCE_VIEWS == ("audio_seq", "visual_seq") and spec.family == "deep"
        assert set(spec.defaults) <= set(registry.parameter_names(name))
    assert registry.get_spec("LSTM_C_CCA").name == "lstm-ccca"
