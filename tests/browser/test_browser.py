"""The app in a real browser (Debian chromium driven by Playwright): every page renders with
no exception, the explorer shows its three panels, audio players exist where the dataset has
audio, the "train missing models" button trains into an empty model store; a screenshot of
each page goes to ``$CROSSMODAL_SCREENSHOTS`` (default: a folder in the test cache, so a test
run never overwrites the committed ``assets/screenshots/``)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("CROSSMODAL_SCREENSHOTS", Path(tempfile.gettempdir()) / "crossmodal-screenshots"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAGES = {"home": "", "explorer": "explorer", "retrieval": "retrieval", "alignment": "alignment"}

if not CHROMIUM.exists():
    pytest.skip("Debian chromium is not installed at /usr/bin/chromium "
                "(apt-get install -y chromium chromium-driver)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env: dict, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.headless", "true",
           "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited: {proc.stdout.read().decode(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("streamlit did not become healthy in 120 s")


@contextlib.contextmanager
def serving(**env_overrides: str):
    """The app on a free local port with these environment overrides (one BLAS thread); yields its URL."""
    port = free_port()
    proc = start_server({**os.environ, "OMP_NUM_THREADS": "1", **env_overrides}, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def app_url(_app_assets_root):
    with serving(CROSSMODAL_ASSETS=str(_app_assets_root)) as url:
        yield url


@pytest.fixture(scope="module")
def chromium_page():
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        yield page
        browser.close()


SETTLED_JS = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  if (!main || !main.querySelector('h1')) return -1;
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return -1;
  if (document.querySelector('[data-testid="stStatusWidget"]')) return -1;
  if (main.querySelector('[data-testid="stSkeleton"]')) return -1;
  return main.querySelectorAll('*').length;
}"""


def wait_rendered(page, timeout_s: float = 180.0) -> None:
    """Until the page has a title, no 'running' widget, no skeleton, and its element count
    has stayed the same for a second (Streamlit streams elements in as the script runs)."""
    deadline = time.time() + timeout_s
    last, stable = None, 0
    while time.time() < deadline:
        count = page.evaluate(SETTLED_JS)
        stable = stable + 1 if count == last and count != -1 else 0
        if stable >= 4:
            return
        last = count
        page.wait_for_timeout(250)
    raise TimeoutError(f"page did not settle in {timeout_s} s")


def open_page(page, base: str, path: str) -> None:
    page.goto(f"{base}/{path}", wait_until="domcontentloaded")
    wait_rendered(page)


