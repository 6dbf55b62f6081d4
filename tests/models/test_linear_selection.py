"""select_regularization: MAP recomputed independently (sklearn AP), grid forms, failures."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from crossmodal_core.data.splits import class_balanced_folds
from crossmodal_core.models import CCA, ClusterCCA, select_regularization


def make_data(n=150, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    x = 1.5 * rng.standard_normal((3, 8))[labels] + rng.standard_normal((n, 8))
    y = 1.5 * rng.standard_normal((3, 12))[labels] + rng.standard_normal((n, 12))
    return x, y, labels


def sklearn_map(queries, gallery, q_labels, g_labels):
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    scores = q @ g.T
    return np.mean([average_precision_score(g_labels == lab, s) for s, lab in zip(scores, q_labels)])


def test_scores_are_validation_map_and_best_is_the_max():
    x, y, labels = make_data()
    best, table = select_regularization(ClusterCCA(n_components=2), [x, y], labels, grid=(1e-3, 1.0), n_splits=3)
    assert [row["reg"] for row in table] == [1e-3, 1.0]
    assert best == {"reg": table[int(np.argmax([r["mean"] for r in table]))]["reg"]}
    folds = class_balanced_folds(labels, n_splits=3, seed=0)
    expected = []
    for k in range(3):
        val = folds == k
        model = ClusterCCA(n_components=2, reg=1.0).fit([x[~val], y[~val]], labels[~val])
        za, zv = model.transform([x[val], y[val]])
        lv = labels[val]
        expected.append(0.5 * (sklearn_map(za, zv, lv, lv) + sklearn_map(zv, za, lv, lv)))
    np.testing.assert_allclose(table[1]["scores"], expected, atol=1e-6)
    np.testing.assert_allclose(table[1]["mean"], np.mean(expected), atol=1e-6)


def test_mapping_grid_and_correlation_metric():
    x, y, labels = make_data()
    best, table = select_regularization(CCA(), [x, y], labels, grid={"reg": [1e-2, 1e-1], "n_components": [1, 2]},
                                        metric="correlation")
    assert len(table) == 4 and set(best) == {"reg", "n_components"}
    assert best["n_components"] == 2  # a sum over more components is larger


def test_failed_candidate_is_reported_not_fatal():
    x, y, labels = make_data(n=30)
    x = np.hstack([x, np.random.default_rng(1).standard_normal((30, 30))])  # d > n: singular without ridge
    best, table = select_regularization(CCA(n_components=2, dtype="float64"), [x, y], labels, grid=(0.0, 0.1))
    assert best == {"reg": 0.1}
    assert np.isnan(table[0]["mean"]) and "larger reg" in table[0]["error"]


def test_bad_arguments():
    x, y, labels = make_data()
    with pytest.raises(ValueError, match="metric"):
        select_regularization(CCA(), [x, y], labels, metric="auc")
    with pytest.raises(ValueError, match="no parameter"):
        select_regularization(CCA(), [x, y], labels, grid={"alpha": [1]})
    with pytest.raises(ValueError, match="at least one"):
        select_regularization(CCA(), [x, y], labels, grid=())
    with pytest.raises(ValueError, match="labels"):
        select_regularization(CCA(), [x, y], labels[:-1])


@pytest.mark.parametrize(
    "estimator",
    [CCA(n_components=2, dtype="float64"), ClusterCCA(n_components=2, dtype="float64"),
     ClusterCCA(n_components=2, variant="reference", beta=0.3, dtype="float64")],
)
def test_reused_fold_statistics_equal_refitting(estimator, monkeypatch):
    x, y, labels = make_data()
    grid = {"reg": [1e-3, 0.1], "reg_scale": ["mean_variance", "absolute"]}
    with monkeypatch.context() as patch:
        patch.setattr(type(estimator), "fit", lambda *a, **k: pytest.fail("refitted instead of reusing sums"))
        fast_best, fast = select_regularization(estimator, [x, y], labels, grid=grid)
    # the same search through the generic path: a grid key outside the solve-only set
    slow_best, slow = select_regularization(estimator, [x, y], labels,
                                            grid={**grid, "n_components": [estimator.n_components]})
    assert fast_best == {k: slow_best[k] for k in fast_best}
    for a, b in zip(fast, slow):
        np.testing.assert_allclose(a["scores"], b["scores"], atol=1e-9)
