// Internal to the k-means kernels: the distance tile computed per ISA.
//
// Centres are packed in panels of NR = 128 bytes / sizeof(T) centres: panel q holds centres
// [q NR, q NR + NR) as a (d, NR) row-major block, zero-padded past k; cnorm (kpad,) holds
// ||c||^2 and +inf for the padding, so a padded column never wins an argmin.
#pragma once

#include <cstdint>

namespace gk {
namespace kmeans_tile {

template <typename T>
constexpr int64_t panel_width() { return 128 / static_cast<int64_t>(sizeof(T)); }

}  // namespace kmeans_tile

// Each ISA implements the same two functions in its own namespace (see DESIGN.md: inline code
// compiled with different flags must not be merged by the linker).
#define GK_KMEANS_TILE_DECLS                                                                   \
  /* For `rows` rows of X (stride d): label = argmin_j (cnorm_j - 2 x.c_j), first on ties, */ \
  /* and mind = that minimum. */                                                             \
  template <typename T>                                                                      \
  void argmin_rows(int32_t* label, T* mind, const T* X, int64_t rows, int64_t d,             \
                   const T* packed, const T* cnorm, int64_t k);                              \
  /* dots (rows, ncols) = X . c_j for the first ncols <= NR centres of panel 0. */            \
  template <typename T>                                                                      \
  void dots_rows(T* dots, const T* X, int64_t rows, int64_t d, const T* packed, int64_t ncols);

namespace kmeans_portable { GK_KMEANS_TILE_DECLS }
#if defined(GRADKIT_HAVE_AVX512)
namespace kmeans_avx512 { GK_KMEANS_TILE_DECLS }
#endif

}  // namespace gk
