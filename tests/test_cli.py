"""The command line: evaluate / train / build-music / prepare, and clear argument errors."""

import json
import subprocess
import sys

import numpy as np
import pytest

from crossmodal_core import cli
from crossmodal_core.data.io import save_dataset
from crossmodal_core.data.synthetic import make_synthetic_av
from crossmodal_core.store import REPO_ROOT

pytestmark = pytest.mark.filterwarnings("ignore:(Cluster)?CCA.*exceeds:UserWarning")


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    ds = make_synthetic_av(n_train=300, n_test=100, n_classes=5, dims=(8, 12), seed=1, name="cli-syn")
    return save_dataset(ds, tmp_path_factory.mktemp("cli") / "cli-syn.h5")


def test_evaluate_writes_json_csv_and_prints_the_table(data_file, tmp_path, capsys):
    out = tmp_path / "res.json"
    rc = cli.main(["evaluate", "--data", str(data_file), "--models", "cca,c-cca", "--folds", "2",
                   "--out", str(out), "--no-progress", "--param", "ccca.n_components=4"])
    assert rc == 0
    printed = capsys.readouterr()
    assert "C-CCA" in printed.out and "MAP a→v" in printed.out
    assert str(out) in printed.err
    data = json.loads(out.read_text())
    assert set(data["models"]) == {"cca", "ccca"} and data["protocol"]["n_folds"] == 2
    assert data["models"]["ccca"]["params"] == {"n_components": 4}
    assert data["models"]["ccca"]["fitted_params"]["n_components"] == 4
    assert out.with_suffix(".csv").read_text().startswith("dataset,model,display,subset,direction,fold,map")


def test_evaluate_zero_shot_and_split(data_file, tmp_path):
    out = tmp_path / "zs.json"
    rc = cli.main(["evaluate", "--data", str(data_file), "--models", "ccca", "--split", "--unseen-classes", "1,3",
                   "--out", str(out), "--no-progress"])
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["protocol"]["kind"] == "zero-shot" and data["protocol"]["mode"] == "split"
    assert data["protocol"]["zero_shot"]["unseen_classes"] == [1, 3]
    assert set(data["models"]["ccca"]["folds"][0]["metrics"]) == {"unseen", "seen"}


@pytest.mark.parametrize("argv, message", [
    (["--models", "cca,nope"], "unknown model 'nope'"),
    (["--views", "audio,sheet"], "has no view 'sheet'"),
    (["--label", "genre"], "has no label set 'genre'"),
    (["--split", "--folds", "3"], "--split and --folds exclude each other"),
    (["--param", "bogus=1"], "no evaluated model has a parameter 'bogus'"),
    (["--out", "res.txt"], "--out must be a .json path"),
])
def test_evaluate_argument_errors_are_clear(data_file, capsys, argv, message):
    rc = cli.main(["evaluate", "--data", str(data_file), "--no-progress", *argv])
    assert rc == 2
    assert message in capsys.readouterr().err


