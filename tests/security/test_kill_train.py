"""``train`` killed with SIGKILL (during the fit, at each step of the save): the model store
then holds the previous model or none, never half of one, and a rerun succeeds and leaves no
temporary behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from crossmodal_core import store
from crossmodal_core.data.io import save_dataset
from crossmodal_core.data.synthetic import make_synthetic_av
from crossmodal_core.store import REPO_ROOT

pytestmark = pytest.mark.slow

# runs `cli.main(argv)` and SIGKILLs itself at the step named by $KILL_AT
WRAPPER = r"""
import os, signal, sys
from pathlib import Path
from crossmodal_core import cli, store
from crossmodal_core.models import registry, trained

def die():
    os.kill(os.getpid(), signal.SIGKILL)

point = os.environ.get("KILL_AT", "")
if point == "embeddings":  # the embeddings file is complete in the temporary folder
    real = store.atomic_save_npz
    def patched(*a, **k):
        real(*a, **k)
        die()
    store.atomic_save_npz = patched
elif point == "state":  # half of the model state written
    def patched(model, path, **k):
        Path(path).write_bytes(b"half a model")
        die()
    registry.save_model = patched
elif point == "info":  # half of info.json written
    def patched(path, obj, **k):
        Path(path).write_text('{"name": "cca", "vie')
        die()
    store.atomic_write_json = patched
elif point == "exchanged":  # the atomic exchange done, the previous folder not yet removed
    real_exchange = store.exchange_paths
    def patched(a, b):
        if real_exchange(a, b):
            die()
        return False
    store.exchange_paths = patched
elif point == "swap":  # no exchange here: the previous folder moved aside, the new one not yet in place
    store.exchange_paths = lambda a, b: False
    real_rename = os.rename
    def patched(src, dst):
        if str(src).endswith(".new"):
            die()
        return real_rename(src, dst)
    os.rename = patched
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.fixture
def env(tmp_path):
    ds = make_synthetic_av(n_train=300, n_test=100, n_classes=4, dims=(8, 12), seed=0, name="kill")
    data = save_dataset(ds, tmp_path / "kill.npz")
    home = tmp_path / "home"
    return data, home, {**os.environ, "CROSSMODAL_HOME": str(home), "OMP_NUM_THREADS": "1"}


def run(env: dict, argv: list[str], kill_at: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WRAPPER, *argv], cwd=REPO_ROOT, env={**env, "KILL_AT": kill_at},
                          capture_output=True, text=True, timeout=300)


def stored(data: Path, home: Path):
    """(models the store lists, visible entries, hidden temporaries) -- read in this process."""
    from crossmodal_core.data import catalog
    from crossmodal_core.models import trained

    old = os.environ.get("CROSSMODAL_HOME")
    os.environ["CROSSMODAL_HOME"] = str(home)
    try:
        loaded = catalog.open_dataset(str(data), allow_path=True)
        models = trained.list_trained(loaded)
        for m in models:  # whatever is listed is whole: embeddings of every item and a loadable state
            assert trained.load_embeddings(m)["audio"].shape[0] == loaded.dataset.n_items
            trained.load_model_object(m)
        root = trained.store_root(loaded)
        entries = sorted(root.iterdir()) if root.is_dir() else []
    finally:
        if old is None:
            os.environ.pop("CROSSMODAL_HOME", None)
        else:
            os.environ["CROSSMODAL_HOME"] = old
    visible = [p for p in entries if not p.name.startswith(".")]
    hidden = [p for p in entries if p.name.startswith(".")]
    return models, visible, hidden


def test_kill_at_each_step_of_the_save_keeps_the_previous_model_or_none(env):
    data, home, environ = env
    argv = ["train", "--data", str(data), "--model", "cca"]
    start = time.perf_counter()

    killed = run(environ, argv, "state")  # the very first model: killed while saving
    assert killed.returncode == -signal.SIGKILL
    models, visible, hidden = stored(data, home)
    assert models == [] and visible == [] and hidden, "nothing listed, only a hidden temporary"

    first = run(environ, argv)
    assert first.returncode == 0, first.stderr
    models, visible, hidden = stored(data, home)
    assert len(models) == 1 and hidden == [], "the rerun succeeds and cleans the killed write's temporary"
    previous = models[0].info["trained_at"]
    previous_emb = {k: v.copy() for k, v in models[0].embeddings.items()} or None

    for point in ("embeddings", "state", "info", "swap"):
        killed = run(environ, argv, point)
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr)
        if point == "swap":
            # between the two renames the previous model waits beside its folder under a name
            # the start-up cleanup never removes, and the next writer (or reader) puts it back
            store.clean_stale_temporaries(home)
            folder = next(p for p in (home / "models").rglob(".*.replaced"))
            assert store.recover_interrupted_swap(folder.with_name(folder.name[1:-len(".replaced")]))
        models, visible, hidden = stored(data, home)
        assert [m.info["trained_at"] for m in models] == [previous], point
        assert len(visible) == len(models), f"{point}: a half model is visible: {visible}"
        if previous_emb and models:
            np.testing.assert_array_equal(models[0].embeddings["audio"], previous_emb["audio"])

    killed = run(environ, argv, "exchanged")  # after the atomic exchange: the new model is in place
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    models, visible, hidden = stored(data, home)
    assert len(models) == 1 and models[0].info["trained_at"] > previous
    previous = models[0].info["trained_at"]

    again = run(environ, argv)
    assert again.returncode == 0, again.stderr
    models, visible, hidden = stored(data, home)
    assert len(models) == 1 and models[0].info["trained_at"] > previous and hidden == []
    assert time.perf_counter() - start < 240


def test_kill_during_a_deep_fit_leaves_nothing_and_the_rerun_succeeds(env):
    data, home, environ = env
    argv = ["train", "--data", str(data), "--model", "dcca", "--param", "hidden=[16]", "--param", "progress=false"]
    proc = subprocess.Popen([sys.executable, "-c", WRAPPER, *argv, "--param", "epochs=100000"], cwd=REPO_ROOT,
                            env=environ, stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        deadline = time.time() + 240
        while "training" not in line and time.time() < deadline:
            line = proc.stderr.readline()
            assert line or proc.poll() is None, "train exited before fitting"
        time.sleep(1.0)  # well inside the (endless) fit
        assert proc.poll() is None, "the fit must still be running when it is killed"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    models, visible, hidden = stored(data, home)
    assert models == [] and visible == []

    rerun = run(environ, [*argv, "--param", "epochs=3"])
    assert rerun.returncode == 0, rerun.stderr
    models, visible, hidden = stored(data, home)
    assert [m.name for m in models] == ["dcca"] and hidden == []
