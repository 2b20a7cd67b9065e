// AVX-512 distance tiles for k-means: an MR x (NV vectors) register block of dot products
// between rows of X and a packed panel of centres, with the argmin fused so that no distance
// leaves the registers. Compiled with -march=x86-64-v4; entered only after a CPU check.
#include <immintrin.h>

#include <climits>
#include <cstdint>
#include <limits>

#include "kernels/kmeans_tile.hpp"

namespace gk {
namespace kmeans_avx512 {
namespace {

template <typename T>
struct Simd;

template <>
struct Simd<float> {
  using reg = __m512;
  using idx = __m512i;  // 16 x int32
  using mask = __mmask16;
  static constexpr int W = 16;
  static reg zero() { return _mm512_setzero_ps(); }
  static reg set1(float v) { return _mm512_set1_ps(v); }
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
  static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg fnmadd(reg a, reg b, reg c) { return _mm512_fnmadd_ps(a, b, c); }
  static mask lt(reg a, reg b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static mask eq(reg a, reg b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
  static reg select(mask m, reg a, reg b) { return _mm512_mask_blend_ps(m, a, b); }
  static float hmin(reg a) { return _mm512_reduce_min_ps(a); }
  static idx iota(int base) {
    return _mm512_add_epi32(_mm512_set1_epi32(base),
                            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  }
  static idx izero() { return _mm512_setzero_si512(); }
  static idx iselect(mask m, idx a, idx b) { return _mm512_mask_blend_epi32(m, a, b); }
  static int hmin_masked(mask m, idx a) {
    return _mm512_reduce_min_epi32(_mm512_mask_blend_epi32(m, _mm512_set1_epi32(INT_MAX), a));
  }
};

template <>
struct Simd<double> {
  using reg = __m512d;
  using idx = __m256i;  // 8 x int32
  using mask = __mmask8;
  static constexpr int W = 8;
  static reg zero() { return _mm512_setzero_pd(); }
  static reg set1(double v) { return _mm512_set1_pd(v); }
  static reg load(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, reg v) { _mm512_storeu_pd(p, v); }
  static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_pd(a, b, c); }
  static reg add(reg a, reg b) { return _mm512_add_pd(a, b); }
  static reg fnmadd(reg a, reg b, reg c) { return _mm512_fnmadd_pd(a, b, c); }
  static mask lt(reg a, reg b) { return _mm512_cmp_pd_mask(a, b, _CMP_LT_OQ); }
  static mask eq(reg a, reg b) { return _mm512_cmp_pd_mask(a, b, _CMP_EQ_OQ); }
  static reg select(mask m, reg a, reg b) { return _mm512_mask_blend_pd(m, a, b); }
  static double hmin(reg a) { return _mm512_reduce_min_pd(a); }
  static idx iota(int base) {
    return _mm256_add_epi32(_mm256_set1_epi32(base), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static idx izero() { return _mm256_setzero_si256(); }
  static idx iselect(mask m, idx a, idx b) { return _mm256_mask_blend_epi32(m, a, b); }
  static int hmin_masked(mask m, idx a) {
    alignas(32) int v[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(v),
                       _mm256_mask_blend_epi32(m, _mm256_set1_epi32(INT_MAX), a));
    int best = v[0];
    for (int i = 1; i < 8; ++i) best = v[i] < best ? v[i] : best;
    return best;
  }
};

constexpr int MR = 8;  // rows per register block

// acc[r][v] = sum_p x_r[p] * panel[p, v W : v W + W]: MR x NV accumulators, one broadcast of
// x per row and NV loads of the panel per p. With one vector per row, 8 chains cannot hide the
// FMA latency, so even and odd p go to two sets of accumulators, added at the end.
template <typename T, int NV>
inline void dot_block(typename Simd<T>::reg (&acc)[MR][NV], const T* const (&xr)[MR], int64_t d,
                      const T* panel) {
  using S = Simd<T>;
  constexpr int64_t NR = kmeans_tile::panel_width<T>();
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = S::zero();
  int64_t p = 0;
  if constexpr (NV == 1) {
    typename S::reg odd[MR];
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) odd[r] = S::zero();
    for (; p + 2 <= d; p += 2) {
      const typename S::reg b0 = S::load(panel + p * NR), b1 = S::load(panel + (p + 1) * NR);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        acc[r][0] = S::fmadd(S::set1(xr[r][p]), b0, acc[r][0]);
        odd[r] = S::fmadd(S::set1(xr[r][p + 1]), b1, odd[r]);
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) acc[r][0] = S::add(acc[r][0], odd[r]);
  }
  for (; p < d; ++p) {
    typename S::reg b[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) b[v] = S::load(panel + p * NR + v * S::W);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const typename S::reg a = S::set1(xr[r][p]);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = S::fmadd(a, b[v], acc[r][v]);
    }
  }
}

// Row pointers for the block starting at row i; missing rows repeat the last valid row (their
// results are discarded), so the tail needs no copy.
template <typename T>
inline int set_rows(const T* (&xr)[MR], const T* X, int64_t i, int64_t rows, int64_t d) {
  const int valid = static_cast<int>(rows - i < MR ? rows - i : MR);
  for (int r = 0; r < MR; ++r) xr[r] = X + (i + (r < valid ? r : valid - 1)) * d;
  return valid;
}

template <typename T, int NV>
inline void argmin_panel(typename Simd<T>::reg (&best)[MR], typename Simd<T>::idx (&bidx)[MR],
                         const T* const (&xr)[MR], int64_t d, const T* panel, const T* cn,
                         int base) {
  using S = Simd<T>;
  typename S::reg acc[MR][NV];
  dot_block<T, NV>(acc, xr, d, panel);
  const typename S::reg two = S::set1(T(2));
#pragma GCC unroll 2
  for (int v = 0; v < NV; ++v) {
    const typename S::reg c = S::load(cn + v * S::W);
    const typename S::idx id = S::iota(base + v * S::W);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      // ||c||^2 - 2 x.c with one rounding (2 x.c is exact), as the reference computes it.
      const typename S::reg dist = S::fnmadd(two, acc[r][v], c);
      const typename S::mask m = S::lt(dist, best[r]);
      best[r] = S::select(m, best[r], dist);
      bidx[r] = S::iselect(m, bidx[r], id);
    }
  }
}

}  // namespace

template <typename T>
void argmin_rows(int32_t* label, T* mind, const T* X, int64_t rows, int64_t d, const T* packed,
                 const T* cnorm, int64_t k) {
  using S = Simd<T>;
  constexpr int64_t NR = kmeans_tile::panel_width<T>();
  const int64_t panels = (k + NR - 1) / NR;
  const bool last_half = (k - (panels - 1) * NR) <= S::W;  // last panel fits one vector
  for (int64_t i = 0; i < rows; i += MR) {
    const T* xr[MR];
    const int valid = set_rows(xr, X, i, rows, d);
    typename S::reg best[MR];
    typename S::idx bidx[MR];
    for (int r = 0; r < MR; ++r) {
      best[r] = S::set1(std::numeric_limits<T>::infinity());
      bidx[r] = S::izero();
    }
    for (int64_t q = 0; q < panels; ++q) {
      const T* panel = packed + q * NR * d;
      const int base = static_cast<int>(q * NR);
      if (q == panels - 1 && last_half)
        argmin_panel<T, 1>(best, bidx, xr, d, panel, cnorm + q * NR, base);
      else
        argmin_panel<T, 2>(best, bidx, xr, d, panel, cnorm + q * NR, base);
    }
    // Across lanes: the smallest value, and among the lanes holding it the lowest index.
    // Within a lane indices only grow and the update is strict, so this is the first argmin.
    for (int r = 0; r < valid; ++r) {
      const T m = S::hmin(best[r]);
      label[i + r] = S::hmin_masked(S::eq(best[r], S::set1(m)), bidx[r]);
      mind[i + r] = m;
    }
  }
}

template <typename T>
void dots_rows(T* dots, const T* X, int64_t rows, int64_t d, const T* packed, int64_t ncols) {
  using S = Simd<T>;
  alignas(64) T tmp[2 * S::W];
  for (int64_t i = 0; i < rows; i += MR) {
    const T* xr[MR];
    const int valid = set_rows(xr, X, i, rows, d);
    if (ncols <= S::W) {
      typename S::reg acc[MR][1];
      dot_block<T, 1>(acc, xr, d, packed);
      for (int r = 0; r < valid; ++r) {
        S::store(tmp, acc[r][0]);
        for (int64_t c = 0; c < ncols; ++c) dots[(i + r) * ncols + c] = tmp[c];
      }
    } else {
      typename S::reg acc[MR][2];
      dot_block<T, 2>(acc, xr, d, packed);
      for (int r = 0; r < valid; ++r) {
        S::store(tmp, acc[r][0]);
        S::store(tmp + S::W, acc[r][1]);
        for (int64_t c = 0; c < ncols; ++c) dots[(i + r) * ncols + c] = tmp[c];
      }
    }
  }
}

template void argmin_rows<float>(int32_t*, float*, const float*, int64_t, int64_t, const float*,
                                 const float*, int64_t);
template void argmin_rows<double>(int32_t*, double*, const double*, int64_t, int64_t,
                                  const double*, const double*, int64_t);
template void dots_rows<float>(float*, const float*, int64_t, int64_t, const float*, int64_t);
template void dots_rows<double>(double*, const double*, int64_t, int64_t, const double*, int64_t);

}  // namespace kmeans_avx512
}  // namespace gk
