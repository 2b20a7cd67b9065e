"""The C++ backend: adapts gradkit._core (pybind11) to the backend contract in
``gradkit.backends``. Arrays arrive validated and C-contiguous; _core refuses anything else."""
from __future__ import annotations

import numpy as np

from gradkit import _core


# ---- k-means


def kmeans_lloyd_step(X, sample_weight, centers, labels, n_threads=1):
    centers_new = np.empty_like(centers)
    n_changed, shift, inertia, _ = _core.kmeans_lloyd_step(X, sample_weight, centers,
                                                            centers_new, labels, n_threads)
    return centers_new, n_changed, shift, inertia


def kmeans_assign(X, sample_weight, centers, n_threads=1):
    labels = np.empty(X.shape[0], dtype=np.int32)
    inertia = _core.kmeans_assign(X, sample_weight, centers, labels, n_threads)
    return labels, inertia


def kmeans_inertia(X, sample_weight, centers, labels, n_threads=1):
    return _core.kmeans_inertia(X, sample_weight, centers, labels, n_threads)


def kmeans_lloyd(X, sample_weight, centers_init, max_iter, tol, n_threads=1):
    centers = centers_init.copy()
    labels = np.empty(X.shape[0], dtype=np.int32)
    inertia, n_iter = _core.kmeans_lloyd(X, sample_weight, centers, labels, max_iter, tol,
                                         n_threads)
    return centers, labels, inertia, n_iter


def kmeans_plusplus(X, sample_weight, n_clusters, n_local_trials, uniforms, n_threads=1):
    return _core.kmeans_plusplus(X, sample_weight, n_clusters, n_local_trials, uniforms,
                                 n_threads)
