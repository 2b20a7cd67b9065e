"""Gradient descent on a function you write: the course's ``x_new = x_old - lr * f'(x_old)``.

``minimize`` walks downhill from ``x0`` and keeps every iterate, so the path can be printed or
drawn. When no gradient is given it uses float64 central differences (``numerical_gradient``).
A walk that runs away (the iterates or the value grow without bound, turn non-finite, or the value
falls without bound because the function has no minimum) is reported: ``diverged=True``, a
message that says which, and a ``RuntimeWarning``. It is never returned as if it had converged.
"""
from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, field
from typing import Callable, Union

import numpy as np

from gradkit._validation import positive_int, real_number

__all__ = ["DescentResult", "minimize", "numerical_gradient"]

ArrayLike = Union[float, np.ndarray, list, tuple]

# A walk is called divergent once |x| or |f| exceeds these multiples of where it started: a
# bounded-below smooth function descended with a stable step never gets there.
_X_BLOWUP = 1e8
_F_BLOWUP = 1e16


@dataclass
class DescentResult:
    """Where gradient descent stopped and how it got there.

    x          the last iterate (a float when x0 was a number, else an array shaped like x0)
    fun        f(x)
    grad       the gradient at x
    path       every iterate, x0 first: shape (n_iter + 1,) + shape of x0
    values     f at every iterate: shape (n_iter + 1,)
    n_iter     steps taken
    converged  the last step was shorter than tol (relative to |x|)
    diverged   the walk ran away (see message)
    message    one line saying why it stopped
    """

    x: float | np.ndarray
    fun: float
    grad: float | np.ndarray
    path: np.ndarray
    values: np.ndarray
    n_iter: int
    converged: bool
    diverged: bool
    message: str = field(default="")

    def __repr__(self) -> str:
        return (f"DescentResult(x={self.x!r}, fun={self.fun!r}, n_iter={self.n_iter}, "
                f"converged={self.converged}, diverged={self.diverged}, message={self.message!r})")


def _norm(v: np.ndarray) -> float:
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.linalg.norm(v))


