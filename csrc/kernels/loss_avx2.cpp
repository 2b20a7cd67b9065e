// The float32 loss kernels with 8-lane vectors (AVX2 + FMA, the baseline build).
#include "kernels/loss_simd.hpp"

#if defined(GK_HAVE_SIMD_AVX2)
#define GK_SIMD_NS avx2
#define GK_W 8
#include "kernels/loss_simd.inl"
#endif
