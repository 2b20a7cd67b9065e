"""The Cython backend against the reference (ops_numpy), function by function.

Calls the backend modules directly (their input contract: C-contiguous, one float dtype), so a
failure points at the kernel and not at validation. The public layer's checks are covered once,
through gradkit.functional with the Cython backend selected.
"""
from __future__ import annotations

import numpy as np
import pytest
from conftest import TOL

import gradkit as gk
from gradkit import backends
from gradkit.backends import ACTIVATIONS, REDUCTIONS
from gradkit.backends import ops_numpy as ref

try:
    cy = backends.load("cython")
except ImportError:  # not built here
    pytest.skip("the Cython backend is not built", allow_module_level=True)

SIZES = [1, 7, 33, 257, 1024]


def close(actual, expected, dtype):
    if type(expected) is float:  # a reduced loss value (np.float64 scalars are arrays here)
        assert isinstance(actual, float)
        np.testing.assert_allclose(actual, expected, **TOL[dtype])
        return
    assert actual.dtype == expected.dtype == np.dtype(dtype)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, **TOL[dtype])


def data(rng, shape, dtype, low=-3.0, high=3.0):
    return rng.uniform(low, high, size=shape).astype(dtype)


@pytest.fixture(autouse=True)
def _restore_threads():
    before = gk.get_num_threads()
    yield
    gk.set_num_threads(before)


# ------------------------------------------------------------------------------------- GEMM


@pytest.mark.parametrize("trans_a", [False, True], ids=["a", "aT"])
@pytest.mark.parametrize("trans_b", [False, True], ids=["b", "bT"])
@pytest.mark.parametrize("size", SIZES)
def test_matmul_every_layout(rng, dtype, size, trans_a, trans_b):
    for m, k, n in [(size, 33, size), (7, size, 33), (size, size, 1)]:
        a = data(rng, (k, m) if trans_a else (m, k), dtype)
        b = data(rng, (n, k) if trans_b else (k, n), dtype)
        close(cy.matmul(a, b, trans_a, trans_b), ref.matmul(a, b, trans_a, trans_b), dtype)


@pytest.mark.parametrize("accumulate", [False, True])
def test_matmul_writes_into_out(rng, dtype, accumulate):
    a, b = data(rng, (33, 7), dtype), data(rng, (7, 257), dtype)
    start = data(rng, (33, 257), dtype)
    out, expected = start.copy(), start.copy()
    result = cy.matmul(a, b, out=out, accumulate=accumulate)
    ref.matmul(a, b, out=expected, accumulate=accumulate)
    assert result is out
    close(out, expected, dtype)


@pytest.mark.parametrize("shape", [(0, 5, 3), (4, 0, 3), (4, 5, 0)], ids=["m0", "k0", "n0"])
def test_matmul_empty_dimensions(dtype, shape):
    m, k, n = shape
    a, b = np.ones((m, k), dtype), np.ones((k, n), dtype)
    result = cy.matmul(a, b)
    assert result.shape == (m, n) and result.dtype == dtype
    assert np.all(result == 0)
    out = np.full((m, n), 2.0, dtype)
    cy.matmul(a, b, out=out, accumulate=True)  # an empty sum adds nothing
    assert np.all(out == 2.0)


# ------------------------------------------------------------------------------ dense layer


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("size", SIZES)
def test_linear_matches_reference(rng, dtype, size, with_bias, activation):
    for batch, n_in, n_out in [(size, 33, 7), (7, size, size)]:
        x = data(rng, (batch, n_in), dtype)
        w = data(rng, (n_out, n_in), dtype, -0.3, 0.3)
        b = data(rng, (n_out,), dtype) if with_bias else None
        close(cy.linear(x, w, b, activation, 0.1), ref.linear(x, w, b, activation, 0.1), dtype)


