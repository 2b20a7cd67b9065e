#include "kernels/sgd.hpp"

#include "kernels/chunks.hpp"

namespace gk {

template <typename T>
void sgd_step(T* param, T* buf, const T* grad, int64_t n, double lr, double momentum,
              double dampening, bool nesterov, double weight_decay, bool first) {
  const T tlr = static_cast<T>(lr), tm = static_cast<T>(momentum);
  const T tdamp = static_cast<T>(1.0 - dampening), twd = static_cast<T>(weight_decay);
  const bool use_buf = momentum != 0.0;
  chunked_for(n, 4.0 * sizeof(T), [&](int64_t b, int64_t e) {
    // The branches are loop-invariant; GCC unswitches them, leaving vector loops.
#pragma omp simd
    for (int64_t i = b; i < e; ++i) {
      T g = grad[i];
      if (weight_decay != 0.0) g += twd * param[i];
      if (use_buf) {
        const T v = first ? g : tm * buf[i] + tdamp * g;
        buf[i] = v;
        g = nesterov ? g + tm * v : v;
      }
      param[i] -= tlr * g;
    }
  });
}

template void sgd_step<float>(float*, float*, const float*, int64_t, double, double, double, bool,
                              double, bool);
template void sgd_step<double>(double*, double*, const double*, int64_t, double, double, double,
                               bool, double, bool);

}  // namespace gk
