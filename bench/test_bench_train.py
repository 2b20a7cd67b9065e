"""Training speed: gradkit's fused whole-epoch path (C++ and Numba) and its layer-by-layer path
against PyTorch (same threads, same data, same initial weights), as the issue's targets ask.

- epoch of 784-256-10 (ReLU, softmax cross-entropy, SGD momentum 0.9) on Fashion-MNIST float32,
  the first 59,904 rows (whole batches of 32, 128 and 512; random data of the same shape when the
  files are absent): raw pixels in [0, 1] (about half exact zeros, lr 0.1) and standardized
  pixels (no zeros, lr 0.01), batch 32/128/512;
- tiny 2-3-1 network (sigmoid hidden layer, MSE), batch 1, 1,000 samples: one epoch per call;
- full-batch gradient descent on watermelon-like data (500 x 3, linear model, MSE): 200 steps
  per call.
Peers: PyTorch eager and JAX (jax.jit, the whole epoch one lax.scan; skipped without jax). For
one-thread JAX runs also set XLA_FLAGS=--xla_cpu_multi_thread_eigen=false and pin the process
(taskset -c 0). The first epoch of every implementation starts from the same weights and takes the
same batch order; its mean loss must match PyTorch's. The report's peer for these rows is torch:
    OMP_NUM_THREADS=1 PYTHONPATH=src python -m pytest bench/test_bench_train.py \
        --benchmark-json=bench/results/train-1t.json
    python bench/report.py bench/results/train-1t.json=1t --peer torch
"""
from __future__ import annotations

import os

import numpy as np
import pytest

import gradkit as gk
from gradkit import losses, nn, optim

FASHION = "/usr/share/datasets/fashion-mnist"
THREADS = int(os.environ.get("OMP_NUM_THREADS", "1") or 1)
EPOCH_IMPLS = ["torch", "jax", "cpp-fused", "numba-fused", "cpp-layers"]
TINY_IMPLS = ["torch", "jax", "cpp-fused", "numba-fused"]
ROWS = 59904  # whole batches of 32, 128 and 512: every peer runs the same steps
# Mean loss of the first epoch against PyTorch's from the same weights and batch order: float32
# sums in another order drift apart over 1,872 momentum steps, by well under this much.
LOSS_RTOL = 0.03


_DATA = {}


def fashion_train():
    if "train" not in _DATA:
        if os.path.isdir(FASHION):
            X, y = gk.datasets.load_mnist(FASHION, kind="train")
            _DATA["train"] = (X, y, "fashion-mnist")
        else:
            rng = np.random.default_rng(0)
            _DATA["train"] = (rng.random((60000, 784), dtype=np.float32),
                              rng.integers(0, 10, 60000), "random")
    return _DATA["train"]


