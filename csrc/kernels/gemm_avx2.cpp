// AVX2 + FMA micro-kernels (the x86-64-v3 baseline). float: 6 x 16 tile = 12 YMM accumulators;
// double: 6 x 8. 16 YMM registers leave 2 for B and 1 for the broadcast.
#include "kernels/gemm_kernels.hpp"
#include "kernels/simd/avx2.hpp"
#include "kernels/simd/ops.hpp"

namespace gk {
namespace avx2 {

#include "kernels/gemm_simd.inl"

detail::Ukernel<float> ukernel(float) {
  return {&ukernel_simd<simd::avx2::Vec<float>, 6, 2>, 6, 16};
}

detail::Ukernel<double> ukernel(double) {
  return {&ukernel_simd<simd::avx2::Vec<double>, 6, 2>, 6, 8};
}

}  // namespace avx2
}  // namespace gk
