"""crossmodal_core.index: exact top-k with the tie rule, FAISS with measured recall, persistence.

The galleries here are small (a few thousand rows), where exact search is faster than any
FAISS index; tests of the FAISS machinery pass ``min_speedup=0`` so the index is kept anyway.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import crossmodal_core.index as index_mod
from crossmodal_core.index import (
    ExactIndex,
    FaissIndex,
    IndexReport,
    build_index,
    index_path,
    load_index,
    recall_at_k,
)

faiss = pytest.importorskip("faiss")


@pytest.fixture(autouse=True)
def _one_faiss_thread():
    faiss.omp_set_num_threads(1)


def tied_vectors(n, d=8, seed=0):
    """Rows with exactly four entries +-1: unit rows have entries +-0.5, every cosine is a
    multiple of 1/4, computed exactly in float32 whatever the kernel, so ties abound."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, d), dtype=np.float32)
    for i in range(n):
        x[i, rng.choice(d, 4, replace=False)] = rng.choice([-1.0, 1.0], 4)
    return x


def reference(q, g, k, metric="cosine"):
    q64, g64 = q.astype(np.float64), g.astype(np.float64)
    if metric == "cosine":
        s = (q64 / np.linalg.norm(q64, axis=1, keepdims=True)) @ (g64 / np.linalg.norm(g64, axis=1, keepdims=True)).T
    else:
        s = -np.sqrt(((q64[:, None, :] - g64[None, :, :]) ** 2).sum(-1))
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(s, order, axis=1)


def clustered_low_rank(n, n_queries, d=32, rank=4, n_classes=20, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_classes, rank))
    mix = rng.standard_normal((rank, d))

    def draw(m):
        z = centres[rng.integers(n_classes, size=m)] + 0.3 * rng.standard_normal((m, rank))
        return (z @ mix + 0.02 * rng.standard_normal((m, d))).astype(np.float32)

    return draw(n), draw(n_queries)


@pytest.mark.parametrize("gallery_block", [None, 1024, 320])
@pytest.mark.parametrize("k", [1, 5, 8, 10, 50])
def test_exact_equals_stable_argsort_with_ties(monkeypatch, k, gallery_block):
    if gallery_block:  # several blocks, group pruning (1024 = 32 groups) and a ragged last block
        monkeypatch.setattr(index_mod, "GALLERY_BLOCK", gallery_block)
        monkeypatch.setattr(index_mod, "QUERY_BLOCK", 64)
    g = tied_vectors(3000)
    g[1500:1510] = g[7]  # exact duplicates far apart in index
    q = np.concatenate([tied_vectors(150, seed=1), g[[7, 1505]]])
    idx, scores = ExactIndex(g).search(q, k)
    ref_idx, ref_scores = reference(q, g, k)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(scores, ref_scores.astype(np.float32))
    assert (np.diff(scores, axis=1) <= 0).all()


def test_exact_euclidean_and_random_data():
    rng = np.random.default_rng(3)
    g = rng.standard_normal((4000, 12)).astype(np.float32) + 5.0
    q = rng.standard_normal((70, 12)).astype(np.float32) + 5.0
    for metric in ("cosine", "euclidean"):
        idx, scores = ExactIndex(g, metric=metric).search(q, 10)
        ref_idx, ref_scores = reference(q, g, 10, metric)
        np.testing.assert_array_equal(idx, ref_idx)
        np.testing.assert_allclose(scores, ref_scores, atol=2e-5)


def test_faiss_rerank_recall_and_exact_scores():
    g, q = clustered_low_rank(6000, 1000)
    truth, _ = ExactIndex(g).search(q, 10)
    for kind in ("hnsw", "ivf"):
        ix = build_index(g, kind=kind, target_recall=0.95, k=10, seed=0, min_speedup=0)
        assert isinstance(ix, FaissIndex) and ix.kind == kind
        r = ix.report
        assert r.recall >= 0.95 and r.target_recall == 0.95 and r.k == 10 and r.rerank
        assert ("efSearch" if kind == "hnsw" else "nprobe") in r.params
        assert r.build_seconds > 0 and r.index_bytes > g.nbytes and r.queries_per_second > 0
        found, scores = ix.search(q, 10)
        assert recall_at_k(found, truth) >= 0.95  # out of sample: q was not the tuning sample
        qn = q / np.linalg.norm(q.astype(np.float64), axis=1, keepdims=True)
        gn = g / np.linalg.norm(g.astype(np.float64), axis=1, keepdims=True)
        exact_scores = np.einsum("qd,qkd->qk", qn, gn[found])  # float64 cosine of the returned items
        np.testing.assert_allclose(scores, exact_scores, atol=1e-6)
        # order: score desc, then index asc
        s, i = scores, found
        assert ((s[:, :-1] > s[:, 1:]) | ((s[:, :-1] == s[:, 1:]) & (i[:, :-1] < i[:, 1:]))).all()


