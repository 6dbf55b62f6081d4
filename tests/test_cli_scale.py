"""The command line at scale: ``convert`` streams a dataset into chunked Zarr, ``--scheduler``
computes the linear fits' statistics on a Dask cluster with the same results."""

import json

import h5py
import numpy as np
import pytest

from crossmodal_core import cli
from crossmodal_core.data import io as dio
from crossmodal_core.data.lazy import LazyArray

pytestmark = pytest.mark.filterwarnings("ignore:(Cluster)?CCA.*exceeds:UserWarning")


@pytest.fixture(scope="module")
def vegas_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("scale-cli") / "vegas.h5"
    with h5py.File(path, "w") as f:
        for split, n in (("train", 400), ("test", 150)):
            lab = np.arange(n) % 5
            f.create_dataset(f"audio_{split}", data=(rng.standard_normal((n, 8)) + lab[:, None]).astype(np.float32),
                             chunks=(64, 8))
            f.create_dataset(f"visual_{split}", data=(rng.standard_normal((n, 12)) - lab[:, None]).astype(np.float32),
                             chunks=(64, 12))
            f.create_dataset(f"{split}_labels", data=lab)
    return path


def test_convert_streams_the_vegas_layout_into_zarr(vegas_file, tmp_path, capsys):
    out = tmp_path / "v.zarr"
    assert cli.main(["convert", str(vegas_file), str(out), "--chunk-mb", "1"]) == 0
    assert str(out) in capsys.readouterr().out
    opened = dio.load_dataset(out)
    assert isinstance(opened.views["audio"], LazyArray)
    whole = dio.load_dataset(vegas_file, lazy=False)
    np.testing.assert_array_equal(np.asarray(opened.views["visual"]), whole.views["visual"])
    np.testing.assert_array_equal(opened.split, whole.split)
    assert cli.main(["convert", str(vegas_file), str(tmp_path / "v.h5")]) == 2  # not a .zarr output


def test_scheduler_gives_the_same_results(vegas_file, tmp_path):
    distributed = pytest.importorskip("distributed")
    zarr_path = tmp_path / "v.zarr"
    assert cli.main(["convert", str(vegas_file), str(zarr_path)]) == 0
    base = ["evaluate", "--data", str(zarr_path), "--models", "cca,ccca", "--split", "--no-progress",
            "--param", "n_components=3"]
    assert cli.main(base + ["--out", str(tmp_path / "here.json")]) == 0
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
    try:
        assert cli.main(base + ["--out", str(tmp_path / "dask.json"), "--scheduler", cluster.scheduler_address]) == 0
        model = tmp_path / "m.npz"
        assert cli.main(["train", "--data", str(zarr_path), "--model", "ccca", "--param", "n_components=3",
                         "--out", str(model), "--scheduler", cluster.scheduler_address]) == 0
    finally:
        cluster.close()
    here, there = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("here", "dask"))
    for name in ("cca", "ccca"):
        ours = here["models"][name]["summary"]["metrics"]["test"]
        assert ours
        for direction, value in ours.items():
            theirs = there["models"][name]["summary"]["metrics"]["test"][direction]
            assert theirs["map"]["mean"] == pytest.approx(value["map"]["mean"], abs=1e-6)


def test_unreachable_scheduler_is_a_clear_error():
    from crossmodal_core.models.linear import streaming

    with pytest.raises(ValueError, match="cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'"):
        streaming.connect("tcp://127.0.0.1:9", timeout=1)
