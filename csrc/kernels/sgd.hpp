// One in-place SGD step with PyTorch semantics over n parameters:
//   g = grad + weight_decay * param
//   with momentum: buf = g (first step) or momentum * buf + (1 - dampening) * g,
//                  g = g + momentum * buf (nesterov) or buf
//   param -= lr * g
#pragma once

#include <cstdint>

namespace gk {

// param, buf INOUT (n,) (buf unused and may be null when momentum == 0); grad IN (n,)
template <typename T>
void sgd_step(T* param, T* buf, const T* grad, int64_t n, double lr, double momentum,
              double dampening, bool nesterov, double weight_decay, bool first);

}  // namespace gk
