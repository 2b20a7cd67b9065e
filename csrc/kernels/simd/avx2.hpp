// AVX2 + FMA implementation of the SIMD interface (see simd.hpp). Needs -mavx2 -mfma.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "kernels/simd/simd.hpp"

namespace gk {
namespace simd {
namespace avx2 {
namespace {

template <typename T> struct Vec;

// Lanes [0, n) of an 8-lane int32 mask (also the low half-lanes of a 4-lane double mask).
inline __m256i lanes_below(int n, __m256i index) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), index);
}

template <> struct Vec<float> {
  using T = float;
  using reg = __m256;
  using mask = __m256;
  static constexpr int W = 8;
  static reg zero() { return _mm256_setzero_ps(); }
  static reg set1(float a) { return _mm256_set1_ps(a); }
  static reg bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, reg x) { _mm256_storeu_ps(p, x); }
  static __m256i tail(int n) { return lanes_below(n, _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }
  static reg load_n(const float* p, int n) { return _mm256_maskload_ps(p, tail(n)); }
  static void store_n(float* p, reg x, int n) { _mm256_maskstore_ps(p, tail(n), x); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm256_sub_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static reg max(reg a, reg b) { return _mm256_max_ps(a, b); }
  static reg min(reg a, reg b) { return _mm256_min_ps(a, b); }
  static mask lt(reg a, reg b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static mask le(reg a, reg b) { return _mm256_cmp_ps(a, b, _CMP_LE_OQ); }
  static mask gt(reg a, reg b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  static mask ge(reg a, reg b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
  static mask eq(reg a, reg b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
  static mask ne(reg a, reg b) { return _mm256_cmp_ps(a, b, _CMP_NEQ_UQ); }
  static reg select(mask m, reg a, reg b) { return _mm256_blendv_ps(b, a, m); }
  static float hsum(reg x) {
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
  }
};

template <> struct Vec<double> {
  using T = double;
  using reg = __m256d;
  using mask = __m256d;
  static constexpr int W = 4;
  static reg zero() { return _mm256_setzero_pd(); }
  static reg set1(double a) { return _mm256_set1_pd(a); }
  static reg bcast(const double* p) { return _mm256_broadcast_sd(p); }
  static reg load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, reg x) { _mm256_storeu_pd(p, x); }
  // Lane l of a double is int32 lanes 2l and 2l + 1.
  static __m256i tail(int n) {
    return lanes_below(2 * n, _mm256_setr_epi32(0, 0, 2, 2, 4, 4, 6, 6));
  }
  static reg load_n(const double* p, int n) { return _mm256_maskload_pd(p, tail(n)); }
  static void store_n(double* p, reg x, int n) { _mm256_maskstore_pd(p, tail(n), x); }
  static reg add(reg a, reg b) { return _mm256_add_pd(a, b); }
  static reg sub(reg a, reg b) { return _mm256_sub_pd(a, b); }
  static reg mul(reg a, reg b) { return _mm256_mul_pd(a, b); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_pd(a, b, c); }
  static reg max(reg a, reg b) { return _mm256_max_pd(a, b); }
  static reg min(reg a, reg b) { return _mm256_min_pd(a, b); }
  static mask lt(reg a, reg b) { return _mm256_cmp_pd(a, b, _CMP_LT_OQ); }
  static mask le(reg a, reg b) { return _mm256_cmp_pd(a, b, _CMP_LE_OQ); }
  static mask gt(reg a, reg b) { return _mm256_cmp_pd(a, b, _CMP_GT_OQ); }
  static mask ge(reg a, reg b) { return _mm256_cmp_pd(a, b, _CMP_GE_OQ); }
  static mask eq(reg a, reg b) { return _mm256_cmp_pd(a, b, _CMP_EQ_OQ); }
  static mask ne(reg a, reg b) { return _mm256_cmp_pd(a, b, _CMP_NEQ_UQ); }
  static reg select(mask m, reg a, reg b) { return _mm256_blendv_pd(b, a, m); }
  static double hsum(reg x) {
    const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(x), _mm256_extractf128_pd(x, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
  }
};

// Transposes an 8 x 8 float block in registers: r[i] holds row i on entry and column i on exit
// (24 shuffles). The packing of GEMM panels and the first layer's batch gather both use it.
inline void transpose8x8(__m256 r[8]) {
  __m256 t[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x20);
    t[i + 4] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x31);
  }
  for (int i = 0; i < 8; ++i) r[i] = t[i];
}

}  // namespace
}  // namespace avx2
}  // namespace simd
}  // namespace gk
