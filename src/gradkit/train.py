"""The training loop: ``gk.fit``, ``gk.predict``, ``gk.evaluate``.

Two paths give the same parameters for the same seed (within float tolerance):

* fused: a Sequential of Linear layers and ReLU/LeakyReLU/Sigmoid/Tanh/Identity, a
  CrossEntropy/MSE/L1/BCEWithLogits loss (reduction "mean" or "sum") and SGD on the cpp or numba
  backend, or Adam/AdamW on the cpp backend (``_spec.FUSED_OPTIMIZERS``; elsewhere they take
  the layer-by-layer path and ``fused=True`` says why), runs each epoch in one compiled call
  (forward, loss, backward and update over all mini-batches, buffers allocated once, GIL
  released). With a progress bar the epoch runs in
  chunks of steps so the bar can move; the arithmetic does not change. With AVX-512 the C++
  epoch visits each mini-batch's rows in an order of similar zero patterns (the same rows, so
  only the rounding of the sums over rows differs).
* layer by layer: any other model, loss or backend: ``zero_grad, forward, loss, backward, step``
  per mini-batch, with the arrays validated once before the loop.
"""
from __future__ import annotations

import math
import sys
import warnings
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from gradkit import _config, _train_checks, losses as _losses, nn as _nn
from gradkit._validation import (FLOAT_DTYPES, ConversionWarning, float_array, label_array,
                                 positive_int, require_finite)
from gradkit.backends import _spec
from gradkit.optim import SGD, Adam, AdamW, Optimizer

__all__ = ["fit", "predict", "evaluate", "History", "Evaluation", "TrainingDivergedError"]

