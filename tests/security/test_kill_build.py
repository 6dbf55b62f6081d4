"""SIGKILL the music builder part-way: the previous dataset folder stays whole and loadable
(or, once the swap has happened, the new one is complete), never a mix of the two; a rerun
finishes, resumes from the per-work cache and leaves nothing behind.

The builder runs in a subprocess (``python -m crossmodal_core.data.music.build`` through a
small wrapper). Deterministic kill points: the wrapper pauses the child at a chosen moment
(after a work's shard is cached, with ``dataset.npz`` but not the rest in the temporary folder,
with every file written but not swapped in, right after the atomic exchange, between the two
renames of the fallback swap) and the test kills it there; two more kills land at random times.
The previous dataset is a 1-work build, the new one a 2-work build, so the two never look alike.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("music21")

from crossmodal_core import store  # noqa: E402
from crossmodal_core.data.dataset import DatasetError  # noqa: E402
from crossmodal_core.data.music import build as build_mod  # noqa: E402
from crossmodal_core.data.music.build import build_music_dataset, load_music_dataset  # noqa: E402

#: what a corpus build writes (the per-file report is written only for a folder of your own scores)
CORPUS_OUTPUT = [f for f in build_mod.OUTPUT_FILES if f != build_mod.REPORT_FILE]

pytestmark = pytest.mark.slow

OLD_WORKS = ["bach/bwv269"]
NEW_WORKS = ["bach/bwv269", "bach/bwv10.7"]
COLLECTIONS = ["bach"]  # both works are chorales: the corpus scan reads only that collection
CARD = "# previous card: not written by the builder, must survive every rebuild\n"
REPO = Path(__file__).resolve().parents[2]

#: run by the child: patch one kill point in, then run the ordinary command line
HOOKS = r"""
import os, sys, time
from pathlib import Path
from crossmodal_core.data.music import build as b

point, ready = sys.argv[1], Path(sys.argv[2])

def pause():
    ready.write_text(str(os.getpid()))
    time.sleep(600)  # the test kills us here

def pausing_before(fn):
    def wrapped(*args, **kwargs):
        pause()
        return fn(*args, **kwargs)
    return wrapped

if point == "works-processed":  # every work's shard cached, nothing written yet
    b.assemble = pausing_before(b.assemble)
elif point == "dataset-written":  # dataset.npz in the temporary folder, the other files not
    write_text = b.store.atomic_write_text
    def hooked(target, text):
        if Path(target).name == b.FRAGMENTS_FILE:
            pause()
        return write_text(target, text)
    b.store.atomic_write_text = hooked
elif point == "complete-unswapped":  # every file and the marker written, not swapped in
    b._swap_in = pausing_before(b._swap_in)
elif point == "exchanged":  # new folder in place, the previous one (now the temporary) not removed
    exchange = b._exchange
    def hooked(x, y):
        done = exchange(x, y)
        if done:
            pause()
        return done
    b._exchange = hooked
elif point == "fallback-moved-aside":  # no atomic exchange: previous folder renamed aside, new not in
    b._exchange = lambda x, y: False
    rename = os.rename
    def hooked(src, dst):
        rename(src, dst)
        if Path(dst).name.endswith(".replaced"):
            pause()
    os.rename = hooked
elif point != "none":
    raise SystemExit(f"unknown kill point {point}")
sys.exit(b.main(sys.argv[3:]))
"""


@dataclass
class Site:
    root: Path
    home: Path  # CROSSMODAL_HOME: the per-work shard cache lives in home/music_build
    out: Path  # the dataset folder the builder replaces
    previous: Path  # pristine copy of the previous dataset folder

    @property
    def shards(self) -> Path:
        return self.home / "music_build"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Site:
    root = tmp_path_factory.mktemp("kill_build")
    s = Site(root, root / "home", root / "datasets" / "music21_lyrics", root / "previous")
    s.out.parent.mkdir(parents=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CROSSMODAL_HOME", str(s.home))
        build_music_dataset(s.previous, collections=COLLECTIONS, works=OLD_WORKS, jobs=1, progress=False)
    (s.previous / "CARD.md").write_text(CARD)
    return s


@pytest.fixture
def fresh(site, monkeypatch) -> Site:
    """The previous dataset in place, nothing beside it; in-process builds use the site's cache."""
    for entry in site.out.parent.iterdir():
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    shutil.copytree(site.previous, site.out)
    monkeypatch.setenv("CROSSMODAL_HOME", str(site.home))
    return site


