"""Linear models fitted from streamed statistics: views on disk (Zarr), dask arrays and a
dask.distributed LocalCluster give the in-memory fit (to 1e-6), block by block."""

import numpy as np
import pytest

from crossmodal_core.data import io as dio
from crossmodal_core.data.dataset import CrossModalDataset
from crossmodal_core.models.linear import CCA, KCCA, ClusterCCA, ClusterKCCA, ClusterStatistics
from crossmodal_core.models.linear import streaming


def _data(n=1200, seed=0):
    rng = np.random.default_rng(seed)
    lab = rng.integers(0, 6, n)
    z = rng.standard_normal((n, 3)) + lab[:, None]
    x = z @ rng.standard_normal((3, 9)) + rng.standard_normal((n, 9)) + 3.0
    y = z @ rng.standard_normal((3, 14)) + rng.standard_normal((n, 14)) - 2.0
    return x, y, lab


@pytest.fixture(scope="module")
def on_disk(tmp_path_factory):
    x, y, lab = _data()
    ds = CrossModalDataset(views={"a": x, "b": y}, labels={"c": lab}, class_names={"c": [str(i) for i in range(6)]})
    path = dio.save_zarr(ds, tmp_path_factory.mktemp("zarr") / "s.zarr", chunk_bytes=4096)
    opened = dio.load_dataset(path)
    return x, y, lab, opened.views["a"], opened.views["b"]


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    # threads, not processes: the same scheduler, graph and task code without the start-up cost
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
    with distributed.Client(cluster) as c:
        # both workers registered before the first graph: a task graph sent while one is still
        # starting (a loaded CI box) was cancelled once with "lost dependencies"
        c.wait_for_workers(2, timeout=120)
        yield c
    cluster.close()


MODELS = [
    (CCA, {}, False),
    (ClusterCCA, {}, True),
    (ClusterCCA, {"variant": "reference", "beta": 0.3}, True),
    (KCCA, {"n_nystroem": 40}, False),
    (ClusterKCCA, {"n_nystroem": 40}, True),
]


def _assert_same(a, b, x, y, tol=1e-6):
    for wa, wb in zip(a.weights_, b.weights_):
        np.testing.assert_allclose(wa, wb, rtol=0, atol=tol * np.abs(wa).max())
    np.testing.assert_allclose(a.canonical_correlations_, b.canonical_correlations_, rtol=0, atol=tol)
    for za, zb in zip(a.transform([x, y]), b.transform([x, y])):
        np.testing.assert_allclose(za, zb, rtol=0, atol=tol * np.abs(za).max())


@pytest.mark.parametrize("model, params, supervised", MODELS)
def test_on_disk_and_on_a_cluster_equal_the_in_memory_fit(on_disk, client, model, params, supervised):
    x, y, lab, lx, ly = on_disk
    y_arg = lab if supervised else None
    reference = model(n_components=3, dtype="float64", **params).fit([x, y], y_arg)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(streaming, "BLOCK_BYTES", 100 * (9 + 14) * 8)  # 12 blocks: the merges are exercised
        lazy_fit = model(n_components=3, dtype="float64", **params).fit([lx, ly], y_arg)
        cluster_fit = model(n_components=3, dtype="float64", **params).fit([lx, ly], y_arg, client=client)
        with streaming.use_client(client):  # what --scheduler does
            numpy_on_cluster = model(n_components=3, dtype="float64", **params).fit([x, y], y_arg)
    for fitted in (lazy_fit, cluster_fit, numpy_on_cluster):
        _assert_same(reference, fitted, x, y)
    # transform of views on disk is streamed and equal
    for za, zb in zip(reference.transform([x, y]), reference.transform([lx, ly])):
        np.testing.assert_allclose(za, zb, rtol=0, atol=1e-9 * np.abs(za).max())


def test_dask_array_views_and_float32(on_disk):
    da = pytest.importorskip("dask.array")
    x, y, lab, lx, ly = on_disk
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    ref = ClusterCCA(n_components=3).fit([x32, y32], lab)
    got = ClusterCCA(n_components=3).fit([da.from_array(x32, chunks=(250, -1)), da.from_array(y32, chunks=(250, -1))], lab)
    np.testing.assert_allclose(got.canonical_correlations_, ref.canonical_correlations_, atol=1e-5)


