#include "kernels/sgd.hpp"

#include "kernels/chunks.hpp"

namespace gk {

template <typename T>
void sgd_step(T* param, T* buf, const T* grad, int64_t n, double lr, double momentum,
              double dampening, bool nesterov, double weight_decay, bool first) {
  SgdParams p;
  p.lr = lr;
  p.momentum = momentum;
  p.dampening = dampening;
  p.nesterov = nesterov;
  p.weight_decay = weight_decay;
  p.first = first;
  const ScalarSgd<T> rule(p);
  chunked_for(n, 4.0 * sizeof(T), [&](int64_t b, int64_t e) {
    sgd_range(param + b, buf ? buf + b : nullptr, grad + b, e - b, rule);
  });
}

template void sgd_step<float>(float*, float*, const float*, int64_t, double, double, double, bool,
                              double, bool);
template void sgd_step<double>(double*, double*, const double*, int64_t, double, double, double,
                               bool, double, bool);

}  // namespace gk
