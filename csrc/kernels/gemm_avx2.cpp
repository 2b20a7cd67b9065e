// AVX2 + FMA micro-kernels (the x86-64-v3 baseline). float: 6 x 16 tile = 12 YMM accumulators;
// double: 6 x 8. 16 YMM registers leave 2 for B and 1 for the broadcast.
#include <immintrin.h>

#include "kernels/gemm_kernels.hpp"

namespace gk {
namespace avx2 {
namespace {

struct F32 {
  using T = float;
  using reg = __m256;
  static constexpr int W = 8;
  static reg zero() { return _mm256_setzero_ps(); }
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, reg x) { _mm256_storeu_ps(p, x); }
  static reg bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static reg relu(reg x) { return _mm256_max_ps(x, _mm256_setzero_ps()); }
  static reg leaky(reg x, float s) {
    const reg neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LE_OQ);
    return _mm256_blendv_ps(x, _mm256_mul_ps(x, _mm256_set1_ps(s)), neg);
  }
};

struct F64 {
  using T = double;
  using reg = __m256d;
  static constexpr int W = 4;
  static reg zero() { return _mm256_setzero_pd(); }
  static reg load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, reg x) { _mm256_storeu_pd(p, x); }
  static reg bcast(const double* p) { return _mm256_broadcast_sd(p); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_pd(a, b, c); }
  static reg add(reg a, reg b) { return _mm256_add_pd(a, b); }
  static reg relu(reg x) { return _mm256_max_pd(x, _mm256_setzero_pd()); }
  static reg leaky(reg x, double s) {
    const reg neg = _mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_LE_OQ);
    return _mm256_blendv_pd(x, _mm256_mul_pd(x, _mm256_set1_pd(s)), neg);
  }
};

}  // namespace

#include "kernels/gemm_simd.inl"

detail::Ukernel<float> ukernel(float) {
  return {&ukernel_simd<F32, 6, 2>, 6, 16, 6 * 24, 256, 4096};
}

detail::Ukernel<double> ukernel(double) {
  return {&ukernel_simd<F64, 6, 2>, 6, 8, 6 * 24, 256, 2048};
}

}  // namespace avx2
}  // namespace gk