def test_rerank_applies_the_tie_rule_to_duplicates():
    g, _ = clustered_low_rank(3000, 1, seed=4)
    g[2000:2012] = g[5]  # twelve duplicates of row 5
    ix = build_index(g, kind="hnsw", target_recall=0.9, k=10, min_speedup=0)
    found, scores = ix.search(g[[5]], 10)
    assert found[0].tolist() == [5] + list(range(2000, 2009))
    assert len(set(scores[0].tolist())) == 1


def test_selection_raises_ef_search_and_nprobe_when_first_try_misses():
    rng = np.random.default_rng(0)
    g = rng.standard_normal((4000, 64)).astype(np.float32)  # isotropic, high-dim: hard
    ix = build_index(g, kind="hnsw", target_recall=0.9, k=10, M=4, rerank_factor=1, max_ef_search=4096,
                     min_speedup=0)  # a 4,000-row gallery: exact search is faster, keep the index anyway
    tried = [t for t in ix.report.tried if t["kind"] == "hnsw"]
    assert tried[0]["params"]["efSearch"] == 16 and tried[0]["recall"] < 0.9
    assert len(tried) > 1 and ix.report.params["efSearch"] > 16
    assert ix.report.recall >= 0.9 == ix.report.target_recall
    assert [t["params"]["efSearch"] for t in tried] == sorted(t["params"]["efSearch"] for t in tried)

    iv = build_index(g, kind="ivf", target_recall=0.9, k=10, nlist=64, max_nprobe=64, min_speedup=0)
    tried = [t for t in iv.report.tried if t["kind"] == "ivf"]
    assert tried[0]["params"]["nprobe"] == 1 and tried[0]["recall"] < 0.9
    assert iv.report.params["nprobe"] > 1 and iv.report.recall >= 0.9


def test_auto_falls_back_to_exact_with_a_warning():
    rng = np.random.default_rng(1)
    g = rng.standard_normal((3000, 64)).astype(np.float32)
    with pytest.warns(UserWarning, match=r"falling back to exact") as rec:
        ix = build_index(g, kind="auto", target_recall=1.0, k=10, exact_below=0, M=4,
                         rerank_factor=1, max_ef_search=16, nlist=64, max_nprobe=1)
    msg = str(rec[0].message)
    assert "hnsw reached recall@10" in msg and "ivf reached recall@10" in msg
    assert isinstance(ix, ExactIndex) and ix.report.kind == "exact" and ix.report.requested == "auto"
    assert ix.report.fallback == msg and ix.report.recall == 1.0
    assert {t["kind"] for t in ix.report.tried} == {"exact", "hnsw", "ivf"}


def test_an_index_slower_than_exact_is_not_kept():
    rng = np.random.default_rng(2)
    g = rng.standard_normal((3000, 64)).astype(np.float32)
    with pytest.warns(UserWarning, match=r"slower than 1000 x exact"):
        ix = build_index(g, kind="hnsw", target_recall=0.5, k=10, min_speedup=1000)
    assert isinstance(ix, ExactIndex) and len([t for t in ix.report.tried if t["kind"] == "hnsw"]) == 1


