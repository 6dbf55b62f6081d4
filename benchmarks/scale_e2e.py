"""Issue 13's "done when", end to end (``bench_scale.py --end-to-end``), and the explorer's warm
visits split into server and browser time (``bench_scale.py --explorer-warm``).

**End to end** (:func:`end_to_end`): a seeded VEGAS-shaped dataset of ``n`` rows (128 + 1024
float32, 10 classes; :func:`bench_scale.write_synthetic`) is written as chunked Zarr into the
data folder of a temporary ``CROSSMODAL_ASSETS`` (with its own ``CROSSMODAL_HOME``), then each
step runs in a fresh process through the paths a user takes:

========  ==========================================================================================
step      what runs
========  ==========================================================================================
generate  ``save_dataset`` of the seeded rows, block by block (not a user step: the data's origin)
open      ``catalog.open_dataset("file:<name>.zarr")`` (what the CLI and the app call) and one
          streamed pass over both views
train     ``python -m crossmodal_core train --data file:<name>.zarr --model ccca --threads T``:
          the streamed C-CCA fit on the train rows, every item embedded, stored in the model store
index     ``build_index`` over the stored visual embeddings of every item (``--e2e-index``, IVF by
          default; parameters chosen by measured recall on 1,000 audio test queries), saved with
          ``SearchIndex.save`` at ``index_path(<model folder>, view)``
search    ``load_index`` from the store; top-10 of 1,000 other audio queries; recall@10 against
          ``ExactIndex`` on the same queries; MAP@10 from the neighbour lists
project   ``python -m crossmodal_core project --data file:<name>.zarr --method umap``: the explorer's
          maps of the original features and of C-CCA (every test item; PCA above UMAP's limit,
          stated on screen)
explorer  ``streamlit run app.py`` and Chromium: the explorer page of this dataset, a cold visit then
          ``--e2e-visits`` warm ones through the sidebar (home -> explorer)
========  ==========================================================================================

Each step's wall and CPU seconds (its process and its reaped children, from ``wait4``) and
the **peak RSS of every process involved**: ``wait4``'s ``ru_maxrss`` of the step's own
process (exact), and per process of its tree (the Streamlit server, Chromium's processes,
Dask workers) the largest RSS seen by a sampler every 0.2 s (:class:`TreeSampler`). The
Streamlit server's own ``ru_maxrss`` is read by the explorer step, which starts it. The files
are removed afterwards unless ``--e2e-keep``.

**Explorer warm visits** (:func:`explorer_warm`): datasets of several sizes in one assets
folder (:func:`bench_app.prepare_points`, C-CCA trained, PCA maps stored), one server, one
browser tab per size (one Streamlit session each), warm visits alternating between the sizes.
Each visit is split into

- ``wall_s``: the settle rule of :mod:`bench_app` (last change of the page's element tree);
- ``script_s``: from the sidebar click until the *browser* shows the script as finished (title
  shown, script state ``notRunning``): the frontend handles that message only after drawing
  what came before it, so this includes the browser's work, not only the server's run;
- ``server_cpu_s``: CPU seconds of the server process during the visit (``/proc``): the
  server's share, which other jobs' load inflates far less than wall time;
- ``browser_cpu_s`` and ``chromium_<type>_cpu_s``: CPU seconds of Chromium's processes, by
  type (the ``gpu-process`` draws WebGL in software here: headless, ``--disable-gpu``), and
  ``main_thread_s``: the page renderer's main-thread busy time (CDP ``TaskDuration``);

and, in this process with Streamlit's ``AppTest`` (no browser, no websocket), the page
script's warm run time (wall and CPU) on the same data.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MB = 2**20


# ------------------------------------------------------------------------------- measuring processes
class TreeSampler:
    """Largest RSS of every process in the tree under ``pid`` (sampled every ``interval`` s),
    keyed by a short role name from its command line; and the largest sum over the tree."""

    def __init__(self, pid: int, interval: float = 0.2):
        self.pid, self.interval = pid, interval
        self.peaks: dict[int, tuple[str, int]] = {}
        self.tree_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def role(cmdline: list[str]) -> str:
        text = " ".join(cmdline)
        if "streamlit" in text and " run " in f" {text} ":
            return "streamlit server"
        if "chrom" in text.lower():
            return "chromium"
        if "playwright" in text or "run-driver" in text:
            return "playwright driver"
        if "distributed" in text or "dask" in text:
            return "dask worker"
        return "python step" if "python" in text else (cmdline[0] if cmdline else "?")

    def _run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop.is_set():
            total = 0
            try:
                procs = [root] + root.children(recursive=True)
            except psutil.NoSuchProcess:
                break
            for p in procs:
                try:
                    rss = p.memory_info().rss
                    if p.pid not in self.peaks:
                        self.peaks[p.pid] = (self.role(p.cmdline()), 0)
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
                total += rss
                role, peak = self.peaks[p.pid]
                self.peaks[p.pid] = (role, max(peak, rss))
            self.tree_peak = max(self.tree_peak, total)
            self._stop.wait(self.interval)

    def start(self) -> "TreeSampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def by_role(self) -> dict[str, dict]:
        """``{role: {"processes", "peak_mb" (largest single process), "sum_peak_mb"}}``."""
        out: dict[str, dict] = {}
        for role, peak in self.peaks.values():
            r = out.setdefault(role, {"processes": 0, "peak_mb": 0.0, "sum_peak_mb": 0.0})
            r["processes"] += 1
            r["peak_mb"] = max(r["peak_mb"], round(peak / MB, 1))
            r["sum_peak_mb"] = round(r["sum_peak_mb"] + peak / MB, 1)
        return out


def _kill_group(pgid: int) -> None:
    """SIGKILL every process of the step's session (its children too: a streamlit server,
    Chromium, dask workers), not only the step itself."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):  # the group is already gone
        pass


