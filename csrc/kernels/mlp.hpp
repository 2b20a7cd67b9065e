// Whole-epoch training of a Sequential MLP: for each mini-batch, gather its rows, forward
// through Linear(+activation) layers, loss and its gradient in one pass, backward, SGD update.
// One call runs `n_steps` consecutive mini-batches of an epoch, so the caller can run an epoch
// in chunks (for a progress bar) without changing the arithmetic.
//
// Shapes: X is (N, IN0); layer l has weight (OUT_l, IN_l), bias (OUT_l) and IN_{l+1} = OUT_l.
// Targets: labels (N,) int64 in [0, OUT_last) for cross-entropy, else targets (N, OUT_last).
// perm holds the row order of one or more epochs back to back, epoch e's at perm + e * stride
// (stride = N, or 0 when every epoch of the call takes the same order, e.g. without shuffling);
// each epoch is split into ceil(N / batch) mini-batches, the last one possibly smaller, so step
// s takes rows perm[e * stride + k * batch, e * stride + min((k + 1) * batch, N)) with
// e = s / steps_per_epoch and k = s % steps_per_epoch. Several epochs per call save the
// per-call cost for tiny networks.
// Deterministic: GEMM splits over rows/columns only, every other loop is elementwise or
// reduces in a fixed order, so 1 and 2 threads give bitwise the same parameters.
// The kernel trusts its input (sizes consistent, indices in range, buffers not aliased).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/gemm.hpp"
#include "kernels/sgd.hpp"

namespace gk {

enum class MlpLoss : int { cross_entropy = 0, mse = 1, l1 = 2, bce_with_logits = 3 };

template <typename T>
struct MlpLayer {
  T* weight;       // INOUT (out, in)
  T* bias;         // INOUT (out) or nullptr
  T* weight_buf;   // INOUT momentum buffer (out, in), or nullptr when momentum == 0
  T* bias_buf;     // INOUT momentum buffer (out), or nullptr
  int64_t in;
  int64_t out;
  Act act;         // activation applied to this layer's output
};

struct MlpLossParams {
  MlpLoss kind = MlpLoss::cross_entropy;
  bool mean = true;   // reduction "mean" (else "sum")
  bool half = false;  // MSE only: the 1/(2m) form
};

// Runs mini-batches first_step .. first_step + n_steps - 1 (counted across the epochs in perm);
// n_rows = N, the rows of X (one epoch).
// step_loss (n_steps) OUT: each batch's loss value (float64) before its update.
// Returns the number of steps done: fewer than n_steps when a loss is not finite, in which case
// that batch's loss is written and no update is made for it (parameters stay as they were).
template <typename T>
int64_t mlp_epoch(double* step_loss, std::vector<MlpLayer<T>>& layers, T slope,
                  const MlpLossParams& loss, const SgdParams& sgd, const T* X,
                  const int64_t* labels, const T* targets, const int64_t* perm,
                  int64_t perm_stride, int64_t n_rows, int64_t batch, int64_t first_step,
                  int64_t n_steps);

// The fused epoch skips exact zeros of the input in the first layer when a batch has at least
// this fraction of them (default 0.4); 0 always skips, anything above 1 never does. The result
// is bitwise the same either way; this knob exists for tests and measurements.
void set_mlp_sparse_threshold(double min_zero_fraction);
double mlp_sparse_threshold();

}  // namespace gk
