"""The app listens on loopback unless the user chooses otherwise (issue 9, "Network")."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_streamlit_config_binds_loopback():
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"


def _make_dry_run(*args: str) -> str:
    out = subprocess.run(["make", "-n", "--no-print-directory", "run", *args], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_make_run_defaults_to_loopback_and_warns_for_a_network_address():
    default = _make_dry_run()
    assert "--server.address 127.0.0.1" in default
    exposed = _make_dry_run("HOST=0.0.0.0")
    assert "--server.address 0.0.0.0" in exposed
    assert "WARNING: serving the app on 0.0.0.0" in exposed
    assert "upload" in exposed and "training" in exposed


def _listening_addresses(port: int) -> set[str]:
    """Local addresses in LISTEN state on ``port`` (IPv4 and IPv6), from /proc/net."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            addr_hex, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:
                found.add(addr_hex if width == 32 else socket.inet_ntoa(bytes.fromhex(addr_hex)[::-1]))
    return found


@pytest.mark.slow
def test_the_served_app_listens_on_loopback_only(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "CROSSMODAL_HOME": str(tmp_path)}
    # no --server.address: the project's config decides
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.headless", "true", "--browser.gatherUsageStats", "false"],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the app did not answer its health check within 120 s")
        assert _listening_addresses(port) == {"127.0.0.1"}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
