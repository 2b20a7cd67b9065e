"""Backends: one module each, the same function names and signatures.

``ops_numpy`` is the specification: every other backend must match it (tests/test_backends.py).
Each backend function trusts its input: the public layer (``gradkit.functional`` and friends)
has already checked shapes and converted arrays to C-contiguous float32/float64 (labels to int64).

The shared contract (x, w, ... are C-contiguous arrays of one float dtype; scalars are Python
floats/bools; every function returns new arrays unless it says "in place"):

GEMM and dense layers
    matmul(a, b, trans_a=False, trans_b=False, out=None, accumulate=False) -> out
        out = op(a) @ op(b) (+ out when accumulate); out is allocated when None.
    linear(x, w, b, activation="none", slope=0.01) -> y
        y = act(x @ w.T + b); x (B, IN), w (OUT, IN), b (OUT,) or None;
        activation in ACTIVATIONS.
    linear_backward(dy, x, w, dw, db, need_dx=True) -> dx or None
        dw += dy.T @ x (in place), db += dy.sum(0) (in place, db may be None),
        returns dx = dy @ w when need_dx.
Activations (backward takes the forward *output* y; leaky_relu needs slope >= 0)
    relu(x), relu_backward(dy, y); leaky_relu(x, slope), leaky_relu_backward(dy, y, slope);
    sigmoid(x), sigmoid_backward(dy, y); tanh(x), tanh_backward(dy, y);
    softmax(x), softmax_backward(dy, y)   (row-wise over the last axis of a 2-D array)
Losses: one fused pass -> (value, grad w.r.t. the prediction); reduction in REDUCTIONS.
    value is a Python float for "mean"/"sum" (accumulated in float64), an array for "none";
    grad is the derivative of the reduced value ("none": of the sum of the elements).
    l1_loss(pred, target, reduction)
    mse_loss(pred, target, reduction, half)        half: 0.5 * the value (the 1/(2m) form)
    bce_loss(pred, target, reduction)              log clamped at -100 as PyTorch does
    bce_with_logits_loss(logits, target, reduction)
    cross_entropy_loss(logits, labels, reduction)  logits (B, C), labels int64 (B,); "none" -> (B,)
Optimiser
    sgd_step(param, grad, buf, lr, momentum, dampening, nesterov, weight_decay, first) -> None
        in place on param and buf (buf is None when momentum == 0); PyTorch semantics: with
        momentum, buf = g on the first step, else buf = momentum*buf + (1-dampening)*g.
    adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
              weight_decay, amsgrad, decoupled) -> None
        in place on param, exp_avg (m), exp_avg_sq (v) and max_exp_avg_sq (None unless
        amsgrad); step is the 1-based count including this step. PyTorch's Adam/AdamW:
        decoupled: param *= 1 - lr*weight_decay, g = grad; else g = grad + weight_decay*param;
        m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g; amsgrad: vmax = max(vmax, v) replaces v;
        param -= (lr / (1 - b1**step)) * m / (sqrt(v) / sqrt(1 - b2**step) + eps), with the
        scalar factors computed in float64 and rounded once to param's dtype.
K-means (X (n, d) and centers (k, d) of one float dtype; sample_weight (n,) of that dtype or
None for unit weights; labels int32; n_threads an int; sums and inertia in float64)
    kmeans_lloyd_step(X, sample_weight, centers, labels, n_threads)
        -> (centers_new, n_changed, center_shift, inertia)
        one pass over X: labels (in place; -1 before the first step) = nearest centre, first on
        ties, by ||c||^2 - 2 x.c; n_changed counts labels that moved; centers_new = weighted
        means; an empty cluster takes the point farthest from its centre (farthest first, ties
        to the lower index), which leaves its old cluster; center_shift = sum ||new - old||^2;
        inertia = sum w (||x||^2 + ||c||^2 - 2 x.c) with the old centres.
    kmeans_assign(X, sample_weight, centers, n_threads) -> (labels, inertia)
    kmeans_inertia(X, sample_weight, centers, labels, n_threads) -> float, from differences
    kmeans_lloyd(X, sample_weight, centers_init, max_iter, tol, n_threads)
        -> (centers, labels, inertia, n_iter): scikit-learn's loop (strict convergence when
        no label changes, else stop when center_shift <= tol; final assignment unless strict).
    kmeans_plusplus(X, sample_weight, n_clusters, n_local_trials, uniforms, n_threads)
        -> indices int64: greedy k-means++ driven by uniforms in [0, 1) of length
        1 + (n_clusters - 1) * n_local_trials (first centre ~ w, candidates ~ w D^2 via the
        first index whose running sum reaches u * total).
    kmeans_mean_variance(X, n_threads) -> float: np.mean(np.var(X, axis=0)) in float64 (the
        scale of tol); not finite when X holds NaN or inf.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

BACKENDS = ("cpp", "numba", "cython", "numpy")
ACTIVATIONS = ("none", "relu", "leaky_relu", "sigmoid", "tanh")
REDUCTIONS = ("mean", "sum", "none")

_loaded: dict[str, ModuleType] = {}


def load(name: str) -> ModuleType:
    """Import (once) and return the backend module called ``name``."""
    if name in _loaded:
        return _loaded[name]
    if name not in BACKENDS:
        raise ValueError(f"backend={name!r} must be one of {', '.join(map(repr, BACKENDS))}")
    if name == "numba":
        # Starting Numba's OpenMP threading layer resets OpenMP's thread count to all cores,
        # which would silently override OMP_NUM_THREADS / gk.set_num_threads for every backend.
        from gradkit import _core

        threads = _core.get_num_threads()
        module = importlib.import_module("gradkit.backends.ops_numba")
        set_numba_threads(threads)
        _core.set_num_threads(threads)
    else:
        module = importlib.import_module(f"gradkit.backends.ops_{name}")
    _loaded[name] = module
    return module


def available() -> list[str]:
    """Backends that import here. Numba is only looked up, not imported: importing ops_numba
    compiles its kernels (seconds, or minutes with an empty cache)."""
    names = []
    for name in BACKENDS:
        if name == "numba" and name not in _loaded:
            if importlib.util.find_spec("numba") is not None:
                names.append(name)
            continue
        try:
            load(name)
        except ImportError:
            continue
        names.append(name)
    return names


def set_numba_threads(n: int) -> None:
    """Numba keeps its own pool; only touch it when Numba is already imported."""
    if "numba" in sys.modules:
        import numba

        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
