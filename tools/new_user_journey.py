"""Walk through the app as a new user would, in real Chromium, and screenshot every step.

The steps of issue 14's "done when": open the app; download the results table as LaTeX; download
the explorer's three-panel poster figure as PDF; copy the link of a retrieval query and open it in
a fresh browser (the same query and model must be on screen); build a dataset from a folder of
MusicXML files (a few music21 corpus works with lyrics, exported with music21) through the home
page; browse it in the explorer. Each download is opened and checked (LaTeX has booktabs rules,
the PDF renders to a non-blank page). Then issue 12's: the explorer's audio <-> score_image panels
with the score images of a clicked point and its lasso neighbours, and the retrieval page's top 5
score images (``--score-images-only`` runs just that step).

Needs a prepared app data folder (``make prepare``, or ``python -m crossmodal_core prepare``):
the app is started on a free loopback port with the current ``CROSSMODAL_HOME``. Screenshots go
to ``--out`` (default: a temporary folder; pass ``--out assets/screenshots`` to refresh the
committed ones)::

    python tools/new_user_journey.py [--out DIR]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench_app import CHROMIUM, CHROMIUM_ARGS, STATE_JS, free_port, sidebar_link, start_server  # noqa: E402

#: corpus works with lyrics (bwv66.6 has none in music21's corpus)
JOURNEY_WORKS = ("bach/bwv269", "bach/bwv10.7", "bach/bwv40.8")


def settle(page, quiet_s: float = 1.5, timeout_s: float = 600.0) -> None:
    """Wait until the script is done and the page's element tree has not changed for ``quiet_s``
    (the render rule of ``benchmarks/bench_app.py``); an error shown on the page stops the walk."""
    deadline = time.time() + timeout_s
    last_n, last_change = None, time.time()
    while time.time() < deadline:
        state = page.evaluate(STATE_JS)
        if state.get("error"):
            raise SystemExit(f"the page shows an error: {state.get('messages')}")
        if state["n"] != last_n or state.get("busy", True):
            if state["n"] != last_n:
                last_n, last_change = state["n"], time.time()
        elif time.time() - last_change >= quiet_s:
            return
        page.wait_for_timeout(200)
    raise SystemExit(f"the page did not settle in {timeout_s:.0f} s")


def shot(page, out: Path, name: str) -> Path:
    path = out / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"  screenshot {path}", flush=True)
    return path


def download(page, label: str, scope=None) -> bytes:
    """Click the download button whose text is ``label`` and return the file's bytes."""
    where = scope if scope is not None else page
    button = where.get_by_test_id("stDownloadButton").filter(has_text=label).first
    button.scroll_into_view_if_needed()
    with page.expect_download(timeout=600_000) as info:
        button.click()
    return Path(info.value.path()).read_bytes()


def export_scores(folder: Path) -> None:
    """A user's folder: corpus works with lyrics exported to MusicXML, plus one broken file."""
    from music21 import corpus

    folder.mkdir(parents=True, exist_ok=True)
    for work in JOURNEY_WORKS:
        corpus.parse(work).write("musicxml", fp=str(folder / f"{work.split('/')[-1]}.musicxml"))
    (folder / "broken.musicxml").write_text("<score-partwise><part id='P1'><measure>", encoding="utf-8")


def check_pdf(data: bytes) -> None:
    import numpy as np
    import pypdfium2 as pdfium

    assert data[:5] == b"%PDF-", "the poster download is not a PDF"
    page = pdfium.PdfDocument(io.BytesIO(data))[0]
    pixels = np.asarray(page.render(scale=1).to_pil().convert("L"))
    assert (pixels < 200).mean() > 0.01, "the poster PDF renders blank"


def tall_shot(page, out: Path, name: str) -> Path:
    """The whole page: Streamlit scrolls inside its main block, so the viewport grows to it."""
    size = page.viewport_size
    height = page.evaluate("""() => { const m = document.querySelector('[data-testid="stMain"]');
                                      return m ? m.scrollHeight : document.body.scrollHeight; }""")
    page.set_viewport_size({"width": size["width"], "height": min(max(size["height"], int(height) + 40), 6000)})
    page.wait_for_timeout(1000)  # plotly re-lays out at the new size
    path = shot(page, out, name)
    page.set_viewport_size(size)
    return path


