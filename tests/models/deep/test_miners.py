"""Cross-modal miners against brute-force enumeration."""

import itertools

import numpy as np
import pytest
import torch

from crossmodal_core.models.deep.miners import batch_all_triplets, batch_hard_triplets, mine_triplets, semi_hard_triplets


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(3)
    dist = torch.rand(9, 11, generator=g)  # continuous: no ties
    la = torch.randint(0, 3, (9,), generator=g)
    lv = torch.randint(0, 3, (11,), generator=g)
    la[0] = 5  # an anchor with no positive
    return dist, la, lv


def _as_set(triplets):
    return set(zip(*(t.tolist() for t in triplets)))


def test_batch_all_is_every_valid_triplet(batch):
    dist, la, lv = batch
    want = {(i, j, k) for i, j, k in itertools.product(range(9), range(11), range(11))
            if lv[j] == la[i] and lv[k] != la[i]}
    got = batch_all_triplets(dist, la, lv)
    assert len(got[0]) == len(want) and _as_set(got) == want


def test_batch_hard_picks_hardest_positive_and_negative(batch):
    dist, la, lv = batch
    a, p, n = batch_hard_triplets(dist, la, lv)
    d = dist.numpy()
    expected_anchors = [i for i in range(9) if (lv == la[i]).any() and (lv != la[i]).any()]
    assert a.tolist() == expected_anchors
    for i, j, k in zip(a.tolist(), p.tolist(), n.tolist()):
        pos = [c for c in range(11) if lv[c] == la[i]]
        neg = [c for c in range(11) if lv[c] != la[i]]
        assert j == pos[int(np.argmax(d[i, pos]))]
        assert k == neg[int(np.argmin(d[i, neg]))]


def test_semi_hard_matches_independent_brute_force(batch):
    """Enumerate anchors, positives and negatives with plain loops over float32 distances
    (the miner's precision) and keep d(a,p) < d(a,n) < d(a,p) + margin."""
    dist, la, lv = batch
    margin = np.float32(0.2)
    d = dist.numpy().astype(np.float32)
    labels_a, labels_v = la.tolist(), lv.tolist()
    want, too_hard, too_easy = set(), 0, 0
    for i, label in enumerate(labels_a):
        positives = [j for j, lab in enumerate(labels_v) if lab == label]
        negatives = [k for k, lab in enumerate(labels_v) if lab != label]
        for j in positives:
            for k in negatives:
                if not d[i, k] > d[i, j]:
                    too_hard += 1
                elif not d[i, k] < d[i, j] + margin:
                    too_easy += 1
                else:
                    want.add((i, j, k))
    got = semi_hard_triplets(dist, la, lv, float(margin))
    assert len(got[0]) == len(want)  # no triplet twice
    assert _as_set(got) == want
    # the batch exercises both exclusions, so returning every valid triplet would fail
    assert want and too_hard and too_easy
    assert len(want) < len(batch_all_triplets(dist, la, lv)[0])


def test_dispatch_and_errors(batch):
    dist, la, lv = batch
    assert _as_set(mine_triplets("batch-all", dist, la, lv)) == _as_set(batch_all_triplets(dist, la, lv))
    with pytest.raises(ValueError, match="mining must be"):
        mine_triplets("random", dist, la, lv)
    with pytest.raises(ValueError, match="dist must be"):
        batch_all_triplets(dist[:, :5], la, lv)
