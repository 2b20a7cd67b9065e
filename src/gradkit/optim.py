"""Optimizers with PyTorch's semantics: SGD (``W -= lr * dL/dW``, with momentum), Adam and
AdamW, and a step learning-rate schedule.

Every optimizer has ``step()``, ``zero_grad()`` and PyTorch's ``state_dict()`` /
``load_state_dict()`` (``{"state": {index: {...}}, "param_groups": [{..., "params": [...]}]}``,
arrays as NumPy copies), so training can stop and resume with the same bits.
"""
from __future__ import annotations

import numbers

import numpy as np

from gradkit import _config
from gradkit._validation import adam_hyperparameters, positive_int, real_number
from gradkit.nn import Parameter

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "StepLR"]


def _check_params(params) -> list[Parameter]:
    if isinstance(params, Parameter):
        raise TypeError("params must be an iterable of Parameters (e.g. model.parameters()), "
                        "got a single Parameter")
    try:
        params = list(params)
    except TypeError:
        raise TypeError(f"params must be an iterable of Parameters, "
                        f"got {type(params).__name__}") from None
    if not params:
        raise ValueError("params is empty: the optimiser has nothing to update")
    for i, p in enumerate(params):
        if not isinstance(p, Parameter):
            raise TypeError(f"params[{i}] must be a gradkit.nn.Parameter, "
                            f"got {type(p).__name__}")
    if len({id(p) for p in params}) != len(params):
        raise ValueError("params contains the same Parameter twice")
    return params


def _check_flag(value, name) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


