"""Checks around ``gk.fit`` kept out of its loop: the optimizer's parameters, the state a
diverged block is restored to, and what went wrong at the first bad step."""
from __future__ import annotations

import numpy as np

from gradkit._validation import all_finite, describe_position, first_nonfinite


def check_optimizer_params(model, optimizer):
    """The optimizer must update exactly the model's parameters: any other set trains nothing
    (or trains another model) without an error."""
    mine = {id(p) for p in model.parameters()}
    theirs = [id(p) for p in getattr(optimizer, "params", [])]
    if len(theirs) != len(mine) or set(theirs) != mine:
        shared = len(mine.intersection(theirs))
        raise ValueError(
            f"the optimizer does not update exactly the model's parameters: the model has "
            f"{len(mine)}, the optimizer {len(theirs)}, of which {shared} are the model's; build "
            "it from this model, e.g. SGD(model.parameters(), lr=...)")


def params_finite(params):
    return all_finite([p.value for p in params])


def snapshot(params, optimizer):
    """Copies of the parameters and of the optimizer's state (momentum buffers, Adam moments
    and step counts; ``state_dict()`` copies its arrays)."""
    return [p.value.copy() for p in params], optimizer.state_dict()


def restore(params, optimizer, state):
    values, optimizer_state = state
    for p, saved in zip(params, values):
        p.value[...] = saved
    optimizer.load_state_dict(optimizer_state)


def batch_cause(X, y, rows, lr):
    """Why a step diverged: a non-finite value in its mini-batch (only possible with
    check_finite=False), else the learning rate."""
    for name, arr in (("X", X), ("y", y)):
        if arr.dtype.kind != "f":
            continue
        index = first_nonfinite(arr[rows])
        if index is not None:
            at = (int(rows[index[0]]),) + index[1:]
            return (f"Its mini-batch holds {describe_position(name, at)} = {arr[at]} "
                    "(check_finite=False let it in).")
    return f"The learning rate (lr={lr}) is probably too large; try a smaller one."
