"""KMeans: a scikit-learn estimator whose Lloyd iterations run in one pass over X each.

Semantics follow sklearn.cluster.KMeans(algorithm="lloyd"): the tolerance is relative to the
mean feature variance, iterations stop when the labels no longer change (strict convergence)
or when the squared centre shift is within tol, a final assignment makes the labels match the
returned centres, empty clusters are relocated to the farthest points, and the best of n_init
runs by inertia is kept. Unlike scikit-learn, X is neither copied nor centred: the memory
beyond X is O(threads x block x k + k x d) plus the labels.

``algorithm`` picks how each iteration finds the labels; every choice gives Lloyd's labels,
centres and n_iter_ from the same initial centres (the bounds keep a margin for the rounding of
the distance tile, and rows they cannot settle go through that tile):

- "lloyd": every row-centre distance, every iteration.
- "hamerly" (Hamerly 2010): an upper and one lower bound per row; extra memory 3 n float64.
- "elkan" (Elkan 2003): one lower bound per row and centre; extra memory n k float32 plus
  2 n float64.
- "auto": a rule measured on this library's kernels (see _auto_algorithm).
"""
from __future__ import annotations

import math
import numbers
import threading
import warnings

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_is_fitted,
    validate_data,
)

from gradkit import _config
from gradkit.cluster import dask as _dask  # dask input goes there; imports dask only then

_DTYPES = [np.float64, np.float32]


_ALGORITHMS = ("lloyd", "elkan", "hamerly")


def _auto_algorithm(n, d, k):
    """The algorithm "auto" runs. Measured on one AVX2 CPU (AMD EPYC Zen 3, loaded machine),
    100k x 50 float32 blobs, k=100, 1 thread, whole fit to tol=1e-4 (46 iterations): Lloyd
    14.0 s, Hamerly 6.6 s (82% of distances skipped), Elkan 28.9 s (93% skipped, but O(k)
    bound upkeep per row and float64 distances). The k >= 32 threshold is not yet measured:
    with few centres a Lloyd pass is cheap and the bounds prune little."""
    return "hamerly" if k >= 32 and n >= 4 * k else "lloyd"


def _ops():
    """The selected backend (every backend has the Lloyd kernels; only C++ has the others)."""
    return _config.ops()


def _threads(n_threads):
    return _config.get_num_threads() if n_threads is None else int(n_threads)


def _weights(sample_weight, X):
    """None stays None (unit weights without an n-vector); otherwise a checked array."""
    if sample_weight is None:
        return None
    return _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True)


_SCRATCH = threading.local()
_SEED_MAX = 2**32 - 1


def _random_state(seed):
    """check_random_state(seed), without building a RandomState for an int seed (about 0.1 ms,
    mostly drawing OS entropy that the seeding then discards): each thread reseeds one scratch
    RandomState, which gives the same stream. It is used within one call and never stored."""
    if type(seed) is int and 0 <= seed <= _SEED_MAX:
        rs = getattr(_SCRATCH, "random_state", None)
        if rs is None:
            rs = _SCRATCH.random_state = np.random.RandomState(seed)
        else:
            rs.seed(seed)
        return rs
    return check_random_state(seed)


def _plain_float_array(X):
    """True for a non-empty 2-D C-contiguous float32/float64 ndarray: such input needs no
    conversion, and the full sklearn validation (about 0.1 ms) can be skipped once it is known
    to be finite. Anything else goes through validate_data and its errors."""
    return (type(X) is np.ndarray and X.ndim == 2 and X.dtype in _DTYPES
            and X.flags.c_contiguous and X.shape[0] >= 1 and X.shape[1] >= 1)


def _plain_float_matrix(X):
    """_plain_float_array with a finite sum (so no NaN/inf)."""
    return (_plain_float_array(X)
            and np.isfinite(np.add.reduce(X, axis=None, dtype=np.float64)))


def _n_local_trials(n_clusters):
    return 2 + int(np.log(n_clusters))


def _plusplus_indices(X, sample_weight, n_clusters, random_state, n_threads):
    trials = _n_local_trials(n_clusters)
    uniforms = random_state.uniform(size=1 + (n_clusters - 1) * trials)
    return _ops().kmeans_plusplus(X, sample_weight, n_clusters, trials, uniforms,
                                         n_threads)


