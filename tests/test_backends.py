"""Every op of the registry (gradkit/backends/_spec.py) on every backend that imports here,
against ops_numpy (the specification), on random shapes in float32 and float64; NaN and inf
inputs for the elementwise ops; ops a backend lacks raise the registry's clear error.

Ops without a NumPy version are checked against a reference written here: adam_step against a
float64 transcription of its formulas, mlp_epoch against a loop over ops_numpy's kernels.
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

from gradkit import backends
from gradkit.backends import _spec, ops_numpy

from tests.conftest import TOL

BACKENDS = list(_spec.BACKENDS)
# (op, backend) pairs the registry has, and those it says are missing
HAS = [(o, b) for o in _spec.OPS for b in BACKENDS if _spec.implements(b, o)]
LACKS = [(o, b) for o in _spec.OPS for b in BACKENDS if not _spec.implements(b, o)]
# Sizes: small (one thread, scalar tails) and large (above every backend's parallel threshold).
SIZES = {"small": (3, 7), "large": (530, 520)}


def _backend(name):
    try:
        return backends.load(name)
    except ImportError:
        pytest.skip(f"backend {name!r} does not import here")


def _rng(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _special(x):
    """Puts NaN, +-inf, +-0 and huge values at the front of x (flat), as far as it is long."""
    flat = x.reshape(-1)
    values = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e30, 88.8, -88.8, 1e-40]
    flat[:len(values)] = np.array(values[:flat.size], dtype=x.dtype)
    return x


def _close(ours, ref, dtype, what=""):
    if isinstance(ref, tuple):
        assert isinstance(ours, tuple) and len(ours) == len(ref), what
        for i, (a, b) in enumerate(zip(ours, ref)):
            _close(a, b, dtype, f"{what}[{i}]")
        return
    if ref is None:
        assert ours is None, what
        return
    if isinstance(ref, np.ndarray):
        assert isinstance(ours, np.ndarray) and ours.shape == ref.shape, what
        assert ours.dtype == ref.dtype, what
    np.testing.assert_allclose(ours, ref, err_msg=what, **TOL[dtype])


# ---- cases: for each op, a function (rng, dtype, size) -> list of argument tuples ------------


def _shape(rng, size):
    rows, cols = SIZES[size]
    return int(rng.integers(1, rows + 1)) if size == "small" else rows, \
        int(rng.integers(1, cols + 1)) if size == "small" else cols


def _normal(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def _elementwise_forward(name):
    def make(rng, dtype, size):
        x = _special(_normal(rng, _shape(rng, size), dtype, 3.0))
        return [(x, 0.1)] if name == "leaky_relu" else [(x,)]
    return make


def _elementwise_backward(name):
    def make(rng, dtype, size):
        shape = _shape(rng, size)
        dy = _special(_normal(rng, shape, dtype))
        y = _normal(rng, shape, dtype)
        y_special = _special(y.copy()[::-1].copy()) if y.size > 1 else y
        cases = [(dy, y), (dy[::-1].copy(), y_special)]
        return [c + (0.1,) for c in cases] if name == "leaky_relu" else cases
    return make


def _rowwise(rng, dtype, size):
    shape = _shape(rng, size)
    return [(_normal(rng, shape, dtype, 3.0),)]


def _rowwise_backward(rng, dtype, size):
    shape = _shape(rng, size)
    return [(_normal(rng, shape, dtype), ops_numpy.softmax(_normal(rng, shape, dtype)))]


def _pair(name):
    def make(rng, dtype, size):
        shape = _shape(rng, size)
        if name == "bce_loss":
            pred = rng.uniform(0.01, 0.99, shape).astype(dtype)
            pred.reshape(-1)[:2] = [0.0, 1.0][:pred.size]  # the clamped logs
            target = rng.uniform(0, 1, shape).astype(dtype)
        else:
            pred, target = _normal(rng, shape, dtype, 2.0), _normal(rng, shape, dtype)
        cases = [(pred, target, r) for r in _spec.REDUCTIONS]
        if name == "mse_loss":
            cases = [c + (half,) for c in cases for half in (False, True)]
        return cases
    return make


def _cross_entropy(rng, dtype, size):
    batch, classes = _shape(rng, size)
    classes = max(classes, 2) if size == "small" else 100  # the few- and many-class paths
    logits = _normal(rng, (batch, classes), dtype, 3.0)
    labels = rng.integers(0, classes, batch).astype(np.int64)
    return [(logits, labels, r) for r in _spec.REDUCTIONS]


def _matmul(rng, dtype, size):
    m, k = _shape(rng, size)
    n = int(rng.integers(1, 9))
    cases = []
    for ta in (False, True):
        for tb in (False, True):
            a = _normal(rng, (k, m) if ta else (m, k), dtype)
            b = _normal(rng, (n, k) if tb else (k, n), dtype)
            cases.append((a, b, ta, tb))
    a, b = _normal(rng, (m, k), dtype), _normal(rng, (k, n), dtype)
    cases.append((a, b, False, False, _normal(rng, (m, n), dtype), True))
    return cases


def _linear(rng, dtype, size):
    batch, n_in = _shape(rng, size)
    n_out = int(rng.integers(1, 9))
    x, w = _normal(rng, (batch, n_in), dtype), _normal(rng, (n_out, n_in), dtype, 0.5)
    b = _normal(rng, n_out, dtype)
    return [(x, w, bias, act, 0.1) for act in _spec.ACTIVATIONS for bias in (b, None)]


def _linear_backward(rng, dtype, size):
    batch, n_in = _shape(rng, size)
    n_out = int(rng.integers(1, 9))
    dy, x = _normal(rng, (batch, n_out), dtype), _normal(rng, (batch, n_in), dtype)
    w = _normal(rng, (n_out, n_in), dtype)
    dw, db = _normal(rng, (n_out, n_in), dtype), _normal(rng, n_out, dtype)  # += onto these
    return [(dy, x, w, dw, db, True), (dy, x, w, dw, None, False)]


SGD_SETTINGS = [(0.0, 0.0, False, 0.0, True), (0.9, 0.0, False, 0.0, False),
                (0.9, 0.5, False, 0.01, True), (0.8, 0.0, True, 0.05, False)]


def _sgd(rng, dtype, size):
    n = int(np.prod(_shape(rng, size)))
    cases = []
    for momentum, dampening, nesterov, wd, first in SGD_SETTINGS:
        buf = _normal(rng, n, dtype) if momentum else None
        cases.append((_normal(rng, n, dtype), _normal(rng, n, dtype), buf, 0.1, momentum,
                      dampening, nesterov, wd, first))
    return cases


ADAM_SETTINGS = [(1, 0.0, False, False), (3, 0.01, False, False), (7, 0.01, True, False),
                 (2, 0.1, False, True), (5, 0.0, True, True)]  # step, weight_decay, decoupled, amsgrad


def _adam(rng, dtype, size):
    n = int(np.prod(_shape(rng, size)))
    cases = []
    for step, wd, decoupled, amsgrad in ADAM_SETTINGS:
        v = np.abs(_normal(rng, n, dtype, 0.1))
        vmax = v + np.abs(_normal(rng, n, dtype, 0.1)) if amsgrad else None
        if vmax is not None:
            vmax[::3] = 0  # some entries where the new v wins
        cases.append((_normal(rng, n, dtype), _normal(rng, n, dtype), _normal(rng, n, dtype, 0.1),
                      v, vmax, step, 1e-2, 0.9, 0.999, 1e-8, wd, amsgrad, decoupled))
    return cases


def _blobs(rng, dtype, size):
    n = 40 if size == "small" else 20_000
    d, k = int(rng.integers(1, 6)), int(rng.integers(2, 5))
    centers = rng.normal(scale=10, size=(k, d))
    X = (centers[rng.integers(0, k, n)] + rng.normal(size=(n, d))).astype(dtype)
    w = rng.uniform(0.5, 2.0, n).astype(dtype)
    init = X[rng.choice(n, k, replace=False)].copy()
    return X, w, init, k


def _kmeans(name):
    def make(rng, dtype, size):
        X, w, init, k = _blobs(rng, dtype, size)
        cases = []
        for weight in (w, None):
            if name == "kmeans_lloyd_step":
                cases.append((X, weight, init, np.full(X.shape[0], -1, np.int32), 1))
            elif name == "kmeans_assign":
                cases.append((X, weight, init, 1))
            elif name == "kmeans_inertia":
                labels = ops_numpy.kmeans_assign(X, weight, init, 1)[0]
                cases.append((X, weight, init, labels, 1))
            elif name == "kmeans_lloyd":
                cases.append((X, weight, init, 30, 1e-4, 1))
            elif name == "kmeans_plusplus":
                trials = 2 + int(np.log(k))
                cases.append((X, weight, k, trials, rng.random(1 + (k - 1) * trials), 1))
        if name == "kmeans_mean_variance":
            cases = [(X, 1)]
        return cases
    return make


CASES = {
    "matmul": _matmul, "linear": _linear, "linear_backward": _linear_backward,
    "softmax": _rowwise, "softmax_backward": _rowwise_backward,
    "cross_entropy_loss": _cross_entropy, "sgd_step": _sgd, "adam_step": _adam,
}
for _name in ("relu", "leaky_relu", "sigmoid", "tanh"):
    CASES[_name] = _elementwise_forward(_name)
    CASES[_name + "_backward"] = _elementwise_backward(_name)
for _name in ("l1_loss", "mse_loss", "bce_loss", "bce_with_logits_loss"):
    CASES[_name] = _pair(_name)
for _name in _spec.OPS:
    if _name.startswith("kmeans_"):
        CASES[_name] = _kmeans(_name)

ELEMENTWISE = {name for name, op in _spec.OPS.items() if op.group == "elementwise"}
IN_PLACE = {"sgd_step": (0, 2), "adam_step": (0, 2, 3, 4), "linear_backward": (3, 4),
            "kmeans_lloyd_step": (3,)}  # argument positions an op updates in place


# ---- references for the ops NumPy does not have --------------------------------------------


def adam_reference(param, grad, m, v, vmax, step, lr, beta1, beta2, eps, weight_decay, amsgrad,
                   decoupled):
    """The Adam formulas of the registry's contract, in float64, in place on the inputs."""
    p, g = param.astype(np.float64), grad.astype(np.float64)
    m64, v64 = m.astype(np.float64), v.astype(np.float64)
    if decoupled:
        p *= 1 - lr * weight_decay
    else:
        g = g + weight_decay * p
    m64 = beta1 * m64 + (1 - beta1) * g
    v64 = beta2 * v64 + (1 - beta2) * g * g
    bc1, bc2 = 1 - beta1 ** step, 1 - beta2 ** step
    if amsgrad:
        vmax64 = np.maximum(vmax.astype(np.float64), v64)
        vmax[...] = vmax64
        denom = np.sqrt(vmax64) / np.sqrt(bc2) + eps
    else:
        denom = np.sqrt(v64) / np.sqrt(bc2) + eps
    param[...] = p - (lr / bc1) * m64 / denom
    m[...], v[...] = m64, v64


