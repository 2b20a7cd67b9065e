// AVX2 distance tile for k-means: MR rows x one half panel (2 vectors of centres) of dot
// products in registers, the argmin fused after each half panel. Compiled with
// -march=x86-64-v3; entered only after a CPU check.
//
// Each (row, centre) dot product is one fused multiply-add chain over p, as in the portable
// tile, so the two give the same bits; rows never mix, so a row's label does not depend on
// the block it sits in (the bound-based drivers recompute single rows through this tile).
#include <immintrin.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/kmeans/tile.hpp"

namespace gk {
namespace kmeans_avx2 {
namespace {

template <typename T>
struct Simd;

template <>
struct Simd<float> {
  using reg = __m256;
  static constexpr int W = 8;
  static reg zero() { return _mm256_setzero_ps(); }
  static reg set1(float v) { return _mm256_set1_ps(v); }
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, reg v) { _mm256_storeu_ps(p, v); }
  static reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static reg fnmadd(reg a, reg b, reg c) { return _mm256_fnmadd_ps(a, b, c); }
  static reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static reg load_partial(const float* p, int64_t n) {  // lanes past n read as 0
    return _mm256_maskload_ps(p, lanes_below(int(n)));
  }
  // out[0..n) += v[0..n) in float64 (n <= 8)
  static void add_to(double* out, reg v, int n) {
    const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
    const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    if (n == W) {
      _mm256_storeu_pd(out, _mm256_add_pd(_mm256_loadu_pd(out), lo));
      _mm256_storeu_pd(out + 4, _mm256_add_pd(_mm256_loadu_pd(out + 4), hi));
      return;
    }
    alignas(32) double t[8];
    _mm256_store_pd(t, lo);
    _mm256_store_pd(t + 4, hi);
    for (int l = 0; l < n; ++l) out[l] += t[l];
  }
  static __m256i lanes_below(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
};

template <>
struct Simd<double> {
  using reg = __m256d;
  static constexpr int W = 4;
  static reg zero() { return _mm256_setzero_pd(); }
  static reg set1(double v) { return _mm256_set1_pd(v); }
  static reg load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, reg v) { _mm256_storeu_pd(p, v); }
  static reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_pd(a, b, c); }
  static reg fnmadd(reg a, reg b, reg c) { return _mm256_fnmadd_pd(a, b, c); }
  static reg mul(reg a, reg b) { return _mm256_mul_pd(a, b); }
  static reg add(reg a, reg b) { return _mm256_add_pd(a, b); }
  static reg load_partial(const double* p, int64_t n) {  // lanes past n read as 0
    const __m256i lanes = _mm256_setr_epi64x(0, 1, 2, 3);
    return _mm256_maskload_pd(p, _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), lanes));
  }
  static void add_to(double* out, reg v, int n) {  // out[0..n) += v[0..n), n <= 4
    if (n == W) {
      _mm256_storeu_pd(out, _mm256_add_pd(_mm256_loadu_pd(out), v));
      return;
    }
    alignas(32) double t[4];
    _mm256_store_pd(t, v);
    for (int l = 0; l < n; ++l) out[l] += t[l];
  }
};

// 6 rows x 2 vectors = 12 accumulators, 2 panel loads and a broadcast: 15 of the 16 registers,
// and 12 independent chains to cover the FMA latency on two pipes.
constexpr int MR = 6;
constexpr int NV = 2;

// acc[r][v] += x_r[p] panel[p, v W ...] for p in [p0, p1), over a half panel (the caller zeroes
// acc, or reloads it to continue the chain: a chain cut into pieces this way is the same
// sequence of fused multiply-adds, so the same bits).
template <typename T>
inline void dot_half(typename Simd<T>::reg (&acc)[MR][NV], const T* const (&xr)[MR], int64_t p0,
                     int64_t p1, const T* panel) {
  using S = Simd<T>;
  constexpr int64_t NR = kmeans_tile::panel_width<T>();
  for (int64_t p = p0; p < p1; ++p) {
    const typename S::reg b0 = S::load(panel + p * NR), b1 = S::load(panel + p * NR + S::W);
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      const typename S::reg a = S::set1(xr[r][p]);
      acc[r][0] = S::fmadd(a, b0, acc[r][0]);
      acc[r][1] = S::fmadd(a, b1, acc[r][1]);
    }
  }
}

template <typename T>
inline void zero(typename Simd<T>::reg (&acc)[MR][NV]) {
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = Simd<T>::zero();
}

// Per row, the running best (and second best) distance and the best index, kept in memory:
// they are touched once per half panel, the accumulators once per p.
template <typename T>
struct RowBest {
  T best = std::numeric_limits<T>::infinity();
  T second = std::numeric_limits<T>::infinity();
  int32_t arg = 0;
};

