"""Data-parallel ``gk.fit`` on dask arrays (``gk.fit`` sends dask X, y here).

Each chunk of rows is one replica of the model; the driver holds the model and the optimizer.

* ``batch_size=None``: full-batch gradient descent. Each step, every chunk returns the gradient
  of its summed loss (one round trip per step); the driver adds them, divides as the loss's
  "mean" reduction does and takes one optimizer step. This equals single-machine full-batch
  descent (``gk.fit(..., batch_size=len(X), shuffle=False)``) up to the rounding of the sums.
  One step is one "epoch": ``epochs`` steps, one History.loss entry each.
* ``batch_size=b``: local SGD. Each chunk runs gradkit's mini-batch epoch (the fused compiled
  path when the model allows it) on its own rows from the current parameters, for
  ``sync_every`` mini-batches or, with ``sync_every=None``, its whole epoch; then the driver
  averages the parameters and the optimizer's state (momentum buffers, Adam's moments),
  weighted by the rows each chunk used.
  History.loss holds the mean training loss of each synchronisation. This is NOT sequential
  SGD: within a round the replicas do not see each other's updates, so the path differs from a
  single-process run (it is as accurate in practice on the data sets tested, not identical).

The model, loss and optimizer travel inline with each task (small next to the data); X and y
stay on the workers, persisted for the fit, and are recomputed from lineage if a worker is lost.
"""
from __future__ import annotations

import copy
import math

import numpy as np

from gradkit import losses as _losses
from gradkit.cluster.dask import check_dask_matrix, check_row_chunks, is_dask_array

__all__ = ["fit", "is_dask_input"]

_CONNECT_TIMEOUT = "5s"  # waiting for a scheduler that does not answer (Client's default: 30 s)


def is_dask_input(X, y) -> bool:
    return is_dask_array(X) or is_dask_array(y)


