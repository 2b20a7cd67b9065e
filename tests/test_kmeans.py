"""k-means: backends against the NumPy reference, determinism across threads, scikit-learn
semantics from the same initial centres, the estimator API, k-means++ and bad inputs."""
from __future__ import annotations

import numpy as np
import pytest

import gradkit as gk
from gradkit import backends
from gradkit.backends import ops_numpy  # the module: its loop helper is not a registry op
from gradkit.cluster import KMeans, kmeans_plusplus

from conftest import TOL

sklearn = pytest.importorskip("sklearn")
from sklearn.cluster import KMeans as SkKMeans  # noqa: E402
from sklearn.cluster import kmeans_plusplus as sk_kmeans_plusplus  # noqa: E402
from sklearn.datasets import make_blobs  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

# scikit-learn's float32 centre sums are per-thread partials, so its labels at near-ties depend
# on its OpenMP thread count, that is on the machine's cores. The oracle runs with a fixed two
# threads wherever the tests run (gradkit's results do not depend on the count).
SKLEARN_THREADS = 2


@pytest.fixture(autouse=True)
def _sklearn_threads_fixed():
    with threadpool_limits(SKLEARN_THREADS, user_api="openmp"):
        yield

KMEANS_BACKENDS = ["cpp", "numba", "cython", "numpy"]


def _ops(name):
    try:
        return backends.load(name)
    except ImportError:
        pytest.skip(f"backend {name!r} does not import here")


def _blobs(n, d, centers, dtype, seed, std=1.5):
    X, _ = make_blobs(n_samples=n, n_features=d, centers=centers, cluster_std=std,
                      random_state=seed)
    return np.ascontiguousarray(X, dtype=dtype)


def _weights(n, dtype, seed):
    return np.random.default_rng(seed).uniform(0.2, 3.0, n).astype(dtype)


# ---- kernels: every backend against the reference -----------------------------------------


