"""The independent oracle for every backward pass: float64 central differences."""
import numpy as np


def central_differences(f, arr, eps=1e-6):
    """d f(arr) / d arr, one entry at a time: (f(a + eps) - f(a - eps)) / (2 eps).

    ``arr`` is perturbed in place and restored; ``f`` takes it and returns a scalar.
    """
    grad = np.zeros_like(arr)
    flat, gflat = arr.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f(arr)
        flat[i] = old - eps
        down = f(arr)
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return grad
