"""One implementation per process, for the README's training table: the peers' threads and
caches never meet gradkit's (bench/train_timing.py interleaves them in one process, where
whoever runs after JAX or PyTorch pays for their spinning threads and cold caches).

    OMP_NUM_THREADS=1 taskset -c 0 python bench/peer_timing.py cpp-fused standardized 32,128,512
    XLA_FLAGS=--xla_cpu_multi_thread_eigen=false taskset -c 0 python bench/peer_timing.py jax raw 32
    OMP_NUM_THREADS=2 python bench/peer_timing.py torch standardized 128
    OMP_NUM_THREADS=1 taskset -c 0 python bench/peer_timing.py jax tiny     # or gd

Implementations as in bench/test_bench_train.py (torch, jax, cpp-fused, numba-fused, cpp-layers);
pixels "raw" or "standardized" (784-256-10 on Fashion-MNIST, SGD momentum 0.9), or "tiny"
(2-3-1, batch 1, 1,000 steps per fit) or "gd" (full-batch GD 500x3, 200 steps per fit).
Threads: OMP_NUM_THREADS for every library. Prints the median of REPEATS (default 3) timed
calls after a warm-up, and the last loss (the same batch order and weights for every library).
"""
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import test_bench_train as TB  # noqa: E402

from gradkit import losses, nn, optim  # noqa: E402


def small_case(impl, what):
    if what == "tiny":
        rng = np.random.default_rng(1)
        X = rng.uniform(-1, 1, (1000, 2)).astype(np.float32)
        y = (np.sin(X[:, :1] * 2) * X[:, 1:]).astype(np.float32)
        model = nn.Sequential(nn.Linear(2, 3, seed=0), nn.Sigmoid(), nn.Linear(3, 1, seed=1))
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.0)
        return TB._runner(impl, model, losses.MSELoss(), opt, X, y, 1)
    X, y = TB.watermelon_like()
    model = nn.Sequential(nn.Linear(3, 1, seed=0))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.0)
    return TB._runner(impl, model, losses.MSELoss(), opt, X, y, 500, shuffle=False, epochs=200)


def epoch_case(impl, pixels, batch):
    X, y, _, lr = TB.epoch_data(pixels)
    model = nn.Sequential(nn.Linear(784, 256, seed=0), nn.ReLU(), nn.Linear(256, 10, seed=1))
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    return TB._runner(impl, model, losses.CrossEntropyLoss(), opt, X, y, batch)


def timed(run, repeats):
    run()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main():
    impl, what = sys.argv[1], sys.argv[2]
    threads = TB.THREADS
    if impl == "torch":
        TB._torch().set_num_threads(threads)
    if what in ("tiny", "gd"):
        run, last = small_case(impl, what)
        seconds = timed(run, int(os.environ.get("REPEATS", "50")))
        print(f"{impl} {what} threads={threads}: {1e3 * seconds:.3f} ms  loss {last():.5f}")
        return
    for batch in (int(b) for b in sys.argv[3].split(",")):
        run, last = epoch_case(impl, what, batch)
        seconds = timed(run, int(os.environ.get("REPEATS", "3")))
        print(f"{impl} {what} threads={threads} batch={batch}: {seconds:.3f} s  "
              f"loss {last():.4f}", flush=True)


if __name__ == "__main__":
    main()