def _check_n_clusters(n_clusters, n_samples):
    if n_clusters > n_samples:
        raise ValueError(f"n_clusters={n_clusters} must be <= n_samples={n_samples}")


def kmeans_plusplus(X, n_clusters, *, sample_weight=None, random_state=None,
                    n_local_trials=None):
    """Greedy k-means++ seeding: returns (centers (n_clusters, d), indices (n_clusters,)).

    Each new centre is the best of ``n_local_trials`` (default ``2 + int(ln k)``) candidates
    drawn with probability proportional to ``w * D(x)^2``: the one that lowers the potential
    ``sum w D^2`` most. float32 data stays float32.
    """
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, numbers.Integral):
        raise TypeError(f"n_clusters must be an int, got {type(n_clusters).__name__}")
    if n_clusters < 1:
        raise ValueError(f"n_clusters={n_clusters} must be >= 1")
    X = check_array(X, dtype=_DTYPES, order="C", input_name="X")
    _check_n_clusters(n_clusters, X.shape[0])
    if n_local_trials is None:
        n_local_trials = _n_local_trials(n_clusters)
    elif isinstance(n_local_trials, bool) or not isinstance(n_local_trials, numbers.Integral) \
            or n_local_trials < 1:
        raise ValueError(f"n_local_trials={n_local_trials!r} must be an int >= 1")
    sample_weight = _weights(sample_weight, X)
    rs = _random_state(random_state)
    uniforms = rs.uniform(size=1 + (n_clusters - 1) * n_local_trials)
    indices = _ops().kmeans_plusplus(X, sample_weight, int(n_clusters),
                                            int(n_local_trials), uniforms, _threads(None))
    return X[indices], indices


_LABEL_CHUNK = 1 << 20  # labels per chunk: np.bincount/np.unique copy their input to intp


def _count_distinct(labels, n_clusters):
    counts = np.zeros(n_clusters, dtype=np.int64)
    for start in range(0, labels.shape[0], _LABEL_CHUNK):
        counts += np.bincount(labels[start:start + _LABEL_CHUNK], minlength=n_clusters)
    return int(np.count_nonzero(counts))