@pytest.mark.parametrize("name", KMEANS_BACKENDS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("shape", [(700, 2, 8), (3000, 50, 37), (513, 17, 33)])
def test_lloyd_step_matches_reference(name, weighted, shape, dtype):
    n, d, k = shape
    ops, ref = _ops(name), backends.load("numpy")
    X = _blobs(n, d, 10, dtype, seed=n + d)
    w = _weights(n, dtype, 1) if weighted else None
    centers = X[np.random.default_rng(2).choice(n, k, replace=False)].copy()
    labels_ref = np.full(n, -1, np.int32)
    labels = labels_ref.copy()
    c_ref, changed_ref, shift_ref, inertia_ref = ref.kmeans_lloyd_step(X, w, centers, labels_ref)
    c, changed, shift, inertia = ops.kmeans_lloyd_step(X, w, centers, labels, 2)
    np.testing.assert_array_equal(labels, labels_ref)
    assert changed == changed_ref == n
    assert c.dtype == dtype and c.shape == (k, d)
    np.testing.assert_allclose(c, c_ref, **TOL[dtype])
    np.testing.assert_allclose(shift, shift_ref, rtol=1e-4 if dtype == np.float32 else 1e-9)
    np.testing.assert_allclose(inertia, inertia_ref, rtol=1e-4 if dtype == np.float32 else 1e-9)
    # A second step from the new centres counts only the labels that moved.
    labels_ref2, labels2 = labels_ref.copy(), labels.copy()
    _, changed_ref2, _, _ = ref.kmeans_lloyd_step(X, w, c_ref, labels_ref2)
    _, changed2, _, _ = ops.kmeans_lloyd_step(X, w, c_ref, labels2, 1)
    np.testing.assert_array_equal(labels2, labels_ref2)
    assert changed2 == changed_ref2 == np.count_nonzero(labels_ref2 != labels_ref)


@pytest.mark.parametrize("name", KMEANS_BACKENDS)
def test_empty_clusters_relocated_to_farthest_points(name, dtype):
    ops, ref = _ops(name), backends.load("numpy")
    X = _blobs(600, 3, 4, dtype, seed=5)
    w = _weights(600, dtype, 3)
    centers = X[:6].copy()
    centers[2] = 1e4   # no point is nearest to these two: both clusters come out empty
    centers[4] = -1e4
    lab_ref, lab = np.full(600, -1, np.int32), np.full(600, -1, np.int32)
    c_ref = ref.kmeans_lloyd_step(X, w, centers, lab_ref)[0]
    c = ops.kmeans_lloyd_step(X, w, centers, lab, 2)[0]
    np.testing.assert_array_equal(lab, lab_ref)
    np.testing.assert_allclose(c, c_ref, **TOL[dtype])
    # The two farthest points (from their own centres) became the new centres, farthest first.
    dist = ((X.astype(np.float64) - centers[lab_ref]) ** 2).sum(1)
    far = np.argsort(-dist, kind="stable")[:2]
    np.testing.assert_array_equal(c[2], X[far[0]])
    np.testing.assert_array_equal(c[4], X[far[1]])


@pytest.mark.parametrize("name", KMEANS_BACKENDS)
def test_assign_and_inertia_match_reference(name, dtype):
    ops, ref = _ops(name), backends.load("numpy")
    X = _blobs(2000, 9, 5, dtype, seed=8)
    w = _weights(2000, dtype, 4)
    centers = X[:12].copy()
    lab_ref, inertia_ref = ref.kmeans_assign(X, w, centers)
    lab, inertia = ops.kmeans_assign(X, w, centers, 2)
    np.testing.assert_array_equal(lab, lab_ref)
    rtol = 1e-4 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(inertia, inertia_ref, rtol=rtol)
    exact = ref.kmeans_inertia(X, w, centers, lab_ref)
    np.testing.assert_allclose(ops.kmeans_inertia(X, w, centers, lab, 2), exact, rtol=1e-12)
    np.testing.assert_allclose(inertia, exact, rtol=rtol)  # expanded form ~ differences


@pytest.mark.parametrize("name", ["cpp", "numba"])
def test_bitwise_identical_for_1_and_2_threads(name, dtype):
    ops = _ops(name)
    X = _blobs(20_000, 13, 9, dtype, seed=11)  # several row chunks
    w = _weights(20_000, dtype, 5)
    centers = X[:40].copy()
    results = []
    for threads in (1, 2):
        gk.set_num_threads(threads)
        lab = np.full(X.shape[0], -1, np.int32)
        step = ops.kmeans_lloyd_step(X, w, centers, lab, threads)
        full = ops.kmeans_lloyd(X, w, centers, 50, 0.0, threads)
        pp = ops.kmeans_plusplus(X, w, 20, 4, np.random.default_rng(0).uniform(size=77), threads)
        results.append((lab, step, full, pp))
    gk.set_num_threads(2)
    (l1, s1, f1, p1), (l2, s2, f2, p2) = results
    np.testing.assert_array_equal(l1, l2)
    assert s1[0].tobytes() == s2[0].tobytes() and s1[1:] == s2[1:]
    assert f1[0].tobytes() == f2[0].tobytes() and f1[2:] == f2[2:]
    np.testing.assert_array_equal(f1[1], f2[1])
    np.testing.assert_array_equal(p1, p2)


@pytest.mark.parametrize("name", KMEANS_BACKENDS)
def test_inertia_never_increases(name, dtype):
    ops = _ops(name)
    X = _blobs(3000, 4, 12, dtype, seed=21, std=3.0)
    centers = X[:12].copy()
    labels = np.full(X.shape[0], -1, np.int32)
    history = []
    for _ in range(15):
        centers, _, _, inertia = ops.kmeans_lloyd_step(X, None, centers, labels, 2)
        history.append(inertia)
    slack = 1e-5 if dtype == np.float32 else 1e-12
    assert all(b <= a * (1 + slack) for a, b in zip(history, history[1:])), history
    assert history[-1] < history[0]


# ---- the estimator against scikit-learn -----------------------------------------------------

DATASETS = {
    "blobs-2d": dict(n=1000, d=2, centers=8, k=8, std=1.0),
    "blobs-50d": dict(n=4000, d=50, centers=20, k=20, std=4.0),
    "overlapping": dict(n=2500, d=5, centers=3, k=10, std=3.0),
}


@pytest.mark.parametrize("name", KMEANS_BACKENDS)
@pytest.mark.parametrize("data", list(DATASETS))
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_matches_sklearn_from_same_init(name, data, weighted, dtype):
    cfg = DATASETS[data]
    X = _blobs(cfg["n"], cfg["d"], cfg["centers"], dtype, seed=3, std=cfg["std"])
    w = _weights(cfg["n"], dtype, 9) if weighted else None
    init = X[np.random.default_rng(7).choice(cfg["n"], cfg["k"], replace=False)].copy()
    sk = SkKMeans(cfg["k"], init=init, n_init=1).fit(X, sample_weight=w)
    with gk.use_backend(name):
        ours = KMeans(cfg["k"], init=init, n_init=1).fit(X, sample_weight=w)
    np.testing.assert_array_equal(ours.labels_, sk.labels_)
    assert ours.n_iter_ == sk.n_iter_
    rtol = 1e-4 if dtype == np.float32 else 1e-6
    np.testing.assert_allclose(ours.inertia_, sk.inertia_, rtol=rtol)
    np.testing.assert_allclose(ours.cluster_centers_, sk.cluster_centers_,
                               rtol=rtol, atol=rtol)
    assert ours.cluster_centers_.dtype == dtype


@pytest.mark.parametrize("name", KMEANS_BACKENDS)
def test_matches_sklearn_with_an_empty_cluster(name, dtype):
    X = _blobs(900, 3, 5, dtype, seed=12)
    init = X[:6].copy()
    init[3] = 500.0  # starts empty: relocated to the farthest point on the first iteration
    sk = SkKMeans(6, init=init, n_init=1).fit(X)
    with gk.use_backend(name):
        ours = KMeans(6, init=init, n_init=1).fit(X)
    np.testing.assert_array_equal(ours.labels_, sk.labels_)
    assert ours.n_iter_ == sk.n_iter_
    np.testing.assert_allclose(ours.inertia_, sk.inertia_,
                               rtol=1e-4 if dtype == np.float32 else 1e-6)


def test_max_iter_and_tol_semantics():
    X = _blobs(2000, 4, 6, np.float64, seed=4, std=4.0)
    init = X[:6].copy()
    for max_iter, tol in [(1, 1e-4), (3, 0.0), (300, 1e-2), (300, 0.0)]:
        sk = SkKMeans(6, init=init, n_init=1, max_iter=max_iter, tol=tol).fit(X)
        ours = KMeans(6, init=init, n_init=1, max_iter=max_iter, tol=tol).fit(X)
        assert ours.n_iter_ == sk.n_iter_
        np.testing.assert_array_equal(ours.labels_, sk.labels_)
        np.testing.assert_allclose(ours.inertia_, sk.inertia_, rtol=1e-6)


def test_predict_transform_score_match_sklearn(dtype):
    X = _blobs(1500, 6, 5, dtype, seed=14)
    Xt = _blobs(300, 6, 5, dtype, seed=15)
    init = X[:5].copy()
    sk = SkKMeans(5, init=init, n_init=1).fit(X)
    ours = KMeans(5, init=init, n_init=1).fit(X)
    np.testing.assert_array_equal(ours.predict(Xt), sk.predict(Xt))
    rtol = 1e-4 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(ours.transform(Xt), sk.transform(Xt), rtol=rtol, atol=1e-3)
    np.testing.assert_allclose(ours.score(Xt), sk.score(Xt), rtol=rtol)
    np.testing.assert_array_equal(KMeans(5, init=init, n_init=1).fit_predict(X), sk.labels_)
    assert ours.transform(Xt).dtype == dtype


def test_best_of_n_init_and_random_init():
    X = _blobs(2000, 2, 9, np.float64, seed=16, std=1.0)
    one = KMeans(9, init="random", n_init=1, random_state=0).fit(X)
    many = KMeans(9, init="random", n_init=10, random_state=0).fit(X)
    assert many.inertia_ <= one.inertia_
    again = KMeans(9, init="random", random_state=0).fit(X)  # n_init="auto" -> 10 for random
    assert again.inertia_ == many.inertia_
    np.testing.assert_array_equal(again.labels_, many.labels_)
    sk = SkKMeans(9, n_init=10, random_state=0).fit(X)
    np.testing.assert_allclose(many.inertia_, sk.inertia_, rtol=0.05)


def test_explicit_init_with_n_init_warns():
    X = _blobs(200, 2, 3, np.float64, seed=1)
    with pytest.warns(RuntimeWarning, match="only one init"):
        KMeans(3, init=X[:3], n_init=5).fit(X)


def test_pipeline_and_grid_search():
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = _blobs(600, 4, 4, np.float64, seed=17, std=0.8)
    pipe = make_pipeline(StandardScaler(), KMeans(random_state=0))
    search = GridSearchCV(pipe, {"kmeans__n_clusters": [2, 4, 8]}, cv=3).fit(X)
    # score is -inertia, which always improves with more clusters.
    assert search.best_params_["kmeans__n_clusters"] == 8
    labels = search.best_estimator_.predict(X)
    assert labels.shape == (600,) and labels.max() < 8
    assert make_pipeline(StandardScaler(), KMeans(4, random_state=0)).fit_transform(X).shape \
        == (600, 4)


def test_n_threads_and_backends_agree():
    X = _blobs(20_000, 8, 10, np.float32, seed=19)
    init = X[:10].copy()
    a = KMeans(10, init=init, n_threads=1).fit(X)
    b = KMeans(10, init=init, n_threads=2).fit(X)
    assert a.cluster_centers_.tobytes() == b.cluster_centers_.tobytes()
    assert a.inertia_ == b.inertia_ and a.n_iter_ == b.n_iter_
    with gk.use_backend("cython"):  # its own Lloyd step (BLAS GEMM + argmin), never C++
        c = KMeans(10, init=init, n_threads=1).fit(X)
        c2 = KMeans(10, init=init, n_threads=2).fit(X)
        with pytest.raises(ValueError, match="'cython'.*hamerly"):
            KMeans(10, init=init, algorithm="hamerly").fit(X)
    np.testing.assert_array_equal(c.labels_, a.labels_)  # well-separated blobs: no near-ties
    assert c.cluster_centers_.tobytes() == c2.cluster_centers_.tobytes()


from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

# scikit-learn expects the same failure of its own KMeans (k-means++ draws differ when a point
# is repeated instead of weighted): sklearn/utils/_test_common/instance_generator.py.
_SKLEARN_XFAIL = {
    "check_sample_weight_equivalence_on_dense_data":
        "sample_weight is not equivalent to removing/repeating samples.",
}


@parametrize_with_checks([KMeans(n_clusters=3, random_state=0)],
                         expected_failed_checks=lambda est: _SKLEARN_XFAIL)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ---- k-means++ --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", KMEANS_BACKENDS)
def test_kmeans_plusplus_backends_agree(name, dtype):
    ops, ref = _ops(name), backends.load("numpy")
    X = _blobs(3000, 7, 15, dtype, seed=22)
    w = _weights(3000, dtype, 2)
    u = np.random.default_rng(3).uniform(size=1 + 14 * 4)
    np.testing.assert_array_equal(ops.kmeans_plusplus(X, w, 15, 4, u, 2),
                                  ref.kmeans_plusplus(X, w, 15, 4, u))


def test_kmeans_plusplus_quality_and_reproducibility(dtype):
    X = _blobs(5000, 10, 30, dtype, seed=23, std=2.0)
    ours, theirs = [], []
    for seed in range(8):
        c, idx = kmeans_plusplus(X, 30, random_state=seed)
        assert c.dtype == dtype and c.shape == (30, 10)
        np.testing.assert_array_equal(c, X[idx])
        assert len(set(idx.tolist())) == 30
        ours.append(KMeans(30, init=c, max_iter=1).fit(X).inertia_)
        sc, _ = sk_kmeans_plusplus(X, 30, random_state=seed)
        theirs.append(KMeans(30, init=sc, max_iter=1).fit(X).inertia_)
    assert np.mean(ours) <= 1.1 * np.mean(theirs)
    c1, i1 = kmeans_plusplus(X, 30, random_state=42)
    c2, i2 = kmeans_plusplus(X, 30, random_state=np.random.RandomState(42))
    np.testing.assert_array_equal(i1, i2)
    _, i3 = kmeans_plusplus(X, 30, random_state=43)
    assert not np.array_equal(i1, i3)


def test_kmeans_plusplus_respects_sample_weight():
    X = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    w = np.array([0.0, 1.0, 0.0, 0.0])
    _, idx = kmeans_plusplus(X, 1, sample_weight=w, random_state=0)
    assert idx[0] == 1  # the only point with weight


# ---- bad inputs -------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_X_rejected(bad):
    X = np.random.default_rng(0).normal(size=(50, 3))
    X[7, 1] = bad
    with pytest.raises(ValueError, match="X"):
        KMeans(3).fit(X)
    with pytest.raises(ValueError, match="X"):
        kmeans_plusplus(X, 3)
    fitted = KMeans(3, random_state=0).fit(np.ones((10, 3)) + np.arange(10)[:, None])
    with pytest.raises(ValueError, match="X"):
        fitted.predict(X)


def test_too_many_clusters_rejected():
    X = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match=r"n_clusters=12 must be <= n_samples=10"):
        KMeans(12).fit(X)
    with pytest.raises(ValueError, match=r"n_clusters=12 must be <= n_samples=10"):
        kmeans_plusplus(X, 12)