def run_step(name: str, cmd: list[str], env: dict, log: Path, timeout: float | None = None) -> dict:
    """Run one step in a fresh process; wall / CPU seconds and peak RSS (see the module doc).

    The step runs in its own session (process group): on a timeout, or an exception here
    (Ctrl-C included), the whole group is killed, so no grandchild outlives the step, and
    the sampler thread is stopped."""
    t0 = time.perf_counter()
    with open(log, "ab") as fh:
        fh.write(f"\n===== {name}: {' '.join(cmd)[:300]}\n".encode())
        fh.flush()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        sampler = TreeSampler(proc.pid).start()
        deadline = None if timeout is None else t0 + timeout
        reaped = timed_out = False
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    reaped = True
                    break
                if deadline is not None and time.perf_counter() > deadline:
                    timed_out = True
                    _kill_group(proc.pid)
                time.sleep(0.1)
        finally:
            if not reaped:  # an exception: kill the step and reap it
                _kill_group(proc.pid)
                proc.wait()
            if timed_out or not reaped:  # grandchildren left behind by the killed step
                _kill_group(proc.pid)
            sampler.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    roles = sampler.by_role()
    row = {"step": name, "wall_s": round(wall, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
           "peak_rss_mb": round(usage.ru_maxrss * 1024 / MB, 1), "tree_peak_mb": round(sampler.tree_peak / MB, 1),
           "processes": roles, "rc": proc.returncode}
    with open(log, "ab") as fh:
        fh.write(f"===== {name}: rc {proc.returncode}, {json.dumps(row)}\n".encode())
    result = _last_json(log)
    if result is not None and result.get("step") == name:
        row["result"] = result
    if proc.returncode != 0:
        raise RuntimeError(f"step {name} failed (rc {proc.returncode}); see {log}")
    return row


def _last_json(log: Path) -> dict | None:
    """The last ``RESULT {...}`` line a step printed (its own figures)."""
    found = None
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("RESULT "):
            found = json.loads(line[7:])
    return found


# ------------------------------------------------------------------------------------- the steps
_PRELUDE = """
import json, os, sys, time
sys.path.insert(0, {repo!r})
import numpy as np
def result(**kw):
    print("RESULT " + json.dumps(kw, default=float), flush=True)
"""

_GENERATE = """
sys.path.insert(0, os.path.join({repo!r}, "benchmarks"))
import bench_scale
seconds = bench_scale.write_synthetic({n}, {path!r}, {seed})
result(step="generate", write_s=round(seconds, 1), bytes=sum(f.stat().st_size for f in __import__("pathlib").Path({path!r}).rglob("*") if f.is_file()))
"""

_OPEN = """
from crossmodal_core.data import catalog
t0 = time.perf_counter()
data = catalog.open_dataset({dataset!r})
t_open = time.perf_counter() - t0
ds = data.dataset
total, t0 = 0.0, time.perf_counter()
for name in ds.view_names:
    for _, block in ds.views[name].iter_blocks():
        total += float(block[:, 0].sum())
result(step="open", open_s=round(t_open, 1), pass_s=round(time.perf_counter() - t0, 1), n=int(ds.n_items),
       views={{v: list(ds.views[v].shape) for v in ds.view_names}}, lazy=type(ds.views["audio"]).__name__)
"""

_INDEX = """
from crossmodal_core import index as cindex
from crossmodal_core.data import catalog
from crossmodal_core.models import trained
data = catalog.open_dataset({dataset!r})
model = trained.find_trained(data, "ccca", ("audio", "visual"), "class")
emb = trained.load_embeddings(model)
_, test = trained.split_indices(data.dataset)
rng = np.random.default_rng(1)
tune = np.sort(rng.choice(test, min(1000, len(test)), replace=False))  # audio test queries tune the recall
t0 = time.perf_counter()
idx = cindex.build_index(emb["visual"], kind={kind!r}, target_recall=0.95, k=10, sample_queries=emb["audio"][tune],
                         seed=0, threads={threads})
build_s = time.perf_counter() - t0
path = idx.save(cindex.index_path(model.path, "visual"))
r = idx.report
result(step="index", kind=idx.kind, params=r.params, sample_recall=r.recall, build_s=round(build_s, 1),
       index_mb=round(r.index_bytes / 2**20, 1), path=str(path), reason=r.reason)
"""

_SEARCH = """
from crossmodal_core import index as cindex
from crossmodal_core import metrics
from crossmodal_core.data import catalog
from crossmodal_core.models import trained
data = catalog.open_dataset({dataset!r})
model = trained.find_trained(data, "ccca", ("audio", "visual"), "class")
t0 = time.perf_counter()
idx = cindex.load_index(cindex.index_path(model.path, "visual"))
load_s = time.perf_counter() - t0
emb = trained.load_embeddings(model)
_, test = trained.split_indices(data.dataset)
rng = np.random.default_rng(2)  # other queries than the ones that tuned the index
queries = np.sort(rng.choice(test, min(1000, len(test)), replace=False))
q = emb["audio"][queries]
best = 0.0
for _ in range(2):
    t0 = time.perf_counter()
    found, _ = idx.search(q, 10)
    best = max(best, len(q) / (time.perf_counter() - t0))
t0 = time.perf_counter()
truth, _ = cindex.ExactIndex(emb["visual"]).search(q, 10)
exact_qps = len(q) / (time.perf_counter() - t0)
y = data.dataset.label("class")
ap10 = metrics.average_precision_at_k(found, y[queries], y, 10)
result(step="search", kind=idx.kind, load_s=round(load_s, 1), qps=round(best), exact_qps=round(exact_qps),
       recall_at_10=cindex.recall_at_k(found, truth), map_at_10=float(np.nanmean(ap10)))
"""

_EXPLORER = """
sys.path.insert(0, os.path.join({repo!r}, "benchmarks"))
import scale_e2e
out = scale_e2e.explorer_session({dataset!r}, visits={visits}, log={log!r})
result(step="explorer", **out)
"""


def _python_step(code: str, **fmt) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(_PRELUDE.format(repo=str(REPO)) + code.format(repo=str(REPO), **fmt))]


