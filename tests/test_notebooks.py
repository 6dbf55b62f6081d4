"""The notebooks run end to end (QUICK mode) and produce the table and figures they promise.

Executed with nbclient in a ``python3`` kernel started from this interpreter (so the venv's
packages are used), with ``CROSSMODAL_NOTEBOOK_QUICK=1``, ``CROSSMODAL_HOME`` and the output
folders pointed at a temp dir.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
MUSIC = REPO / "assets" / "datasets" / "music21_lyrics" / "dataset.npz"

pytestmark = pytest.mark.slow
needs_music = pytest.mark.skipif(not MUSIC.exists(), reason=f"music dataset not built at {MUSIC}")


def _execute(name: str, tmp_path: Path, monkeypatch) -> nbformat.NotebookNode:
    monkeypatch.setenv("CROSSMODAL_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("CROSSMODAL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CROSSMODAL_NOTEBOOK_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("CROSSMODAL_NOTEBOOK_FIGURES", str(tmp_path / "figures"))
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    # jupyter_client starts the "python3" kernel with sys.executable (this venv's python)
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()  # raises CellExecutionError naming the failing cell
    return nb


def _stream_text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out["text"])
            elif "data" in out and "text/plain" in out["data"]:
                parts.append(out["data"]["text/plain"])
    return "\n".join(parts)


def test_committed_notebooks_match_generator_and_have_no_outputs():
    sys.path.insert(0, str(NOTEBOOKS))
    try:
        import build_notebooks
    finally:
        sys.path.remove(str(NOTEBOOKS))
    assert build_notebooks.main(["--check"]) == 0, "run python notebooks/build_notebooks.py"
    for name in build_notebooks.NOTEBOOKS:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), f"{name} has outputs"
        assert "parameters" in code[0].metadata.get("tags", []), f"{name}: first code cell is not the parameters cell"


@needs_music
def test_results_table_notebook(tmp_path, monkeypatch):
    nb = _execute("01_results_table.ipynb", tmp_path, monkeypatch)
    out = tmp_path / "out"
    text = _stream_text(nb)
    assert "QUICK=True" in text and "SYNTHETIC" in text

    import pandas as pd

    # the paper-layout table of the library (tables.paper_table), not a notebook copy
    poster = pd.read_csv(out / "poster_table.csv", index_col="display")
    assert list(poster.index) == ["CCA", "C-CCA", "TNN-C-CCA"]
    plain, zero = "Synthetic VEGAS-like | ", "Synthetic VEGAS-like, zero-shot (unseen classes) | "
    assert poster.loc["TNN-C-CCA", zero + "audio→visual | n"] == 0  # not run zero-shot in QUICK mode
    assert (poster.loc[:, plain + "audio→visual | n"] == 2).all()
    assert r"\toprule" in (out / "poster_table.tex").read_text(encoding="utf-8")
    assert (out / "poster_table.png").read_bytes()[:4] == b"\x89PNG"

    results = json.loads((out / "synthetic-vegas.json").read_text(encoding="utf-8"))
    assert results["dataset_info"]["synthetic"] is True
    assert results["protocol"]["n_folds"] == 2
    for key, rec in results["models"].items():
        assert rec["error"] is None, (key, rec["error"])
        assert len(rec["folds"]) == 2
    # the table cells are the JSON's fold means, printed as mean ± std in %
    s = results["models"]["ccca"]["summary"]["metrics"]["test"]["audio->visual"]["map"]
    maps = [f["metrics"]["test"]["audio->visual"]["map"] for f in results["models"]["ccca"]["folds"]]
    assert s["mean"] == pytest.approx(np.mean(maps)) and s["std"] == pytest.approx(np.std(maps, ddof=1))
    assert poster.loc["C-CCA", plain + "audio→visual | mean"] == pytest.approx(100 * s["mean"], rel=1e-12)
    assert poster.loc["C-CCA", plain + "audio→visual | std"] == pytest.approx(100 * s["std"], rel=1e-12)
    # chance MAP on 10 balanced classes is about 0.1; the supervised C-CCA must beat plain CCA
    ccca = results["models"]["ccca"]["summary"]["metrics"]["test"]
    cca = results["models"]["cca"]["summary"]["metrics"]["test"]
    for d in ("audio->visual", "visual->audio"):
        assert ccca[d]["map"]["mean"] > cca[d]["map"]["mean"] > 0.12

    zero = json.loads((out / "synthetic-vegas-zeroshot.json").read_text(encoding="utf-8"))
    assert zero["protocol"]["kind"] == "zero-shot" and zero["protocol"]["zero_shot"]["unseen_class_names"]

    paired = pd.read_csv(out / "paired_table.csv")
    assert set(paired["Model"]) == {"UGAAR", "CCA"}
    assert len(paired) == 12  # 2 models x 6 directions
    assert paired[["R@1", "R@5", "R@10"]].apply(lambda c: c.between(0, 100)).all().all()
    # sheet <-> audio pairs are found far above chance (1 / ~4000 test items) by both models
    sa = paired[paired["Direction"] == "sheet→audio"].set_index("Model")
    assert (sa["R@10"] > 20).all()


@needs_music
def test_poster_figures_notebook(tmp_path, monkeypatch):
    nb = _execute("02_poster_figures.ipynb", tmp_path, monkeypatch)
    figures = tmp_path / "figures"
    for stem in ("embedding_maps", "precision_recall", "per_class_ap", "segment_similarity", "retrieval_results"):
        png, svg = figures / f"{stem}.png", figures / f"{stem}.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", stem
        assert png.stat().st_size > 10_000, stem
        assert b"<svg" in svg.read_bytes()[:2000], stem
    # the poster figures come from the library (the app's and the CLI's code), not a copy here
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "figures.poster_figure(" in source and "figures.retrieval_figure(" in source
    assert ".scatter(" not in source
    # 300 dpi: the PNG header carries the physical resolution (pHYs, pixels per metre)
    data = (figures / "precision_recall.png").read_bytes()
    at = data.index(b"pHYs")
    ppm = int.from_bytes(data[at + 4:at + 8], "big")
    assert round(ppm * 0.0254) == 300
    assert "UGAAR fitted on" in _stream_text(nb)