@pytest.mark.parametrize("shape", [(4, 3), (3, 2), (3,)])
def test_init_of_wrong_shape_rejected(shape):
    X = np.random.default_rng(0).normal(size=(40, 3))
    with pytest.raises(ValueError, match="init"):
        KMeans(3, init=np.zeros(shape)).fit(X)


def test_negative_sample_weight_rejected():
    X = np.random.default_rng(0).normal(size=(40, 3))
    w = np.ones(40)
    w[5] = -1
    with pytest.raises(ValueError, match="sample_weight"):
        KMeans(3).fit(X, sample_weight=w)
    with pytest.raises(ValueError, match="sample_weight"):
        kmeans_plusplus(X, 3, sample_weight=w)
    with pytest.raises(ValueError, match="sample_weight"):
        KMeans(3).fit(X, sample_weight=np.ones(39))


def test_empty_X_rejected():
    with pytest.raises(ValueError, match="0 sample"):
        KMeans(2).fit(np.empty((0, 3)))
    with pytest.raises(ValueError, match="0 sample"):
        kmeans_plusplus(np.empty((0, 3)), 2)


@pytest.mark.parametrize("params, match", [
    (dict(n_clusters=0), "n_clusters"),
    (dict(n_clusters=2.5), "n_clusters"),
    (dict(init="kmeans"), "init"),
    (dict(n_init=0), "n_init"),
    (dict(max_iter=0), "max_iter"),
    (dict(tol=-1.0), "tol"),
    (dict(n_threads=0), "n_threads"),
])
def test_bad_parameters_rejected(params, match):
    X = np.random.default_rng(0).normal(size=(40, 3))
    with pytest.raises(ValueError, match=match):
        KMeans(**params).fit(X)


