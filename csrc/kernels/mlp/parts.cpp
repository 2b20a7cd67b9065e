#include "kernels/mlp/parts.hpp"

#include <algorithm>

#include "kernels/activation.hpp"
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

template <typename T>
void SgdOptimizer<T>::update(T* param, const T* grad, T* buf, int64_t n) const {
  const ScalarSgd<T> rule(p_);
  const int nt = threads_for(4.0 * double(n));
  const int64_t chunk = (n + nt - 1) / nt;
  parallel_for(nt, nt, [=, &rule](int64_t t) {
    const int64_t b = t * chunk, e = std::min(n, b + chunk);
    if (b < e) sgd_range(param + b, buf ? buf + b : nullptr, grad + b, e - b, rule);
  });
}

#define GK_INSTANTIATE(T)                                                                     \
  template void act_backward_inplace<T>(T*, const T*, int64_t, Act, T);                       \
  template double loss_forward_backward<T>(T*, const T*, int64_t, int64_t,                    \
                                           const MlpLossParams&, const int64_t*, const T*);   \
  template void transpose<T>(T*, const T*, int64_t, int64_t);                                 \
  template class SgdOptimizer<T>;
GK_INSTANTIATE(float)
GK_INSTANTIATE(double)
#undef GK_INSTANTIATE

}  // namespace mlp
}  // namespace gk
