// The float32 loss kernels with 16-lane vectors (compiled with -march=x86-64-v4; entered only
// when gk::active_isa() says the CPU has AVX-512).
#include "kernels/loss_simd.hpp"

#if defined(GRADKIT_HAVE_AVX512) && defined(__AVX512F__)
// GCC 12's avx512fintrin.h leaves the upper half of some casts "uninitialised" on purpose.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#define GK_SIMD_NS avx512
#define GK_W 16
#include "kernels/loss_simd.inl"
#endif
