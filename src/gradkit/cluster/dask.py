"""K-means on a dask array, behind ``gk.cluster.KMeans`` (its fit/predict/transform send dask
input here).

The algorithm is Spark MLlib's distributed k-means with scikit-learn's semantics:

* init "k-means||" (what the default "auto" runs on dask input): one row drawn with
  probability w, then 2 rounds in which every row joins the candidates independently with
  probability ``min(1, l w D^2 / sum w D^2)`` (l = 2 n_clusters, D the distance to the nearest
  candidate so far); each candidate is weighted by the weight of the rows nearest to it, and the
  driver reduces the candidates to n_clusters centres with gradkit's weighted k-means++ and a
  weighted Lloyd run. "random" draws n_clusters distinct rows with probability w (the same
  draw as single-machine KMeans for the same random_state); an array is used as given;
  "k-means++" is gradkit's k-means++ on a uniform sample of the rows (weighted by w), drawn
  afresh for each of n_init runs (:func:`kmeans_plusplus_sample`, also callable to get such
  centres).
* Lloyd: per chunk of rows, single-machine Lloyd's own pass (labels, per-cluster float64 sums,
  weights and inertia from one read of each row); on a distributed cluster one task per worker
  runs it over the chunks that worker holds (a task per chunk cost more in scheduling than the
  pass itself). The driver adds the chunk results in a fixed tree, so the result does not
  depend on which worker ran what.
  Empty clusters are relocated by single-machine KMeans's rule: each chunk sends a few
  candidate rows and the driver applies the rule to them; that needs one more pass, only in
  the iterations where a cluster is empty. tol is relative to the mean feature variance.
* Stopping: single-machine KMeans stops when no label changes or the squared centre shift is
  <= tol. Labels are not kept between iterations here (they would be lost with a worker); an
  unchanged labelling gives exactly the same sums, so without relocation the shift is then
  exactly 0 and the shift test alone stops at the same iteration, with the same labels. After
  a relocation (which depends on the centres too) the relocation pass's label digests tell.

X is never gathered: it is persisted on the workers for the fit; centres, per-chunk partial
results and a few candidate rows travel. Centres are passed inline in each task (not
scattered), so a task lost with its worker is recomputed from lineage and the fit ends with the
same result. This module imports dask only when it is used.
"""
from __future__ import annotations

import hashlib
import numbers
import warnings

import numpy as np

__all__ = ["is_dask_array", "fit", "predict", "transform", "kmeans_plusplus_sample"]

_OVERSAMPLING_ROUNDS = 2  # Spark MLlib's initializationSteps: 2 rounds suffice (Bahmani et al.)
_OVERSAMPLING = 2  # candidates drawn per round, as a multiple of n_clusters (Spark's 2k)
_FAN_IN = 8  # chunk results added per reduction task: depth log8(chunks), small tasks
_SAMPLE_ROWS = 10_000  # rows of the k-means++ sample, at least (and 100 per cluster)
_SAME_INERTIA = 1e-10  # relative inertia difference below which two runs count as equal
_LOCAL_LLOYD_ITER = 100  # Lloyd iterations on the weighted candidates (Spark runs 30)


def is_dask_array(X) -> bool:
    """True for a dask.array.Array (without importing dask)."""
    return type(X).__module__.startswith("dask.array")


# ------------------------------------------------------------------------- validation


def check_dask_matrix(X, name="X", n_features=None):
    """A 2-D float dask array with known row chunks and whole rows in every chunk."""
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D dask array, got {X.ndim}-D")
    if any(np.isnan(c) for dim in X.chunks for c in dim):
        raise ValueError(f"{name} has unknown chunk sizes (NaN): call "
                         f"{name}.compute_chunk_sizes() or give the sizes when building it")
    if X.numblocks[1] != 1:
        raise ValueError(f"{name} is split into {X.numblocks[1]} chunks across its columns; each "
                         f"chunk must hold whole rows: use {name}.rechunk({{1: -1}})")
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"{name} must not be empty, got shape {X.shape}")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features, but KMeans was fitted with "
                         f"{n_features}")
    if X.dtype not in (np.float32, np.float64):
        if X.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold numbers, got dtype {X.dtype}")
        X = X.astype(np.float64)
    return X


