#include "kernels/mlp/parts.hpp"

#include <algorithm>

#include "kernels/activation.hpp"
#include "kernels/adam.hpp"
#include "kernels/loss.hpp"
#include "kernels/sgd.hpp"

namespace gk {
namespace mlp {

template <typename T>
void act_backward_inplace(T* d, const T* y, int64_t n, Act act, T slope) {
  if (act == Act::none) return;
  const int nt = threads_for(double(n));
  const int64_t chunk = (n + nt - 1) / nt;
  parallel_for(nt, nt, [=](int64_t t) {
    const int64_t b = t * chunk, e = std::min(n, b + chunk);
    if (b < e) act::backward_range(act, d + b, d + b, y + b, e - b, slope);
  });
}

template <typename T>
double loss_forward_backward(T* grad, const T* out, int64_t m, int64_t C, const MlpLossParams& p,
                             const int64_t* labels, const T* targets) {
  const Reduction r = p.mean ? Reduction::mean : Reduction::sum;
  T* no_per = nullptr;
  switch (p.kind) {
    case MlpLoss::cross_entropy: return cross_entropy_loss_fused(grad, no_per, out, labels, m, C, r);
    case MlpLoss::mse: return mse_loss_fused(grad, no_per, out, targets, m * C, r, p.half);
    case MlpLoss::l1: return l1_loss_fused(grad, no_per, out, targets, m * C, r);
    default: return bce_with_logits_loss_fused(grad, no_per, out, targets, m * C, r);
  }
}

template <typename T>
void transpose(T* dst, const T* src, int64_t rows, int64_t cols) {
  constexpr int64_t B = 32;  // a 32 x 32 block of either side stays in L1
  for (int64_t i0 = 0; i0 < rows; i0 += B)
    for (int64_t j0 = 0; j0 < cols; j0 += B)
      for (int64_t i = i0; i < std::min(rows, i0 + B); ++i)
        for (int64_t j = j0; j < std::min(cols, j0 + B); ++j) dst[j * rows + i] = src[i * cols + j];
}

// Threads for an elementwise update of n values, `work_per_item` each.
inline int update_threads(int64_t n, double work_per_item) {
  return threads_for(work_per_item * double(n));
}

// The SGD update's work per element, as the epoch has always sized it.
constexpr double kSgdWorkPerItem = 4.0;

template <typename T>
void SgdOptimizer<T>::update(T* param, const T* grad, const OptState<T>& state, int64_t n) const {
  const ScalarSgd<T> rule(p_);
  T* buf = state.buf;
  const int nt = update_threads(n, kSgdWorkPerItem);
  const int64_t chunk = (n + nt - 1) / nt;
  parallel_for(nt, nt, [=, &rule](int64_t t) {
    const int64_t b = t * chunk, e = std::min(n, b + chunk);
    if (b < e) sgd_range(param + b, buf ? buf + b : nullptr, grad + b, e - b, rule);
  });
}

// Elementwise, so the split over threads does not change a bit.
template <typename T>
void AdamOptimizer<T>::update(T* param, const T* grad, const OptState<T>& s, int64_t n) const {
  const AdamCoeffs<T>& c = c_;
  const int nt = update_threads(n, kAdamBytesPerItem * sizeof(T));
  const int64_t chunk = (n + nt - 1) / nt;
  parallel_for(nt, nt, [=, &c](int64_t t) {
    const int64_t b = t * chunk, e = std::min(n, b + chunk);
    if (b < e) adam_update(param, s.m, s.v, s.vmax, grad, b, e, c);
  });
}

template <typename T>
std::unique_ptr<Optimizer<T>> make_optimizer(const MlpOptimizer& spec) {
  if (spec.kind == MlpOptimizer::Kind::adam) return std::make_unique<AdamOptimizer<T>>(spec.adam);
  return std::make_unique<SgdOptimizer<T>>(spec.sgd);
}

#define GK_INSTANTIATE(T)                                                                     \
  template void act_backward_inplace<T>(T*, const T*, int64_t, Act, T);                       \
  template double loss_forward_backward<T>(T*, const T*, int64_t, int64_t,                    \
                                           const MlpLossParams&, const int64_t*, const T*);   \
  template void transpose<T>(T*, const T*, int64_t, int64_t);                                 \
  template class SgdOptimizer<T>;                                                             \
  template class AdamOptimizer<T>;                                                            \
  template std::unique_ptr<Optimizer<T>> make_optimizer<T>(const MlpOptimizer&);
GK_INSTANTIATE(float)
GK_INSTANTIATE(double)
#undef GK_INSTANTIATE

}  // namespace mlp
}  // namespace gk
