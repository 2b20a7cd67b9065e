"""The registry of ops: every op a backend may implement, with its contract; the activation and
loss codes shared by the compiled kernels; and which backend implements which op.

Everything else takes its names and codes from here: ``backends.load`` exposes exactly the ops
registered for a backend (any other raises :class:`MissingOpError`, naming the backend and the
op, never a silent switch to another backend), ``ops_cpp`` and the Numba package map names to
codes with the tables below, ``nn``/``train``/``io`` map layer classes to op names with them, and
tests/test_backends.py runs every op on every backend that has it against ``ops_numpy``.

Shared conventions: x, w, ... are C-contiguous arrays of one float dtype (float32 or float64),
labels int64 (k-means labels int32); scalars are Python floats/bools; every op returns new
arrays unless it says "in place". Each backend trusts its input: the public layer
(``gradkit.functional`` and friends) has already checked shapes, values and dtypes.
"""
from __future__ import annotations

from dataclasses import dataclass

BACKENDS = ("cpp", "numba", "cython", "numpy")
REDUCTIONS = ("mean", "sum", "none")

# ---- activation codes
# What a dense layer (and the fused epoch) applies in its epilogue. The position is the code the
# compiled kernels use: gk::Act in csrc/kernels/gemm.hpp, the Activation enum of ops_cython.pyx.
ACTIVATIONS = ("none", "relu", "leaky_relu", "sigmoid", "tanh")
ACTIVATION_CODES = {name: code for code, name in enumerate(ACTIVATIONS)}
# The gradkit.nn layer class (by name; io saves it) of each activation op; "softmax" is row-wise
# and never fused into a dense layer.
ACTIVATION_LAYERS = {"Identity": "none", "ReLU": "relu", "LeakyReLU": "leaky_relu",
                     "Sigmoid": "sigmoid", "Tanh": "tanh", "Softmax": "softmax"}

# ---- loss codes
# The losses the fused epoch computes; the position is the code mlp_epoch's kernels use.
FUSED_LOSSES = ("cross_entropy", "mse", "l1", "bce_with_logits")
FUSED_LOSS_CODES = {name: code for code, name in enumerate(FUSED_LOSSES)}
# Elementwise (pred, target) losses; the position is the code of the Numba pair-loss kernels.
PAIR_LOSSES = ("l1", "mse", "bce", "bce_with_logits")
PAIR_LOSS_CODES = {name: code for code, name in enumerate(PAIR_LOSSES)}
# The gradkit.losses class (by name) of each loss; its op is f"{loss}_loss".
LOSS_LAYERS = {"L1Loss": "l1", "MSELoss": "mse", "BCELoss": "bce",
               "BCEWithLogitsLoss": "bce_with_logits", "CrossEntropyLoss": "cross_entropy"}


@dataclass(frozen=True)
class Op:
    name: str
    group: str
    contract: str
    backends: frozenset


_ALL = frozenset(BACKENDS)
_COMPILED = frozenset({"cpp", "numba"})      # the fused epoch needs a compiled loop
# The optimizers (gradkit.optim class names) each backend's fused epoch runs; any other takes
# fit's layer-by-layer path, which says why.
FUSED_OPTIMIZERS = {"cpp": ("SGD", "Adam", "AdamW"), "numba": ("SGD",)}


def _op(name, group, contract, backends=_ALL):
    return Op(name, group, contract, frozenset(backends))


