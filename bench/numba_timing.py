"""Standalone timing of gk.fit's fused Numba path against the fused C++ path, interleaved in
one process (median of REPEATS fits each, the two backends alternating), quicker than the
pytest-benchmark file while iterating on the Numba epoch (backends/numba/mlp.py):

    OMP_NUM_THREADS=1 REPEATS=15 python bench/numba_timing.py tiny gd 128

Arguments: "tiny" (2-3-1, batch 1, 1000 steps per fit), "gd" (full-batch GD 500x3, 200 steps
per fit) and batch sizes of the 784-256-10 Fashion-MNIST epoch (REPEATS is capped at 3 there).
Issue #3 asks for the Numba epoch within 2x of the C++ one.
"""
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))
sys.path.insert(0, HERE)
import gradkit as gk  # noqa: E402
from gradkit import losses, nn, optim  # noqa: E402
from test_bench_train import fashion_train, watermelon_like  # noqa: E402

T = int(os.environ.get("OMP_NUM_THREADS", "1"))
R = int(os.environ.get("REPEATS", "15"))
gk.set_num_threads(T)


def tiny():
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, (1000, 2)).astype(np.float32)
    y = (np.sin(X[:, :1] * 2) * X[:, 1:]).astype(np.float32)
    model = nn.Sequential(nn.Linear(2, 3, seed=0), nn.Sigmoid(), nn.Linear(3, 1, seed=1))
    return model, losses.MSELoss(), 0.1, 0.0, X, y, dict(epochs=1, batch_size=1)


def gd():
    X, y = watermelon_like()
    model = nn.Sequential(nn.Linear(3, 1, seed=0))
    return model, losses.MSELoss(), 0.1, 0.0, X, y, dict(epochs=200, batch_size=500,
                                                         shuffle=False)


def epoch(batch):
    X, y, _ = fashion_train()
    model = nn.Sequential(nn.Linear(784, 256, seed=0), nn.ReLU(), nn.Linear(256, 10, seed=1))
    return model, losses.CrossEntropyLoss(), 0.1, 0.9, X, y, dict(epochs=1, batch_size=batch)


def fits(make):
    """A zero-argument fit per backend, each on its own copy of the model."""
    out = {}
    for backend in ("cpp", "numba"):
        model, loss_fn, lr, mom, X, y, kw = make()
        opt = optim.SGD(model.parameters(), lr=lr, momentum=mom)

        def run(backend=backend, model=model, loss_fn=loss_fn, opt=opt, X=X, y=y, kw=kw):
            with gk.use_backend(backend):
                gk.fit(model, loss_fn, opt, X, y, progress=False, fused=True, **kw)
        run()  # compile / warm up
        out[backend] = run
    return out


for arg in sys.argv[1:] or ["tiny", "gd"]:
    make = {"tiny": tiny, "gd": gd}.get(arg) or (lambda b=int(arg): epoch(b))
    reps = R if arg in ("tiny", "gd") else min(R, 3)
    runs = fits(make)
    times = {b: [] for b in runs}
    for _ in range(reps):
        for b, run in runs.items():
            t0 = time.perf_counter()
            run()
            times[b].append(time.perf_counter() - t0)
    c, n = (statistics.median(times[b]) * 1e6 for b in ("cpp", "numba"))
    print(f"{arg:>5} threads={T}: cpp {c:9.1f} us  numba {n:9.1f} us  numba/cpp {n / c:.2f}")
