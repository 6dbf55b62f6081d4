"""Render time of every app page in a real browser (Debian chromium + Playwright), cold and warm.

Usage::

    .venv/bin/python benchmarks/bench_app.py [--dataset music] [--repeats 3] [--pages home,explorer]

It starts ``streamlit run app.py`` on a free local port with the current ``CROSSMODAL_HOME`` /
``CROSSMODAL_ASSETS`` (so it measures what ``make run`` shows: the embedded dataset and the
models and projections ``make prepare`` stored), opens each page once (cold: imports, loading
the dataset and embeddings, engraving scores), then measures two kinds of warm visit:

* **warm (sidebar)** -- the number the target is about: a user who comes back to the page in
  the same tab by clicking its sidebar link (same Streamlit session, frontend already loaded,
  server caches filled). Each repeat goes to another page through the sidebar, then back.
* **warm (new tab)** -- the page opened in a new tab of the same browser: a new Streamlit
  session that also reloads and re-parses the frontend bundle (JavaScript from the HTTP cache)
  and, for charts, plotly.js. Printed for reference; it is what a bookmark/reload costs.

A page counts as rendered at the last change of its element tree (with its own title shown)
before it stays unchanged for a second with no "running" indicator. Target: every page warm
in under 2 s; the ratio column is the sidebar warm median / 2 s.

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
TITLES = {"home": "crossmodal", "explorer": "Embedding explorer", "retrieval": "Retrieval",
          "alignment": "Alignment"}
TARGET_S = 2.0

STATE_JS = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  if (!main || !main.querySelector('h1')) return {n: -1};
  const app = document.querySelector('[data-testid="stApp"]');
  const busy = !app || app.getAttribute('data-test-script-state') !== 'notRunning'
            || !!document.querySelector('[data-testid="stStatusWidget"]')
            || !!main.querySelector('[data-testid="stSkeleton"]');
  return {n: main.querySelectorAll('*').length, busy: busy, title: main.querySelector('h1').textContent,
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


def render_time(page, url: str, quiet_s: float = 1.0, timeout_s: float = 300.0, title: str = "",
                click_link: bool = False) -> tuple[float, int]:
    """Seconds from navigation to the last change of the page's elements; exceptions shown.

    ``click_link`` navigates by clicking the page's sidebar link (same session) instead of
    loading ``url``; the page counts as shown once its ``<h1>`` starts with ``title``.
    """
    if click_link:
        path = url.rsplit("/", 1)[-1]
        link = page.locator(f'[data-testid="stSidebarNav"] a[href$="/{path}"]')
        start = time.perf_counter()
        link.first.click()
    else:
        start = time.perf_counter()
        page.goto(url, wait_until="commit")
    last_n, last_change = None, start
    while time.perf_counter() - start < timeout_s:
        state = page.evaluate(STATE_JS)
        now = time.perf_counter()
        if not state.get("title", "").startswith(title):
            last_n, last_change = None, now
        elif state["n"] != last_n or state.get("busy", True):
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
                other = "explorer" if name == "home" else "home"
                other_url = f"http://127.0.0.1:{port}/{PAGES[other]}"
                # cold: a browser with empty caches and a server that has not drawn this page yet
                context = browser.new_context(viewport={"width": 1600, "height": 1000})
                tab = context.new_page()
                cold, errors = render_time(tab, url, title=TITLES[name])
                # warm (sidebar): away through the sidebar, then back: same tab and session
                warm = []
                for _ in range(args.repeats):
                    render_time(tab, other_url, title=TITLES[other], click_link=True)
                    seconds, err = render_time(tab, url, title=TITLES[name], click_link=True)
                    errors += err
                    warm.append(seconds)
                tab.close()
                # warm (new tab): a new Streamlit session that reloads the frontend bundle
                new_tab = []
                for _ in range(args.repeats):
                    tab = context.new_page()
                    seconds, err = render_time(tab, url, title=TITLES[name])
                    errors += err
                    new_tab.append(seconds)
                    tab.close()
                context.close()
                median, tab_median = statistics.median(warm), statistics.median(new_tab)
                rows.append((name, cold, median, max(warm), tab_median, errors))
                print(f"  {name:10s} sidebar {[round(w, 2) for w in warm]} new tab {[round(w, 2) for w in new_tab]}")
                print(f"  {name:10s} cold {cold:6.2f} s   warm (sidebar) median {median:5.2f} s (max {max(warm):5.2f})"
                      f"   warm (new tab) median {tab_median:5.2f} s   warm/target {median / TARGET_S:4.2f}"
                      + (f"   EXCEPTIONS: {errors}" if errors else ""), flush=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
    print(f"\n| page | cold (s) | warm, sidebar: median (s) | max (s) | warm, new tab: median (s) "
          f"| sidebar warm / {TARGET_S:.0f} s target |")
    print("|---|---|---|---|---|---|")
    for name, cold, median, worst, tab_median, _ in rows:
        print(f"| {name} | {cold:.2f} | {median:.2f} | {worst:.2f} | {tab_median:.2f} | {median / TARGET_S:.2f} |")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (2 shared cores: figures inflated under load)")
    return 1 if any(r[-1] for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
