"""Dataset files: our NPZ / HDF5 format round trip, atomic writes, the VEGAS/AVE layout and
every bad-file case naming the file."""

import json
import zipfile

import h5py
import numpy as np
import pytest

from crossmodal_core.data import io as dio
from crossmodal_core.data.dataset import CrossModalDataset, DatasetError


def _dataset(n=30, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    return CrossModalDataset(
        views={
            "audio": rng.standard_normal((n, 4)).astype(np.float32),
            "visual": rng.standard_normal((n, 6)),
            "audio_seq": rng.standard_normal((n, 10, 4)).astype(np.float32),
        },
        labels={"class": y, "composer": np.arange(n) % 2},
        class_names={"class": ["dog", "café", "car"], "composer": ["Bach", "Landini"]},
        item_ids=[f"id-{i}" for i in range(n)],
        metadata={
            "title": np.array([f"Titel {i} ü" for i in range(n)]),
            "year": np.arange(n, dtype=np.int64) + 1700,
            "tempo": np.linspace(60, 120, n),
            "has_lyrics": np.arange(n) % 2 == 0,
            "empty_text": np.array([""] * n),
        },
        folds=np.arange(n) % 5,
        split=np.where(np.arange(n) < 20, "train", "test"),
        name="roundtrip",
        info={"synthetic": False, "source": "unit test", "nested": {"a": [1, 2]}, "default_label": "composer"},
    )


def _assert_same(a: CrossModalDataset, b: CrossModalDataset):
    assert a.name == b.name
    assert a.info == b.info
    assert list(a.views) == list(b.views)
    for k in a.views:
        assert a.views[k].dtype == b.views[k].dtype
        np.testing.assert_array_equal(a.views[k], b.views[k])
    assert list(a.labels) == list(b.labels)
    for k in a.labels:
        np.testing.assert_array_equal(a.labels[k], b.labels[k])
        assert a.class_names[k] == b.class_names[k]
    np.testing.assert_array_equal(a.item_ids, b.item_ids)
    assert set(a.metadata) == set(b.metadata)
    for k in a.metadata:
        np.testing.assert_array_equal(a.metadata[k], b.metadata[k])
        assert a.metadata[k].dtype.kind == b.metadata[k].dtype.kind
    np.testing.assert_array_equal(a.folds, b.folds)
    np.testing.assert_array_equal(a.split, b.split)
    assert a.default_label == b.default_label == "composer"


@pytest.mark.parametrize("suffix", [".npz", ".h5", ".hdf5"])
def test_round_trip_keeps_every_field(tmp_path, suffix):
    ds = _dataset()
    path = dio.save_dataset(ds, tmp_path / f"d{suffix}")
    _assert_same(ds, dio.load_dataset(path))


def test_npz_has_no_pickled_object_and_is_deterministic(tmp_path):
    ds = _dataset()
    p1 = dio.save_dataset(ds, tmp_path / "a.npz")
    p2 = dio.save_dataset(ds, tmp_path / "b.npz")
    assert p1.read_bytes() == p2.read_bytes()
    with np.load(p1, allow_pickle=False) as z:  # would raise on any object array
        for key in z.files:
            assert z[key].dtype != object
        assert str(z["format"]) == dio.FORMAT_NAME
        assert json.loads(str(z["info"]))["nested"] == {"a": [1, 2]}


def test_object_metadata_of_strings_is_stored_as_text_and_other_objects_refused(tmp_path):
    ds = _dataset()
    ds.metadata["title"] = np.array([f"t{i}" for i in range(30)], dtype=object)
    back = dio.load_dataset(dio.save_dataset(ds, tmp_path / "d.npz"))
    assert back.metadata["title"][3] == "t3"
    ds.metadata["bad"] = np.array([{"x": 1}] * 30, dtype=object)
    with pytest.raises(DatasetError, match="bad"):
        dio.save_dataset(ds, tmp_path / "e.npz")


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_failed_write_leaves_the_previous_file_intact(tmp_path, suffix, monkeypatch):
    path = tmp_path / f"d{suffix}"
    dio.save_dataset(_dataset(seed=1), path)
    before = path.read_bytes()

    if suffix == ".npz":
        def boom(*args, **kwargs):
            raise RuntimeError("disk full")
        monkeypatch.setattr(dio.store, "_normalise_zip_timestamps", boom)
    else:
        def boom(self, name, *args, **kwargs):  # fails half-way, after views were written
            if name.startswith("meta/"):
                raise RuntimeError("disk full")
            return h5py.Group.create_dataset(self, name, *args, **kwargs)
        monkeypatch.setattr(h5py.File, "create_dataset", boom, raising=False)
    with pytest.raises(RuntimeError, match="disk full"):
        dio.save_dataset(_dataset(seed=2), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left
    monkeypatch.undo()
    _assert_same(_dataset(seed=1), dio.load_dataset(path))


def test_unknown_suffix_and_missing_file(tmp_path):
    with pytest.raises(DatasetError, match=r"d\.csv.*suffix"):
        dio.load_dataset(tmp_path / "d.csv")
    with pytest.raises(DatasetError, match=r"nope\.h5: no such file"):
        dio.load_dataset(tmp_path / "nope.h5")


def test_non_hdf5_and_non_npz_files_name_the_file(tmp_path):
    bad_h5 = tmp_path / "text.h5"
    bad_h5.write_text("this is not HDF5")
    with pytest.raises(DatasetError, match=r"text\.h5: not a readable HDF5 file"):
        dio.load_dataset(bad_h5)
    bad_npz = tmp_path / "text.npz"
    bad_npz.write_bytes(b"\x00\x01 not a zip")
    with pytest.raises(DatasetError, match=r"text\.npz: not a readable NPZ"):
        dio.load_dataset(bad_npz)


def test_truncated_npz_is_a_dataset_error(tmp_path):
    path = dio.save_dataset(_dataset(), tmp_path / "d.npz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"d\.npz"):
        dio.load_dataset(path)


def test_our_format_with_broken_content_names_the_file(tmp_path):
    arrays = dio.dataset_to_arrays(_dataset())
    arrays["view/visual"] = arrays["view/visual"][:-1]  # one row short
    path = tmp_path / "short.npz"
    np.savez(path, **arrays)
    with pytest.raises(DatasetError, match=r"short\.npz: .*visual.*29 rows"):
        dio.load_dataset(path)

    arrays = dio.dataset_to_arrays(_dataset())
    arrays["view/audio"] = arrays["view/audio"].copy()
    arrays["view/audio"][3, 1] = np.nan
    path = tmp_path / "nan.npz"
    np.savez(path, **arrays)
    with pytest.raises(DatasetError, match=r"nan\.npz: .*NaN or inf.*row 3"):
        dio.load_dataset(path)

    arrays = dio.dataset_to_arrays(_dataset())
    arrays["class_names/class"] = np.array(["dog", "cat", "car", "unused"])
    path = tmp_path / "empty.npz"
    np.savez(path, **arrays)
    with pytest.raises(DatasetError, match=r"empty\.npz: .*no item.*unused"):
        dio.load_dataset(path)

    arrays = dio.dataset_to_arrays(_dataset())
    arrays["format_version"] = np.array(99)
    path = tmp_path / "future.npz"
    np.savez(path, **arrays)
    with pytest.raises(DatasetError, match=r"future\.npz: unsupported .* version 99"):
        dio.load_dataset(path)


# ---------------------------------------------------------------------- VEGAS / AVE layout
def _vegas_arrays(rng, n_train=40, n_test=20, n_classes=4, seq=False, onehot=False, label_style="shared"):
    def feats(n, d):
        shape = (n, 10, d) if seq else (n, d)
        return rng.standard_normal(shape).astype(np.float32)

    y_train = np.arange(n_train) % n_classes
    y_test = np.arange(n_test) % n_classes
    arrays = {
        "audio_train": feats(n_train, 8), "visual_train": feats(n_train, 12),
        "audio_test": feats(n_test, 8), "visual_test": feats(n_test, 12),
    }

    def enc(y):
        return np.eye(n_classes, dtype=np.float32)[y] if onehot else y

    if label_style == "shared":
        arrays["train_labels"], arrays["test_labels"] = enc(y_train), enc(y_test)
    elif label_style == "lab":
        arrays["lab_train"], arrays["lab_test"] = enc(y_train), enc(y_test)
    else:  # per modality
        arrays["audio_train_labels"], arrays["visual_train_labels"] = enc(y_train), enc(y_train)
        arrays["audio_test_labels"], arrays["visual_test_labels"] = enc(y_test), enc(y_test)
    return arrays, y_train, y_test


def _write(path, arrays):
    if path.suffix == ".npz":
        np.savez(path, **arrays)
    else:
        with h5py.File(path, "w") as f:
            for k, v in arrays.items():  # text as fixed-width bytes, as h5py writes it by default
                f.create_dataset(k, data=np.char.encode(v, "utf-8") if v.dtype.kind == "U" else v)
    return path


@pytest.mark.parametrize("onehot", [False, True])
@pytest.mark.parametrize("label_style", ["shared", "lab", "per-modality"])
@pytest.mark.parametrize("suffix", [".h5", ".npz"])
def test_vegas_layout_integer_and_onehot_labels(tmp_path, rng, onehot, label_style, suffix):
    arrays, y_train, y_test = _vegas_arrays(rng, onehot=onehot, label_style=label_style)
    path = _write(tmp_path / f"vegas{suffix}", arrays)
    ds = dio.load_vegas_layout(path)
    assert ds.view_names == ["audio", "visual"]
    np.testing.assert_array_equal(ds.views["audio"], np.concatenate([arrays["audio_train"], arrays["audio_test"]]))
    np.testing.assert_array_equal(ds.views["visual"][40:], arrays["visual_test"])
    np.testing.assert_array_equal(ds.labels["class"], np.concatenate([y_train, y_test]))
    assert ds.class_names["class"] == ["class_0", "class_1", "class_2", "class_3"]
    assert list(ds.split[:40]) == ["train"] * 40 and list(ds.split[40:]) == ["test"] * 20
    assert ds.info["source"] == str(path) and ds.info["labels_were_onehot"] is onehot
    assert not ds.is_synthetic
    # load_dataset recognises the layout too (no format marker)
    again = dio.load_dataset(path)
    np.testing.assert_array_equal(again.labels["class"], ds.labels["class"])


def test_vegas_layout_sequences_are_kept_and_time_averaged(tmp_path, rng):
    arrays, _, _ = _vegas_arrays(rng, seq=True)
    ds = dio.load_vegas_layout(_write(tmp_path / "seq.h5", arrays))
    assert ds.view_names[:2] == ["audio", "visual"]
    assert ds.views["audio_seq"].shape == (60, 10, 8) and ds.views["visual_seq"].shape == (60, 10, 12)
    expected = np.concatenate([arrays["visual_train"], arrays["visual_test"]]).mean(axis=1)
    np.testing.assert_allclose(ds.views["visual"], expected, rtol=1e-6, atol=1e-6)


def test_vegas_layout_class_names_ids_aliases_and_one_based(tmp_path, rng):
    arrays, y_train, y_test = _vegas_arrays(rng)
    arrays["train_video"] = arrays.pop("visual_train")  # alias spelling
    arrays["class_names"] = np.array([b"dog", b"baby", b"drum", b"fire"])
    arrays["train_ids"] = np.array([f"yt{i}" for i in range(40)])
    ds = dio.load_vegas_layout(_write(tmp_path / "alias.h5", arrays))
    assert ds.class_names["class"] == ["dog", "baby", "drum", "fire"]
    assert ds.item_ids[0] == "yt0" and ds.item_ids[40] == "test-000000"

    arrays, y_train, y_test = _vegas_arrays(rng)
    arrays["train_labels"] = arrays["train_labels"] + 1  # MATLAB-style 1..C
    arrays["test_labels"] = arrays["test_labels"] + 1
    ds = dio.load_vegas_layout(_write(tmp_path / "onebased.npz", arrays))
    np.testing.assert_array_equal(ds.labels["class"], np.concatenate([y_train, y_test]))


@pytest.mark.parametrize("case, pattern", [
    ("missing_key", r"bad\.h5: .*no visual features for the test split.*keys \['audio_test', 'audio_train'"),
    ("missing_labels", r"bad\.h5: .*no labels for the train split"),
    ("rows", r"bad\.h5: 'audio_train' has 40 rows but 'visual_train' has 39"),
    ("label_rows", r"bad\.h5: labels 'test_labels' have 19 rows"),
    ("nan", r"bad\.h5: 'visual_test' contains NaN or inf in 1 row\(s\), first at row 5"),
    ("inf", r"bad\.h5: 'audio_train' contains NaN or inf"),
    ("empty_class", r"bad\.h5: 1 class\(es\) have no item in any split: \['class_2'\]"),
    ("onehot_sum", r"bad\.h5: one-hot labels 'train_labels' must hold 0/1 rows summing to 1.*row 7"),
    ("onehot_empty", r"bad\.h5: 1 class\(es\) have no item.*class_3"),
    ("per_modality_mismatch", r"bad\.h5: audio and visual labels of the train split differ in 1 row"),
    ("float_labels", r"bad\.h5: labels 'train_labels' must be whole numbers"),
])
def test_vegas_layout_bad_files(tmp_path, rng, case, pattern):
    style = "per-modality" if case == "per_modality_mismatch" else "shared"
    arrays, _, _ = _vegas_arrays(rng, onehot=case.startswith("onehot"), label_style=style)
    if case == "missing_key":
        del arrays["visual_test"]
    elif case == "missing_labels":
        del arrays["train_labels"]
    elif case == "rows":
        arrays["visual_train"] = arrays["visual_train"][:-1]
    elif case == "label_rows":
        arrays["test_labels"] = arrays["test_labels"][:-1]
    elif case == "nan":
        arrays["visual_test"][5, 2] = np.nan
    elif case == "inf":
        arrays["audio_train"][0, 0] = np.inf
    elif case == "empty_class":
        arrays["train_labels"][arrays["train_labels"] == 2] = 1
        arrays["test_labels"][arrays["test_labels"] == 2] = 1
    elif case == "onehot_sum":
        arrays["train_labels"][7] = 0
    elif case == "onehot_empty":
        for key in ("train_labels", "test_labels"):
            lab = arrays[key]
            lab[lab[:, 3] == 1] = np.eye(4, dtype=np.float32)[0]
    elif case == "per_modality_mismatch":
        arrays["visual_train_labels"] = arrays["visual_train_labels"].copy()
        arrays["visual_train_labels"][3] = (arrays["visual_train_labels"][3] + 1) % 4
    elif case == "float_labels":
        arrays["train_labels"] = arrays["train_labels"].astype(float) + 0.5
    path = _write(tmp_path / "bad.h5", arrays)
    with pytest.raises(DatasetError, match=pattern):
        dio.load_vegas_layout(path)
    with pytest.raises(DatasetError, match=r"bad\.h5"):
        dio.load_dataset(path)


def test_vegas_layout_non_hdf5(tmp_path):
    path = tmp_path / "features.h5"
    with zipfile.ZipFile(path, "w") as z:  # a real file of the wrong kind
        z.writestr("x.txt", "hello")
    with pytest.raises(DatasetError, match=r"features\.h5: not a readable HDF5 file"):
        dio.load_vegas_layout(path)


@pytest.mark.parametrize("split_key, train_value, test_value", [
    ("Train_test", b"1", b"0"), ("Split", 1, 0), ("Split", "train", "test"),
])
def test_one_table_layout_with_a_train_test_column(tmp_path, rng, split_key, train_value, test_value):
    n = 30
    split = np.array([train_value if i % 3 else test_value for i in range(n)])
    arrays = {
        "audio_feat": rng.standard_normal((n, 8)).astype(np.float32),
        "visual_feat": rng.standard_normal((n, 12)).astype(np.float32),
        "Label_ID": (np.arange(n) % 4).reshape(n, 1),
        split_key: split,
    }
    path = tmp_path / "mae.h5"
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f[k] = np.char.encode(v, "utf-8") if v.dtype.kind == "U" else v
    ds = dio.load_dataset(path)
    train = np.arange(n) % 3 != 0
    order = np.concatenate([np.nonzero(train)[0], np.nonzero(~train)[0]])
    np.testing.assert_array_equal(ds.views["audio"], arrays["audio_feat"][order])
    np.testing.assert_array_equal(ds.views["visual"], arrays["visual_feat"][order])
    np.testing.assert_array_equal(ds.labels["class"], (np.arange(n) % 4)[order])
    assert list(ds.split) == ["train"] * int(train.sum()) + ["test"] * int((~train).sum())
    assert ds.item_ids[0] == "row-000001" and ds.item_ids[-1] == "row-000027"

    arrays[split_key] = np.where(np.arange(n) == 5, 2, np.where(train, 1, 0))
    np.savez(tmp_path / "odd.npz", **arrays)
    with pytest.raises(DatasetError, match=rf"odd\.npz: '{split_key}' must hold 1 \(train\) or 0 \(test\).*1 row\(s\).*\['2'\]"):
        dio.load_dataset(tmp_path / "odd.npz")
    del arrays[split_key]
    np.savez(tmp_path / "nosplit.npz", **arrays)
    with pytest.raises(DatasetError, match=r"nosplit\.npz: .*need a 'Train_test' or 'Split' array"):
        dio.load_dataset(tmp_path / "nosplit.npz")


def test_split_modules_are_re_exported_from_io():
    """io keeps the names callers import today; the readers and the VEGAS layout live beside it."""
    import crossmodal_core.data as data
    from crossmodal_core.data import readers, vegas

    assert dio.load_vegas_layout is vegas.load_vegas_layout is data.load_vegas_layout
    assert dio.read_arrays is readers.read_arrays
    assert dio.max_load_bytes is readers.max_load_bytes and dio.MAX_LOAD_BYTES == readers.MAX_LOAD_BYTES
    for name in ("MAX_COMPRESSION_RATIO", "BUDGET_ENV", "ISOLATION_ENV", "TIMEOUT_ENV", "DatasetError"):
        assert getattr(dio, name) is getattr(readers, name)
    assert set(dio.__all__) <= set(dir(dio)) and set(readers.__all__) <= set(dir(readers))


def _one_table(rng, n=30, seq=True):
    shape_a, shape_v = ((n, 10, 8), (n, 10, 12)) if seq else ((n, 8), (n, 12))
    return {
        "audio_feat": rng.standard_normal(shape_a).astype(np.float32),
        "visual_feat": rng.standard_normal(shape_v).astype(np.float32),
        "Label_ID": (np.arange(n) % 4).astype(np.int64),
        "Train_test": np.where(np.arange(n) % 3 == 0, 0, 1),
    }


def _write_h5(path, arrays, external=None):
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            if k == external:
                raw = path.with_suffix(".raw")
                raw.write_bytes(np.ascontiguousarray(v).tobytes())
                f.create_dataset(k, shape=v.shape, dtype=v.dtype, external=[(str(raw), 0, v.nbytes)])
            else:
                f[k] = v
    return path


def test_one_table_layout_keeps_sequences_and_time_averages_them(tmp_path, rng):
    """The UnsupervisedMAE ``VEGAS.h5`` layout with (n, T, d) features: sequence views kept."""
    arrays = _one_table(rng)
    ds = dio.load_dataset(_write_h5(tmp_path / "VEGAS.h5", arrays))
    train = arrays["Train_test"] == 1
    order = np.concatenate([np.nonzero(train)[0], np.nonzero(~train)[0]])
    assert ds.view_names == ["audio", "visual", "audio_seq", "visual_seq"]
    np.testing.assert_array_equal(ds.views["visual_seq"], arrays["visual_feat"][order])
    np.testing.assert_allclose(ds.views["audio"], arrays["audio_feat"][order].mean(axis=1), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(ds.labels["class"], arrays["Label_ID"][order])
    assert list(ds.split).count("train") == int(train.sum())


@pytest.mark.parametrize("case, pattern", [
    ("nan", r"VEGAS\.h5: 'visual_feat' contains NaN or inf in 1 row\(s\), first at row 4"),
    ("ndim", r"VEGAS\.h5: 'audio_feat' must be \(n, d\) or \(n, T, d\), got shape \(30,\)"),
    ("rows", r"VEGAS\.h5: 'audio_feat' has 30 rows but 'visual_feat' has 29: audio and visual rows must be paired"),
    ("text", r"VEGAS\.h5: 'audio_feat' is not numeric"),
    ("external", r"VEGAS\.h5: dataset 'audio_feat' uses external storage"),
])
def test_one_table_layout_hostile_files_name_the_file_and_key(tmp_path, rng, case, pattern):
    arrays = _one_table(rng)
    external = None
    if case == "nan":
        arrays["visual_feat"][4, 2, 1] = np.nan
    elif case == "ndim":
        arrays["audio_feat"] = arrays["audio_feat"][:, 0, 0]
    elif case == "rows":
        arrays["visual_feat"] = arrays["visual_feat"][:-1]
    elif case == "text":
        arrays["audio_feat"] = np.array([[b"x"] * 4] * 30)  # (n, d): the shape is right, the type is not
    elif case == "external":
        external = "audio_feat"
    path = _write_h5(tmp_path / "VEGAS.h5", arrays, external=external)
    with pytest.raises(DatasetError, match=pattern):
        dio.load_dataset(path)
