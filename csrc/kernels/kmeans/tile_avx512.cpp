// AVX-512 distance tiles for k-means: an MR x (NV vectors) register block of dot products
// between rows of X and a packed panel of centres, with the argmin fused so that no distance
// leaves the registers; and for few centres a tile with the lanes along d instead.
// Compiled with -march=x86-64-v4; entered only after a CPU check.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>
#include <cstdint>
#include <limits>
#include <utility>

#include "kernels/kmeans/tile.hpp"

// gcc 12 warns that the _mm512_undefined_* inside its own reduction intrinsics may be used
// uninitialised (a known false positive of those headers).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

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
  static reg load_partial(const float* p, int64_t n) {  // lanes past n read as 0
    return _mm512_maskz_loadu_ps(__mmask16((1u << n) - 1), p);
  }
  static reg load_masked(__mmask16 m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
  // out[0..n) += v[0..n) in float64 (n <= 16)
  static void add_to(double* out, reg v, int n) {
    const __mmask8 lo = static_cast<__mmask8>(n >= 8 ? 0xff : (1u << n) - 1);
    const __mmask8 hi = static_cast<__mmask8>(n >= 16 ? 0xff : n > 8 ? (1u << (n - 8)) - 1 : 0);
    const __m512d a = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    const __m512d b = _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1));
    _mm512_mask_storeu_pd(out, lo, _mm512_add_pd(_mm512_maskz_loadu_pd(lo, out), a));
    _mm512_mask_storeu_pd(out + 8, hi, _mm512_add_pd(_mm512_maskz_loadu_pd(hi, out + 8), b));
  }
  static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg min(reg a, reg b) { return _mm512_min_ps(a, b); }
  static reg max(reg a, reg b) { return _mm512_max_ps(a, b); }
  static float hsum(reg a) { return _mm512_reduce_add_ps(a); }
  static float first(reg a) { return _mm512_cvtss_f32(a); }
  // pots (16 float64 lanes in two registers) += w * dist
  static void accumulate(__m512d& lo, __m512d& hi, reg dist, double w) {
    const __m512d wv = _mm512_set1_pd(w);
    lo = _mm512_fmadd_pd(wv, _mm512_cvtps_pd(_mm512_castps512_ps256(dist)), lo);
    hi = _mm512_fmadd_pd(wv, _mm512_cvtps_pd(_mm512_extractf32x8_ps(dist, 1)), hi);
  }
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
  static reg load_partial(const double* p, int64_t n) {
    return _mm512_maskz_loadu_pd(__mmask8((1u << n) - 1), p);
  }
  static reg load_masked(__mmask16 m, const double* p) {
    return _mm512_maskz_loadu_pd(static_cast<__mmask8>(m), p);
  }
  static void store(double* p, reg v) { _mm512_storeu_pd(p, v); }
  static void add_to(double* out, reg v, int n) {
    const __mmask8 m = static_cast<__mmask8>(n >= 8 ? 0xff : (1u << n) - 1);
    _mm512_mask_storeu_pd(out, m, _mm512_add_pd(_mm512_maskz_loadu_pd(m, out), v));
  }
  static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_pd(a, b, c); }
  static reg mul(reg a, reg b) { return _mm512_mul_pd(a, b); }
  static reg add(reg a, reg b) { return _mm512_add_pd(a, b); }
  static reg min(reg a, reg b) { return _mm512_min_pd(a, b); }
  static reg max(reg a, reg b) { return _mm512_max_pd(a, b); }
  static double hsum(reg a) { return _mm512_reduce_add_pd(a); }
  static double first(reg a) { return _mm512_cvtsd_f64(a); }
  static void accumulate(__m512d& lo, __m512d& hi, reg dist, double w) {
    lo = _mm512_fmadd_pd(_mm512_set1_pd(w), dist, lo);
  }
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
    const __m256i v = _mm256_mask_blend_epi32(m, _mm256_set1_epi32(INT_MAX), a);
    return _mm512_reduce_min_epi32(_mm512_inserti64x4(_mm512_set1_epi32(INT_MAX), v, 0));
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

// ---- small k: lanes along d ---------------------------------------------------------------
// With few centres a centre panel (2W lanes, or W for the last one) leaves FMAs idle. Here
// the lanes run along d instead: R rows x K centres accumulators, the rows and the centres
// (chunk-interleaved) streamed together, ||x||^2 on the side, and one horizontal reduction per
// row. The sums run in a different order than in the panel tile, so a near-tie may round to
// the other centre.