def _reference(op):
    if op == "adam_step" and not _spec.implements("numpy", op):
        return adam_reference
    return getattr(backends.load("numpy"), op)


def _copy(args):
    return tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)


def _run(fn, op, args):
    """The result of fn(*args) and the arrays it updated in place."""
    out = fn(*args)
    return out, tuple(args[i] for i in IN_PLACE.get(op, ()) if args[i] is not None)


def _pairs(pairs):
    return [pytest.param(o, b, id=f"{o}-{b}") for o, b in pairs]


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # inf inputs
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("op,backend", _pairs(p for p in HAS if p[0] != "mlp_epoch"))
def test_op_matches_the_specification(op, backend, dtype, size):
    ops = _backend(backend)
    rng = _rng(op, dtype, size)
    for case in CASES[op](rng, dtype, size):
        ours = _run(getattr(ops, op), op, _copy(case))
        ref = _run(_reference(op), op, _copy(case))
        if op.startswith("kmeans_") and op != "kmeans_mean_variance":
            _close_kmeans(ours, ref, dtype)
        else:
            _close(ours, ref, dtype, f"{backend}.{op}")


def _close_kmeans(ours, ref, dtype):
    """Labels and indices exactly; sums of float64 per-chunk partials within the tolerance."""
    flat_ours, flat_ref = _flatten(ours), _flatten(ref)
    assert len(flat_ours) == len(flat_ref)
    for a, b in zip(flat_ours, flat_ref):
        if isinstance(b, np.ndarray) and b.dtype.kind == "i":
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-4 if dtype == np.float32 else 1e-9,
                                       atol=1e-4 if dtype == np.float32 else 1e-9)