def check_row_chunks(v, X, name):
    """v (a dask array or array-like with X's rows) as a dask array chunked like X's rows."""
    import dask.array as da

    if not is_dask_array(v):
        v = da.from_array(np.asarray(v), chunks=(X.chunks[0],) + tuple(
            (s,) for s in np.shape(v)[1:]))
    if v.shape[:1] != X.shape[:1]:
        raise ValueError(f"{name} has {v.shape[0]} rows but X has {X.shape[0]}; they must match")
    if any(np.isnan(c) for dim in v.chunks for c in dim):
        raise ValueError(f"{name} has unknown chunk sizes (NaN): call "
                         f"{name}.compute_chunk_sizes() first")
    if v.chunks[0] != X.chunks[0]:
        raise ValueError(f"{name} is chunked into rows {v.chunks[0]} but X into {X.chunks[0]}; "
                         f"chunk them alike, e.g. {name}.rechunk({{0: X.chunks[0]}})")
    return v


def _check_weights(sample_weight, X, compute):
    if sample_weight is None:
        return None
    import dask.array as da

    w = check_row_chunks(sample_weight, X, "sample_weight")
    if w.ndim != 1:
        raise ValueError(f"sample_weight must be 1-D, got {w.ndim}-D")
    w = w.astype(X.dtype)
    low, total = compute(da.min(w), da.sum(w.astype(np.float64)))
    if not (np.isfinite(low) and np.isfinite(total)) or low < 0:
        raise ValueError("sample_weight must be finite and >= 0")
    if total <= 0:
        raise ValueError("sample_weight must not be all zero")
    return w


# ---------------------------------------------------------------------- chunk tasks
# Plain functions of numpy chunks: what a worker runs. They import gradkit's kernels there.


def _chunk_partials(x, w, centers):
    from gradkit import _core

    sums, weight, inertia, _ = _core.kmeans_chunk_partials(x, w, centers)
    return sums, weight, inertia  # the labels stay on the worker


def _add_partials(*parts):
    sums, weight, inertia = parts[0]
    sums, weight = sums.copy(), weight.copy()
    for s, wt, i in parts[1:]:
        sums += s
        weight += wt
        inertia += i
    return sums, weight, inertia


def _labels(x, centers):
    from gradkit import _core

    labels = np.empty(x.shape[0], dtype=np.int32)
    _core.kmeans_assign(x, None, centers, labels, 1)
    return labels


def _sq_dist_to_labelled(x, centers, labels):
    diff = x.astype(np.float64) - centers[labels].astype(np.float64)
    return np.einsum("ij,ij->i", diff, diff)


def _chunk_farthest(x, w, centers, offset, m):
    """What the driver needs from this chunk to relocate m empty clusters by single-machine
    KMeans's rule (ops_numpy._kmeans_relocate_empty): (global index, label, row, weight) of
    this chunk's first m + k rows that rule may take (weight > 0, off their centre by more than
    rounding; farthest first, ties to the lower index), and of each cluster's last row of
    weight > 0 here in that order (the cluster's last point overall, which the rule never takes,
    is one of these). Each row once. The m + k suffice: the global first m + k
    contain the m taken, as at most one per cluster (its last point) is passed over."""
    from gradkit.backends.ops_numpy import _kmeans_offsets

    k = centers.shape[0]
    labels = _labels(x, centers)
    ws = np.ones(x.shape[0]) if w is None else w.astype(np.float64)
    dist, noise = _kmeans_offsets(x, centers, labels)
    order = np.lexsort((np.arange(x.shape[0]), -dist))
    order = order[ws[order] > 0]
    backwards = order[::-1]
    _, last = np.unique(labels[backwards], return_index=True)
    first = order[dist[order] > noise[order]][:m + k]
    keep = np.union1d(first, backwards[last]).astype(np.int64)
    digest = hashlib.blake2b(labels.tobytes(), digest_size=16).digest()
    return keep + offset, labels[keep], x[keep], ws[keep], digest


def _chunk_final(x, w, centers, assigned):
    """(inertia from the differences, weight per cluster) with the final centres and the rows
    labelled by their nearest of `assigned` (the centres the last iteration assigned to)."""
    from gradkit import _core

    labels = _labels(x, assigned)
    inertia = _core.kmeans_inertia(x, w, centers, labels, 1)
    ws = None if w is None else w.astype(np.float64)
    return np.bincount(labels, weights=ws, minlength=centers.shape[0]), inertia


