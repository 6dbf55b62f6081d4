"""Hostile dataset files: each is refused with a DatasetError that names the file and the key,
before anything is read from another file and before a claimed shape is allocated."""

import io
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from numpy.lib import format as npy

from crossmodal_core.data import io as dio
from crossmodal_core.data import readers
from crossmodal_core.data.dataset import CrossModalDataset, DatasetError

REPO = Path(__file__).resolve().parents[2]


def _vegas(n=12, d=4):
    rng = np.random.default_rng(0)
    return {
        "audio_train": rng.standard_normal((n, d)).astype(np.float32),
        "visual_train": rng.standard_normal((n, d + 1)).astype(np.float32),
        "audio_test": rng.standard_normal((n, d)).astype(np.float32),
        "visual_test": rng.standard_normal((n, d + 1)).astype(np.float32),
        "train_labels": np.arange(n) % 3,
        "test_labels": np.arange(n) % 3,
    }


def _h5(path, extra=None, **kwargs):
    with h5py.File(path, "w", **kwargs) as f:
        for k, v in _vegas().items():
            f[k] = v
        if extra:
            extra(f)
    return path


def _npy_bytes(shape, dtype, payload=b"", fortran=False, version=(1, 0)):
    buf = io.BytesIO()
    npy.write_array_header_1_0(buf, {"descr": npy.dtype_to_descr(np.dtype(dtype)),
                                     "fortran_order": fortran, "shape": tuple(shape)})
    return buf.getvalue() + payload


def _npz(path, members, compression=zipfile.ZIP_DEFLATED):
    """An NPZ with the valid VEGAS arrays plus ``members`` (name -> raw .npy bytes)."""
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for k, v in _vegas().items():
            buf = io.BytesIO()
            np.save(buf, v)
            z.writestr(f"{k}.npy", buf.getvalue())
        for name, raw in members.items():
            z.writestr(f"{name}.npy", raw)
    return path


def test_valid_files_load(tmp_path):
    """The baseline every hostile case below departs from."""
    assert dio.load_dataset(_h5(tmp_path / "ok.h5")).n_items == 24
    assert dio.load_dataset(_npz(tmp_path / "ok.npz", {})).n_items == 24


# ---------------------------------------------------------------------- HDF5: other files
def test_external_storage_pointing_at_passwd_is_refused_without_reading_it(tmp_path):
    secret = Path("/etc/passwd")
    target = secret if secret.is_file() else tmp_path / "secret.txt"
    if target != secret:
        target.write_text("root:x:0:0:root:/root:/bin/sh\n")
    size = target.stat().st_size
    path = _h5(tmp_path / "ext.h5", lambda f: f.create_dataset(
        "class_names", shape=(size,), dtype="S1", external=[(str(target), 0, h5py.h5f.UNLIMITED)]))
    with h5py.File(path, "r") as f:  # the probe: h5py alone would read the other file
        assert f["class_names"][:4].tobytes() == target.read_bytes()[:4]
    with pytest.raises(DatasetError) as err:
        dio.load_dataset(path)
    msg = str(err.value)
    assert msg.startswith(str(path)) and "'class_names'" in msg and "external storage" in msg
    assert target.read_text()[:20] not in msg
    with pytest.raises(DatasetError, match="external storage"):
        dio.load_vegas_layout(path)


def test_external_storage_of_fixed_size_feature_is_refused(tmp_path):
    other = tmp_path / "raw.bin"
    np.ones((24, 4), np.float32).tofile(other)
    path = tmp_path / "ext2.h5"
    with h5py.File(path, "w") as f:
        for k, v in _vegas().items():
            if k != "audio_train":
                f[k] = v
        f.create_dataset("audio_train", shape=(12, 4), dtype="f4", external=[(str(other), 0, 12 * 4 * 4)])
    with pytest.raises(DatasetError, match=r"ext2\.h5: dataset 'audio_train' uses external storage"):
        dio.load_dataset(path)