# ----------------------------------------------------------------------------- helpers
def start_child(site: Site, point: str) -> tuple[subprocess.Popen, Path]:
    ready = site.root / f"ready-{point}-{time.monotonic_ns()}"
    env = {**os.environ, "CROSSMODAL_HOME": str(site.home), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    log = open(site.root / f"child-{point}.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", HOOKS, point, str(ready), "--out", str(site.out), "--collections", *COLLECTIONS,
         "--works", *NEW_WORKS, "--jobs", "1", "--quiet"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return proc, ready


def kill_at(site: Site, point: str, timeout: float = 240.0) -> None:
    """Run the child until it reaches ``point``, then SIGKILL it."""
    proc, ready = start_child(site, point)
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if proc.poll() is not None:
            log = (site.root / f"child-{point}.log").read_text(errors="replace")
            pytest.fail(f"the builder exited ({proc.returncode}) before reaching {point}:\n{log[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the builder did not reach {point} within {timeout} s")
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def siblings(site: Site) -> list[Path]:
    return sorted(p for p in site.out.parent.iterdir() if p != site.out)


def assert_previous_intact(site: Site) -> None:
    assert files(site.out) == files(site.previous)  # byte for byte, nothing added or missing
    ds, fragments = load_music_dataset(site.out)
    assert set(ds.metadata["work_id"]) == set(OLD_WORKS) and len(fragments) == ds.n_items


def assert_new_complete(site: Site) -> None:
    ds, fragments = load_music_dataset(site.out)
    assert set(ds.metadata["work_id"]) == set(NEW_WORKS) and len(fragments) == ds.n_items
    info = store.read_json(site.out / build_mod.INFO_FILE)
    assert info["n_fragments"] == ds.n_items and info["selection"]["works"] == sorted(NEW_WORKS)
    assert (site.out / "CARD.md").read_text() == CARD
    assert sorted(p.name for p in site.out.iterdir()) == sorted([*CORPUS_OUTPUT, "CARD.md"])


def assert_only_stale_temporaries_beside(site: Site) -> list[Path]:
    """What the kill left beside the folder is removed by the store's stale-temporary cleanup."""
    left = siblings(site)
    assert all(store.is_temporary(p) for p in left), left
    removed = store.clean_stale_temporaries(site.out.parent)
    assert sorted(removed) == left and siblings(site) == []
    return left


def rerun(site: Site, monkeypatch) -> None:
    """A rerun in this process; it must not process any work again (every shard is cached)."""
    def no_recompute(ref):
        raise AssertionError(f"{ref.work_id} was processed again instead of read from the cache")

    with monkeypatch.context() as mp:
        mp.setattr(build_mod.phrases_mod, "extract_fragments", no_recompute)
        build_music_dataset(site.out, collections=COLLECTIONS, works=NEW_WORKS, jobs=1, progress=False)
    assert_new_complete(site)
    assert siblings(site) == []


# ----------------------------------------------------------------------------- kill points
def test_kill_after_the_works_are_processed_then_rerun_resumes_from_the_cache(fresh, monkeypatch):
    site = fresh
    for shard in site.shards.glob("bach_bwv10.7-*.npz"):
        shard.unlink()  # the child has to process this work itself
    kill_at(site, "works-processed")
    assert_previous_intact(site)
    assert siblings(site) == []  # killed before any output was written
    (shard,) = site.shards.glob("bach_bwv10.7-*.npz")
    before = shard.stat().st_mtime_ns, shard.read_bytes()
    rerun(site, monkeypatch)
    assert (shard.stat().st_mtime_ns, shard.read_bytes()) == before  # reused, not rewritten


def test_kill_while_the_temporary_folder_is_half_written(fresh, monkeypatch):
    site = fresh
    kill_at(site, "dataset-written")
    assert_previous_intact(site)
    (tmp,) = siblings(site)
    names = {p.name for p in tmp.iterdir()}
    assert build_mod.DATASET_FILE in names and build_mod.INFO_FILE not in names  # half state, aside
    assert_only_stale_temporaries_beside(site)
    rerun(site, monkeypatch)


def test_kill_with_the_new_folder_complete_but_not_swapped_in(fresh, monkeypatch):
    site = fresh
    kill_at(site, "complete-unswapped")
    assert_previous_intact(site)
    (tmp,) = siblings(site)
    assert {p.name for p in tmp.iterdir()} == {*CORPUS_OUTPUT, "CARD.md"}
    rerun(site, monkeypatch)  # the rerun removes the dead builder's folder itself


def test_kill_right_after_the_atomic_exchange(fresh, monkeypatch):
    site = fresh
    if not _can_exchange(site):
        pytest.skip("this file system has no atomic exchange (renameat2)")
    kill_at(site, "exchanged")
    assert_new_complete(site)  # the swap happened: the new dataset, whole
    (tmp,) = siblings(site)
    assert store.read_json(tmp / build_mod.INFO_FILE)["selection"]["works"] == OLD_WORKS  # the previous one
    assert_only_stale_temporaries_beside(site)
    rerun(site, monkeypatch)


def test_kill_between_the_two_renames_of_the_fallback_swap(fresh, monkeypatch):
    site = fresh
    kill_at(site, "fallback-moved-aside")
    with pytest.raises(DatasetError, match="missing"):
        load_music_dataset(site.out)  # the one moment without a folder ...
    backup = build_mod._backup_path(site.out)
    assert not store.is_temporary(backup)  # ... so the store's cleanup can never delete it
    store.clean_stale_temporaries(site.out.parent)
    assert files(backup) == files(site.previous)
    build_mod._recover_interrupted_swap(site.out)  # what the next build does first
    assert_previous_intact(site)
    assert siblings(site) == []
    rerun(site, monkeypatch)


def test_kills_at_random_moments_leave_the_previous_or_the_new_dataset(fresh, monkeypatch):
    site = fresh
    rng = random.Random(20261201)
    outcomes = []
    for delay in sorted(rng.uniform(0.5, 6.0) for _ in range(2)):
        shutil.rmtree(site.out)  # start each run from the previous dataset
        shutil.copytree(site.previous, site.out)
        proc, _ = start_child(site, "none")
        time.sleep(delay)
        finished = proc.poll() is not None
        if not finished:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        if _is_previous(site):
            assert_previous_intact(site)
            outcomes.append((round(delay, 2), "previous"))
        else:
            assert_new_complete(site)
            outcomes.append((round(delay, 2), "new, finished" if finished else "new"))
        assert not build_mod._backup_path(site.out).exists()
        left = siblings(site)
        assert all(store.is_temporary(p) for p in left), left
        store.clean_stale_temporaries(site.out.parent)
    print("random kills (seconds after start, what was left):", outcomes)
    rerun(site, monkeypatch)


def _is_previous(site: Site) -> bool:
    return (site.out / build_mod.INFO_FILE).read_bytes() == (site.previous / build_mod.INFO_FILE).read_bytes()


def _can_exchange(site: Site) -> bool:
    a, b = site.root / "exchange-a", site.root / "exchange-b"
    for p in (a, b):
        p.mkdir(exist_ok=True)
    try:
        return build_mod._exchange(a, b)
    finally:
        for p in (a, b):
            shutil.rmtree(p, ignore_errors=True)
