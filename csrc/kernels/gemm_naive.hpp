// The reference product as an inline template, for the GEMM entry point and for callers that run
// tiny products on their own thread without a function call per product (the fused MLP epoch).
// Include it only from baseline-ISA units: inline code built with other -march flags in another
// unit could be merged with this one by the linker.
#pragma once

#include <cstdint>

#include "kernels/gemm.hpp"

namespace gk {
namespace naive {

// c[j] = act(sum over p of a[p * lda] b[p * ldb + j] [+ c[j]] [+ bias[j]]) for j < NJ, the NJ
// sums held in registers (a runtime count would keep them on the stack, where every add waits
// for the previous store).
template <typename T, int NJ>
inline void tn_sums(T* c, const T* a, int64_t lda, const T* b, int64_t ldb, int64_t K,
                    bool accumulate, const T* bias, Act act, T slope) {
  T acc[NJ] = {};
  for (int64_t p = 0; p < K; ++p) {
    const T ap = a[p * lda];
    for (int j = 0; j < NJ; ++j) acc[j] += ap * b[p * ldb + j];
  }
  for (int j = 0; j < NJ; ++j) {
    T v = acc[j];
    if (accumulate) v += c[j];
    if (bias) v += bias[j];
    c[j] = apply_act(v, act, slope);
  }
}

// Rows [i0, i1) of C = act(A Bᵀ [+ C] [+ bias]) for a K of at most 3 (a tiny network's
// forward product), the K fixed so no loop or remainder test runs per element: a chain from
// zero contracted to FMAs where the ISA has them. That is the general loop's float32 result;
// its vectorised float64 part multiplied and added separately for K = 2 and 3 (last-bit
// differences).
template <typename T, int K>
inline void nt_short(int64_t i0, int64_t i1, int64_t N, const T* A, int64_t lda, const T* B,
                     int64_t ldb, T* C, int64_t ldc, bool accumulate, const T* bias, Act act,
                     T slope) {
  for (int64_t i = i0; i < i1; ++i) {
    const T* a = A + i * lda;
    for (int64_t j = 0; j < N; ++j) {
      const T* b = B + j * ldb;
      T acc = T(0);
      for (int p = 0; p < K; ++p) acc += a[p] * b[p];
      if (accumulate) acc += C[i * ldc + j];
      if (bias) acc += bias[j];
      C[i * ldc + j] = apply_act(acc, act, slope);
    }
  }
}

// Rows [i0, i1) of C = act(op(A) op(B) [+ C] [+ bias]): each element summed over K in order.
// The layout is a template parameter, so the inner loop carries no branch on it.
template <typename T, bool TA, bool TB>
inline void rows_layout(int64_t i0, int64_t i1, int64_t N, int64_t K, const T* A, int64_t lda,
                        const T* B, int64_t ldb, T* C, int64_t ldc, bool accumulate,
                        const T* bias, Act act, T slope) {
  if constexpr (TA && !TB) {
    // C = Aᵀ B (a weight gradient dzᵀ x, K = batch rows): the K-long sums of up to 8 elements
    // of a row of C advance side by side in registers, so their add latencies overlap instead of
    // adding up. Each sum still runs over p in order: the same bits as one element at a time.
    for (int64_t i = i0; i < i1; ++i) {
      for (int64_t j0 = 0; j0 < N; j0 += 8) {
        T* c = C + i * ldc + j0;
        const T* b = B + j0;
        const T* bi = bias ? bias + j0 : nullptr;
        switch (N - j0 < 8 ? N - j0 : 8) {
          case 1: tn_sums<T, 1>(c, A + i, lda, b, ldb, K, accumulate, bi, act, slope); break;
          case 2: tn_sums<T, 2>(c, A + i, lda, b, ldb, K, accumulate, bi, act, slope); break;
          case 3: tn_sums<T, 3>(c, A + i, lda, b, ldb, K, accumulate, bi, act, slope); break;
          case 4: tn_sums<T, 4>(c, A + i, lda, b, ldb, K, accumulate, bi, act, slope); break;
          case 5: tn_sums<T, 5>(c, A + i, lda, b, ldb, K, accumulate, bi, act, slope); break;
          case 6: tn_sums<T, 6>(c, A + i, lda, b, ldb, K, accumulate, bi, act, slope); break;
          case 7: tn_sums<T, 7>(c, A + i, lda, b, ldb, K, accumulate, bi, act, slope); break;
          default: tn_sums<T, 8>(c, A + i, lda, b, ldb, K, accumulate, bi, act, slope); break;
        }
      }
    }
    return;
  }
  if constexpr (!TA && TB) {
    switch (K) {
      case 1: nt_short<T, 1>(i0, i1, N, A, lda, B, ldb, C, ldc, accumulate, bias, act, slope); return;
      case 2: nt_short<T, 2>(i0, i1, N, A, lda, B, ldb, C, ldc, accumulate, bias, act, slope); return;
      case 3: nt_short<T, 3>(i0, i1, N, A, lda, B, ldb, C, ldc, accumulate, bias, act, slope); return;
      default: break;
    }
  }
  for (int64_t i = i0; i < i1; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      T acc = T(0);
      for (int64_t p = 0; p < K; ++p) {
        const T a = TA ? A[p * lda + i] : A[i * lda + p];
        const T b = TB ? B[j * ldb + p] : B[p * ldb + j];
        acc += a * b;
      }
      if (accumulate) acc += C[i * ldc + j];
      if (bias) acc += bias[j];
      C[i * ldc + j] = apply_act(acc, act, slope);
    }
  }
}

template <typename T>
inline void rows(int64_t i0, int64_t i1, bool trans_a, bool trans_b, int64_t N, int64_t K,
                 const T* A, int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc,
                 bool accumulate, const T* bias, Act act, T slope) {
  // Direct calls (not a pointer) so each layout inlines into the caller.
  if (trans_a && trans_b)
    rows_layout<T, true, true>(i0, i1, N, K, A, lda, B, ldb, C, ldc, accumulate, bias, act, slope);
  else if (trans_a)
    rows_layout<T, true, false>(i0, i1, N, K, A, lda, B, ldb, C, ldc, accumulate, bias, act, slope);
  else if (trans_b)
    rows_layout<T, false, true>(i0, i1, N, K, A, lda, B, ldb, C, ldc, accumulate, bias, act, slope);
  else
    rows_layout<T, false, false>(i0, i1, N, K, A, lda, B, ldb, C, ldc, accumulate, bias, act,
                                 slope);
}

}  // namespace naive
}  // namespace gk
