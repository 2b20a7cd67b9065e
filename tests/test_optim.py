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


# ------------------------------------------------------------------------------ Adam / AdamW

ADAM_SETTINGS = [
    (optim.Adam, dict()),
    (optim.Adam, dict(weight_decay=0.05)),
    (optim.Adam, dict(amsgrad=True)),
    (optim.Adam, dict(betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01, amsgrad=True)),
    (optim.AdamW, dict()),
    (optim.AdamW, dict(weight_decay=0.1, amsgrad=True)),
]


def _adam_id(setting):
    cls, kw = setting
    return cls.__name__ + "".join(f",{a}={b}" for a, b in kw.items())


def _needs_adam(backend):
    if not hasattr(_config.ops(), "adam_step"):
        pytest.skip(f"backend {backend!r} has no adam_step in this tree yet (the registry lists "
                    "it; the numba package brings it)")


def _torch_mlp(torch, model):
    layers = []
    for layer in model.layers:
        if isinstance(layer, nn.Linear):
            lin = torch.nn.Linear(layer.in_features, layer.out_features).double()
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(layer.weight.value))
                lin.bias.copy_(torch.from_numpy(layer.bias.value))
            layers.append(lin)
        else:
            layers.append(torch.nn.Tanh())
    return torch.nn.Sequential(*layers)


@pytest.mark.parametrize("setting", ADAM_SETTINGS, ids=_adam_id)
def test_adam_matches_torch_over_50_steps_on_an_mlp(backend, setting):
    torch = pytest.importorskip("torch")
    _needs_adam(backend)
    cls, kw = setting
    model = nn.Sequential(nn.Linear(4, 8, dtype=np.float64, seed=1), nn.Tanh(),
                          nn.Linear(8, 3, dtype=np.float64, seed=2))
    tmodel = _torch_mlp(torch, model)
    w0 = model.parameters()[0].value.copy()
    loss_fn = gk.losses.MSELoss()
    opt = cls(model.parameters(), lr=0.01, **kw)
    topt = getattr(torch.optim, cls.__name__)(tmodel.parameters(), lr=0.01, **kw)
    rng = np.random.default_rng(7)
    for _ in range(50):
        x, y = rng.normal(size=(16, 4)), rng.normal(size=(16, 3))
        opt.zero_grad()
        loss_fn(model(x), y)
        model.backward(loss_fn.backward())
        opt.step()
        topt.zero_grad()
        torch.nn.functional.mse_loss(tmodel(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        topt.step()
    theirs = [t.detach().numpy() for t in tmodel.parameters()]
    for mine, ref in zip(model.parameters(), theirs):
        np.testing.assert_allclose(mine.value, ref, rtol=1e-9, atol=1e-11)
    # The parameters moved: 50 steps of about lr each, so a no-op optimizer cannot pass.
    assert np.abs(model.parameters()[0].value - w0).max() > 0.05


@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("decoupled", [False, True])
@pytest.mark.parametrize("size", [7, 70_001])  # one chunk; many chunks, threads may split them
def test_adam_step_backends_match_numpy(backend, dtype, amsgrad, decoupled, size):
    _needs_adam(backend)
    from gradkit.backends import ops_numpy
    from conftest import TOL

    rng = np.random.default_rng(3)
    start = rng.normal(size=size).astype(dtype)
    mine = [start.copy(), np.zeros_like(start), np.zeros_like(start), np.zeros_like(start)]
    ref = [a.copy() for a in mine]
    ops = _config.ops()
    for step in range(1, 6):
        g = rng.normal(size=size).astype(dtype)
        for fn, (p, m, v, vmax) in ((ops.adam_step, mine), (ops_numpy.adam_step, ref)):
            fn(p, g, m, v, vmax if amsgrad else None, step, 0.01, 0.9, 0.999, 1e-8, 0.05,
               amsgrad, decoupled)
    for a, b in zip(mine, ref):
        np.testing.assert_allclose(a, b, **TOL[dtype])
    assert not np.array_equal(mine[0], start)


def test_functional_adam_step_is_the_first_step_formula():
    p = np.array([1.0, -2.0])
    g = np.array([0.5, 0.25])
    m, v = np.zeros(2), np.zeros(2)
    F = gk.functional
    F.adam_step(p, g, m, v, 1, lr=0.1)
    # Step 1: m/(1-b1) = g and v/(1-b2) = g², so the update is lr * g / (|g| + eps).
    np.testing.assert_allclose(p, [1.0 - 0.1, -2.0 - 0.1], rtol=1e-7)
    np.testing.assert_allclose(m, 0.1 * g)
    np.testing.assert_allclose(v, 0.001 * g * g)


def test_fit_with_adam_matches_numpy_fused_where_the_backend_has_it(backend):
    _needs_adam(backend)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 3)), rng.integers(0, 2, size=60)

    def run():
        model = nn.Sequential(nn.Linear(3, 5, dtype=np.float64, seed=0), nn.ReLU(),
                              nn.Linear(5, 2, dtype=np.float64, seed=1))
        hist = gk.fit(model, gk.losses.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=0.01),
                      X, y, epochs=3, batch_size=16, seed=4, progress=False)
        return model, hist

    from gradkit.backends import _spec
    model, hist = run()
    assert hist.fused is ("Adam" in _spec.FUSED_OPTIMIZERS.get(backend, ()))
    with gk.use_backend("numpy"):
        ref, _ = run()
    for a, b in zip(model.parameters(), ref.parameters()):
        np.testing.assert_allclose(a.value, b.value, rtol=1e-10, atol=1e-12)


