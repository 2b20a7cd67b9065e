"""The Numba backend: the registry's ops (see ``gradkit.backends._spec``) as Numba kernels,
matching ``ops_numpy``. Imported only when selected.

One module per area: ``activations`` (elementwise and softmax), ``losses``, ``optimizer`` (SGD,
Adam), ``dense`` (GEMM through np.dot), ``kmeans``, and the fused epoch in ``mlp`` (orchestrator)
and ``mlp_layers`` (its pieces). Each formula (an activation, its derivative, a loss, an update
rule) is written once in ``formulas`` and used by the standalone kernels and the fused epoch.

Compilation is lazy (see ``_jit``): importing this package compiles nothing; the first call of
an op compiles the kernels it runs, for the argument types at hand, and caches them on disk.
Large inputs run fixed chunks in parallel with partials added in chunk order, so values are
bitwise the same for any number of threads.
"""
from gradkit.backends.numba.activations import (
    leaky_relu,
    leaky_relu_backward,
    relu,
    relu_backward,
    sigmoid,
    sigmoid_backward,
    softmax,
    softmax_backward,
    tanh,
    tanh_backward,
)
from gradkit.backends.numba.dense import linear, linear_backward, matmul
from gradkit.backends.numba.kmeans import (
    kmeans_assign,
    kmeans_inertia,
    kmeans_lloyd,
    kmeans_lloyd_step,
    kmeans_mean_variance,
    kmeans_plusplus,
)
from gradkit.backends.numba.losses import (
    bce_loss,
    bce_with_logits_loss,
    cross_entropy_loss,
    l1_loss,
    mse_loss,
)
from gradkit.backends.numba.mlp import mlp_epoch
from gradkit.backends.numba.optimizer import adam_step, sgd_step

__all__ = [
    "matmul", "linear", "linear_backward",
    "relu", "relu_backward", "leaky_relu", "leaky_relu_backward", "sigmoid", "sigmoid_backward",
    "tanh", "tanh_backward", "softmax", "softmax_backward",
    "l1_loss", "mse_loss", "bce_loss", "bce_with_logits_loss", "cross_entropy_loss",
    "sgd_step", "adam_step",
    "kmeans_lloyd_step", "kmeans_assign", "kmeans_inertia", "kmeans_lloyd", "kmeans_plusplus",
    "kmeans_mean_variance",
    "mlp_epoch",
]