// Lane L of the result = sum of the lanes of a[L] (a[j] = 0 for j >= n): a transpose-and-add
// in log2(W) steps of two shuffles and one add per pair of inputs.
inline __m512 lane_sums(const __m512* a, int n) {
  __m512 b[16];
  // The steps below leave the sum of input 4s + t in lane (W/4) t + s; feed them permuted.
  for (int i = 0; i < 16; ++i) {
    const int src = 4 * (i % 4) + i / 4;
    b[i] = src < n ? a[src] : _mm512_setzero_ps();
  }
  __m512 c[8], e[4], f[2];
  for (int m = 0; m < 8; ++m)  // 128-bit quarters: q0 + q2, q1 + q3 of each input
    c[m] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * m], b[2 * m + 1], 0x44),
                         _mm512_shuffle_f32x4(b[2 * m], b[2 * m + 1], 0xEE));
  for (int m = 0; m < 4; ++m)  // one quarter of 4 partial sums per input
    e[m] = _mm512_add_ps(_mm512_shuffle_f32x4(c[2 * m], c[2 * m + 1], 0x88),
                         _mm512_shuffle_f32x4(c[2 * m], c[2 * m + 1], 0xDD));
  for (int m = 0; m < 2; ++m)  // within quarters: 2 partials per input
    f[m] = _mm512_add_ps(_mm512_unpacklo_ps(e[2 * m], e[2 * m + 1]),
                         _mm512_unpackhi_ps(e[2 * m], e[2 * m + 1]));
  const __m512d lo = _mm512_castps_pd(f[0]), hi = _mm512_castps_pd(f[1]);
  return _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(lo, hi)),
                       _mm512_castpd_ps(_mm512_unpackhi_pd(lo, hi)));
}

inline __m512d lane_sums(const __m512d* a, int n) {
  __m512d b[8];
  for (int i = 0; i < 8; ++i) {
    const int src = 2 * (i % 4) + i / 4;
    b[i] = src < n ? a[src] : _mm512_setzero_pd();
  }
  __m512d c[4], e[2];
  for (int m = 0; m < 4; ++m)
    c[m] = _mm512_add_pd(_mm512_shuffle_f64x2(b[2 * m], b[2 * m + 1], 0x44),
                         _mm512_shuffle_f64x2(b[2 * m], b[2 * m + 1], 0xEE));
  for (int m = 0; m < 2; ++m)
    e[m] = _mm512_add_pd(_mm512_shuffle_f64x2(c[2 * m], c[2 * m + 1], 0x88),
                         _mm512_shuffle_f64x2(c[2 * m], c[2 * m + 1], 0xDD));
  return _mm512_add_pd(_mm512_unpacklo_pd(e[0], e[1]), _mm512_unpackhi_pd(e[0], e[1]));
}

// Rows per register block for K centres: R K + 2 R + 1 registers of 32.
constexpr int small_k_rows_per_block(int K) { return K <= 4 ? 4 : K <= 7 ? 3 : 2; }

// The centres come chunk-interleaved (kmeans_tile.hpp), so each step reads K contiguous
// vectors. Rows from X are prefetched a fixed distance ahead: the loop is FMA-bound on data in
// cache, so the memory stream has to be started early to overlap with it.
constexpr int64_t kPrefetchBytes = 96 * 1024;

template <typename T, int K>
void argmin_small_k(int32_t* label, T* mind, T* xx, const T* X, int64_t rows, int64_t d,
                    const T* packed, const T* cnorm) {
  using S = Simd<T>;
  using reg = typename S::reg;
  constexpr int R = small_k_rows_per_block(K);
  constexpr int W = S::W;
  const reg two = S::set1(T(2)), cn = S::load(cnorm);  // cnorm is +inf past k
  const int64_t dfull = d / W * W;
  const auto tail = static_cast<__mmask16>((1u << (d - dfull)) - 1);
  const int64_t ahead = (kPrefetchBytes / int64_t(sizeof(T)) / d / R + 1) * R * d;
  for (int64_t i = 0; i < rows; i += R) {
    const T* xr[R];
    const int valid = static_cast<int>(std::min<int64_t>(R, rows - i));
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) xr[r] = X + (i + (r < valid ? r : valid - 1)) * d;
    reg acc[R][K], sq[R];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      sq[r] = S::zero();
#pragma GCC unroll 16
      for (int j = 0; j < K; ++j) acc[r][j] = S::zero();
    }
    auto step = [&](int64_t p, auto load) {
      reg x[R];
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        x[r] = load(xr[r] + p);
        sq[r] = S::fmadd(x[r], x[r], sq[r]);
        // Each line is touched twice on its way in, 2 and 1 prefetch distances ahead: measured
        // 12% faster from memory than a single prefetch (which the core may drop when its
        // miss queues are full).
        _mm_prefetch(reinterpret_cast<const char*>(xr[r] + 2 * ahead + p), _MM_HINT_T1);
        _mm_prefetch(reinterpret_cast<const char*>(xr[r] + ahead + p), _MM_HINT_T1);
      }
      const T* c = packed + p * K;  // chunk p / W: K vectors, one per centre