def _compute_function(client):
    """(compute, persist, opened): dask.compute on `client` (None: dask's current default scheduler, a
    distributed.Client, or an address such as "tcp://scheduler:8786" to connect to)."""
    import dask

    if client is None:
        return dask.compute, dask.persist, None
    if isinstance(client, str):
        from distributed import Client

        try:
            client = Client(client, timeout=_CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ValueError(f"client={client!r}: no Dask scheduler answered at that address "
                             f"within {_CONNECT_TIMEOUT} ({type(exc).__name__}: {exc})") from None
        opened = client
    else:
        if not hasattr(client, "get") or not hasattr(client, "scheduler"):
            raise TypeError(f"client must be None, a distributed.Client or a scheduler address "
                            f"string, got {type(client).__name__}")
        opened = None

    def compute(*args):
        return dask.compute(*args, scheduler=client)

    def persist(*args):
        return dask.persist(*args, scheduler=client)

    return compute, persist, opened


def _check_data(model, loss_fn, X, y, compute):
    """X (float, model dtype) and y (int64 labels or float targets (n, n_out)) as dask arrays
    with the same row chunks; label range checked with one small reduction."""
    from gradkit.train import _linears, _model_dtype

    if not is_dask_array(X):
        raise TypeError(f"X must be a dask array when y is one, got {type(X).__name__}")
    X = check_dask_matrix(X).astype(_model_dtype(model))
    lin = _linears(model)
    if lin and X.shape[1] != lin[0].in_features:
        raise ValueError(f"X has {X.shape[1]} features but the model's first layer expects "
                         f"in_features={lin[0].in_features}")
    y = check_row_chunks(y, X, "y")
    n_out = lin[-1].out_features if lin else None
    if isinstance(loss_fn, _losses.CrossEntropyLoss):
        if y.ndim != 1 or y.dtype.kind not in "iu":
            raise ValueError(f"y must be 1-D integer class labels for CrossEntropyLoss, got "
                             f"{y.ndim}-D {y.dtype}")
        y = y.astype(np.int64)
        low, high = (int(v) for v in compute(y.min(), y.max()))
        if n_out is not None and (low < 0 or high >= n_out):
            raise ValueError(f"y must hold class labels in [0, {n_out}), got [{low}, {high}]")
    else:
        if y.ndim == 1:
            y = y.reshape(-1, 1)
        if y.numblocks[1:] != (1,):
            raise ValueError("y is split into chunks across its columns; use "
                             "y.rechunk({1: -1})")
        if n_out is not None and y.shape[1] != n_out:
            raise ValueError(f"y has {y.shape[1]} columns but the model has {n_out} outputs")
        y = y.astype(X.dtype)
    return X, y


# ---------------------------------------------------------------------- chunk tasks


def _mean_divisor(loss_fn, y):
    """What the loss's "mean" reduction divides its sum by: rows for cross-entropy, elements
    otherwise (PyTorch's convention, as gradkit.losses)."""
    return y.shape[0] if isinstance(loss_fn, _losses.CrossEntropyLoss) else y.size


def _chunk_gradient(state, x, y):
    """(gradient sums per parameter, loss sum, mean divisor) of the chunk's rows."""
    model, loss_fn, _ = copy.deepcopy(state)  # the threads scheduler shares `state`
    model.train()
    model.zero_grad()
    value = loss_fn._compute(model.forward(x), y, "sum")
    model.backward(loss_fn.backward())
    return [p.grad for p in model.parameters()], float(value), _mean_divisor(loss_fn, y)


def _add_gradients(*parts):
    grads = [g.copy() for g in parts[0][0]]
    value, count = parts[0][1], parts[0][2]
    for g, v, c in parts[1:]:
        for acc, gi in zip(grads, g):
            acc += gi
        value += v
        count += c
    return grads, value, count


def _chunk_local_sgd(state, x, y, batch_size, seed, first_step, n_steps):
    """Run mini-batches first_step .. first_step + n_steps - 1 of the chunk's epoch (rows in
    the order drawn from `seed`, or as stored for seed None) from the given state; returns
    (parameters, optimizer state dict, rows used, loss summed over those rows)."""
    from gradkit.train import fit

    model, loss_fn, optimizer = copy.deepcopy(state)
    n = x.shape[0]
    order = np.arange(n) if seed is None else np.random.default_rng(seed).permutation(n)
    rows = order[first_step * batch_size:(first_step + n_steps) * batch_size]
    # Arrays deserialized by distributed carry an equal but not identical dtype object, which
    # the compiled epoch's dtype test (by identity) rejects: view them with numpy's own dtype.
    xs, ys = x[rows].view(x.dtype.type), y[rows].view(y.dtype.type)
    history = fit(model, loss_fn, optimizer, xs, ys, epochs=1, batch_size=batch_size,
                  shuffle=False, progress=False)
    scale = rows.size if loss_fn.reduction == "mean" else 1
    return ([p.value for p in model.parameters()], optimizer.state_dict(), rows.size,
            history.loss[0] * scale)


# ---------------------------------------------------------------------- the driver


def _full_batch_step(compute, delayed, state, xs, ys):
    from gradkit.cluster.dask import _FAN_IN

    task = delayed(_chunk_gradient, pure=False)
    parts = [task(state, x, y) for x, y in zip(xs, ys)]
    combine = delayed(_add_gradients, pure=False)
    while len(parts) > 1:
        parts = [combine(*parts[i:i + _FAN_IN]) for i in range(0, len(parts), _FAN_IN)]
    return compute(parts[0])[0]


def _weighted_mean(arrays, weights):
    acc = np.zeros(arrays[0].shape, dtype=np.float64)
    for a, wt in zip(arrays, weights):
        acc += wt * a.astype(np.float64)
    return (acc / float(sum(weights))).astype(arrays[0].dtype)


def _average_state(states, weights):
    """The optimizers' state dicts averaged: every buffer (momentum, Adam's moments) weighted by
    rows; a step count (Adam's bias correction) is the largest of the replicas'."""
    first = states[0]
    averaged = {}
    for i, entry in first["state"].items():
        averaged[i] = {key: _weighted_mean([s["state"][i][key] for s in states], weights)
                       if isinstance(value, np.ndarray)
                       else max(s["state"][i][key] for s in states)
                       for key, value in entry.items()}
    return {"state": averaged, "param_groups": first["param_groups"]}


def _local_round(compute, delayed, state, xs, ys, plan):
    """One synchronisation: plan is [(chunk, seed, first_step, n_steps, batch_size)]; sets the
    model and optimizer to the row-weighted average of the replicas; returns the mean loss."""
    model, loss_fn, optimizer = state
    task = delayed(_chunk_local_sgd, pure=False)
    outs = compute(*[task(state, xs[c], ys[c], batch, seed, first, steps)
                     for c, seed, first, steps, batch in plan])
    weights = [o[2] for o in outs]
    for i, p in enumerate(model.parameters()):
        p.value[...] = _weighted_mean([o[0][i] for o in outs], weights)
    optimizer.load_state_dict(_average_state([o[1] for o in outs], weights))
    loss = sum(o[3] for o in outs)
    return loss / float(sum(weights)) if loss_fn.reduction == "mean" else loss


def _epoch_plans(chunk_rows, batch_size, sync_every, seeds):
    """Rounds of one epoch: per round, the chunks that still have mini-batches to run."""
    steps = [-(-n // batch_size) for n in chunk_rows]
    per_round = max(steps) if sync_every is None else sync_every
    rounds = []
    for first in range(0, max(steps), per_round):
        rounds.append([(c, seeds[c], first, min(per_round, s - first), batch_size)
                       for c, s in enumerate(steps) if s > first])
    return rounds


def fit(model, loss_fn, optimizer, X, y, *, epochs, batch_size, shuffle, seed, validation_data,
        patience, scheduler, sync_every, client, history, initial_epoch=0, restore_best=False):
    """gk.fit on dask arrays (model, loss_fn and optimizer already checked by gk.fit)."""
    import dask

    from gradkit._validation import positive_int
    from gradkit.train import _accuracy, _check_X, _check_y, predict

    epochs = positive_int(epochs, "epochs")
    if initial_epoch != 0 or restore_best:
        raise ValueError("initial_epoch and restore_best are not supported with dask arrays "
                         "X, y")
    if patience is not None:
        patience = positive_int(patience, "patience")
        if validation_data is None:
            raise ValueError("patience needs validation_data: early stopping watches the "
                             "validation loss")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
    if batch_size is not None:
        batch_size = positive_int(batch_size, "batch_size")
    if sync_every is not None:
        sync_every = positive_int(sync_every, "sync_every")
        if batch_size is None:
            raise ValueError("sync_every needs a batch_size: full-batch descent (batch_size="
                             "None) synchronises every step")
    compute, persist, opened = _compute_function(client)
    try:
        X, y = _check_data(model, loss_fn, X, y, compute)
    except BaseException:
        if opened is not None:
            opened.close()
        raise
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("validation_data must be a pair (X_val, y_val) of numpy arrays")
        Xv = _check_X(model, validation_data[0], "validation_data[0]")
        yv = _check_y(loss_fn, validation_data[1], Xv.shape[0],
                      predict(model, Xv[:1], _checked=True).shape[1], Xv.dtype,
                      "validation_data[1]")
    Xp, yp = persist(X, y)  # iterated on: keep them on the workers for the fit
    xs, ys = list(Xp.to_delayed().ravel()), list(yp.to_delayed().ravel())
    rng = np.random.default_rng(seed)
    state = (model, loss_fn, optimizer)
    best, waited = math.inf, 0
    try:
        for epoch in range(1, epochs + 1):
            if batch_size is None:
                grads, value, count = _full_batch_step(compute, dask.delayed, state, xs, ys)
                scale = 1.0 / count if loss_fn.reduction == "mean" else 1.0
                for p, g in zip(model.parameters(), grads):
                    p.grad[...] = g * scale
                optimizer.step()
                history.loss.append(value * scale)
            else:
                seeds = (rng.integers(0, 2**63, size=len(xs)) if shuffle
                         else [None] * len(xs))
                for plan in _epoch_plans(X.chunks[0], batch_size, sync_every, seeds):
                    history.loss.append(_local_round(compute, dask.delayed, state, xs, ys, plan))
            if not all(np.isfinite(p.value).all() for p in model.parameters()):
                from gradkit.train import TrainingDivergedError

                raise TrainingDivergedError(
                    f"the parameters became non-finite at epoch {epoch}; the learning rate "
                    f"(lr={optimizer.lr}) is probably too large; try a smaller one.")
            if validation_data is not None:
                out = predict(model, Xv, _checked=True)
                val = float(loss_fn._compute(out, yv))
                history.val_loss.append(val)
                history.val_accuracy.append(_accuracy(loss_fn, out, yv))
                if patience is not None:
                    best, waited = (val, 0) if val < best else (best, waited + 1)
                    if waited >= patience:
                        history.stopped_epoch = epoch
                        break
            if scheduler is not None:
                scheduler.step()
    finally:
        if opened is not None:
            opened.close()
    return history
