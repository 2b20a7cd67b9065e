"""k-means empty-cluster relocation: the farthest points fill empty clusters, but never a
cluster's last point nor a point of weight 0, and a cluster nothing can fill keeps its centre.
So with fewer distinct points than clusters (duplicates, all points equal, k == n) the fit
converges with centres on the data (some may coincide) and the true inertia, on every backend
as in the NumPy specification, and with the same bits at 1 and 2 threads in C++."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import gradkit as gk
from gradkit import backends
from gradkit.cluster import KMeans

from conftest import TOL

BACKENDS = ["numpy", "cpp", "numba", "cython"]
MAX_ITER = 50


def _ops(name):
    try:
        return backends.load(name)
    except ImportError:
        pytest.skip(f"backend {name!r} does not import here")


def _step(name, X, w, centers):
    labels = np.full(X.shape[0], -1, np.int32)
    new = _ops(name).kmeans_lloyd_step(X, w, centers, labels, 1)[0]
    return new, labels


# ---- one step: which point fills an empty cluster

@pytest.mark.parametrize("name", BACKENDS)
def test_an_empty_cluster_does_not_take_a_clusters_last_point(name, dtype):
    # Point 2 is alone in cluster 1 and is the farthest from its centre: scikit-learn's rule
    # would move it and empty cluster 1 (then a zero centre). Here point 0, the farthest of
    # those that leave their cluster non-empty, fills the empty cluster 2.
    X = np.array([[0, 0], [0, 1], [10, 10]], dtype)
    centers = np.array([[0, 0.5], [10, 12], [100, 100]], dtype)
    new, labels = _step(name, X, None, centers)
    np.testing.assert_array_equal(labels, [0, 0, 1])
    np.testing.assert_array_equal(new[1], X[2])
    np.testing.assert_array_equal(new[2], X[0])
    np.testing.assert_array_equal(new[0], X[1])  # cluster 0 gave point 0 away


@pytest.mark.parametrize("name", BACKENDS)
def test_a_point_of_weight_zero_is_never_taken_and_an_unfillable_cluster_joins_the_heaviest(
        name, dtype):
    # Points 0 and 1 are their clusters' only points of positive weight; point 2 (weight 0,
    # farthest of all) cannot fill a cluster. Cluster 2 stays empty and gets the centre of the
    # heaviest cluster, 1 (scikit-learn's place for it).
    X = np.array([[0, 0], [5, 5], [9, 9]], dtype)
    w = np.array([1, 2, 0], dtype)
    centers = np.array([[0, 0], [5, 5], [100, 100]], dtype)
    new, labels = _step(name, X, w, centers)
    np.testing.assert_array_equal(labels, [0, 1, 1])
    np.testing.assert_array_equal(new, [[0, 0], [5, 5], [5, 5]])


@pytest.mark.parametrize("name", BACKENDS)
def test_a_point_on_its_centre_is_not_taken(name, dtype):
    # Every point sits on its centre (cluster 0 holds two copies of X[0]): moving one would
    # only duplicate a centre. Cluster 2 gets the heaviest cluster's centre instead, bit for
    # bit, so the two tie exactly afterwards and the fit stops.
    X = np.array([[1, 2], [1, 2], [7, -3]], dtype)
    centers = np.array([[1, 2], [7, -3], [-50, 60]], dtype)
    new, labels = _step(name, X, None, centers)
    np.testing.assert_array_equal(labels, [0, 0, 1])
    np.testing.assert_array_equal(new, [[1, 2], [7, -3], [1, 2]])


@pytest.mark.parametrize("name", BACKENDS)
def test_relocation_matches_the_specification_on_blobs(name, dtype):
    # Several empty clusters at once, weights with zeros, singletons far from their centre.
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.normal(0, 1, (300, 3)), rng.normal(20, 1, (1, 3)),
                        rng.normal(-20, 1, (1, 3))]).astype(dtype)
    w = rng.choice([0.0, 0.5, 1.0, 2.0], X.shape[0]).astype(dtype)
    w[-2:] = 1
    centers = np.array([[0, 0, 0], [25, 25, 25], [-25, -25, -25], [1e4] * 3, [-1e4] * 3,
                        [1e4, -1e4, 0]], dtype)
    want, want_labels = _step("numpy", X, w, centers)
    got, labels = _step(name, X, w, centers)
    np.testing.assert_array_equal(labels, want_labels)
    np.testing.assert_allclose(got, want, **TOL[dtype])
    # The singletons kept their clusters; the three empty ones took points of cluster 0.
    np.testing.assert_array_equal(got[1], X[-2])
    np.testing.assert_array_equal(got[2], X[-1])
    for j in (3, 4, 5):
        assert (X == got[j]).all(axis=1).any()


# ---- whole fits with fewer distinct points than clusters

def _cases(dtype):
    a, b, c = [1.5, -2.0, 3.0], [-4.0, 0.5, 2.0], [7.0, 7.0, -1.0]  # no zero row
    return {
        "fewer_distinct": (np.array([a] * 5 + [b] * 3 + [c] * 2, dtype), None, 6),
        "all_identical": (np.array([a] * 7, dtype), None, 4),
        "k_equals_n": (np.array([a, b, a, c, b], dtype), None, 5),
        "weighted": (np.array([a, a, b, b, b, c, c], dtype),
                     np.array([1, 2.5, 0.5, 1, 3, 2, 0], dtype), 5),
    }


CASES = ["fewer_distinct", "all_identical", "k_equals_n", "weighted"]


def _fit(X, w, k, name, **kw):
    with gk.use_backend(name), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the ConvergenceWarning about distinct clusters
        return KMeans(k, n_init=1, max_iter=MAX_ITER, **kw).fit(X, sample_weight=w)


def _near(a, b, dtype):
    """near[i, j]: row i of a equals row j of b within the backends' tolerance."""
    return np.isclose(a[:, None, :], b[None], **TOL[dtype]).all(axis=2)


