"""Input checks for the public entry points: validate once, convert once, name the argument.

Arrays reach the backends C-contiguous, float32 or float64 (labels int64). A copy that the
caller did not ask for (a non-contiguous view, or a float dtype cast to match another
argument) raises a ConversionWarning, so that nothing is copied silently.
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class ConversionWarning(UserWarning):
    """An input was copied to make it C-contiguous or to give it the dtype of its partner."""


def _as_ndarray(value, name):
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (list, tuple, numbers.Number)) or hasattr(value, "__array__"):
        try:
            return np.asarray(value)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"{name} must be array-like of numbers: {exc}") from None
    raise TypeError(f"{name} must be a numpy array, got {type(value).__name__}")


def float_array(value, name, *, ndim=None, dtype=None, min_ndim=None):
    """Return ``value`` as a C-contiguous float32/float64 array.

    dtype=None keeps the array's float dtype (a list becomes float64, like NumPy); otherwise the
    array is cast to ``dtype`` with a ConversionWarning if it was a different float dtype.
    Integer, bool, complex and object arrays are refused: the caller must choose a float dtype.
    """
    arr = _as_ndarray(value, name)
    from_list = not isinstance(value, np.ndarray)
    if from_list and arr.dtype.kind in "iu":
        arr = arr.astype(np.float64 if dtype is None else dtype)
    if arr.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if min_ndim is not None and arr.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), got shape {arr.shape}")
    if dtype is not None and arr.dtype != np.dtype(dtype):
        if not from_list:
            warnings.warn(f"{name} converted from {arr.dtype} to {np.dtype(dtype)}",
                          ConversionWarning, stacklevel=3)
        arr = arr.astype(dtype)
    if not arr.flags.c_contiguous:
        if not from_list:
            warnings.warn(f"{name} copied to a C-contiguous array", ConversionWarning, stacklevel=3)
        arr = np.ascontiguousarray(arr)
    return arr


def label_array(value, name, *, n_classes, length):
    """Integer class labels in [0, n_classes) as a C-contiguous int64 array of ``length``."""
    arr = _as_ndarray(value, name)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer class labels, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.shape[0] != length:
        raise ValueError(f"{name} has {arr.shape[0]} labels but the input has {length} rows")
    if arr.size:
        low, high = int(arr.min()), int(arr.max())
        if low < 0 or high >= n_classes:
            bad = low if low < 0 else high
            raise ValueError(f"{name} contains {bad}; labels must be in [0, {n_classes})")
    return np.ascontiguousarray(arr, dtype=np.int64)


def bce_pred_message(n_bad):
    """The one message every backend raises when BCE gets values that are not probabilities
    (csrc/bindings/nn.cpp builds the same words)."""
    return (f"pred must hold probabilities in [0, 1], but {n_bad} value(s) are outside or NaN "
            "(use bce_with_logits_loss for raw scores)")


def same_shape(a, b, name_a, name_b):
    if a.shape != b.shape:
        raise ValueError(f"{name_a} has shape {a.shape} but {name_b} has shape {b.shape}; "
                         "they must match")


def real_number(value, name, *, low=None, high=None, low_open=False):
    """A finite real number (not bool) within the given bounds, returned as float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}={value} must be finite")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{name}={value} must be {'>' if low_open else '>='} {low}")
    if high is not None and value > high:
        raise ValueError(f"{name}={value} must be <= {high}")
    return value


def positive_int(value, name, *, low=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name}={value} must be >= {low}")
    return int(value)


def choice(value, name, options):
    if value not in options:
        raise ValueError(f"{name}={value!r} must be one of {', '.join(map(repr, options))}")
    return value


def all_finite(arrays):
    """True if no float array of `arrays` holds a NaN or an infinity, by the sum of each (see
    first_nonfinite); one floating-point error state for all of them, since entering one costs
    more than the sum of a small array (a tiny network's parameters are checked after every
    fit call)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return all(arr.dtype.kind != "f" or arr.size == 0
                   or math.isfinite(float(np.add.reduce(arr, axis=None))) for arr in arrays)


def first_nonfinite(arr):
    """Index tuple of the first NaN or infinite entry of a float array, or None if all are finite.

    A finite sum proves every entry finite (inf or NaN in a sum never cancels), so clean data
    costs one vectorised pass and no temporary; only a non-finite sum (bad data, or finite
    values whose sum overflows) pays for the element-wise search.
    """
    if all_finite([arr]):
        return None
    bad = np.flatnonzero(~np.isfinite(arr.reshape(-1)))
    return tuple(int(i) for i in np.unravel_index(bad[0], arr.shape)) if bad.size else None


def describe_position(name, index):
    if len(index) == 2:
        return f"{name}[{index[0]}, {index[1]}] (row {index[0]}, column {index[1]})"
    return f"{name}[{', '.join(map(str, index))}]"


def require_finite(arr, name, *, opt_out="check_finite=False"):
    """Refuse NaN and infinities, naming the first one by row and column."""
    index = first_nonfinite(arr)
    if index is not None:
        raise ValueError(f"{name} must be finite, but {describe_position(name, index)} is "
                         f"{arr[index]}; clean or impute the data, or pass {opt_out} to skip "
                         "this check")
    return arr


def adam_hyperparameters(lr, betas, eps, weight_decay):
    """(lr, beta1, beta2, eps, weight_decay) checked with PyTorch's rules for Adam/AdamW."""
    lr = real_number(lr, "lr", low=0.0)
    if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
        raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    beta1 = real_number(betas[0], "betas[0]", low=0.0)
    beta2 = real_number(betas[1], "betas[1]", low=0.0)
    for name, beta in (("betas[0]", beta1), ("betas[1]", beta2)):
        if beta >= 1.0:
            raise ValueError(f"{name}={beta} must be in [0, 1)")
    eps = real_number(eps, "eps", low=0.0)
    weight_decay = real_number(weight_decay, "weight_decay", low=0.0)
    return lr, beta1, beta2, eps, weight_decay