def _flatten(x):
    if isinstance(x, tuple):
        return [y for item in x for y in _flatten(item)]
    return [x]


# ---- NaN propagates through every activation, as np.maximum / PyTorch do -------------------

FORWARD = sorted(n for n in ELEMENTWISE if not n.endswith("_backward"))


@pytest.mark.parametrize("op,backend", _pairs((o, b) for o in FORWARD for b in BACKENDS
                                              if _spec.implements(b, o)))
def test_nan_stays_nan(op, backend, dtype):
    ops = _backend(backend)
    x = np.array([[np.nan, -1.0, 1.0, np.nan]], dtype)
    args = (x, 0.1) if op == "leaky_relu" else (x,)
    y = getattr(ops, op)(*args)
    assert np.isnan(y[0, 0]) and np.isnan(y[0, 3]), y


@pytest.mark.parametrize("backend", [b for b in BACKENDS if _spec.implements(b, "linear")])
def test_nan_stays_nan_through_a_dense_layer(backend, dtype):
    ops = _backend(backend)
    x = np.array([[np.nan, 1.0], [1.0, 2.0]], dtype)
    w = np.ones((3, 2), dtype)
    for act in _spec.ACTIVATIONS:
        y = ops.linear(x, w, None, act, 0.1)
        assert np.isnan(y[0]).all() and np.isfinite(y[1]).all(), (act, y)


