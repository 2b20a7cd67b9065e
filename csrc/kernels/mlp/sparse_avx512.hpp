// The first layer of the fused MLP epoch, with its weight held transposed for the whole call:
// wt (IN, OUT) = Wᵀ, so both of the layer's big products walk rows of wt and can skip exact
// zeros of the input (about half the pixels of MNIST-like images are 0):
//   forward   z[i, :]  = act(sum over k with x[i, k] != 0 of x[i, k] wt[k, :] + b)
//   backward  g[k, :]  = sum over i with x[i, k] != 0 of x[i, k] dz[i, :]   (= dWᵀ row k)
//             followed at once by the SGD update of wt[k, :] (and its momentum row), so the
//             gradient of the big weight never goes to memory.
// Skipping a zero term leaves an FMA chain bitwise unchanged (fma(0, w, acc) == acc for finite
// w), and every element is one chain in increasing k (forward) or i (backward), so the sparse
// and dense modes give the same bits, for any split of rows or k over threads.
// AVX-512 only (this unit is compiled with -march=x86-64-v4); the caller checks the ISA.
#pragma once

#include <cstdint>

#include "kernels/gemm.hpp"
#include "kernels/mlp/epoch.hpp"

namespace gk {
namespace avx512 {

// xt (K, ldxt) OUT: xt[k, i] = X[rows[i], k] for i < m, and 0 for m <= i < ldxt (a multiple of
// 16). X is (N, K). Returns the number of non-zero values of the batch.
template <typename T>
int64_t first_gather_transposed(T* xt, int64_t ldxt, const T* X, const int64_t* rows, int64_t m,
                                int64_t K);

// sorted[0, m) = rows[0, m) reordered so that neighbouring rows have similar zero patterns
// (by the position of their first non-zero value, then their number of non-zeros; a stable
// sort), which lets first_forward's row pairs share more non-zero k. Scratch: order (2 * m
// int32) and key (m uint16).
template <typename T>
void first_sort_rows(int64_t* sorted, int32_t* order, uint16_t* key, const T* X,
                     const int64_t* rows, int64_t m, int64_t K);

// Rows [i0, i1) of z (m, N) = act(x wt + bias), row i of x being X[rows[i]] (K values);
// wt is (K, N). skip_zeros: visit only the k where x[i, k] or its partner row's value is
// non-zero (rows go in pairs i, i + 1 sharing their loads of wt); same bits either way.
template <typename T>
void first_forward(T* z, const T* X, const int64_t* rows, int64_t i0, int64_t i1, int64_t K,
                   const T* wt, int64_t N, const T* bias, Act act, T slope, bool skip_zeros);

// For k in [k0, k1): g = sum_i xt[k, i] dz[i, :] over i < m in order, then the SGD step on
// wt[k, :] (INOUT) and buft[k, :] (INOUT momentum rows, or nullptr when sgd.momentum == 0).
// xt is (K, ldxt) as written by first_gather_transposed, dz is (m, N).
template <typename T>
void first_backward_sgd(T* wt, T* buft, const T* xt, int64_t ldxt, const T* dz, int64_t m,
                        int64_t N, int64_t k0, int64_t k1, const SgdParams& sgd, bool skip_zeros);

}  // namespace avx512
}  // namespace gk
