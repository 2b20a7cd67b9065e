// AVX-512 micro-kernels (compiled with -march=x86-64-v4; entered only after a CPU check).
// float: 8 x 32 tile = 16 ZMM accumulators; double: 8 x 16. Two FMA pipes of latency 4 need at
// least 8 independent accumulators; per K step the tile costs 2 vector loads + 8 broadcasts for
// 16 FMAs, within two loads per cycle. Measured here against 6x32, 12x32, 14x32, 16x16 and 6x64:
// all reach the same in-L1 rate, and 8 rows divide the usual batch sizes with no padding.
#include <immintrin.h>

// GCC 12's _mm512_max_ps/pd start from an intentionally undefined register and trip this warning.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "kernels/gemm_kernels.hpp"

namespace gk {
namespace avx512 {
namespace {

struct F32 {
  using T = float;
  using reg = __m512;
  static constexpr int W = 16;
  static reg zero() { return _mm512_setzero_ps(); }
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, reg x) { _mm512_storeu_ps(p, x); }
  static reg bcast(const float* p) { return _mm512_set1_ps(*p); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg relu(reg x) { return _mm512_max_ps(x, _mm512_setzero_ps()); }
  static reg leaky(reg x, float s) {
    const __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LE_OQ);
    return _mm512_mask_mul_ps(x, neg, x, _mm512_set1_ps(s));
  }
};

struct F64 {
  using T = double;
  using reg = __m512d;
  static constexpr int W = 8;
  static reg zero() { return _mm512_setzero_pd(); }
  static reg load(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, reg x) { _mm512_storeu_pd(p, x); }
  static reg bcast(const double* p) { return _mm512_set1_pd(*p); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_pd(a, b, c); }
  static reg add(reg a, reg b) { return _mm512_add_pd(a, b); }
  static reg relu(reg x) { return _mm512_max_pd(x, _mm512_setzero_pd()); }
  static reg leaky(reg x, double s) {
    const __mmask8 neg = _mm512_cmp_pd_mask(x, _mm512_setzero_pd(), _CMP_LE_OQ);
    return _mm512_mask_mul_pd(x, neg, x, _mm512_set1_pd(s));
  }
};

}  // namespace

#include "kernels/gemm_simd.inl"

detail::Ukernel<float> ukernel(float) {
  // The KC x NR panel of B (256 x 32 floats = 32 KiB) stays in L1 (48 KiB) while the MC x KC
  // block of A (392 x 256 floats = 392 KiB) is streamed from L2 (1 MiB).
  return {&ukernel_simd<F32, 8, 2>, 8, 32, 392, 256, 4096};
}

detail::Ukernel<double> ukernel(double) {
  // 256 x 16 doubles of B = 32 KiB in L1; 192 x 256 doubles of A = 384 KiB in L2.
  return {&ukernel_simd<F64, 8, 2>, 8, 16, 192, 256, 2048};
}

}  // namespace avx512
}  // namespace gk
