"""The per-chunk kernel of k-means on Dask (_core.kmeans_chunk_partials), without a cluster:
labels, cluster sums, weights and inertia from one pass, checked against the single-machine
kernels (kmeans_assign, kmeans_lloyd_step) and against sums written plainly in numpy."""
from __future__ import annotations

import numpy as np
import pytest

from gradkit import _core

# Rows enough for several of the kernel's fixed internal chunks (4096 rows at least each).
N, D, K = 13_000, 7, 9


def _data(dtype, weighted, seed=0):
    rng = np.random.default_rng(seed)
    X = (rng.normal(scale=3.0, size=(K, D))[rng.integers(0, K, N)]
         + rng.normal(size=(N, D))).astype(dtype)
    centers = X[rng.choice(N, K, replace=False)].copy()
    w = rng.uniform(0.2, 2.0, N).astype(dtype) if weighted else None
    return X, w, centers


@pytest.mark.parametrize("weighted", [False, True], ids=["unit", "weighted"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_partials_match_the_assignment_and_plain_sums(dtype, weighted):
    X, w, centers = _data(dtype, weighted)
    sums, weight, inertia, labels = _core.kmeans_chunk_partials(X, w, centers)
    ref_labels = np.empty(N, dtype=np.int32)
    ref_inertia = _core.kmeans_assign(X, w, centers, ref_labels, 1)
    np.testing.assert_array_equal(labels, ref_labels)
    assert inertia == ref_inertia  # the same tile, the same chunk order
    w64 = np.ones(N) if w is None else w.astype(np.float64)
    ref_weight = np.bincount(labels, weights=w64, minlength=K)
    ref_sums = np.zeros((K, D))
    np.add.at(ref_sums, labels, w64[:, None] * X.astype(np.float64))
    rtol = 1e-12 if dtype == np.float64 else 1e-5  # float32 sums per block of rows, as Lloyd's
    np.testing.assert_allclose(weight, ref_weight, rtol=1e-12)
    np.testing.assert_allclose(sums, ref_sums, rtol=rtol, atol=rtol * np.abs(ref_sums).max())
    diff = X.astype(np.float64) - centers[labels].astype(np.float64)
    assert inertia == pytest.approx(float(w64 @ np.einsum("ij,ij->i", diff, diff)),
                                    rel=1e-9 if dtype == np.float64 else 1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_centres_from_partials_are_single_machine_lloyds_bit_for_bit(dtype):
    """The whole X as one chunk: the driver's centres (sums / weight) are exactly the centres of
    one single-machine Lloyd step (the same pass, sums and order)."""
    X, w, centers = _data(dtype, True, seed=1)
    sums, weight, _, labels = _core.kmeans_chunk_partials(X, w, centers)
    assert np.all(weight > 0)  # no relocation: that is the driver's, across chunks
    new = (sums * (1.0 / weight)[:, None]).astype(dtype)
    step_new, step_labels = np.empty_like(centers), np.full(N, -1, dtype=np.int32)
    _core.kmeans_lloyd_step(X, w, centers, step_new, step_labels, 2)
    np.testing.assert_array_equal(labels, step_labels)
    np.testing.assert_array_equal(new, step_new)


def test_empty_chunk_and_bad_arguments():
    X, _, centers = _data(np.float64, False)
    sums, weight, inertia, labels = _core.kmeans_chunk_partials(X[:0], None, centers)
    assert not sums.any() and not weight.any() and inertia == 0 and labels.shape == (0,)
    with pytest.raises(ValueError, match="centers columns"):
        _core.kmeans_chunk_partials(X, None, centers[:, :3].copy())
    with pytest.raises(ValueError, match="sample_weight length"):
        _core.kmeans_chunk_partials(X, np.ones(5), centers)
    with pytest.raises(TypeError):
        _core.kmeans_chunk_partials(X, np.ones(N, dtype=np.float32), centers)