def _same_clustering(labels1, labels2, n_clusters):
    """True when two labelings are equal up to a permutation of the cluster ids."""
    pairs = set()
    for start in range(0, labels1.shape[0], _LABEL_CHUNK):
        a = labels1[start:start + _LABEL_CHUNK].astype(np.int64)
        b = labels2[start:start + _LABEL_CHUNK]
        pairs.update(np.unique(a * n_clusters + b).tolist())
    firsts = [p // n_clusters for p in pairs]
    return len(firsts) == len(set(firsts))


class KMeans(ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin, BaseEstimator):
    """K-means clustering (Lloyd), a drop-in for sklearn.cluster.KMeans(algorithm="lloyd").

    Parameters
    ----------
    n_clusters : int, default=8
    init : {"auto", "k-means++", "k-means||", "random"} or array of shape (n_clusters,
        n_features), default="auto". "auto" is "k-means++" for in-memory X and "k-means||"
        for a dask array (as scikit-learn's "auto" options pick by the input). "k-means++" on
        a dask array runs k-means++ on a sample of the rows
        (gradkit.cluster.dask.kmeans_plusplus_sample); "k-means||" (2 rounds of oversampling,
        as Spark MLlib) needs a dask array: in-memory X raises ValueError (use "k-means++").
    n_init : "auto" or int, default="auto" (1 for "k-means++", "k-means||" or an array, 10 for
        "random")
    max_iter : int, default=300
    tol : float, default=1e-4, relative to the mean feature variance of X
    random_state : None, int or RandomState
    n_threads : int or None, default=None (OpenMP's max threads, which threadpoolctl limits)
    algorithm : {"auto", "lloyd", "elkan", "hamerly"}, default="auto". Exact algorithms with
        Lloyd's results; see the module docstring for their memory.

    Attributes: cluster_centers_, labels_ (int32), inertia_, n_iter_, n_features_in_.
    """

    _parameter_constraints: dict = {
        "n_clusters": [Interval(numbers.Integral, 1, None, closed="left")],
        "init": [StrOptions({"auto", "k-means++", "k-means||", "random"}), "array-like"],
        "n_init": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "n_threads": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "algorithm": [StrOptions({"auto", *_ALGORITHMS})],
    }

    def __init__(self, n_clusters=8, *, init="auto", n_init="auto", max_iter=300,
                 tol=1e-4, random_state=None, n_threads=None, algorithm="auto"):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.n_threads = n_threads
        self.algorithm = algorithm

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    # ---- fitting

    def _initial_centers(self, X, sample_weight, init, random_state, n_threads):
        if isinstance(init, np.ndarray):
            return init
        if init == "k-means++":
            idx = _plusplus_indices(X, sample_weight, self.n_clusters, random_state, n_threads)
        else:  # "random": n_clusters distinct rows, drawn with probability w
            p = None if sample_weight is None else sample_weight / sample_weight.sum()
            idx = random_state.choice(X.shape[0], size=self.n_clusters, replace=False, p=p)
        return X[idx]

    def _check_init(self, X):
        init = self.init
        if isinstance(init, str):
            if init == "k-means||":
                raise ValueError("init='k-means||' runs on a dask array only (its rounds sample "
                                 "across chunks); for in-memory X use init='k-means++' (what "
                                 "init='auto' runs)")
            return "k-means++" if init == "auto" else init
        expected = (self.n_clusters, X.shape[1])
        if np.ndim(init) != 2:
            raise ValueError(f"init has shape {np.shape(init)}; it must be (n_clusters, "
                             f"n_features) = {expected}")
        init = check_array(init, dtype=X.dtype, order="C", copy=True, input_name="init")
        if init.shape != expected:
            raise ValueError(f"init has shape {init.shape}; it must be (n_clusters, n_features) "
                             f"= {expected}")
        return init

    def _plain_params(self):
        """True when every parameter is a plain Python value that _parameter_constraints
        accepts (the common case); anything else is left to sklearn's validation."""
        n_init, rs, nt = self.n_init, self.random_state, self.n_threads
        return (type(self.n_clusters) is int and self.n_clusters >= 1
                and type(self.init) is str and self.init in ("auto", "k-means++", "random")
                and (n_init == "auto" if type(n_init) is str
                     else type(n_init) is int and n_init >= 1)
                and type(self.max_iter) is int and self.max_iter >= 1
                and type(self.tol) in (float, int) and 0 <= self.tol < math.inf
                and (rs is None or (type(rs) is int and 0 <= rs <= _SEED_MAX)
                     or type(rs) is np.random.RandomState)
                and (nt is None or (type(nt) is int and nt >= 1))
                and type(self.algorithm) is str
                and (self.algorithm == "auto" or self.algorithm in _ALGORITHMS))

    def fit(self, X, y=None, sample_weight=None):
        """Cluster X (n_samples, n_features); sample_weight (n_samples,) >= 0 or None."""
        if _dask.is_dask_array(X):
            return _dask.fit(self, X, sample_weight)
        # The common case (plain parameters, a finite C-contiguous float array) skips sklearn's
        # parameter and data validation, which would cost more than fitting 1,000 points;
        # the checks made here accept exactly what those would, and nothing is converted.
        if self._plain_params() and _plain_float_array(X):
            n_threads = _threads(self.n_threads)
            variance = _ops().kmeans_mean_variance(X, n_threads)
            if np.isfinite(variance):  # else NaN/inf in X: validate_data names them
                self.n_features_in_ = X.shape[1]
                if hasattr(self, "feature_names_in_"):
                    del self.feature_names_in_
                return self._fit(X, sample_weight, variance, n_threads)
        return self._fit_validated(X, y, sample_weight)

    @_fit_context(prefer_skip_nested_validation=True)
    def _fit_validated(self, X, y=None, sample_weight=None):
        X = validate_data(self, X, dtype=_DTYPES, order="C", accept_sparse=False)
        n_threads = _threads(self.n_threads)
        variance = _ops().kmeans_mean_variance(X, n_threads)
        return self._fit(X, sample_weight, variance, n_threads)

    def _fit(self, X, sample_weight, variance, n_threads):
        _check_n_clusters(self.n_clusters, X.shape[0])
        sample_weight = _weights(sample_weight, X)
        init = self._check_init(X)
        n_init = self.n_init
        if n_init == "auto":
            n_init = 10 if isinstance(init, str) and init == "random" else 1
        if isinstance(init, np.ndarray) and n_init != 1:
            warnings.warn(f"Explicit initial center position passed: performing only one init "
                          f"in KMeans instead of n_init={n_init}.", RuntimeWarning, stacklevel=3)
            n_init = 1
        tol = self.tol * variance if self.tol > 0 else 0.0
        random_state = _random_state(self.random_state)
        ops = _ops()
        algorithm = self.algorithm
        if algorithm == "auto":  # backends without the bound-based kernels run Lloyd
            algorithm = (_auto_algorithm(X.shape[0], X.shape[1], self.n_clusters)
                         if hasattr(ops, "kmeans_fit") else "lloyd")
        if algorithm != "lloyd" and not hasattr(ops, "kmeans_fit"):
            raise ValueError(f"algorithm={self.algorithm!r}: the {_config.get_backend()!r} "
                             "backend implements only 'lloyd' (select the 'cpp' backend for "
                             f"{algorithm!r})")

        def run(centers0):
            if algorithm == "lloyd" and not hasattr(ops, "kmeans_fit"):
                return ops.kmeans_lloyd(X, sample_weight, centers0, self.max_iter, tol,
                                        n_threads)
            out = ops.kmeans_fit(X, sample_weight, centers0, self.max_iter, tol, algorithm,
                                 n_threads)
            self._n_distances = int(out[4])
            return out[:4]

        best = None
        for _ in range(n_init):
            centers0 = self._initial_centers(X, sample_weight, init, random_state, n_threads)
            centers, labels, inertia, n_iter = run(centers0)
            # A run wins on lower inertia unless it is the same clustering (rounding noise),
            # as scikit-learn decides.
            if best is None or (inertia < best[2]
                                and not _same_clustering(labels, best[1], self.n_clusters)):
                best = (centers, labels, inertia, n_iter)

        centers, labels, inertia, n_iter = best
        distinct = _count_distinct(labels, self.n_clusters)
        if distinct < self.n_clusters:
            warnings.warn(f"Number of distinct clusters ({distinct}) found smaller than "
                          f"n_clusters ({self.n_clusters}). Possibly due to duplicate points "
                          "in X.", ConvergenceWarning, stacklevel=3)
        self.cluster_centers_ = centers
        self._n_features_out = centers.shape[0]
        self.labels_ = labels
        self.inertia_ = float(inertia)
        self.n_iter_ = int(n_iter)
        return self

    # ---- using a fitted model

    def _check_test_data(self, X):
        check_is_fitted(self)
        if (_plain_float_matrix(X) and X.shape[1] == self.n_features_in_
                and not hasattr(self, "feature_names_in_")):
            return X
        return validate_data(self, X, dtype=_DTYPES, order="C", accept_sparse=False, reset=False)

    def _centers_for(self, X):
        return np.ascontiguousarray(self.cluster_centers_, dtype=X.dtype)

    def predict(self, X, sample_weight=None):
        """Index of the nearest centre for each row of X (int32)."""
        if _dask.is_dask_array(X):
            return _dask.predict(self, X)
        X = self._check_test_data(X)
        labels, _ = _ops().kmeans_assign(X, None, self._centers_for(X),
                                                _threads(self.n_threads))
        return labels

    def fit_predict(self, X, y=None, sample_weight=None):
        return self.fit(X, sample_weight=sample_weight).labels_

    def transform(self, X):
        """Euclidean distances (n_samples, n_clusters) from each row to each centre."""
        if _dask.is_dask_array(X):
            return _dask.transform(self, X)
        X = self._check_test_data(X)
        return self._transform(X)

    def _transform(self, X):
        c = self._centers_for(X)
        sq = (np.einsum("ij,ij->i", X, X)[:, None] - 2 * (X @ c.T)
              + np.einsum("ij,ij->i", c, c)[None, :])
        return np.sqrt(np.maximum(sq, 0, out=sq), out=sq)

    def fit_transform(self, X, y=None, sample_weight=None):
        self.fit(X, sample_weight=sample_weight)
        if _dask.is_dask_array(X):
            return _dask.transform(self, X)
        return self._transform(self._check_test_data(X))

    def score(self, X, y=None, sample_weight=None):
        """Opposite of the inertia of X on the fitted centres (higher is better)."""
        X = self._check_test_data(X)
        sample_weight = _weights(sample_weight, X)
        centers = self._centers_for(X)
        ops = _ops()
        n_threads = _threads(self.n_threads)
        labels, _ = ops.kmeans_assign(X, sample_weight, centers, n_threads)
        return -float(ops.kmeans_inertia(X, sample_weight, centers, labels, n_threads))