@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("need_dx", [True, False], ids=["dx", "nodx"])
@pytest.mark.parametrize("size", SIZES)
def test_linear_backward_accumulates(rng, dtype, size, with_bias, need_dx):
    batch, n_in, n_out = size, 33, 7
    dy, x = data(rng, (batch, n_out), dtype), data(rng, (batch, n_in), dtype)
    w = data(rng, (n_out, n_in), dtype)
    dw0, db0 = data(rng, (n_out, n_in), dtype), data(rng, (n_out,), dtype)
    dw, dw_ref = dw0.copy(), dw0.copy()
    db, db_ref = (db0.copy(), db0.copy()) if with_bias else (None, None)
    dx = cy.linear_backward(dy, x, w, dw, db, need_dx)
    dx_ref = ref.linear_backward(dy, x, w, dw_ref, db_ref, need_dx)
    close(dw, dw_ref, dtype)
    if with_bias:
        close(db, db_ref, dtype)
    if need_dx:
        close(dx, dx_ref, dtype)
    else:
        assert dx is None


# ------------------------------------------------------------------------------ activations

UNARY = ["relu", "sigmoid", "tanh"]


@pytest.mark.parametrize("name", UNARY + ["leaky_relu"])
@pytest.mark.parametrize("shape", [(1,), (7,), (33, 257), (1024, 3), (2, 3, 257), ()],
                         ids=str)
def test_activation_and_backward(rng, dtype, name, shape):
    x = data(rng, shape, dtype, -20, 20)
    dy = data(rng, shape, dtype)
    extra = (0.2,) if name == "leaky_relu" else ()
    y = getattr(cy, name)(x, *extra)
    close(y, getattr(ref, name)(x, *extra), dtype)
    backward = name + "_backward"
    close(getattr(cy, backward)(dy, y, *extra), getattr(ref, backward)(dy, y, *extra), dtype)


def test_activations_of_extremes(dtype):
    x = np.array([-1e30, -100.0, -0.0, 0.0, 100.0, 1e30], dtype)
    for name in UNARY:
        y = getattr(cy, name)(x)
        assert np.all(np.isfinite(y))
        np.testing.assert_array_equal(y, getattr(ref, name)(x))
    assert np.isnan(cy.relu(np.array([np.nan], dtype))[0])  # NaN is not silently zeroed


@pytest.mark.parametrize("size", SIZES)
def test_softmax_and_backward(rng, dtype, size):
    for shape in [(size, 7), (3, size), (2, 2 * size + 2047)]:  # last: rows longer than a block
        x = data(rng, shape, dtype, -30, 30)
        dy = data(rng, shape, dtype)
        y = cy.softmax(x)
        close(y, ref.softmax(x), dtype)
        np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5 if dtype == np.float32 else 1e-12)
        close(cy.softmax_backward(dy, y), ref.softmax_backward(dy, y), dtype)


def test_softmax_huge_logits_stay_finite(dtype):
    x = np.array([[1e30, 0.0, -1e30]], dtype)
    np.testing.assert_array_equal(cy.softmax(x), [[1.0, 0.0, 0.0]])


# ----------------------------------------------------------------------------------- losses


def loss_inputs(rng, name, shape, dtype):
    if name == "bce_loss":
        pred = data(rng, shape, dtype, 0.0, 1.0)
        pred.flat[:3] = [0.0, 1.0, 0.5][: pred.size]  # the clamped ends of the log
        target = data(rng, shape, dtype, 0.0, 1.0)
    else:
        pred = data(rng, shape, dtype, -12.0, 12.0)
        target = data(rng, shape, dtype, 0.0, 1.0) if "bce" in name else data(rng, shape, dtype)
    return pred, target


def call(module, name, pred, target, reduction, half):
    if name == "mse_loss":
        return module.mse_loss(pred, target, reduction, half)
    return getattr(module, name)(pred, target, reduction)