def test_integer_and_list_input_become_float64():
    X = [[0, 0], [0, 1], [10, 10], [10, 11]]
    km = KMeans(2, random_state=0).fit(X)
    assert km.cluster_centers_.dtype == np.float64
    assert len(set(km.labels_[:2])) == 1 and km.labels_[0] != km.labels_[2]


# ---- the C++ fallbacks: the portable tile must agree with the reference too ------------------


def test_cpp_kernels_on_every_isa(forced_isa, dtype):
    ops, ref = backends.load("cpp"), backends.load("numpy")
    X = _blobs(1500, 19, 7, dtype, seed=31)
    w = _weights(1500, dtype, 6)
    centers = X[:45].copy()
    lab_ref, lab = np.full(1500, -1, np.int32), np.full(1500, -1, np.int32)
    c_ref = ref.kmeans_lloyd_step(X, w, centers, lab_ref)[0]
    c = ops.kmeans_lloyd_step(X, w, centers, lab, 1)[0]
    np.testing.assert_array_equal(lab, lab_ref)
    np.testing.assert_allclose(c, c_ref, **TOL[dtype])
    u = np.random.default_rng(4).uniform(size=1 + 11 * 4)
    np.testing.assert_array_equal(ops.kmeans_plusplus(X, w, 12, 4, u, 1),
                                  ref.kmeans_plusplus(X, w, 12, 4, u))