# ---- mlp_epoch against a loop over ops_numpy's kernels -------------------------------------


def numpy_mlp_epoch(weights, biases, activations, slope, loss, reduction, half, X, y, perm,
                    batch_size, n_steps, lr, momentum):
    """Plain SGD with momentum over n_steps mini-batches of one epoch's order, layer by layer
    with ops_numpy; returns each step's loss. Updates weights and biases in place."""
    ref = ops_numpy
    params = [p for pair in zip(weights, biases) for p in pair]
    bufs = [np.zeros_like(p) for p in params]
    losses = []
    for s in range(n_steps):
        rows = perm[s * batch_size:(s + 1) * batch_size]
        outs = [X[rows]]
        for w, b, act in zip(weights, biases, activations):
            outs.append(ref.linear(outs[-1], w, b, act, slope))
        if loss == "cross_entropy":
            value, d = ref.cross_entropy_loss(outs[-1], y[rows], reduction)
        else:
            value, d = getattr(ref, loss + "_loss")(outs[-1], y[rows], reduction,
                                                   *((half,) if loss == "mse" else ()))
        losses.append(value)
        grads = []
        for layer in range(len(weights) - 1, -1, -1):
            d = _activation_backward(activations[layer], d, outs[layer + 1], slope)
            dw, db = np.zeros_like(weights[layer]), np.zeros_like(biases[layer])
            d = ref.linear_backward(d, outs[layer], weights[layer], dw, db, True)
            grads[:0] = [dw, db]
        for p, g, buf in zip(params, grads, bufs):
            ref.sgd_step(p, g, buf, lr, momentum, 0.0, False, 0.0, s == 0)
    return np.array(losses)


def _activation_backward(act, d, y, slope):
    if act == "none":
        return d
    args = (slope,) if act == "leaky_relu" else ()
    return getattr(ops_numpy, act + "_backward")(d, y, *args)


