// General matrix multiply with a fused epilogue, row-major throughout.
//
//   C (M, N) = act( op(A) (M, K) * op(B) (K, N)  [+ C if accumulate]  [+ bias (N)] )
//
// op(A) = A stored (M, K) with row stride lda, or, when trans_a, A stored (K, M) read transposed.
// op(B) = B stored (K, N) with row stride ldb, or, when trans_b, B stored (N, K) read transposed.
// A dense layer needs three layouts: y = x Wᵀ + b (trans_b), dW = dyᵀ x (trans_a), dx = dy W (none).
//
// Work is split over rows and columns of C only (never over K), so every element of C is the
// same sum in the same order whatever the thread count: results are bitwise reproducible.
// Kernels trust their input: sizes >= 0, strides valid, C not aliasing A or B.
// max_threads: 0 = up to omp_get_max_threads() (one thread for small products); 1 = run on the
// calling thread only, for callers that are already inside their own parallel region.
#pragma once

#include <cstdint>

#include "kernels/activation.hpp"

namespace gk {

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
          const T* A, int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc,
          bool accumulate = false, const T* bias = nullptr, Act act = Act::none,
          T slope = T(0.01), int max_threads = 0);

// The plain triple loop: the reference the packed kernels are tested against, and the
// fallback for tiny products. Same contract as gemm().
template <typename T>
void gemm_naive(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                const T* A, int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc,
                bool accumulate = false, const T* bias = nullptr, Act act = Act::none,
                T slope = T(0.01), int max_threads = 0);

// The epilogue on one value, shared by every GEMM path: the activation of activation.hpp.
template <typename T>
static inline T apply_act(T v, Act act, T slope) {
  return act::forward(act, v, slope);
}

}  // namespace gk