# ---- fast paths: tiny fits and the k-means++ sweep -----------------------------------------


def _pp_data(n, d, dtype, seed):
    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((n, d)) * 2 + rng.integers(0, 12, (n, 1))).astype(dtype)
    return X, rng.uniform(0.1, 3.0, n).astype(dtype)


# Indices chosen by the C++ k-means++ before its one-pass rewrite (same on the AVX-512 and
# portable paths): the rewrite must keep every choice.
_PP_BEFORE = {
    (3000, 7, 15, 4, True): [2055, 2446, 438, 2504, 60, 2832, 2275, 767, 2006, 1089, 1408, 292,
                             1253, 2594, 1038],
    (2000, 33, 30, 5, False): [471, 853, 1184, 1292, 1013, 1198, 1859, 657, 349, 1264, 520, 344,
                               476, 1997, 663, 1731, 1329, 758, 1113, 849, 1818, 1569, 1206, 62,
                               465, 813, 30, 91, 581, 1705],
}


@pytest.mark.parametrize("case", list(_PP_BEFORE), ids=str)
def test_kmeans_plusplus_same_indices_as_before(case, dtype):
    n, d, k, trials, weighted = case
    X, w = _pp_data(n, d, dtype, n + d)
    u = np.random.default_rng(k).uniform(size=1 + (k - 1) * trials)
    for threads in (1, 2):
        idx = backends.load("cpp").kmeans_plusplus(X, w if weighted else None, k, trials, u,
                                                   threads)
        assert idx.tolist() == _PP_BEFORE[case]