def end_to_end(n: int, seed: int = 0, threads: int = 1, keep: bool = False, index_kind: str = "ivf",
               visits: int = 3, folder: str | None = None, only: set[str] | None = None) -> list[dict]:
    """Run the steps of the module doc at ``n`` rows; returns one row per step (also printed).
    ``folder``: reuse / keep the work folder (``--e2e-dir``); ``only``: run just these steps
    (the others' outputs must be in ``folder``)."""
    root = Path(folder or tempfile.mkdtemp(prefix=f"bench-e2e-{n}-", dir=os.environ.get("BENCH_SCALE_DIR")))
    assets, home = root / "assets", root / "home"
    (assets / "datasets").mkdir(parents=True, exist_ok=True)
    name = f"bench-{n}.zarr"
    dataset = f"file:{name}"
    env = {**os.environ, "CROSSMODAL_ASSETS": str(assets), "CROSSMODAL_HOME": str(home), "PYTHONPATH": str(REPO),
           "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}
    log = root / "steps.log"
    print(f"end to end, n = {n:,}: work folder {root}, log {log}; loadavg {os.getloadavg()}", flush=True)
    cli = [sys.executable, "-m", "crossmodal_core"]
    steps = [
        ("generate", _python_step(_GENERATE, n=n, path=str(assets / "datasets" / name), seed=seed)),
        ("open", _python_step(_OPEN, dataset=dataset)),
        ("train", cli + ["train", "--data", dataset, "--model", "ccca", "--threads", str(threads)]),
        ("index", _python_step(_INDEX, dataset=dataset, kind=index_kind, threads=threads)),
        ("search", _python_step(_SEARCH, dataset=dataset)),
        ("project", cli + ["project", "--data", dataset, "--method", "umap", "--threads", str(threads)]),
        ("explorer", _python_step(_EXPLORER, dataset=dataset, visits=visits, log=str(root / "server.log"))),
    ]
    rows = []
    try:
        for step, cmd in steps:
            if only and step not in only:
                continue
            rows.append(run_step(step, cmd, env, log))
            print_row(rows[-1])
    finally:
        if not keep and folder is None:
            shutil.rmtree(root, ignore_errors=True)
    print_e2e_table(rows, n)
    return rows


def print_row(r: dict) -> None:
    others = ", ".join(f"{role} {v['peak_mb']:.0f} MB" + (f" (x{v['processes']}, sum {v['sum_peak_mb']:.0f})"
                                                          if v["processes"] > 1 else "")
                       for role, v in r["processes"].items())
    print(f"  [{r['step']}] wall {r['wall_s']:.1f} s, CPU {r['cpu_s']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB "
          f"(tree {r['tree_peak_mb']:.0f} MB: {others}); loadavg {os.getloadavg()[0]:.1f}", flush=True)
    if "result" in r:
        print(f"    {json.dumps({k: v for k, v in r['result'].items() if k not in ('visits',)}, default=str)[:900]}",
              flush=True)


def print_e2e_table(rows: list[dict], n: int, limit_mb: float = 4096) -> None:
    print(f"\nend to end at {n:,} rows (peak RSS: the step's process, exact; largest other process, sampled)")
    print(f"{'step':<10}{'wall s':>9}{'CPU s':>9}{'peak RSS MB':>13}{'largest other MB':>18}  {'<= 4 GB':<8}")
    for r in rows:
        other = max([v["peak_mb"] for role, v in r["processes"].items() if role != "python step"] or [0.0])
        if "result" in r and "server_maxrss_mb" in r["result"]:
            other = max(other, r["result"]["server_maxrss_mb"])
        ok = max(r["peak_rss_mb"], other) <= limit_mb
        print(f"{r['step']:<10}{r['wall_s']:>9.1f}{r['cpu_s']:>9.1f}{r['peak_rss_mb']:>13.0f}{other:>18.0f}  "
              f"{'yes' if ok else 'NO':<8}")
    print(f"loadavg {os.getloadavg()}", flush=True)
    print_targets(rows, limit_mb)


def print_targets(rows: list[dict], limit_mb: float = 4096) -> None:
    """Issue 13's targets this run speaks to, each met or not with its numbers."""
    by = {r["step"]: r for r in rows}
    peaks = [(max([r["peak_rss_mb"]] + [v["peak_mb"] for v in r["processes"].values()]), r["step"]) for r in rows]
    if peaks:
        top, step = max(peaks)
        print(f"target: every process <= {limit_mb / 1024:.0f} GB RSS: {'met' if top <= limit_mb else 'NOT met'} "
              f"(largest {top:,.0f} MB, step {step})")
    s = by.get("search", {}).get("result")
    if s:
        x = s["qps"] / max(s["exact_qps"], 1e-9)
        print(f"target: index >= 20x exact search at recall@10 >= 0.95: {s['kind']} {s['qps']:,} q/s vs ExactIndex "
              f"{s['exact_qps']:,} q/s = {x:.1f}x at recall@10 {s['recall_at_10']:.3f} "
              f"({'met' if x >= 20 and s['recall_at_10'] >= 0.95 else 'not met'}; the restated >= 10x the library's "
              f"exact index: {'met' if x >= 10 and s['recall_at_10'] >= 0.95 else 'not met'})")
    e = by.get("explorer", {}).get("result")
    if e and e.get("median"):
        m = next(iter(e["median"].values()))
        print(f"target: explorer warm < 2 s: median wall {m['wall_s']:.1f} s under this load; the server's part "
              f"{m['server_cpu_s']:.2f} CPU s ({'met' if m['server_cpu_s'] < 2 else 'not met'}); Chromium "
              f"{m['browser_cpu_s']:.1f} CPU s (software WebGL here: see --explorer-warm for the split and the peer)")


# ------------------------------------------------------------------------------- explorer visits
VISIT_JS = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const app = document.querySelector('[data-testid="stApp"]');
  const h1 = main && main.querySelector('h1');
  const running = !app || app.getAttribute('data-test-script-state') !== 'notRunning'
                  || !!document.querySelector('[data-testid="stStatusWidget"]');
  const skeleton = !!(main && main.querySelector('[data-testid="stSkeleton"]'));
  const errors = main ? main.querySelectorAll('[data-testid="stException"]').length : 0;
  return {title: h1 ? h1.textContent : '', n: main ? main.querySelectorAll('*').length : -1,
          running: running, busy: running || skeleton, errors: errors};
}"""


def chromium_cpu() -> dict[str, float]:
    """CPU seconds so far of this process's Chromium descendants, by process type (``renderer``:
    the page's JavaScript, layout and paint; ``gpu-process``: WebGL and compositing, here in
    software as the browser runs with ``--disable-gpu``; ``browser``: the main process)."""
    import psutil

    out: dict[str, float] = {}
    for p in psutil.Process().children(recursive=True):
        try:
            cmd = p.cmdline()
            if not cmd or "chrom" not in cmd[0]:
                continue
            kind = next((a.split("=", 1)[1] for a in cmd if a.startswith("--type=")), "browser")
            t = p.cpu_times()
            out[kind] = out.get(kind, 0.0) + t.user + t.system
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return out


def _main_thread_ms(cdp) -> float:
    """The renderer main thread's busy time (``TaskDuration`` of CDP ``Performance.getMetrics``), ms."""
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return 1000.0 * metrics.get("TaskDuration", 0.0)