def _add_final(*parts):
    weight = parts[0][0].copy()
    inertia = parts[0][1]
    for wt, i in parts[1:]:
        weight += wt
        inertia += i
    return weight, inertia


def _chunk_cost(x, w, cands):
    """sum w D^2, D the distance of each row to its nearest candidate."""
    dist = _sq_dist_to_labelled(x, cands, _labels(x, cands))
    return float(dist.sum() if w is None else w.astype(np.float64) @ dist)


def _chunk_oversample(x, w, cands, scale, seed):
    """Rows drawn independently with probability min(1, scale w D^2)."""
    dist = _sq_dist_to_labelled(x, cands, _labels(x, cands))
    p = scale * (dist if w is None else w.astype(np.float64) * dist)
    keep = np.random.default_rng(seed).random(x.shape[0]) < p
    return x[keep]


def _chunk_candidate_weights(x, w, cands):
    ws = None if w is None else w.astype(np.float64)
    return np.bincount(_labels(x, cands), weights=ws, minlength=cands.shape[0])


def _sum(*parts):
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    return total


# ---------------------------------------------------------------------- the driver


def _chunks_apply(func, xs, ws, *args):
    """func over several chunks of one worker, in one task: [func(x, w, *args) per chunk]."""
    return [func(x, w, *args) for x, w in zip(xs, ws)]


def _tree(parts, combine):
    """parts added in a fixed tree of fan-in _FAN_IN, whatever ran where."""
    while len(parts) > 1:
        parts = [combine(*parts[i:i + _FAN_IN]) for i in range(0, len(parts), _FAN_IN)]
    return parts[0]


def _default_client():
    """The distributed Client that dask.compute runs on now, or None (dask's local schedulers)."""
    from dask.base import get_scheduler

    client = getattr(get_scheduler(), "__self__", None)
    try:
        from distributed import Client
    except ImportError:
        return None
    return client if isinstance(client, Client) else None


class _Chunks:
    """X (and w) as per-chunk delayed values, and a compute that runs a list of per-chunk
    tasks with a fixed reduction tree.

    On a distributed cluster, reduce sends one task per worker, over the chunks that worker
    holds (one Lloyd iteration = one task per worker, not one per chunk: on a small machine a
    task costs the scheduler and the driver milliseconds each). Each task's arguments are the
    persisted chunks' futures and the centres inline, so a task lost with its worker is rerun
    elsewhere, its chunks recomputed from their lineage. The chunk results come back one per
    chunk and the driver adds them in the same tree as without a cluster."""

    def __init__(self, X, w, compute):
        import dask

        self.x = list(X.to_delayed().ravel())
        self.w = [None] * len(self.x) if w is None else list(w.to_delayed().ravel())
        self.offsets = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]]).astype(np.int64)
        self.delayed = dask.delayed
        self.compute = compute
        self.client = _default_client()
        if self.client is not None:
            self._group_by_worker(X, w)

    def _group_by_worker(self, X, w):
        from distributed import futures_of, wait

        def chunk_futures(a):
            by_key = {f.key: f for f in futures_of(a)}
            return [by_key.get(d.key) for d in a.to_delayed().ravel()]

        xf = chunk_futures(X)
        wf = [None] * len(xf) if w is None else chunk_futures(w)
        if any(f is None for f in xf + [f for f in wf if w is not None]):
            self.client = None  # not persisted on this client: the per-chunk graph path
            return
        wait(xf)  # persist is asynchronous: the chunks have holders once computed
        holders = self.client.who_has(xf)
        groups = {}
        for i, f in enumerate(xf):
            groups.setdefault((holders.get(f.key) or (None,))[0], []).append(i)
        self.groups = list(groups.values())
        self.xf, self.wf = xf, wf

    def map(self, func, *args):
        d = self.delayed(func, pure=False)
        return [d(x, w, *args) for x, w in zip(self.x, self.w)]

    def results(self, func, *args):
        """[func(x, w, *args) for each chunk], in chunk order."""
        if self.client is None:
            return list(self.compute(*self.map(func, *args)))
        g = len(self.groups)
        # One graph submission for all groups; each task goes where its chunks are (the
        # scheduler places a task by the bytes of its inputs), no worker named.
        tasks = self.client.map(_chunks_apply, [func] * g,
                                [[self.xf[i] for i in idx] for idx in self.groups],
                                [[self.wf[i] for i in idx] for idx in self.groups],
                                *[[a] * g for a in args], pure=False)
        out = [None] * len(self.x)
        for idx, res in zip(self.groups, self.client.gather(tasks)):
            for i, r in zip(idx, res):
                out[i] = r
        return out

    def reduce(self, func, *args, combine=_add_partials):
        return _tree(self.results(func, *args), combine)