#pragma GCC unroll 16
      for (int j = 0; j < K; ++j) {
        reg cj = S::load(c + j * W);
        asm("" : "+v"(cj));  // one load per centre chunk, not one per FMA operand
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) acc[r][j] = S::fmadd(x[r], cj, acc[r][j]);
      }
    };
    for (int64_t p = 0; p < dfull; p += W) step(p, [](const T* q) { return S::load(q); });
    if (dfull < d) step(dfull, [tail](const T* q) { return S::load_masked(tail, q); });
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {  // constant bounds keep acc in registers
      if (r >= valid) break;
      // ||c||^2 - 2 x.c with one rounding, as in argmin_panel; the first lane holding the
      // minimum is the first centre.
      const reg dist = S::fnmadd(two, lane_sums(acc[r], K), cn);
      const T mn = S::hmin(dist);
      const unsigned at = S::eq(dist, S::set1(mn));
      label[i + r] = at ? static_cast<int32_t>(__builtin_ctz(at)) : 0;  // 0 only for NaN
      mind[i + r] = mn;
      xx[i + r] = S::hsum(sq[r]);
    }
  }
}

template <typename T, int... K>
constexpr auto small_k_table(std::integer_sequence<int, K...>) {
  using Fn = void (*)(int32_t*, T*, T*, const T*, int64_t, int64_t, const T*, const T*);
  return std::array<Fn, sizeof...(K)>{&argmin_small_k<T, K + 1>...};
}

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
  using S = Simd<T>;
  constexpr int64_t NR = kmeans_tile::panel_width<T>();
  const int64_t panels = (k + NR - 1) / NR;
  const bool last_half = (k - (panels - 1) * NR) <= S::W;  // last panel fits one vector
  const int64_t block_bytes = MR * d * static_cast<int64_t>(sizeof(T));
  for (int64_t i = 0; i < rows; i += MR) {
    const T* xr[MR];
    const int valid = set_rows(xr, X, i, rows, d);
    // Short rows: fetch the next block while this one runs through all the panels (the
    // hardware prefetcher alone leaves the loads waiting; for long rows it keeps up).
    if (block_bytes <= 8192 && i + 2 * MR <= rows) {
      const char* next = reinterpret_cast<const char*>(X + (i + MR) * d);
      for (int64_t b = 0; b < block_bytes; b += 64) _mm_prefetch(next + b, _MM_HINT_T0);
    }
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
bool argmin_rows_small_k(int32_t* label, T* mind, T* xx, const T* X, int64_t rows, int64_t d,
                         const T* packed, const T* cnorm, int64_t k) {
  static_assert(Simd<T>::W == kmeans_tile::small_k_width<T>(), "packing and lanes must agree");
  constexpr int kmax = static_cast<int>(kmeans_tile::small_k_max<T>());
  static constexpr auto table = small_k_table<T>(std::make_integer_sequence<int, kmax>{});
  if (k < 1 || k > kmax) return false;
  table[k - 1](label, mind, xx, X, rows, d, packed, cnorm);
  return true;
}

// ---- k-means++ tile: candidates x coordinate parity in the lanes ---------------------------
namespace {

// Broadcasts of the coordinate pair (x[p], x[p + 1]) to every pair of lanes, the sum of the
// two lanes of each pair, and the even lanes copied to the odd ones.
template <typename T>
struct Pairs;

template <>
struct Pairs<float> {
  static __m512 bcast(const float* p) {
    double v;
    std::memcpy(&v, p, sizeof v);
    return _mm512_castpd_ps(_mm512_set1_pd(v));
  }
  static __m512 pair_sum(__m512 a) { return _mm512_add_ps(a, _mm512_permute_ps(a, 0xB1)); }
  static __m512 dup_even(__m512 a) { return _mm512_moveldup_ps(a); }
};

template <>
struct Pairs<double> {
  static __m512d bcast(const double* p) { return _mm512_broadcast_f64x2(_mm_loadu_pd(p)); }
  static __m512d pair_sum(__m512d a) { return _mm512_add_pd(a, _mm512_permute_pd(a, 0x55)); }
  static __m512d dup_even(__m512d a) { return _mm512_movedup_pd(a); }
};

}  // namespace

// ||x||^2 as the k-means++ sweep always did it: W lanes over p, then the lane sum.
template <typename T>
void pp_norms(T* xx, const T* X, int64_t rows, int64_t d) {
  using S = Simd<T>;
  for (int64_t r = 0; r < rows; ++r) {
    const T* x = X + r * d;
    typename S::reg sq = S::zero();
    int64_t p = 0;
    for (; p + S::W <= d; p += S::W) {
      const typename S::reg v = S::load(x + p);
      sq = S::fmadd(v, v, sq);
    }
    if (p < d) {
      const typename S::reg v = S::load_partial(x + p, d - p);
      sq = S::fmadd(v, v, sq);
    }
    xx[r] = S::hsum(sq);
  }
}

template <typename T>
void pp_tile(double* pots, T* closest, const T* X, const T* xx, const T* w, int64_t rows,
             int64_t d, const T* packed, const T* cn, int64_t m, bool update) {
  using S = Simd<T>;
  using P = Pairs<T>;
  constexpr int G = kmeans_tile::pp_group<T>();  // candidates per register
  const int64_t full = d / 2, npairs = (d + 1) / 2, groups = (m + G - 1) / G;
  const typename S::reg two = S::set1(T(2)), zero = S::zero();

  for (int64_t g = 0; g < groups; ++g) {
    const T* panel = packed + g * npairs * S::W;
    alignas(64) T cnd[S::W] = {};
    const int cols = static_cast<int>(std::min<int64_t>(G, m - g * G));
    for (int j = 0; j < cols; ++j) cnd[2 * j] = cnd[2 * j + 1] = cn[g * G + j];
    const typename S::reg cnv = S::load(cnd);
    const bool upd = update && g == 0;
    __m512d pot_lo = _mm512_setzero_pd(), pot_hi = _mm512_setzero_pd();
    for (int64_t i = 0; i < rows; i += MR) {
      const T* xr[MR];
      const int valid = set_rows(xr, X, i, rows, d);
      // Lane 2j sums x[p] c_j[p] over even p, lane 2j + 1 over odd p: the two chains of the
      // one-vector Lloyd panel, so each distance has the same bits as there.
      typename S::reg acc[MR];
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) acc[r] = S::zero();
      for (int64_t q = 0; q < full; ++q) {
        const typename S::reg b = S::load(panel + q * S::W);
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) acc[r] = S::fmadd(P::bcast(xr[r] + 2 * q), b, acc[r]);
      }
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) acc[r] = P::pair_sum(acc[r]);
      if (d & 1) {  // the last odd coordinate goes onto the sum, as in the Lloyd panel
        const typename S::reg b = P::dup_even(S::load(panel + full * S::W));
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) acc[r] = S::fmadd(S::set1(xr[r][d - 1]), b, acc[r]);
      }
      for (int r = 0; r < valid; ++r) {
        const int64_t row = i + r;
        typename S::reg dist = S::fnmadd(two, acc[r], S::add(S::set1(xx[row]), cnv));
        dist = S::max(dist, zero);
        typename S::reg near = S::set1(closest[row]);
        if (upd) {  // candidate 0 joins the centres before the others are measured
          near = S::set1(S::first(S::min(dist, near)));
          closest[row] = S::first(near);
        }
        S::accumulate(pot_lo, pot_hi, S::min(dist, near), w ? static_cast<double>(w[row]) : 1.0);
      }
    }
    alignas(64) double tmp[16];
    _mm512_store_pd(tmp, pot_lo);
    _mm512_store_pd(tmp + 8, pot_hi);
    for (int j = 0; j < cols; ++j) pots[g * G + j] += tmp[2 * j];
  }
}

