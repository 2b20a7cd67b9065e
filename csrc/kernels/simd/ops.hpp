// Operations derived from the SIMD interface (simd.hpp), written once for every ISA. Include after
// the ISA header; V is one of its Vec<T>.
#pragma once

namespace gk {
namespace simd {
namespace {

// max(x, 0) that keeps NaN (as np.maximum does): 0 only where x < 0, which is false for NaN.
template <typename V>
inline typename V::reg relu(typename V::reg x) {
  return V::select(V::lt(x, V::zero()), V::zero(), x);
}

// x for x >= 0 (and NaN), slope * x below.
template <typename V>
inline typename V::reg leaky_relu(typename V::reg x, typename V::reg slope) {
  return V::select(V::lt(x, V::zero()), V::mul(x, slope), x);
}

}  // namespace
}  // namespace simd
}  // namespace gk