def _assert_on_the_data(km, X, w):
    """Every centre is a data point or the weighted mean of its points (within rounding: a
    mean of equal points with weight 2.5 may be an ulp off); none is a zero vector (no row of
    X is zero); the fit converged; the inertia is the true weighted sum."""
    dtype = X.dtype.type
    w = np.ones(X.shape[0]) if w is None else w.astype(np.float64)
    centers = km.cluster_centers_
    on_a_point = _near(centers, X, dtype).any(axis=1)
    for j, c in enumerate(centers):
        mine = (km.labels_ == j) & (w > 0)
        if not on_a_point[j]:
            assert mine.any(), (j, c)
            mean = (w[mine] @ X[mine].astype(np.float64)) / w[mine].sum()
            np.testing.assert_allclose(c, mean, **TOL[dtype])
    assert np.abs(centers).max(axis=1).min() > 0
    assert km.n_iter_ < MAX_ITER
    diff = X.astype(np.float64) - centers[km.labels_].astype(np.float64)
    true = float(w @ np.einsum("ij,ij->i", diff, diff))
    np.testing.assert_allclose(km.inertia_, true, rtol=1e-6, atol=1e-9)


def _assert_same_up_to_coinciding_centres(a, b, X, w):
    """Clusters whose centres coincide (up to rounding) are interchangeable, and which one a
    point joins is decided by the rounding of each backend's distances: compare each point's
    centre, the centres as a set, and the inertia (zero here, up to the rounding of centres
    that are means of equal points: eps times the weighted sum of ||x||^2)."""
    dtype = X.dtype.type
    np.testing.assert_allclose(a.cluster_centers_[a.labels_], b.cluster_centers_[b.labels_],
                               **TOL[dtype])
    assert _near(a.cluster_centers_, b.cluster_centers_, dtype).any(axis=1).all()
    assert _near(b.cluster_centers_, a.cluster_centers_, dtype).any(axis=1).all()
    scale = float(w.astype(np.float64) @ np.einsum("ij,ij->i", X, X, dtype=np.float64))
    np.testing.assert_allclose(a.inertia_, b.inertia_, rtol=1e-6,
                               atol=np.finfo(dtype).eps * scale)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("init", ["k-means++", "duplicates"])
