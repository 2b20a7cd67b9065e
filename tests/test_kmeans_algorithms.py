"""The bound-based k-means algorithms against Lloyd: from the same initial centres, "hamerly"
and "elkan" must give Lloyd's labels, centres (bitwise), n_iter_ and inertia_, on data where
the bounds prune a lot (blobs) and little (uniform noise), with duplicates, empty clusters,
sample weights, float32 and float64, on 1 and 2 threads, and on each distance tile."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import gradkit as gk
from gradkit import _core, backends
from gradkit.cluster import KMeans

sklearn = pytest.importorskip("sklearn")
from sklearn.datasets import make_blobs  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

BOUNDED = ["hamerly", "elkan"]
FASHION = Path("/usr/share/datasets/fashion-mnist")


def _blobs(n, d, centers, dtype, seed, std=1.5):
    X, _ = make_blobs(n_samples=n, n_features=d, centers=centers, cluster_std=std,
                      random_state=seed)
    return np.ascontiguousarray(X, dtype=dtype)


def _fit(X, init, algorithm, sample_weight=None, **kw):
    km = KMeans(init.shape[0], init=init, algorithm=algorithm, max_iter=kw.pop("max_iter", 300),
                tol=kw.pop("tol", 0.0), **kw)
    return km.fit(X, sample_weight=sample_weight)


def _assert_same(a, b):
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.cluster_centers_.tobytes() == b.cluster_centers_.tobytes()
    assert a.n_iter_ == b.n_iter_
    assert a.inertia_ == b.inertia_


def _check(X, k, algorithm, seed=0, sample_weight=None, **kw):
    init = X[np.random.default_rng(seed).choice(X.shape[0], k, replace=False)].copy()
    lloyd = _fit(X, init, "lloyd", sample_weight, **kw)
    other = _fit(X, init, algorithm, sample_weight, **kw)
    _assert_same(other, lloyd)
    return lloyd, other


# n large enough that the chunked pass (not the tiny-input loop) runs.
@pytest.mark.parametrize("algorithm", BOUNDED)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", ["blobs", "uniform", "duplicates", "weights"])
def test_bounded_equals_lloyd(algorithm, dtype, case):
    rng = np.random.default_rng(3)
    w = None
    if case == "blobs":
        X, k = _blobs(6000, 12, 20, dtype, seed=1), 40
    elif case == "uniform":  # no structure: bounds settle few rows, many near-ties
        X, k = rng.uniform(size=(6000, 6)).astype(dtype), 50
    elif case == "duplicates":  # exact ties between centres (duplicate initial centres)
        base = _blobs(500, 5, 8, dtype, seed=2)
        X, k = np.ascontiguousarray(np.repeat(base, 12, axis=0)), 30
    else:
        X, k = _blobs(6000, 9, 15, dtype, seed=4), 33
        w = rng.uniform(0.1, 4.0, X.shape[0]).astype(dtype)
    lloyd, other = _check(X, k, algorithm, sample_weight=w)
    assert lloyd.n_iter_ > 2  # the bounds were used, not only the first pass
    # The bounds skipped distances (uniform noise too, if less).
    assert other._n_distances < lloyd._n_distances


@pytest.mark.parametrize("algorithm", BOUNDED)
def test_bounded_with_tolerance_and_final_assignment(algorithm):
    # tol > 0 stops on the centre shift: the final assignment pass runs through the bounds.
    X = _blobs(9000, 10, 30, np.float32, seed=5, std=4.0)
    _check(X, 60, algorithm, tol=1e-3)
    _check(X, 60, algorithm, max_iter=3)


@pytest.mark.parametrize("algorithm", BOUNDED)
def test_bounded_empty_cluster_relocation(algorithm):
    X = _blobs(6000, 4, 5, np.float64, seed=6)
    init = X[:12].copy()
    init[3] = 1e4  # far from every point: empty on the first pass, relocated
    init[7] = -1e4
    lloyd = _fit(X, init, "lloyd")
    _assert_same(_fit(X, init, algorithm), lloyd)
    assert np.abs(lloyd.cluster_centers_).max() < 1e3


@pytest.mark.parametrize("algorithm", BOUNDED)
def test_bounded_bitwise_across_threads(algorithm):
    # 20,000 rows make 5 fixed chunks and the work passes the one-thread threshold, so
    # n_threads=2 runs the pass on two threads.
    X = _blobs(20_000, 8, 25, np.float32, seed=7)
    init = X[:40].copy()
    a = _fit(X, init, algorithm, n_threads=1)
    b = _fit(X, init, algorithm, n_threads=2)
    _assert_same(a, b)
    _assert_same(a, _fit(X, init, "lloyd", n_threads=2))


ISAS = ["portable", "avx2", "avx512"]


@pytest.mark.parametrize("algorithm", BOUNDED)
@pytest.mark.parametrize("isa", ISAS)
def test_bounded_on_each_tile(algorithm, isa):
    if ISAS.index(isa) > ISAS.index(_core.detected_isa()):
        pytest.skip(f"this CPU has no {isa}")
    X = _blobs(8000, 70, 12, np.float32, seed=8)
    old = _core.active_isa()
    _core.force_isa(isa)
    try:
        assert _core.active_isa() == isa
        _check(X, 10, algorithm)  # the small-k tile on AVX-512
        _check(X, 48, algorithm)
    finally:
        _core.force_isa(old)


def test_avx2_tile_matches_portable_bitwise():
    if ISAS.index(_core.detected_isa()) < 1:
        pytest.skip("this CPU has no avx2")
    X = _blobs(5000, 37, 30, np.float32, seed=11)
    init = X[:100].copy()
    old = _core.active_isa()
    try:
        fits = {}
        for isa in ["portable", "avx2"]:
            _core.force_isa(isa)
            fits[isa] = _fit(X, init, "lloyd", max_iter=5)
    finally:
        _core.force_isa(old)
    _assert_same(fits["avx2"], fits["portable"])


def test_fashion_mnist_subsample():
    if not FASHION.is_dir():
        pytest.skip("Fashion-MNIST is not installed")
    X = gk.datasets.load_mnist(FASHION, kind="train")[0][:6000]
    for algorithm in BOUNDED:
        _check(np.ascontiguousarray(X), 32, algorithm, tol=1e-4)


def test_auto_gives_lloyd_results():
    X = _blobs(10_000, 8, 40, np.float32, seed=9)
    init = X[:64].copy()
    _assert_same(_fit(X, init, "auto"), _fit(X, init, "lloyd"))


@pytest.mark.parametrize("algorithm", BOUNDED)
def test_numpy_backend_names_missing_algorithm(algorithm):
    X = _blobs(200, 3, 4, np.float64, seed=10)
    with gk.use_backend("numpy"):
        with pytest.raises(ValueError, match=f"'numpy'.*{algorithm}"):
            KMeans(4, algorithm=algorithm, random_state=0).fit(X)
        KMeans(4, algorithm="auto", random_state=0).fit(X)  # auto falls back to lloyd


def test_algorithm_is_validated():
    with pytest.raises(ValueError, match="algorithm"):
        KMeans(3, algorithm="yinyang").fit(np.zeros((10, 2)))


def test_kernel_rejects_unknown_algorithm_code():
    X = np.zeros((10, 2))
    with pytest.raises(ValueError, match="algorithm"):
        _core.kmeans_fit(X, None, X[:2].copy(), np.empty(10, np.int32), 5, 0.0, 7, 1)


_SKLEARN_XFAIL = {
    "check_sample_weight_equivalence_on_dense_data":
        "sample_weight is not equivalent to removing/repeating samples.",
}


@parametrize_with_checks([KMeans(n_clusters=3, random_state=0, algorithm=a)
                          for a in ["lloyd", "elkan", "hamerly", "auto"]],
                         expected_failed_checks=lambda est: _SKLEARN_XFAIL)
def test_sklearn_estimator_checks_every_algorithm(estimator, check):
    check(estimator)