#: page coordinates of a point of panel ``i`` (plotly's own axis mapping; the busiest trace's
#: point nearest to the panel's centre, so a lasso around it catches a few neighbours)
POINT_JS = """(i) => {
  const p = document.querySelectorAll('.js-plotly-plot')[i];
  const xa = p._fullLayout.xaxis, ya = p._fullLayout.yaxis, box = p.getBoundingClientRect();
  const traces = p._fullData.filter(t => t.visible === true && t.x && t.x.length > 1);
  const t = traces.reduce((a, b) => (b.x.length > a.x.length ? b : a));
  const cx = (xa.range[0] + xa.range[1]) / 2, cy = (ya.range[0] + ya.range[1]) / 2;
  let best = 0, bestD = Infinity;
  for (let k = 0; k < t.x.length; k++) {
    const d = ((t.x[k] - cx) / (xa.range[1] - xa.range[0])) ** 2 + ((t.y[k] - cy) / (ya.range[1] - ya.range[0])) ** 2;
    if (d < bestD) { bestD = d; best = k; }
  }
  return [box.left + xa._offset + xa.l2p(t.x[best]), box.top + ya._offset + ya.l2p(t.y[best])];
}"""


def score_image_step(page, base: str, out: Path) -> None:
    """6. Score images: in the explorer (audio <-> score_image), a click on a point of the
    TNN-C-CCA panel shows its score image, a lasso around it those of its neighbours; the
    retrieval page shows the top 5 score images of an audio query whose true pair TNN-C-CCA
    ranks high; the alignment page shows the selected phrase's score image."""
    from crossmodal_core import appdata
    from crossmodal_core.data import catalog

    app = appdata.load_dataset(catalog.list_entries()[0].id)
    label = appdata.label_choices(app.dataset)[0]
    pair = ("audio", "score_image")
    model = appdata.find_trained(app, "tnn-ccca", pair, label)
    assert pair in appdata.view_pairs(app.dataset) and model is not None, \
        "needs the music dataset with score_image and a prepared TNN-C-CCA (python -m crossmodal_core prepare)"
    query = f"dataset={app.entry.id}&label={label}&pair=audio~score_image"
    page.goto(f"{base}/explorer?{query}&panel1=original&panel2=ccca&panel3=tnn-ccca")
    settle(page)
    page.wait_for_selector(".js-plotly-plot .scatterlayer .point", timeout=120_000)
    x, y = page.evaluate(POINT_JS, 2)
    page.mouse.click(x, y)
    page.get_by_text("score_image of the selected items").first.wait_for(timeout=120_000)
    settle(page)
    plot = page.locator(".js-plotly-plot").nth(2)
    plot.hover()
    plot.locator('.modebar-btn[data-val="lasso"]').click()
    r = 14
    page.mouse.move(x - r, y - r)
    page.mouse.down()
    for px, py in ((x + r, y - r), (x + r, y + r), (x - r, y + r), (x - r, y - r)):
        page.mouse.move(px, py, steps=6)
    page.mouse.up()
    page.wait_for_timeout(1500)
    settle(page)
    n = page.locator('[data-testid="stMain"] [data-testid="stImage"] img').count()
    print(f"  explorer: {n} score image(s) of the selected items", flush=True)
    tall_shot(page, out, "score_images_explorer")
    # an audio query whose true pair TNN-C-CCA puts in its top 5, so the figure shows a hit
    rv = appdata.retrieval_view(app, model, "audio", "score_image", label)
    ranks = [appdata.query_results(rv, i, 5)["pair_rank"] for i in range(min(len(rv.rows), 400))]
    pos = min(range(len(ranks)), key=lambda i: (ranks[i] > 5, -ranks[i] if ranks[i] <= 5 else ranks[i]))
    item = str(app.dataset.item_ids[int(rv.rows[pos])])
    page.goto(f"{base}/retrieval?{query}&model=tnn-ccca&dir=audio~score_image&k=5&q={item}")
    settle(page)
    n = page.locator('[data-testid="stMain"] [data-testid="stImage"] img').count()
    print(f"  retrieval: query {item} (true pair at rank {ranks[pos]}), {n} score images", flush=True)
    tall_shot(page, out, "score_images_retrieval")
    page.goto(f"{base}/alignment?{query}&phrase=2")
    settle(page)
    n = page.locator('[data-testid="stMain"] [data-testid="stImage"] img').count()
    print(f"  alignment: {n} score image(s) of the selected phrase", flush=True)
    tall_shot(page, out, "score_images_alignment")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, help="folder for the screenshots (default: a temporary folder)")
    p.add_argument("--scores-name", default="my_songs", help="the folder of scores made under CROSSMODAL_HOME/scores")
    p.add_argument("--score-images-only", action="store_true",
                   help="only step 6: the explorer's and retrieval page's score images (music dataset, prepared)")
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from crossmodal_core import store

    out = args.out or Path(tempfile.mkdtemp(prefix="crossmodal-journey-"))
    out.mkdir(parents=True, exist_ok=True)
    downloads = Path(tempfile.mkdtemp(prefix="crossmodal-journey-files-"))
    if not args.score_images_only:
        export_scores(store.child_path(store.scores_dir(), store.slug(args.scores_name)))
    port = free_port()
    server = start_server(port, downloads / "server.log")
    base = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            if args.score_images_only:
                print("6. score images in the explorer and the retrieval results", flush=True)
                score_image_step(page, base, out)
                browser.close()
                return 0
            print("1. open the app", flush=True)
            page.goto(base)
            settle(page)
            shot(page, out, "journey_1_home")

            print("2. download the results table as LaTeX", flush=True)
            latex = download(page, "LaTeX").decode("utf-8")
            assert "\\toprule" in latex and "\\bottomrule" in latex, "the LaTeX download is not a booktabs table"
            (downloads / "results_table.tex").write_text(latex, encoding="utf-8")
            print(f"  results_table.tex: {len(latex.splitlines())} lines, booktabs", flush=True)

            print("3. download the three-panel poster figure as PDF", flush=True)
            page.locator(sidebar_link("explorer")).click()
            settle(page)
            page.get_by_text("Poster figure: the three panels", exact=False).first.click()
            settle(page)
            pdf = download(page, "PDF")
            check_pdf(pdf)
            (downloads / "poster.pdf").write_bytes(pdf)
            print(f"  poster.pdf: {len(pdf) / 1024:.0f} KiB, renders non-blank", flush=True)
            shot(page, out, "journey_3_explorer_poster")

            print("4. send a link that reopens the same retrieval query", flush=True)
            page.locator(sidebar_link("retrieval")).click()
            settle(page)
            # a query of one's own: search the list, the first match becomes the query
            search = page.get_by_label("Search by title, lyrics or class")
            search.fill("Jesu")
            search.press("Enter")
            settle(page)
            query_line = page.locator('[data-testid="stMarkdownContainer"]').filter(has_text=" query:").first
            asked = query_line.inner_text().strip()
            link = page.locator('[data-testid="stCode"]').last.inner_text().replace("\n", "").strip()
            assert link.startswith(base) and "q=" in link, f"no shareable link on the retrieval page: {link!r}"
            print(f"  query: {asked[:90]}\n  link: {link}", flush=True)
            shot(page, out, "journey_4_retrieval")
            colleague = browser.new_page(viewport={"width": 1400, "height": 1000})  # a fresh session
            colleague.goto(link)
            settle(colleague)
            reopened = colleague.locator('[data-testid="stMarkdownContainer"]').filter(has_text=" query:").first
            assert reopened.inner_text().strip() == asked, "the link did not reopen the same query"
            shot(colleague, out, "journey_4_retrieval_link_reopened")
            colleague.close()

            print("5. build a dataset from a folder of MusicXML files and browse it", flush=True)
            page.goto(base)
            settle(page)
            page.get_by_text("Build a dataset from your own scores", exact=False).first.click()
            settle(page)
            page.get_by_role("button", name="Build the dataset").click()
            page.get_by_text("Built ", exact=False).first.wait_for(timeout=1_800_000)
            settle(page)
            shot(page, out, "journey_5_scores_built")
            page.get_by_role("button", name="Open it").click()
            settle(page)
            page.locator(sidebar_link("explorer")).click()  # the same session: the new dataset stays chosen
            settle(page)
            train = page.get_by_role("button", name="Train missing models", exact=False)
            if train.count():  # a new dataset has no models yet: the page offers to train them
                train.first.click()
                page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=1_800_000)
                settle(page, quiet_s=3.0)
            assert args.scores_name in page.content(), "the explorer does not show the new dataset"
            shot(page, out, "journey_5_scores_explorer")
            print("6. score images in the explorer and the retrieval results", flush=True)
            score_image_step(page, base, out)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"screenshots in {out}; downloads in {downloads}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