@pytest.mark.parametrize("name", ["l1_loss", "mse_loss", "bce_loss", "bce_with_logits_loss"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("size", SIZES)
def test_elementwise_losses(rng, dtype, name, reduction, size):
    for shape in [(size,), (size, 3)]:
        pred, target = loss_inputs(rng, name, shape, dtype)
        for half in ([False, True] if name == "mse_loss" else [False]):
            value, grad = call(cy, name, pred, target, reduction, half)
            with np.errstate(divide="ignore"):  # log(0) in the reference, clamped after
                value_ref, grad_ref = call(ref, name, pred, target, reduction, half)
            close(value, value_ref, dtype)
            close(grad, grad_ref, dtype)


def test_l1_gradient_at_zero_difference(dtype):
    pred = np.array([1.0, 2.0, 3.0], dtype)
    _, grad = cy.l1_loss(pred, pred.copy(), "sum")
    np.testing.assert_array_equal(grad, 0)


@pytest.mark.parametrize("bad", [-0.1, 1.5, np.nan, -np.inf])
@pytest.mark.parametrize("where", [0, -1, 150_000], ids=["first", "last", "middle"])
def test_bce_rejects_non_probabilities(dtype, bad, where):
    pred = np.full(200_000, 0.5, dtype)  # several chunks, and threads when available
    pred[where] = bad
    target = np.zeros_like(pred)
    pred[77_777] = bad  # a second one, in another chunk: both are counted
    for reduction in REDUCTIONS:
        with pytest.raises(ValueError, match=r"pred must hold probabilities in \[0, 1\], but "
                                             r"2 value\(s\) are outside or NaN"):
            cy.bce_loss(pred, target, reduction)


def test_bce_through_functional_names_pred(dtype):
    with gk.use_backend("cython"):
        with pytest.raises(ValueError, match="pred must hold probabilities"):
            gk.functional.bce_loss(np.array([0.5, 1.01], dtype), np.array([0.0, 1.0], dtype))
        value, _ = gk.functional.bce_loss(np.array([0.5], dtype), np.array([1.0], dtype))
    assert value == pytest.approx(np.log(2.0), rel=1e-6)


def test_bce_with_logits_extremes_stay_finite(dtype):
    z = np.array([-1e4, -50.0, 0.0, 50.0, 1e4], dtype)
    t = np.array([1.0, 0.0, 0.5, 1.0, 0.0], dtype)
    value, grad = cy.bce_with_logits_loss(z, t, "none")
    value_ref, grad_ref = ref.bce_with_logits_loss(z, t, "none")
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))
    close(value, value_ref, dtype)
    close(grad, grad_ref, dtype)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("size", SIZES)
def test_cross_entropy(rng, dtype, reduction, size):
    for batch, classes in [(size, 10), (5, size), (3, 2 * size + 2047)]:
        logits = data(rng, (batch, classes), dtype, -20, 20)
        labels = rng.integers(0, classes, size=batch).astype(np.int64)
        value, grad = cy.cross_entropy_loss(logits, labels, reduction)
        value_ref, grad_ref = ref.cross_entropy_loss(logits, labels, reduction)
        close(value, value_ref, dtype)
        close(grad, grad_ref, dtype)


def test_losses_gradient_matches_central_differences(rng):
    # float64, sum reduction: d(value)/d(pred_i) by central differences.
    pred = rng.uniform(0.1, 0.9, size=7)
    target = rng.uniform(0, 1, size=7)
    logits, labels = rng.normal(size=(3, 4)), np.array([0, 3, 1], dtype=np.int64)
    cases = [
        (lambda p: cy.l1_loss(p, target, "sum"), pred),
        (lambda p: cy.mse_loss(p, target, "mean", True), pred),
        (lambda p: cy.bce_loss(p, target, "mean"), pred),
        (lambda p: cy.bce_with_logits_loss(p, target, "sum"), pred * 6 - 3),
        (lambda z: cy.cross_entropy_loss(z, labels, "mean"), logits),
    ]
    eps = 1e-6
    for loss, x in cases:
        _, grad = loss(x)
        numeric = np.zeros_like(x)
        for i in range(x.size):
            up, down = x.copy(), x.copy()
            up.flat[i] += eps
            down.flat[i] -= eps
            numeric.flat[i] = (loss(up)[0] - loss(down)[0]) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