class Optimizer:
    """Base class: the parameters, ``zero_grad`` and the state-dict round trip.

    A subclass gives ``_configure(**hyper)`` (the constructor's validation, reused when a state
    dict is loaded), ``_hyperparameters()``, and per parameter ``_param_state(i)`` (a dict, empty
    before the first step), ``_check_param_state(i, entry)`` and ``_reset_state()`` /
    ``_set_param_state(i, entry)``.
    """

    def __init__(self, params):
        self.params = _check_params(params)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad[...] = 0

    def state_dict(self) -> dict:
        """``{"state": {i: {...}}, "param_groups": [{hyperparameters, "params": [0, ...]}]}``;
        parameter i has an entry in "state" once a step has created its buffers. Arrays are
        copies."""
        state = {}
        for i in range(len(self.params)):
            entry = self._param_state(i)
            if entry:
                state[i] = entry
        group = dict(self._hyperparameters(), params=list(range(len(self.params))))
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, state_dict) -> None:
        """Take the hyperparameters and per-parameter buffers of ``state_dict`` (copied), after
        checking all of it fits this optimizer's parameters (nothing changes if it does not)."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            raise ValueError(f"state_dict must be a dict with keys 'state' and 'param_groups' "
                             f"(from {name}.state_dict())")
        groups = state_dict["param_groups"]
        if not isinstance(groups, (list, tuple)) or len(groups) != 1 \
                or not isinstance(groups[0], dict):
            raise ValueError("state_dict['param_groups'] must hold exactly one group (a dict)")
        group = dict(groups[0])
        indices = list(group.pop("params", ()))
        if indices != list(range(len(self.params))):
            raise ValueError(f"state_dict is for {len(indices)} parameters, this {name} has "
                             f"{len(self.params)}")
        expected = set(self._hyperparameters())
        if set(group) != expected:
            raise ValueError(f"state_dict['param_groups'][0] has keys {sorted(group)}, a {name} "
                             f"has {sorted(expected)}")
        state = state_dict["state"]
        if not isinstance(state, dict) or any(
                isinstance(i, bool) or not isinstance(i, numbers.Integral)
                or not 0 <= i < len(self.params) for i in state):
            raise ValueError(f"state_dict['state'] must map parameter indices in "
                             f"[0, {len(self.params)}) to dicts of buffers")
        checked = {int(i): self._check_param_state(int(i), entry) for i, entry in state.items()}
        current = self._hyperparameters()
        try:
            self._configure(**group)
        except (TypeError, ValueError):
            self._configure(**current)
            raise
        self._reset_state()
        for i, entry in checked.items():
            self._set_param_state(i, entry)

    def _state_array(self, i, key, arr) -> np.ndarray:
        p = self.params[i]
        if not isinstance(arr, np.ndarray) or arr.shape != p.value.shape \
                or arr.dtype != p.value.dtype:
            raise ValueError(f"state_dict['state'][{i}][{key!r}] must be an array of shape "
                             f"{p.value.shape} and dtype {p.value.dtype}, like parameter {i}")
        return np.array(arr, order="C", copy=True)

    def _check_keys(self, i, entry, required, allowed) -> None:
        if not isinstance(entry, dict) or not set(required) <= set(entry) <= set(allowed):
            raise ValueError(f"state_dict['state'][{i}] must be a dict with keys "
                             f"{sorted(required)} (and optionally "
                             f"{sorted(set(allowed) - set(required))})")


class SGD(Optimizer):
    """``SGD(params, lr, momentum=0, dampening=0, nesterov=False, weight_decay=0)``.

    Per parameter, each ``step()``: ``g = grad + weight_decay * value``; with momentum the buffer
    is ``g`` at the first step and ``momentum * buf + (1 - dampening) * g`` after; Nesterov steps
    along ``g + momentum * buf``, plain momentum along ``buf``; then ``value -= lr * g``.
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0):
        super().__init__(params)
        self._configure(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                        weight_decay=weight_decay)
        # Momentum buffers, created at the first step (PyTorch: buf starts as the first gradient).
        self.buffers: list[np.ndarray | None] = [None] * len(self.params)

    def _configure(self, lr, momentum, dampening, nesterov, weight_decay):
        lr = real_number(lr, "lr", low=0.0)
        momentum = real_number(momentum, "momentum", low=0.0)
        dampening = real_number(dampening, "dampening")
        weight_decay = real_number(weight_decay, "weight_decay", low=0.0)
        nesterov = _check_flag(nesterov, "nesterov")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(f"nesterov=True requires momentum > 0 and dampening == 0, got "
                             f"momentum={momentum}, dampening={dampening}")
        self.lr, self.momentum, self.dampening = lr, momentum, dampening
        self.nesterov, self.weight_decay = nesterov, weight_decay

    def _hyperparameters(self) -> dict:
        return {"lr": self.lr, "momentum": self.momentum, "dampening": self.dampening,
                "nesterov": self.nesterov, "weight_decay": self.weight_decay}

    def _param_state(self, i) -> dict:
        buf = self.buffers[i]
        return {} if buf is None else {"momentum_buffer": buf.copy()}

    def _check_param_state(self, i, entry) -> dict:
        self._check_keys(i, entry, ("momentum_buffer",), ("momentum_buffer",))
        return {"momentum_buffer": self._state_array(i, "momentum_buffer",
                                                     entry["momentum_buffer"])}

    def _reset_state(self) -> None:
        self.buffers = [None] * len(self.params)

    def _set_param_state(self, i, entry) -> None:
        self.buffers[i] = entry["momentum_buffer"]

    def step(self) -> None:
        ops = _config.ops()
        use_buf = self.momentum != 0
        for i, p in enumerate(self.params):
            first = self.buffers[i] is None
            if use_buf and first:
                self.buffers[i] = np.zeros_like(p.value)
            ops.sgd_step(p.value, p.grad, self.buffers[i] if use_buf else None, self.lr,
                         self.momentum, self.dampening, self.nesterov, self.weight_decay, first)

    def __repr__(self):
        return (f"SGD(lr={self.lr}, momentum={self.momentum}, dampening={self.dampening}, "
                f"nesterov={self.nesterov}, weight_decay={self.weight_decay})")