// Folds NV W distances ||c||^2 - 2 x.c (one rounding, as the portable tile) of centres
// [base, base + NV W) into one row's best, in index order, so ties go to the lower index.
template <typename T, bool SECOND>
inline void fold(RowBest<T>& rb, const typename Simd<T>::reg (&acc)[NV], const T* cn,
                 int64_t base, int64_t k) {
  using S = Simd<T>;
  alignas(32) T dist[NV * S::W];
#pragma GCC unroll 2
  for (int v = 0; v < NV; ++v)
    S::store(dist + v * S::W, S::fnmadd(S::set1(T(2)), acc[v], S::load(cn + v * S::W)));
  const int cols = static_cast<int>(std::min<int64_t>(NV * S::W, k - base));
  for (int c = 0; c < cols; ++c) {
    const T v = dist[c];
    if (v < rb.best) {
      if (SECOND) rb.second = rb.best;
      rb.best = v;
      rb.arg = static_cast<int32_t>(base + c);
    } else if (SECOND && v < rb.second) {
      rb.second = v;
    }
  }
}

// Lloyd's float argmin without a branch per centre: each of the HALF = 16 lanes keeps its own
// running best and its centre index (centres base + lane, in increasing base, so a lane keeps
// the first of equal values), and the lanes are reduced once per row at the end: the smallest
// value, then the smallest index among equal values, which is the scalar fold's answer. A NaN
// distance never compares less, in both.
struct LaneBest {
  __m256 best[NV];
  __m256i arg[NV];
  LaneBest() {
    for (int v = 0; v < NV; ++v) {
      best[v] = _mm256_set1_ps(std::numeric_limits<float>::infinity());
      arg[v] = _mm256_setzero_si256();
    }
  }
  void fold(const __m256 (&acc)[NV], const float* cn, int64_t base) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      const __m256 dist = _mm256_fnmadd_ps(_mm256_set1_ps(2.0f), acc[v], _mm256_loadu_ps(cn + 8 * v));
      const __m256 less = _mm256_cmp_ps(dist, best[v], _CMP_LT_OQ);
      const __m256i idx = _mm256_add_epi32(_mm256_set1_epi32(int32_t(base + 8 * v)), lanes);
      best[v] = _mm256_blendv_ps(best[v], dist, less);
      arg[v] = _mm256_castps_si256(
          _mm256_blendv_ps(_mm256_castsi256_ps(arg[v]), _mm256_castsi256_ps(idx), less));
    }
  }
  void result(int32_t* label, float* mind) const {
    alignas(32) float b[NV * 8];
    alignas(32) int32_t a[NV * 8];
    for (int v = 0; v < NV; ++v) {
      _mm256_store_ps(b + 8 * v, best[v]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(a + 8 * v), arg[v]);
    }
    float bb = b[0];
    int32_t ba = a[0];
    for (int l = 1; l < NV * 8; ++l)
      if (b[l] < bb || (b[l] == bb && a[l] < ba)) bb = b[l], ba = a[l];
    *label = ba;
    *mind = bb;
  }
};

// Rows go GROUPS x MR at a time and d in slices of DSLICE: a half panel's slice (DSLICE x 16
// floats, 16 KiB) stays in L1 while the groups' rows pass, where a whole half panel at large d
// (50 KiB at d = 784) would stream from L2 for every group. The accumulators of each (group,
// half panel) wait in `saved` between slices, so every dot product is still one chain.
constexpr int GROUPS = 8;
constexpr int64_t DSLICE = 256;

