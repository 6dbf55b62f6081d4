"""The app's retrieval view scores once and answers exactly what the separate library functions do."""

from __future__ import annotations

import numpy as np

from crossmodal_core import metrics, retrieval
from crossmodal_core.appdata import panels


def _view(seed: int = 0, n: int = 120, d: int = 6, n_classes: int = 5) -> panels.RetrievalView:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n) * 3 + 7  # non-contiguous class codes, as a label subset gives
    queries = rng.normal(size=(n, d)).astype(np.float32)
    gallery = (queries + rng.normal(scale=1.5, size=(n, d))).astype(np.float32)
    gallery[5] = gallery[4]  # a tie in every ranking
    rows = np.arange(n) * 2 + 1
    return panels.RetrievalView(None, "audio", "visual", rows, queries, gallery, labels)


def test_query_results_equal_the_query_report():
    rv = _view()
    for pos in (0, 4, 77):
        got = panels.query_results(rv, pos, k=10)
        want = retrieval.query_report(pos, rv.queries, rv.gallery, rv.labels, rv.labels, k=10, paired=True)
        np.testing.assert_array_equal(got["positions"], want.indices)
        np.testing.assert_array_equal(got["rows"], rv.rows[np.asarray(want.indices)])
        np.testing.assert_array_equal(got["scores"], want.scores)
        np.testing.assert_array_equal(got["relevant"], want.relevant)
        assert got["ap"] == want.ap and got["pair_rank"] == want.pair_rank
        assert got["n_relevant"] == want.n_relevant


def test_error_analysis_and_pr_curve_equal_the_separate_functions():
    rv = _view(1)
    class_names = [f"c{i}" for i in range(40)]
    got = panels.error_analysis(rv, class_names, n_worst=7)
    ap = metrics.average_precision(rv.queries, rv.gallery, rv.labels, rv.labels)
    np.testing.assert_array_equal(got["ap"], ap)
    np.testing.assert_array_equal(got["worst"], retrieval.worst_queries(ap, 7))
    classes, codes = np.unique(rv.labels, return_inverse=True)
    np.testing.assert_array_equal(got["confusion"],
                                  retrieval.top1_confusion(rv.queries, rv.gallery, codes, codes, len(classes)))
    assert got["confusion_classes"] == [class_names[int(c)] for c in classes]
    assert got["per_class"] == {class_names[int(c)]: v
                                for c, v in metrics.per_class_average_precision(ap, rv.labels).items()}
    r, p = panels.pr_curve(rv)
    r_want, p_want = metrics.precision_recall_curve(rv.queries, rv.gallery, rv.labels, rv.labels, n_points=11)
    np.testing.assert_array_equal(r, r_want)
    np.testing.assert_array_equal(p, p_want)


def test_the_view_scores_the_gallery_once(monkeypatch):
    from crossmodal_core import scoring

    scored_rows = []
    real = scoring._score_block

    def counting(q, *args, **kwargs):
        scored_rows.append(len(q))
        return real(q, *args, **kwargs)

    monkeypatch.setattr(scoring, "_score_block", counting)
    rv = _view(2)
    for pos in (3, 9, 50):
        panels.query_results(rv, pos)
    panels.error_analysis(rv, [f"c{i}" for i in range(40)])
    panels.pr_curve(rv)
    assert sum(scored_rows) == len(rv.queries)  # every query row scored exactly once