_TABLE = [
    # ---- GEMM and dense layers
    _op("matmul", "dense",
        "matmul(a, b, trans_a=False, trans_b=False, out=None, accumulate=False) -> out: "
        "out = op(a) @ op(b) (+ out when accumulate); out is allocated when None."),
    _op("linear", "dense",
        "linear(x, w, b, activation='none', slope=0.01) -> y = act(x @ w.T + b); x (B, IN), "
        "w (OUT, IN), b (OUT,) or None; activation in ACTIVATIONS."),
    _op("linear_backward", "dense",
        "linear_backward(dy, x, w, dw, db, need_dx=True) -> dx or None: dw += dy.T @ x and "
        "db += dy.sum(0) in place (db may be None); returns dx = dy @ w when need_dx."),
    # ---- activations: backward takes the forward *output* y; slope >= 0
    _op("relu", "elementwise", "relu(x) = max(x, 0); NaN stays NaN."),
    _op("relu_backward", "elementwise", "relu_backward(dy, y) = dy where y > 0, else 0."),
    _op("leaky_relu", "elementwise", "leaky_relu(x, slope) = x if x > 0 else slope * x."),
    _op("leaky_relu_backward", "elementwise",
        "leaky_relu_backward(dy, y, slope) = dy if y > 0 else slope * dy."),
    _op("sigmoid", "elementwise", "sigmoid(x) = 1 / (1 + e^-x), without overflow."),
    _op("sigmoid_backward", "elementwise", "sigmoid_backward(dy, y) = dy * y * (1 - y)."),
    _op("tanh", "elementwise", "tanh(x)."),
    _op("tanh_backward", "elementwise", "tanh_backward(dy, y) = dy * (1 - y^2)."),
    _op("softmax", "rowwise", "softmax(x): row-wise over the last axis of a 2-D array."),
    _op("softmax_backward", "rowwise",
        "softmax_backward(dy, y) = y * (dy - sum_row(dy * y)) of a 2-D array."),
    # ---- losses: one fused pass -> (value, grad w.r.t. the prediction); reduction in
    # REDUCTIONS; the value is a Python float for "mean"/"sum" (accumulated in float64), an
    # array for "none"; grad is the derivative of the reduced value ("none": of the sum).
    _op("l1_loss", "loss", "l1_loss(pred, target, reduction) -> (value, grad)."),
    _op("mse_loss", "loss",
        "mse_loss(pred, target, reduction, half) -> (value, grad); half: 0.5 * the value."),
    _op("bce_loss", "loss",
        "bce_loss(pred, target, reduction) -> (value, grad); logs clamped at -100 as PyTorch "
        "does; raises ValueError (bce_pred_message) when a pred is outside [0, 1] or NaN."),
    _op("bce_with_logits_loss", "loss",
        "bce_with_logits_loss(logits, target, reduction) -> (value, grad)."),
    _op("cross_entropy_loss", "loss",
        "cross_entropy_loss(logits, labels, reduction) -> (value, grad); logits (B, C), labels "
        "int64 (B,); 'none' gives (B,) values."),
    # ---- optimisers
    _op("sgd_step", "optimizer",
        "sgd_step(param, grad, buf, lr, momentum, dampening, nesterov, weight_decay, first) -> "
        "None, in place on param and buf (None when momentum == 0); PyTorch semantics: with "
        "momentum, buf = g on the first step, else buf = momentum*buf + (1-dampening)*g."),
    _op("adam_step", "optimizer",
        "adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, "
        "eps, weight_decay, amsgrad, decoupled) -> None, in place, PyTorch semantics: g = grad "
        "(+ weight_decay*param unless decoupled; decoupled: param *= 1 - lr*weight_decay "
        "first); m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2; bc1 = 1 - b1^step, bc2 = "
        "1 - b2^step; amsgrad: vmax = max(vmax, v) and denom = sqrt(vmax)/sqrt(bc2) + eps, else "
        "denom = sqrt(v)/sqrt(bc2) + eps; param -= (lr/bc1) * m/denom. step counts from 1; "
        "max_exp_avg_sq is None unless amsgrad."),
    # ---- k-means: X (n, d) and centers (k, d) of one float dtype; sample_weight (n,) of that
    # dtype or None for unit weights; labels int32; n_threads an int; sums and inertia float64.
    _op("kmeans_lloyd_step", "kmeans",
        "kmeans_lloyd_step(X, sample_weight, centers, labels, n_threads) -> (centers_new, "
        "n_changed, center_shift, inertia): labels (in place; -1 before the first step) = "
        "nearest centre, first on ties, by ||c||^2 - 2 x.c; centers_new = weighted means; an "
        "empty cluster takes the point farthest from its centre (ties to the lower index); "
        "center_shift = sum ||new - old||^2; inertia with the old centres."),
    _op("kmeans_assign", "kmeans",
        "kmeans_assign(X, sample_weight, centers, n_threads) -> (labels, inertia)."),
    _op("kmeans_inertia", "kmeans",
        "kmeans_inertia(X, sample_weight, centers, labels, n_threads) -> float, from "
        "differences."),
    _op("kmeans_lloyd", "kmeans",
        "kmeans_lloyd(X, sample_weight, centers_init, max_iter, tol, n_threads) -> (centers, "
        "labels, inertia, n_iter): scikit-learn's loop (strict convergence when no label "
        "changes, else stop when center_shift <= tol; final assignment unless strict)."),
    _op("kmeans_fit", "kmeans",
        "kmeans_fit(X, sample_weight, centers_init, max_iter, tol, algorithm, n_threads) -> "
        "(centers, labels, inertia, n_iter, n_distances): kmeans_lloyd with algorithm 'lloyd', "
        "'hamerly' or 'elkan', all with Lloyd's results; n_distances = row-centre distances "
        "computed.", backends=("cpp",)),
    _op("kmeans_plusplus", "kmeans",
        "kmeans_plusplus(X, sample_weight, n_clusters, n_local_trials, uniforms, n_threads) -> "
        "indices int64: greedy k-means++ driven by uniforms in [0, 1) of length "
        "1 + (n_clusters - 1) * n_local_trials (first centre ~ w, candidates ~ w D^2 via the "
        "first index whose running sum reaches u * total)."),
    _op("kmeans_mean_variance", "kmeans",
        "kmeans_mean_variance(X, n_threads) -> float: np.mean(np.var(X, axis=0)) in float64; "
        "not finite when X holds NaN or inf."),
    # ---- the fused epoch
    _op("mlp_epoch", "mlp",
        "mlp_epoch(weights, biases, weight_bufs, bias_bufs, activations, slope, loss, "
        "reduction, half, X, y, perm, batch_size, first_step, n_steps, lr, momentum, dampening, "
        "nesterov, weight_decay, first, step_loss) -> steps done: SGD over mini-batches "
        "first_step .. first_step + n_steps - 1 of the epochs in perm (one epoch's row order "
        "that every epoch takes, or several back to back), in place on the parameters and "
        "momentum buffers; each batch's loss goes to step_loss; stops at a non-finite loss "
        "without updating for it. loss in FUSED_LOSSES; y is int64 labels (N,) for "
        "'cross_entropy', else targets (N, OUT). On backends whose FUSED_OPTIMIZERS has Adam, "
        "adam=dict(betas, eps, amsgrad, decoupled, step, weight_moments, bias_moments) runs "
        "Adam/AdamW (adam_step's rule; lr and weight_decay from the arguments, the SGD ones "
        "unused) from `step` updates done, on moments [exp_avg, exp_avg_sq(, max_exp_avg_sq)] "
        "per weight and bias (None for no bias), in place.", _COMPILED),
]

OPS: dict[str, Op] = {op.name: op for op in _TABLE}


class MissingOpError(NotImplementedError, AttributeError):
    """A backend lacks an op. An AttributeError too, so ``hasattr(ops, name)`` answers False."""

    def __init__(self, backend: str, op: str):
        have = [b for b in BACKENDS if b in OPS[op].backends] if op in OPS else []
        hint = f" (backends with it: {', '.join(have)})" if have else ""
        super().__init__(f"backend {backend!r} has no op {op!r}{hint}")
        self.backend, self.op = backend, op


def implements(backend: str, op: str) -> bool:
    """Whether the registry says ``backend`` has ``op``."""
    return op in OPS and backend in OPS[op].backends


def ops_of(backend: str) -> list[str]:
    """The ops ``backend`` implements, in registry order."""
    return [name for name, op in OPS.items() if backend in op.backends]
