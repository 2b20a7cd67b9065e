# Type stub for gradkit._core, the compiled module (csrc/bindings/*.cpp). Call through gradkit:
# these functions trust their input. Every array argument must already be C-contiguous with the
# exact dtype (pybind11 noconvert: nothing is copied); each function exists for float32 and
# float64, both arrays of one call sharing the dtype. Labels are int64.
from typing import Literal, TypeVar, overload

import numpy as np
import numpy.typing as npt

_F = TypeVar("_F", np.float32, np.float64)
_Array = npt.NDArray[_F]
_Reduction = Literal["mean", "sum", "none"]
_Activation = Literal["none", "relu", "leaky_relu", "sigmoid", "tanh"]

__version__: str

# ------------------------------------------------------------------------- config.cpp
def detected_isa() -> str:
    """Best instruction set the CPU and this build support: 'portable', 'avx2' or 'avx512'."""

def active_isa() -> str:
    """Instruction set the kernels use now."""

def force_isa(isa: Literal["portable", "avx2", "avx512"]) -> None:
    """Lower the instruction set in use (for testing the fallbacks)."""

def cpu_info() -> dict[str, int | str]:
    """Cache sizes (l1d_bytes, l2_bytes, l3_bytes; read once from cpuid or sysfs, cache_source
    says which) and vector_bits of the ISA in use."""

def get_num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...

# --------------------------------------------------------------------------- gemm.cpp
def matmul(a: _Array[_F], b: _Array[_F], trans_a: bool, trans_b: bool, out: _Array[_F],
           accumulate: bool) -> _Array[_F]:
    """out = op(a) @ op(b) (+ out when accumulate), in place; returns out."""

def linear(x: _Array[_F], w: _Array[_F], b: _Array[_F] | None, activation: _Activation,
           slope: float) -> _Array[_F]:
    """y = act(x @ w.T + b) with the bias and activation fused into the GEMM epilogue."""

def linear_backward(dy: _Array[_F], x: _Array[_F], w: _Array[_F], dw: _Array[_F],
                    db: _Array[_F] | None, need_dx: bool) -> _Array[_F] | None:
    """dw += dy.T @ x, db += dy.sum(0) (in place); returns dy @ w or None."""

# ----------------------------------------------------------------------------- nn.cpp
def relu(x: _Array[_F]) -> _Array[_F]: ...
def sigmoid(x: _Array[_F]) -> _Array[_F]: ...
def tanh(x: _Array[_F]) -> _Array[_F]: ...
def leaky_relu(x: _Array[_F], slope: float) -> _Array[_F]: ...
def softmax(x: _Array[_F]) -> _Array[_F]: ...
def relu_backward(dy: _Array[_F], y: _Array[_F]) -> _Array[_F]: ...
def sigmoid_backward(dy: _Array[_F], y: _Array[_F]) -> _Array[_F]: ...
def tanh_backward(dy: _Array[_F], y: _Array[_F]) -> _Array[_F]: ...
def leaky_relu_backward(dy: _Array[_F], y: _Array[_F], slope: float) -> _Array[_F]: ...
def softmax_backward(dy: _Array[_F], y: _Array[_F]) -> _Array[_F]: ...

# Losses return (value, dL/dpred): value is a float for "mean"/"sum", per-element for "none".
@overload
def l1_loss(pred: _Array[_F], target: _Array[_F],
            reduction: Literal["mean", "sum"]) -> tuple[float, _Array[_F]]: ...
@overload
def l1_loss(pred: _Array[_F], target: _Array[_F],
            reduction: Literal["none"]) -> tuple[_Array[_F], _Array[_F]]: ...
@overload
def mse_loss(pred: _Array[_F], target: _Array[_F], reduction: Literal["mean", "sum"],
             half: bool) -> tuple[float, _Array[_F]]: ...
@overload
def mse_loss(pred: _Array[_F], target: _Array[_F], reduction: Literal["none"],
             half: bool) -> tuple[_Array[_F], _Array[_F]]: ...
@overload
def bce_loss(pred: _Array[_F], target: _Array[_F],
             reduction: Literal["mean", "sum"]) -> tuple[float, _Array[_F]]: ...
@overload
def bce_loss(pred: _Array[_F], target: _Array[_F],
             reduction: Literal["none"]) -> tuple[_Array[_F], _Array[_F]]: ...
@overload
def bce_with_logits_loss(logits: _Array[_F], target: _Array[_F],
                         reduction: Literal["mean", "sum"]) -> tuple[float, _Array[_F]]: ...
@overload
def bce_with_logits_loss(logits: _Array[_F], target: _Array[_F],
                         reduction: Literal["none"]) -> tuple[_Array[_F], _Array[_F]]: ...
@overload
def cross_entropy_loss(logits: _Array[_F], labels: npt.NDArray[np.int64],
                       reduction: Literal["mean", "sum"]) -> tuple[float, _Array[_F]]: ...
