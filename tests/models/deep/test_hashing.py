"""UGACH and AGAH: ±1 codes, code-length validation, both retrieval metrics in the evaluation."""

import numpy as np
import pytest

from crossmodal_core.data.synthetic import make_synthetic_av
from crossmodal_core.evaluate import evaluate
from crossmodal_core.models.deep import AGAH, UGACH


@pytest.fixture(scope="module")
def small():
    return make_synthetic_av(n_train=240, n_test=80, n_classes=3, dims=(8, 12), seed=5)


def _views(ds):
    split = np.asarray(ds.split) == "train"
    a, v, y = ds.view("audio"), ds.view("visual"), ds.label(ds.default_label)
    return [a[split], v[split]], y[split]


@pytest.mark.parametrize("make", [lambda: UGACH(bits=16, hidden=16, epochs=1, progress=False),
                                  lambda: AGAH(bits=32, hidden=(16,), emb_dim=16, epochs=1, progress=False)])
def test_codes_are_the_signs_of_the_relaxed_codes(small, make):
    views, y = _views(small)
    m = make().fit(views, y)
    relaxed = m.transform(views)
    codes = m.codes(views)
    for r, c in zip(relaxed, codes):
        assert c.dtype == np.int8 and c.shape == r.shape == (len(y), m.bits)
        assert set(np.unique(c)) <= {-1, 1}
        np.testing.assert_array_equal(c, np.where(r >= 0, 1, -1))
        assert np.abs(r).max() <= 1.0


@pytest.mark.parametrize("cls", [UGACH, AGAH])
def test_only_the_papers_code_lengths(cls, small):
    views, y = _views(small)
    with pytest.raises(ValueError, match=r"bits must be one of \(16, 32, 64, 128\)"):
        cls(bits=12, progress=False).fit(views, y)


def test_evaluate_reports_hamming_beside_cosine(small):
    res = evaluate(small, {"agah": AGAH(bits=16, hidden=(16,), emb_dim=16, epochs=2, progress=False)},
                   mode="split", progress=False, on_error="raise", pr_points=None)
    fold = res["models"]["agah"]["folds"][0]["metrics"]["test"]
    for direction, vals in fold.items():
        assert {"map", "mrr1", "map_hamming", "mrr1_hamming"} <= set(vals)
        assert 0.0 < vals["map_hamming"] <= 1.0
    summary = res["models"]["agah"]["summary"]["metrics"]["test"]["audio->visual"]
    assert "map_hamming" in summary
    assert "map_hamming.audio->visual" in res["rows"][0]