@pytest.mark.parametrize("loss", _spec.FUSED_LOSSES)
@pytest.mark.parametrize("backend", [b for b in BACKENDS if _spec.implements(b, "mlp_epoch")])
def test_mlp_epoch_matches_numpy_layer_by_layer(backend, loss, dtype):
    ops = _backend(backend)
    rng = _rng("mlp_epoch", loss, dtype)
    n, sizes = 60, [4, 6, 5, 3]
    acts = [str(a) for a in rng.choice(_spec.ACTIVATIONS[1:], 2)] + ["none"]
    X = _normal(rng, (n, sizes[0]), dtype)
    if loss == "cross_entropy":
        y = rng.integers(0, sizes[-1], n).astype(np.int64)
    elif loss == "bce_with_logits":
        y = rng.uniform(0, 1, (n, sizes[-1])).astype(dtype)
    else:
        y = _normal(rng, (n, sizes[-1]), dtype)
    ws = [_normal(rng, (b, a), dtype, 0.5) for a, b in zip(sizes[:-1], sizes[1:])]
    bs = [_normal(rng, b, dtype, 0.1) for b in sizes[1:]]
    perm = rng.permutation(n).astype(np.int64)
    batch, steps = 16, 3  # the last of 4 batches would be short; 3 full ones
    ref_ws, ref_bs = [w.copy() for w in ws], [b.copy() for b in bs]
    ref_loss = numpy_mlp_epoch(ref_ws, ref_bs, acts, 0.1, loss, "mean", True, X, y, perm, batch,
                               steps, 0.05, 0.9)
    step_loss = np.zeros(steps)
    done = ops.mlp_epoch(ws, bs, [np.zeros_like(w) for w in ws], [np.zeros_like(b) for b in bs],
                         acts, 0.1, loss, "mean", True, X, y, perm, batch, 0, steps, 0.05, 0.9,
                         0.0, False, 0.0, True, step_loss)
    assert done == steps
    tol = TOL[dtype] if dtype == np.float64 else dict(rtol=1e-3, atol=1e-4)  # 3 steps of drift
    np.testing.assert_allclose(step_loss, ref_loss, **tol)
    for a, b in zip(ws + bs, ref_ws + ref_bs):
        np.testing.assert_allclose(a, b, **tol)


# ---- what a backend lacks, it says -----------------------------------------------------------


@pytest.mark.parametrize("op,backend", LACKS)
def test_missing_op_raises_the_registry_error(op, backend):
    ops = _backend(backend)
    assert not hasattr(ops, op)
    with pytest.raises(NotImplementedError, match=f"^backend '{backend}' has no op '{op}'"):
        getattr(ops, op)


@pytest.mark.parametrize("backend", BACKENDS)
def test_registry_matches_what_each_backend_defines(backend):
    """A module defines exactly the ops registered for it: an implementation missing from the
    registry would be unreachable, a registered op missing from the module a broken build."""
    module = _backend(backend).module
    defined = {op for op in _spec.OPS if callable(getattr(module, op, None))}
    registered = set(_spec.ops_of(backend))
    assert defined - registered == set(), f"register these for {backend!r} in _spec.py"
    assert registered - defined == set(), f"{backend!r} lacks these registered ops"


def test_other_names_come_from_the_module():
    ops = backends.load("numpy")
    assert ops.kmeans_lloyd_loop is ops_numpy.kmeans_lloyd_loop  # a helper, not an op
    with pytest.raises(AttributeError):
        ops.no_such_name  # noqa: B018


# ---- the Numba backend compiles lazily, one op at a time -----------------------------------

_LAZY = r"""
import sys
import numpy as np
import numba
from gradkit import backends
from gradkit.backends.numba import _jit
_jit.NOTICE_AFTER = 0.0  # every compile gets its notice here
package = backends.load("numba").module
kernels = {}
for name, module in list(sys.modules.items()):
    if name.startswith("gradkit.backends.numba"):
        for attr, obj in vars(module).items():
            if isinstance(obj, numba.core.registry.CPUDispatcher):
                kernels[f"{name.rsplit('.', 1)[-1]}.{attr}"] = obj
print("compiled at import:", sorted(k for k, d in kernels.items() if d.signatures))
package.relu(np.array([np.nan, -1.0, 2.0], np.float32))
print("compiled by relu:", sorted(k for k, d in kernels.items() if d.signatures))
"""


def test_numba_compiles_nothing_at_import_and_one_op_on_first_use(tmp_path):
    import os
    import subprocess
    import sys

    pytest.importorskip("numba")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", _LAZY], env=env, capture_output=True, text=True,
                         check=True)
    lines = out.stdout.splitlines()
    assert lines[0] == "compiled at import: []"
    assert lines[1] == "compiled by relu: ['activations._relu_range', 'formulas.relu']"
    assert "gradkit: compiling numba op 'relu' (first use, cached afterwards)..." in out.stderr