def _start_point(x0) -> tuple[np.ndarray, bool]:
    """x0 as a float64 array, and whether the caller gave a plain number."""
    scalar = isinstance(x0, numbers.Real) and not isinstance(x0, bool)
    if isinstance(x0, bool) or not (scalar or isinstance(x0, (np.ndarray, list, tuple))):
        raise TypeError(f"x0 must be a real number or an array of real numbers, "
                        f"got {type(x0).__name__}")
    arr = np.asarray(x0)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"x0 must hold real numbers, got dtype {arr.dtype}")
    arr = np.array(arr, dtype=np.float64)  # a private copy: the walk never writes to the caller's x0
    if arr.size == 0:
        raise ValueError("x0 must not be empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError("x0 must be finite")
    return arr, scalar or arr.ndim == 0


def _as_given(x, scalar, shape):
    """The flat working copy x as the caller sees it: a float, or an array shaped like x0."""
    return float(x[0]) if scalar else x.reshape(shape).copy()


def _call_f(f, x, scalar, shape, what="f") -> float:
    value = f(_as_given(x, scalar, shape))
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must return a real number, got {type(value).__name__}") from None
    return value


def _numerical_gradient(f, x, scalar, shape, eps) -> np.ndarray:
    """Central differences over the flat float64 array x (restored before returning)."""
    g = np.empty_like(x)
    for i in range(x.size):
        keep = x[i]
        x[i] = keep + eps
        up = _call_f(f, x, scalar, shape)
        x[i] = keep - eps
        down = _call_f(f, x, scalar, shape)
        x[i] = keep
        g[i] = (up - down) / (2.0 * eps)
    return g


def numerical_gradient(f: Callable, x: ArrayLike, eps: float = 1e-6) -> float | np.ndarray:
    """The gradient of ``f`` at ``x`` by float64 central differences.

    ``df/dx_i ≈ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)``; the error is O(eps²) for smooth f
    (plus rounding of order |f| * 1e-16 / eps). Returns a float when x is a number, else an array
    shaped like x.

    >>> round(numerical_gradient(lambda x: 2 * x**2 - 12 * x + 20, 1.0), 6)   # f'(1) = 4 - 12
    -8.0
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    point, scalar = _start_point(x)
    eps = real_number(eps, "eps", low=0.0, low_open=True)
    g = _numerical_gradient(f, point.reshape(-1), scalar, point.shape, eps)
    return _as_given(g, scalar, point.shape)


def _gradient_function(f, grad, shape, scalar, eps=1e-6):
    """x (flat) -> the gradient at x (flat), from grad or by central differences."""
    if grad is None:
        return lambda x: _numerical_gradient(f, x, scalar, shape, eps)

    def analytic(x):
        g = grad(_as_given(x, scalar, shape))
        try:
            g = np.asarray(g, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"grad must return real numbers, got {type(g).__name__}") from None
        if g.size == 1 and math.prod(shape) == 1:
            g = g.reshape(shape)
        if g.shape != shape:
            raise ValueError(f"grad returned shape {g.shape} but x0 has shape {shape}")
        return g.reshape(-1)

    return analytic


def _falls_steadily(values: list[float]) -> bool:
    """f fell at every step of the second half of the walk, and no slower at the end than at its
    start: what an unbounded-below f does (f = -x, a saddle), not a walk towards a minimum, whose
    steps shrink as the slope flattens."""
    n = len(values) - 1
    if n < 20:
        return False
    late = np.diff(np.asarray(values[n // 2:]))
    return bool(np.all(late < 0) and -late[-1] >= -late[0])


def minimize(f: Callable, x0: ArrayLike, *, grad: Callable | None = None, lr: float = 0.1,
             max_iter: int = 1000, tol: float = 1e-8) -> DescentResult:
    """Plain gradient descent: ``x <- x - lr * grad(x)`` until the step is shorter than tol.

    f        the function to minimise; called with a float when x0 is a number, else an array
    x0       the starting point (a number or an array of numbers)
    grad     the gradient of f (same calling convention, returns the same shape); None: central
             differences in float64
    lr       the step size (learning rate), > 0
    max_iter the most steps to take
    tol      stop (converged) when ||lr * grad|| <= tol * max(1, ||x||)

    Divergence is detected and reported, never hidden: the result has ``diverged=True`` and a
    message, and a RuntimeWarning is issued, when x or f(x) becomes non-finite, when ||x|| grows
    beyond 1e8 times its start, or when |f(x)| grows beyond 1e16 times its start (f falling
    without bound means f has no minimum to find, as at a saddle; f rising means lr is too large),
    or when max_iter is reached while f was still falling at a steady or growing rate (a walk
    towards a minimum slows down; one down an endless slope such as f(x) = -x does not).

    >>> r = minimize(lambda x: 2 * x**2 - 12 * x + 20, x0=0.0, grad=lambda x: 4 * x - 12)
    >>> round(r.x, 6), round(r.fun, 6), r.converged
    (3.0, 2.0, True)
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    if grad is not None and not callable(grad):
        raise TypeError(f"grad must be callable or None, got {type(grad).__name__}")
    x, scalar = _start_point(x0)
    shape = x.shape
    x = x.reshape(-1)
    lr = real_number(lr, "lr", low=0.0, low_open=True)
    max_iter = positive_int(max_iter, "max_iter", low=0)
    tol = real_number(tol, "tol", low=0.0)
    gradient = _gradient_function(f, grad, shape, scalar)

    fx = _call_f(f, x, scalar, shape)
    if not math.isfinite(fx):
        raise ValueError(f"f(x0) = {fx} must be finite")
    x_limit = _X_BLOWUP * max(1.0, _norm(x))
    f_limit = _F_BLOWUP * max(1.0, abs(fx))
    f_start = fx

    path, values = [x.copy()], [fx]
    g = gradient(x)
    converged = diverged = False
    message = f"stopped after max_iter={max_iter} steps without converging"
    n_iter = 0
    while n_iter < max_iter:
        if not np.all(np.isfinite(g)):
            diverged, message = True, f"the gradient became non-finite at step {n_iter}"
            break
        with np.errstate(over="ignore", invalid="ignore"):
            step = lr * g
            x = x - step
        n_iter += 1
        fx = _call_f(f, x, scalar, shape)
        path.append(x.copy())
        values.append(fx)
        x_norm = _norm(x)
        if not (np.all(np.isfinite(x)) and math.isfinite(fx)):
            diverged, message = True, f"x or f(x) became non-finite at step {n_iter}"
            break
        if x_norm > x_limit or abs(fx) > f_limit:
            diverged = True
            if fx < f_start:
                message = (f"diverged: f fell to {fx:.3g} and |x| grew to {x_norm:.3g} after "
                           f"{n_iter} steps; f is unbounded below (no minimum to find)")
            else:
                message = (f"diverged: f rose to {fx:.3g} and |x| grew to {x_norm:.3g} after "
                           f"{n_iter} steps; lr={lr} is too large for this function")
            break
        if _norm(step) <= tol * max(1.0, x_norm):
            converged = True
            message = f"converged after {n_iter} steps (step <= tol={tol})"
            g = gradient(x)
            break
        g = gradient(x)

    if not (converged or diverged) and _falls_steadily(values):
        diverged = True
        message = (f"diverged: f fell at a steady or growing rate through all of the last "
                   f"{n_iter - n_iter // 2} of {n_iter} steps (to {fx:.3g}); f looks unbounded "
                   f"below (no minimum to find)")
    if diverged:
        with np.errstate(all="ignore"):
            try:
                g = gradient(x)
            except (OverflowError, ValueError, TypeError):
                g = np.full_like(x, np.nan)
        warnings.warn(message, RuntimeWarning, stacklevel=2)
    path_arr = np.stack(path)
    return DescentResult(
        x=_as_given(x, scalar, shape),
        fun=fx,
        grad=_as_given(g, scalar, shape),
        path=path_arr.reshape(-1) if scalar else path_arr.reshape((-1,) + shape),
        values=np.asarray(values, dtype=np.float64),
        n_iter=n_iter,
        converged=converged,
        diverged=diverged,
        message=message,
    )
