"""UCAL reconstruction: unsupervised (labels ignored), no label classifier, pairs pulled together."""

import numpy as np

from crossmodal_core.models.deep import UCAL


def test_ucal_ignores_labels_and_has_no_label_classifier():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(160, 3))
    views = [z @ rng.normal(size=(3, 6)) + 0.1 * rng.normal(size=(160, 6)),
             z @ rng.normal(size=(3, 5)) + 0.1 * rng.normal(size=(160, 5))]
    kw = dict(hidden=(16,), n_components=4, epochs=6, batch_size=32, lr=1e-3, progress=False)
    a = UCAL(**kw).fit(views)
    b = UCAL(**kw).fit(views, y=rng.integers(0, 4, 160))
    assert a.module_.label_classifier is None and not UCAL.requires_labels
    for p, q in zip(a.transform(views), b.transform(views)):
        np.testing.assert_array_equal(p, q)
    # the paired squared distance falls during training
    assert a.history_[-1]["pair_loss"] < a.history_[0]["pair_loss"]
