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


# ---------------------------------------------------------------------- untrusted names
HOSTILE_NAMES = ["..", ".", "../../x", "/etc/passwd", "a/b\\c", "nul\x00byte", "x" * 5000, "Lindenbäume ♪",
                 "数据集", "", " ", "-rf", ".hidden", "con:", "a\nb"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_slug_is_one_safe_path_component(name):
    s = store.slug(name)
    assert s and len(s) <= store.SLUG_MAX_LENGTH
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in s)
    assert not s.startswith((".", "-"))
    assert s not in (".", "..")


def test_slug_keeps_plain_names_and_keeps_distinct_names_distinct():
    assert store.slug("music21_lyrics") == "music21_lyrics"
    assert store.slug("synthetic-vegas-small") == "synthetic-vegas-small"
    slugs = {store.slug(n) for n in HOSTILE_NAMES + ["x", "etc-passwd", "x" * 4999]}
    assert len(slugs) == len(HOSTILE_NAMES) + 3


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_child_path_never_leaves_its_root(tmp_path, name):
    root = tmp_path / "store"
    path = store.child_path(root, name, name, suffix=".json")
    assert root.resolve() in path.resolve().parents
    store.atomic_write_json(path, {"ok": True})
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written == [path]


# ---------------------------------------------------------------------- temporaries of killed writes
def test_temporaries_are_hidden_and_carry_the_writer_pid(tmp_path):
    with store.atomic_path(tmp_path / "data.npz", suffix=".npz") as tmp:
        assert tmp.name.startswith(".data.npz.cmtmp-")
        assert f"-{os.getpid()}-" in tmp.name
        assert store.is_temporary(tmp)
        tmp.write_bytes(b"x")
    assert not store.is_temporary(tmp_path / "data.npz")


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_clean_stale_temporaries_removes_only_those_of_dead_writers(tmp_path):
    dead = _dead_pid()
    stale_file = tmp_path / f".upload.npz.cmtmp-{dead}-abc.npz"
    stale_dir = tmp_path / "sub" / f".music21_lyrics.cmtmp-{dead}-xyz"
    live = tmp_path / f".other.json.cmtmp-{os.getpid()}-def.tmp"
    plain = tmp_path / "upload.npz"
    stale_dir.mkdir(parents=True)
    (stale_dir / "dataset.npz").write_bytes(b"half")
    for p in (stale_file, live, plain):
        p.write_bytes(b"x")
    removed = store.clean_stale_temporaries(tmp_path)
    assert sorted(removed) == sorted([stale_file, stale_dir])
    assert not stale_file.exists() and not stale_dir.exists()
    assert live.exists() and plain.exists()


def test_a_name_that_contains_the_tag_does_not_make_a_live_write_look_dead(tmp_path):
    dead = _dead_pid()
    target = store.child_path(tmp_path, f"a.cmtmp-{dead}-b", suffix=".npz")  # an untrusted name
    assert target.name == f"a.cmtmp-{dead}-b.npz"
    with store.atomic_path(target, suffix=".npz") as tmp:
        tmp.write_bytes(b"in progress")
        assert store.clean_stale_temporaries(tmp_path) == []
        assert tmp.exists()
    assert target.read_bytes() == b"in progress"


def test_swap_in_dir_keeps_the_previous_folder_until_the_new_one_is_in(tmp_path, monkeypatch):
    out, new = tmp_path / "model", tmp_path / ".model.cmtmp-1-x.new"
    out.mkdir()
    (out / "v").write_text("1")
    new.mkdir()
    (new / "v").write_text("2")
    monkeypatch.setattr(store, "exchange_paths", lambda a, b: False)  # the two-rename fallback
    real_rename = os.rename

    def dies_on_the_second_rename(src, dst):
        if str(src).endswith(".new"):
            raise KeyboardInterrupt  # stands for a kill between the two renames
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", dies_on_the_second_rename)
    with pytest.raises(KeyboardInterrupt):
        store.swap_in_dir(new, out)
    monkeypatch.setattr(os, "rename", real_rename)
    assert (out / "v").read_text() == "1"  # put back at once when the process survives
    # a real kill leaves it aside under a name the cleanup keeps, and recovery puts it back
    real_rename(out, store.replaced_path(out))
    store.clean_stale_temporaries(tmp_path)
    assert store.replaced_path(out).is_dir()
    assert store.recover_interrupted_swap(out) and (out / "v").read_text() == "1"
    store.swap_in_dir(new, out)
    assert (out / "v").read_text() == "2" and not new.exists()
