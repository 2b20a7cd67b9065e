// Whole-epoch training of a Sequential MLP: for each mini-batch, gather its rows, forward
// through Linear(+activation) layers, loss and its gradient in one pass, backward, and the
// optimizer's update (SGD, sgd.hpp, or Adam/AdamW, adam.hpp).
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

#include "kernels/adam.hpp"
#include "kernels/gemm.hpp"
#include "kernels/sgd.hpp"

namespace gk {

enum class MlpLoss : int { cross_entropy = 0, mse = 1, l1 = 2, bce_with_logits = 3 };

// One parameter's optimizer arrays (INOUT, each of the parameter's size), null when unused:
// SGD reads buf (its momentum buffer; null without momentum); Adam reads m and v (its moments)
// and vmax (amsgrad only).
template <typename T>
struct OptState {
  T* buf = nullptr;
  T* m = nullptr;
  T* v = nullptr;
  T* vmax = nullptr;
};

template <typename T>
struct MlpLayer {
  T* weight = nullptr;       // INOUT (out, in)
  T* bias = nullptr;         // INOUT (out) or nullptr
  OptState<T> weight_state;  // the weight's optimizer arrays (out, in)
  OptState<T> bias_state;    // the bias's (out)
  int64_t in = 0;
  int64_t out = 0;
  Act act = Act::none;       // activation applied to this layer's output
};

// Adam / AdamW over the epoch (PyTorch semantics, adam.hpp). step: the updates each parameter
// has had before this call (every parameter the same); the call's k-th step is step + k.
struct AdamParams {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool amsgrad = false;
  bool decoupled = false;  // AdamW
  int64_t step = 0;
};

// The epoch's update rule: SGD or Adam, with its hyper-parameters.
struct MlpOptimizer {
  enum class Kind : int { sgd = 0, adam = 1 };
  Kind kind = Kind::sgd;
  SgdParams sgd;
  AdamParams adam;
};

struct MlpLossParams {
  MlpLoss kind = MlpLoss::cross_entropy;
  bool mean = true;   // reduction "mean" (else "sum")
  bool half = false;  // MSE only: the 1/(2m) form
};

// How the first layer treats exact zeros of the input (see mlp/first_layer.hpp):
// dense never looks for them; sparse skips them (on CPUs with the zero-skipping kernels and
// with SGD, else dense: see first_layer.hpp); automatic decides from the cost model in
// first_sparse.cpp. Same bits in every mode.
enum class SparseInput : int { dense = 0, sparse = 1, automatic = 2 };

// Runs mini-batches first_step .. first_step + n_steps - 1 (counted across the epochs in perm);
// n_rows = N, the rows of X (one epoch).
// step_loss (n_steps) OUT: each batch's loss value (float64) before its update.
// Returns the number of steps done: fewer than n_steps when a loss is not finite, in which case
// that batch's loss is written and no update is made for it (parameters stay as they were).
// With Adam each parameter's step count advances by the returned number (the caller keeps it).
template <typename T>
int64_t mlp_epoch(double* step_loss, std::vector<MlpLayer<T>>& layers, T slope,
                  const MlpLossParams& loss, const MlpOptimizer& optimizer, const T* X,
                  const int64_t* labels, const T* targets, const int64_t* perm,
                  int64_t perm_stride, int64_t n_rows, int64_t batch, int64_t first_step,
                  int64_t n_steps, SparseInput sparse_input = SparseInput::automatic);

// Which first layer the last mlp_epoch call of this thread ran: 0 dense, 1 sparse (for tests).
int mlp_last_first_layer();

namespace mlp {
// Test hook: within the sparse first layer, a batch skips its zeros when at least this fraction
// of its values are zero (default 0: always; above 1: never). The bits are the same either way.
void set_sparse_skip_threshold(double min_zero_fraction);
double sparse_skip_threshold();
}  // namespace mlp

}  // namespace gk