def _relocate_empty(chunks, sums, weight, centers):
    """Single-machine KMeans's rule, across chunks: each chunk sends its few candidate rows
    (_chunk_farthest) and the driver applies the rule itself to them. In global index order,
    the candidates keep the rule's order and each cluster's last point, so it takes the same
    rows, moves the same sums and weights. Returns a digest of each chunk's labels."""
    from gradkit.backends.ops_numpy import _kmeans_relocate_empty

    m = int(np.count_nonzero(weight == 0))
    found = chunks.compute(*[chunks.delayed(_chunk_farthest, pure=False)(x, w, centers, off, m)
                             for x, w, off in zip(chunks.x, chunks.w, chunks.offsets)])
    *found, digests = zip(*found)
    index, labels, rows, ws = (np.concatenate(col) for col in found)
    order = np.argsort(index)  # the rule breaks ties by position: make it the global index
    _kmeans_relocate_empty(sums, weight, rows[order], ws[order], centers, labels[order])
    return digests


def _lloyd(chunks, centers, max_iter, tol):
    """(centers, n_iter, the centres the final labels are the nearest of) of the Lloyd loop
    from `centers`. Single-machine KMeans also stops when no label changed, keeping the labels
    of that step's assignment (to the centres before it). Without relocation the centres then
    come out the same and the shift test stops there; after a relocation they may not (it
    depends on the centres too), so unchanged labels are told by the relocation pass's label
    digests, and the final labels stay those of the previous centres."""
    from gradkit.backends.ops_numpy import _kmeans_centers_from_sums

    digests = None  # of the previous iteration's labels, when it relocated
    for it in range(max_iter):
        sums, weight, _ = chunks.reduce(_chunk_partials, centers)
        previous, digests = digests, None
        if np.any(weight == 0):
            digests = _relocate_empty(chunks, sums, weight, centers)
        new, shift = _kmeans_centers_from_sums(sums, weight, centers)
        if digests is not None and digests == previous:
            return new, it + 1, centers  # no label changed
        centers = new
        if shift <= tol:
            break
    return centers, it + 1, centers


def _mean_variance(X, compute):
    import dask.array as da

    mean = da.mean(X, axis=0, dtype=np.float64)
    var = da.mean((X - mean) ** 2, axis=0)  # float64, as np.var of float32 X in kmeans
    return float(compute(da.mean(var))[0])


def _rows(X, indices, compute):
    """X[indices] in the order given (a small gather of a few rows)."""
    order = np.argsort(indices, kind="stable")
    picked = compute(X[np.sort(indices)])[0]
    out = np.empty_like(picked)
    out[order] = picked
    return out


def _draw_rows(n, size, w, random_state, compute):
    """`size` distinct row indices drawn with probability w (uniform for w None), as
    single-machine KMeans draws its "random" init."""
    if w is None:
        return random_state.choice(n, size=size, replace=False)
    wv = compute(w)[0].astype(np.float64)  # n numbers, not X
    return random_state.choice(n, size=size, replace=False, p=wv / wv.sum())