def fashion_standardized():
    """Each pixel standardized over the training rows (constant pixels left at 0): no zeros."""
    if "std" not in _DATA:
        X, y, source = fashion_train()
        mean = X.mean(axis=0, dtype=np.float64)
        std = X.std(axis=0, dtype=np.float64)
        Xs = ((X - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)
        _DATA["std"] = (Xs, y, source + " standardized")
    return _DATA["std"]


def jax_epoch_runner(model, loss_kind, lr, momentum, X, y, batch, *, shuffle=True, epochs=1,
                     seed=0):
    """JAX's fastest idiom: the whole epoch (gather, forward, loss, grad, SGD with PyTorch's
    momentum) as one lax.scan under jax.jit, from the model's initial weights."""
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    acts = {nn.ReLU: jax.nn.relu, nn.Sigmoid: jax.nn.sigmoid, nn.Tanh: jnp.tanh}
    params, funcs = [], []
    for layer in model:
        if isinstance(layer, nn.Linear):
            params.append((jnp.asarray(layer.weight.value), jnp.asarray(layer.bias.value)))
            funcs.append(None)
        else:
            funcs[-1] = acts[type(layer)]

    def forward(p, x):
        for (w, b), f in zip(p, funcs):
            x = x @ w.T + b
            x = f(x) if f is not None else x
        return x

    def loss(p, x, t):
        z = forward(p, x)
        if loss_kind == "cross_entropy":
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(z), t[:, None], axis=1))
        return jnp.mean((z - t) ** 2)

    n = X.shape[0]
    steps = n // batch
    assert steps * batch == n, "the JAX scan needs whole batches"

    @jax.jit
    def epoch(p, v, Xd, yd, perm):
        xb = Xd[perm].reshape(steps, batch, -1)
        yb = yd[perm].reshape((steps, batch) + yd.shape[1:])

        def step(carry, xy):
            p, v = carry
            value, g = jax.value_and_grad(loss)(p, *xy)
            v = jax.tree_util.tree_map(lambda v, g: momentum * v + g, v, g)
            p = jax.tree_util.tree_map(lambda p, v: p - lr * v, p, v)
            return (p, v), value
        (p, v), values = jax.lax.scan(step, (p, v), (xb, yb))
        return p, v, values.mean()

    Xd, yd = jnp.asarray(X), jnp.asarray(y)
    rng = np.random.default_rng(seed)
    state = {"p": params, "v": jax.tree_util.tree_map(jnp.zeros_like, params)}
    out = {}

    def run():
        for _ in range(epochs):
            perm = jnp.asarray(rng.permutation(n) if shuffle else np.arange(n))
            state["p"], state["v"], value = epoch(state["p"], state["v"], Xd, yd, perm)
            out["loss"] = float(value)
    return run, lambda: out["loss"]


def _torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(THREADS)
    return torch


def _gk_threads():
    gk.set_num_threads(THREADS)


def _torch_copy(torch, model):
    """A torch.nn.Sequential with the same layers and initial weights as a gradkit Sequential."""
    layers = []
    acts = {nn.ReLU: torch.nn.ReLU, nn.Sigmoid: torch.nn.Sigmoid, nn.Tanh: torch.nn.Tanh}
    for layer in model:
        if isinstance(layer, nn.Linear):
            t = torch.nn.Linear(layer.in_features, layer.out_features)
            with torch.no_grad():
                t.weight.copy_(torch.from_numpy(layer.weight.value))
                t.bias.copy_(torch.from_numpy(layer.bias.value))
            layers.append(t)
        else:
            layers.append(acts[type(layer)]())
    return torch.nn.Sequential(*layers)


def _torch_epoch(torch, tmodel, topt, loss, X, y, batch, rng, shuffle=True):
    n = X.shape[0]
    perm = torch.from_numpy(rng.permutation(n)) if shuffle else None
    total = 0.0
    for s in range(0, n, batch):
        idx = perm[s:s + batch] if shuffle else slice(s, s + batch)
        topt.zero_grad()
        value = loss(tmodel(X[idx]), y[idx])
        value.backward()
        topt.step()
        total += value.item() * (min(n, s + batch) - s)
    return total / n


def _runner(impl, model, loss_fn, opt, X, y, batch, *, shuffle=True, epochs=1):
    """A zero-argument callable running one timed call, and a function giving its last loss.
    Every implementation draws its batch order from np.random.default_rng(0), as gk.fit(seed=0)."""
    if impl == "jax":
        kind = "cross_entropy" if isinstance(loss_fn, losses.CrossEntropyLoss) else "mse"
        return jax_epoch_runner(model, kind, opt.lr, opt.momentum, X, y, batch, shuffle=shuffle,
                                epochs=epochs)
    if impl == "torch":
        torch = _torch()
        tmodel = _torch_copy(torch, model)
        if isinstance(opt, optim.Adam):  # Adam or AdamW: torch's class of the same name
            topt = getattr(torch.optim, type(opt).__name__)(
                tmodel.parameters(), lr=opt.lr, betas=opt.betas, eps=opt.eps,
                weight_decay=opt.weight_decay, amsgrad=opt.amsgrad)
        else:
            topt = torch.optim.SGD(tmodel.parameters(), lr=opt.lr, momentum=opt.momentum)
        tX = torch.from_numpy(X)
        ty = torch.from_numpy(y)
        tloss = (torch.nn.functional.cross_entropy
                 if isinstance(loss_fn, losses.CrossEntropyLoss) else torch.nn.functional.mse_loss)
        rng = np.random.default_rng(0)
        out = {}

        def run():
            for _ in range(epochs):
                out["loss"] = _torch_epoch(torch, tmodel, topt, tloss, tX, ty, batch, rng, shuffle)
        return run, lambda: out["loss"]
    backend, path = impl.split("-")
    _gk_threads()
    out = {}

    def run():
        with gk.use_backend(backend):
            hist = gk.fit(model, loss_fn, opt, X, y, epochs=epochs, batch_size=batch,
                          shuffle=shuffle, seed=0,
                          progress=False, fused=(path == "fused"))
        out["loss"] = hist.loss[-1]
    return run, lambda: out["loss"]