# -------------------------------------------------------------------------------- optimiser


@pytest.mark.parametrize("momentum,dampening,nesterov", [(0.0, 0.0, False), (0.9, 0.0, False),
                                                         (0.9, 0.3, False), (0.9, 0.0, True)])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
@pytest.mark.parametrize("size", SIZES)
def test_sgd_step_matches_reference(rng, dtype, size, momentum, dampening, nesterov, weight_decay):
    param, grad = data(rng, (size, 3), dtype), data(rng, (size, 3), dtype)
    buf = data(rng, (size, 3), dtype) if momentum else None
    mine = [param.copy(), None if buf is None else buf.copy()]
    theirs = [param.copy(), None if buf is None else buf.copy()]
    for first in (True, False, False):
        cy.sgd_step(mine[0], grad, mine[1], 0.1, momentum, dampening, nesterov, weight_decay, first)
        ref.sgd_step(theirs[0], grad, theirs[1], 0.1, momentum, dampening, nesterov,
                     weight_decay, first)
        close(mine[0], theirs[0], dtype)
        if momentum:
            close(mine[1], theirs[1], dtype)
    assert not np.array_equal(mine[0], param)


# ---------------------------------------------------------------------------- determinism


def test_loss_values_identical_for_one_and_two_threads(rng, dtype):
    n = 300_001  # many chunks, above the parallel threshold, a ragged last chunk
    inputs = {
        "l1_loss": loss_inputs(rng, "l1_loss", (n,), dtype),
        "mse_loss": loss_inputs(rng, "mse_loss", (n,), dtype),
        "bce_loss": loss_inputs(rng, "bce_loss", (n,), dtype),
        "bce_with_logits_loss": loss_inputs(rng, "bce_with_logits_loss", (n,), dtype),
    }
    logits = data(rng, (n // 10, 10), dtype)
    labels = rng.integers(0, 10, size=n // 10).astype(np.int64)
    results = {}
    for threads in (1, 2):
        gk.set_num_threads(threads)
        for name, (pred, target) in inputs.items():
            for reduction in ("mean", "sum"):
                results[threads, name, reduction] = call(cy, name, pred, target, reduction, False)
        for reduction in ("mean", "sum"):
            results[threads, "ce", reduction] = cy.cross_entropy_loss(logits, labels, reduction)
    for key in [k for k in results if k[0] == 1]:
        one, two = results[key], results[(2,) + key[1:]]
        assert one[0] == two[0], key  # bitwise: no tolerance
        np.testing.assert_array_equal(one[1], two[1])


def test_elementwise_and_rowwise_ops_identical_for_one_and_two_threads(rng, dtype):
    # Fixed chunks: an element takes the same code path (vector body or tail) for any split.
    n = 300_001
    x, dy = data(rng, (n,), dtype), data(rng, (n,), dtype)
    rows = data(rng, (n // 11, 11), dtype)
    w, b = data(rng, (13, 11), dtype), data(rng, (13,), dtype)
    param, grad, buf = data(rng, (n,), dtype), data(rng, (n,), dtype), data(rng, (n,), dtype)
    results = {}
    for threads in (1, 2):
        gk.set_num_threads(threads)
        out = {}
        for name in UNARY:
            out[name] = getattr(cy, name)(x)
            out[name + "_backward"] = getattr(cy, name + "_backward")(dy, out[name])
        out["softmax"] = cy.softmax(rows)
        out["softmax_backward"] = cy.softmax_backward(rows, out["softmax"])
        for activation in ACTIVATIONS:
            out["linear_" + activation] = cy.linear(rows, w, b, activation, 0.1)
        p, m = param.copy(), buf.copy()
        cy.sgd_step(p, grad, m, 0.1, 0.9, 0.0, True, 0.01, False)
        out["sgd_param"], out["sgd_buf"] = p, m
        results[threads] = out
    for key, value in results[1].items():
        np.testing.assert_array_equal(value, results[2][key], err_msg=key)