@pytest.mark.parametrize("trials", [1, 9, 17, 33])  # one to several candidate groups
@pytest.mark.parametrize("n, d", [(1000, 1), (1000, 2), (777, 33), (20_000, 8), (70_000, 3)])
def test_kmeans_plusplus_many_trials_match_reference(n, d, trials, dtype):
    # 20,000 x 8 runs the sweep on two threads; odd d exercises the last-coordinate tail;
    # 70,000 x 3 recomputes the row norms in every sweep instead of keeping them.
    ops, ref = backends.load("cpp"), backends.load("numpy")
    X, w = _pp_data(n, d, dtype, d)
    u = np.random.default_rng(trials).uniform(size=1 + 11 * trials)
    expected = ref.kmeans_plusplus(X, w, 12, trials, u)
    for threads in (1, 2):
        gk.set_num_threads(threads)
        np.testing.assert_array_equal(ops.kmeans_plusplus(X, w, 12, trials, u, threads), expected)
    gk.set_num_threads(2)


def test_kmeans_plusplus_when_points_run_out():
    # More centres than distinct points: the potential reaches 0 and draws fall on row 0.
    X = np.repeat(np.arange(5, dtype=np.float64)[:, None], 4, axis=0)
    u = np.random.default_rng(0).uniform(size=1 + 19 * 3)
    ops, ref = backends.load("cpp"), backends.load("numpy")
    np.testing.assert_array_equal(ops.kmeans_plusplus(X, None, 20, 3, u, 1),
                                  ref.kmeans_plusplus(X, None, 20, 3, u))


