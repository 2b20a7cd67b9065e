"""k-means, with the contract of ops_numpy's k-means section (see _spec.py). Rows are split into
fixed chunks (their number depends on n only) with per-chunk partials reduced in chunk order:
results do not depend on the thread count. Empty-cluster relocation (rare) reuses the NumPy
reference."""
from __future__ import annotations

import numpy as np
from numba import prange

from gradkit.backends import ops_numpy as _ref
from gradkit.backends.numba._jit import kernel, op

_KM_MAX_CHUNKS = 16          # upper bound on row chunks (and on per-chunk partial arrays)
_KM_MIN_CHUNK_ROWS = 4096    # fewer rows than this per chunk is not worth a thread


def _km_chunks(n):
    return max(1, min(_KM_MAX_CHUNKS, -(-n // _KM_MIN_CHUNK_ROWS)))


@kernel(parallel=True)
def _km_pass(X, w, has_w, centers, cnorm, labels, update, sums, weight, stats):
    # stats[c] = (inertia, n_changed) of chunk c; sums/weight per chunk when update.
    n, d = X.shape
    k = centers.shape[0]
    chunks = stats.shape[0]
    for c in prange(chunks):
        for i in range(c * n // chunks, (c + 1) * n // chunks):
            best = np.inf
            arg = 0
            for j in range(k):
                dot = centers[j, 0] * 0
                for p in range(d):
                    dot += X[i, p] * centers[j, p]
                dist = cnorm[j] - 2 * dot
                if dist < best:
                    best = dist
                    arg = j
            wi = np.float64(w[i]) if has_w else 1.0
            if labels[i] != arg:
                stats[c, 1] += 1
            labels[i] = arg
            xx = 0.0
            for p in range(d):
                xv = np.float64(X[i, p])
                xx += xv * xv
                if update:
                    sums[c, arg, p] += wi * xv
            if update:
                weight[c, arg] += wi
            stats[c, 0] += wi * max(0.0, xx + np.float64(best))


@kernel(parallel=True)
def _km_inertia(X, w, has_w, centers, labels, chunks):
    n, d = X.shape
    part = np.zeros(chunks)
    for c in prange(chunks):
        acc = 0.0
        for i in range(c * n // chunks, (c + 1) * n // chunks):
            s = 0.0
            for p in range(d):
                diff = np.float64(X[i, p]) - np.float64(centers[labels[i], p])
                s += diff * diff
            acc += (np.float64(w[i]) if has_w else 1.0) * s
        part[c] = acc
    total = 0.0
    for c in range(chunks):
        total += part[c]
    return total


def _km_weights(X, sample_weight):
    if sample_weight is None:
        return np.empty(0, dtype=X.dtype), False
    return sample_weight, True


def _km_run_pass(X, sample_weight, centers, labels, update):
    n, d = X.shape
    k = centers.shape[0]
    chunks = _km_chunks(n)
    w, has_w = _km_weights(X, sample_weight)
    cnorm = np.einsum("ij,ij->i", centers, centers)
    sums = np.zeros((chunks, k, d) if update else (1, 1, 1))
    weight = np.zeros((chunks, k) if update else (1, 1))
    stats = np.zeros((chunks, 2))
    _km_pass(X, w, has_w, centers, cnorm, labels, update, sums, weight, stats)
    return sums, weight, stats


def _km_chunk_sum(parts):
    total = np.zeros(parts.shape[1:])
    for part in parts:  # chunk order
        total += part
    return total


@op("kmeans_lloyd_step")
def kmeans_lloyd_step(X, sample_weight, centers, labels, n_threads=1):
    sums, weight, stats = _km_run_pass(X, sample_weight, centers, labels, True)
    sums, weight, stats = _km_chunk_sum(sums), _km_chunk_sum(weight), _km_chunk_sum(stats)
    w = _ref._kmeans_weights(sample_weight, X.shape[0])
    _ref._kmeans_relocate_empty(sums, weight, X, w, centers, labels)
    centers_new, shift = _ref._kmeans_centers_from_sums(sums, weight, centers)
    return centers_new, int(stats[1]), shift, float(stats[0])


@op("kmeans_assign")
def kmeans_assign(X, sample_weight, centers, n_threads=1):
    labels = np.full(X.shape[0], -1, dtype=np.int32)
    _, _, stats = _km_run_pass(X, sample_weight, centers, labels, False)
    return labels, float(_km_chunk_sum(stats)[0])


@op("kmeans_inertia")
def kmeans_inertia(X, sample_weight, centers, labels, n_threads=1):
    w, has_w = _km_weights(X, sample_weight)
    return float(_km_inertia(X, w, has_w, centers, labels, _km_chunks(X.shape[0])))


@op("kmeans_lloyd")
def kmeans_lloyd(X, sample_weight, centers_init, max_iter, tol, n_threads=1):
    return _ref.kmeans_lloyd_loop(kmeans_lloyd_step, kmeans_assign, kmeans_inertia, X,
                                  sample_weight, centers_init, max_iter, tol, n_threads)


@kernel(parallel=True)
def _km_pp_sweep(X, sq, w, has_w, cand, closest, cnorm, update, pots):
    # pots[c, t] = sum over chunk c of w * min(closest, D^2(x, X[cand[t]])); when update,
    # closest takes that minimum (only called with one candidate then).
    n, d = X.shape
    chunks = pots.shape[0]
    for c in prange(chunks):
        for i in range(c * n // chunks, (c + 1) * n // chunks):
            wi = np.float64(w[i]) if has_w else 1.0
            for t in range(cand.shape[0]):
                dot = X[i, 0] * 0
                for p in range(d):
                    dot += X[i, p] * X[cand[t], p]
                dist = max(sq[i] + cnorm[t] - 2 * dot, 0)
                dist = min(dist, closest[i])
                if update:
                    closest[i] = dist
                pots[c, t] += wi * np.float64(dist)


# A few vectorised NumPy passes; nothing for a jitted loop to gain.
kmeans_mean_variance = _ref.kmeans_mean_variance


@op("kmeans_plusplus")
def kmeans_plusplus(X, sample_weight, n_clusters, n_local_trials, uniforms, n_threads=1):
    n = X.shape[0]
    chunks = _km_chunks(n)
    w, has_w = _km_weights(X, sample_weight)
    wf = _ref._kmeans_weights(sample_weight, n)
    sq = np.einsum("ij,ij->i", X, X)

    def sweep(cand, closest, update):
        pots = np.zeros((chunks, cand.shape[0]))
        _km_pp_sweep(X, sq, w, has_w, cand, closest, sq[cand], update, pots)
        return _km_chunk_sum(pots)

    def draw(mass, targets):
        return np.minimum(np.searchsorted(np.cumsum(mass), targets, side="left"), n - 1)

    indices = np.empty(n_clusters, dtype=np.int64)
    indices[0] = draw(wf, uniforms[0] * wf.sum())
    closest = np.full(n, np.inf, dtype=X.dtype)
    current = float(sweep(indices[:1], closest, True)[0])
    for c in range(1, n_clusters):
        u = uniforms[1 + (c - 1) * n_local_trials: 1 + c * n_local_trials]
        cand = draw(wf * closest, u * current).astype(np.int64)
        pots = sweep(cand, closest, False)
        best = int(np.argmin(pots))
        current = float(pots[best])
        indices[c] = cand[best]
        sweep(cand[best:best + 1].copy(), closest, True)
    return indices
