// AVX-512 micro-kernels (compiled with -march=x86-64-v4; entered only after a CPU check).
// float: 8 x 32 tile = 16 ZMM accumulators; double: 8 x 16. Two FMA pipes of latency 4 need at
// least 8 independent accumulators; per K step the tile costs 2 vector loads + 8 broadcasts for
// 16 FMAs, within two loads per cycle; 8 rows divide the usual batch sizes with no padding.
// GCC 12's _mm512_max_ps/pd start from an intentionally undefined register and trip this warning.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "kernels/gemm_kernels.hpp"
#include "kernels/simd/avx512.hpp"
#include "kernels/simd/ops.hpp"

namespace gk {
namespace avx512 {

#include "kernels/gemm_simd.inl"

detail::Ukernel<float> ukernel(float) {
  return {&ukernel_simd<simd::avx512::Vec<float>, 8, 2>, 8, 32};
}

detail::Ukernel<double> ukernel(double) {
  return {&ukernel_simd<simd::avx512::Vec<double>, 8, 2>, 8, 16};
}

}  // namespace avx512
}  // namespace gk