@pytest.mark.parametrize("name", KMEANS_BACKENDS)
def test_mean_variance_matches_numpy(name, dtype):
    ops = _ops(name)
    X = _blobs(5000, 6, 4, dtype, seed=40) + np.asarray(1000, dtype)  # away from the origin
    expected = np.mean(np.var(X.astype(np.float64), axis=0))
    np.testing.assert_allclose(ops.kmeans_mean_variance(X, 2), expected, rtol=1e-12)
    X[17, 3] = np.nan
    assert not np.isfinite(ops.kmeans_mean_variance(X, 1))


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("shape", [(1000, 2, 8), (2000, 3, 12), (300, 5, 30), (4096, 5, 40)])
def test_small_lloyd_matches_the_step_by_step_loop(shape, weighted, dtype):
    # kmeans_lloyd has its own loop for tiny inputs (n <= 4096 and 2 n d k < 2e5; the last
    # shape is past it): it must behave as the general loop over kmeans_lloyd_step (the sums
    # differ only in rounding: float64 directly vs float32 blocks).
    n, d, k = shape
    ops, ref = backends.load("cpp"), backends.load("numpy").module  # the loop is a helper
    X = _blobs(n, d, 10, dtype, seed=n + k)
    w = _weights(n, dtype, 3) if weighted else None
    init = X[np.random.default_rng(1).choice(n, k, replace=False)].copy()
    init[1] = init[0]  # a duplicate centre: one cluster empties and is relocated
    tol = 1e-4 * np.mean(np.var(X.astype(np.float64), axis=0))
    for max_iter in (300, 2):
        c, labels, inertia, n_iter = ops.kmeans_lloyd(X, w, init, max_iter, tol, 1)
        c_ref, labels_ref, inertia_ref, n_iter_ref = ops_numpy.kmeans_lloyd_loop(
            ops.kmeans_lloyd_step, ops.kmeans_assign, ops.kmeans_inertia, X, w, init, max_iter,
            tol, 1)
        np.testing.assert_array_equal(labels, labels_ref)
        assert n_iter == n_iter_ref
        np.testing.assert_allclose(c, c_ref, **TOL[dtype])
        rtol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(inertia, inertia_ref, rtol=rtol)


def test_random_state_scratch_gives_the_same_stream():
    from gradkit.cluster.kmeans import _random_state

    a = _random_state(7)
    first = a.uniform(size=5)
    b = _random_state(7)  # reseeded, not continued
    np.testing.assert_array_equal(b.uniform(size=5), first)
    np.testing.assert_array_equal(np.random.RandomState(7).uniform(size=5), first)
    own = np.random.RandomState(3)
    assert _random_state(own) is own
    assert _random_state(None) is np.random.mtrand._rand
    np.testing.assert_array_equal(_random_state(np.int64(7)).uniform(size=5), first)


def _slow_path(monkeypatch):
    # Every fit through sklearn's parameter validation and validate_data.
    monkeypatch.setattr(KMeans, "_plain_params", lambda self: False)


def _fitted_state(model):
    return {k: v for k, v in vars(model).items() if k.endswith("_")}