template void pp_norms<float>(float*, const float*, int64_t, int64_t);
template void pp_norms<double>(double*, const double*, int64_t, int64_t);
template void pp_tile<float>(double*, float*, const float*, const float*, const float*, int64_t,
                             int64_t, const float*, const float*, int64_t, bool);
template void pp_tile<double>(double*, double*, const double*, const double*, const double*,
                              int64_t, int64_t, const double*, const double*, int64_t, bool);
template void argmin_rows<float>(int32_t*, float*, const float*, int64_t, int64_t, const float*,
                                 const float*, int64_t);
template void argmin_rows<double>(int32_t*, double*, const double*, int64_t, int64_t,
                                  const double*, const double*, int64_t);
template bool argmin_rows_small_k<float>(int32_t*, float*, float*, const float*, int64_t,
                                         int64_t, const float*, const float*, int64_t);
template bool argmin_rows_small_k<double>(int32_t*, double*, double*, const double*, int64_t,
                                          int64_t, const double*, const double*, int64_t);
template void add_rows<float>(double*, const float*, const float*, const int32_t*, int64_t,
                              int64_t);
template void add_rows<double>(double*, const double*, const double*, const int32_t*, int64_t,
                               int64_t);

}  // namespace kmeans_avx512
}  // namespace gk