def visit(page, url: str, title: str, server_pid: int, click: bool, quiet_s: float = 1.0,
          timeout_s: float = 900.0, cdp=None) -> dict:
    """One visit of the page at ``url`` (a sidebar click when ``click``), split as in the module doc."""
    from bench_app import cpu_split, sidebar_link

    before, chrome0 = cpu_split(server_pid), chromium_cpu()
    main0 = _main_thread_ms(cdp) if cdp is not None else None
    start = time.perf_counter()
    if click:
        page.locator(sidebar_link(url)).first.click()
    else:
        page.goto(url, wait_until="commit")
    seen_running = False
    title_s = script_s = None
    last_n, last_change = None, start
    while True:
        s = page.evaluate(VISIT_JS)
        now = time.perf_counter()
        if not s["title"].startswith(title):
            seen_running = seen_running or s["running"]
            last_n, last_change = None, now
        else:
            if title_s is None:
                title_s = now - start
            if s["running"]:
                seen_running = True
            elif script_s is None:
                script_s = now - start
            if s["n"] != last_n:
                last_n, last_change = s["n"], now
            elif not s["busy"] and script_s is not None and now - last_change >= quiet_s:
                break
        if now - start > timeout_s:
            raise TimeoutError(f"{url} did not settle in {timeout_s:.0f} s")
        page.wait_for_timeout(50)
    after, chrome1 = cpu_split(server_pid), chromium_cpu()
    settled = last_change - start
    out = {"wall_s": round(settled, 2), "title_s": round(title_s, 2), "script_s": round(script_s, 2),
           "render_s": round(max(0.0, settled - script_s), 2),
           "server_cpu_s": round(after["server_cpu_s"] - before["server_cpu_s"], 2),
           "browser_cpu_s": round(after["browser_cpu_s"] - before["browser_cpu_s"], 2), "errors": s["errors"]}
    for kind in sorted(set(chrome0) | set(chrome1)):
        out[f"chromium_{kind}_cpu_s"] = round(chrome1.get(kind, 0.0) - chrome0.get(kind, 0.0), 2)
    if cdp is not None:
        out["main_thread_s"] = round((_main_thread_ms(cdp) - main0) / 1000, 2)
    return out


