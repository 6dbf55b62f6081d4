"""Error-analysis figures (crossmodal_core.figures_analysis) and the worst-query examples they draw."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from crossmodal_core import figures_analysis as fa
from crossmodal_core.appdata import panels

SVG = "{http://www.w3.org/2000/svg}"


def _view(seed: int = 0, n: int = 90, d: int = 5, n_classes: int = 4) -> panels.RetrievalView:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    queries = rng.normal(size=(n, d)).astype(np.float32)
    gallery = (queries + rng.normal(scale=1.2, size=(n, d))).astype(np.float32)
    return panels.RetrievalView(None, "audio", "visual", np.arange(n) * 3, queries, gallery, labels)


def test_worst_query_examples_are_the_first_wrong_items_of_each_ranking():
    rv = _view()
    names = [f"class {c}" for c in range(4)]
    texts = [f"item {i}" for i in range(len(rv.rows))]
    res = panels.error_analysis(rv, names, n_worst=5)
    examples = panels.worst_query_examples(rv, res["worst"], texts, names, n_wrong=3)
    # independent ranking: cosine similarity, ties by gallery index
    q = rv.queries / np.linalg.norm(rv.queries, axis=1, keepdims=True)
    g = rv.gallery / np.linalg.norm(rv.gallery, axis=1, keepdims=True)
    sims = q @ g.T
    assert [e["position"] for e in examples] == list(res["worst"])
    assert [e["ap"] for e in examples] == sorted(e["ap"] for e in examples)  # worst first
    for e in examples:
        order = np.lexsort((np.arange(sims.shape[1]), -sims[e["position"]]))
        wrong = [int(i) for i in order if rv.labels[i] != rv.labels[e["position"]]][:3]
        assert [w["position"] for w in e["wrong"]] == wrong
        assert [w["rank"] for w in e["wrong"]] == [int(np.flatnonzero(order == i)[0]) + 1 for i in wrong]
        assert all(w["class"] != e["class"] for w in e["wrong"])
        assert e["row"] == rv.rows[e["position"]] and e["text"] == f"item {e['position']}"
        assert e["ap"] == pytest.approx(res["ap"][e["position"]])
    with pytest.raises(ValueError):
        panels.worst_query_examples(rv, res["worst"], texts, names, n_wrong=0)


def test_per_class_ap_figure_is_sorted_and_keeps_the_lowest():
    per_class = {"b": 0.5, "a": 0.9, "c": 0.1, "d": float("nan"), "e": 0.7}
    fig = fa.per_class_ap_figure(per_class, mean_ap=0.55, title="t")
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([90, 70, 50, 10])  # nan class left out, best first
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "e", "b", "c"]
    trimmed = fa.per_class_ap_figure(per_class, max_classes=2).axes[0]
    assert [t.get_text() for t in trimmed.get_xticklabels()] == ["b", "c"]
    assert "the 2 lowest of 4 classes" in trimmed.get_title()
    with pytest.raises(ValueError):
        fa.per_class_ap_figure({"x": float("nan")})


def test_confusion_figure_shows_the_row_shares_with_class_names():
    conf = np.array([[8, 2, 0], [1, 1, 2], [0, 0, 0]])
    fig = fa.confusion_figure(conf, ["cat", "dog", "owl"])
    ax = fig.axes[0]
    shown = ax.images[0].get_array()
    np.testing.assert_allclose(shown, [[0.8, 0.2, 0], [0.25, 0.25, 0.5], [0, 0, 0]])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cat", "dog", "owl"]
    assert sorted(t.get_text() for t in ax.texts) == sorted(["8", "2", "1", "1", "2"])
    with pytest.raises(ValueError, match="too many"):
        fa.confusion_figure(np.eye(50, dtype=int), [str(i) for i in range(50)])
    with pytest.raises(ValueError):
        fa.confusion_figure(conf, ["cat", "dog"])


def _examples():
    return [{"text": "Bach chorale, phrase 3", "class": "bwv 10", "ap": 0.04,
             "wrong": [{"rank": 1, "text": "Trecento ballata", "class": "ballata 2", "score": 0.91},
                       {"rank": 2, "text": "Kyrie", "class": "mass 1", "score": 0.88}]},
            {"text": "Song", "class": "song", "ap": 0.1, "wrong": []}]


def test_exports_open_and_are_not_blank():
    fig = fa.worst_queries_figure(_examples(), title="CCA, audio → sheet")
    png = fa.figure_bytes(fig, "png")
    data = png
    at = data.index(b"pHYs")
    assert round(int.from_bytes(data[at + 4:at + 8], "big") * 0.0254) == 300  # 300 dpi
    import matplotlib.image as mpimg

    pixels = mpimg.imread(io.BytesIO(png), format="png")[..., :3]
    assert 0.003 < (pixels.mean(axis=2) < 0.5).mean() < 0.5
    texts = ["".join(t.itertext()) for t in ET.fromstring(fa.figure_bytes(fig, "svg")).iter(SVG + "text")]
    joined = "\n".join(texts)
    assert "Bach chorale, phrase 3" in joined and "Trecento ballata" in joined and "#2" in joined
    pdf = fa.figure_bytes(fa.confusion_figure(np.array([[3, 1], [0, 4]]), ["x", "y"]), "pdf")
    assert pdf[:5] == b"%PDF-"
    pdfium = pytest.importorskip("pypdfium2")
    page = pdfium.PdfDocument(pdf)[0]
    image = np.asarray(page.render(scale=1).to_pil().convert("L"))
    assert image.shape[0] > 100 and (image < 128).mean() > 0.01
    with pytest.raises(ValueError):
        fa.figure_bytes(fig, "gif")
    with pytest.raises(ValueError):
        fa.worst_queries_figure([])