def _kmeans_parallel(X, w, chunks, n_clusters, random_state):
    """k-means|| (Bahmani et al. 2012, as in Spark MLlib)."""
    from gradkit.cluster.kmeans import KMeans, kmeans_plusplus

    cands = _rows(X, _draw_rows(X.shape[0], 1, w, random_state, chunks.compute),
                  chunks.compute)
    for _ in range(_OVERSAMPLING_ROUNDS):
        cost = chunks.reduce(_chunk_cost, cands, combine=_sum)
        if cost <= 0:
            break  # every row sits on a candidate
        scale = _OVERSAMPLING * n_clusters / cost
        seeds = random_state.randint(0, 2**31 - 1, size=len(chunks.x))
        drawn = chunks.compute(*[chunks.delayed(_chunk_oversample, pure=False)(x, wc, cands,
                                                                             scale, s)
                                 for x, wc, s in zip(chunks.x, chunks.w, seeds)])
        cands = np.concatenate([cands, *drawn])
    cands = np.unique(cands, axis=0)  # a row drawn twice is one candidate
    if cands.shape[0] < n_clusters:  # fewer distinct candidates than clusters: add rows
        extra = _rows(X, _draw_rows(X.shape[0], n_clusters, w, random_state, chunks.compute),
                      chunks.compute)
        cands = np.concatenate([cands, extra])
    weight = chunks.reduce(_chunk_candidate_weights, cands, combine=_sum).astype(X.dtype)
    cw = np.ascontiguousarray(cands)
    centers, _ = kmeans_plusplus(cw, n_clusters, sample_weight=weight,
                                 random_state=random_state)
    local = KMeans(n_clusters, init=centers, n_init=1, max_iter=_LOCAL_LLOYD_ITER, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate candidates: fewer distinct clusters is fine
        local.fit(cw, sample_weight=weight)
    return np.ascontiguousarray(local.cluster_centers_, dtype=X.dtype)


def kmeans_plusplus_sample(X, n_clusters, *, sample_size=None, sample_weight=None,
                           random_state=None):
    """k-means++ on a uniform sample of the rows of the dask array X (weighted by sample_weight
    when given): centres (n_clusters, n_features), what KMeans(init="k-means++") starts from on
    dask input. sample_size defaults to max(10,000, 100 n_clusters) rows, capped at X's rows.
    Only the sample is gathered."""
    from sklearn.utils import check_random_state

    X = check_dask_matrix(X)
    w = None if sample_weight is None else check_row_chunks(sample_weight, X, "sample_weight")
    return _plusplus_on_sample(X, w, n_clusters, sample_size, check_random_state(random_state),
                               _compute_function())


def _plusplus_on_sample(X, w, n_clusters, sample_size, random_state, compute):
    from gradkit.cluster.kmeans import kmeans_plusplus

    n = X.shape[0]
    size = min(n, max(_SAMPLE_ROWS, 100 * n_clusters) if sample_size is None
               else int(sample_size))
    if size < n_clusters:
        raise ValueError(f"sample_size={size} must be >= n_clusters={n_clusters}")
    idx = np.sort(random_state.choice(n, size=size, replace=False))
    if w is None:
        sample, sw = compute(X[idx])[0], None
    else:
        sample, sw = compute(X[idx], w[idx])
        sw = np.ascontiguousarray(sw, dtype=X.dtype)
        if not sw.any():
            raise ValueError(f"sample_weight is zero on all {size} sampled rows: k-means++ "
                             f"on a sample needs weighted rows there; use init='k-means||'")
    return kmeans_plusplus(np.ascontiguousarray(sample), n_clusters, sample_weight=sw,
                           random_state=random_state)[0]


def _compute_function():
    import dask

    return dask.compute


def _check_params(est, X):
    k = est.n_clusters
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"n_clusters={k!r} must be an int >= 1")
    if k > X.shape[0]:
        raise ValueError(f"n_clusters={k} must be <= n_samples={X.shape[0]}")
    init = est.init
    if isinstance(init, str):
        if init not in ("auto", "k-means||", "k-means++", "random"):
            raise ValueError(f"init={init!r} must be 'auto', 'k-means||', 'k-means++', 'random' "
                             f"or an array for dask input")
        if init == "auto":
            init = "k-means||"
    else:
        init = np.asarray(init)
        if init.shape != (k, X.shape[1]):
            raise ValueError(f"init has shape {init.shape}; it must be (n_clusters, n_features) "
                             f"= {(k, X.shape[1])}")
        init = np.ascontiguousarray(init, dtype=X.dtype)
        if not np.isfinite(init).all():
            raise ValueError("init must be finite")
    n_init = est.n_init
    if n_init == "auto":
        n_init = 10 if isinstance(init, str) and init == "random" else 1
    elif isinstance(n_init, bool) or not isinstance(n_init, numbers.Integral) or n_init < 1:
        raise ValueError(f"n_init={n_init!r} must be 'auto' or an int >= 1")
    if isinstance(init, np.ndarray) and n_init != 1:
        warnings.warn(f"Explicit initial center position passed: performing only one init "
                      f"in KMeans instead of n_init={n_init}.", RuntimeWarning, stacklevel=4)
        n_init = 1
    if isinstance(est.max_iter, bool) or not isinstance(est.max_iter, numbers.Integral) \
            or est.max_iter < 1:
        raise ValueError(f"max_iter={est.max_iter!r} must be an int >= 1")
    if not isinstance(est.tol, numbers.Real) or not 0 <= est.tol < np.inf:
        raise ValueError(f"tol={est.tol!r} must be a finite number >= 0")
    return init, n_init