def test_fit_fused_true_with_adam_says_why_not():
    model = nn.Sequential(nn.Linear(3, 2, dtype=np.float64, seed=0))
    with gk.use_backend("numba"), pytest.raises(
            ValueError, match="the 'numba' fused epoch runs SGD only, not AdamW"):
        gk.fit(model, gk.losses.MSELoss(), optim.AdamW(model.parameters()), np.zeros((4, 3)),
               np.zeros((4, 2)), fused=True, progress=False)


@pytest.mark.parametrize("make, exc, match", [
    (lambda: optim.Adam(_p(), lr=-1e-3), ValueError, "lr=-0.001 must be >= 0"),
    (lambda: optim.Adam(_p(), lr=float("inf")), ValueError, "lr=inf must be finite"),
    (lambda: optim.Adam(_p(), betas=(1.0, 0.999)), ValueError, r"betas\[0\]=1.0 must be in \[0, 1\)"),
    (lambda: optim.Adam(_p(), betas=(0.9, -0.1)), ValueError, r"betas\[1\]=-0.1 must be >= 0"),
    (lambda: optim.Adam(_p(), betas=0.9), TypeError, "betas must be a pair"),
    (lambda: optim.Adam(_p(), eps=-1e-8), ValueError, "eps=-1e-08 must be >= 0"),
    (lambda: optim.AdamW(_p(), weight_decay=-0.1), ValueError, "weight_decay=-0.1 must be >= 0"),
    (lambda: optim.Adam(_p(), amsgrad="yes"), TypeError, "amsgrad must be a bool"),
    (lambda: optim.Adam([], lr=0.1), ValueError, "params is empty"),
    (lambda: gk.functional.adam_step(np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2), 0),
     ValueError, "step=0 must be >= 1"),
    (lambda: gk.functional.adam_step(np.zeros(2), np.zeros(2), np.zeros(3), np.zeros(2), 1),
     ValueError, "exp_avg must have the shape"),
    (lambda: gk.functional.adam_step(np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2), 1,
                                     amsgrad=True), ValueError, "max_exp_avg_sq is required"),
])
def test_bad_adam_arguments(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


# --------------------------------------------------------------- state dicts and resuming

def _trained_pair(make_opt, steps, rng):
    params = [nn.Parameter(rng.normal(size=(3, 2))), nn.Parameter(rng.normal(size=4))]
    opt = make_opt(params)
    for _ in range(steps):
        opt.zero_grad()
        for p in params:
            p.grad += rng.normal(size=p.value.shape)
        opt.step()
    return params, opt


OPTIMIZERS = {
    "sgd_momentum": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    "adam_amsgrad": lambda ps: optim.Adam(ps, lr=0.01, weight_decay=0.1, amsgrad=True),
    "adamw": lambda ps: optim.AdamW(ps, lr=0.01, betas=(0.8, 0.95)),
}


@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_state_dict_round_trip_continues_with_the_same_bits(kind):
    make = OPTIMIZERS[kind]
    params, opt = _trained_pair(make, 5, np.random.default_rng(0))
    copies = [nn.Parameter(p.value.copy()) for p in params]
    other = make(copies)
    other.load_state_dict(opt.state_dict())
    assert other.state_dict()["param_groups"] == opt.state_dict()["param_groups"]
    rng = np.random.default_rng(1)
    for _ in range(5):
        grads = [rng.normal(size=p.value.shape) for p in params]
        for o, ps in ((opt, params), (other, copies)):
            o.zero_grad()
            for p, g in zip(ps, grads):
                p.grad += g
            o.step()
    for a, b in zip(params, copies):
        np.testing.assert_array_equal(a.value, b.value)


def test_state_dict_has_torchs_shape_and_copies():
    params, opt = _trained_pair(OPTIMIZERS["adam_amsgrad"], 3, np.random.default_rng(0))
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert sd["param_groups"] == [dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1,
                                       amsgrad=True, params=[0, 1])]
    assert set(sd["state"][1]) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    assert sd["state"][1]["step"] == 3
    sd["state"][0]["exp_avg"][...] = 99  # a copy: the optimizer keeps its own moments
    assert not (opt.exp_avg[0] == 99).any()
    fresh = optim.SGD([nn.Parameter(np.zeros(2))], lr=0.1, momentum=0.5)
    assert fresh.state_dict() == {"state": {}, "param_groups": [dict(
        lr=0.1, momentum=0.5, dampening=0.0, nesterov=False, weight_decay=0.0, params=[0])]}