void argmin_lanes(int32_t* label, float* mind, const float* X, int64_t rows, int64_t d,
                  const float* packed, const float* cnorm, int64_t k) {
  constexpr int64_t NR = kmeans_tile::panel_width<float>();
  constexpr int64_t HALF = NV * 8;
  const int64_t halves = (k + HALF - 1) / HALF;
  thread_local std::vector<float> saved;
  if (d > DSLICE) saved.resize(size_t(GROUPS * halves * MR * HALF));
  for (int64_t i0 = 0; i0 < rows; i0 += GROUPS * MR) {
    const int64_t block = std::min<int64_t>(GROUPS * MR, rows - i0);
    const int groups = static_cast<int>((block + MR - 1) / MR);
    // Missing rows of the last group repeat the last valid row; their results are dropped.
    const float* xr[GROUPS][MR];
    for (int g = 0; g < groups; ++g)
      for (int r = 0; r < MR; ++r) xr[g][r] = X + (i0 + std::min<int64_t>(g * MR + r, block - 1)) * d;
    LaneBest lb[GROUPS * MR];
    for (int64_t p0 = 0; p0 < d; p0 += DSLICE) {
      const int64_t p1 = std::min(d, p0 + DSLICE);
      // The padding past k has cnorm +inf, so its distance never wins: no column count.
      for (int64_t h = 0; h < halves; ++h) {
        const float* panel = packed + (h * HALF / NR) * NR * d + h * HALF % NR;
        for (int g = 0; g < groups; ++g) {
          __m256 acc[MR][NV];
          float* sv = saved.data() + (g * halves + h) * MR * HALF;
          if (p0 == 0) zero<float>(acc);
          else
            for (int r = 0; r < MR; ++r)
              for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_loadu_ps(sv + (r * NV + v) * 8);
          dot_half<float>(acc, xr[g], p0, p1, panel);
          if (p1 == d) {
#pragma GCC unroll 6
            for (int r = 0; r < MR; ++r) lb[g * MR + r].fold(acc[r], cnorm + h * HALF, h * HALF);
          } else {
            for (int r = 0; r < MR; ++r)
              for (int v = 0; v < NV; ++v) _mm256_storeu_ps(sv + (r * NV + v) * 8, acc[r][v]);
          }
        }
      }
    }
    for (int64_t r = 0; r < block; ++r) lb[r].result(label + i0 + r, mind + i0 + r);
  }
}

template <typename T, bool SECOND>
void argmin_impl(int32_t* label, T* mind, T* mind2, const T* X, int64_t rows, int64_t d,
                 const T* packed, const T* cnorm, int64_t k) {
  using S = Simd<T>;
  constexpr int64_t NR = kmeans_tile::panel_width<T>();
  constexpr int64_t HALF = NV * S::W;
  for (int64_t i = 0; i < rows; i += MR) {
    // Missing rows repeat the last valid one; their results are dropped.
    const int valid = static_cast<int>(std::min<int64_t>(MR, rows - i));
    const T* xr[MR];
    for (int r = 0; r < MR; ++r) xr[r] = X + (i + std::min(r, valid - 1)) * d;
    RowBest<T> rb[MR];
    for (int64_t base = 0; base < k; base += HALF) {
      const T* panel = packed + (base / NR) * NR * d + base % NR;
      typename S::reg acc[MR][NV];
      zero<T>(acc);
      dot_half<T>(acc, xr, 0, d, panel);
      for (int r = 0; r < valid; ++r) fold<T, SECOND>(rb[r], acc[r], cnorm + base, base, k);
    }
    for (int r = 0; r < valid; ++r) {
      label[i + r] = rb[r].arg;
      mind[i + r] = rb[r].best;
      if (SECOND) mind2[i + r] = rb[r].second;
    }
  }
}

// 8 sums of 8 (4) lanes in registers, beside the loaded row vectors: within the 16 YMM registers.
#include "kernels/kmeans/add_rows.inl"

}  // namespace

template <typename T>
void add_rows(double* out, const T* X, const T* w, const int32_t* idx, int64_t count,
              int64_t d) {
  add_rows_impl<T, 8>(out, X, w, idx, count, d);
}

template <typename T>
void argmin_rows(int32_t* label, T* mind, const T* X, int64_t rows, int64_t d, const T* packed,
                 const T* cnorm, int64_t k) {
  if constexpr (std::is_same_v<T, float>) argmin_lanes(label, mind, X, rows, d, packed, cnorm, k);
  else argmin_impl<T, false>(label, mind, nullptr, X, rows, d, packed, cnorm, k);
}

template <typename T>
void argmin2_rows(int32_t* label, T* mind, T* mind2, const T* X, int64_t rows, int64_t d,
                  const T* packed, const T* cnorm, int64_t k) {
  argmin_impl<T, true>(label, mind, mind2, X, rows, d, packed, cnorm, k);
}

template void add_rows<float>(double*, const float*, const float*, const int32_t*, int64_t,
                              int64_t);
template void add_rows<double>(double*, const double*, const double*, const int32_t*, int64_t,
                               int64_t);
template void argmin_rows<float>(int32_t*, float*, const float*, int64_t, int64_t, const float*,
                                 const float*, int64_t);
template void argmin_rows<double>(int32_t*, double*, const double*, int64_t, int64_t,
                                  const double*, const double*, int64_t);
template void argmin2_rows<float>(int32_t*, float*, float*, const float*, int64_t, int64_t,
                                  const float*, const float*, int64_t);
template void argmin2_rows<double>(int32_t*, double*, double*, const double*, int64_t, int64_t,
                                   const double*, const double*, int64_t);

}  // namespace kmeans_avx2
}  // namespace gk
