#include "kernels/adam.hpp"

#include "kernels/chunks.hpp"

namespace gk {

template <typename T>
void adam_step(T* param, T* m, T* v, T* vmax, const T* grad, int64_t n, double lr, double beta1,
               double beta2, double eps, double weight_decay, int64_t step, bool amsgrad,
               bool decoupled) {
  const AdamCoeffs<T> c =
      adam_coeffs<T>(lr, beta1, beta2, eps, weight_decay, step, amsgrad, decoupled);
  chunked_for(n, kAdamBytesPerItem * sizeof(T), [&](int64_t b, int64_t e) {
    adam_update(param, m, v, vmax, grad, b, e, c);
  });
}

template void adam_step<float>(float*, float*, float*, float*, const float*, int64_t, double,
                               double, double, double, double, int64_t, bool, bool);
template void adam_step<double>(double*, double*, double*, double*, const double*, int64_t,
                                double, double, double, double, double, int64_t, bool, bool);

}  // namespace gk
