// Explicitly vectorised float32 loss kernels over one contiguous range, one copy per ISA
// (loss_avx2.cpp, loss_avx512.cpp; the body is loss_simd.inl). loss.cpp cuts the work into
// fixed chunks and picks the ISA with gk::active_isa(). Same contract as loss.hpp on a range:
// grad is written, per (if not null) receives the per-element losses and the return value is 0,
// otherwise the return value is the double sum of the per-element losses in a fixed lane order.
#pragma once

#include <cstdint>

namespace gk {

#define GK_DECLARE_SIMD_LOSSES                                                                \
  double l1_range(float* grad, float* per, const float* p, const float* y, int64_t n,         \
                  float scale);                                                               \
  double mse_range(float* grad, float* per, const float* p, const float* y, int64_t n,        \
                   float scale, float factor);                                                \
  double bce_range(float* grad, float* per, int64_t* n_bad, const float* p, const float* y,   \
                   int64_t n, float scale);                                                   \
  double bce_with_logits_range(float* grad, float* per, const float* z, const float* y,       \
                               int64_t n, float scale);                                       \
  /* logits and grad (rows, C), labels (rows,), per (rows,) */                                \
  double cross_entropy_rows(float* grad, float* per, const float* z, const int64_t* labels,   \
                            int64_t rows, int64_t C, float scale);

#if defined(__AVX2__) && defined(__FMA__)
#define GK_HAVE_SIMD_AVX2 1
namespace avx2 {
GK_DECLARE_SIMD_LOSSES
}
#endif
#if defined(GRADKIT_HAVE_AVX512)
namespace avx512 {
GK_DECLARE_SIMD_LOSSES
}
#endif

#undef GK_DECLARE_SIMD_LOSSES

}  // namespace gk
