"""Layers as thin objects: each holds its Parameters, calls a backend op forward, and the op's
backward beside it. Gradients accumulate (``+=``) until ``zero_grad()``; no autograd.

    model = gk.nn.Sequential(gk.nn.Linear(2, 3, seed=0), gk.nn.Sigmoid(), gk.nn.Linear(3, 1, seed=1))
    y = model(x)            # validates x once, caches what backward needs
    dx = model.backward(dy) # dL/dx, and dL/dW, dL/db accumulated into each Parameter's .grad
"""
from __future__ import annotations

import math

import numpy as np

from gradkit import _config
from gradkit._validation import float_array, positive_int, real_number
from gradkit.backends._spec import ACTIVATIONS

__all__ = ["Parameter", "Module", "Linear", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax",
           "Identity", "Sequential"]


class Parameter:
    """A trainable array ``value`` and the gradient ``grad`` accumulated into it (same shape)."""

    __slots__ = ("value", "grad")

    def __init__(self, value: np.ndarray):
        self.value = np.ascontiguousarray(value)
        self.grad = np.zeros_like(self.value)

    @property
    def shape(self):
        return self.value.shape

    @property
    def dtype(self):
        return self.value.dtype

    def __repr__(self):
        return f"Parameter(shape={self.value.shape}, dtype={self.value.dtype})"


class Module:
    """Base class: ``y = module(x)`` runs ``forward``; ``backward(dy)`` returns dL/dx.

    ``__call__`` validates and converts the input once; ``forward``/``backward`` trust it, so a
    Sequential validates only at its entry and then calls its layers' ``forward`` directly.
    """

    training = True

    def parameters(self) -> list[Parameter]:
        return []

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad[...] = 0

    def train(self, mode: bool = True):
        self.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    def _check_input(self, x):
        return float_array(x, "x", min_ndim=1)

    def __call__(self, x):
        return self.forward(self._check_input(x))

    def forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dy):  # pragma: no cover - abstract
        raise NotImplementedError

    def _need(self, cached, what="backward"):
        if cached is None:
            raise RuntimeError(f"{type(self).__name__}.{what}() called before forward()")
        return cached

    @staticmethod
    def _like(dy, ref, name="dy"):
        """dy as a C-contiguous array with the dtype and shape of ``ref`` (the cached output)."""
        dy = np.ascontiguousarray(dy, dtype=ref.dtype)
        if dy.shape != ref.shape:
            raise ValueError(f"{name} has shape {dy.shape} but the forward output had shape "
                             f"{ref.shape}; they must match")
        return dy


class Linear(Module):
    """Dense layer ``y = x @ weight.T + bias``; weight is (out_features, in_features).

    Initialised as PyTorch does: weight and bias uniform in ``[-1/sqrt(in), 1/sqrt(in)]``,
    drawn from ``np.random.default_rng(seed)``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 dtype=np.float32, seed=None):
        self.in_features = positive_int(in_features, "in_features")
        self.out_features = positive_int(out_features, "out_features")
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias must be a bool, got {type(bias).__name__}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(self.in_features)
        self.weight = Parameter(rng.uniform(-bound, bound, (self.out_features, self.in_features))
                                .astype(dtype))
        self.bias = (Parameter(rng.uniform(-bound, bound, self.out_features).astype(dtype))
                     if bias else None)
        self._x = None

    def parameters(self):
        return [self.weight] if self.bias is None else [self.weight, self.bias]

    def _check_input(self, x):
        x = float_array(x, "x", ndim=2, dtype=self.weight.value.dtype)
        if x.shape[1] != self.in_features:
            raise ValueError(f"x has {x.shape[1]} features but this Linear layer expects "
                             f"in_features={self.in_features}")
        return x

    def forward(self, x, activation="none", slope=0.01):
        self._x = x
        b = None if self.bias is None else self.bias.value
        return _config.ops().linear(x, self.weight.value, b, activation, slope)

    def backward(self, dy):
        x = self._need(self._x)
        dy = np.ascontiguousarray(dy, dtype=x.dtype)
        if dy.shape != (x.shape[0], self.out_features):
            raise ValueError(f"dy must have shape {(x.shape[0], self.out_features)}, got {dy.shape}")
        db = None if self.bias is None else self.bias.grad
        return _config.ops().linear_backward(dy, x, self.weight.value, self.weight.grad, db, True)

    def __repr__(self):
        return (f"Linear(in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, dtype={self.weight.value.dtype})")


class _Activation(Module):
    """Elementwise activation: caches its output y (every backward here is a function of y)."""

    op = ""
    args: tuple = ()

    def __init__(self):
        self._y = None

    def forward(self, x):
        self._y = getattr(_config.ops(), self.op)(x, *self.args)
        return self._y

    def backward(self, dy):
        y = self._need(self._y)
        return getattr(_config.ops(), self.op + "_backward")(self._like(dy, y), y, *self.args)

    def __repr__(self):
        return f"{type(self).__name__}()"


class ReLU(_Activation):
    """``max(x, 0)``."""

    op = "relu"


class LeakyReLU(_Activation):
    """``x if x > 0 else slope * x`` (PyTorch calls slope ``negative_slope``)."""

    op = "leaky_relu"

    def __init__(self, slope: float = 0.01):
        super().__init__()
        self.slope = real_number(slope, "slope", low=0.0)
        self.args = (self.slope,)

    def __repr__(self):
        return f"LeakyReLU(slope={self.slope})"


class Sigmoid(_Activation):
    """``1 / (1 + e^-x)``."""

    op = "sigmoid"


class Tanh(_Activation):
    """``tanh(x)``."""

    op = "tanh"


class Softmax(_Activation):
    """Row-wise softmax of a 2-D input (batch, classes)."""

    op = "softmax"

    def _check_input(self, x):
        return float_array(x, "x", ndim=2)


class Identity(Module):
    """``y = x``: a placeholder layer (for a linear output in a Sequential, say)."""

    def forward(self, x):
        return x

    def backward(self, dy):
        return dy

    def __repr__(self):
        return "Identity()"


# Activations the GEMM epilogue can apply inside Linear.forward (name, extra args).
_FUSABLE = {cls: cls.op for cls in _Activation.__subclasses__() if cls.op in ACTIVATIONS}


class Sequential(Module):
    """Layers applied in order; backward runs them in reverse.

    A Linear followed by ReLU/LeakyReLU/Sigmoid/Tanh runs as one fused GEMM (bias and activation
    in the epilogue); the activation still caches its output for backward.
    """

    def __init__(self, *layers: Module):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        if not layers:
            raise ValueError("Sequential needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"layers[{i}] must be a gradkit.nn.Module, "
                                f"got {type(layer).__name__}")
        self.layers = list(layers)

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __iter__(self):
        return iter(self.layers)

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]

    def train(self, mode: bool = True):
        super().train(mode)
        for layer in self.layers:
            layer.train(mode)
        return self

    def _check_input(self, x):
        return self.layers[0]._check_input(x)

    def forward(self, x):
        i, n = 0, len(self.layers)
        while i < n:
            layer = self.layers[i]
            nxt = self.layers[i + 1] if i + 1 < n else None
            if isinstance(layer, Linear) and type(nxt) in _FUSABLE:
                slope = nxt.slope if isinstance(nxt, LeakyReLU) else 0.01
                x = layer.forward(x, _FUSABLE[type(nxt)], slope)
                nxt._y = x
                i += 2
            else:
                x = layer.forward(x)
                i += 1
        return x

    def backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy

    def __repr__(self):
        inner = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"
