"""The C++ backend: adapts gradkit._core (pybind11) to the backend contract in
``gradkit.backends``. Arrays arrive validated and C-contiguous; _core refuses anything else."""
from __future__ import annotations

import numpy as np

from gradkit import _core


# ---- fused MLP epoch
# mlp_epoch(weights, biases, weight_bufs, bias_bufs, activations, slope, loss, reduction, half,
#           X, y, perm, batch_size, first_step, n_steps, lr, momentum, dampening, nesterov,
#           weight_decay, first, step_loss) -> steps done
# Runs mini-batches first_step .. first_step + n_steps - 1 of an epoch (rows perm[s*batch : ...])
# in place on the parameters and momentum buffers; writes each batch's loss to step_loss and
# stops early (returning the steps done) at a non-finite loss, without updating for it.
# loss in MLP_LOSSES; y is int64 labels (N,) for "cross_entropy", else targets (N, OUT).

MLP_LOSSES = ("cross_entropy", "mse", "l1", "bce_with_logits")
_ACT_CODES = {"none": 0, "relu": 1, "leaky_relu": 2, "sigmoid": 3, "tanh": 4}


def mlp_epoch(weights, biases, weight_bufs, bias_bufs, activations, slope, loss, reduction, half,
              X, y, perm, batch_size, first_step, n_steps, lr, momentum, dampening, nesterov,
              weight_decay, first, step_loss):
    labels = y if loss == "cross_entropy" else None
    targets = None if loss == "cross_entropy" else y
    return _core.mlp_epoch(
        list(weights), list(biases), list(weight_bufs), list(bias_bufs),
        [_ACT_CODES[a] for a in activations], float(slope), MLP_LOSSES.index(loss),
        reduction == "mean", bool(half), X, labels, targets, perm, int(batch_size),
        int(first_step), int(n_steps), float(lr), float(momentum), float(dampening),
        bool(nesterov), float(weight_decay), bool(first), step_loss)