def test_weighted_statistics_equal_per_class_statistics():
    """The paper variant's one weighted syrk per view gives the per-class Grams' weighted sum."""
    x, y, lab = _data(n=500, seed=3)
    per_class = ClusterStatistics(np.float64)
    per_class.update([x, y], [lab, lab], True, 64)
    from crossmodal_core.models.linear.cluster import fit_statistics

    weighted = fit_statistics([x, y], [lab, lab], True, np.dtype(np.float64), "counts", False, block_rows=64)
    assert weighted.pair_cross is None  # the paper variant never uses it: not computed
    for got, want in zip(weighted.paper_covariances()[:3], per_class.paper_covariances()[:3]):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10 * np.abs(want).max())
    ones = fit_statistics([x, y], [lab, lab], True, np.dtype(np.float64), "ones", True, block_rows=64)
    for got, want in zip(ones.reference_covariances(0.4)[:3], per_class.reference_covariances(0.4)[:3]):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10 * np.abs(want).max())
    with pytest.raises(ValueError, match="weighted for other class counts"):
        ones.paper_covariances()


def test_partial_fit_solves_once_on_use(monkeypatch):
    x, y, lab = _data(n=600, seed=4)
    model = ClusterCCA(n_components=3, dtype="float64")
    calls = []
    original = ClusterCCA._solve
    monkeypatch.setattr(ClusterCCA, "_solve", lambda self: (calls.append(1), original(self))[1])
    for part in np.array_split(np.arange(600), 4):
        model.partial_fit([x[part], y[part]], lab[part])
    assert calls == []  # no solve per call
    model.transform([x, y])
    model.transform([x, y])
    assert calls == [1]
    _assert_same(ClusterCCA(n_components=3, dtype="float64").fit([x, y], lab), model, x, y, tol=1e-9)
    fitted = ClusterCCA(n_components=3).fit([x, y], lab)
    with pytest.raises(ValueError, match="use partial_fit from the start"):
        fitted.partial_fit([x, y], lab)


def test_stream_view_checks(on_disk):
    _, _, lab, lx, ly = on_disk
    with pytest.raises(ValueError, match="rows"):
        CCA().fit([lx, ly[:100]])
    with pytest.raises(ValueError, match="a list of arrays"):
        CCA().fit(np.zeros((4, 4)))


def _worker_settings():
    import os

    import dask
    import threadpoolctl

    return {"malloc_trim": os.environ.get("MALLOC_TRIM_THRESHOLD_"),
            "profile": dask.config.get("distributed.worker.profile.enabled"),
            "blas_threads": sorted({p["num_threads"] for p in threadpoolctl.threadpool_info()})}


@pytest.mark.slow  # a worker process started and restarted: 40-50 s on the loaded 2-core box
def test_local_cluster_workers_run_without_malloc_trim_and_profiler_and_one_blas_thread(on_disk):
    """The library's LocalCluster (the CLI's ``--scheduler local``, the benchmark): a worker task
    sees no MALLOC_TRIM_THRESHOLD_ (it turns off glibc's dynamic mmap threshold: twice the CPU
    per block, measured), no statistical profiler, and still one BLAS thread; and fits equal."""
    distributed = pytest.importorskip("distributed")
    x, y, lab, lx, ly = on_disk
    cluster = streaming.local_cluster(1)
    try:
        with distributed.Client(cluster) as c:
            c.wait_for_workers(1, timeout=120)
            got = c.submit(_worker_settings, pure=False).result()
            assert got == {"malloc_trim": None, "profile": False, "blas_threads": [1]}
            # the nanny keeps the settings for a restarted worker
            c.restart()
            c.wait_for_workers(1, timeout=120)
            assert c.submit(_worker_settings, pure=False).result() == got
            model = ClusterCCA().fit([lx, ly], lab, client=c)
    finally:
        cluster.close()
    _assert_same(ClusterCCA().fit([x, y], lab), model, x, y)


def test_connect_local_closes_the_cluster_when_the_client_fails(monkeypatch):
    """connect("local"): a Client that cannot be made must not leave the LocalCluster's worker
    processes running (nobody else holds the cluster)."""
    import distributed

    closed = []

    class FakeCluster:
        def close(self):
            closed.append(True)

    def failing_client(*args, **kwargs):
        raise OSError("scheduler refused")

    monkeypatch.setattr(streaming, "local_cluster", lambda *a, **k: FakeCluster())
    monkeypatch.setattr(distributed, "Client", failing_client)
    with pytest.raises(ValueError, match="cannot reach the Dask scheduler at 'local'"):
        streaming.connect("local")
    assert closed == [True]
