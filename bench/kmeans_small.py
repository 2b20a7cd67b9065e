"""Standalone timing of the whole tiny fit (1,000 x 2, k=8) and of k-means++ seeding
(100k x 50, k=100, float32), gradkit beside scikit-learn in the same run.

    OMP_NUM_THREADS=1 PYTHONPATH=src python bench/kmeans_small.py tiny
    OMP_NUM_THREADS=2 PYTHONPATH=src python bench/kmeans_small.py plusplus

Threads come from OMP_NUM_THREADS (gradkit and scikit-learn alike). Each figure is the median
of 9 repeats, as wall time and as process CPU time: on a shared machine the 1-thread CPU time
is the steady one. Results are checked against scikit-learn before anything is timed.
"""
from __future__ import annotations

import statistics
import sys
import time

import numpy as np
from sklearn.cluster import KMeans as SkKMeans
from sklearn.cluster import kmeans_plusplus as sk_kmeans_plusplus
from sklearn.datasets import make_blobs

from gradkit.cluster import KMeans, kmeans_plusplus


def median_times(fn, inner, repeats=9):
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        for _ in range(inner):
            fn()
        wall.append((time.perf_counter() - t) / inner)
        cpu.append((time.process_time() - c) / inner)
    return statistics.median(wall), statistics.median(cpu)


def line(what, unit, scale, ours, theirs):
    return (f"{what}: gradkit {ours[0] * scale:8.1f} {unit} wall ({ours[1] * scale:8.1f} cpu)  "
            f"scikit-learn {theirs[0] * scale:8.1f} {unit} wall ({theirs[1] * scale:8.1f} cpu)  "
            f"ratio {theirs[1] / ours[1]:5.1f}x (cpu)")


def tiny():
    X64, _ = make_blobs(n_samples=1000, n_features=2, centers=8, random_state=0)
    for X in (X64.astype(np.float32), X64):
        ours, ref = KMeans(8, random_state=0).fit(X), SkKMeans(8, random_state=0).fit(X)
        assert ours.n_iter_ == ref.n_iter_
        np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=1e-5)
        print(line(f"fit 1000 x 2 k=8 {X.dtype}", "us", 1e6,
                   median_times(lambda: KMeans(8, random_state=0).fit(X), 200),
                   median_times(lambda: SkKMeans(8, random_state=0).fit(X), 10)))


def plusplus():
    X, _ = make_blobs(n_samples=100_000, n_features=50, centers=100, cluster_std=5.0,
                      random_state=0)
    X = np.ascontiguousarray(X, dtype=np.float32)
    ours, _ = kmeans_plusplus(X, 100, random_state=0)
    theirs, _ = sk_kmeans_plusplus(X, 100, random_state=0)
    seeded = KMeans(100, init=ours, max_iter=1).fit(X).inertia_
    assert seeded <= 1.1 * KMeans(100, init=theirs, max_iter=1).fit(X).inertia_
    print(line("k-means++ 100k x 50 k=100 float32", "ms", 1e3,
               median_times(lambda: kmeans_plusplus(X, 100, random_state=0), 1, 7),
               median_times(lambda: sk_kmeans_plusplus(X, 100, random_state=0), 1, 3)))


if __name__ == "__main__":
    for name in sys.argv[1:] or ["tiny", "plusplus"]:
        {"tiny": tiny, "plusplus": plusplus}[name]()
