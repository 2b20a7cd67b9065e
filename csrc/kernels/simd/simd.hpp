// One SIMD layer for every kernel (GEMM, k-means tiles, the MLP epoch), one header per ISA:
//
//   simd/avx512.hpp   gk::simd::avx512::Vec<T>   512-bit, __mmask masks   (-march=x86-64-v4 units)
//   simd/avx2.hpp     gk::simd::avx2::Vec<T>     256-bit, all-ones lane masks (x86-64-v3 units)
//   simd/portable.hpp gk::simd::portable::Vec<T> 32-byte GCC/Clang generic vectors, plain C++;
//                     any target; the fallback the tests force with gk.force_isa("portable")
//
// Each Vec<T> (T = float or double) is a struct of static functions over a register type:
//
//   using T; using reg; using mask;  static constexpr int W  (lanes)
//   zero()  set1(T)  bcast(const T*)                      broadcast a value / a value in memory
//   load(p) store(p, x)                                   unaligned, W lanes
//   load_n(p, n) store_n(p, x, n)                         lanes [0, n) only, n in [0, W]; the
//                                                         others load as 0 and are not written
//                                                         (masked on AVX-512/AVX2, no fault past n)
//   add sub mul  fma(a, b, c) = a*b + c (one rounding where the ISA has FMA)
//   max(a, b) min(a, b)                                   x86 rule: `a > b ? a : b` (`a < b ? a : b`),
//                                                         so a NaN in a gives b: put the value whose
//                                                         NaN must survive SECOND
//   lt le gt ge eq ne (a, b) -> mask                      ordered compares (false on NaN), ne unordered
//   select(m, a, b) = m ? a : b  per lane
//   hsum(x) -> T                                          lanes added in a fixed tree order
//
// Why one namespace per ISA, with the structs in an anonymous namespace: every unit compiled
// with other -march flags gets its own copy with internal linkage, so the linker can never merge
// an AVX-512 instance into code that runs on an AVX2 CPU (a SIGILL). Include the header of the
// unit's own ISA only (the x86-64-v3 baseline units may include avx2.hpp and portable.hpp).
//
// Derived operations written once on top of any Vec (ReLU, leaky ReLU, ...) live in simd/ops.hpp.
#pragma once
