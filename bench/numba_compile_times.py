"""First-use compile time of every Numba op, with an empty cache: one fresh process per op and
path, NUMBA_CACHE_DIR pointing at a new temporary folder, timing the op's first call (the
backend is already imported, so `import numba` is not counted). Wall and CPU seconds: on a
shared machine the wall time grows with the load, the CPU time much less. Issue #10 asks for at most 10 s.

    PYTHONPATH=src python bench/numba_compile_times.py [op ...]

"small" inputs take the serial kernels; "large" ones (above the parallel threshold) the
parallel ones, a separate compile. The cases are those of tests/test_backends.py (float32).
"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
LIMIT = 10.0  # seconds

CHILD = r"""
import sys, time
import numpy as np
sys.path.insert(0, {root!r})
sys.path.insert(0, {root!r} + '/tests')  # test_backends imports its neighbours
from gradkit import backends
from tests.test_backends import CASES, _rng, _copy
ops = backends.load("numba")
op, size = sys.argv[1], sys.argv[2]
if op == "mlp_epoch":
    rng = _rng(op)
    X = rng.standard_normal((256, 20)).astype(np.float32)
    y = rng.integers(0, 10, 256).astype(np.int64)
    ws = [rng.standard_normal((32, 20)).astype(np.float32), rng.standard_normal((10, 32)).astype(np.float32)]
    bs = [np.zeros(32, np.float32), np.zeros(10, np.float32)]
    args = (ws, bs, [np.zeros_like(w) for w in ws], [np.zeros_like(b) for b in bs], ["relu", "none"],
            0.01, "cross_entropy", "mean", False, X, y, np.arange(256), 32, 0, 8, 0.1, 0.9, 0.0,
            False, 0.0, True, np.zeros(8))
else:
    args = _copy(CASES[op](_rng(op), np.float32, size)[0])
t, cpu = time.perf_counter(), time.process_time()
getattr(ops, op)(*args)
print(time.perf_counter() - t, time.process_time() - cpu)
"""


def first_use(op, size):
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=os.path.join(ROOT, "src"))
        out = subprocess.run([sys.executable, "-c", CHILD.format(root=ROOT), op, size], env=env,
                             capture_output=True, text=True, check=True, cwd=ROOT)
        wall, cpu = out.stdout.split()[-2:]
        return float(wall), float(cpu)


def main():
    sys.path.insert(0, os.path.join(ROOT, "src"))
    from gradkit.backends import _spec

    ops = sys.argv[1:] or _spec.ops_of("numba")
    worst = (0.0, "")
    for op in ops:
        sizes = ["small"] if op.startswith(("kmeans", "mlp", "matmul", "linear", "softmax")) \
            else ["small", "large"]
        for size in sizes:
            seconds, cpu = first_use(op, size)
            worst = max(worst, (seconds, f"{op} ({size})"))
            flag = "  OVER" if seconds > LIMIT else ""
            print(f"{op:<24} {size:<6} {seconds:6.2f} s wall {cpu:6.2f} s cpu{flag}", flush=True)
    print(f"worst: {worst[1]} {worst[0]:.2f} s wall (limit {LIMIT:.0f} s)")


if __name__ == "__main__":
    main()
