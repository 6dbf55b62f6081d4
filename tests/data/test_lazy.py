"""Views that stay on disk: Zarr / chunked HDF5 round trips, LazyArray semantics, the checks
that make an untrusted Zarr folder or HDF5 file safe to open lazily, and the streaming converter."""

import json
import os
import pickle
import shutil

import h5py
import numpy as np
import pytest

from crossmodal_core.data import io as dio
from crossmodal_core.data import lazy
from crossmodal_core.data.dataset import CrossModalDataset, DatasetError


def _dataset(n=300, seed=0):
    rng = np.random.default_rng(seed)
    return CrossModalDataset(
        views={"audio": rng.standard_normal((n, 5)).astype(np.float32),
               "visual": rng.standard_normal((n, 7)),
               "audio_seq": rng.standard_normal((n, 3, 5)).astype(np.float32)},
        labels={"class": np.arange(n) % 4},
        class_names={"class": ["dog", "café", "car", "rain"]},
        item_ids=[f"id-{i}" for i in range(n)],
        metadata={"title": np.array([f"Titel {i} ü" for i in range(n)]), "year": np.arange(n) + 1700},
        folds=np.arange(n) % 3,
        split=np.where(np.arange(n) < 200, "train", "test"),
        name="lazy-test",
        info={"synthetic": True, "nested": {"a": [1, 2]}},
    )


def _same(a: CrossModalDataset, b: CrossModalDataset) -> None:
    assert a.view_names == b.view_names and a.name == b.name and a.info == b.info
    for k in a.views:
        np.testing.assert_array_equal(np.asarray(a.views[k]), np.asarray(b.views[k]))
        assert np.asarray(a.views[k]).dtype == np.asarray(b.views[k]).dtype
    for k in a.labels:
        np.testing.assert_array_equal(a.labels[k], b.labels[k])
    assert a.class_names == b.class_names
    np.testing.assert_array_equal(a.item_ids, b.item_ids)
    for k in a.metadata:
        np.testing.assert_array_equal(a.metadata[k], b.metadata[k])
    np.testing.assert_array_equal(a.folds, b.folds)
    np.testing.assert_array_equal(a.split, b.split)


@pytest.mark.parametrize("suffix", [".zarr", ".h5"])
def test_round_trip_stays_on_disk(tmp_path, suffix):
    ds = _dataset()
    path = dio.save_dataset(ds, tmp_path / f"d{suffix}")
    opened = dio.load_dataset(path, lazy=True)
    assert all(isinstance(v, lazy.LazyArray) for v in opened.views.values())
    _same(ds, opened)
    # subsets (folds) stay on disk and read the right rows, in the order asked
    rows = np.array([5, 3, 299, 0, 150])
    sub = opened.subset(rows)
    assert isinstance(sub.views["visual"], lazy.LazyArray)
    np.testing.assert_array_equal(np.asarray(sub.views["visual"]), ds.views["visual"][rows])
    np.testing.assert_array_equal(sub.views["audio"][1:3], ds.views["audio"][rows[1:3]])
    mask = ds.labels["class"] == 2
    np.testing.assert_array_equal(np.asarray(opened.views["audio_seq"][mask]), ds.views["audio_seq"][mask])
    assert opened.views["audio"][7].shape == (5,) and opened.views["audio"][-1, 2] == ds.views["audio"][-1, 2]
    # writing a dataset whose views are on disk copies them block by block
    again = dio.save_dataset(opened, tmp_path / "copy.zarr")
    _same(ds, dio.load_dataset(again))


def test_lazy_blocks_pickle_and_dask(tmp_path, monkeypatch):
    ds = _dataset(n=1000)
    monkeypatch.setattr(lazy, "BLOCK_BYTES", 1000)  # many small blocks
    path = dio.save_zarr(ds, tmp_path / "d.zarr", chunk_bytes=2000)
    arr = dio.load_dataset(path).views["visual"]
    blocks = list(arr.iter_blocks())
    assert len(blocks) > 5 and all(len(b) % arr.chunk_rows == 0 for _, b in blocks[:-1])
    np.testing.assert_array_equal(np.concatenate([b for _, b in blocks]), ds.views["visual"])
    clone = pickle.loads(pickle.dumps(arr[np.arange(0, 1000, 7)]))  # what a Dask worker gets
    np.testing.assert_array_equal(np.asarray(clone), ds.views["visual"][::7])
    np.testing.assert_allclose(arr.to_dask(64).sum(axis=0).compute(), ds.views["visual"].sum(axis=0), rtol=1e-12)
    # a worker opening a file that was rewritten since it was checked refuses it
    blob = pickle.dumps(arr)
    meta = path / "view" / "visual" / "zarr.json"
    os.utime(meta, ns=(1, 1))
    with pytest.raises(DatasetError, match="changed since it was opened"):
        pickle.loads(blob)


