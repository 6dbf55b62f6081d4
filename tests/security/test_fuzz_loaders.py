"""Fuzzing the loaders: a damaged or hostile file either loads as a valid CrossModalDataset or
raises DatasetError; no other exception, crash or hang ever reaches the caller.

Two families of inputs, from small valid files (our format and the VEGAS layout, NPZ and HDF5):
byte-level damage (bit flips, overwritten runs, truncation, zeroed runs) and, for NPZ,
structure-aware damage (one member replaced by an arbitrary array of any dtype and shape,
written as a valid archive, so the checks after decoding are reached too). HDF5 files are
read from a real path through the default (isolated) reader.
"""

import os
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from crossmodal_core.data import io as dio
from crossmodal_core.data.dataset import CrossModalDataset, DatasetError

_SETTINGS = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
_WORK = Path(tempfile.mkdtemp(prefix="crossmodal-fuzz-"))


def _ours(n=12):
    rng = np.random.default_rng(0)
    return CrossModalDataset(
        views={"audio": rng.standard_normal((n, 3)).astype(np.float32), "visual": rng.standard_normal((n, 4)),
               "audio_seq": rng.standard_normal((n, 2, 3)).astype(np.float32)},
        labels={"class": np.arange(n) % 3}, class_names={"class": ["a", "b", "ç"]},
        metadata={"title": np.array([f"t{i}" for i in range(n)]), "year": np.arange(n)},
        folds=np.arange(n) % 2, split=np.where(np.arange(n) < 8, "train", "test"), name="fuzz",
        info={"synthetic": True, "default_label": "class"},
    )


def _vegas_arrays(n=8):
    rng = np.random.default_rng(1)
    return {
        "audio_train": rng.standard_normal((n, 3)).astype(np.float32),
        "visual_train": rng.standard_normal((n, 4)).astype(np.float32),
        "audio_test": rng.standard_normal((n, 3)).astype(np.float32),
        "visual_test": rng.standard_normal((n, 4)).astype(np.float32),
        "train_labels": np.eye(2, dtype=np.float32)[np.arange(n) % 2],
        "test_labels": np.arange(n) % 2,
        "class_names": np.array(["dog", "drum"]),
        "train_ids": np.array([f"yt{i}" for i in range(n)]),
    }


def _build_bases() -> dict[str, bytes]:
    paths = {
        "ours.npz": dio.save_dataset(_ours(), _WORK / "ours.npz"),
        "ours.h5": dio.save_dataset(_ours(), _WORK / "ours.h5"),
    }
    np.savez(_WORK / "vegas.npz", **_vegas_arrays())  # stored (uncompressed) members
    paths["vegas.npz"] = _WORK / "vegas.npz"
    with h5py.File(_WORK / "vegas.h5", "w") as f:
        for k, v in _vegas_arrays().items():
            f.create_dataset(k, data=np.char.encode(v, "utf-8") if v.dtype.kind == "U" else v)
    paths["vegas.h5"] = _WORK / "vegas.h5"
    for p in paths.values():  # the undamaged files are valid
        assert isinstance(dio.load_dataset(p), CrossModalDataset)
    return {name: p.read_bytes() for name, p in paths.items()}


BASES = _build_bases()
COUNTS = {"byte": 0, "member": 0}
OUTCOMES: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def _short_hdf5_timeout():
    old = os.environ.get("CROSSMODAL_HDF5_TIMEOUT_S")
    os.environ["CROSSMODAL_HDF5_TIMEOUT_S"] = "3"  # a corrupt file can make HDF5 loop
    yield
    if old is None:
        os.environ.pop("CROSSMODAL_HDF5_TIMEOUT_S", None)
    else:
        os.environ["CROSSMODAL_HDF5_TIMEOUT_S"] = old


def _load_must_be_clean(path: Path) -> None:
    try:
        ds = dio.load_dataset(path)
    except DatasetError as exc:
        assert str(exc).startswith(str(path)), str(exc)
        msg = str(exc)
        kind = ("crash" if "crashed" in msg else "timeout" if "took longer" in msg
                else "unreadable" if "unreadable" in msg or "not a readable" in msg else "refused")
        OUTCOMES[kind] = OUTCOMES.get(kind, 0) + 1
        return
    assert isinstance(ds, CrossModalDataset)
    ds.validate()
    OUTCOMES["loaded"] = OUTCOMES.get("loaded", 0) + 1