def test_virtual_dataset_pointing_at_another_file_is_refused(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as g:
        g["x"] = np.arange(12.0)

    def add(f):
        layout = h5py.VirtualLayout(shape=(12,), dtype="f8")
        layout[:] = h5py.VirtualSource(str(other), "x", shape=(12,))
        f.create_virtual_dataset("train_ids", layout)

    path = _h5(tmp_path / "virt.h5", add)
    with pytest.raises(DatasetError, match=r"virt\.h5: dataset 'train_ids' is a virtual dataset"):
        dio.load_dataset(path)


def test_external_link_is_refused_and_not_followed(tmp_path):
    other = tmp_path / "linked.h5"
    with h5py.File(other, "w") as g:
        g["labels"] = np.arange(12)
    path = _h5(tmp_path / "elink.h5", lambda f: f.__setitem__("extra/labels", h5py.ExternalLink(str(other), "/labels")))
    with pytest.raises(DatasetError, match=r"elink\.h5: 'extra/labels' is an external link"):
        dio.load_dataset(path)


def test_soft_link_is_refused(tmp_path):
    path = _h5(tmp_path / "slink.h5", lambda f: f.__setitem__("alias", h5py.SoftLink("/audio_train")))
    with pytest.raises(DatasetError, match=r"slink\.h5: 'alias' is a soft .*link"):
        dio.load_dataset(path)


def test_unknown_filter_is_refused_before_any_plugin_is_loaded(tmp_path, monkeypatch):
    path = _h5(tmp_path / "filt.h5", lambda f: f.create_dataset(
        "train_ids", data=np.arange(5000.0), compression="lzf"))
    monkeypatch.setattr(readers, "_HDF5_FILTERS", {1: "gzip", 2: "shuffle"})  # pretend lzf were a plugin
    monkeypatch.setenv("CROSSMODAL_HDF5_ISOLATION", "0")
    with pytest.raises(DatasetError, match=r"filt\.h5: dataset 'train_ids' uses the HDF5 filter\(s\) \[32000\]"):
        dio.load_dataset(path)


# ---------------------------------------------------------------------- HDF5: dtypes
@pytest.mark.parametrize("case, pattern", [
    ("complex", r"'audio_train' has the complex dtype"),
    ("reference", r"'refs' holds HDF5 object references"),
    ("vlen_int", r"'ragged' holds variable-length"),
    ("compound", r"'rec' has a structured"),
    ("opaque", r"'blob' has the unsupported dtype"),
    ("null", r"'nothing' has an empty \(null\) dataspace"),
])
def test_hdf5_non_plain_dtypes_are_refused(tmp_path, case, pattern):
    def add(f):
        if case == "complex":
            del f["audio_train"]
            f["audio_train"] = np.ones((12, 4), np.complex64)
        elif case == "reference":
            f.create_dataset("refs", data=[f["audio_test"].ref] * 2, dtype=h5py.ref_dtype)
        elif case == "vlen_int":
            ds = f.create_dataset("ragged", shape=(2,), dtype=h5py.vlen_dtype(np.int32))
            ds[0], ds[1] = [1, 2], [3]
        elif case == "compound":
            f["rec"] = np.zeros(3, dtype=[("a", "f4"), ("b", "i4")])
        elif case == "opaque":
            f["blob"] = np.void(b"\x00\x01\x02")
        elif case == "null":
            f["nothing"] = h5py.Empty("f4")

    path = _h5(tmp_path / f"{case}.h5", add)
    with pytest.raises(DatasetError, match=pattern) as err:
        dio.load_dataset(path)
    assert str(err.value).startswith(str(path))


# ---------------------------------------------------------------------- HDF5: shape claims
_RSS_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    from crossmodal_core.data import io as dio
    from crossmodal_core.data.dataset import DatasetError
    import h5py  # imported before the baseline, as in the app
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        dio.load_dataset(sys.argv[1])
        outcome = "loaded"
    except DatasetError as exc:
        outcome = str(exc)
    print(json.dumps({
        "outcome": outcome, "base_kib": base,
        "self_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "children_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    }))
""")


def _peak_rss(path, env=None):
    out = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT, str(path)], capture_output=True, text=True, check=True,
        cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}, timeout=120,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_npz_member_claiming_a_huge_shape_is_refused_before_allocation(tmp_path):
    # a 9 KB archive whose 'audio_train' header claims 10^12 float64 (8 TB), backed by 8 KB
    huge = _npy_bytes((10**6, 10**6), "<f8", payload=b"\x00" * 8192)
    path = _npz(tmp_path / "huge.npz", {"audio_train_extra": huge}, compression=zipfile.ZIP_STORED)
    assert path.stat().st_size < 20_000
    with pytest.raises(DatasetError) as err:
        dio.load_dataset(path)
    msg = str(err.value)
    assert msg.startswith(str(path)) and "'audio_train_extra'" in msg and "refused before allocation" in msg
    rss = _peak_rss(path)
    assert "claims shape (1000000, 1000000)" in rss["outcome"]
    assert rss["self_kib"] - rss["base_kib"] < 200 * 1024, rss


def test_npz_claim_backed_by_bytes_but_over_the_budget_names_the_env_var(tmp_path, monkeypatch):
    path = _npz(tmp_path / "big.npz", {})  # 12 x 5 float32 = 240 B for visual_train
    monkeypatch.setenv("CROSSMODAL_MAX_LOAD_BYTES", "500")
    with pytest.raises(DatasetError, match=r"big\.npz: '\w+' claims .*exceeds the memory budget of 500 B.*CROSSMODAL_MAX_LOAD_BYTES"):
        dio.load_dataset(path)
    monkeypatch.setenv("CROSSMODAL_MAX_LOAD_BYTES", "1M")
    assert dio.load_dataset(path).n_items == 24
    monkeypatch.setenv("CROSSMODAL_MAX_LOAD_BYTES", "lots")
    with pytest.raises(DatasetError, match="CROSSMODAL_MAX_LOAD_BYTES='lots' is not a byte count"):
        dio.load_dataset(path)


def test_budget_default_is_documented():
    assert 0 < readers.MAX_LOAD_BYTES <= 8 << 30 and dio.MAX_LOAD_BYTES == readers.MAX_LOAD_BYTES
    assert "CROSSMODAL_MAX_LOAD_BYTES" in readers.__doc__ and "MAX_LOAD_BYTES" in readers.__doc__


@pytest.mark.parametrize("layout", ["chunked-gzip-fill", "contiguous-unwritten", "chunked-unwritten"])
def test_hdf5_claiming_a_huge_shape_is_refused_before_allocation(tmp_path, layout):
    def add(f):
        if layout == "chunked-gzip-fill":  # 4 TB of fill value, 0 chunks written
            f.create_dataset("train_ids", shape=(10**6, 10**6), dtype="f4", chunks=(1000, 1000),
                             compression="gzip", fillvalue=1.0)
        elif layout == "contiguous-unwritten":
            f.create_dataset("train_ids", shape=(10**5, 10**4), dtype="f8")
        else:
            f.create_dataset("train_ids", shape=(10**7, 100), dtype="f4", chunks=(1000, 100))

    path = _h5(tmp_path / "huge.h5", add)
    assert path.stat().st_size < 20_000
    with pytest.raises(DatasetError) as err:
        dio.load_dataset(path)
    msg = str(err.value)
    assert msg.startswith(str(path)) and "'train_ids'" in msg
    assert ("fill values are refused" in msg) or ("ratio above" in msg)
    if layout == "chunked-gzip-fill":
        rss = _peak_rss(path)
        assert "'train_ids'" in rss["outcome"]
        assert rss["self_kib"] - rss["base_kib"] < 200 * 1024, rss
        assert rss["children_kib"] - rss["base_kib"] < 200 * 1024, rss


def test_hdf5_compressed_data_over_the_budget_is_refused(tmp_path, monkeypatch):
    path = _h5(tmp_path / "zip.h5", lambda f: f.create_dataset(
        "train_ids", data=np.random.default_rng(0).standard_normal((200, 100)), compression="gzip"))
    monkeypatch.setenv("CROSSMODAL_MAX_LOAD_BYTES", "100K")
    with pytest.raises(DatasetError, match=r"zip\.h5: 'train_ids' claims shape \(200, 100\).*budget of 100.0 KiB"):
        dio.load_dataset(path)


def test_hdf5_long_variable_length_string_cannot_blow_up_as_fixed_width_text(tmp_path, monkeypatch):
    names = ["a"] * 5000 + ["x" * 5000]  # 25 M code points x 4 bytes once made fixed-width
    path = _h5(tmp_path / "text.h5", lambda f: f.create_dataset(
        "train_ids", data=np.array(names, dtype=object), dtype=h5py.string_dtype()))
    monkeypatch.setenv("CROSSMODAL_MAX_LOAD_BYTES", "20M")
    with pytest.raises(DatasetError, match=r"text\.h5: 'train_ids' claims 5001 strings of up to 5000 characters"):
        dio.load_dataset(path)


# ---------------------------------------------------------------------- NPZ: content
def test_bad_crc_member_names_file_and_key(tmp_path):
    path = tmp_path / "crc.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        for k, v in _vegas().items():
            buf = io.BytesIO()
            np.save(buf, v)
            z.writestr(f"{k}.npy", buf.getvalue())
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("visual_test.npy")
    # flip one byte in the float payload of visual_test (after the 30-byte local header + name + .npy header)
    pos = info.header_offset + 30 + len(info.filename) + 128 + 7
    data[pos] ^= 0xFF
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as z:  # the archive itself still opens: the CRC fails on read
        assert "visual_test.npy" in z.namelist()
    with pytest.raises(DatasetError, match=r"crc\.npz: member 'visual_test' of the NPZ archive is unreadable \(BadZipFile"):
        dio.load_dataset(path)


def test_pickled_object_array_is_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"
    payload = np.array([f"__import__('pathlib').Path({str(marker)!r}).touch()"], dtype=object)
    buf = io.BytesIO()
    np.save(buf, payload, allow_pickle=True)
    path = _npz(tmp_path / "pickle.npz", {"class_names": buf.getvalue()})
    with pytest.raises(DatasetError, match=r"pickle\.npz: 'class_names' is an object \(pickled\) array"):
        dio.load_dataset(path)
    assert not marker.exists()


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_complex_features_are_refused(tmp_path, suffix):
    arrays = _vegas()
    arrays["visual_test"] = arrays["visual_test"].astype(np.complex64)
    path = tmp_path / f"cplx{suffix}"
    if suffix == ".npz":
        np.savez(path, **arrays)
    else:
        with h5py.File(path, "w") as f:
            for k, v in arrays.items():
                f[k] = v
    with pytest.raises(DatasetError, match=rf"cplx\{suffix}: .*'visual_test' has the complex dtype complex64"):
        dio.load_dataset(path)


def test_structured_and_fortran_members(tmp_path):
    rec = io.BytesIO()
    np.save(rec, np.zeros(3, dtype=[("a", "f4")]))
    path = _npz(tmp_path / "rec.npz", {"extra": rec.getvalue()})
    with pytest.raises(DatasetError, match=r"rec\.npz: 'extra' has a structured"):
        dio.load_dataset(path)
    # Fortran-ordered members are read right
    arrays = _vegas()
    arrays["audio_train"] = np.asfortranarray(arrays["audio_train"])
    np.savez(tmp_path / "f.npz", **arrays)
    ds = dio.load_dataset(tmp_path / "f.npz")
    np.testing.assert_array_equal(ds.views["audio"][:12], arrays["audio_train"])


def test_invalid_text_is_refused(tmp_path):
    arrays = _vegas()
    arrays["train_ids"] = np.array([b"ok"] * 11 + [b"\xff\xfe"])
    np.savez(tmp_path / "utf.npz", **arrays)
    with pytest.raises(DatasetError, match=r"utf\.npz: 'train_ids' is not valid UTF-8"):
        dio.load_dataset(tmp_path / "utf.npz")
    raw = bytearray(_npy_bytes((2,), "<U1", payload=np.array(["a", "b"]).tobytes()))
    raw[-4:] = (0x110000).to_bytes(4, "little")
    path = _npz(tmp_path / "ucs.npz", {"train_ids": bytes(raw)})
    with pytest.raises(DatasetError, match=r"ucs\.npz: 'train_ids' holds invalid text"):
        dio.load_dataset(path)


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9, 0.99])
def test_truncated_file_is_a_dataset_error(tmp_path, suffix, keep):
    ds = CrossModalDataset(views={"a": np.ones((20, 3), np.float32) * np.arange(3),
                                  "b": np.arange(40.0).reshape(20, 2)},
                           labels={"c": np.arange(20) % 2}, class_names={"c": ["x", "y"]})
    path = dio.save_dataset(ds, tmp_path / f"t{suffix}")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(DatasetError) as err:
        dio.load_dataset(path)
    assert str(err.value).startswith(str(path))


def test_npz_header_longer_than_its_member_is_refused(tmp_path):
    path = _npz(tmp_path / "short.npz", {"train_ids": _npy_bytes((4,), "<U3", payload=b"\x00" * 10)})
    with pytest.raises(DatasetError, match=r"short\.npz: member 'train_ids' claims shape \(4,\) of <U3 = 48 B, but the archive stores only 10 B"):
        dio.load_dataset(path)


# ---------------------------------------------------------------------- hostile content in valid containers
@pytest.mark.parametrize("key, value, pattern", [
    ("format_version", np.array(["one"]), r"'format_version' must be a single integer"),
    ("format_version", np.arange(3), r"'format_version' must be a single integer"),
    ("info", np.array("[1, 2]"), r"'info' must be a JSON object"),
    ("info", np.array("[" * 100000 + "]" * 100000), r"'info' is not valid JSON"),
    ("label/class", np.array(["a"] * 30), r"label/class.*integer"),
    ("folds", np.full(30, 0.5), r"'folds' must hold integers"),
    ("meta/title", np.array("scalar"), r"metadata column 'title' has 0 rows"),
    ("item_ids", np.array("scalar"), r"item_ids has 0 rows"),
    ("format", np.arange(2), r"'format' must be a single text value"),
])
def test_our_format_with_hostile_values_is_a_dataset_error(tmp_path, key, value, pattern):
    n = 30
    ds = CrossModalDataset(views={"a": np.random.default_rng(0).standard_normal((n, 3)), "b": np.ones((n, 2)) * np.arange(2)},
                           labels={"class": np.arange(n) % 3}, class_names={"class": ["x", "y", "z"]},
                           metadata={"title": np.array([f"t{i}" for i in range(n)])})
    arrays = dio.dataset_to_arrays(ds)
    arrays[key] = value
    path = tmp_path / "hostile.npz"
    np.savez(path, **arrays)
    with pytest.raises(DatasetError, match=r"hostile\.npz: .*" + pattern):
        dio.load_dataset(path)


def test_vegas_huge_class_index_without_names_is_refused_not_allocated(tmp_path):
    arrays = _vegas()
    arrays["train_labels"] = arrays["train_labels"].astype(np.uint64)
    arrays["train_labels"][0] = 2**63 + 5
    np.savez(tmp_path / "idx.npz", **arrays)
    with pytest.raises(DatasetError, match=r"idx\.npz: .*class index"):
        dio.load_dataset(tmp_path / "idx.npz")
    arrays["train_labels"][0] = 10**12
    np.savez(tmp_path / "idx2.npz", **arrays)
    with pytest.raises(DatasetError, match=r"idx2\.npz: .*class index 1000000000000"):
        dio.load_dataset(tmp_path / "idx2.npz")


# ---------------------------------------------------------------------- the isolated HDF5 reader
def test_a_crashing_hdf5_reader_becomes_a_dataset_error(tmp_path, monkeypatch):
    path = _h5(tmp_path / "ok.h5")

    def crash(*args, **kwargs):
        os.kill(os.getpid(), 11)

    monkeypatch.setattr(readers, "_read_hdf5_here", crash)
    with pytest.raises(DatasetError, match=r"ok\.h5: the HDF5 library crashed reading this file \(signal 11, SIGSEGV\)"):
        dio.load_dataset(path)


def test_a_hanging_hdf5_reader_is_stopped(tmp_path, monkeypatch):
    import time

    path = _h5(tmp_path / "ok.h5")
    monkeypatch.setattr(readers, "_read_hdf5_here", lambda *a, **k: time.sleep(60))
    monkeypatch.setenv("CROSSMODAL_HDF5_TIMEOUT_S", "0.5")
    t0 = time.monotonic()
    with pytest.raises(DatasetError, match=r"ok\.h5: reading the HDF5 file took longer than 0 s and was stopped"):
        dio.load_dataset(path)
    assert time.monotonic() - t0 < 10


@pytest.mark.parametrize("isolation", ["1", "0"])
def test_hdf5_isolated_and_in_process_read_the_same(tmp_path, monkeypatch, isolation):
    monkeypatch.setenv("CROSSMODAL_HDF5_ISOLATION", isolation)
    ds = CrossModalDataset(views={"a": np.random.default_rng(1).standard_normal((50, 300)).astype(np.float32),
                                  "b": np.arange(100.0).reshape(50, 2)},
                           labels={"c": np.arange(50) % 2}, class_names={"c": ["x", "ü"]},
                           metadata={"t": np.array([f"tïtle {i}" for i in range(50)])}, name="iso")
    back = dio.load_dataset(dio.save_dataset(ds, tmp_path / "iso.h5"))
    np.testing.assert_array_equal(back.views["a"], ds.views["a"])
    assert back.views["a"].dtype == np.float32
    assert back.class_names == ds.class_names and list(back.metadata["t"]) == list(ds.metadata["t"])


def test_npz_bzip2_bomb_is_refused_by_the_compression_ratio(tmp_path):
    zeros = io.BytesIO()
    np.save(zeros, np.zeros((4096, 2048), np.float32))  # 32 MiB of zeros: a few hundred bytes in bzip2
    path = _npz(tmp_path / "bomb.npz", {}, compression=zipfile.ZIP_STORED)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_BZIP2) as z:
        z.writestr("train_ids.npy", zeros.getvalue())
    assert path.stat().st_size < 20_000
    with pytest.raises(DatasetError, match=r"bomb\.npz: member 'train_ids' claims 32.0 MiB from \d+ B of compressed data, a ratio above 4096:1"):
        dio.load_dataset(path)


# ---------------------------------------------------------------------- found in review
def test_an_npz_member_padded_after_its_data_is_refused_without_inflating_it(tmp_path):
    import time

    payload = np.zeros(1, dtype=np.float32).tobytes() + bytes(64 * 1024 * 1024)  # 64 MiB of padding
    path = _npz(tmp_path / "padded.npz", {"extra": _npy_bytes((1,), np.float32, payload)},
                compression=zipfile.ZIP_BZIP2)
    assert path.stat().st_size < 10_000
    start = time.perf_counter()
    with pytest.raises(DatasetError, match="extra.*refused before reading the rest"):
        dio.load_dataset(path)
    assert time.perf_counter() - start < 5  # the old reader inflated every padding byte first


def test_a_format_marker_that_is_not_text_is_a_dataset_error(tmp_path):
    path = _h5(tmp_path / "intmarker.h5", extra=lambda f: f.attrs.__setitem__("format", 7))
    with pytest.raises(DatasetError, match="intmarker.h5: the format marker 'format' is not text"):
        dio.load_dataset(path)


def test_hdf5_loads_when_the_process_holds_more_than_1024_descriptors(tmp_path):
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the descriptor limit here is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        ds = dio.load_dataset(_h5(tmp_path / "ok.h5"))
        assert ds.n_items == 24
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_variable_length_text_is_charged_block_by_block_before_all_of_it_is_read(tmp_path, monkeypatch):
    """Strings may share heap objects: tiny on disk, huge decoded. The refusal must come after
    the first block of rows, not after every string has been decoded."""
    import h5py._hl.dataset as h5ds

    names = ["x" * 5000] * 4000  # 80 MB once fixed-width
    path = _h5(tmp_path / "many.h5", lambda f: f.create_dataset(
        "train_ids", data=np.array(names, dtype=object), dtype=h5py.string_dtype()))
    monkeypatch.setenv("CROSSMODAL_MAX_LOAD_BYTES", "20M")
    monkeypatch.setenv(readers.ISOLATION_ENV, "0")  # in this process, so the reads can be counted
    with h5py.File(path, "r") as f:
        wrapper = type(f["train_ids"].asstr())
    rows_read = []
    real = wrapper.__getitem__

    def counting(self, key):
        out = real(self, key)
        rows_read.append(np.size(out))
        return out

    monkeypatch.setattr(wrapper, "__getitem__", counting)
    with pytest.raises(DatasetError, match=r"many\.h5: 'train_ids' claims 4000 strings of up to 5000 characters"):
        dio.load_dataset(path)
    assert sum(rows_read) <= readers._VSTR_ROWS
