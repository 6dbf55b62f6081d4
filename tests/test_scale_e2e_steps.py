"""benchmarks/scale_e2e.run_step: a step that times out or is interrupted takes its whole process
group with it (a grandchild such as a streamlit server or Chromium must not outlive it)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import scale_e2e  # noqa: E402

STEP = ("import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "open(sys.argv[1], 'w').write(str(p.pid))\n"
        "time.sleep(60)\n")


def _gone(pid: int, within: float = 5.0) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def _grandchild(pidfile: Path) -> int:
    end = time.monotonic() + 10
    while not (pidfile.exists() and pidfile.read_text()):
        assert time.monotonic() < end, "the step never started its grandchild"
        time.sleep(0.05)
    return int(pidfile.read_text())


def _samplers() -> int:
    return sum(1 for t in threading.enumerate() if getattr(t, "_target", None) is not None
               and getattr(t._target, "__qualname__", "") == "TreeSampler._run")


def test_timeout_kills_the_grandchild_and_stops_the_sampler(tmp_path):
    pidfile = tmp_path / "pid"
    before = _samplers()
    with pytest.raises(RuntimeError, match="failed"):
        scale_e2e.run_step("sleepy", [sys.executable, "-c", STEP, str(pidfile)], env=None,
                           log=tmp_path / "log", timeout=2.0)
    assert _gone(_grandchild(pidfile))
    assert _samplers() == before


def test_an_exception_while_waiting_kills_the_group(tmp_path, monkeypatch):
    pidfile = tmp_path / "pid"
    real_sleep = time.sleep

    def interrupt_once_started(seconds):  # Ctrl-C once the grandchild exists
        if pidfile.exists() and pidfile.read_text():
            raise KeyboardInterrupt
        real_sleep(seconds)

    monkeypatch.setattr(scale_e2e.time, "sleep", interrupt_once_started)
    before = _samplers()
    with pytest.raises(KeyboardInterrupt):
        scale_e2e.run_step("sleepy", [sys.executable, "-c", STEP, str(pidfile)], env=None, log=tmp_path / "log")
    monkeypatch.undo()
    assert _gone(_grandchild(pidfile))
    assert _samplers() == before