class Adam(Optimizer):
    """``Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False)``.

    Per parameter, at its t-th ``step()``: ``g = grad + weight_decay * value``;
    ``m = b1 m + (1 - b1) g``; ``v = b2 v + (1 - b2) g²`` (amsgrad: the running maximum of v
    is used); ``value -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``. The moments
    start at zero; PyTorch's ``torch.optim.Adam`` gives the same numbers.
    """

    _MOMENTS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    _DECOUPLED = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False):
        super().__init__(params)
        self._configure(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
        self._reset_state()

    def _reset_state(self) -> None:
        n = len(self.params)
        self.steps: list[int] = [0] * n  # updates done per parameter (torch's "step")
        self.exp_avg: list[np.ndarray | None] = [None] * n
        self.exp_avg_sq: list[np.ndarray | None] = [None] * n
        self.max_exp_avg_sq: list[np.ndarray | None] = [None] * n

    def _configure(self, lr, betas, eps, weight_decay, amsgrad):
        lr, beta1, beta2, eps, weight_decay = adam_hyperparameters(lr, betas, eps, weight_decay)
        self.lr, self.betas, self.eps, self.weight_decay = lr, (beta1, beta2), eps, weight_decay
        self.amsgrad = _check_flag(amsgrad, "amsgrad")

    def _hyperparameters(self) -> dict:
        return {"lr": self.lr, "betas": self.betas, "eps": self.eps,
                "weight_decay": self.weight_decay, "amsgrad": self.amsgrad}

    def _param_state(self, i) -> dict:
        if self.steps[i] == 0:
            return {}
        entry = {"step": self.steps[i]}
        for name in self._MOMENTS:
            if getattr(self, name)[i] is not None:
                entry[name] = getattr(self, name)[i].copy()
        return entry

    def _check_param_state(self, i, entry) -> dict:
        self._check_keys(i, entry, ("step", "exp_avg", "exp_avg_sq"), ("step",) + self._MOMENTS)
        step = entry["step"]
        if isinstance(step, np.ndarray) and step.shape == ():
            step = step[()]  # a 0-d array, as torch keeps it
        if isinstance(step, (bool, np.bool_)) or not isinstance(step, numbers.Real) \
                or step != int(step) or step < 1:
            raise ValueError(f"state_dict['state'][{i}]['step'] must be a whole number >= 1, "
                             f"got {step!r}")
        out = {"step": int(step)}
        for name in self._MOMENTS:
            if name in entry:
                out[name] = self._state_array(i, name, entry[name])
        return out

    def _set_param_state(self, i, entry) -> None:
        self.steps[i] = entry["step"]
        for name in self._MOMENTS:
            getattr(self, name)[i] = entry.get(name)

    def step(self) -> None:
        adam_step = _config.ops().adam_step  # a backend without it raises MissingOpError
        beta1, beta2 = self.betas
        moments = self._MOMENTS if self.amsgrad else self._MOMENTS[:2]
        for i, p in enumerate(self.params):
            for name in moments:
                if getattr(self, name)[i] is None:
                    getattr(self, name)[i] = np.zeros_like(p.value)
            self.steps[i] += 1
            adam_step(p.value, p.grad, self.exp_avg[i], self.exp_avg_sq[i],
                      self.max_exp_avg_sq[i] if self.amsgrad else None, self.steps[i],
                      self.lr, beta1, beta2, self.eps, self.weight_decay, self.amsgrad,
                      self._DECOUPLED)

    def __repr__(self):
        return (f"{type(self).__name__}(lr={self.lr}, betas={self.betas}, eps={self.eps}, "
                f"weight_decay={self.weight_decay}, amsgrad={self.amsgrad})")


class AdamW(Adam):
    """``AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False)``:
    Adam with decoupled weight decay, ``value *= 1 - lr * weight_decay`` before the Adam step
    (the gradient itself is not decayed), as ``torch.optim.AdamW``."""

    _DECOUPLED = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)


class StepLR:
    """Multiply the optimiser's learning rate by ``gamma`` every ``step_size`` calls of ``step()``
    (one call per epoch): ``lr = base_lr * gamma ** (epoch // step_size)``."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a gradkit.optim optimizer (SGD, Adam, AdamW), "
                            f"got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.step_size = positive_int(step_size, "step_size")
        self.gamma = real_number(gamma, "gamma", low=0.0, low_open=True)
        self.base_lr = optimizer.lr
        self.last_epoch = 0

    def step(self) -> None:
        self.last_epoch += 1
        self.optimizer.lr = self.base_lr * self.gamma ** (self.last_epoch // self.step_size)

    def get_last_lr(self) -> float:
        return self.optimizer.lr
