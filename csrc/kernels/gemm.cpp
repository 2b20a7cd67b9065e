// GEMM entry point. For now every call takes the reference loop; the packed AVX-512 / AVX2 /
// portable kernels replace it (see gemm.hpp for the contract).
#include "kernels/gemm.hpp"

#include <omp.h>

#include "kernels/cpu.hpp"

namespace gk {

template <typename T>
void gemm_naive(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const T* A,
                int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc, bool accumulate,
                const T* bias, Act act, T slope, int max_threads) {
  int nt = threads_for(2.0 * M * N * K);
  if (max_threads > 0 && nt > max_threads) nt = max_threads;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      T acc = T(0);
      for (int64_t p = 0; p < K; ++p) {
        const T a = trans_a ? A[p * lda + i] : A[i * lda + p];
        const T b = trans_b ? B[j * ldb + p] : B[p * ldb + j];
        acc += a * b;
      }
      if (accumulate) acc += C[i * ldc + j];
      if (bias) acc += bias[j];
      C[i * ldc + j] = apply_act(acc, act, slope);
    }
  }
}

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda,
          const T* B, int64_t ldb, T* C, int64_t ldc, bool accumulate, const T* bias, Act act,
          T slope, int max_threads) {
  gemm_naive(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc, accumulate, bias, act, slope,
             max_threads);
}

#define GK_INSTANTIATE(T)                                                                      \
  template void gemm<T>(bool, bool, int64_t, int64_t, int64_t, const T*, int64_t, const T*,    \
                        int64_t, T*, int64_t, bool, const T*, Act, T, int);                    \
  template void gemm_naive<T>(bool, bool, int64_t, int64_t, int64_t, const T*, int64_t,        \
                              const T*, int64_t, T*, int64_t, bool, const T*, Act, T, int);
GK_INSTANTIATE(float)
GK_INSTANTIATE(double)
#undef GK_INSTANTIATE

}  // namespace gk
