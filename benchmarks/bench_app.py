"""Render time of every app page in a real browser (Debian chromium + Playwright), cold and warm.

Usage::

    .venv/bin/python benchmarks/bench_app.py [--repeats 3] [--pages home,explorer]
    .venv/bin/python benchmarks/bench_app.py --users 8 [--rounds 3] [--json out.json]

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

**Concurrent users** (``--users N``): one chromium, N browser contexts (each its own Streamlit
session) driven at the same time through Playwright's async API. After a warm-up session (one
visit of each page, so the numbers are about a server whose caches are filled; ``--no-warmup``
sends every user at a cold server instead, the case for races), each user opens the explorer
in a new tab (a new session), then goes to the retrieval page and back through the sidebar
``--rounds`` times. Reported per page and kind of visit: p50 / p95 / max render time (same
detector as above) and the number of visits with an error: a ``stException`` or an error
``st.error`` alert on the page, a page that does not settle within ``--timeout``, a console
error or uncaught page error, an HTTP 5xx answer. The server's tracebacks (its log is kept,
``--server-log``) are counted too. The browser runs on the same cores as the server, so at
high N the figures include the clients' own rendering.

**A large explorer** (``--points N``): before the server starts, a seeded synthetic dataset
with ``N`` test items (``--points-dims``, 10 classes) is written to a temporary assets folder
(with a temporary ``CROSSMODAL_HOME``, removed afterwards), with ``--points-train`` C-CCA is
trained on its train rows, and the explorer's PCA maps (original features and C-CCA, every
test item: the at-scale path of :mod:`crossmodal_core.projection`) are computed and stored, as
``make prepare`` would; then
only the explorer (and home, to go back and forth) is measured. With ``--points-umap`` the
UMAP maps are computed too (a UMAP fitted on a sample and ``transform`` of the rest, or PCA
above its limit), and the page shows them.

The machine's load matters (the project's machines have 2 shared cores): report the figures
with the load they were taken under.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
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
VIEWPORT = {"width": 1600, "height": 1000}

# ``error``: exceptions shown plus ``st.error`` alerts (an exception box is itself drawn as an
# error alert, so alerts inside one are not counted twice); ``messages``: their first lines.
STATE_JS = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  if (!main || !main.querySelector('h1')) return {n: -1};
  const app = document.querySelector('[data-testid="stApp"]');
  const busy = !app || app.getAttribute('data-test-script-state') !== 'notRunning'
            || !!document.querySelector('[data-testid="stStatusWidget"]')
            || !!main.querySelector('[data-testid="stSkeleton"]');
  const bad = [...main.querySelectorAll('[data-testid="stException"]'),
               ...[...main.querySelectorAll('[data-testid="stAlertContentError"]')]
                   .filter(e => !e.closest('[data-testid="stException"]'))];
  return {n: main.querySelectorAll('*').length, busy: busy, title: main.querySelector('h1').textContent,
          error: bad.length, messages: bad.map(e => (e.innerText || '').trim().slice(0, 300))};
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, log_path: Path | None = None) -> subprocess.Popen:
    """``streamlit run app.py`` on ``port``; its output goes to ``log_path`` (default: nowhere)."""
    cmd = [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.headless", "true",
           "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    out = open(log_path, "wb") if log_path is not None else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(cmd, cwd=REPO, env=dict(os.environ), stdout=out, stderr=subprocess.STDOUT)
    finally:
        if log_path is not None:
            out.close()  # the child holds its own copy
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit("streamlit exited before it became healthy"
                             + (f" (log: {log_path})" if log_path is not None else ""))
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("streamlit did not become healthy in 120 s")


class Settle:
    """The render-completion rule, fed with successive ``STATE_JS`` results (sync or async driver).

    A page counts as rendered at the last change of its element tree (with ``title`` shown)
    before it stays unchanged for ``quiet_s`` with no "running" indicator.
    """

    def __init__(self, start: float, url: str, title: str = "", quiet_s: float = 1.0, timeout_s: float = 300.0):
        self.start, self.url, self.title, self.quiet_s, self.timeout_s = start, url, title, quiet_s, timeout_s
        self.last_n, self.last_change = None, start
        self.title_s: float | None = None  # seconds until the page's title was first shown

    def feed(self, state: dict, now: float) -> float | None:
        """Seconds from navigation to the settled render, or None while it is still rendering."""
        if not state.get("title", "").startswith(self.title):
            self.last_n, self.last_change = None, now
            self.title_s = None
        elif self.title_s is None:
            self.title_s, self.last_n, self.last_change = now - self.start, state["n"], now
        elif state["n"] != self.last_n or state.get("busy", True):
            if state["n"] != self.last_n:
                self.last_change = now
            self.last_n = state["n"]
        elif now - self.last_change >= self.quiet_s:
            return self.last_change - self.start
        if now - self.start >= self.timeout_s:
            seen = ("title never shown" if self.title_s is None else
                    f"title shown at {self.title_s:.1f} s, last change at {self.last_change - self.start:.1f} s, "
                    + ("script still running" if state.get("busy", True) else "script done"))
            raise TimeoutError(f"{self.url} did not settle in {self.timeout_s:g} s ({seen})")
        return None


def sidebar_link(url: str) -> str:
    """The selector of the sidebar link to the page at ``url``."""
    return f'[data-testid="stSidebarNav"] a[href$="/{url.rsplit("/", 1)[-1]}"]'


def render_time(page, url: str, quiet_s: float = 1.0, timeout_s: float = 300.0, title: str = "",
                click_link: bool = False) -> tuple[float, int]:
    """Seconds from navigation to the last change of the page's elements; errors shown.

    ``click_link`` navigates by clicking the page's sidebar link (same session) instead of
    loading ``url``; the page counts as shown once its ``<h1>`` starts with ``title``.
    """
    start = time.perf_counter()
    if click_link:
        page.locator(sidebar_link(url)).first.click()
    else:
        page.goto(url, wait_until="commit")
    settle = Settle(start, url, title, quiet_s, timeout_s)
    while True:
        state = page.evaluate(STATE_JS)
        seconds = settle.feed(state, time.perf_counter())
        if seconds is not None:
            return seconds, int(state.get("error", 0))
        page.wait_for_timeout(50)


async def render_time_async(page, url: str, quiet_s: float = 1.0, timeout_s: float = 300.0, title: str = "",
                            click_link: bool = False, poll_ms: int = 100) -> tuple[float, dict]:
    """:func:`render_time` for a Playwright async page; returns the settled ``STATE_JS`` too."""
    start = time.perf_counter()
    if click_link:
        await page.locator(sidebar_link(url)).first.click(timeout=timeout_s * 1000)
    else:
        await page.goto(url, wait_until="commit", timeout=timeout_s * 1000)
    settle = Settle(start, url, title, quiet_s, timeout_s)
    while True:
        state = await page.evaluate(STATE_JS)
        seconds = settle.feed(state, time.perf_counter())
        if seconds is not None:
            return seconds, {**state, "title_s": settle.title_s}
        await page.wait_for_timeout(poll_ms)


# ---------------------------------------------------------------------------------- concurrent users
USER_PAGES = ("explorer", "retrieval")


def benign_console_error(text: str, url: str, base: str) -> str | None:
    """Why a console error is not the app's fault, or None when it counts.

    Two resource errors every session logs: the frontend, opened at ``/<page>``, first probes
    ``/<page>/_stcore/health`` and ``/<page>/_stcore/host-config`` (404) before it falls back to
    the server root; and the page icon (``:material/...:``) is fetched from fonts.gstatic.com,
    which a machine with no network cannot resolve.
    """
    if not text.startswith("Failed to load resource"):
        return None
    if url and not url.startswith(base + "/"):
        return "external resource (not the app's server)"
    path = url[len(base):]
    if "404" in text and path.count("/") >= 3 and path.rsplit("/", 1)[-1] in ("health", "host-config") \
            and "/_stcore/" in path and not path.startswith("/_stcore/"):
        return "frontend base-path probe (404)"
    return None


async def one_user(browser, base: str, user: str, rounds: int, timeout_s: float, quiet_s: float) -> list[dict]:
    """One Streamlit session: the explorer in a new tab, then (retrieval, explorer) through the
    sidebar ``rounds`` times. Returns one record per visit, errors attached to the visit during
    which they happened."""
    from playwright.async_api import Error as PlaywrightError

    context = await browser.new_context(viewport=VIEWPORT)
    page = await context.new_page()
    visits: list[dict] = []

    def note(message: str, key: str = "errors") -> None:
        if visits:
            visits[-1][key].append(message)

    def on_console(msg) -> None:
        if msg.type != "error":
            return
        url = (msg.location or {}).get("url", "")
        reason = benign_console_error(msg.text, url, base)
        if reason:
            note(f"{reason}: {url}", "ignored")
        else:
            note(f"console error: {msg.text[:300]}" + (f" ({url[:200]})" if url else ""))

    page.on("console", on_console)
    page.on("pageerror", lambda exc: note(f"page error: {str(exc)[:300]}"))
    page.on("response", lambda r: note(f"HTTP {r.status}: {r.url}") if r.status >= 500 else None)
    plan = [("explorer", False)] + [("retrieval", True), ("explorer", True)] * rounds
    reload = False  # after a failed visit the next one starts over in a fresh load of its page
    try:
        for step, (name, click) in enumerate(plan):
            click = click and not reload
            visit = {"user": user, "step": step, "page": name, "kind": "sidebar" if click else "new session",
                     "seconds": None, "title_s": None, "errors": [], "ignored": []}
            visits.append(visit)
            try:
                seconds, state = await render_time_async(page, f"{base}/{PAGES[name]}", quiet_s, timeout_s,
                                                         TITLES[name], click_link=click)
                visit["seconds"], visit["title_s"] = round(seconds, 3), round(state["title_s"], 3)
                visit["errors"] += [f"shown on the page: {m}" for m in state.get("messages", [])]
                reload = False
            except (TimeoutError, PlaywrightError) as exc:
                visit["errors"].append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
                reload = True
    finally:
        await context.close()
    return visits


async def run_users(base: str, users: int, rounds: int, timeout_s: float, quiet_s: float, warmup: bool,
                    server_pid: int) -> tuple[list[dict], list[dict], dict]:
    """Warm-up visits (one session, alone) and the visits of ``users`` sessions run at once;
    with the CPU seconds the server and the browser spent on the concurrent part."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            warm = await one_user(browser, base, "warmup", 1, timeout_s, quiet_s) if warmup else []
            before = cpu_split(server_pid)
            done = await asyncio.gather(*(one_user(browser, base, f"u{i}", rounds, timeout_s, quiet_s)
                                          for i in range(users)))
            after = cpu_split(server_pid)
        finally:
            await browser.close()
    cpu = {k: round(after[k] - before[k], 2) for k in after}
    return warm, [v for visits in done for v in visits], cpu


