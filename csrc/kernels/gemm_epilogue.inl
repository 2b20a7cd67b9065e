// Inline scalar epilogue, included by gemm.hpp.
#pragma once
#include <cmath>

namespace gk {

template <typename T>
inline T apply_act(T v, Act act, T slope) {
  switch (act) {
    case Act::relu: return v > T(0) ? v : T(0);
    case Act::leaky_relu: return v > T(0) ? v : slope * v;
    case Act::sigmoid: return T(1) / (T(1) + std::exp(-v));
    case Act::tanh: return std::tanh(v);
    default: return v;
  }
}

}  // namespace gk