def epoch_data(pixels):
    X, y, source = fashion_train() if pixels == "raw" else fashion_standardized()
    return X[:ROWS], y[:ROWS], source, (0.1 if pixels == "raw" else 0.01)


def _torch_float64_loss(pixels, batch):
    """PyTorch's first-epoch loss in float64 from the same start and batch order."""
    torch = _torch()
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # _torch_copy's layers take the default dtype
    try:
        return _first_epoch_loss("torch", pixels, batch, np.float64)[0]
    finally:
        torch.set_default_dtype(before)


def _first_epoch_loss(impl, pixels, batch, dtype=np.float32):
    """Mean loss of one epoch from the shared initial weights and batch order (cached)."""
    key = ("first", impl, pixels, batch, np.dtype(dtype).name)
    if key not in _DATA:
        X, y, _, lr = epoch_data(pixels)
        X = X.astype(dtype, copy=False)
        model = nn.Sequential(nn.Linear(784, 256, seed=0, dtype=dtype), nn.ReLU(),
                              nn.Linear(256, 10, seed=1, dtype=dtype))
        opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        run, last_loss = _runner(impl, model, losses.CrossEntropyLoss(), opt, X, y, batch)
        run()
        _DATA[key] = (last_loss(), run, last_loss)
    return _DATA[key]


