// Internal to the k-means kernels: the distance tile computed per ISA.
//
// Centres are packed in panels of NR = 128 bytes / sizeof(T) centres: panel q holds centres
// [q NR, q NR + NR) as a (d, NR) row-major block, zero-padded past k; cnorm (kpad,) holds
// ||c||^2 and +inf for the padding, so a padded column never wins an argmin.
//
// For few centres (k <= small_k_max) the small-k tile takes them chunk-
// interleaved instead: d is cut into chunks of V and chunk q holds the k centres' elements
// [q V, q V + V), one centre after the other, zero past d; so (ceil(d / V) V) k values.
#pragma once

#include <cstdint>

namespace gk {
namespace kmeans_tile {

template <typename T>
constexpr int64_t panel_width() { return 128 / static_cast<int64_t>(sizeof(T)); }

template <typename T>
constexpr int64_t small_k_width() { return 64 / static_cast<int64_t>(sizeof(T)); }

// The most centres the small-k tile takes: 12 float32, 6 float64.
template <typename T>
constexpr int64_t small_k_max() { return 3 * small_k_width<T>() / 4; }

}  // namespace kmeans_tile

// Each ISA implements the same two functions in its own namespace (see DESIGN.md: inline code
// compiled with different flags must not be merged by the linker).
#define GK_KMEANS_TILE_DECLS                                                                   \
  /* For `rows` rows of X (stride d): label = argmin_j (cnorm_j - 2 x.c_j), first on ties, */ \
  /* and mind = that minimum. */                                                             \
  template <typename T>                                                                      \
  void argmin_rows(int32_t* label, T* mind, const T* X, int64_t rows, int64_t d,             \
                   const T* packed, const T* cnorm, int64_t k);                              \
  /* The same for k <= small_k_max centres packed chunk-interleaved, plus xx = ||x||^2     */ \
  /* per row. Returns false if it does not take this k.                                    */ \
  template <typename T>                                                                      \
  bool argmin_rows_small_k(int32_t* label, T* mind, T* xx, const T* X, int64_t rows,         \
                           int64_t d, const T* packed, const T* cnorm, int64_t k);           \
  /* k-means++ sweep over rows: d_t = max(||x||^2 + cnorm_t - 2 x.c_t, 0) for the ncols     */ \
  /* candidates of panel 0, m_t = min(d_t, closest_i); pots[t] += w_i m_t (float64); when   */ \
  /* update (one candidate), closest_i = m_0. Returns false if it cannot take ncols.        */ \
  template <typename T>                                                                      \
  bool pp_sweep_rows(double* pots, T* closest, const T* X, const T* w, int64_t rows,         \
                     int64_t d, const T* packed, const T* cnorm, int64_t ncols, bool update); \
  /* out (d,) += sum of w_i x_i over the rows idx[0..count) of X (stride d), in that order:  */ \
  /* summed in T (the first term rounded once, then one fused multiply-add per row), then    */ \
  /* added to out in float64. w null: unit weights.                                          */ \
  template <typename T>                                                                      \
  void add_rows(double* out, const T* X, const T* w, const int32_t* idx, int64_t count,      \
                int64_t d);                                                                  \
  /* dots (rows, ncols) = X . c_j for the first ncols <= NR centres of panel 0. */            \
  template <typename T>                                                                      \
  void dots_rows(T* dots, const T* X, int64_t rows, int64_t d, const T* packed, int64_t ncols);

namespace kmeans_portable { GK_KMEANS_TILE_DECLS }
#if defined(GRADKIT_HAVE_AVX512)
namespace kmeans_avx512 { GK_KMEANS_TILE_DECLS }
#endif

}  // namespace gk