def test_reads_check_nan_and_the_budget(tmp_path, monkeypatch):
    ds = _dataset()
    ds.views["audio"] = np.ones((300, 500), dtype=np.float32)  # 600 KB, the rest about 40 KB
    path = dio.save_dataset(ds, tmp_path / "d.zarr")
    import zarr

    z = zarr.open_array(str(path / "view" / "visual"), mode="r+")
    z[17, 2] = np.nan
    opened = dio.load_dataset(path)  # opening does not read the view...
    with pytest.raises(DatasetError, match=r"view/visual: NaN or inf in row 17"):
        np.asarray(opened.views["visual"])  # ...reading it does
    monkeypatch.setenv("CROSSMODAL_MAX_LOAD_BYTES", "200K")
    with pytest.raises(DatasetError, match="exceeds the memory budget.*stays on disk"):
        np.asarray(dio.load_dataset(path, lazy=True).views["audio"])


def test_auto_and_eager_modes(tmp_path, monkeypatch):
    ds = _dataset()
    h5 = dio.save_dataset(ds, tmp_path / "d.h5")
    assert isinstance(dio.load_dataset(h5).views["audio"], np.ndarray)  # small: read whole
    monkeypatch.setattr(dio, "LAZY_AUTO_BYTES", 100)
    assert isinstance(dio.load_dataset(h5).views["audio"], lazy.LazyArray)
    assert isinstance(dio.load_dataset(h5, lazy=False).views["audio"], np.ndarray)
    zpath = dio.save_dataset(ds, tmp_path / "d.zarr")
    _same(ds, dio.load_dataset(zpath, lazy=False))
    with pytest.raises(DatasetError, match="convert it to .zarr"):
        dio.load_dataset(dio.save_dataset(ds, tmp_path / "d.npz"), lazy=True)


def test_zarr_write_is_atomic(tmp_path, monkeypatch):
    ds = _dataset()
    path = dio.save_dataset(ds, tmp_path / "d.zarr")

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(dio, "write_zarr_arrays", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        dio.save_dataset(_dataset(seed=1), path)
    _same(ds, dio.load_dataset(path))  # the previous folder is intact
    assert [p.name for p in tmp_path.iterdir()] == ["d.zarr"]  # and no temporary is left


# ---------------------------------------------------------------------- hostile Zarr folders
def _meta(path, key):
    return path / key / "zarr.json"


def _edit(path, key, fn):
    file = _meta(path, key)
    meta = json.loads(file.read_text())
    fn(meta)
    file.write_text(json.dumps(meta))


@pytest.mark.parametrize("edit, pattern", [
    (lambda m: m.update(data_type="object"), "data type"),
    (lambda m: m.update(data_type={"name": "variable_length_utf8"}), "data type"),
    (lambda m: m["codecs"].append({"name": "numcodecs.pickle"}), "codec"),
    (lambda m: m.update(codecs=[{"name": "sharding_indexed", "configuration": {}}]), "codec"),
    (lambda m: m.update(storage_transformers=[{"name": "x"}]), "storage transformers"),
    (lambda m: m.update(shape=[10**9, 7]), "lacks the chunk file"),
    (lambda m: m.update(shape="big"), "invalid shape"),
    (lambda m: m.update(zarr_format=2), "not Zarr format 3"),
    (lambda m: m["chunk_grid"]["configuration"].update(chunk_shape=[10**8, 7]), "chunks of"),
    (lambda m: m.update(chunk_key_encoding={"name": "v2"}), "chunk key encoding"),
])
def test_hostile_zarr_metadata_is_refused_before_zarr_reads_it(tmp_path, edit, pattern):
    path = dio.save_dataset(_dataset(), tmp_path / "d.zarr")
    _edit(path, "view/visual", edit)
    with pytest.raises(DatasetError, match=pattern) as err:
        dio.load_dataset(path)
    assert str(path) in str(err.value)


def test_zarr_links_missing_chunks_and_bad_json_are_refused(tmp_path):
    base = dio.save_dataset(_dataset(), tmp_path / "base.zarr")
    secret = tmp_path / "secret"
    secret.write_bytes(b"x" * 100)
    cases = {
        "link": lambda p: (os.remove(p / "view/visual/c/0/0"), os.symlink(secret, p / "view/visual/c/0/0")),
        "missing": lambda p: os.remove(p / "view/audio/c/0/0"),
        "json": lambda p: _meta(p, "label/class").write_text("{not json"),
        "fifo": lambda p: os.mkfifo(p / "view/fifo"),
        "deep json": lambda p: _meta(p, "item_ids").write_text("[" * 100000),
    }
    patterns = {"link": "symbolic link", "missing": "lacks the chunk file", "json": "not valid JSON",
                "fifo": "not a regular file", "deep json": "not valid JSON"}
    for name, damage in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.zarr"
        shutil.copytree(base, path)
        damage(path)
        with pytest.raises(DatasetError, match=patterns[name]):
            dio.load_dataset(path)


def test_uncompressed_zarr_chunk_of_the_wrong_size_is_refused(tmp_path):
    path = dio.save_zarr(_dataset(), tmp_path / "d.zarr", compression=None)
    dio.load_dataset(path)
    chunk = path / "view" / "audio" / "c" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:-4])
    with pytest.raises(DatasetError, match="holds .* bytes, expected"):
        dio.load_dataset(path)


