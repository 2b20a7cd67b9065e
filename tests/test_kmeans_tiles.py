"""The C++ k-means distance tiles on the shapes that pick each of them: the panel tile (many
centres or short rows) and the small-k tile (k <= 12 float32 / 6 float64 centres with lanes
along d, d >= 64). Each is checked against the NumPy reference, across thread counts and ISAs,
and against scikit-learn from the same initial centres."""
from __future__ import annotations

import numpy as np
import pytest

import gradkit as gk
from gradkit import backends
from gradkit.cluster import KMeans

from conftest import TOL

sklearn = pytest.importorskip("sklearn")
from sklearn.cluster import KMeans as SkKMeans  # noqa: E402
from sklearn.datasets import make_blobs  # noqa: E402


def _blobs(n, d, centers, dtype, seed, std=2.0):
    X, _ = make_blobs(n_samples=n, n_features=d, centers=centers, cluster_std=std,
                      random_state=seed)
    return np.ascontiguousarray(X, dtype=dtype)


def _weights(n, dtype, seed):
    return np.random.default_rng(seed).uniform(0.2, 3.0, n).astype(dtype)


# (n, d, k): k = 1, 6 and 12 (edges of the small-k tile in float64 / float32), row counts that
# leave a partial group of rows, d with and without a partial last chunk of 16 / 8 lanes,
# d = 1024 (rows 4 KiB apart), and k = 13, 16, 17 just past the small-k range.
SHAPES = [(400, 64, 1), (1001, 67, 5), (500, 70, 6), (777, 100, 7), (2500, 784, 10),
          (640, 96, 12), (513, 130, 13), (640, 96, 16), (300, 1024, 9), (900, 80, 17)]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("shape", SHAPES, ids=[f"{n}x{d}-k{k}" for n, d, k in SHAPES])
def test_lloyd_step_matches_reference(shape, weighted, dtype):
    n, d, k = shape
    ops, ref = backends.load("cpp"), backends.load("numpy")
    X = _blobs(n, d, max(k, 2), dtype, seed=n + d + k)
    w = _weights(n, dtype, 1) if weighted else None
    centers = X[np.random.default_rng(2).choice(n, k, replace=False)].copy()
    lab_ref, lab = np.full(n, -1, np.int32), np.full(n, -1, np.int32)
    c_ref, changed_ref, shift_ref, inertia_ref = ref.kmeans_lloyd_step(X, w, centers, lab_ref)
    c, changed, shift, inertia = ops.kmeans_lloyd_step(X, w, centers, lab, 2)
    np.testing.assert_array_equal(lab, lab_ref)
    assert changed == changed_ref == n
    np.testing.assert_allclose(c, c_ref, **TOL[dtype])
    rtol = 1e-4 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(shift, shift_ref, rtol=rtol)
    np.testing.assert_allclose(inertia, inertia_ref, rtol=rtol)
    lab2, inertia2 = ops.kmeans_assign(X, w, c_ref, 1)
    lab2_ref, inertia2_ref = ref.kmeans_assign(X, w, c_ref)
    np.testing.assert_array_equal(lab2, lab2_ref)
    np.testing.assert_allclose(inertia2, inertia2_ref, rtol=rtol)


def test_first_index_wins_a_tie(dtype):
    # Duplicate centres tie exactly for every row: the lower index must win, in every tile.
    for d, k in [(100, 6), (100, 40), (3, 6)]:
        X = _blobs(300, d, 3, dtype, seed=d + k)
        centers = np.repeat(X[:k // 2], 2, axis=0)
        labels, _ = backends.load("cpp").kmeans_assign(X, None, centers, 1)
        assert labels.min() >= 0 and np.all(labels % 2 == 0), (d, k)


@pytest.mark.parametrize("shape", [(20_000, 80, 7), (20_000, 784, 10)])
def test_bitwise_identical_for_1_and_2_threads(shape, dtype):
    n, d, k = shape
    ops = backends.load("cpp")
    X = _blobs(n, d, 9, dtype, seed=11)
    w = _weights(n, dtype, 5)
    centers = X[:k].copy()
    results = []
    for threads in (1, 2):
        gk.set_num_threads(threads)
        lab = np.full(n, -1, np.int32)
        step = ops.kmeans_lloyd_step(X, w, centers, lab, threads)
        full = ops.kmeans_lloyd(X, w, centers, 20, 0.0, threads)
        results.append((lab, step, full))
    gk.set_num_threads(2)
    (l1, s1, f1), (l2, s2, f2) = results
    np.testing.assert_array_equal(l1, l2)
    assert s1[0].tobytes() == s2[0].tobytes() and s1[1:] == s2[1:]
    assert f1[0].tobytes() == f2[0].tobytes() and f1[2:] == f2[2:]
    np.testing.assert_array_equal(f1[1], f2[1])


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("d, k", [(100, 6), (784, 10), (64, 12), (64, 16)])
def test_matches_sklearn_from_same_init(d, k, weighted, dtype):
    X = _blobs(3000, d, k, dtype, seed=3, std=6.0)
    w = _weights(3000, dtype, 9) if weighted else None
    init = X[np.random.default_rng(7).choice(3000, k, replace=False)].copy()
    sk = SkKMeans(k, init=init, n_init=1).fit(X, sample_weight=w)
    ours = KMeans(k, init=init, n_init=1).fit(X, sample_weight=w)
    np.testing.assert_array_equal(ours.labels_, sk.labels_)
    assert ours.n_iter_ == sk.n_iter_
    rtol = 1e-4 if dtype == np.float32 else 1e-6
    np.testing.assert_allclose(ours.inertia_, sk.inertia_, rtol=rtol)
    np.testing.assert_allclose(ours.cluster_centers_, sk.cluster_centers_, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("shape", [(1200, 100, 6), (700, 67, 12)])
def test_every_isa_matches_reference(forced_isa, shape, dtype):
    n, d, k = shape
    ops, ref = backends.load("cpp"), backends.load("numpy")
    X = _blobs(n, d, k, dtype, seed=31)
    w = _weights(n, dtype, 6)
    centers = X[:k].copy()
    lab_ref, lab = np.full(n, -1, np.int32), np.full(n, -1, np.int32)
    c_ref = ref.kmeans_lloyd_step(X, w, centers, lab_ref)[0]
    c = ops.kmeans_lloyd_step(X, w, centers, lab, 1)[0]
    np.testing.assert_array_equal(lab, lab_ref)
    np.testing.assert_allclose(c, c_ref, **TOL[dtype])