def test_unreadable_data_names_the_file(tmp_path, capsys):
    bad = tmp_path / "broken.h5"
    bad.write_text("not hdf5")
    assert cli.main(["evaluate", "--data", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "broken.h5" in err and "not a readable HDF5 file" in err


@pytest.mark.parametrize("argv", [["evaluate", "--data", "x.h5", "--zero-shot", "1.5"],
                                  ["evaluate", "--data", "x.h5", "--folds", "0"],
                                  ["evaluate"], []])
def test_argparse_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_train_saves_a_model_that_reloads(data_file, tmp_path):
    from crossmodal_core.data.io import load_dataset
    from crossmodal_core.models import registry

    out = tmp_path / "ccca.npz"
    assert cli.main(["train", "--data", str(data_file), "--model", "ccca", "--out", str(out),
                     "--param", "n_components=3"]) == 0
    model = registry.load_model(out)
    ds = load_dataset(data_file)
    train = ds.split == "train"
    fresh = registry.make_model("ccca", n_components=3).fit(
        [ds.views["audio"][train], ds.views["visual"][train]], ds.labels["class"][train])
    for a, b in zip(model.transform([ds.views["audio"], ds.views["visual"]]),
                    fresh.transform([ds.views["audio"], ds.views["visual"]])):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    info = json.loads(out.with_suffix(".info.json").read_text())
    assert info["n_train"] == 300 and info["views"] == ["audio", "visual"]


def test_build_music_delegates(monkeypatch, tmp_path):
    import crossmodal_core.data.music as music

    calls = {}

    def fake_build(out_dir=None, collections=None, limit=None, jobs=2, **kw):
        calls.update(out_dir=out_dir, collections=collections, limit=limit, jobs=jobs)
        return make_synthetic_av(n_train=20, n_test=10, dims=(2, 3))

    monkeypatch.setattr(music, "build_music_dataset", fake_build)
    assert cli.main(["build-music", "--out", str(tmp_path), "--collections", "bach,songs", "--limit", "3",
                     "--jobs", "1"]) == 0
    assert calls == {"out_dir": str(tmp_path), "collections": ["bach", "songs"], "limit": 3, "jobs": 1}


@pytest.mark.slow
def _tiny_synthetic_fallback(monkeypatch):
    """prepare falls back to the small synthetic set; these tests check the fallback, not the
    set, so it is generated tiny (the real one carries 230 MB of sequence views since issue 11)."""
    from crossmodal_core.data import catalog

    small = dict(catalog.SYNTHETIC_SIZES["synthetic-vegas-small"], n_train=200, n_test=50, dims=(8, 12))
    monkeypatch.setitem(catalog.SYNTHETIC_SIZES, "synthetic-vegas-small", small)


def test_prepare_survives_a_failing_piece_and_skips_what_exists(monkeypatch, tmp_path, capsys):
    """The music build fails: prepare says so, trains on the synthetic set, and a second run
    skips the trained model."""
    import crossmodal_core.data.music as music

    monkeypatch.setenv("CROSSMODAL_ASSETS", str(tmp_path / "assets"))
    monkeypatch.setenv("CROSSMODAL_HOME", str(tmp_path / "home"))

    def failing_build(*args, **kwargs):
        raise OSError("soundfont missing")

    monkeypatch.setattr(music, "build_music_dataset", failing_build)
    _tiny_synthetic_fallback(monkeypatch)
    assert cli.main(["prepare", "--models", "cca,nope-model", "--no-projections"]) == 0
    err = capsys.readouterr().err
    assert "build failed (OSError: soundfont missing)" in err
    assert "nope-model" in err and "finished with problems" in err
    trained = list((tmp_path / "home" / "models").rglob("info.json"))
    assert len(trained) == 1
    assert cli.main(["prepare", "--models", "cca", "--no-projections"]) == 0
    assert "model cca: already trained, skipped" in capsys.readouterr().err


def test_module_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "crossmodal_core", "evaluate", "--help"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert "--zero-shot" in proc.stdout and "--limit-train" in proc.stdout


@pytest.mark.slow
def test_prepare_skips_a_built_dataset_and_falls_back_when_it_cannot_open(monkeypatch, tmp_path, capsys):
    import crossmodal_core.data.music as music

    monkeypatch.setenv("CROSSMODAL_ASSETS", str(tmp_path / "assets"))
    monkeypatch.setenv("CROSSMODAL_HOME", str(tmp_path / "home"))
    built = tmp_path / "assets" / "datasets" / "music21_lyrics"
    built.mkdir(parents=True)
    (built / "dataset.npz").write_bytes(b"corrupt")
    (built / "fragments.json").write_text("[]")
    (built / "build_info.json").write_text("{}")
    monkeypatch.setattr(music, "build_music_dataset", lambda *a, **k: pytest.fail("must not rebuild"))
    _tiny_synthetic_fallback(monkeypatch)
    assert cli.main(["prepare", "--models", "cca", "--no-projections"]) == 0
    err = capsys.readouterr().err
    assert "present, skipped" in err and "cannot open music" in err
    assert len(list((tmp_path / "home" / "models").rglob("info.json"))) == 1  # trained on the synthetic set


def test_every_command_takes_threads_and_applies_it_first(data_file, tmp_path, monkeypatch, capsys):
    import crossmodal_core.runtime as runtime

    calls = []
    monkeypatch.setattr(runtime, "limit_threads", calls.append)
    rc = cli.main(["evaluate", "--data", str(data_file), "--models", "cca", "--folds", "2", "--threads", "1",
                   "--out", str(tmp_path / "t.json"), "--no-progress"])
    assert rc == 0 and calls == [1]
    for command in ("evaluate", "train", "build-music", "project", "prepare"):
        with pytest.raises(SystemExit) as exit_info:
            cli.main([command, "--data", "x", "--model", "cca", "--threads", "0"])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert "--threads" in err and "expected a positive integer, got 0" in err, err


# ---------------------------------------------------------------- one model store, checked outputs
def test_train_stores_where_the_app_looks(data_file, capsys):
    from crossmodal_core.data import catalog
    from crossmodal_core.models import trained

    assert cli.main(["train", "--data", str(data_file), "--model", "cca"]) == 0
    path = capsys.readouterr().out.strip()
    data = catalog.open_dataset(str(data_file), allow_path=True)
    stored = trained.list_trained(data)
    assert [str(m.path) for m in stored] == [path]
    model = stored[0]
    assert model.name == "cca" and model.views == ("audio", "visual") and model.label_name == "class"
    assert trained.find_trained(data, "cca", ("visual", "audio"), "class") is not None
    assert model.info["n_train"] == 300 and len(model.info["test_map"]) == 2
    emb = trained.load_embeddings(model)
    assert emb["audio"].shape[0] == data.dataset.n_items
    assert type(trained.load_model_object(model)).__name__ == "CCA"


def test_train_refuses_to_overwrite_its_input_or_a_directory(data_file, tmp_path, capsys):
    before = data_file.read_bytes()
    for out in (str(data_file), str(data_file.parent / "." / data_file.name)):
        assert cli.main(["train", "--data", str(data_file), "--model", "cca", "--out", out]) == 2
        assert "is the input dataset file itself" in capsys.readouterr().err
    assert data_file.read_bytes() == before
    assert cli.main(["train", "--data", str(data_file), "--model", "cca", "--out", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert cli.main(["train", "--data", str(data_file), "--model", "cca", "--out", str(tmp_path / "m.pt")]) == 2
    assert "stored as .npz" in capsys.readouterr().err
    # a deep model's checkpoint is a .pt: an .npz name would make a file load_model cannot read
    assert cli.main(["train", "--data", str(data_file), "--model", "tnn-ccca", "--out", str(tmp_path / "m.npz")]) == 2
    assert "stored as .pt" in capsys.readouterr().err
    assert not (tmp_path / "m.npz").exists()


def test_train_never_writes_over_committed_assets_unless_named(data_file, tmp_path, monkeypatch, capsys):
    assets = tmp_path / "assets"
    monkeypatch.setenv("CROSSMODAL_ASSETS", str(assets))
    (assets / "models").mkdir(parents=True)
    committed = assets / "models" / "m.info.json"
    committed.write_text("committed")
    rc = cli.main(["train", "--data", str(data_file), "--model", "cca", "--out", str(assets / "models" / "m.npz")])
    assert rc == 2 and "committed file" in capsys.readouterr().err
    assert committed.read_text() == "committed" and not (assets / "models" / "m.npz").exists()


def one_class_file(tmp_path):
    """A readable dataset no supervised CCA can fit: every item has the same class."""
    from crossmodal_core.data.dataset import CrossModalDataset

    rng = np.random.default_rng(3)
    ds = CrossModalDataset(views={"audio": rng.standard_normal((90, 4)), "visual": rng.standard_normal((90, 5))},
                           labels={"class": np.zeros(90, dtype=np.int64)}, class_names={"class": ["only"]},
                           split=np.array(["train"] * 60 + ["test"] * 30), name="one-class")
    return save_dataset(ds, tmp_path / "one-class.npz")


def test_evaluate_writes_nothing_when_every_model_failed(tmp_path, monkeypatch, capsys):
    from crossmodal_core import store

    monkeypatch.setenv("CROSSMODAL_HOME", str(tmp_path / "home"))
    path = one_class_file(tmp_path)
    rc = cli.main(["evaluate", "--data", str(path), "--models", "ccca", "--folds", "2", "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "no model succeeded" in err and "nothing written" in err and "Traceback" not in err
    assert not store.user_results_dir().exists() or not list(store.user_results_dir().iterdir())


def test_evaluate_writes_the_users_results_not_the_committed_ones(data_file, tmp_path, monkeypatch, capsys):
    from crossmodal_core import store

    assets, home = tmp_path / "assets", tmp_path / "home"
    monkeypatch.setenv("CROSSMODAL_ASSETS", str(assets))
    monkeypatch.setenv("CROSSMODAL_HOME", str(home))
    (assets / "results").mkdir(parents=True)
    committed = assets / "results" / "cli-syn.json"
    committed.write_text("{}")
    assert cli.main(["evaluate", "--data", str(data_file), "--models", "cca", "--folds", "2", "--no-progress"]) == 0
    assert committed.read_text() == "{}"
    assert (store.user_results_dir() / "cli-syn.json").is_file()
    assert (store.user_results_dir() / "cli-syn.csv").is_file()
    # naming the committed file is the user's explicit choice
    assert cli.main(["evaluate", "--data", str(data_file), "--models", "cca", "--folds", "2", "--no-progress",
                     "--out", str(committed)]) == 0
    assert json.loads(committed.read_text())["models"]["cca"]["error"] is None


# ---------------------------------------------------------------- one line per user error, exit 2
@pytest.mark.parametrize("argv, message", [
    (["--model", "nope"], "unknown model 'nope'"),
    (["--model", "cca", "--param", "no_such=1"], "bad parameters for model 'cca'"),
    (["--model", "cca", "--param", "n_components=0"], "CCA cannot be fitted on 'cli-syn': n_components must be"),
    (["--model", "cca", "--views", "audio,sheet"], "has no view 'sheet'"),
])
def test_train_user_errors_are_one_line(data_file, capsys, argv, message):
    assert cli.main(["train", "--data", str(data_file), *argv]) == 2
    err = capsys.readouterr().err.strip()
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in err, err


def test_impossible_fit_and_bad_file_are_one_line(tmp_path, capsys):
    path = one_class_file(tmp_path)
    assert cli.main(["train", "--data", str(path), "--model", "ccca"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("python -m crossmodal_core train: error: C-CCA cannot be fitted on 'one-class'")
    assert not any("Traceback" in line for line in err)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK not a zip")
    assert cli.main(["train", "--data", str(bad), "--model", "cca"]) == 2
    err = capsys.readouterr().err.strip()
    assert "bad.npz" in err and len(err.splitlines()) == 1
    assert cli.main(["evaluate", "--data", "file:../../etc/passwd"]) == 2
    assert "no dataset" in capsys.readouterr().err


def test_internal_errors_say_how_to_see_the_traceback(data_file, monkeypatch, capsys):
    from crossmodal_core.models import trained

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(trained, "train_and_store", broken)
    assert cli.main(["train", "--data", str(data_file), "--model", "cca"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.splitlines()[-1] == ("python -m crossmodal_core train: internal error: RuntimeError: a bug "
                                    "(run with --debug for the traceback)")
    assert "Traceback" not in err
    for argv in (["--debug", "train"], ["train", "--debug"]):
        assert cli.main([*argv, "--data", str(data_file), "--model", "cca"]) == 1
        err = capsys.readouterr().err
        assert "Traceback (most recent call last)" in err and "RuntimeError: a bug" in err
    assert cli.main(["--debug", "train", "--data", str(data_file), "--model", "nope"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_the_cli_cleans_stale_temporaries_when_it_starts(data_file, monkeypatch):
    from crossmodal_core import store

    calls = []
    monkeypatch.setattr(store, "clean_stale_temporaries", lambda *roots: calls.append(roots) or [])
    assert cli.main(["train", "--data", str(data_file), "--model", "cca"]) == 0
    assert calls == [()]


def test_models_all_is_every_registry_model_and_skips_what_the_views_do_not_allow(data_file, tmp_path,
                                                                                  monkeypatch, capsys):
    from crossmodal_core import evaluate as ev
    from crossmodal_core.models import registry

    assert [s.name for s in cli._resolve_models(["all"])] == list(registry.MODEL_NAMES)
    assert [s.name for s in cli._resolve_models(["cca", "ALL"])] == list(registry.MODEL_NAMES)
    for name in ("acmr", "ugach", "agah", "ucal", "lstm-ccca", "sdcca", "vae", "attention", "transformer"):
        assert name in registry.MODEL_NAMES
    calls = {}

    def fake(ds, models, **kw):
        calls["models"], calls["limit"], calls["params"] = list(models), kw["limit_train"], kw["model_params"]
        return {"models": {m: {"error": None} for m in models}, "rows": []}

    monkeypatch.setattr(ev, "evaluate", fake)
    monkeypatch.setattr(ev, "write_results", lambda res, out: (out, out.with_suffix(".csv")))
    monkeypatch.setattr(ev, "format_table", lambda res: "table")
    rc = cli.main(["evaluate", "--data", str(data_file), "--models", "all", "--out", str(tmp_path / "a.json"),
                   "--limit-train", "200,lstm-c-cca=50", "--no-progress",
                   "--param", "lstm-ccca.epochs=2", "--param", "dcca.epochs=3"])  # the same budget line for every file
    err = capsys.readouterr().err
    assert rc == 0
    # a flat file without sequence views: the sequence models and UGAAR are named and skipped
    skipped = {"ugaar", "lstm-ccca", "attention", "transformer"}
    assert calls["models"] == [m for m in registry.MODEL_NAMES if m not in skipped]
    assert all(f"skipping {m}" in err for m in skipped)
    assert calls["limit"] == {"*": 200, "lstm-ccca": 50} and calls["params"]["dcca"] == {"epochs": 3}
    seq_file = save_dataset(make_synthetic_av(n_train=60, n_test=20, n_classes=3, dims=(4, 6), sequences=True),
                            tmp_path / "seq.npz")
    assert cli.main(["evaluate", "--data", str(seq_file), "--models", "all", "--out", str(tmp_path / "b.json"),
                     "--no-progress"]) == 0
    assert calls["models"] == [m for m in registry.MODEL_NAMES if m != "ugaar"]
    with pytest.raises(SystemExit) as exc:
        cli.main(["evaluate", "--data", str(data_file), "--models", "all", "--limit-train", "5,5"])
    assert exc.value.code == 2 and "names '*' twice" in capsys.readouterr().err


def test_limit_train_naming_one_model_twice_through_an_alias_is_refused(data_file, tmp_path, monkeypatch, capsys):
    """'lstm-ccca' and its display name 'LSTM-C-CCA' are the same model: two caps for it are an
    error (as 'cca=1,cca=2' is), not a silent choice of the last one."""
    from crossmodal_core import evaluate as ev

    calls = {}

    def fake(ds, models, **kw):
        calls["limit"] = kw["limit_train"]
        return {"models": {m: {"error": None} for m in models}, "rows": []}

    monkeypatch.setattr(ev, "evaluate", fake)
    monkeypatch.setattr(ev, "write_results", lambda res, out: (out, out.with_suffix(".csv")))
    monkeypatch.setattr(ev, "format_table", lambda res: "table")
    rc = cli.main(["evaluate", "--data", str(data_file), "--models", "cca", "--out", str(tmp_path / "a.json"),
                   "--limit-train", "lstm-ccca=800,LSTM-C-CCA=50", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "lstm-ccca" in err and "twice" in err and "Traceback" not in err
    assert "limit" not in calls