# Steps per compiled call when a progress bar is shown (the bar updates between calls).
PROGRESS_CHUNK = 200


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or infinite during ``fit``."""


@dataclass
class History:
    """Per-epoch record of a ``fit`` call.

    loss: mean training loss per sample over the epoch (for reduction="sum": the epoch's sum);
    val_loss / val_accuracy: on validation_data after each epoch (accuracy is NaN for regression
    losses); fused: whether the whole-epoch compiled path ran; stopped_epoch: the epoch at which
    early stopping ended training (None if it did not); best_epoch: the epoch of the lowest
    validation loss (None without validation_data).
    """

    loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    fused: bool = False
    stopped_epoch: int | None = None
    best_epoch: int | None = None

    @property
    def epochs(self) -> int:
        return len(self.loss)


class Evaluation(NamedTuple):
    loss: float
    accuracy: float


# ------------------------------------------------------------------------------ validation


def _model_dtype(model):
    params = model.parameters()
    return params[0].value.dtype if params else np.dtype(np.float64)


def _linears(model):
    layers = model.layers if isinstance(model, _nn.Sequential) else [model]
    return [layer for layer in layers if isinstance(layer, _nn.Linear)]


def _check_X(model, X, name="X"):
    X = float_array(X, name, ndim=2, dtype=_model_dtype(model))
    lin = _linears(model)
    first = model.layers[0] if isinstance(model, _nn.Sequential) else model
    if lin and first is lin[0] and X.shape[1] != lin[0].in_features:
        raise ValueError(f"{name} has {X.shape[1]} features but the model's first layer expects "
                         f"in_features={lin[0].in_features}")
    if X.shape[0] == 0:
        raise ValueError(f"{name} has no rows")
    return X


def _n_outputs(model, X):
    lin = _linears(model)
    if lin:
        return lin[-1].out_features
    was = model.training
    out = model.forward(X[:1])
    model.train(was)
    return out.shape[1] if out.ndim == 2 else 1


def _check_y(loss_fn, y, n_rows, n_out, dtype, name="y"):
    if isinstance(loss_fn, _losses.CrossEntropyLoss):
        return label_array(y, name, n_classes=n_out, length=n_rows)
    y = float_array(y, name, dtype=dtype)
    if y.ndim == 1 and n_out == 1:
        y = y.reshape(-1, 1)
    if y.shape != (n_rows, n_out):
        if y.shape[:1] != (n_rows,):
            raise ValueError(f"{name} has {y.shape[0] if y.ndim else 0} rows but the input has "
                             f"{n_rows}; they must match")
        raise ValueError(f"{name} must have shape {(n_rows, n_out)} to match the model's "
                         f"{n_out} outputs, got {y.shape}")
    return y


def _match_model_dtype(model, loss_fn, X, y, validation_data):
    """Cast float arrays of the other float dtype to the model's, with one warning that says
    what to do (instead of one ConversionWarning per array)."""
    dtype = _model_dtype(model)
    named = [("X", X), ("y", y)]
    if isinstance(validation_data, (tuple, list)) and len(validation_data) == 2:
        named += [("validation_data[0]", validation_data[0]),
                  ("validation_data[1]", validation_data[1])]
    if isinstance(loss_fn, _losses.CrossEntropyLoss):
        named = [(name, a) for name, a in named if name not in ("y", "validation_data[1]")]
    converted, out = [], {}
    for name, a in named:
        if isinstance(a, np.ndarray) and a.dtype in FLOAT_DTYPES and a.dtype != dtype:
            out[name] = np.asarray(a, dtype=dtype, order="C")
            converted.append((name, a.dtype))
    if converted:
        what = ", ".join(f"{name} ({d})" for name, d in converted)
        other = "float64" if dtype == np.float32 else "float32"
        warnings.warn(
            f"fit converted {what} to the model's {dtype} (a copy per call). To avoid it, pass "
            f"{dtype} data (X.astype(np.{dtype})) or build the layers in {other} "
            f"(nn.Linear(..., dtype=np.{other})).", ConversionWarning, stacklevel=3)
        X, y = out.get("X", X), out.get("y", y)
        if "validation_data[0]" in out or "validation_data[1]" in out:
            validation_data = (out.get("validation_data[0]", validation_data[0]),
                               out.get("validation_data[1]", validation_data[1]))
    return X, y, validation_data


def _check_common(model, loss_fn):
    if not isinstance(model, _nn.Module):
        raise TypeError(f"model must be a gradkit.nn.Module, got {type(model).__name__}")
    if not isinstance(loss_fn, _losses._Loss):
        raise TypeError(f"loss_fn must be a gradkit.losses loss, got {type(loss_fn).__name__}")


# ---------------------------------------------------------------------------- fused path


_FUSED_ACTS = {getattr(_nn, layer): op for layer, op in _spec.ACTIVATION_LAYERS.items()
               if op in _spec.ACTIVATIONS and op != "none"}
_FUSED_LOSSES = {getattr(_losses, layer): loss for layer, loss in _spec.LOSS_LAYERS.items()
                 if loss in _spec.FUSED_LOSSES}


@dataclass
class _Plan:
    linears: list
    activations: list
    slope: float
    loss: str
    half: bool
    buffer_index: list  # per parameter in model order: index into optimizer.params


def _fused_plan(model, loss_fn, optimizer):
    """How to run this model as one compiled epoch, or (None, reason) when it cannot."""
    if not _spec.implements(_config.get_backend(), "mlp_epoch"):
        return None, f"the {_config.get_backend()!r} backend has no fused epoch"
    layers = model.layers if isinstance(model, _nn.Sequential) else [model]
    linears, acts, slopes = [], [], set()
    for layer in layers:
        if isinstance(layer, _nn.Linear):
            linears.append(layer)
            acts.append("none")
        elif isinstance(layer, _nn.Identity):
            continue
        elif type(layer) in _FUSED_ACTS and linears and acts[-1] == "none":
            acts[-1] = _FUSED_ACTS[type(layer)]
            if isinstance(layer, _nn.LeakyReLU):
                slopes.add(layer.slope)
        else:
            return None, f"layer {type(layer).__name__} at this position is not supported"
    if not linears or len(slopes) > 1:
        return None, "no Linear layer, or LeakyReLU layers with different slopes"
    if type(loss_fn) not in _FUSED_LOSSES or loss_fn.reduction == "none":
        return None, f"{loss_fn!r} is not supported"
    backend, kind = _config.get_backend(), type(optimizer).__name__
    runs = _spec.FUSED_OPTIMIZERS.get(backend, ())
    if kind not in runs or type(optimizer) not in (SGD, Adam, AdamW):
        return None, f"the {backend!r} fused epoch runs {', '.join(runs)} only, not {kind}"
    params = model.parameters()
    index = {id(p): i for i, p in enumerate(optimizer.params)}
    if len(index) != len(params) or any(id(p) not in index for p in params):
        return None, "the optimizer does not update exactly the model's parameters"
    if len({p.value.dtype for p in params}) != 1:
        return None, "the parameters have different dtypes"
    if isinstance(optimizer, Adam):
        # One step count for the whole call; every parameter has it after layer-by-layer steps.
        if len({optimizer.steps[index[id(p)]] for p in params}) != 1:
            return None, "the parameters have different Adam step counts"
    else:
        bufs = [optimizer.buffers[index[id(p)]] for p in params]
        if optimizer.momentum != 0 and any(b is None for b in bufs) \
                and any(b is not None for b in bufs):
            return None, "some momentum buffers exist and others do not"
    return _Plan(linears, acts, slopes.pop() if slopes else 0.01, _FUSED_LOSSES[type(loss_fn)],
                 getattr(loss_fn, "half", False), [index[id(p)] for p in params]), ""


def _adam_moments(plan, opt):
    """Adam's arguments to mlp_epoch: its moments per weight and bias (created as zeros before
    the first step, as Adam.step does) and the step count every parameter has."""
    names = opt._MOMENTS if opt.amsgrad else opt._MOMENTS[:2]
    index = iter(plan.buffer_index)
    weight_moments, bias_moments = [], []
    for lin in plan.linears:
        for p, out in ((lin.weight, weight_moments), (lin.bias, bias_moments)):
            if p is None:
                out.append(None)
                continue
            i = next(index)
            for name in names:
                if getattr(opt, name)[i] is None:
                    getattr(opt, name)[i] = np.zeros_like(p.value)
            out.append([getattr(opt, name)[i] for name in names])
    return dict(betas=opt.betas, eps=opt.eps, amsgrad=opt.amsgrad, decoupled=opt._DECOUPLED,
                step=opt.steps[plan.buffer_index[0]], weight_moments=weight_moments,
                bias_moments=bias_moments)


def _fused_chunk(plan, loss_fn, opt, X, y, perm, batch_size, first_step, step_loss,
                 sparse_input="auto"):
    """Run len(step_loss) steps from first_step; returns the number of steps done."""
    # Only the cpp epoch has a zero-skipping first layer; the others are dense already.
    extra = {"sparse_input": sparse_input} if _config.get_backend() == "cpp" else {}
    if isinstance(opt, Adam):
        return _fused_adam_chunk(plan, loss_fn, opt, X, y, perm, batch_size, first_step,
                                 step_loss, extra)
    params = [p for lin in plan.linears for p in lin.parameters()]
    first = False
    if opt.momentum != 0:
        first = opt.buffers[plan.buffer_index[0]] is None
        if first:
            for p, i in zip(params, plan.buffer_index):
                opt.buffers[i] = np.zeros_like(p.value)
    weights, biases, wbufs, bbufs = [], [], [], []
    for lin in plan.linears:
        weights.append(lin.weight.value)
        biases.append(None if lin.bias is None else lin.bias.value)
    if opt.momentum != 0:
        pos = 0
        for lin in plan.linears:
            wbufs.append(opt.buffers[plan.buffer_index[pos]])
            pos += 1
            if lin.bias is not None:
                bbufs.append(opt.buffers[plan.buffer_index[pos]])
                pos += 1
            else:
                bbufs.append(None)
    else:
        wbufs = bbufs = [None] * len(plan.linears)
    return _config.ops().mlp_epoch(
        weights, biases, wbufs, bbufs, plan.activations, plan.slope, plan.loss,
        loss_fn.reduction, plan.half, X, y, perm, batch_size, first_step, len(step_loss),
        opt.lr, opt.momentum, opt.dampening, opt.nesterov, opt.weight_decay, first, step_loss,
        **extra)


def _fused_adam_chunk(plan, loss_fn, opt, X, y, perm, batch_size, first_step, step_loss, extra):
    """_fused_chunk with Adam/AdamW: the moments are updated in place and every parameter's
    step count advances by the steps done, as that many Adam.step() calls would."""
    weights = [lin.weight.value for lin in plan.linears]
    biases = [None if lin.bias is None else lin.bias.value for lin in plan.linears]
    none = [None] * len(plan.linears)
    done = _config.ops().mlp_epoch(
        weights, biases, none, none, plan.activations, plan.slope, plan.loss, loss_fn.reduction,
        plan.half, X, y, perm, batch_size, first_step, len(step_loss), opt.lr, 0.0, 0.0, False,
        opt.weight_decay, False, step_loss, adam=_adam_moments(plan, opt), **extra)
    for i in plan.buffer_index:
        opt.steps[i] += done
    return done


# ---------------------------------------------------------------------------------- fit


def _accuracy(loss_fn, out, y):
    if isinstance(loss_fn, _losses.CrossEntropyLoss):
        return float(np.mean(out.argmax(axis=1) == y))
    if isinstance(loss_fn, _losses.BCEWithLogitsLoss):
        return float(np.mean((out > 0) == (y > 0.5)))
    if isinstance(loss_fn, _losses.BCELoss):
        return float(np.mean((out > 0.5) == (y > 0.5)))
    return math.nan


def _diverged(what, epoch, step, steps, start_epoch, cause):
    return TrainingDivergedError(
        f"{what} at epoch {epoch}, step {step} of {steps}: training stopped and the model was "
        f"restored to its parameters at the start of epoch {start_epoch}. {cause}")


def _fused_divergence(plan, loss_fn, opt, X, y, perm, batch_size, params, state, upto,
                      step_loss, seen):
    """Replay the block one step at a time from its start to find the first step whose loss or
    update is not finite (a NaN weight can go unseen by the loss for many steps). Returns
    (step index in the block, what went wrong), or (upto - 1, seen) if the replay finds nothing
    earlier; the caller restores the block's start."""
    _train_checks.restore(params, opt, state)
    for j in range(upto):
        if _fused_chunk(plan, loss_fn, opt, X, y, perm, batch_size, j, step_loss[j:j + 1]) < 1:
            return j, f"the loss became {step_loss[j]}"
        if not _train_checks.params_finite(params):
            return j, "the parameters became non-finite in the update"
    return upto - 1, seen


