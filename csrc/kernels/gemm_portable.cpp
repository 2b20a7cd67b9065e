// Portable micro-kernels: the GEMM's register tile on the plain-C++ SIMD layer (32-byte generic
// vectors), for CPUs without AVX2 and for the tests that force the fallback.
#include "kernels/gemm_kernels.hpp"
#include "kernels/simd/portable.hpp"
#include "kernels/simd/ops.hpp"

namespace gk {
namespace portable {

#include "kernels/gemm_simd.inl"

detail::Ukernel<float> ukernel(float) {
  return {&ukernel_simd<simd::portable::Vec<float>, 6, 2>, 6, 16};
}
detail::Ukernel<double> ukernel(double) {
  return {&ukernel_simd<simd::portable::Vec<double>, 6, 2>, 6, 8};
}

}  // namespace portable
}  // namespace gk