_op = st.one_of(
    st.tuples(st.just("flip"), st.floats(0, 1, exclude_max=True), st.integers(0, 7)),
    st.tuples(st.just("set"), st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
    st.tuples(st.just("overwrite"), st.floats(0, 1, exclude_max=True), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("zero"), st.floats(0, 1, exclude_max=True), st.integers(1, 64)),
    st.tuples(st.just("big"), st.floats(0, 1, exclude_max=True), st.sampled_from([0x7F, 0xFF, 0x80])),
)


def _damage(data: bytes, ops, truncate) -> bytes:
    buf = bytearray(data)
    for kind, where, arg in ops:
        pos = int(where * len(buf))
        if kind == "flip":
            buf[pos] ^= 1 << arg
        elif kind in ("set", "big"):
            buf[pos] = arg
        elif kind == "overwrite":
            buf[pos: pos + len(arg)] = arg
        else:
            buf[pos: pos + arg] = bytes(min(arg, len(buf) - pos))
    if truncate is not None:
        buf = buf[: int(truncate * len(buf))]
    return bytes(buf)


_damages = dict(ops=st.lists(_op, min_size=1, max_size=6),
                truncate=st.one_of(st.none(), st.none(), st.floats(0, 1, exclude_max=True)))


def _check_damaged(base, ops, truncate):
    path = _WORK / f"damaged-{os.getpid()}{Path(base).suffix}"
    path.write_bytes(_damage(BASES[base], ops, truncate))
    COUNTS["byte"] += 1
    _load_must_be_clean(path)


@pytest.mark.parametrize("base", ["ours.npz", "vegas.npz"])
@settings(max_examples=160, **_SETTINGS)
@given(**_damages)
def test_damaged_npz_loads_or_raises_dataset_error(base, ops, truncate):
    _check_damaged(base, ops, truncate)


@pytest.mark.parametrize("base", ["ours.h5", "vegas.h5"])  # each example forks the HDF5 reader: fewer
@settings(max_examples=80, **_SETTINGS)
@given(**_damages)
def test_damaged_hdf5_loads_or_raises_dataset_error(base, ops, truncate):
    _check_damaged(base, ops, truncate)


_dtypes = st.one_of(
    hnp.boolean_dtypes(), hnp.integer_dtypes(), hnp.unsigned_integer_dtypes(), hnp.floating_dtypes(),
    hnp.complex_number_dtypes(), hnp.unicode_string_dtypes(max_len=4), hnp.byte_string_dtypes(max_len=4),
    hnp.datetime64_dtypes(), st.just(np.dtype([("a", "<f4"), ("b", "<i2")])),
)
_members = st.sampled_from(sorted(dio.dataset_to_arrays(_ours())) + sorted(_vegas_arrays()))


@settings(max_examples=160, **_SETTINGS)
@given(which=st.sampled_from(["ours", "vegas"]), key=_members,
       value=hnp.arrays(_dtypes, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=13)),
       drop=st.booleans())
def test_any_member_value_loads_or_raises_dataset_error(which, key, value, drop):
    arrays = dict(dio.dataset_to_arrays(_ours()) if which == "ours" else _vegas_arrays())
    if drop:
        arrays.pop(key, None)
    else:
        arrays[key] = value
    path = _WORK / f"member-{os.getpid()}.npz"
    np.savez(path, **arrays)
    COUNTS["member"] += 1
    _load_must_be_clean(path)


def test_fuzz_ran_enough_examples():
    """At least 500 examples in total (runs after the fuzz tests above, in file order)."""
    if COUNTS["byte"] == 0 or COUNTS["member"] == 0:
        pytest.skip("the fuzz tests were deselected")
    assert COUNTS["byte"] + COUNTS["member"] >= 500, COUNTS
    print(f"fuzz examples {COUNTS}, outcomes {OUTCOMES}")
    # the damage reaches both sides: some files still load, others are refused after decoding
    assert OUTCOMES.get("loaded", 0) > 0 and OUTCOMES.get("refused", 0) > 0, OUTCOMES