def fit(model, loss_fn, optimizer, X, y, *, epochs: int = 1, batch_size: int = 32,
        shuffle: bool = True, seed=None, validation_data=None, progress: bool = True,
        patience: int | None = None, scheduler=None, fused: bool | None = None,
        check_finite: bool = True, initial_epoch: int = 0,
        restore_best: bool = False, sync_every: int | None = None, client=None,
        sparse_input="auto") -> History:
    """Train ``model`` by mini-batch descent with ``optimizer`` (SGD, Adam, AdamW); returns a
    History (loss, val_loss, val_accuracy).

    Each epoch visits every row once, in mini-batches of ``batch_size`` (the last may be
    smaller), in an order drawn from ``np.random.default_rng(seed)`` when ``shuffle``. With
    ``validation_data=(X_val, y_val)`` the validation loss (and accuracy for classification) is
    recorded after each epoch; ``patience`` stops training after that many epochs without a
    lower validation loss; ``restore_best=True`` (Keras's ``restore_best_weights``) gives the
    model, when fit returns, the parameters it had after the epoch of lowest validation loss
    (``History.best_epoch``), whether or not training stopped early. ``scheduler`` (e.g.
    optim.StepLR) is stepped after each epoch.
    ``fused=None`` uses the whole-epoch compiled path when the model allows it, True requires
    it, False forces the layer-by-layer path. X (and y for regression losses) must be finite
    unless ``check_finite=False``. A NaN or infinite loss or update raises
    TrainingDivergedError naming the first bad epoch and step and its likely cause; the model
    (and the optimizer's state) go back to the start of that epoch (of the block of epochs run
    in one call).

    Resuming (as Keras): ``initial_epoch=k`` says k epochs are done, and trains epochs k+1 to
    ``epochs``. With the same ``seed`` it takes the orders those epochs would have had, so
    ``fit(epochs=2, seed=s)``, ``gk.save(model, path, optimizer=opt)``, ``gk.load(path,
    optimizer=True)`` and ``fit(epochs=4, initial_epoch=2, seed=s)`` give the bits of
    ``fit(epochs=4, seed=s)`` (a scheduler must be restored by the caller).

    X and y may be dask arrays chunked alike by rows (data-parallel, see gradkit.train_dask):
    ``batch_size=None`` is exact full-batch descent, otherwise local SGD averaging the chunks'
    models every ``sync_every`` mini-batches (None: once an epoch); ``client`` is None (dask's
    default scheduler), a distributed.Client or a scheduler address.
    ``sparse_input`` chooses how the fused epoch's first layer treats exact zeros of X (pixels
    of images): False never looks for them, True skips them (cpp backend with SGD, on CPUs with
    the zero-skipping kernels; elsewhere, and always with Adam/AdamW, the dense layer runs: its
    kernels fuse the SGD rule, see csrc/kernels/mlp/first_layer.hpp), "auto" decides from a
    cost model on the first batch. The result is the same either way up to the order of float
    sums.
    """
    _check_common(model, loss_fn)
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a gradkit.optim.SGD, Adam or AdamW, got "
                        f"{type(optimizer).__name__}")
    _train_checks.check_optimizer_params(model, optimizer)
    if loss_fn.reduction == "none":
        raise ValueError("loss_fn.reduction='none' cannot drive training; use 'mean' or 'sum'")
    if any(type(a).__module__.startswith("dask.") for a in (X, y)):  # data-parallel on Dask
        from gradkit import train_dask
        return train_dask.fit(model, loss_fn, optimizer, X, y, epochs=epochs,
                              batch_size=batch_size, shuffle=shuffle, seed=seed,
                              validation_data=validation_data, patience=patience,
                              scheduler=scheduler, sync_every=sync_every, client=client,
                              history=History(fused=False), initial_epoch=initial_epoch,
                              restore_best=restore_best)
    if sync_every is not None or client is not None:
        raise TypeError("sync_every and client apply to dask arrays X, y only")
    epochs = positive_int(epochs, "epochs")
    initial_epoch = positive_int(initial_epoch, "initial_epoch", low=0)
    if initial_epoch >= epochs:
        raise ValueError(f"initial_epoch={initial_epoch} must be < epochs={epochs} (epochs is "
                         "the last epoch's number, as in Keras)")
    batch_size = positive_int(batch_size, "batch_size")
    if patience is not None:
        patience = positive_int(patience, "patience")
        if validation_data is None:
            raise ValueError("patience needs validation_data: early stopping watches the "
                             "validation loss")
    if not isinstance(restore_best, (bool, np.bool_)):
        raise TypeError(f"restore_best must be a bool, got {type(restore_best).__name__}")
    if restore_best and validation_data is None:
        raise ValueError("restore_best=True needs validation_data: the best epoch is the one "
                         "with the lowest validation loss")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
    if fused not in (None, True, False):
        raise TypeError(f"fused must be None, True or False, got {fused!r}")
    if not (sparse_input is True or sparse_input is False or sparse_input == "auto"):
        raise ValueError(f"sparse_input must be 'auto', True or False, got {sparse_input!r}")
    if sparse_input is True and _config.get_backend() != "cpp":
        raise ValueError("sparse_input=True needs the 'cpp' backend (the zero-skipping first "
                         f"layer is C++ only); the backend is {_config.get_backend()!r}")
    if scheduler is not None and not hasattr(scheduler, "step"):
        raise TypeError("scheduler must have a step() method (e.g. gradkit.optim.StepLR)")

    X, y, validation_data = _match_model_dtype(model, loss_fn, X, y, validation_data)
    X = _check_X(model, X)
    n = X.shape[0]
    if hasattr(y, "__len__") and not isinstance(y, (str, bytes)) and len(y) != n:
        raise ValueError(f"X has {n} rows but y has {len(y)}; they must match")
    n_out = _n_outputs(model, X)
    y = _check_y(loss_fn, y, n, n_out, X.dtype)
    if check_finite:
        require_finite(X, "X")
        require_finite(y, "y")
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("validation_data must be a pair (X_val, y_val)")
        Xv = _check_X(model, validation_data[0], "validation_data[0]")
        yv = _check_y(loss_fn, validation_data[1], Xv.shape[0], n_out, X.dtype,
                      "validation_data[1]")
        if check_finite:
            require_finite(Xv, "validation_data[0]")
            require_finite(yv, "validation_data[1]")

    plan = None
    if fused is not False:
        plan, why = _fused_plan(model, loss_fn, optimizer)
        if plan is None and fused:
            raise ValueError(f"fused=True but this model cannot run fused: {why}")

    rng = np.random.default_rng(seed)
    if shuffle:
        for _ in range(initial_epoch):  # the orders of the epochs already done
            rng.permutation(n)
    steps = -(-n // batch_size)
    sizes = np.full(steps, batch_size, dtype=np.float64)
    sizes[-1] = n - (steps - 1) * batch_size
    show = bool(progress) and sys.stderr.isatty()
    history = History(fused=plan is not None)
    params = model.parameters()
    best, waited, best_values = math.inf, 0, None

    # Without per-epoch work in Python (bar, validation, schedule), several epochs run in one
    # compiled call: the same arithmetic, minus the per-call cost that dominates tiny networks.
    block = 1
    if plan is not None and not show and validation_data is None and scheduler is None:
        block = max(1, min(epochs, (1 << 20) // n))
    done_epochs = initial_epoch
    while done_epochs < epochs:
        nb = min(block, epochs - done_epochs)
        epoch = done_epochs + 1
        if shuffle:
            perms = [rng.permutation(n) for _ in range(nb)]
            perm = (perms[0] if nb == 1 else np.concatenate(perms)).astype(np.int64, copy=False)
        else:
            perm = np.arange(n, dtype=np.int64)  # every epoch of the call takes this order
        state = _train_checks.snapshot(params, optimizer)
        step_loss = np.zeros(nb * steps, dtype=np.float64)
        bar = None
        if show:
            from tqdm.auto import tqdm

            bar = tqdm(total=steps, desc=f"epoch {epoch}/{epochs}", unit="step", leave=False,
                       file=sys.stderr)
        model.train()
        try:
            if plan is not None:
                total = nb * steps
                chunk = PROGRESS_CHUNK if bar is not None else total
                for first in range(0, total, chunk):
                    k = min(chunk, total - first)
                    ran = _fused_chunk(plan, loss_fn, optimizer, X, y, perm, batch_size, first,
                                       step_loss[first:first + k], sparse_input=sparse_input)
                    if ran < k:
                        seen = f"the loss became {step_loss[first + ran]}"
                        _raise_fused_divergence(plan, loss_fn, optimizer, X, y, perm, batch_size,
                                                params, state, first + ran + 1, step_loss, steps,
                                                epoch, seen)
                    if bar is not None:
                        bar.update(k)
                        bar.set_postfix(loss=f"{_running(step_loss, sizes, first + k):.4f}")
            else:
                _layer_by_layer_epoch(model, loss_fn, optimizer, X, y, perm, batch_size,
                                      step_loss, sizes, bar, params, state, epoch)
        finally:
            if bar is not None:
                bar.close()
        if plan is not None and not _train_checks.params_finite(params):
            # Every loss was finite, yet an update overflowed somewhere in the block.
            _raise_fused_divergence(plan, loss_fn, optimizer, X, y, perm, batch_size, params,
                                    state, nb * steps, step_loss, steps, epoch,
                                    "the parameters became non-finite in the update")
        per_epoch = step_loss.reshape(nb, steps)
        if loss_fn.reduction == "mean":
            history.loss.extend(((per_epoch * sizes).sum(axis=1) / n).tolist())
        else:
            history.loss.extend(per_epoch.sum(axis=1).tolist())
        done_epochs += nb

        if validation_data is not None:
            out = predict(model, Xv, _checked=True)
            val = float(loss_fn._compute(out, yv))
            history.val_loss.append(val)
            history.val_accuracy.append(_accuracy(loss_fn, out, yv))
            improved = val < best
            if improved:
                best, history.best_epoch = val, epoch
                if restore_best:
                    best_values = [p.value.copy() for p in params]
            if patience is not None:
                if improved:
                    waited = 0
                else:
                    waited += 1
                    if waited >= patience:
                        history.stopped_epoch = epoch
                        break
        if scheduler is not None:
            scheduler.step()
    if best_values is not None:
        for p, value in zip(params, best_values):
            p.value[...] = value
    return history


def _raise_fused_divergence(plan, loss_fn, opt, X, y, perm, batch_size, params, state, upto,
                            step_loss, steps, epoch, seen):
    bad, what = _fused_divergence(plan, loss_fn, opt, X, y, perm, batch_size, params, state,
                                  upto, step_loss, seen)
    _train_checks.restore(params, opt, state)
    s = bad % steps
    n = X.shape[0]
    offset = (bad // steps) * n if len(perm) > n else 0  # perm holds one epoch or the block's
    rows = perm[offset + s * batch_size:offset + min((s + 1) * batch_size, n)]
    raise _diverged(what, epoch + bad // steps, s + 1, steps, epoch,
                    _train_checks.batch_cause(X, y, rows, opt.lr))


def _layer_by_layer_epoch(model, loss_fn, optimizer, X, y, perm, batch_size, step_loss, sizes,
                          bar, params, state, epoch):
    """zero_grad, forward, loss, backward, step per mini-batch (inputs already validated)."""
    steps = len(step_loss)
    # Overflow is detected below and reported as TrainingDivergedError, not as a warning.
    with np.errstate(over="ignore", invalid="ignore"):
        for s in range(steps):
            idx = perm[s * batch_size:(s + 1) * batch_size]
            xb, yb = X[idx], y[idx]
            optimizer.zero_grad()
            value = loss_fn._compute(model.forward(xb), yb)
            step_loss[s] = value
            what = None if math.isfinite(value) else f"the loss became {value}"
            if what is None:
                model.backward(loss_fn.backward())
                optimizer.step()
                if not _train_checks.params_finite(params):
                    what = "the parameters became non-finite in the update"
            if what is not None:
                _train_checks.restore(params, optimizer, state)
                raise _diverged(what, epoch, s + 1, steps, epoch,
                                _train_checks.batch_cause(X, y, idx, optimizer.lr))
            if bar is not None and (s % 50 == 49 or s == steps - 1):
                bar.update(s + 1 - bar.n)
                bar.set_postfix(loss=f"{_running(step_loss, sizes, s + 1):.4f}")


def _running(step_loss, sizes, upto):
    return float(step_loss[:upto] @ sizes[:upto] / sizes[:upto].sum())


# --------------------------------------------------------------------------- inference


def predict(model, X, *, batch_size: int | None = None, check_finite: bool = True,
            _checked: bool = False) -> np.ndarray:
    """The model's output for every row of X, in eval mode, in chunks of ``batch_size`` rows
    (default: 4096) to bound memory. X must be finite unless ``check_finite=False``."""
    if not _checked:
        if not isinstance(model, _nn.Module):
            raise TypeError(f"model must be a gradkit.nn.Module, got {type(model).__name__}")
        X = _check_X(model, X)
        if check_finite:
            require_finite(X, "X")
    chunk = 4096 if batch_size is None else positive_int(batch_size, "batch_size")
    was = model.training
    model.eval()
    try:
        outs = [model.forward(X[i:i + chunk]) for i in range(0, X.shape[0], chunk)]
    finally:
        model.train(was)
    return outs[0] if len(outs) == 1 else np.concatenate(outs)


def evaluate(model, loss_fn, X, y, *, batch_size: int | None = None,
             check_finite: bool = True) -> Evaluation:
    """(loss, accuracy) of the model on (X, y); accuracy is NaN for regression losses. X and y
    must be finite unless ``check_finite=False``."""
    _check_common(model, loss_fn)
    X = _check_X(model, X)
    y = _check_y(loss_fn, y, X.shape[0], _n_outputs(model, X), X.dtype)
    if check_finite:
        require_finite(X, "X")
        require_finite(y, "y")
    out = predict(model, X, batch_size=batch_size, _checked=True)
    reduction = "mean" if loss_fn.reduction == "none" else loss_fn.reduction
    return Evaluation(float(loss_fn._compute(out, y, reduction)), _accuracy(loss_fn, out, y))