def explorer_session(datasets, visits: int = 3, log: str | None = None, apptest: bool = False) -> dict:
    """Start ``streamlit run app.py`` (this process's ``CROSSMODAL_*``), open one tab per dataset
    id on the explorer (cold), then ``visits`` rounds of warm sidebar visits (home -> explorer),
    alternating the tabs. Returns the visits, the server's ``ru_maxrss`` (from ``wait4``) and CPU."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from playwright.sync_api import sync_playwright

    import bench_app

    datasets = [datasets] if isinstance(datasets, str) else list(datasets)
    port = bench_app.free_port()
    t0 = time.perf_counter()
    server = bench_app.start_server(port, Path(log) if log else None)
    started = time.perf_counter() - t0
    base = f"http://127.0.0.1:{port}"
    explorer, home = f"{base}/explorer", f"{base}/"
    out: dict = {"server_start_s": round(started, 1), "datasets": datasets, "cold": {}, "warm": {d: [] for d in datasets}}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=bench_app.CHROMIUM, args=bench_app.CHROMIUM_ARGS)
            tabs = {}
            for d in datasets:
                context = browser.new_context(viewport=bench_app.VIEWPORT)
                tab = context.new_page()
                cdp = context.new_cdp_session(tab)
                cdp.send("Performance.enable")
                out["cold"][d] = visit(tab, f"{explorer}?dataset={d}", "Embedding explorer", server.pid, click=False,
                                       cdp=cdp)
                print(f"    cold explorer {d}: {out['cold'][d]}", flush=True)
                tabs[d] = (tab, cdp)
            for _ in range(visits):
                for d, (tab, cdp) in tabs.items():
                    visit(tab, home, "crossmodal", server.pid, click=True)
                    v = visit(tab, explorer, "Embedding explorer", server.pid, click=True, cdp=cdp)
                    out["warm"][d].append(v)
                    print(f"    warm explorer {d}: {v}", flush=True)
            browser.close()
    finally:
        server.terminate()
        _, status, usage = os.wait4(server.pid, 0)
        server.returncode = os.waitstatus_to_exitcode(status)
    out["server_maxrss_mb"] = round(usage.ru_maxrss * 1024 / MB, 1)
    out["server_cpu_s"] = round(usage.ru_utime + usage.ru_stime, 1)
    out["median"] = {d: {k: statistics.median(v[k] for v in vs) for k in vs[0] if k != "errors"}
                     for d, vs in out["warm"].items() if vs}
    out["errors"] = sum(v["errors"] for vs in out["warm"].values() for v in vs) + sum(
        v["errors"] for v in out["cold"].values())
    return out


def apptest_runs(dataset: str, runs: int = 3, timeout: float = 900.0) -> dict:
    """The explorer page script in this process (Streamlit ``AppTest``: no browser, no websocket):
    the cold run, then ``runs`` warm reruns; wall and CPU seconds each."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=timeout)
    at.session_state["dataset_id"] = dataset  # app_pages/_shared.DATASET
    at.run()
    at.switch_page("app_pages/explorer.py")
    w, c = time.perf_counter(), time.process_time()
    at.run()
    cold = (time.perf_counter() - w, time.process_time() - c)
    if at.exception:
        raise RuntimeError(f"explorer raised under AppTest: {at.exception[0].message}")
    warm = []
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        at.run()
        warm.append((time.perf_counter() - w, time.process_time() - c))
    charts = len(at.get("plotly_chart"))
    return {"cold_wall_s": round(cold[0], 2), "cold_cpu_s": round(cold[1], 2), "charts": charts,
            "warm_wall_s": [round(x[0], 3) for x in warm], "warm_cpu_s": [round(x[1], 3) for x in warm],
            "warm_wall_median_s": round(statistics.median(x[0] for x in warm), 3),
            "warm_cpu_median_s": round(statistics.median(x[1] for x in warm), 3)}


