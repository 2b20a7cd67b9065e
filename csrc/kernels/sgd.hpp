// SGD with PyTorch semantics, written ONCE: the rule below is used by the standalone kernel
// (sgd.cpp), the fused epoch's optimizer and the AVX-512 first layer (on vectors).
//   g = grad + weight_decay * param
//   with momentum: buf = g (first step) or momentum * buf + (1 - dampening) * g,
//                  g = g + momentum * buf (nesterov) or buf
//   param -= lr * g
// Every multiply-add is one fused rounding (V::fma), on scalars and vectors alike.
#pragma once

#include <cstdint>

#include "kernels/simd/scalar.hpp"

namespace gk {

struct SgdParams {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  bool first = true;  // the momentum buffers start as the first gradient (PyTorch semantics)
};

// The constants of one call, rounded to T and broadcast once. V: a Vec of the SIMD layer
// (simd/*.hpp) or simd::scalar::Vec<T>. Without dampening the gradient is not multiplied by
// 1 - dampening = 1 (the same bits either way, one multiply less).
template <typename V>
struct SgdRule {
  using R = typename V::reg;
  R neg_lr, momentum, keep, decay;
  bool use_decay, use_momentum, damped, nesterov, first;
  explicit SgdRule(const SgdParams& s)
      : neg_lr(V::set1(typename V::T(-s.lr))), momentum(V::set1(typename V::T(s.momentum))),
        keep(V::set1(typename V::T(1.0 - s.dampening))),
        decay(V::set1(typename V::T(s.weight_decay))), use_decay(s.weight_decay != 0.0),
        use_momentum(s.momentum != 0.0), damped(s.dampening != 0.0), nesterov(s.nesterov),
        first(s.first) {}

  // Returns the new parameter from w and its gradient g; *buf INOUT (read only when momentum
  // is on and this is not the first step).
  R step(R w, R g, R* buf) const {
    if (use_decay) g = V::fma(decay, w, g);
    if (use_momentum) {
      const R b = first ? g : V::fma(momentum, *buf, damped ? V::mul(keep, g) : g);
      *buf = b;
      g = nesterov ? V::fma(momentum, b, g) : b;
    }
    return V::fma(neg_lr, g, w);
  }
};

template <typename T>
using ScalarSgd = SgdRule<simd::scalar::Vec<T>>;

// The rule over a range: param, buf INOUT (n) (buf unused when momentum == 0), grad IN (n).
template <typename T>
static inline void sgd_range(T* param, T* buf, const T* grad, int64_t n, const ScalarSgd<T>& r) {
  if (r.use_momentum) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) param[i] = r.step(param[i], grad[i], buf + i);
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) param[i] = r.step(param[i], grad[i], nullptr);
  }
}

// The standalone kernel: sgd_range over fixed chunks and threads.
// param, buf INOUT (n,) (buf unused and may be null when momentum == 0); grad IN (n,)
template <typename T>
void sgd_step(T* param, T* buf, const T* grad, int64_t n, double lr, double momentum,
              double dampening, bool nesterov, double weight_decay, bool first);

}  // namespace gk