@pytest.mark.parametrize("name", BACKENDS)
def test_fewer_distinct_points_than_clusters_converge_on_the_data(name, init, case, dtype):
    X, w, k = _cases(dtype)[case]
    if init == "duplicates":  # every initial centre on the first point: k - 1 start empty
        init = np.repeat(X[:1], k, axis=0)
    km = _fit(X, w, k, name, init=init, random_state=0)
    _assert_on_the_data(km, X, w)
    ref = _fit(X, w, k, "numpy", init=init, random_state=0)
    np.testing.assert_array_equal(km.labels_, ref.labels_)
    np.testing.assert_array_equal(km.cluster_centers_, ref.cluster_centers_)
    assert km.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(km.inertia_, ref.inertia_, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("algorithm", ["lloyd", "elkan", "hamerly"])
@pytest.mark.parametrize("n", [1_000, 20_000])  # one chunk (the small loop); chunks on threads
def test_cpp_relocation_with_duplicates_is_bitwise_across_threads(algorithm, n, dtype):
    # 20,000 x 8 rows and 40 clusters pass the one-thread work threshold: 2 threads run.
    _ops("cpp")
    rng = np.random.default_rng(n)
    base = rng.normal(0, 3, (30, 8)).astype(dtype)
    X = base[rng.integers(0, 30, n)]
    w = rng.choice([0.0, 1.0, 2.5], n).astype(dtype)
    init = np.concatenate([base[:25], np.repeat(base[:1], 15, axis=0)])  # 40 > 30 distinct
    fits = [_fit(X, w, 40, "cpp", init=init, algorithm=algorithm, n_threads=t) for t in (1, 2)]
    for km in fits:
        _assert_on_the_data(km, X, w)
    np.testing.assert_array_equal(fits[0].labels_, fits[1].labels_)
    np.testing.assert_array_equal(fits[0].cluster_centers_, fits[1].cluster_centers_)
    assert fits[0].inertia_ == fits[1].inertia_ and fits[0].n_iter_ == fits[1].n_iter_
    _assert_same_up_to_coinciding_centres(fits[0], _fit(X, w, 40, "numpy", init=init), X, w)


@pytest.mark.parametrize("case", CASES)
def test_fewer_distinct_points_as_scikit_learn(case, dtype):
    """scikit-learn leaves an empty cluster at its biggest cluster's centre when every point
    sits on its centre, where gradkit takes a duplicate point: both cover every distinct
    point, put every centre on the data and stop early."""
    sk_kmeans = pytest.importorskip("sklearn.cluster").KMeans
    X, w, k = _cases(dtype)[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = sk_kmeans(k, n_init=1, max_iter=MAX_ITER, random_state=0).fit(X, sample_weight=w)
    ours = _fit(X, w, k, "numpy", random_state=0)  # the other backends agree (above)
    positive = np.unique(X if w is None else X[w > 0], axis=0)
    # scikit-learn's float32 means of equal points may round: centres match within TOL.
    for km in (sk, ours):
        assert km.n_iter_ < MAX_ITER
        assert _near(km.cluster_centers_, X, dtype).any(axis=1).all()  # centres on points
        assert _near(positive, km.cluster_centers_, dtype).any(axis=1).all()  # all covered
    assert (ours.cluster_centers_[:, None] == X[None]).all(axis=2).any(axis=1).all()
    # Not compared: scikit-learn's inertia_. With weights it can return labels of the
    # iteration before its last relocation, and the inertia of those (131.25 in "weighted").
    assert ours.inertia_ == 0
