import os
import stat

import numpy as np
import pytest

from crossmodal_core import store


def test_failed_write_keeps_the_previous_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "result.json"
    store.atomic_write_json(target, {"map": 0.5})
    with pytest.raises(RuntimeError):
        with store.atomic_path(target) as tmp:
            tmp.write_text("half a fi")
            raise RuntimeError("crash mid-write")
    assert store.read_json(target) == {"map": 0.5}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


def test_written_files_get_the_mode_a_plain_open_would(tmp_path):
    old = os.umask(0o022)
    try:
        path = store.atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_npz_bytes_are_deterministic_and_round_trip(tmp_path):
    arrays = {"x": np.arange(12, dtype=np.float32).reshape(3, 4), "names": np.array(["a", "bb"])}
    a = store.atomic_save_npz(tmp_path / "a.npz", **arrays).read_bytes()
    b = store.atomic_save_npz(tmp_path / "b.npz", **arrays).read_bytes()
    assert a == b
    with np.load(tmp_path / "a.npz", allow_pickle=False) as z:
        np.testing.assert_array_equal(z["x"], arrays["x"])
        np.testing.assert_array_equal(z["names"], arrays["names"])


def test_cache_key_ignores_dict_order_but_not_values():
    k1 = store.cache_key("ds", {"reg": 0.1, "k": 10})
    assert k1 == store.cache_key("ds", {"k": 10, "reg": 0.1})
    assert k1 != store.cache_key("ds", {"k": 10, "reg": 0.2})
    assert len(k1) == 16


def test_read_json_names_the_file_on_bad_content(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        store.read_json(bad)
