"""Standalone timing of one Lloyd iteration: gradkit vs scikit-learn in the same run.

    OMP_NUM_THREADS=1 PYTHONPATH=src python bench/lloyd_iter.py [--threads 1 2] [--repeats 9]

Prints per case and thread count the median wall time in ms, [the minimum] and {the median
process CPU time}: on a shared machine the CPU time of a 1-thread run is the steadier figure
(it leaves out the time the process waited for a core); for 2 threads it counts both threads.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

import gradkit as gk
from gradkit import backends

FASHION = Path("/usr/share/datasets/fashion-mnist")


def data(case):
    if case.startswith("100k"):
        from sklearn.datasets import make_blobs
        X, _ = make_blobs(n_samples=100_000, n_features=50, centers=100, cluster_std=5.0,
                          random_state=0)
        return np.ascontiguousarray(X, dtype=np.float32)
    return gk.datasets.load_mnist(FASHION, kind="train")[0]


class Timing:
    def __init__(self, wall, cpu):
        self.median = 1e3 * statistics.median(wall)
        self.min = 1e3 * min(wall)
        self.cpu = 1e3 * statistics.median(cpu)

    def __str__(self):
        return f"{self.median:7.2f} [{self.min:7.2f}] {{{self.cpu:7.2f}}} ms"


def timeit(fn, repeats):
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return Timing(wall, cpu)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--cases", nargs="+", default=["100k:100", "60k:10", "60k:256"])
    ap.add_argument("--no-sklearn", action="store_true")
    args = ap.parse_args()
    from sklearn.cluster._k_means_lloyd import lloyd_iter_chunked_dense
    from threadpoolctl import threadpool_limits
    ops = backends.load("cpp")
    cache = {}
    for case in args.cases:
        name, k = case.split(":")
        k = int(k)
        if name not in cache:
            cache[name] = data(name)
        X = cache[name]
        n, d = X.shape
        centers = X[np.random.default_rng(1).choice(n, k, replace=False)].copy()
        for threads in args.threads:
            gk.set_num_threads(threads)
            labels = np.full(n, -1, np.int32)
            ref = ops.kmeans_lloyd_step(X, None, centers, labels, threads)
            t_gk = timeit(lambda: ops.kmeans_lloyd_step(X, None, centers, labels, threads),
                          args.repeats)
            line = f"{n // 1000}k x {d} k={k:<3d} threads={threads}: gradkit {t_gk}"
            if not args.no_sklearn:
                w = np.ones(n, dtype=X.dtype)
                new = np.empty_like(centers)
                weight = np.zeros(k, dtype=X.dtype)
                sl = np.full(n, -1, np.int32)
                shift = np.zeros(k, dtype=X.dtype)

                def sk():
                    with threadpool_limits(limits=1, user_api="blas"):
                        lloyd_iter_chunked_dense(X, w, centers, new, weight, sl, shift, threads)
                t_sk = timeit(sk, args.repeats)
                agree = np.mean(sl == labels)
                line += (f"   sklearn {t_sk}   ratio {t_sk.median / t_gk.median:4.2f}x"
                         f" (cpu {t_sk.cpu / t_gk.cpu:4.2f}x)  labels agree {agree:.5f}")
            print(line, flush=True)


if __name__ == "__main__":
    main()
