"""gk.optim: SGD against torch.optim.SGD (momentum, dampening, nesterov, weight decay), StepLR,
and bad constructor arguments."""
from __future__ import annotations

import numpy as np
import pytest

import gradkit as gk
from gradkit import _config, nn, optim


@pytest.fixture(autouse=True)
def _complete_default_backend():
    if hasattr(_config.ops(), "sgd_step"):
        yield
    else:
        with gk.use_backend("numpy"):
            yield


SETTINGS = [
    dict(),
    dict(momentum=0.9),
    dict(momentum=0.9, dampening=0.3),
    dict(momentum=0.8, nesterov=True),
    dict(momentum=0.5, weight_decay=0.01),
    dict(weight_decay=0.1),
    dict(momentum=0.9, nesterov=True, weight_decay=1e-3),
]


@pytest.mark.parametrize("kwargs", SETTINGS, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()) or "plain")
def test_sgd_matches_torch_over_20_steps(backend, kwargs):
    torch = pytest.importorskip("torch")
    if not hasattr(_config.ops(), "sgd_step"):
        pytest.skip(f"backend {backend!r} lacks sgd_step")
    rng = np.random.default_rng(0)
    start = [rng.normal(size=(4, 3)), rng.normal(size=5)]
    params = [nn.Parameter(v.copy()) for v in start]
    tparams = [torch.tensor(v.copy(), requires_grad=True) for v in start]
    opt = optim.SGD(params, lr=0.05, **kwargs)
    topt = torch.optim.SGD(tparams, lr=0.05, **kwargs)
    for _ in range(20):
        grads = [rng.normal(size=v.shape) for v in start]
        opt.zero_grad()
        topt.zero_grad()
        for p, tp, g in zip(params, tparams, grads):
            p.grad += g
            tp.grad = torch.tensor(g)
        opt.step()
        topt.step()
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p.value, tp.detach().numpy(), rtol=1e-12, atol=1e-12)


def test_sgd_plain_step_is_w_minus_lr_grad():
    p = nn.Parameter(np.array([1.0, 2.0]))
    p.grad[:] = [0.5, -1.0]
    optim.SGD([p], lr=0.1).step()
    np.testing.assert_allclose(p.value, [0.95, 2.1])


def test_zero_grad_clears_every_parameter():
    model = nn.Sequential(nn.Linear(2, 2, seed=0), nn.ReLU(), nn.Linear(2, 1, seed=1))
    for p in model.parameters():
        p.grad += 1
    optim.SGD(model.parameters(), lr=0.1).zero_grad()
    assert all(not p.grad.any() for p in model.parameters())


def test_step_lr_matches_torch_schedule():
    p = nn.Parameter(np.zeros(1))
    opt = optim.SGD([p], lr=1.0)
    sched = optim.StepLR(opt, step_size=3, gamma=0.5)
    lrs = []
    for _ in range(7):
        lrs.append(sched.get_last_lr())
        sched.step()
    assert lrs == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]


def _p():
    return [nn.Parameter(np.zeros(2))]


@pytest.mark.parametrize("make, exc, match", [
    (lambda: optim.SGD(_p(), lr=-0.1), ValueError, "lr=-0.1 must be >= 0"),
    (lambda: optim.SGD(_p(), lr=float("nan")), ValueError, "lr=nan must be finite"),
    (lambda: optim.SGD(_p(), lr="0.1"), TypeError, "lr must be a real number"),
    (lambda: optim.SGD(_p(), lr=0.1, momentum=-0.5), ValueError, "momentum=-0.5 must be >= 0"),
    (lambda: optim.SGD(_p(), lr=0.1, weight_decay=-1), ValueError, "weight_decay=-1.0 must be >= 0"),
    (lambda: optim.SGD(_p(), lr=0.1, nesterov=True), ValueError, "nesterov=True requires momentum > 0"),
    (lambda: optim.SGD(_p(), lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), ValueError,
     "dampening == 0"),
    (lambda: optim.SGD([], lr=0.1), ValueError, "params is empty"),
    (lambda: optim.SGD(nn.Parameter(np.zeros(2)), lr=0.1), TypeError, "got a single Parameter"),
    (lambda: optim.SGD([np.zeros(2)], lr=0.1), TypeError, r"params\[0\] must be a gradkit.nn.Parameter"),
    (lambda: optim.SGD(5, lr=0.1), TypeError, "params must be an iterable"),
    (lambda: optim.StepLR(optim.SGD(_p(), lr=0.1), step_size=0), ValueError, "step_size=0 must be >= 1"),
    (lambda: optim.StepLR(optim.SGD(_p(), lr=0.1), step_size=2, gamma=0), ValueError, "gamma=0.0 must be > 0"),
    (lambda: optim.StepLR("opt", step_size=2), TypeError, "optimizer must be"),
])
def test_bad_arguments(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_same_parameter_twice_is_refused():
    p = nn.Parameter(np.zeros(2))
    with pytest.raises(ValueError, match="same Parameter twice"):
        optim.SGD([p, p], lr=0.1)