def _proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and of its reaped children), None when gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def cpu_split(server_pid: int) -> dict:
    """CPU seconds so far of the server and of the rest of this process's descendants (the
    Playwright driver and chromium, whose exited renderers count through their parent)."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _proc_stat(int(entry.name))) is not None:
            stats[int(entry.name)] = stat
    me = os.getpid()

    def ours(pid: int) -> bool:
        while pid in stats and pid not in (me, server_pid, 0, 1):
            pid = stats[pid][0]
        return pid == me

    server = stats.get(server_pid, (0, 0.0))[1]
    browser = sum(cpu for pid, (_, cpu) in stats.items() if pid not in (me, server_pid) and ours(pid))
    return {"server_cpu_s": server, "browser_cpu_s": browser}


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default), None for no values."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summarise(visits: list[dict], users: int) -> list[dict]:
    rows = []
    for name in USER_PAGES:
        for kind in ("new session", "sidebar"):
            group = [v for v in visits if v["page"] == name and v["kind"] == kind]
            if not group:
                continue
            times = [v["seconds"] for v in group if v["seconds"] is not None]
            rows.append({"page": name, "visit": kind, "users": users, "visits": len(group),
                         "p50_s": percentile(times, 50), "p95_s": percentile(times, 95),
                         "max_s": max(times) if times else None,
                         "title_p50_s": percentile([v["title_s"] for v in group if v["title_s"] is not None], 50),
                         "errors": sum(1 for v in group if v["errors"])})
    return rows


def server_tracebacks(log_path: Path) -> list[str]:
    """The last line of every traceback in the server log (the exception itself)."""
    lines = log_path.read_text(errors="replace").splitlines() if log_path.exists() else []
    found, inside = [], False
    for line in lines:
        if line.startswith("Traceback (most recent call last)"):
            inside = True
        elif inside and line and not line.startswith((" ", "\t")):
            found.append(line[:300])
            inside = False
    return found


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              timeout=10).stdout.strip() or None
    except OSError:
        return None


def main_users(args: argparse.Namespace) -> int:
    log_path = Path(args.server_log) if args.server_log else Path(tempfile.mkstemp(prefix="bench_app_server_",
                                                                                   suffix=".log")[1])
    port = free_port()
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    server = start_server(port, log_path)
    healthy_s = time.perf_counter() - t0
    print(f"server healthy after {healthy_s:.1f} s (log: {log_path}); load average {load_start[0]:.2f}", flush=True)
    t1 = time.perf_counter()
    try:
        warm, visits, cpu = asyncio.run(run_users(f"http://127.0.0.1:{port}", args.users, args.rounds,
                                                  args.timeout, args.quiet, not args.no_warmup, server.pid))
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    wall_s = time.perf_counter() - t1
    load_end = os.getloadavg()
    rows = summarise(visits, args.users)
    tracebacks = server_tracebacks(log_path)
    for v in warm:
        print(f"  warm-up (1 user, cold server): {v['page']:9s} {v['kind']:11s} "
              + (f"{v['seconds']:6.2f} s" if v["seconds"] is not None else "  failed")
              + (f"   ERRORS: {v['errors']}" if v["errors"] else ""))
    fmt = lambda x: "-" if x is None else f"{x:.2f}"  # noqa: E731
    print(f"\n{args.users} concurrent users x {args.rounds} rounds, {len(visits)} visits; concurrent part: "
          f"server {cpu['server_cpu_s']:.1f} CPU-s ({cpu['server_cpu_s'] / max(len(visits), 1):.2f} a visit), "
          f"browser {cpu['browser_cpu_s']:.1f} CPU-s; whole run {wall_s:.1f} s")
    print("\n| page | visit | users | visits | p50 (s) | p95 (s) | max (s) | errors | title shown, p50 (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['page']} | {r['visit']} | {r['users']} | {r['visits']} | {fmt(r['p50_s'])} "
              f"| {fmt(r['p95_s'])} | {fmt(r['max_s'])} | {r['errors']} | {fmt(r['title_p50_s'])} |")
    failed = [v for v in warm + visits if v["errors"]]
    for v in failed[:20]:
        print(f"  error: {v['user']} step {v['step']} {v['page']} ({v['kind']}): " + " | ".join(v["errors"][:3]))
    if len(failed) > 20:
        print(f"  ... {len(failed) - 20} more visits with errors (see --json)")
    ignored: dict[str, int] = {}
    for v in warm + visits:
        for message in v["ignored"]:
            reason = message.split(": ", 1)[0]
            ignored[reason] = ignored.get(reason, 0) + 1
    for reason, count in sorted(ignored.items()):
        print(f"  not counted: {count} console errors, {reason}")
    if tracebacks:
        print(f"  server log: {len(tracebacks)} tracebacks, last lines: {sorted(set(tracebacks))[:5]}")
    print(f"load average: {load_start[0]:.2f} at the start, {load_end[0]:.2f} / {load_end[1]:.2f} / "
          f"{load_end[2]:.2f} (1/5/15 min) at the end (2 shared cores: figures inflated under load)")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "users": args.users, "rounds": args.rounds, "warmup": not args.no_warmup, "timeout_s": args.timeout,
            "commit": git_commit(), "server_healthy_s": round(healthy_s, 2), "wall_s": round(wall_s, 2), **cpu,
            "load_average_start": load_start, "load_average_end": load_end, "cpu_count": os.cpu_count(),
            "rows": rows, "errors": sum(r["errors"] for r in rows) + sum(1 for v in warm if v["errors"]),
            "server_tracebacks": tracebacks, "server_log": str(log_path), "warmup_visits": warm,
            "visits": visits}, indent=1))
        print(f"wrote {args.json}")
    return 1 if failed or tracebacks else 0


def prepare_points(n: int, root: Path, dims: tuple[int, int] = (16, 32), umap: bool = False,
                   train: bool = False) -> str:
    """A dataset of ``n`` test items under ``root`` (assets and home), C-CCA trained when
    ``train`` and the explorer's maps stored; sets ``CROSSMODAL_ASSETS`` / ``CROSSMODAL_HOME``
    for the server. Returns the dataset id."""
    assets, home = root / "assets", root / "home"
    (assets / "datasets").mkdir(parents=True, exist_ok=True)
    os.environ["CROSSMODAL_ASSETS"], os.environ["CROSSMODAL_HOME"] = str(assets), str(home)
    from crossmodal_core import appdata
    from crossmodal_core.data import io
    from crossmodal_core.data.synthetic import make_synthetic_av

    t0 = time.perf_counter()
    name = f"bench_{n}"
    ds = make_synthetic_av(n_train=min(20_000, max(1_000, n // 10)), n_test=n, n_classes=10, dims=dims, seed=0,
                           name=name)
    io.save_dataset(ds, assets / "datasets" / f"{name}.npz")
    del ds
    app = appdata.load_dataset(f"file:{name}.npz")
    label, pair = appdata.label_choices(app.dataset)[0], appdata.view_pairs(app.dataset)[0]
    print(f"[points] {n:,} test items {dims}: dataset written and opened in {time.perf_counter() - t0:.1f} s",
          flush=True)
    models = [None]
    if train:
        t0 = time.perf_counter()
        models.append(appdata.train_model(app, "ccca", pair, label))
        print(f"[points] C-CCA trained in {time.perf_counter() - t0:.1f} s", flush=True)
    for method in ("pca", "umap") if umap else ("pca",):
        for m in models:
            t1 = time.perf_counter()
            appdata.compute_panel_projection(app, m, pair, method, label)
            panel = appdata.panel_projection(app, m, pair, method, label)
            print(f"[points] {method} of {'original' if m is None else m.title}: {time.perf_counter() - t1:.1f} s "
                  f"({panel.description})", flush=True)
    return f"file:{name}.npz"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="warm visits per page (default 3)")
    parser.add_argument("--pages", default=",".join(PAGES), help="comma-separated subset of " + ",".join(PAGES))
    users = parser.add_argument_group("concurrent users (--users N)")
    users.add_argument("--users", type=int, default=0,
                       help="N concurrent sessions on the explorer and retrieval pages (default 0: single-user mode)")
    users.add_argument("--rounds", type=int, default=3, help="retrieval-and-back rounds per user (default 3)")
    users.add_argument("--timeout", type=float, default=180.0,
                       help="seconds a page may take to settle before it counts as an error (default 180)")
    users.add_argument("--quiet", type=float, default=1.0,
                       help="seconds unchanged that mean rendered (default 1, as in single-user mode)")
    users.add_argument("--no-warmup", action="store_true",
                       help="no warm-up session first: every user hits a cold server at once")
    users.add_argument("--json", help="write the rows and every visit to this JSON file")
    users.add_argument("--server-log", help="keep the server's output here (default: a temporary file)")
    large = parser.add_argument_group("a large explorer (--points N)")
    large.add_argument("--points", type=int, default=0,
                       help="measure the explorer on a synthetic dataset of N test items (default 0: the app's data)")
    large.add_argument("--points-dims", default="16,32", help="feature widths of its two modalities (default 16,32)")
    large.add_argument("--points-umap", action="store_true", help="compute and show the UMAP maps too")
    large.add_argument("--points-train", action="store_true",
                       help="train C-CCA for the second panel (default: the three panels show the original features)")
    args = parser.parse_args(argv)
    if args.points < 0:
        parser.error("--points must be >= 0")
    if args.points:
        import shutil

        root = Path(tempfile.mkdtemp(prefix="bench_app_points_"))
        try:
            prepare_points(args.points, root, tuple(int(d) for d in args.points_dims.split(",")), args.points_umap,
                           args.points_train)
            if args.pages == ",".join(PAGES):
                args.pages = "explorer"
            return _main(args, parser)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    return _main(args, parser)


def _main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if not Path(CHROMIUM).exists():
        raise SystemExit("needs Debian chromium at /usr/bin/chromium (apt-get install -y chromium)")
    if args.users < 0 or args.rounds < 0:
        parser.error("--users and --rounds must be >= 0")
    if args.users:
        return main_users(args)
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
                context = browser.new_context(viewport=VIEWPORT)
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
                      + (f"   ERRORS (exceptions, st.error): {errors}" if errors else ""), flush=True)
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
