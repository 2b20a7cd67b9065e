// Plain C++ implementation of the SIMD interface (see simd.hpp) on GCC/Clang generic vectors of
// 32 bytes: the compiler maps them to what the target has (two SSE registers, one AVX register,
// NEON pairs). No intrinsics, so it builds anywhere; the tests force it with
// gk.force_isa("portable") to check the fallbacks against the vector paths.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/simd/simd.hpp"

namespace gk {
namespace simd {
namespace portable {
namespace {

// GCC ignores vector_size on a dependent alias template, so each type is spelled out.
typedef float v8f __attribute__((vector_size(32)));
typedef double v4d __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef int64_t v4i __attribute__((vector_size(32)));

template <typename T, typename R, typename M>
struct VecOf {
  using reg = R;
  using mask = M;  // lanes all ones (true) or zero (false), as the vector compares give them
  static constexpr int W = 32 / sizeof(T);
  static reg zero() { return reg{}; }
  static reg set1(T a) { return reg{} + a; }
  static reg bcast(const T* p) { return set1(*p); }
  static reg load(const T* p) {
    reg x;
    std::memcpy(&x, p, sizeof x);
    return x;
  }
  static void store(T* p, reg x) { std::memcpy(p, &x, sizeof x); }
  static reg load_n(const T* p, int n) {
    reg x{};
    for (int l = 0; l < n; ++l) x[l] = p[l];
    return x;
  }
  static void store_n(T* p, reg x, int n) {
    for (int l = 0; l < n; ++l) p[l] = x[l];
  }
  static reg add(reg a, reg b) { return a + b; }
  static reg sub(reg a, reg b) { return a - b; }
  static reg mul(reg a, reg b) { return a * b; }
  static reg fma(reg a, reg b, reg c) { return a * b + c; }  // contracted where the target can
  static reg max(reg a, reg b) { return a > b ? a : b; }
  static reg min(reg a, reg b) { return a < b ? a : b; }
  static mask lt(reg a, reg b) { return a < b; }
  static mask le(reg a, reg b) { return a <= b; }
  static mask gt(reg a, reg b) { return a > b; }
  static mask ge(reg a, reg b) { return a >= b; }
  static mask eq(reg a, reg b) { return a == b; }
  static mask ne(reg a, reg b) { return a != b; }
  static reg select(mask m, reg a, reg b) { return m ? a : b; }
  static T hsum(reg x) {  // pairwise: the tree order of the x86 versions
    T s[W];
    std::memcpy(s, &x, sizeof x);
    for (int w = W / 2; w > 0; w /= 2)
      for (int l = 0; l < w; ++l) s[l] += s[l + w];
    return s[0];
  }
};

template <typename T> struct Vec;
template <> struct Vec<float> : VecOf<float, v8f, v8i> { using T = float; };
template <> struct Vec<double> : VecOf<double, v4d, v4i> { using T = double; };

}  // namespace
}  // namespace portable
}  // namespace simd
}  // namespace gk