# ---------------------------------------------------------------------- hostile HDF5, lazily
def test_lazy_hdf5_refuses_external_storage_and_unwritten_chunks(tmp_path):
    ds = _dataset()
    good = dio.save_dataset(ds, tmp_path / "good.h5")
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(300 * 5, dtype=np.float32).tobytes())
    bad = tmp_path / "external.h5"
    shutil.copy(good, bad)
    with h5py.File(bad, "a") as f:
        del f["view/audio"]
        f.create_dataset("view/audio", shape=(300, 5), dtype=np.float32, external=[(str(secret), 0, 6000)])
    with pytest.raises(DatasetError, match="external storage"):
        dio.load_dataset(bad, lazy=True)
    holes = tmp_path / "holes.h5"
    shutil.copy(good, holes)
    with h5py.File(holes, "a") as f:
        del f["view/audio"]
        d = f.create_dataset("view/audio", shape=(300, 5), dtype=np.float32, chunks=(10, 5), compression="gzip")
        d[:10] = 1.0  # only the first chunk is written; the rest would read as fill values
    with pytest.raises(DatasetError, match="chunks written"):
        dio.load_dataset(holes, lazy=True)


def test_vegas_layout_cannot_stay_on_disk_but_converts(tmp_path):
    rng = np.random.default_rng(3)
    src = tmp_path / "vegas.h5"
    with h5py.File(src, "w") as f:
        for split, n in (("train", 70), ("test", 30)):
            f.create_dataset(f"audio_{split}", data=rng.standard_normal((n, 4)).astype(np.float32), chunks=(16, 4))
            f.create_dataset(f"visual_{split}", data=rng.standard_normal((n, 6)).astype(np.float32), chunks=(16, 6))
            f.create_dataset(f"{split}_labels", data=np.arange(n) % 5)
    with pytest.raises(DatasetError, match="convert it first"):
        dio.load_dataset(src, lazy=True)
    from crossmodal_core.data.vegas import convert_to_zarr

    out = convert_to_zarr(src, tmp_path / "vegas.zarr", chunk_bytes=64)
    _same(dio.load_dataset(src, lazy=False), dio.load_dataset(out, lazy=False))


def test_vegas_conversion_checks_features_as_loading_does(tmp_path):
    """One checker for both readers: a non-numeric (bool) feature array the loader refuses is
    refused by the converter too, with the same message (it used to be converted)."""
    from crossmodal_core.data.vegas import convert_to_zarr, load_vegas_layout

    rng = np.random.default_rng(4)
    src = tmp_path / "bool.h5"
    with h5py.File(src, "w") as f:
        for split, n in (("train", 10), ("test", 4)):
            f[f"audio_{split}"] = rng.standard_normal((n, 3)).astype(np.float32)
            f[f"visual_{split}"] = rng.standard_normal((n, 4)) > 0
            f[f"{split}_labels"] = np.arange(n) % 2
    with pytest.raises(DatasetError, match="'visual_train' is not numeric"):
        load_vegas_layout(src)
    with pytest.raises(DatasetError, match="'visual_train' is not numeric"):
        convert_to_zarr(src, tmp_path / "bool.zarr")
    assert not (tmp_path / "bool.zarr").exists()