def screenshot(page, name: str) -> Path:
    """The whole page: Streamlit scrolls inside its main block, so grow the viewport to it."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    height = page.evaluate("""() => {
      const m = document.querySelector('[data-testid="stMain"]');
      return m ? m.scrollHeight : document.body.scrollHeight; }""")
    page.set_viewport_size({"width": size["width"], "height": min(max(size["height"], int(height) + 40), 8000)})
    page.wait_for_timeout(800)  # let plotly re-layout at the new size
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    page.set_viewport_size(size)
    return path


def assert_no_exception(page, name: str) -> None:
    errors = page.locator('[data-testid="stException"]')
    assert errors.count() == 0, f"{name}: {errors.first.inner_text()[:1000]}"


def choose_dataset(page, text: str) -> None:
    """Pick a dataset in the sidebar select box by (part of) its label."""
    box = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').first
    box.click()
    page.get_by_role("option").filter(has_text=text).first.click()
    wait_rendered(page)


def test_every_page_renders_and_is_screenshotted(app_url, chromium_page):
    page = chromium_page
    for name, path in PAGES.items():
        open_page(page, app_url, path)
        assert_no_exception(page, name)
        screenshot(page, name)


def test_explorer_shows_three_panels(app_url, chromium_page):
    page = chromium_page
    open_page(page, app_url, "explorer")
    page.wait_for_selector(".js-plotly-plot", timeout=60_000)
    assert page.locator(".js-plotly-plot").count() == 3
    assert page.locator(".js-plotly-plot .scatterlayer .point").count() > 100
    assert_no_exception(page, "explorer")


def test_results_table_and_error_analysis_download(app_url, chromium_page, tmp_path):
    """The home page's table downloads as LaTeX (booktabs) and the retrieval page's worst
    queries as a PDF figure: the files a poster needs, drawn when the button is clicked."""
    page = chromium_page
    open_page(page, app_url, "")
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="LaTeX", exact=True).click()
    latex = tmp_path / download.value.suggested_filename
    download.value.save_as(latex)
    text = latex.read_text(encoding="utf-8")
    assert latex.suffix == ".tex" and r"\toprule" in text and r"\multicolumn{2}{c}{tiny a}" in text
    open_page(page, app_url, "retrieval")
    with page.expect_download(timeout=120_000) as download:
        page.get_by_role("button", name="PDF", exact=True).click()
    pdf = tmp_path / download.value.suggested_filename
    download.value.save_as(pdf)
    assert pdf.name.startswith("worst_queries_") and pdf.read_bytes()[:5] == b"%PDF-"
    assert_no_exception(page, "retrieval after the download")


def test_audio_players_exist_for_the_music_dataset(app_url, chromium_page, app_assets):
    if not (app_assets / "datasets" / "music21_lyrics").exists():
        pytest.skip("the embedded music dataset (assets/datasets/music21_lyrics) is not built: no audio to play")
    page = chromium_page
    open_page(page, app_url, "retrieval")
    choose_dataset(page, "Music")
    pair = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').nth(2)
    pair.click()
    page.get_by_role("option").filter(has_text="audio").first.click()
    wait_rendered(page)
    assert_no_exception(page, "retrieval (music)")
    assert page.locator("audio").count() >= 1
    screenshot(page, "retrieval_music")
    open_page(page, app_url, "alignment")
    assert_no_exception(page, "alignment (music)")
    # click the cell (sheet phrase 2, lyrics phrase 1) of the first matrix: both sides appear
    plot = page.locator(".js-plotly-plot").first
    n = plot.evaluate("p => p.data[0].y.length")
    area = plot.locator(".nsewdrag").first.bounding_box()
    page.mouse.click(area["x"] + 0.5 * area["width"] / n, area["y"] + 1.5 * area["height"] / n)
    page.get_by_text("sheet phrase 2 ↔ lyrics phrase 1").first.wait_for(timeout=60_000)
    wait_rendered(page)
    assert_no_exception(page, "alignment after a click")
    screenshot(page, "alignment_music")


def test_explorer_lasso_selects_in_every_panel_then_umap(app_url, chromium_page):
    page = chromium_page
    open_page(page, app_url, "explorer")
    page.wait_for_selector(".js-plotly-plot .scatterlayer .point", timeout=60_000)
    # pick the lasso in the second panel's toolbar, then draw it around the panel's middle
    plot = page.locator(".js-plotly-plot").nth(1)
    plot.hover()
    plot.locator('.modebar-btn[data-val="lasso"]').click()
    area = plot.locator(".nsewdrag").first.bounding_box()
    cx, cy, r = area["x"] + area["width"] / 2, area["y"] + area["height"] / 2, area["width"] / 6
    page.mouse.move(cx - r, cy - r)
    page.mouse.down()
    for x, y in ((cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r), (cx - r, cy - r)):
        page.mouse.move(x, y, steps=8)
    page.mouse.up()
    page.get_by_text("item(s) selected").first.wait_for(timeout=60_000)
    wait_rendered(page)
    assert_no_exception(page, "explorer after a lasso")
    # the selected item is outlined in all three panels (one outline trace per modality)
    outlined = page.evaluate("""() => Array.from(document.querySelectorAll('.js-plotly-plot'))
        .map(p => p.data.filter(t => t.name.startsWith('selected')).length)""")
    assert outlined == [2, 2, 2]
    screenshot(page, "explorer_selection")
    # UMAP on request, with progress, stored; the panels then say UMAP
    page.get_by_role("button", name="Compute UMAP (stored on disk)").click()
    page.wait_for_function("""() => Array.from(document.querySelectorAll('.js-plotly-plot .gtitle'))
        .filter(t => t.textContent.includes('UMAP')).length === 3""", timeout=540_000)
    wait_rendered(page)
    assert_no_exception(page, "explorer after UMAP")
    screenshot(page, "explorer_umap")


@pytest.fixture(scope="module")
def untrained_app(tmp_path_factory):
    """A second server over an assets folder holding one tiny dataset, and an empty model store."""
    from crossmodal_core.data import io
    from crossmodal_core.data.synthetic import make_synthetic_av

    root = tmp_path_factory.mktemp("untrained_assets")
    (root / "datasets").mkdir()
    io.save_dataset(make_synthetic_av(n_train=240, n_test=120, n_classes=4, dims=(16, 32), seed=3, name="tiny-c"),
                    root / "datasets" / "tiny_c.npz")
    home = tmp_path_factory.mktemp("untrained_home")
    with serving(CROSSMODAL_ASSETS=str(root), CROSSMODAL_HOME=str(home)) as url:
        yield url, home


def test_train_missing_models_button_trains_and_fills_the_explorer(untrained_app, chromium_page):
    url, home = untrained_app
    page = chromium_page
    open_page(page, url, "")
    choose_dataset(page, "tiny_c")
    button = page.get_by_role("button", name="Train missing models (CCA, C-CCA, TNN-C-CCA)")
    assert button.count() == 1
    assert not list(home.rglob("info.json")), "no model should exist before the click"
    button.click()
    # the button disappears once training is done and the page has re-run
    page.get_by_role("button", name="Train missing models").first.wait_for(state="detached", timeout=300_000)
    wait_rendered(page)
    assert_no_exception(page, "home after training")
    trained = sorted(p.parent.name.split("__")[0] for p in (home / "models").rglob("info.json"))
    assert trained == ["cca", "ccca", "tnn-ccca"], trained
    # the explorer now draws the original, C-CCA and TNN-C-CCA panels with no training prompt
    open_page(page, url, "explorer")
    page.wait_for_selector(".js-plotly-plot .scatterlayer .point", timeout=60_000)
    assert page.locator(".js-plotly-plot").count() == 3
    assert page.get_by_role("button", name="Train missing models").count() == 0
    assert_no_exception(page, "explorer after training")
