"""k-means benchmarks: one Lloyd iteration (gradkit vs scikit-learn, scikit-learn-intelex and
faiss, 1 and 2 threads), whole fits to convergence (algorithm="auto" against the peers' fits from
the same initial centres), k-means++ seeding, a whole tiny fit, and the peak extra memory of a
10M x 16 fit. Thread limits (threadpoolctl, daal4py.daalinit, faiss.omp_set_num_threads) are set
once outside the timed call.

Every timed call is checked against a peer. Peers use the OpenBLAS they were installed with;
run the file a second time with OPENBLAS_CORETYPE=SkylakeX (and OPENBLAS_L2_SIZE unset) to see
them with the right kernels: the variant is recorded in extra_info["impl"].

    OMP_NUM_THREADS=2 PYTHONPATH=src python -m pytest bench/test_bench_kmeans.py \
        --benchmark-only --benchmark-json=bench/results/kmeans.json
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import gradkit as gk
from gradkit import backends
from gradkit.cluster import KMeans, kmeans_plusplus

sklearn = pytest.importorskip("sklearn")
from sklearn.cluster import KMeans as SkKMeans  # noqa: E402
from sklearn.cluster import kmeans_plusplus as sk_kmeans_plusplus  # noqa: E402
from sklearn.datasets import make_blobs  # noqa: E402

FASHION = Path("/usr/share/datasets/fashion-mnist")
CORETYPE = os.environ.get("OPENBLAS_CORETYPE")
PEER_SUFFIX = f"[OPENBLAS_CORETYPE={CORETYPE}]" if CORETYPE else "[as installed]"


def _fashion_or_random():
    if FASHION.is_dir():
        return gk.datasets.load_mnist(FASHION, kind="train")[0], "fashion-mnist"
    return np.random.default_rng(0).random((60_000, 784), dtype=np.float32), "random"


_DATA = {}


def _dataset(size):
    if size not in _DATA:
        if size == "100k x 50":
            X, _ = make_blobs(n_samples=100_000, n_features=50, centers=100, cluster_std=5.0,
                              random_state=0)
            _DATA[size] = (np.ascontiguousarray(X, dtype=np.float32), "blobs")
        else:
            _DATA[size] = _fashion_or_random()
    return _DATA[size]


SIZES = [("100k x 50", 100), ("60k x 784", 10), ("60k x 784", 256)]
IMPLS = ["gradkit", "sklearn", "sklearnex", "faiss"]


def _init(X, k):
    return X[np.random.default_rng(1).choice(X.shape[0], k, replace=False)].copy()


def _one_iteration(impl, X, centers, threads):
    """A callable doing one Lloyd iteration from `centers`, a check of its result, and the
    context (thread limits) to enter once around the timed calls."""
    n, d = X.shape
    k = centers.shape[0]
    ref_labels = np.full(n, -1, np.int32)
    ref_centers, _, _, ref_inertia = backends.load("cpp").kmeans_lloyd_step(
        X, None, centers, ref_labels, threads)
    context = contextlib.nullcontext()
    if impl == "gradkit":
        ops = backends.load("cpp")
        labels = np.full(n, -1, np.int32)

        def run():
            return ops.kmeans_lloyd_step(X, None, centers, labels, threads)

        def check(out):
            np.testing.assert_array_equal(labels, ref_labels)
            assert out[1] == 0  # from the second call on, the same labels
            np.testing.assert_allclose(out[0], ref_centers)
    elif impl == "sklearn":
        from sklearn.cluster._k_means_lloyd import lloyd_iter_chunked_dense
        from threadpoolctl import threadpool_limits

        w = np.ones(n, dtype=X.dtype)
        new = np.empty_like(centers)
        weight = np.zeros(k, dtype=X.dtype)
        labels = np.full(n, -1, np.int32)
        shift = np.zeros(k, dtype=X.dtype)

        context = threadpool_limits(limits=1, user_api="blas")  # as KMeans.fit does

        def run():
            lloyd_iter_chunked_dense(X, w, centers, new, weight, labels, shift, threads)
            return new

        def check(out):
            assert np.mean(labels == ref_labels) > 0.999  # near-ties may round either way
            np.testing.assert_allclose(out, ref_centers, rtol=1e-3, atol=1e-3)
    elif impl == "sklearnex":
        # oneDAL's Lloyd through its scikit-learn front end: max_iter=1 is one iteration plus
        # the estimator's validation (a few % at these sizes).
        daal4py = pytest.importorskip("daal4py")
        from sklearnex.cluster import KMeans as ExKMeans
        daal4py.daalinit(threads)

        def run():
            return ExKMeans(k, init=centers, n_init=1, max_iter=1, tol=0.0,
                            algorithm="lloyd").fit(X)

        def check(km):
            np.testing.assert_allclose(km.cluster_centers_, ref_centers, rtol=1e-3, atol=1e-3)
    else:
        faiss = pytest.importorskip("faiss")
        faiss.omp_set_num_threads(threads)

        def run():
            km = faiss.Kmeans(d, k, niter=1, nredo=1, seed=1, max_points_per_centroid=n,
                              verbose=False)
            km.train(X, init_centroids=centers)
            return km

        def check(km):
            # faiss's objective of iteration 0 is the inertia of the assignment to `centers`.
            np.testing.assert_allclose(km.obj[0], ref_inertia, rtol=1e-3)
            np.testing.assert_allclose(km.centroids, ref_centers, rtol=1e-3, atol=1e-3)
    return run, check, context


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("size, k", SIZES, ids=[f"{s}, k={k}" for s, k in SIZES])
def test_lloyd_iteration(benchmark, size, k, impl, threads):
    X, source = _dataset(size)
    centers = _init(X, k)
    run, check, context = _one_iteration(impl, X, centers, threads)
    gk.set_num_threads(threads)
    # pytest-benchmark files the result under the group set before the timed call.
    benchmark.group = f"kmeans lloyd iteration {size} k={k} float32 ({source}), {threads} thread(s)"
    benchmark.extra_info["impl"] = impl if impl == "gradkit" else impl + PEER_SUFFIX
    benchmark.extra_info["threads"] = threads
    with context:
        run()  # labels settle on the first call; also when --benchmark-disable runs it once
        out = benchmark.pedantic(run, rounds=7, iterations=1, warmup_rounds=1)
    check(out)


# ---- whole fits to convergence -----------------------------------------------------------------

FITS = [("fashion-mnist", 256), ("1M x 32 blobs", 100)]


def _fit_data(name):
    if name not in _DATA:
        if name == "1M x 32 blobs":
            X, _ = make_blobs(n_samples=1_000_000, n_features=32, centers=100, cluster_std=1.0,
                              random_state=0)
            _DATA[name] = (np.ascontiguousarray(X, dtype=np.float32), "blobs")
        else:
            _DATA[name] = _fashion_or_random()
    return _DATA[name][0]


def _whole_fit(impl, X, init, threads, ref):
    """A callable fitting to tol=1e-4 from `init` (n_init=1), its thread context, a check."""
    k = init.shape[0]
    context = contextlib.nullcontext()
    if impl == "gradkit":
        def run():
            return KMeans(k, init=init, n_init=1, tol=1e-4, algorithm="auto",
                          n_threads=threads).fit(X)
    elif impl == "sklearn":
        from threadpoolctl import threadpool_limits
        context = threadpool_limits(limits=threads)

        def run():
            return SkKMeans(k, init=init, n_init=1, tol=1e-4, algorithm="lloyd").fit(X)
    elif impl == "sklearnex":
        daal4py = pytest.importorskip("daal4py")
        from sklearnex.cluster import KMeans as ExKMeans
        daal4py.daalinit(threads)

        def run():
            return ExKMeans(k, init=init, n_init=1, tol=1e-4, algorithm="lloyd").fit(X)
    else:  # faiss has no tolerance: it runs as many iterations as our fit needed
        faiss = pytest.importorskip("faiss")
        faiss.omp_set_num_threads(threads)

        def run():
            km = faiss.Kmeans(X.shape[1], k, niter=ref.n_iter_, nredo=1, seed=1,
                              max_points_per_centroid=X.shape[0], verbose=False)
            km.train(X, init_centroids=init)
            return km

    def check(model):
        if impl == "gradkit":  # the bound-based fit gives our Lloyd's labels exactly
            np.testing.assert_array_equal(model.labels_, ref.labels_)
            assert model.n_iter_ == ref.n_iter_
        elif impl == "faiss":
            assert np.isfinite(model.obj[-1])
        else:
            assert model.inertia_ <= 1.02 * ref.inertia_
    return run, check, context


_LLOYD_REF = {}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name, k", FITS, ids=[f"{n}, k={k}" for n, k in FITS])
def test_whole_fit(benchmark, name, k, impl, threads):
    X = _fit_data(name)
    init = _init(X, k)
    if (name, threads) not in _LLOYD_REF:
        _LLOYD_REF[name, threads] = KMeans(k, init=init, n_init=1, tol=1e-4, algorithm="lloyd",
                                           n_threads=threads).fit(X)
    ref = _LLOYD_REF[name, threads]
    run, check, context = _whole_fit(impl, X, init, threads, ref)
    benchmark.group = f"kmeans whole fit {name} k={k} tol=1e-4 float32, {threads} thread(s)"
    benchmark.extra_info["impl"] = impl if impl == "gradkit" else impl + PEER_SUFFIX
    benchmark.extra_info["threads"] = threads
    with context:
        model = benchmark.pedantic(run, rounds=1, iterations=1)
    check(model)
    if impl == "gradkit":
        algorithm = model.algorithm if model.algorithm != "auto" else "auto"
        benchmark.extra_info["n_iter"] = model.n_iter_
        lloyd_distances = (model.n_iter_ + 1) * X.shape[0] * k
        benchmark.extra_info["distances_skipped"] = 1 - model._n_distances / lloyd_distances
        benchmark.extra_info["algorithm"] = algorithm


@pytest.mark.parametrize("impl", ["gradkit", "sklearn"])
def test_kmeans_plusplus(benchmark, impl):
    X, _ = _dataset("100k x 50")
    fn = kmeans_plusplus if impl == "gradkit" else sk_kmeans_plusplus
    benchmark.group = "kmeans++ seeding 100k x 50 k=100 float32"
    benchmark.extra_info["impl"] = impl if impl == "gradkit" else impl + PEER_SUFFIX
    centers, idx = benchmark.pedantic(lambda: fn(X, 100, random_state=0), rounds=3,
                                      iterations=1, warmup_rounds=1)
    # Seeding quality: inertia of the seeds within 10% of scikit-learn's (same algorithm).
    theirs, _ = sk_kmeans_plusplus(X, 100, random_state=0)
    inertia = KMeans(100, init=centers, max_iter=1).fit(X).inertia_
    ref = KMeans(100, init=theirs, max_iter=1).fit(X).inertia_
    assert centers.dtype == np.float32 and inertia <= 1.1 * ref


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("impl", ["gradkit", "sklearn"])
def test_tiny_fit(benchmark, impl, dtype):
    X, _ = make_blobs(n_samples=1000, n_features=2, centers=8, random_state=0)
    X = X.astype(dtype)
    cls = KMeans if impl == "gradkit" else SkKMeans
    benchmark.group = f"kmeans whole fit 1000 x 2 k=8 {np.dtype(dtype).name}"
    benchmark.extra_info["impl"] = impl if impl == "gradkit" else impl + PEER_SUFFIX
    model = benchmark(lambda: cls(8, random_state=0).fit(X))
    ref = SkKMeans(8, random_state=0).fit(X)
    np.testing.assert_allclose(model.inertia_, ref.inertia_, rtol=0.05)


_MEMORY_SCRIPT = textwrap.dedent("""
    import resource, sys
    import numpy as np
    n, d = 10_000_000, 16
    X = np.empty((n, d), dtype=np.float32)
    rng = np.random.default_rng(0)
    for s in range(0, n, 1_000_000):  # fill by chunks: the peak stays at the data's size
        X[s:s + 1_000_000] = rng.standard_normal((1_000_000, d), dtype=np.float32)
        X[s:s + 1_000_000, 0] += 8 * (np.arange(s, s + 1_000_000) % 8)
    from gradkit.cluster import KMeans
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    km = KMeans(8, random_state=0, max_iter=int(sys.argv[1])).fit(X)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((after - before) * 1024, X.nbytes, km.n_iter_)
""")


def test_memory_fit_10M_x_16(benchmark):
    """Peak extra memory of a fit (after the data exists) stays under 10% of the data."""
    def run():
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        out = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, "10"], check=True,
                             capture_output=True, text=True, env=env).stdout.split()
        return int(out[0]), int(out[1]), int(out[2])

    benchmark.group = "kmeans fit 10M x 16 float32 k=8: peak extra memory"
    benchmark.extra_info["impl"] = "gradkit"
    extra, data, n_iter = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info["extra_bytes"] = extra
    benchmark.extra_info["extra_fraction_of_data"] = extra / data
    # The bound-based algorithms' extra state on top (kernel's KMeansAlgorithm): Hamerly keeps
    # 3 float64 n-vectors, Elkan n x k float32 lower bounds plus 2 float64 n-vectors.
    n, k = 10_000_000, 8
    benchmark.extra_info["hamerly_extra_bytes"] = 3 * 8 * n
    benchmark.extra_info["elkan_extra_bytes"] = 4 * n * k + 2 * 8 * n
    assert n_iter >= 1
    assert extra < 0.10 * data, f"peak extra memory {extra} B is over 10% of the data ({data} B)"
    assert extra < 0.10 * data, f"fit used {extra / 2**20:.0f} MiB extra for {data / 2**20:.0f} MiB"
