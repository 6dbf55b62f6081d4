"""Render time of every app page in a real browser (Debian chromium + Playwright), cold and warm.

Usage::

    .venv/bin/python benchmarks/bench_app.py [--dataset music] [--repeats 3] [--pages home,explorer]

It starts ``streamlit run app.py`` on a free local port with the current ``CROSSMODAL_HOME`` /
``CROSSMODAL_ASSETS`` (so it measures what ``make run`` shows: the embedded dataset and the
models and projections ``make prepare`` stored), opens each page once (cold: imports, loading
the dataset and embeddings, engraving scores) and then ``--repeats`` more times in new tabs
of the same browser (warm: new Streamlit sessions, server caches and browser cache filled). A page counts as rendered at the last
change of its element tree before it stays unchanged for a second with no "running"
indicator. Target: every page warm in under 2 s; the ratio column is warm median / 2 s.

The machine's load matters (the project's machines have 2 shared cores): report the figures
with the load they were taken under.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAGES = {"home": "", "explorer": "explorer", "retrieval": "retrieval", "alignment": "alignment"}
TARGET_S = 2.0

STATE_JS = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  if (!main || !main.querySelector('h1')) return {n: -1};
  const app = document.querySelector('[data-testid="stApp"]');
  const busy = !app || app.getAttribute('data-test-script-state') !== 'notRunning'
            || !!document.querySelector('[data-testid="stStatusWidget"]')
            || !!main.querySelector('[data-testid="stSkeleton"]');
  return {n: main.querySelectorAll('*').length, busy: busy,
          error: main.querySelectorAll('[data-testid="stException"]').length};
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.headless", "true",
           "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=dict(os.environ), stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit("streamlit exited before it became healthy")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("streamlit did not become healthy in 120 s")


def render_time(page, url: str, quiet_s: float = 1.0, timeout_s: float = 300.0) -> tuple[float, int]:
    """Seconds from navigation to the last change of the page's elements; exceptions shown."""
    start = time.perf_counter()
    page.goto(url, wait_until="commit")
    last_n, last_change = None, start
    while time.perf_counter() - start < timeout_s:
        state = page.evaluate(STATE_JS)
        now = time.perf_counter()
        if state["n"] != last_n or state.get("busy", True):
            if state["n"] != last_n:
                last_change = now
            last_n = state["n"]
        elif now - last_change >= quiet_s:
            return last_change - start, int(state.get("error", 0))
        page.wait_for_timeout(50)
    raise TimeoutError(f"{url} did not settle in {timeout_s} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="warm visits per page (default 3)")
    parser.add_argument("--pages", default=",".join(PAGES), help="comma-separated subset of " + ",".join(PAGES))
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        raise SystemExit("needs Debian chromium at /usr/bin/chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    from crossmodal_core import appdata

    entries = appdata.list_datasets()
    print(f"dataset shown by default: {entries[0].label}")
    port = free_port()
    t0 = time.perf_counter()
    server = start_server(port)
    print(f"server healthy after {time.perf_counter() - t0:.1f} s; load average {os.getloadavg()[0]:.2f}")
    rows = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for name in args.pages.split(","):
                url = f"http://127.0.0.1:{port}/{PAGES[name]}"
                # cold: a browser with empty caches and a server that has not drawn this page yet
                context = browser.new_context(viewport={"width": 1600, "height": 1000})
                cold, errors = render_time(context.new_page(), url)
                # warm: a new tab (a new Streamlit session) in the same browser, as a returning user
                warm = []
                for _ in range(args.repeats):
                    tab = context.new_page()
                    seconds, err = render_time(tab, url)
                    errors += err
                    warm.append(seconds)
                    tab.close()
                context.close()
                median = statistics.median(warm)
                rows.append((name, cold, median, max(warm), errors))
                print(f"  {name:10s} cold {cold:6.2f} s   warm median {median:5.2f} s (max {max(warm):5.2f})"
                      f"   warm/target {median / TARGET_S:4.2f}" + (f"   EXCEPTIONS: {errors}" if errors else ""),
                      flush=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
    print(f"\n| page | cold (s) | warm median (s) | warm max (s) | warm / {TARGET_S:.0f} s target |")
    print("|---|---|---|---|---|")
    for name, cold, median, worst, _ in rows:
        print(f"| {name} | {cold:.2f} | {median:.2f} | {worst:.2f} | {median / TARGET_S:.2f} |")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (2 shared cores: figures inflated under load)")
    return 1 if any(r[4] for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