def fit(est, X, sample_weight=None):
    """KMeans.fit for a dask array X (and sample_weight: None, or row-chunked like X)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.utils import check_random_state

    X = check_dask_matrix(X)
    init, n_init = _check_params(est, X)
    compute = _compute_function()
    w = _check_weights(sample_weight, X, compute)
    Xp, wp = X.persist(), None if w is None else w.persist()
    try:
        chunks = _Chunks(Xp, wp, compute)
        variance = _mean_variance(Xp, compute)
        if not np.isfinite(variance):
            raise ValueError("X must not contain NaN or infinity")
        tol = est.tol * variance if est.tol > 0 else 0.0
        rs = check_random_state(est.random_state)
        best = None
        for _ in range(n_init):
            if isinstance(init, np.ndarray):
                centers0 = init
            elif init == "random":
                centers0 = _rows(Xp, _draw_rows(X.shape[0], est.n_clusters, wp, rs, compute),
                                 compute)
            elif init == "k-means++":
                centers0 = _plusplus_on_sample(Xp, wp, est.n_clusters, None, rs, compute)
            else:
                centers0 = _kmeans_parallel(Xp, wp, chunks, est.n_clusters, rs)
            centers0 = np.ascontiguousarray(centers0, dtype=X.dtype)
            centers, n_iter, assigned = _lloyd(chunks, centers0, est.max_iter, tol)
            weight, inertia = chunks.reduce(_chunk_final, centers, assigned,
                                            combine=_add_final)
            # A later run wins on an inertia lower by more than rounding (the same clustering
            # reached again keeps the first, as single-machine KMeans decides).
            if best is None or inertia < best[1] * (1 - _SAME_INERTIA):
                best = (centers, inertia, n_iter, weight, assigned)
    finally:
        del Xp, wp
    centers, inertia, n_iter, weight, assigned = best
    distinct = int(np.count_nonzero(weight))
    if distinct < est.n_clusters:
        warnings.warn(f"Number of distinct clusters ({distinct}) found smaller than "
                      f"n_clusters ({est.n_clusters}). Possibly due to duplicate points "
                      "in X.", ConvergenceWarning, stacklevel=3)
    est.cluster_centers_ = centers
    est._n_features_out = centers.shape[0]
    est.n_features_in_ = X.shape[1]
    est.inertia_ = float(inertia)
    est.n_iter_ = int(n_iter)
    est.labels_ = _predict(X, assigned)  # lazy: the final assignment, computed on demand
    return est


# ---------------------------------------------------------------- a fitted model


def _predict(X, centers):
    return X.map_blocks(_labels, centers, dtype=np.int32, drop_axis=1, chunks=(X.chunks[0],))


def _distances(x, centers):
    from gradkit.cluster.kmeans import KMeans

    km = KMeans(centers.shape[0])
    km.cluster_centers_ = centers
    return km._transform(x)


def _fitted_centers(est, X):
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(est)
    X = check_dask_matrix(X, n_features=est.n_features_in_)
    return X, np.ascontiguousarray(est.cluster_centers_, dtype=X.dtype)


def predict(est, X):
    """Labels of the rows of a dask array X, as a lazy int32 dask array chunked like X."""
    X, centers = _fitted_centers(est, X)
    return _predict(X, centers)


def transform(est, X):
    """Distances to every centre, as a lazy (n, n_clusters) dask array chunked like X's rows."""
    X, centers = _fitted_centers(est, X)
    return X.map_blocks(_distances, centers, dtype=X.dtype,
                        chunks=(X.chunks[0], (centers.shape[0],)))
