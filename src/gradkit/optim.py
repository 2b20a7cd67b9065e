"""Stochastic gradient descent, ``W -= lr * dL/dW``, with PyTorch's momentum semantics, and a
step learning-rate schedule."""
from __future__ import annotations

import numpy as np

from gradkit import _config
from gradkit._validation import positive_int, real_number
from gradkit.nn import Parameter

__all__ = ["SGD", "StepLR"]


class SGD:
    """``SGD(params, lr, momentum=0, dampening=0, nesterov=False, weight_decay=0)``.

    Per parameter, each ``step()``: ``g = grad + weight_decay * value``; with momentum the buffer
    is ``g`` at the first step and ``momentum * buf + (1 - dampening) * g`` after; Nesterov steps
    along ``g + momentum * buf``, plain momentum along ``buf``; then ``value -= lr * g``.
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0):
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
        self.params = params
        self.lr = real_number(lr, "lr", low=0.0)
        self.momentum = real_number(momentum, "momentum", low=0.0)
        self.dampening = real_number(dampening, "dampening")
        self.weight_decay = real_number(weight_decay, "weight_decay", low=0.0)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be a bool, got {type(nesterov).__name__}")
        if nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(f"nesterov=True requires momentum > 0 and dampening == 0, got "
                             f"momentum={self.momentum}, dampening={self.dampening}")
        self.nesterov = bool(nesterov)
        # Momentum buffers, created at the first step (PyTorch: buf starts as the first gradient).
        self.buffers: list[np.ndarray | None] = [None] * len(params)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad[...] = 0

    def step(self) -> None:
        ops = _config.ops()
        use_buf = self.momentum != 0
        for i, p in enumerate(self.params):
            first = self.buffers[i] is None
            if use_buf and first:
                self.buffers[i] = np.zeros_like(p.value)
            ops.sgd_step(p.value, p.grad, self.buffers[i] if use_buf else None, self.lr,
                         self.momentum, self.dampening, self.nesterov, self.weight_decay, first)

    def state_dict(self) -> dict:
        return {"lr": self.lr, "momentum": self.momentum, "dampening": self.dampening,
                "nesterov": self.nesterov, "weight_decay": self.weight_decay}

    def __repr__(self):
        return (f"SGD(lr={self.lr}, momentum={self.momentum}, dampening={self.dampening}, "
                f"nesterov={self.nesterov}, weight_decay={self.weight_decay})")


class StepLR:
    """Multiply the optimiser's learning rate by ``gamma`` every ``step_size`` calls of ``step()``
    (one call per epoch): ``lr = base_lr * gamma ** (epoch // step_size)``."""

    def __init__(self, optimizer: SGD, step_size: int, gamma: float = 0.1):
        if not isinstance(optimizer, SGD):
            raise TypeError(f"optimizer must be a gradkit.optim.SGD, got {type(optimizer).__name__}")
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
