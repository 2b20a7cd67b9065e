// The fused epoch (see epoch.hpp): an orchestrator. For each mini-batch it asks the first layer
// (a strategy, first_layer.hpp) to prepare the batch, runs the forward pass, the loss and the
// backward pass, and hands every gradient to the optimizer. The formulas live elsewhere:
// activation.hpp, loss.hpp, sgd.hpp, adam.hpp, dense.hpp, gemm.hpp.
#include "kernels/mlp/epoch.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "kernels/dense.hpp"
#include "kernels/mlp/first_layer.hpp"
#include "kernels/mlp/parts.hpp"

namespace gk {
namespace mlp {
namespace {

// Every buffer of one call, allocated once: activations, gradients, gathered targets.
template <typename T>
struct Workspace {
  std::vector<Aligned<T>> act;
  std::vector<std::vector<T>> dw, db;
  std::vector<T> targets;
  std::vector<int64_t> labels;
  Aligned<T> d0, d1;

  Workspace(const std::vector<MlpLayer<T>>& layers, int64_t batch, MlpLoss loss) {
    const size_t L = layers.size();
    int64_t width = layers.front().in;
    act.resize(L);
    dw.resize(L);
    db.resize(L);
    for (size_t l = 0; l < L; ++l) {
      const MlpLayer<T>& ly = layers[l];
      width = std::max(width, ly.out);
      act[l].resize(size_t(batch * ly.out));
      if (l > 0) dw[l].resize(size_t(ly.out * ly.in));  // the first layer keeps its own
      if (ly.bias) db[l].resize(size_t(ly.out));
    }
    const int64_t n_out = layers.back().out;
    if (loss == MlpLoss::cross_entropy) labels.resize(size_t(batch));
    else targets.resize(size_t(batch * n_out));
    d0.resize(size_t(batch * width));
    d1.resize(size_t(batch * width));
  }
};

bool is_consecutive(const int64_t* rows, int64_t m) {
  int64_t gaps = 0;  // integer ops and no early exit: this loop vectorises
  for (int64_t i = 1; i < m; ++i) gaps |= rows[i] ^ (rows[0] + i);
  return gaps == 0;
}

// The batch's labels (cross-entropy) or targets, in the order of rows: read in place when the
// rows are consecutive, else gathered into the workspace.
template <typename T>
void batch_targets(const int64_t** lab, const T** tgt, Workspace<T>& ws, const int64_t* labels,
                   const T* targets, const int64_t* rows, int64_t m, int64_t n_out) {
  *lab = labels ? labels + rows[0] : nullptr;
  *tgt = targets ? targets + rows[0] * n_out : nullptr;
  if (is_consecutive(rows, m)) return;
  if (labels) {
    for (int64_t i = 0; i < m; ++i) ws.labels[size_t(i)] = labels[rows[i]];
    *lab = ws.labels.data();
  } else {
    for (int64_t i = 0; i < m; ++i)
      std::memcpy(&ws.targets[size_t(i * n_out)], targets + rows[i] * n_out,
                  sizeof(T) * size_t(n_out));
    *tgt = ws.targets.data();
  }
}

// a_l = act(a_{l-1} W_lᵀ + b_l), bias and activation fused into the GEMM.
template <typename T>
void forward(FirstLayer<T>& first, const std::vector<MlpLayer<T>>& layers, Workspace<T>& ws,
             int64_t m, T slope) {
  first.forward(ws.act[0].data(), m);
  for (size_t l = 1; l < layers.size(); ++l) {
    const MlpLayer<T>& ly = layers[l];
    layer_gemm<T>(false, true, m, ly.out, ly.in, ws.act[l - 1].data(), ly.in, ly.weight, ly.in,
                  ws.act[l].data(), ly.out, /*accumulate=*/false, ly.bias, ly.act, slope);
  }
}

// From dz = dL/d(pre-activation of the last layer): dW_l = dzᵀ a_{l-1}, db_l = column sums of
// dz, dz_{l-1} = (dz W_l) * act'(a_{l-1}); the first layer's weight is updated by the layer
// itself at the end, every other parameter once all gradients are known.
template <typename T>
void backward_and_update(FirstLayer<T>& first, std::vector<MlpLayer<T>>& layers, Workspace<T>& ws,
                         T* dz, T* dnext, int64_t m, T slope, const Optimizer<T>& opt) {
  for (size_t l = layers.size(); l-- > 0;) {
    const MlpLayer<T>& ly = layers[l];
    if (ly.bias) column_sums(ws.db[l].data(), dz, m, ly.out);
    if (l == 0) break;
    layer_gemm<T>(true, false, ly.out, ly.in, m, dz, ly.out, ws.act[l - 1].data(), ly.in,
                  ws.dw[l].data(), ly.in);
    layer_gemm<T>(false, false, m, ly.in, ly.out, dz, ly.out, ly.weight, ly.in, dnext, ly.in);
    act_backward_inplace(dnext, ws.act[l - 1].data(), m * ly.in, layers[l - 1].act, slope);
    std::swap(dz, dnext);
  }
  first.backward_update(dz, m, opt);
  for (size_t l = 0; l < layers.size(); ++l) {
    MlpLayer<T>& ly = layers[l];
    if (l > 0) opt.update(ly.weight, ws.dw[l].data(), ly.weight_state, ly.out * ly.in);
    if (ly.bias) opt.update(ly.bias, ws.db[l].data(), ly.bias_state, ly.out);
  }
}

thread_local int t_last_first_layer = 0;

}  // namespace
}  // namespace mlp

int mlp_last_first_layer() { return mlp::t_last_first_layer; }

template <typename T>
int64_t mlp_epoch(double* step_loss, std::vector<MlpLayer<T>>& layers, T slope,
                  const MlpLossParams& loss, const MlpOptimizer& optimizer, const T* X,
                  const int64_t* labels, const T* targets, const int64_t* perm,
                  int64_t perm_stride, int64_t n_rows, int64_t batch_size, int64_t first_step,
                  int64_t n_steps, SparseInput sparse_input) {
  using namespace mlp;
  // A batch larger than the data is the whole data (one step per epoch): buffers need no more.
  const int64_t batch = std::min(batch_size, n_rows);
  const int64_t steps_per_epoch = (n_rows + batch - 1) / batch;
  const int64_t n_out = layers.back().out;
  auto batch_rows = [&](int64_t step, int64_t* m) {
    const int64_t offset = (step % steps_per_epoch) * batch;
    *m = std::min(batch, n_rows - offset);
    return perm + (step / steps_per_epoch) * perm_stride + offset;
  };

  const std::unique_ptr<Optimizer<T>> rule = make_optimizer<T>(optimizer);
  Optimizer<T>& opt = *rule;
  int64_t m0 = 0;
  const int64_t* rows0 = batch_rows(first_step, &m0);
  auto first = make_first_layer(layers.front(), X, batch, slope, opt, sparse_input, rows0, m0);
  t_last_first_layer = first->skips_zeros() ? 1 : 0;
  Workspace<T> ws(layers, batch, loss.kind);

  for (int64_t s = 0; s < n_steps; ++s) {
    int64_t m = 0;
    const int64_t* rows = batch_rows(first_step + s, &m);
    rows = first->prepare(rows, m, is_consecutive(rows, m));
    const int64_t* lab = nullptr;
    const T* tgt = nullptr;
    batch_targets(&lab, &tgt, ws, labels, targets, rows, m, n_out);

    forward(*first, layers, ws, m, slope);
    T* dz = ws.d0.data();
    const T* out = ws.act.back().data();
    step_loss[s] = loss_forward_backward(dz, out, m, n_out, loss, lab, tgt);
    if (!std::isfinite(step_loss[s])) {
      first->finish();
      return s;
    }
    act_backward_inplace(dz, out, m * n_out, layers.back().act, slope);
    backward_and_update(*first, layers, ws, dz, ws.d1.data(), m, slope, opt);
    opt.end_step();
  }
  first->finish();
  return n_steps;
}

#define GK_INSTANTIATE(T)                                                                     \
  template int64_t mlp_epoch<T>(double*, std::vector<MlpLayer<T>>&, T, const MlpLossParams&, \
                                const MlpOptimizer&, const T*, const int64_t*, const T*,    \
                                const int64_t*, int64_t, int64_t, int64_t, int64_t, int64_t, \
                                SparseInput);
GK_INSTANTIATE(float)
GK_INSTANTIATE(double)
#undef GK_INSTANTIATE

}  // namespace gk