@pytest.mark.parametrize("params", [
    dict(n_clusters=8, random_state=0),
    dict(n_clusters=5, init="random", n_init=3, random_state=2, tol=0.0),
    dict(n_clusters=4, random_state=np.random.RandomState(5), max_iter=3, n_threads=1),
    dict(n_clusters=6, random_state=np.int64(1)),  # not plain: validated either way
], ids=["default", "random-init", "rs-instance", "numpy-int"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_fast_fit_path_matches_validated_path(params, weighted, dtype, monkeypatch):
    X = _blobs(1000, 2, 8, dtype, seed=41)
    w = _weights(1000, dtype, 4) if weighted else None
    fresh = lambda: KMeans(**{k: (np.random.RandomState(5) if isinstance(v, np.random.RandomState)
                                  else v) for k, v in params.items()})
    validated = []
    original = KMeans._fit_validated
    monkeypatch.setattr(KMeans, "_fit_validated",
                        lambda self, *a, **kw: validated.append(1) or original(self, *a, **kw))
    fast = fresh().fit(X, sample_weight=w)
    assert len(validated) == (1 if isinstance(params["random_state"], np.integer) else 0)
    with monkeypatch.context() as m:
        _slow_path(m)
        slow = fresh().fit(X, sample_weight=w)
    assert len(validated) >= 1
    a, b = _fitted_state(fast), _fitted_state(slow)
    assert a.keys() == b.keys() and "feature_names_in_" not in a
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert a["cluster_centers_"].dtype == dtype and fast.n_features_in_ == 2


def test_fast_fit_drops_feature_names_of_an_earlier_fit():
    pd = pytest.importorskip("pandas")
    X = _blobs(200, 3, 3, np.float64, seed=42)
    model = KMeans(3, random_state=0).fit(pd.DataFrame(X, columns=["a", "b", "c"]))
    assert list(model.feature_names_in_) == ["a", "b", "c"]
    model.fit(X)
    assert not hasattr(model, "feature_names_in_")


def _error_of(fit):
    with pytest.raises((ValueError, TypeError)) as info:
        fit()
    return type(info.value), str(info.value)


_X_OK = np.random.default_rng(0).normal(size=(30, 3))
_X_NAN, _X_INF = _X_OK.copy(), _X_OK.copy()
_X_NAN[4, 1], _X_INF[5, 2] = np.nan, -np.inf


@pytest.mark.parametrize("params, X, w", [
    (dict(n_clusters=3), _X_NAN, None),
    (dict(n_clusters=3), _X_INF, None),
    (dict(n_clusters=3), _X_OK.astype(np.float32)[:0], None),
    (dict(n_clusters=31), _X_OK, None),
    (dict(n_clusters=3, init=np.zeros((2, 3))), _X_OK, None),
    (dict(n_clusters=3), _X_OK, -np.ones(30)),
    (dict(n_clusters=0), _X_OK, None),
    (dict(n_clusters=2.5), _X_OK, None),
    (dict(n_clusters=True), _X_OK, None),
    (dict(tol=-1.0), _X_OK, None),
    (dict(tol=float("nan")), _X_OK, None),
    (dict(tol=float("inf")), _X_OK, None),
    (dict(max_iter=0), _X_OK, None),
    (dict(n_init=0), _X_OK, None),
    (dict(n_init="many"), _X_OK, None),
    (dict(init="kmeans++"), _X_OK, None),
    (dict(random_state=-1), _X_OK, None),
    (dict(random_state=2**32), _X_OK, None),
    (dict(n_threads=0), _X_OK, None),
])
def test_fast_fit_path_raises_what_validation_raises(params, X, w, monkeypatch):
    fast = _error_of(lambda: KMeans(**params).fit(X, sample_weight=w))
    with monkeypatch.context() as m:
        _slow_path(m)
        slow = _error_of(lambda: KMeans(**params).fit(X, sample_weight=w))
    assert fast == slow


@pytest.mark.parametrize("d", [64, 100])
def test_labels_match_predict_on_near_ties(d, dtype):
    """A tiny fit (its own Lloyd loop) assigns through the same distance tile as predict, so
    rows placed on the bisector of the two centres get the same label from both."""
    rng = np.random.default_rng(0)
    n_tie = 30000 // d
    A, B = rng.standard_normal((40, d)) + 5, rng.standard_normal((40, d)) - 5
    X1 = np.vstack([A, B]).astype(dtype)
    init = np.vstack([A[0], B[0]]).astype(dtype)
    w = np.r_[np.ones(80), np.zeros(n_tie)].astype(dtype)  # the tie rows do not move the centres
    V = rng.standard_normal((n_tie, d))
    X = np.vstack([X1, np.zeros((n_tie, d), dtype)])
    for _ in range(2):  # the centres one iteration gives, then rows on their bisector
        km = KMeans(2, init=init, n_init=1, max_iter=1).fit(X, sample_weight=w)
        M0, M1 = km.cluster_centers_.astype(np.float64)
        u = (M1 - M0) / np.linalg.norm(M1 - M0)
        X = np.vstack([X1, ((M0 + M1) / 2 + 3 * (V - np.outer(V @ u, u))).astype(dtype)])
    km = KMeans(2, init=init, n_init=1, max_iter=1).fit(X, sample_weight=w)
    np.testing.assert_array_equal(km.labels_, km.predict(X))
    fit_predict = KMeans(2, init=init, n_init=1, max_iter=1).fit_predict(X, sample_weight=w)
    np.testing.assert_array_equal(fit_predict, km.predict(X))
