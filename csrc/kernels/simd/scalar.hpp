// One lane of the SIMD interface (simd.hpp) on plain scalars: lets a formula written once for
// vectors (sgd.hpp, adam.hpp) also run in ordinary loops, which the compiler vectorises.
// fma is std::fma, so a scalar lane rounds exactly as a vector lane does.
#pragma once

#include <cmath>

#include "kernels/simd/simd.hpp"

namespace gk {
namespace simd {
namespace scalar {
namespace {

template <typename TT>
struct Vec {
  using T = TT;
  using reg = TT;
  using mask = bool;
  static constexpr int W = 1;
  static reg zero() { return T(0); }
  static reg set1(T a) { return a; }
  static reg bcast(const T* p) { return *p; }
  static reg load(const T* p) { return *p; }
  static void store(T* p, reg x) { *p = x; }
  static reg add(reg a, reg b) { return a + b; }
  static reg sub(reg a, reg b) { return a - b; }
  static reg mul(reg a, reg b) { return a * b; }
  static reg fma(reg a, reg b, reg c) { return std::fma(a, b, c); }
  static reg max(reg a, reg b) { return a > b ? a : b; }
  static reg min(reg a, reg b) { return a < b ? a : b; }
  static mask lt(reg a, reg b) { return a < b; }
  static mask le(reg a, reg b) { return a <= b; }
  static mask gt(reg a, reg b) { return a > b; }
  static mask ge(reg a, reg b) { return a >= b; }
  static mask eq(reg a, reg b) { return a == b; }
  static mask ne(reg a, reg b) { return a != b; }
  static reg select(mask m, reg a, reg b) { return m ? a : b; }
  static T hsum(reg x) { return x; }
};

}  // namespace
}  // namespace scalar
}  // namespace simd
}  // namespace gk
