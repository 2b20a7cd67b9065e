// Adam / AdamW with PyTorch semantics, written once: the standalone kernel (adam.cpp) and the
// fused epoch call the same range function. Per element, at 1-based step t:
//   decoupled (AdamW): param *= 1 - lr * weight_decay;  g = grad
//   coupled (Adam):    g = grad + weight_decay * param
//   m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g * g
//   amsgrad: vmax = max(vmax, v), and vmax stands for v below
//   param -= (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
#pragma once

#include <cmath>
#include <cstdint>

namespace gk {

// Arrays touched per element (times sizeof(T): bytes), to size the work for threads: param,
// grad, m, v read and param, m, v written (vmax ignored).
constexpr double kAdamBytesPerItem = 7.0;

// The step's scalars, computed once per step in double and rounded once to T.
template <typename T>
struct AdamCoeffs {
  T beta1, keep1;   // beta1 and 1 - beta1
  T beta2, keep2;   // beta2 and 1 - beta2
  T step_size;      // lr / (1 - beta1^t)
  T bc2_sqrt;       // sqrt(1 - beta2^t)
  T eps;
  T weight_decay;
  T decay_factor;   // 1 - lr * weight_decay (decoupled decay)
  bool coupled;     // Adam's decay: add weight_decay * param to the gradient
  bool decoupled;   // AdamW's decay: shrink param by decay_factor first
  bool amsgrad;
};

template <typename T>
AdamCoeffs<T> adam_coeffs(double lr, double beta1, double beta2, double eps, double weight_decay,
                          int64_t step, bool amsgrad, bool decoupled) {
  const double t = static_cast<double>(step);
  AdamCoeffs<T> c;
  c.beta1 = static_cast<T>(beta1);
  c.keep1 = static_cast<T>(1.0 - beta1);
  c.beta2 = static_cast<T>(beta2);
  c.keep2 = static_cast<T>(1.0 - beta2);
  c.step_size = static_cast<T>(lr / (1.0 - std::pow(beta1, t)));
  c.bc2_sqrt = static_cast<T>(std::sqrt(1.0 - std::pow(beta2, t)));
  c.eps = static_cast<T>(eps);
  c.weight_decay = static_cast<T>(weight_decay);
  c.decay_factor = static_cast<T>(1.0 - lr * weight_decay);
  c.coupled = !decoupled && weight_decay != 0.0;
  c.decoupled = decoupled && weight_decay != 0.0;
  c.amsgrad = amsgrad;
  return c;
}

// One element at index i: the whole rule. vmax is touched only when Amsgrad.
template <typename T, bool Amsgrad>
inline void adam_element(T* param, T* m, T* v, T* vmax, const T* grad, int64_t i,
                         const AdamCoeffs<T>& c) {
  if (c.decoupled) param[i] *= c.decay_factor;
  const T g = c.coupled ? grad[i] + c.weight_decay * param[i] : grad[i];
  const T mi = c.beta1 * m[i] + c.keep1 * g;
  T vi = c.beta2 * v[i] + c.keep2 * (g * g);
  m[i] = mi;
  v[i] = vi;
  if (Amsgrad) {
    vi = vmax[i] > vi ? vmax[i] : vi;
    vmax[i] = vi;
  }
  param[i] -= c.step_size * mi / (std::sqrt(vi) / c.bc2_sqrt + c.eps);
}

// param, m, v INOUT; vmax INOUT when c.amsgrad (never read otherwise, may be null); grad IN;
// elements [b, e) of each. Two loops, so the plain-Adam loop never dereferences vmax.
template <typename T>
inline void adam_update(T* param, T* m, T* v, T* vmax, const T* grad, int64_t b, int64_t e,
                        const AdamCoeffs<T>& c) {
  if (c.amsgrad) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) adam_element<T, true>(param, m, v, vmax, grad, i, c);
  } else {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) adam_element<T, false>(param, m, v, vmax, grad, i, c);
  }
}

// The standalone kernel over n elements (adam.cpp), threaded over fixed chunks.
template <typename T>
void adam_step(T* param, T* m, T* v, T* vmax, const T* grad, int64_t n, double lr, double beta1,
               double beta2, double eps, double weight_decay, int64_t step, bool amsgrad,
               bool decoupled);

}  // namespace gk
