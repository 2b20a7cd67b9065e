// Internal to the GEMM: the micro-kernel interface that each ISA unit implements.
//
// A micro-kernel computes one MR x NR tile of C from packed panels:
//   a: MR x kc, stored k-major (for each p, MR values of op(A)), rows past m are zero;
//   b: kc x NR, stored k-major (for each p, NR values of op(B)), columns past n are zero.
// It writes the top-left m x n corner of the tile: c = act(a*b [+ c if load_c] [+ bias]),
// with act/bias only on the last K block (the driver passes Act::none and bias = nullptr before).
//
// Each ISA unit defines its kernels in its own namespace (gk::avx512, gk::avx2, gk::portable):
// the units are compiled with different -march flags, and inline or template code with the same
// name in two of them could be merged by the linker into the wrong instruction set.
#pragma once

#include <cstdint>

#include "kernels/gemm.hpp"

namespace gk {
namespace detail {

template <typename T>
using UkernelFn = void (*)(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, int m, int n,
                           bool load_c, const T* bias, Act act, T slope);

// A micro-kernel and its register tile. The cache blocking (MC, KC, NC) is not part of it: the
// driver derives it from the cache sizes read at run time (gk::cpu_info()).
template <typename T>
struct Ukernel {
  UkernelFn<T> fn;
  int mr, nr;
};

// Writes an m x n corner of a computed tile (row stride ldt) into C with the full epilogue, in
// scalar code. Used for edge tiles and for sigmoid/tanh; defined once, in the baseline unit.
template <typename T>
void store_tile(T* c, int64_t ldc, const T* tile, int ldt, int m, int n, bool load_c,
                const T* bias, Act act, T slope);

}  // namespace detail

namespace portable {
detail::Ukernel<float> ukernel(float);
detail::Ukernel<double> ukernel(double);
}  // namespace portable

namespace avx2 {
detail::Ukernel<float> ukernel(float);
detail::Ukernel<double> ukernel(double);
}  // namespace avx2

#if defined(GRADKIT_HAVE_AVX512)
namespace avx512 {
detail::Ukernel<float> ukernel(float);
detail::Ukernel<double> ukernel(double);
}  // namespace avx512
#endif

}  // namespace gk
