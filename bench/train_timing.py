"""Standalone timing of gk.fit's fused C++ path against PyTorch, interleaved in one process
(median of REPEATS runs each), quicker than the pytest-benchmark file while iterating:

    OMP_NUM_THREADS=1 REPEATS=7 python bench/train_timing.py 32 128 512 gd tiny

Arguments: batch sizes of the 784-256-10 Fashion-MNIST epoch (59,904 rows), "gd" (full-batch GD
500x3, 200 steps per fit) and "tiny" (2-3-1, batch 1, 1000 steps). STD=1 standardizes the pixels
(no zeros, lr 0.01); JAX=1 adds JAX (jit, the epoch one lax.scan; for one thread also set
XLA_FLAGS=--xla_cpu_multi_thread_eigen=false and run under taskset -c 0); GKSRC=path/to/src
times another checkout's gradkit.
"""
import os, sys, time, statistics
import numpy as np
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("GKSRC", os.path.join(HERE, "..", "src")))
import gradkit as gk
from gradkit import nn, optim, losses
T = int(os.environ.get("OMP_NUM_THREADS", "1"))
R = int(os.environ.get("REPEATS", "7"))
what = sys.argv[1:] or ["32", "128", "512", "gd", "tiny"]
import torch
sys.path.insert(0, HERE)
from test_bench_train import (_torch_copy, _torch_epoch, epoch_data, jax_epoch_runner,
                              watermelon_like)
torch.set_num_threads(T)
gk.set_num_threads(T)
X, y, _source, LR = epoch_data("standardized" if os.environ.get("STD") else "raw")
JAX = bool(os.environ.get("JAX"))
def case(model, loss_fn, tl, Xa, ya, batch, epochs, shuffle, lr, mom, r):
    opt = optim.SGD(model.parameters(), lr=lr, momentum=mom)
    tm = _torch_copy(torch, model)
    topt = torch.optim.SGD(tm.parameters(), lr=lr, momentum=mom)
    tX, ty = torch.from_numpy(Xa), torch.from_numpy(ya)
    rng = np.random.default_rng(0)
    out = {}
    def g():
        out["g"] = gk.fit(model, loss_fn, opt, Xa, ya, epochs=epochs, batch_size=batch, shuffle=shuffle, progress=False, fused=True).loss[-1]
    def t():
        for _ in range(epochs):
            out["t"] = _torch_epoch(torch, tm, topt, tl, tX, ty, batch, rng, shuffle)
    j = None
    if JAX:
        kind = "cross_entropy" if loss_fn.__class__.__name__ == "CrossEntropyLoss" else "mse"
        j, jl = jax_epoch_runner(model_copy(model), kind, lr, mom, Xa, ya, batch,
                                 shuffle=shuffle, epochs=epochs)
        j()
    g(); t()
    tg, tt, tj = [], [], []
    for _ in range(r):  # interleaved, so all see the same machine load (and cold caches)
        a = time.perf_counter(); g(); tg.append(time.perf_counter() - a)
        a = time.perf_counter(); t(); tt.append(time.perf_counter() - a)
        if j:
            a = time.perf_counter(); j(); tj.append(time.perf_counter() - a)
    out["j"] = statistics.median(tj) if tj else float("nan")
    return statistics.median(tg), statistics.median(tt), out
def model_copy(model):
    import copy
    return copy.deepcopy(model)
for w in what:
    if w == "gd":
        Xw, yw = watermelon_like()
        m = nn.Sequential(nn.Linear(3, 1, seed=0))
        g, t, o = case(m, losses.MSELoss(), torch.nn.functional.mse_loss, Xw, yw, 500, 200, False, 0.1, 0.0, max(R, 15))
        print(f"T={T} gd500x3 200 steps: gk {g*1e3:.3f} ms torch {t*1e3:.2f} ms  speedup {t/g:.1f}x  loss {o['g']:.5f}/{o['t']:.5f}", flush=True)
    elif w == "tiny":
        rng = np.random.default_rng(1)
        Xt = rng.uniform(-1, 1, (1000, 2)).astype(np.float32)
        yt = (np.sin(Xt[:, :1] * 2) * Xt[:, 1:]).astype(np.float32)
        m = nn.Sequential(nn.Linear(2, 3, seed=0), nn.Sigmoid(), nn.Linear(3, 1, seed=1))
        g, t, o = case(m, losses.MSELoss(), torch.nn.functional.mse_loss, Xt, yt, 1, 1, True, 0.1, 0.0, max(R, 11))
        print(f"T={T} tiny 2-3-1 1000 steps: gk {g*1e6:.0f} us torch {t*1e3:.1f} ms jax {o['j']*1e6:.0f} us  "
              f"speedup {t/g:.0f}x, jax/gk {o['j']/g:.2f}x", flush=True)
    else:
        b = int(w)
        m = nn.Sequential(nn.Linear(784, 256, seed=0), nn.ReLU(), nn.Linear(256, 10, seed=1))
        g, t, o = case(m, losses.CrossEntropyLoss(), torch.nn.functional.cross_entropy, X, y, b, 1, True, LR, 0.9, R)
        floor = 3 * 2 * X.shape[0] * (784 * 256 + 256 * 10) / 93.5e9 / T  # dense FLOPs at FMA peak
        print(f"T={T} epoch b={b} {'std' if os.environ.get('STD') else 'raw'}: gk {g:.3f} s "
              f"({floor / g * 100:.0f}% of peak) torch {t:.3f} s jax {o['j']:.3f} s  "
              f"gk/torch {g/t:.2f}x gk/jax {g/o['j']:.2f}x  loss {o['g']:.4f}/{o['t']:.4f}", flush=True)