@pytest.mark.parametrize("impl", EPOCH_IMPLS)
@pytest.mark.parametrize("batch", [32, 128, 512])
@pytest.mark.parametrize("pixels", ["raw", "standardized"])
def test_epoch_784_256_10(benchmark, pixels, batch, impl, record):
    X, y, source, lr = epoch_data(pixels)
    if impl == "cpp-layers":
        pytest.importorskip("gradkit.backends.ops_cpp")
        if not hasattr(gk.backends.load("cpp"), "linear"):
            pytest.skip("cpp backend has no layer ops here")
    first, run, last_loss = _first_epoch_loss(impl, pixels, batch)  # also the warm-up (JIT)
    want = _first_epoch_loss("torch", pixels, batch)[0]
    assert np.isfinite(first) and first < np.log(10)  # below the loss of a uniform guess
    # The same model trained from the same start on the same batches as PyTorch. At lr 0.1,
    # momentum 0.9 and batch 32 on raw pixels, float32 rounding alone moves the first epoch's
    # loss by several percent (on the Zen 3, float32 runs of PyTorch, the cpp and the numba
    # epoch land 2-6% away from the float64 value, where gradkit's and PyTorch's float64 runs
    # agree to 4 digits). There the same implementation is run again in float64 and compared
    # with PyTorch's float64 run.
    if abs(first - want) > LOSS_RTOL * want and impl != "jax":
        exact = _torch_float64_loss(pixels, batch)
        ours = _first_epoch_loss(impl, pixels, batch, np.float64)[0]
        assert abs(ours - exact) <= 1e-3 * exact, (first, want, ours, exact)
    else:
        assert abs(first - want) <= LOSS_RTOL * want, (first, want)
    benchmark.group = f"train epoch 784-256-10 f32 batch {batch} ({source})"
    record(benchmark, impl, steps=-(-X.shape[0] // batch), threads=THREADS)
    benchmark.pedantic(run, rounds=3, iterations=1)
    assert last_loss() < first * 1.05  # later epochs do not get worse


@pytest.mark.parametrize("impl", ["torch", "cpp-fused", "cpp-layers"])
def test_epoch_784_256_10_adam(benchmark, impl, record):
    """The raw-pixel epoch at batch 128 with Adam (lr 1e-3) instead of SGD: fused and
    layer by layer against PyTorch's Adam, same start and batch order."""
    X, y, source, _ = epoch_data("raw")
    losses_first = {}
    for who in dict.fromkeys(("torch", impl)):
        model = nn.Sequential(nn.Linear(784, 256, seed=0), nn.ReLU(), nn.Linear(256, 10, seed=1))
        opt = optim.Adam(model.parameters(), lr=1e-3)
        run, last_loss = _runner(who, model, losses.CrossEntropyLoss(), opt, X, y, 128)
        run()  # the first epoch, also the warm-up
        losses_first[who] = last_loss()
    first, want = losses_first[impl], losses_first["torch"]
    assert np.isfinite(first) and first < np.log(10)
    assert abs(first - want) <= LOSS_RTOL * want, (first, want)
    benchmark.group = f"train epoch 784-256-10 f32 batch 128 Adam ({source})"
    record(benchmark, impl, steps=-(-X.shape[0] // 128), threads=THREADS)
    benchmark.pedantic(run, rounds=3, iterations=1)
    assert last_loss() < first * 1.05


def watermelon_like(n=500, seed=0):
    """Features (x1, x2^2, x3^3) of the course's f(x) = a x1 + b x2^2 + c x3^3 + d."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 3))
    feats = np.stack([x[:, 0], x[:, 1] ** 2, x[:, 2] ** 3], axis=1).astype(np.float32)
    y = (feats @ np.array([2.0, -3.0, 1.5]) + 0.5).astype(np.float32).reshape(-1, 1)
    return feats, y


@pytest.mark.parametrize("impl", TINY_IMPLS)
def test_tiny_2_3_1_batch_1(benchmark, impl, record):
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, (1000, 2)).astype(np.float32)
    y = (np.sin(X[:, :1] * 2) * X[:, 1:]).astype(np.float32)
    model = nn.Sequential(nn.Linear(2, 3, seed=0), nn.Sigmoid(), nn.Linear(3, 1, seed=1))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.0)
    run, last_loss = _runner(impl, model, losses.MSELoss(), opt, X, y, 1)
    run()
    first = last_loss()
    benchmark.group = "train tiny 2-3-1 batch 1, 1000 steps per call"
    record(benchmark, impl, steps=1000, threads=THREADS)
    benchmark.pedantic(run, rounds=10, iterations=1, warmup_rounds=1)
    assert np.isfinite(last_loss()) and last_loss() < first


@pytest.mark.parametrize("impl", TINY_IMPLS)
def test_full_batch_gd_watermelon(benchmark, impl, record):
    X, y = watermelon_like()
    model = nn.Sequential(nn.Linear(3, 1, seed=0))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.0)
    run, last_loss = _runner(impl, model, losses.MSELoss(), opt, X, y, 500, shuffle=False,
                             epochs=200)
    run()
    first = last_loss()
    benchmark.group = "train full-batch GD 500x3, 200 steps per call"
    record(benchmark, impl, steps=200, threads=THREADS)
    benchmark.pedantic(run, rounds=10, iterations=1, warmup_rounds=1)
    assert last_loss() < first
    if impl not in ("torch", "jax"):  # the peers train copies of their own, not `model`
        # the coefficients of the course's formula are recovered
        np.testing.assert_allclose(model[0].weight.value[0], [2.0, -3.0, 1.5], atol=0.05)