@overload
def cross_entropy_loss(logits: _Array[_F], labels: npt.NDArray[np.int64],
                       reduction: Literal["none"]) -> tuple[_Array[_F], _Array[_F]]: ...

def sgd_step(param: _Array[_F], grad: _Array[_F], buf: _Array[_F] | None, lr: float,
             momentum: float, dampening: float, nesterov: bool, weight_decay: float,
             first: bool) -> None:
    """In place on param (and buf, required when momentum != 0); PyTorch semantics."""

# -------------------------------------------------------------------------- optim.cpp
def adam_step(param: _Array[_F], grad: _Array[_F], exp_avg: _Array[_F], exp_avg_sq: _Array[_F],
              max_exp_avg_sq: _Array[_F] | None, step: int, lr: float, beta1: float,
              beta2: float, eps: float, weight_decay: float, amsgrad: bool,
              decoupled: bool) -> None:
    """In place on param and the moments (max_exp_avg_sq required when amsgrad); PyTorch's
    Adam (decoupled=False) or AdamW (decoupled=True); step counts from 1."""

# ---------------------------------------------------------------------------- mlp.cpp
def mlp_epoch(weights: list[_Array[_F]], biases: list[_Array[_F] | None],
              weight_bufs: list[_Array[_F] | None], bias_bufs: list[_Array[_F] | None],
              acts: list[int], slope: float, loss: int, mean: bool, half: bool, X: _Array[_F],
              labels: npt.NDArray[np.int64] | None, targets: _Array[_F] | None,
              perm: npt.NDArray[np.int64], batch_size: int, first_step: int, n_steps: int,
              lr: float, momentum: float, dampening: float, nesterov: bool, weight_decay: float,
              first: bool, step_loss: npt.NDArray[np.float64], sparse_input: int = 2) -> int:
    """Run n_steps mini-batches of an MLP epoch in place (forward, loss, backward, SGD update)
    over the rows perm[first_step * batch_size:] (perm may hold several epochs back to back);
    per-step losses go to step_loss. Returns the steps done (fewer when a loss is not finite).
    sparse_input: first layer 0 dense, 1 zero-skipping (where the CPU has it), 2 cost model."""

# ------------------------------------------------------------------------ cluster.cpp
# sample_weight is None (unit weights) or a C-contiguous array of X's dtype; labels are int32.
def kmeans_lloyd_step(X: _Array[_F], sample_weight: _Array[_F] | None, centers: _Array[_F],
                      centers_new: _Array[_F], labels: npt.NDArray[np.int32],
                      n_threads: int) -> tuple[int, float, float, int]:
    """One Lloyd iteration in one pass over X; labels INOUT, centers_new OUT. Returns
    (n_changed, center_shift, inertia, n_relocated)."""

def kmeans_assign(X: _Array[_F], sample_weight: _Array[_F] | None, centers: _Array[_F],
                  labels: npt.NDArray[np.int32], n_threads: int) -> float:
    """Nearest-centre labels (OUT) and the inertia."""

def kmeans_inertia(X: _Array[_F], sample_weight: _Array[_F] | None, centers: _Array[_F],
                   labels: npt.NDArray[np.int32], n_threads: int) -> float:
    """sum w ||x - c_label||^2 from the differences, in float64."""

def kmeans_lloyd(X: _Array[_F], sample_weight: _Array[_F] | None, centers: _Array[_F],
                 labels: npt.NDArray[np.int32], max_iter: int, tol: float,
                 n_threads: int) -> tuple[float, int]:
    """The whole Lloyd loop: centers INOUT, labels OUT. Returns (inertia, n_iter)."""

def kmeans_fit(X: _Array[_F], sample_weight: _Array[_F] | None, centers: _Array[_F],
               labels: npt.NDArray[np.int32], max_iter: int, tol: float, algorithm: int,
               n_threads: int) -> tuple[float, int, int]:
    """The k-means loop with algorithm 0 (lloyd), 1 (hamerly) or 2 (elkan): centers INOUT, labels OUT. Returns (inertia, n_iter, n_distances computed)."""

def kmeans_plusplus(X: _Array[_F], sample_weight: _Array[_F] | None, n_clusters: int,
                    n_local_trials: int, uniforms: npt.NDArray[np.float64],
                    n_threads: int) -> npt.NDArray[np.int64]:
    """Greedy k-means++: the indices of the chosen rows."""

def kmeans_mean_variance(X: _Array[_F], n_threads: int) -> float:
    """Mean over features of the variance of X, in float64 (not finite if X is not)."""

# ------------------------------------------------------------------------ dask.cpp
def kmeans_chunk_partials(X: _Array[_F], sample_weight: _Array[_F] | None,
                          centers: _Array[_F]) -> tuple[npt.NDArray[np.float64],
                                                        npt.NDArray[np.float64], float,
                                                        npt.NDArray[np.int32]]:
    """(sums (k, d), weights (k,), inertia, labels (n,) int32) of a chunk's rows for the nearest
    of `centers`, from one pass (float64 sums and weights; one thread: the task is the unit of
    parallelism)."""
