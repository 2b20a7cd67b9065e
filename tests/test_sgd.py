"""The SGD step: every backend against ops_numpy, 20 steps against torch.optim.SGD, and the
validation at gradkit.functional.sgd_step."""
from __future__ import annotations

import numpy as np
import pytest

import gradkit as gk
from gradkit import backends
from gradkit._validation import ConversionWarning
from gradkit.backends import ops_numpy
from tests.conftest import TOL

F = gk.functional

SETTINGS = [
    dict(momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0),
    dict(momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.01),
    dict(momentum=0.9, dampening=0.0, nesterov=False, weight_decay=0.0),
    dict(momentum=0.9, dampening=0.5, nesterov=False, weight_decay=0.01),
    dict(momentum=0.8, dampening=0.0, nesterov=True, weight_decay=0.05),
]


def _need(backend):
    if not hasattr(backends.load(backend), "sgd_step"):
        pytest.skip(f"backend {backend!r} has no sgd_step yet")


def _run(step, param, grads, lr, settings):
    buf = np.zeros_like(param) if settings["momentum"] else None
    for i, g in enumerate(grads):
        step(param, g, buf, lr, first=(i == 0), **settings)
    return param


def _functional_step(param, g, buf, lr, first, **kw):
    F.sgd_step(param, g, lr, momentum_buffer=buf, first=first, **kw)


def _numpy_step(param, g, buf, lr, first, **kw):
    ops_numpy.sgd_step(param, g, buf, lr, kw["momentum"], kw["dampening"], kw["nesterov"],
                       kw["weight_decay"], first)


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("n", [1, 7, 33, 257, 1024, 300_000])
def test_matches_numpy(backend, dtype, rng, settings, n):
    _need(backend)
    param = rng.standard_normal(n).astype(dtype)
    grads = [rng.standard_normal(n).astype(dtype) for _ in range(3)]
    ours = _run(_functional_step, param.copy(), grads, 0.1, settings)
    ref = _run(_numpy_step, param.copy(), grads, 0.1, settings)
    np.testing.assert_allclose(ours, ref, **TOL[dtype])


@pytest.mark.parametrize("settings", SETTINGS)
def test_twenty_steps_match_torch(backend, dtype, rng, settings):
    torch = pytest.importorskip("torch")
    _need(backend)
    param = rng.standard_normal((5, 7)).astype(dtype)
    grads = [rng.standard_normal(param.shape).astype(dtype) for _ in range(20)]
    tp = torch.nn.Parameter(torch.tensor(param.copy()))
    opt = torch.optim.SGD([tp], lr=0.05, **settings)
    for g in grads:
        tp.grad = torch.tensor(g)
        opt.step()
    ours = _run(_functional_step, param.copy(), grads, 0.05, settings)
    np.testing.assert_allclose(ours, tp.detach().numpy(),
                               **(TOL[dtype] if dtype == np.float64 else dict(rtol=1e-5,
                                                                               atol=1e-6)))


def test_updates_in_place_and_walks_downhill(backend):
    _need(backend)
    # f(w) = sum(w^2): the gradient 2w points uphill, so a step must shrink |w|.
    w = np.array([3.0, -2.0, 0.5])
    ref = w
    F.sgd_step(w, 2 * w, 0.1)
    assert w is ref
    np.testing.assert_allclose(w, [2.4, -1.6, 0.4])


# ---------------------------------------------------------------------------- validation


@pytest.mark.parametrize("lr", [float("nan"), float("inf"), -0.1])
def test_bad_lr(backend, lr):
    with pytest.raises(ValueError, match="lr=.* must be"):
        F.sgd_step(np.ones(3), np.ones(3), lr)


def test_lr_must_be_a_number(backend):
    with pytest.raises(TypeError, match="lr must be a real number"):
        F.sgd_step(np.ones(3), np.ones(3), "0.1")
    with pytest.raises(TypeError, match="lr must be a real number"):
        F.sgd_step(np.ones(3), np.ones(3), True)


def test_negative_momentum_and_weight_decay(backend):
    with pytest.raises(ValueError, match="momentum=-0.5 must be >= 0"):
        F.sgd_step(np.ones(3), np.ones(3), 0.1, momentum=-0.5, momentum_buffer=np.zeros(3))
    with pytest.raises(ValueError, match="weight_decay=-1.0 must be >= 0"):
        F.sgd_step(np.ones(3), np.ones(3), 0.1, weight_decay=-1.0)


def test_nesterov_needs_momentum_and_no_dampening(backend):
    with pytest.raises(ValueError, match="nesterov=True requires momentum > 0"):
        F.sgd_step(np.ones(3), np.ones(3), 0.1, nesterov=True)
    with pytest.raises(ValueError, match="nesterov=True requires .* dampening == 0"):
        F.sgd_step(np.ones(3), np.ones(3), 0.1, nesterov=True, momentum=0.9, dampening=0.1,
                   momentum_buffer=np.zeros(3))


def test_momentum_buffer_rules(backend):
    with pytest.raises(ValueError, match="momentum_buffer is required"):
        F.sgd_step(np.ones(3), np.ones(3), 0.1, momentum=0.9)
    with pytest.raises(ValueError, match="momentum_buffer must have the shape"):
        F.sgd_step(np.ones(3), np.ones(3), 0.1, momentum=0.9, momentum_buffer=np.zeros(4))
    with pytest.raises(ValueError, match="momentum_buffer must have the shape .* dtype"):
        F.sgd_step(np.ones(3), np.ones(3), 0.1, momentum=0.9,
                   momentum_buffer=np.zeros(3, np.float32))


@pytest.mark.parametrize("bad", [np.arange(3), np.ones(3, bool), np.ones(3, complex),
                                 np.array([1.0, None, 2.0], dtype=object)])
def test_param_and_grad_dtypes(backend, bad):
    with pytest.raises(TypeError, match="param must have dtype float32 or float64"):
        F.sgd_step(bad, np.ones(3), 0.1)
    with pytest.raises(TypeError, match="grad must have dtype float32 or float64"):
        F.sgd_step(np.ones(3), bad, 0.1)
    with pytest.raises(TypeError, match="param must be a numpy array"):
        F.sgd_step([1.0, 2.0, 3.0], np.ones(3), 0.1)


def test_shapes_and_param_layout(backend):
    with pytest.raises(ValueError, match="param has shape \\(3,\\) but grad has shape \\(4,\\)"):
        F.sgd_step(np.ones(3), np.ones(4), 0.1)
    with pytest.raises(ValueError, match="param must be a writeable C-contiguous array"):
        F.sgd_step(np.ones((4, 4))[:, ::2], np.ones((4, 2)), 0.1)


def test_non_contiguous_and_other_float_grad_are_converted(backend, rng):
    _need(backend)
    param = rng.standard_normal(4).astype(np.float32)
    g = rng.standard_normal(8)
    expected = param - np.float32(0.1) * g[::2].astype(np.float32)
    with pytest.warns(ConversionWarning):
        F.sgd_step(param, g[::2], 0.1)
    np.testing.assert_allclose(param, expected, **TOL[np.float32])