def test_state_dict_matches_torch_adam_keys():
    torch = pytest.importorskip("torch")
    params, opt = _trained_pair(OPTIMIZERS["adam_amsgrad"], 1, np.random.default_rng(0))
    tparams = [torch.zeros(3, 2, requires_grad=True), torch.zeros(4, requires_grad=True)]
    topt = torch.optim.Adam(tparams, amsgrad=True)
    for t in tparams:
        t.grad = torch.ones_like(t)
    topt.step()
    theirs = topt.state_dict()
    assert set(theirs["state"][0]) == set(opt.state_dict()["state"][0])
    assert set(opt.state_dict()["param_groups"][0]) <= set(theirs["param_groups"][0])


@pytest.mark.parametrize("mutate, match", [
    (lambda sd: sd["state"][0].__setitem__("exp_avg", np.zeros((2, 3))), "must be an array of shape"),
    (lambda sd: sd["state"][0].__setitem__("step", 0), "whole number >= 1"),
    (lambda sd: sd["state"][0].pop("exp_avg_sq"), "must be a dict with keys"),
    (lambda sd: sd["param_groups"][0].__setitem__("params", [0]), "for 1 parameters, this Adam has 2"),
    (lambda sd: sd["param_groups"][0].__setitem__("momentum", 0.9), "has keys"),
    (lambda sd: sd["param_groups"][0].__setitem__("betas", (0.9, 1.5)), r"betas\[1\]=1.5"),
    (lambda sd: sd.pop("state"), "keys 'state' and 'param_groups'"),
])
def test_load_state_dict_refuses_a_mismatch_and_changes_nothing(mutate, match):
    params, opt = _trained_pair(OPTIMIZERS["adam_amsgrad"], 2, np.random.default_rng(0))
    sd = opt.state_dict()
    before = opt.state_dict()
    mutate(sd)
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(sd)
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    np.testing.assert_array_equal(after["state"][0]["exp_avg"], before["state"][0]["exp_avg"])


RESUME = {
    "sgd_momentum": lambda m: optim.SGD(m.parameters(), lr=0.05, momentum=0.9),
    "adam": lambda m: optim.Adam(m.parameters(), lr=0.01, amsgrad=True),
    "adamw": lambda m: optim.AdamW(m.parameters(), lr=0.01),
}


@pytest.mark.parametrize("kind", RESUME)
def test_fit_save_load_fit_gives_the_bits_of_one_fit(tmp_path, kind):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(90, 4)), rng.integers(0, 3, size=90)

    def model():
        return nn.Sequential(nn.Linear(4, 6, dtype=np.float64, seed=0), nn.ReLU(),
                             nn.Linear(6, 3, dtype=np.float64, seed=1))

    loss = gk.losses.CrossEntropyLoss()
    straight = model()
    h4 = gk.fit(straight, loss, RESUME[kind](straight), X, y, epochs=4, batch_size=16, seed=5,
                progress=False)

    first = model()
    opt = RESUME[kind](first)
    h2 = gk.fit(first, loss, opt, X, y, epochs=2, batch_size=16, seed=5, progress=False)
    gk.save(first, tmp_path / "ckpt.npz", optimizer=opt)
    resumed, opt2 = gk.load(tmp_path / "ckpt.npz", optimizer=True)
    assert type(opt2) is type(opt)
    h_rest = gk.fit(resumed, loss, opt2, X, y, epochs=4, initial_epoch=2, batch_size=16, seed=5,
                    progress=False)
    assert h2.loss + h_rest.loss == h4.loss
    for a, b in zip(resumed.parameters(), straight.parameters()):
        np.testing.assert_array_equal(a.value, b.value)
    # Without initial_epoch the second call would replay the first two orders: other bits.
    again, opt3 = gk.load(tmp_path / "ckpt.npz", optimizer=True)
    gk.fit(again, loss, opt3, X, y, epochs=2, batch_size=16, seed=5, progress=False)
    assert not np.array_equal(again.parameters()[0].value, straight.parameters()[0].value)


