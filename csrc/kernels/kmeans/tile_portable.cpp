// The portable k-means tiles: plain loops that the compiler vectorises for the baseline ISA.
// Same contracts as the SIMD tiles (kmeans/tile.hpp), and the fallback the tests can force.
#include <algorithm>
#include <limits>
#include <vector>

#include "kernels/kmeans/common.hpp"
#include "kernels/kmeans/tile.hpp"

namespace gk {
namespace kmeans_portable {

using kmeans_detail::sq_norm;

template <typename T>
void argmin_rows(int32_t* label, T* mind, const T* X, int64_t rows, int64_t d, const T* packed,
                 const T* cnorm, int64_t k) {
  constexpr int64_t NR = kmeans_tile::panel_width<T>();
  T dot[NR];
  for (int64_t i = 0; i < rows; ++i) {
    const T* x = X + i * d;
    T best = std::numeric_limits<T>::infinity();
    int32_t arg = 0;
    for (int64_t q = 0; q * NR < k; ++q) {
      const T* panel = packed + q * NR * d;
      for (int64_t c = 0; c < NR; ++c) dot[c] = T(0);
      for (int64_t p = 0; p < d; ++p)
        for (int64_t c = 0; c < NR; ++c) dot[c] += x[p] * panel[p * NR + c];
      const int64_t cols = std::min(NR, k - q * NR);
      for (int64_t c = 0; c < cols; ++c) {
        const T dist = cnorm[q * NR + c] - T(2) * dot[c];
        if (dist < best) {
          best = dist;
          arg = static_cast<int32_t>(q * NR + c);
        }
      }
    }
    label[i] = arg;
    mind[i] = best;
  }
}

// argmin_rows with the second smallest value kept beside the smallest.
template <typename T>
void argmin2_rows(int32_t* label, T* mind, T* mind2, const T* X, int64_t rows, int64_t d,
                  const T* packed, const T* cnorm, int64_t k) {
  constexpr int64_t NR = kmeans_tile::panel_width<T>();
  T dot[NR];
  for (int64_t i = 0; i < rows; ++i) {
    const T* x = X + i * d;
    T best = std::numeric_limits<T>::infinity(), second = best;
    int32_t arg = 0;
    for (int64_t q = 0; q * NR < k; ++q) {
      const T* panel = packed + q * NR * d;
      for (int64_t c = 0; c < NR; ++c) dot[c] = T(0);
      for (int64_t p = 0; p < d; ++p)
        for (int64_t c = 0; c < NR; ++c) dot[c] += x[p] * panel[p * NR + c];
      const int64_t cols = std::min(NR, k - q * NR);
      for (int64_t c = 0; c < cols; ++c) {
        const T dist = cnorm[q * NR + c] - T(2) * dot[c];
        if (dist < best) {
          second = best;
          best = dist;
          arg = static_cast<int32_t>(q * NR + c);
        } else if (dist < second) {
          second = dist;
        }
      }
    }
    label[i] = arg;
    mind[i] = best;
    mind2[i] = second;
  }
}

// Segments of d whose sums stay in a local array (registers or L1) while the rows go by.
template <typename T>
void add_rows(double* out, const T* X, const T* w, const int32_t* idx, int64_t count,
              int64_t d) {
  constexpr int64_t SEG = 64;
  T acc[SEG];
  for (int64_t p0 = 0; p0 < d && count > 0; p0 += SEG) {
    const int64_t m = std::min(SEG, d - p0);
    const T* x0 = X + static_cast<int64_t>(idx[0]) * d + p0;
    const T w0 = w ? w[idx[0]] : T(1);
    for (int64_t c = 0; c < m; ++c) acc[c] = w0 * x0[c];
    for (int64_t t = 1; t < count; ++t) {
      const T* x = X + static_cast<int64_t>(idx[t]) * d + p0;
      const T wt = w ? w[idx[t]] : T(1);
      for (int64_t c = 0; c < m; ++c) acc[c] += wt * x[c];
    }
    for (int64_t c = 0; c < m; ++c) out[p0 + c] += static_cast<double>(acc[c]);
  }
}

// Same contract as the AVX-512 tile; each distance is computed as the portable sweep did
// (||x||^2 in float64 rounded to T, one chain over p for x.c).
template <typename T>
void pp_norms(T* xx, const T* X, int64_t rows, int64_t d) {
  for (int64_t i = 0; i < rows; ++i) xx[i] = static_cast<T>(sq_norm(X + i * d, d));
}

template <typename T>
void pp_tile(double* pots, T* closest, const T* X, const T* xxs, const T* w, int64_t rows,
             int64_t d, const T* packed, const T* cn, int64_t m, bool update) {
  constexpr int G = kmeans_tile::pp_group<T>();
  const int64_t npairs = (d + 1) / 2, groups = (m + G - 1) / G;
  // Unpacked to (d, G) per group so that the dot loop below is the Lloyd panel's loop.
  std::vector<T> cols(groups * d * G);
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t p = 0; p < d; ++p)
      for (int j = 0; j < G; ++j)
        cols[(g * d + p) * G + j] = packed[(g * npairs + p / 2) * 2 * G + 2 * j + p % 2];
  for (int64_t i = 0; i < rows; ++i) {
    const T* x = X + i * d;
    const T xx = xxs[i];
    const double wi = w ? static_cast<double>(w[i]) : 1.0;
    for (int64_t g = 0; g * G < m; ++g) {
      // p outer, candidates inner, as the Lloyd panel loop: one multiply-add chain over p per
      // candidate, contracted to FMA wherever that loop is.
      const T* panel = cols.data() + g * d * G;
      T dot[G] = {};
      for (int64_t p = 0; p < d; ++p)
        for (int j = 0; j < G; ++j) dot[j] += x[p] * panel[p * G + j];
      for (int64_t t = g * G; t < std::min<int64_t>(m, g * G + G); ++t) {
        T dist = xx + cn[t] - T(2) * dot[t - g * G];
        dist = std::max(dist, T(0));
        dist = std::min(dist, closest[i]);
        if (update && t == 0) closest[i] = dist;
        pots[t] += wi * static_cast<double>(dist);
      }
    }
  }
}

#define GK_KMEANS_PORTABLE_INSTANTIATE(T)                                                      \
  template void argmin_rows<T>(int32_t*, T*, const T*, int64_t, int64_t, const T*, const T*,    \
                               int64_t);                                                        \
  template void argmin2_rows<T>(int32_t*, T*, T*, const T*, int64_t, int64_t, const T*,         \
                                const T*, int64_t);                                             \
  template void add_rows<T>(double*, const T*, const T*, const int32_t*, int64_t, int64_t);      \
  template void pp_norms<T>(T*, const T*, int64_t, int64_t);                                     \
  template void pp_tile<T>(double*, T*, const T*, const T*, const T*, int64_t, int64_t,          \
                           const T*, const T*, int64_t, bool);
GK_KMEANS_PORTABLE_INSTANTIATE(float)
GK_KMEANS_PORTABLE_INSTANTIATE(double)

}  // namespace kmeans_portable
}  // namespace gk
