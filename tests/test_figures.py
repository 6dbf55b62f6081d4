"""The poster figures: drawn from the stored panels, exported files opened and checked.

A tiny synthetic dataset (4 classes, 16-d audio, 32-d visual) with linear models and PCA maps
in the model store, as the app would have them. The PDF is rendered with pdfium, the PNG
decoded, the SVG parsed; the figure's artists are read back to check colours and legend.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter

import numpy as np
import pytest

from crossmodal_core import appdata, figures, store
from crossmodal_core.cli import main

PAIR = ("audio", "visual")
FIGSIZE = (8.0, 3.0)  # inches; small to keep the 300-dpi exports quick (the CLI test has the default)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """``(app, label)``: a tiny feature file with CCA and C-CCA stored, and the PCA maps of the
    original features and C-CCA (CCA's map is left missing on purpose)."""
    from crossmodal_core.data import io as data_io
    from crossmodal_core.data.synthetic import make_synthetic_av

    root = tmp_path_factory.mktemp("figure_assets")
    (root / "datasets").mkdir()
    ds = make_synthetic_av(n_train=200, n_test=120, n_classes=4, dims=(16, 32), seed=3, name="tiny-fig")
    data_io.save_dataset(ds, root / "datasets" / "tiny_fig.npz")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CROSSMODAL_ASSETS", str(root))
        app = appdata.load_dataset("file:tiny_fig.npz")
        label = appdata.label_choices(app.dataset)[0]
        for name in ("cca", "ccca"):
            appdata.train_model(app, name, PAIR, label)
        for model in (None, appdata.find_trained(app, "ccca", PAIR, label)):
            appdata.compute_panel_projection(app, model, PAIR, "pca", label)
    return root, app, label


@pytest.fixture
def stored(tiny, monkeypatch):
    root, app, label = tiny
    monkeypatch.setenv("CROSSMODAL_ASSETS", str(root))
    return app, label


def _poster(app, label, models=("original", "ccca")):
    panels = figures.poster_panels(app, models, PAIR, "pca", label)
    labels, names = appdata.labels_for(app.dataset, label)
    return panels, figures.poster_figure(panels, labels, names, PAIR, label_title=label, figsize=FIGSIZE)


def _non_blank(rgb: np.ndarray) -> float:
    """Share of pixels that are not (near) white."""
    return float((rgb[..., :3].astype(float).min(axis=-1) < 240).mean())


# ---------------------------------------------------------------------- poster figure
def test_poster_draws_the_stored_projections_with_one_colour_per_class(stored):
    app, label = stored
    panels, fig = _poster(app, label)
    assert len(fig.axes) == 2 and [p.title for p in panels] == ["Original features", "C-CCA"]
    labels, names = appdata.labels_for(app.dataset, label)
    colour_of: dict[int, tuple] = {}
    for i, (ax, panel) in enumerate(zip(fig.axes, panels)):
        assert ax.get_title(loc="left") == f"({'ab'[i]})" and ax.get_title() == panel.title
        assert ax.get_xlabel().startswith("PCA 1") and ax.get_ylabel() == "PCA 2"
        assert ax.get_legend() is None
        for m, view in enumerate(PAIR):
            drawn = [c for c in ax.collections if c.get_gid().startswith(f"points-{m}-")]
            # exactly the stored map's points of this view, each class with its own colour
            points = np.concatenate([c.get_offsets() for c in drawn])
            np.testing.assert_allclose(np.sort(points, axis=0), np.sort(panel.coords[m], axis=0), rtol=1e-6)
            for c in drawn:
                cls = int(c.get_gid().rsplit("-c", 1)[1])
                mine = np.asarray(panel.coords[m])[labels[panel.rows] == cls]
                np.testing.assert_allclose(np.sort(c.get_offsets(), axis=0), np.sort(mine, axis=0), rtol=1e-6)
                colour = tuple(np.round(c.get_facecolor()[0][:3], 6))
                assert colour_of.setdefault(cls, colour) == colour, f"class {cls} changes colour in panel {i}"
    assert len(set(colour_of.values())) == len(colour_of) == 4  # four classes, four colours
    # markers tell the modality: the two views' paths differ (circle vs triangle)
    ax = fig.axes[1]
    shapes = {m: next(c for c in ax.collections if c.get_gid().startswith(f"points-{m}-")).get_paths()[0]
              for m in (0, 1)}
    assert len(shapes[0].vertices) != len(shapes[1].vertices)
    # one shared legend: each class once (its panel colour), then the modalities
    assert len(fig.legends) == 1
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts == [names[c] for c in sorted(colour_of)] + ["audio (marker)", "visual (marker)"]
    for handle, text in zip(fig.legends[0].legend_handles, texts):
        if text in names:
            assert tuple(np.round(np.array(_rgb(handle.get_color())), 6)) == colour_of[names.index(text)]


def _rgb(colour) -> tuple:
    from matplotlib.colors import to_rgb

    return to_rgb(colour)


def test_many_classes_colour_the_largest_and_grey_the_rest():
    rng = np.random.default_rng(0)
    n = 400
    labels = np.concatenate([np.repeat(np.arange(30), np.arange(30, 0, -1) // 3 + 1)])[:n]
    labels = rng.permutation(np.resize(labels, n))
    rows = np.arange(n)
    panels = [appdata.PanelData(t, "umap", [rng.normal(size=(n, 2)), rng.normal(size=(n, 2))], rows, True, True)
              for t in ("A", "B", "C")]
    names = [f"work {i}" for i in range(30)]
    fig = figures.poster_figure(panels, labels, names, ["sheet", "audio"], top_n=5, label_title="work")
    counts = Counter(labels.tolist())
    expected = sorted(sorted(counts, key=lambda c: (-counts[c], c))[:5])
    for ax in fig.axes:
        coloured = sorted({int(c.get_gid().rsplit("-c", 1)[1]) for c in ax.collections if "-c" in c.get_gid()})
        assert coloured == expected
        grey = [c for c in ax.collections if c.get_gid().endswith("-other")]
        assert len(grey) == 2
        assert np.allclose(grey[0].get_facecolor()[0][:3], _rgb(figures.GREY))
        assert sum(len(c.get_offsets()) for c in grey) == 2 * int(np.sum(~np.isin(labels, expected)))
    legend = fig.legends[0]
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts[:5] == [names[c] for c in expected] and texts[5] == "other 25 classes (grey)"
    assert "5 largest" in legend.get_title().get_text() and "30 classes" in legend.get_title().get_text()
    # names from a (hostile) dataset file are text, not matplotlib math: the export works
    odd = ["$\\bogus{$ " + n for n in names]
    fig = figures.poster_figure(panels, labels, odd, ["sheet", "audio"], top_n=5, label_title="$x", title="a $ b")
    assert figures.figure_bytes(fig, "png", dpi=30)[:4] == b"\x89PNG"
    assert fig.legends[0].get_texts()[0].get_text() == "\\$\\bogus{\\$ " + names[expected[0]]
    with pytest.raises(ValueError, match="top_n"):
        figures.poster_figure(panels, labels, names, ["sheet", "audio"], top_n=figures.MAX_TOP_N + 1)
    # no class colour is a grey that could be read as "other classes"
    fig = figures.poster_figure(panels, labels, names, ["sheet", "audio"], top_n=figures.MAX_TOP_N)
    from matplotlib.colors import rgb_to_hsv

    colours = {tuple(c.get_facecolor()[0][:3]) for c in fig.axes[0].collections if "-c" in c.get_gid()}
    assert len(colours) == figures.MAX_TOP_N and min(rgb_to_hsv(np.array(c))[1] for c in colours) > 0.15


def test_exports_open_at_300_dpi_and_are_not_blank(stored, tmp_path):
    from PIL import Image
    import pypdfium2

    app, label = stored
    panels, fig = _poster(app, label, ("original", "ccca", "ccca"))
    paths = {fmt: figures.save_figure(fig, tmp_path / f"poster.{fmt}") for fmt in figures.FORMATS}

    png = Image.open(paths["png"])
    assert png.size == (round(FIGSIZE[0] * 300), round(FIGSIZE[1] * 300))
    assert round(png.info["dpi"][0]) == 300
    rgb = np.asarray(png.convert("RGB"))
    assert 0.005 < _non_blank(rgb) < 0.5
    packed = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    assert len(np.unique(packed)) > 20  # class colours, greys, text

    pdf = pypdfium2.PdfDocument(str(paths["pdf"]))
    assert len(pdf) == 1
    width, height = pdf[0].get_size()
    assert (round(width), round(height)) == (round(FIGSIZE[0] * 72), round(FIGSIZE[1] * 72))
    bitmap = np.asarray(pdf[0].render(scale=1).to_pil().convert("RGB"))
    assert bitmap.shape[:2] == (round(FIGSIZE[1] * 72), round(FIGSIZE[0] * 72))
    assert 0.005 < _non_blank(bitmap) < 0.6
    pdf.close()

    root = ET.parse(paths["svg"]).getroot()
    ids = [g.get("id") or "" for g in root.iter("{http://www.w3.org/2000/svg}g")]
    assert len([i for i in ids if i.startswith("axes_")]) == 3
    assert len([i for i in ids if i.startswith("legend_")]) == 1
    assert figures.figure_bytes(fig, "pdf")[:5] == b"%PDF-" == paths["pdf"].read_bytes()[:5]
    with pytest.raises(ValueError, match="format"):
        figures.figure_bytes(fig, "jpg")


def test_missing_model_or_map_names_the_command_and_prepare_builds_it(stored):
    app, label = stored
    before = sorted(store.projections_dir().glob("*.npz"))
    with pytest.raises(figures.MissingArtifactError) as err:
        figures.poster_panels(app, ("original", "tnn-ccca"), PAIR, "pca", label)
    assert "python -m crossmodal_core train --data file:tiny_fig.npz --model tnn-ccca --views audio,visual" \
        in err.value.command
    # CCA is trained but its PCA map is not stored: named, and not computed behind the user's back
    with pytest.raises(figures.MissingArtifactError, match="PCA map of CCA") as err:
        figures.poster_panels(app, ("original", "cca"), PAIR, "pca", label)
    assert err.value.command.startswith("python -m crossmodal_core project --data file:tiny_fig.npz --method pca")
    with pytest.raises(figures.MissingArtifactError, match="UMAP map of Original features"):
        figures.poster_panels(app, ("original", "ccca"), PAIR, "umap", label)
    assert sorted(store.projections_dir().glob("*.npz")) == before
    seen = []
    panels = figures.poster_panels(app, ("cca",), PAIR, "pca", label, prepare=True,
                                   progress=lambda f, msg: seen.append(f))
    assert seen and seen[-1] == 1.0 and panels[0].title == "CCA" and panels[0].stored
    cca = appdata.find_trained(app, "cca", PAIR, label)
    assert appdata.has_panel_projection(app, cca, PAIR, "pca")


# ---------------------------------------------------------------------- retrieval figure
def test_retrieval_figure_marks_relevance_against_a_plain_ranking(stored, tmp_path):
    app, label = stored
    model = appdata.find_trained(app, "ccca", PAIR, label)
    rv = appdata.retrieval_view(app, model, "audio", "visual", label)
    q, k = 7, 5
    fig = figures.retrieval_figure(app, rv, q, k)
    # independent reference: cosine similarity, descending, ties by index
    a = rv.queries[q] / np.linalg.norm(rv.queries[q])
    g = rv.gallery / np.linalg.norm(rv.gallery, axis=1, keepdims=True)
    order = np.lexsort((np.arange(len(g)), -(g @ a)))[:k]
    relevant = rv.labels[order] == rv.labels[q]
    assert [ax.get_gid() for ax in fig.axes] == ["query"] + [
        f"result-{r}-{'relevant' if rel else 'irrelevant'}" for r, rel in enumerate(relevant, 1)]
    for ax, rel in zip(fig.axes[1:], relevant):
        colour = figures.RELEVANT_COLOUR if rel else figures.IRRELEVANT_COLOUR
        assert all(np.allclose(s.get_edgecolor()[:3], _rgb(colour)) for s in ax.spines.values())
        assert ("✓" if rel else "✗") in ax.get_title()
        assert "visual feature vector (32-d), no media" in " ".join(ax.get_xlabel().split())  # not media
        assert ax.images and ax.images[0].get_array().shape == (1, 32)
    names = appdata.labels_for(app.dataset, label)[1]
    assert f"class: {names[rv.labels[order[0]]]}" in fig.axes[1].get_xlabel()
    png = figures.save_figure(fig, tmp_path / "r.png")
    from PIL import Image

    image = Image.open(png)
    assert image.size == (round(2.3 * (k + 1) * 300), round(3.1 * 300))
    assert _non_blank(np.asarray(image.convert("RGB"))) > 0.2


MUSIC = store.REPO_ROOT / "assets" / "datasets" / "music21_lyrics" / "dataset.npz"


@pytest.mark.slow
@pytest.mark.skipif(not MUSIC.exists(), reason="music dataset not built")
def test_retrieval_figure_of_the_music_dataset_shows_scores_and_spectrograms(monkeypatch):
    from crossmodal_core import render

    monkeypatch.setenv("CROSSMODAL_ASSETS", str(store.REPO_ROOT / "assets"))
    music = appdata.load_dataset("music21")
    label = appdata.label_choices(music.dataset)[0]
    model = appdata.find_trained(music, "cca", ("sheet", "audio"), label) \
        or appdata.train_model(music, "cca", ("sheet", "audio"), label)
    rv = appdata.retrieval_view(music, model, "sheet", "audio", label)
    fig = figures.retrieval_figure(music, rv, 0, 3)
    score = fig.axes[0].images[0].get_array()
    assert score.ndim == 3 and 100 < score.shape[1] <= figures.SCORE_THUMBNAIL_WIDTH  # cropped to the notes
    assert 0.01 < _non_blank((255 * np.asarray(score)).astype(np.uint8)) < 0.5  # staff lines and notes on white
    for ax in fig.axes[1:]:
        mel = ax.images[0].get_array()
        assert mel.shape[0] == 64 and mel.shape[1] > 10 and np.ptp(mel) > 20  # dB range of real audio
        assert "log-mel" in ax.get_xlabel()
    # the raster is cached: the second thumbnail does not engrave again
    monkeypatch.setattr(render, "fragment_svg", lambda *a, **k: (_ for _ in ()).throw(AssertionError("engraved")))
    again = figures.score_thumbnail(music.fragments[int(rv.rows[0])])
    np.testing.assert_array_equal(again, score)


def test_tempo_mark_is_dropped_from_the_thumbnail_svg():
    svg = ('<svg xmlns="http://www.w3.org/2000/svg"><g class="page"><g class="tempo" id="t"><text>q = 80</text>'
           '</g><g class="note" id="n"/></g></svg>')
    out = figures._drop_tempo(svg)
    assert 'class="tempo"' not in out and 'id="n"' in out


# ---------------------------------------------------------------------- command line
def test_cli_figure_poster_and_retrieval(stored, tmp_path, capsys):
    app, label = stored
    out = tmp_path / "poster.png"
    assert main(["figure", "poster", "--dataset", "file:tiny_fig.npz", "--models", "original,ccca", "--method",
                 "pca", "--out", str(out)]) == 0
    from PIL import Image

    assert Image.open(out).size == (3900, 1440)
    missing = tmp_path / "missing.pdf"
    assert main(["figure", "poster", "--dataset", "file:tiny_fig.npz", "--method", "pca", "--out", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "no TNN-C-CCA is trained" in err and "python -m crossmodal_core train --data" in err
    assert not missing.exists()
    assert main(["figure", "poster", "--dataset", "file:tiny_fig.npz", "--format", "svg", "--out",
                 str(tmp_path / "p.pdf")]) == 2
    assert "does not match" in capsys.readouterr().err

    test_ids = [str(i) for i in app.dataset.item_ids[appdata.split_indices(app.dataset)[1]]]
    pdf = tmp_path / "retrieval.pdf"
    assert main(["figure", "retrieval", "--dataset", "file:tiny_fig.npz", "--model", "ccca", "--query", test_ids[3],
                 "--k", "3", "--out", str(pdf), "--threads", "1"]) == 0
    import pypdfium2

    doc = pypdfium2.PdfDocument(str(pdf))
    assert _non_blank(np.asarray(doc[0].render(scale=1).to_pil().convert("RGB"))) > 0.1
    doc.close()
    train_id = str(app.dataset.item_ids[appdata.split_indices(app.dataset)[0][0]])
    assert main(["figure", "retrieval", "--dataset", "file:tiny_fig.npz", "--model", "ccca", "--query", train_id,
                 "--out", str(tmp_path / "r.png")]) == 2
    assert "training item" in capsys.readouterr().err
    assert main(["figure", "retrieval", "--dataset", "file:tiny_fig.npz", "--model", "tnn-ccca", "--query",
                 test_ids[0], "--out", str(tmp_path / "r.png")]) == 2
    assert "--model tnn-ccca --views audio,visual` (or pass --prepare)" in capsys.readouterr().err
    assert not (tmp_path / "r.png").exists()