def explorer_warm(sizes: list[int], visits: int = 5, dims: tuple[int, int] = (16, 32), runs: int = 5) -> dict:
    """Warm explorer visits at each of ``sizes`` test items, in one server and browser, alternating
    (see the module doc), and the AppTest warm runs of the same page. Prints a table."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import bench_app

    root = Path(tempfile.mkdtemp(prefix="bench-explorer-warm-", dir=os.environ.get("BENCH_SCALE_DIR")))
    try:
        ids = []
        for n in sizes:  # each call sets CROSSMODAL_ASSETS / HOME to the same root: one data folder
            ids.append(bench_app.prepare_points(n, root, dims, umap=False, train=True))
        print(f"explorer warm visits: datasets {ids}; loadavg {os.getloadavg()}", flush=True)
        apptest = {}
        for d in ids:
            apptest[d] = apptest_runs(d, runs)
            print(f"  AppTest {d}: {apptest[d]}", flush=True)
        session = explorer_session(ids, visits)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\nexplorer warm visit (sidebar), median of {visits}; loadavg {os.getloadavg()}")
    print(f"{'test items':>11}{'wall s':>8}{'script s':>10}{'render s':>10}{'server CPU s':>14}{'browser CPU s':>15}"
          f"{'AppTest wall s':>16}{'AppTest CPU s':>15}")
    for n, d in zip(sizes, ids):
        m, a = session["median"][d], apptest[d]
        print(f"{n:>11,}{m['wall_s']:>8.2f}{m['script_s']:>10.2f}{m['render_s']:>10.2f}{m['server_cpu_s']:>14.2f}"
              f"{m['browser_cpu_s']:>15.2f}{a['warm_wall_median_s']:>16.3f}{a['warm_cpu_median_s']:>15.3f}")
    return {"sizes": sizes, "datasets": ids, "apptest": apptest, "session": session}
