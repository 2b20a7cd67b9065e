"""GEMM throughput: gradkit's backends against numpy's matmul (OpenBLAS), float32 and float64.

Run through bench/run_all.sh (1 and 2 threads, OpenBLAS as installed and as SkylakeX), or:
    OMP_NUM_THREADS=1 PYTHONPATH=src python -m pytest bench/test_bench_gemm.py \
        --benchmark-json=bench/results/gemm.json
"""
from __future__ import annotations

import numpy as np
import pytest

# (M, N, K, dtype): a dense layer on MNIST-sized input, cubes, and float64.
CASES = [
    (128, 784, 256, np.float32),
    (256, 256, 256, np.float32),
    (1024, 1024, 1024, np.float32),
    (256, 256, 256, np.float64),
]
IMPLS = ["cpp", "numba", "cython", "numpy"]


def _case_id(case):
    m, n, k, dtype = case
    return f"{np.dtype(dtype).name}-{m}x{n}x{k}"




@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_gemm(benchmark, case, impl, rng, record, add_rates, backend_function):
    m, n, k, dtype = case
    matmul = np.matmul if impl == "numpy" else backend_function(impl, "matmul")
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)

    ref = a.astype(np.float64) @ b.astype(np.float64)
    got = matmul(a, b)
    assert got.dtype == dtype and got.shape == (m, n)
    bound = 2 * k * np.finfo(dtype).eps * (np.abs(a).astype(np.float64) @ np.abs(b))
    assert np.all(np.abs(got - ref) <= bound)

    benchmark.group = f"gemm {np.dtype(dtype).name} {m}x{n}x{k}"
    record(benchmark, impl, flops=2.0 * m * n * k)
    benchmark(matmul, a, b)
    add_rates(benchmark)
