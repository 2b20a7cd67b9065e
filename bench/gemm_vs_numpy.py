"""float32 GEMM, gradkit's kernel against numpy's BLAS on the same operands, interleaved:

    PYTHONPATH=src taskset -c 0 python bench/gemm_vs_numpy.py 1     # threads
    PYTHONPATH=src python bench/gemm_vs_numpy.py 2

Median of 7 rounds; every product is checked against numpy's.
"""
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

from gradkit import _core

REPEATS = {256: 30, 1024: 3, 2048: 1}


def median_seconds(f, reps, rounds=7):
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(reps):
            f()
        times.append((time.perf_counter() - t) / reps)
    return float(np.median(times))


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    _core.set_num_threads(threads)
    rng = np.random.default_rng(0)
    for n, reps in REPEATS.items():
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        ours, theirs = np.empty((n, n), np.float32), np.empty((n, n), np.float32)
        with threadpool_limits(threads, user_api="blas"):
            t_gk = median_seconds(lambda: _core.matmul(a, b, False, False, ours, False), reps)
            t_np = median_seconds(lambda: np.matmul(a, b, out=theirs), reps)
        np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-2)
        flops = 2.0 * n ** 3
        print(f"threads={threads} {n}^3: gradkit {flops / t_gk / 1e9:.1f} GFLOP/s, numpy "
              f"{flops / t_np / 1e9:.1f} GFLOP/s, gradkit/numpy speed {t_np / t_gk:.2f}x",
              flush=True)


if __name__ == "__main__":
    main()
