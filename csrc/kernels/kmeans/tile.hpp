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

// k-means++ candidates are packed by coordinate pairs: group g of pp_group() candidates holds,
// for pair q (coordinates 2q, 2q + 1), the 2 pp_group() values c_{g G + j}[2q + s] at
// [q][2j + s], zero past m and past d: one 64-byte vector per pair and group.
template <typename T>
constexpr int pp_group() { return static_cast<int>(32 / sizeof(T)); }
constexpr int64_t pp_block_rows() { return 64; }

template <typename T>
int64_t pp_packed_size(int64_t m, int64_t d) {
  return (m + pp_group<T>() - 1) / pp_group<T>() * ((d + 1) / 2) * 2 * pp_group<T>();
}

template <typename T>
void pp_pack(T* packed, const T* cands, int64_t m, int64_t d) {
  constexpr int G = pp_group<T>();
  const int64_t npairs = (d + 1) / 2;
  for (int64_t i = 0; i < pp_packed_size<T>(m, d); ++i) packed[i] = T(0);
  for (int64_t t = 0; t < m; ++t)
    for (int64_t p = 0; p < d; ++p)
      packed[((t / G) * npairs + p / 2) * 2 * G + 2 * (t % G) + p % 2] = cands[t * d + p];
}

}  // namespace kmeans_tile

// Each ISA implements the same functions in its own namespace (see DESIGN.md: inline code
// compiled with different flags must not be merged by the linker).
#define GK_KMEANS_TILE_DECLS                                                                   \
  /* For `rows` rows of X (stride d): label = argmin_j (cnorm_j - 2 x.c_j), first on ties, */ \
  /* and mind = that minimum. */                                                             \
  template <typename T>                                                                      \
  void argmin_rows(int32_t* label, T* mind, const T* X, int64_t rows, int64_t d,             \
                   const T* packed, const T* cnorm, int64_t k);                              \
  /* The same, plus mind2 = the second smallest value (over the other centres).          */ \
  template <typename T>                                                                      \
  void argmin2_rows(int32_t* label, T* mind, T* mind2, const T* X, int64_t rows, int64_t d,  \
                    const T* packed, const T* cnorm, int64_t k);                             \
  /* The same for k <= small_k_max centres packed chunk-interleaved, plus xx = ||x||^2     */ \
  /* per row. Returns false if it does not take this k.                                    */ \
  template <typename T>                                                                      \
  bool argmin_rows_small_k(int32_t* label, T* mind, T* xx, const T* X, int64_t rows,         \
                           int64_t d, const T* packed, const T* cnorm, int64_t k);           \
  /* out (d,) += sum of w_i x_i over the rows idx[0..count) of X (stride d), in that order:  */ \
  /* summed in T (the first term rounded once, then one fused multiply-add per row), then    */ \
  /* added to out in float64. w null: unit weights.                                          */ \
  template <typename T>                                                                      \
  void add_rows(double* out, const T* X, const T* w, const int32_t* idx, int64_t count,      \
                int64_t d);                                                                  \
  /* k-means++: xx_i = ||x_i||^2 for `rows` rows of X (stride d).                          */ \
  template <typename T>                                                                      \
  void pp_norms(T* xx, const T* X, int64_t rows, int64_t d);                                 \
  /* k-means++: for rows of X (stride d) with norms xx from pp_norms, and m candidates       */ \
  /* packed by pp_pack, d_t = max(xx + cn_t - 2 x.c_t, 0). When update, candidate 0 joins  */ \
  /* the centres first: closest_i = min(d_0, closest_i). Then pots[t] += w_i              */ \
  /* min(d_t, closest_i) (float64, t < m).                                               */ \
  template <typename T>                                                                      \
  void pp_tile(double* pots, T* closest, const T* X, const T* xx, const T* w, int64_t rows,  \
               int64_t d, const T* packed, const T* cn, int64_t m, bool update);

namespace kmeans_portable { GK_KMEANS_TILE_DECLS }
#if defined(GRADKIT_HAVE_AVX2)
namespace kmeans_avx2 { GK_KMEANS_TILE_DECLS }
#endif
#if defined(GRADKIT_HAVE_AVX512)
namespace kmeans_avx512 { GK_KMEANS_TILE_DECLS }
#endif

}  // namespace gk