def test_save_and_load_refuse_a_missing_or_foreign_optimizer(tmp_path):
    model = nn.Sequential(nn.Linear(2, 2, dtype=np.float64, seed=0))
    gk.save(model, tmp_path / "m.npz")
    with pytest.raises(gk.io.ModelFileError, match="no optimizer state"):
        gk.load(tmp_path / "m.npz", optimizer=True)
    other = nn.Linear(2, 2, dtype=np.float64, seed=0)
    with pytest.raises(ValueError, match=r"exactly model.parameters\(\)"):
        gk.save(model, tmp_path / "m.npz", optimizer=optim.Adam(other.parameters()))
    with pytest.raises(ValueError, match="initial_epoch=3 must be < epochs=3"):
        gk.fit(model, gk.losses.MSELoss(), optim.Adam(model.parameters()), np.zeros((4, 2)),
               np.zeros((4, 2)), epochs=3, initial_epoch=3, progress=False)


# ------------------------------------------------------------------ early stopping, best weights

def _overfitting_run(restore_best, patience):
    """A wide net on few noisy rows: the validation loss falls, then rises as it overfits."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(24, 6)), rng.normal(size=(24, 1))
    Xv, yv = rng.normal(size=(40, 6)), rng.normal(size=(40, 1))
    model = nn.Sequential(nn.Linear(6, 64, dtype=np.float64, seed=0), nn.Tanh(),
                          nn.Linear(64, 1, dtype=np.float64, seed=1))
    opt = optim.Adam(model.parameters(), lr=0.02)
    snapshots = []

    class Recorder:  # a "scheduler" sees the parameters after each epoch's validation
        def step(self):
            snapshots.append([p.value.copy() for p in model.parameters()])

    hist = gk.fit(model, gk.losses.MSELoss(), opt, X, y, epochs=40, batch_size=8, seed=1,
                  validation_data=(Xv, yv), patience=patience, restore_best=restore_best,
                  scheduler=Recorder(), progress=False)
    return model, hist, snapshots


@pytest.mark.parametrize("patience", [None, 5])
def test_restore_best_gives_the_weights_of_the_best_validation_epoch(patience):
    model, hist, snapshots = _overfitting_run(True, patience)
    best = int(np.argmin(hist.val_loss)) + 1
    assert hist.best_epoch == best
    assert best < hist.epochs  # the run went past its best epoch, so restoring changes something
    if patience is not None:
        assert hist.stopped_epoch == best + patience
    for p, saved in zip(model.parameters(), snapshots[best - 1]):
        np.testing.assert_array_equal(p.value, saved)
    assert not np.array_equal(model.parameters()[0].value, snapshots[-1][0])


def test_without_restore_best_the_last_weights_stay():
    model, hist, snapshots = _overfitting_run(False, None)
    assert hist.best_epoch < hist.epochs == len(snapshots)
    np.testing.assert_array_equal(model.parameters()[0].value, snapshots[-1][0])
    with pytest.raises(ValueError, match="restore_best=True needs validation_data"):
        gk.fit(model, gk.losses.MSELoss(), optim.Adam(model.parameters()), np.zeros((4, 6)),
               np.zeros((4, 1)), restore_best=True, progress=False)


# --------------------------------------------------------------------------- quiet traps

def test_float64_data_into_a_float32_model_warns_once_and_says_what_to_do():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), rng.normal(size=(20, 2))
    model = nn.Sequential(nn.Linear(3, 2, seed=0))  # float32 by default
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gk.fit(model, gk.losses.MSELoss(), optim.SGD(model.parameters(), lr=0.01), X, y,
               validation_data=(X[:5], y[:5]), epochs=2, progress=False)
    assert len(caught) == 1, [str(w.message) for w in caught]
    message = str(caught[0].message)
    assert issubclass(caught[0].category, gk._validation.ConversionWarning)
    assert "X (float64), y (float64), validation_data[0]" in message
    assert "X.astype(np.float32)" in message and "dtype=np.float64" in message
    assert model.parameters()[0].value.dtype == np.float32
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matching data: no warning at all
        gk.fit(model, gk.losses.MSELoss(), optim.SGD(model.parameters(), lr=0.01),
               X.astype(np.float32), y.astype(np.float32), progress=False)