def test_auto_is_exact_below_the_threshold():
    g, _ = clustered_low_rank(500, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ix = build_index(g)  # kind="auto", 500 < AUTO_EXACT_BELOW
    assert isinstance(ix, ExactIndex) and "auto" in ix.report.reason and ix.report.recall == 1.0


@pytest.mark.parametrize("kind,metric", [("exact", "cosine"), ("exact", "euclidean"), ("hnsw", "cosine"),
                                         ("ivf", "cosine"), ("hnsw", "euclidean")])
def test_save_load_round_trip(tmp_path, kind, metric):
    g, q = clustered_low_rank(3000, 50, seed=2)
    ix = build_index(g, kind=kind, metric=metric, target_recall=0.9, k=10, min_speedup=0)
    path = index_path(tmp_path / "model", "audio")
    assert ix.save(path) == path and path.exists() and path.with_name(path.name + ".json").exists()
    back = load_index(path)
    assert type(back) is type(ix) and back.kind == ix.kind and back.metric == metric
    assert back.report == ix.report
    for rerank in ([True, False] if kind != "exact" else [None]):
        kw = {} if rerank is None else {"rerank": rerank}
        a, b = ix.search(q, 10, **kw), back.search(q, 10, **kw)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    assert not [p for p in path.parent.iterdir() if ".cmtmp-" in p.name]  # no temporaries left


def test_tampered_or_mismatched_sidecar_is_refused(tmp_path):
    g, _ = clustered_low_rank(2000, 1, seed=5)
    path = build_index(g, kind="ivf", target_recall=0.9, min_speedup=0).save(tmp_path / "a.faiss")
    side = tmp_path / "a.faiss.json"
    good = json.loads(side.read_text())

    def refused(change, match, target=side):
        meta = json.loads(json.dumps(good))
        change(meta)
        side.write_text(json.dumps(meta))
        with pytest.raises(ValueError, match=match) as err:
            load_index(path)
        assert str(target) in str(err.value)  # the message names the file

    refused(lambda m: m.update(format="something-else"), "not a crossmodal-index sidecar")
    refused(lambda m: m.update(format_version=99), "format_version 99")
    refused(lambda m: m.update(n=1999), "the report disagrees|holds")
    refused(lambda m: (m.update(n=1999), m["report"].update(n=1999)), "sidecar says", target=path)
    refused(lambda m: m.update(metric="euclidean"), "disagrees|centre")
    refused(lambda m: m.pop("data_sha256"), "missing key")
    refused(lambda m: m.update(gallery_sha256="0" * 64), "does not match gallery_sha256", target=path)
    side.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_index(path)

    # a data file that is not the one the sidecar describes
    side.write_text(json.dumps(good))
    other = build_index(g[:1500], kind="ivf", target_recall=0.9, min_speedup=0).save(tmp_path / "b.faiss")
    path.write_bytes(other.read_bytes())
    with pytest.raises(ValueError, match="does not match the digest") as err:
        load_index(path)
    assert str(path) in str(err.value)
    (tmp_path / "a.faiss.json").unlink()
    with pytest.raises(FileNotFoundError, match="sidecar"):
        load_index(path)


def test_exact_npy_header_is_checked_against_the_sidecar(tmp_path):
    g, _ = clustered_low_rank(300, 1)
    path = ExactIndex(g).save(tmp_path / "e.idx")
    side = tmp_path / "e.idx.json"
    meta = json.loads(side.read_text())
    # a different array with a matching digest in the sidecar: the header claim is refused
    with open(path, "wb") as fh:
        np.save(fh, np.zeros((10, 32), dtype=np.float32))
    meta["data_sha256"] = index_mod._file_sha256(path)
    side.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"sidecar says float32 \(300, 32\)"):
        load_index(path)


def test_validation_errors():
    g, q = clustered_low_rank(200, 5)
    ix = ExactIndex(g)
    with pytest.raises(ValueError, match="queries have 31 features but the index was built on 32"):
        ix.search(q[:, :31], 3)
    with pytest.raises(ValueError, match="k=201 exceeds the gallery size 200"):
        ix.search(q, 201)
    with pytest.raises(ValueError, match="k must be an integer"):
        ix.search(q, 0)
    bad = q.copy()
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match=r"queries contains NaN or inf \(first in row 2\)"):
        ix.search(bad, 3)
    with pytest.raises(ValueError, match="gallery is empty"):
        build_index(np.zeros((0, 4)))
    with pytest.raises(ValueError, match="gallery row 0 is all zeros"):
        ExactIndex(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="kind must be one of"):
        build_index(g, kind="annoy")
    with pytest.raises(ValueError, match="target_recall"):
        build_index(g, target_recall=1.5)
    with pytest.raises(ValueError, match="k=500 exceeds"):
        build_index(g, k=500)
    with pytest.raises(ValueError, match="sample_queries have 3 features"):
        build_index(g, kind="hnsw", sample_queries=q[:, :3])
    with pytest.raises(ValueError, match="metric must be one of"):
        ExactIndex(g, metric="dot")


def test_report_round_trips_and_rejects_unknown_fields():
    r = IndexReport(kind="exact", requested="auto", metric="cosine", n=3, d=2, params={"a": 1})
    assert IndexReport.from_dict(r.as_dict()) == r
    with pytest.raises(ValueError, match="unknown report fields"):
        IndexReport.from_dict({**r.as_dict(), "evil": 1})


def test_recall_at_k():
    assert recall_at_k(np.array([[1, 2], [3, 4]]), np.array([[2, 1], [3, 5]])) == 0.75
    assert recall_at_k(np.array([[-1, 2]]), np.array([[2, 1]])) == 0.5


def test_euclidean_recall_sample_lies_on_the_gallery():
    g, q = clustered_low_rank(6000, 1000, seed=6)
    g, q = g + 50.0, q + 50.0  # far from the origin: a sample left centred would miss the data
    ix = build_index(g, kind="ivf", metric="euclidean", target_recall=0.95, k=10, min_speedup=0)
    truth, _ = ExactIndex(g, metric="euclidean").search(q, 10)
    assert ix.report.recall >= 0.95 and recall_at_k(ix.search(q, 10)[0], truth) >= 0.95
