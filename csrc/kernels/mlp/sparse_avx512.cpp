// AVX-512 kernels of the fused epoch's first layer (see mlp_first.hpp). Compiled with
// -march=x86-64-v4; nothing here is inline code shared with other units (no std::vector, no
// apply_act): sigmoid/tanh outputs go through the baseline unit's detail::store_tile.
#include <immintrin.h>

// GCC 12's _mm512_max_ps/pd start from an intentionally undefined register and trip this warning.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "kernels/gemm_kernels.hpp"
#include "kernels/mlp/sparse_avx512.hpp"
#include "kernels/sgd.hpp"
#include "kernels/simd/avx2.hpp"
#include "kernels/simd/avx512.hpp"

namespace gk {
namespace avx512 {
namespace {

// One vector type per dtype, with the few operations the kernels need.
template <typename T> struct V;

template <> struct V<float> {
  using R = __m512;
  using M = __mmask16;
  static constexpr int W = 16;
  static M mask(int64_t n) { return n >= W ? M(0xFFFF) : M((1u << n) - 1); }
  static R zero() { return _mm512_setzero_ps(); }
  static R load(const float* p) { return _mm512_loadu_ps(p); }
  static R load(const float* p, M m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(float* p, R x) { _mm512_storeu_ps(p, x); }
  static void store(float* p, R x, M m) { _mm512_mask_storeu_ps(p, m, x); }
  static R bcast(float x) { return _mm512_set1_ps(x); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  static R fnma(R a, R b, R c) { return _mm512_fnmadd_ps(a, b, c); }
  static R mul(R a, R b) { return _mm512_mul_ps(a, b); }
  static R add(R a, R b) { return _mm512_add_ps(a, b); }
  static M nonzero(R x) { return _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_NEQ_UQ); }
  static R relu(R x) { return _mm512_max_ps(_mm512_setzero_ps(), x); }  // NaN stays NaN
  static R leaky(R x, float s) {
    const M neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LE_OQ);
    return _mm512_mask_mul_ps(x, neg, x, _mm512_set1_ps(s));
  }
};

template <> struct V<double> {
  using R = __m512d;
  using M = __mmask8;
  static constexpr int W = 8;
  static M mask(int64_t n) { return n >= W ? M(0xFF) : M((1u << n) - 1); }
  static R zero() { return _mm512_setzero_pd(); }
  static R load(const double* p) { return _mm512_loadu_pd(p); }
  static R load(const double* p, M m) { return _mm512_maskz_loadu_pd(m, p); }
  static void store(double* p, R x) { _mm512_storeu_pd(p, x); }
  static void store(double* p, R x, M m) { _mm512_mask_storeu_pd(p, m, x); }
  static R bcast(double x) { return _mm512_set1_pd(x); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_pd(a, b, c); }
  static R fnma(R a, R b, R c) { return _mm512_fnmadd_pd(a, b, c); }
  static R mul(R a, R b) { return _mm512_mul_pd(a, b); }
  static R add(R a, R b) { return _mm512_add_pd(a, b); }
  static M nonzero(R x) { return _mm512_cmp_pd_mask(x, _mm512_setzero_pd(), _CMP_NEQ_UQ); }
  static R relu(R x) { return _mm512_max_pd(_mm512_setzero_pd(), x); }  // NaN stays NaN
  static R leaky(R x, double s) {
    const M neg = _mm512_cmp_pd_mask(x, _mm512_setzero_pd(), _CMP_LE_OQ);
    return _mm512_mask_mul_pd(x, neg, x, _mm512_set1_pd(s));
  }
};

// Columns per register tile: NV vectors (16 ZMM accumulators for a full tile). A tile that
// would run past N is done one vector at a time, the last one masked.
constexpr int NV = 16;
// Vectors per tile of the two-row forward product (2 x 8 accumulators).
constexpr int PV = 8;
// k values of wt per cache block in the forward product: 32 rows of a 256-wide float wt are
// 32 KiB, which stay in L1 while every row of the batch passes over them (measured at batch
// 32-512 against 16 and 64: 15-20% faster than either).
constexpr int64_t KB = 32;

// Stores one row's NVEC accumulated vectors at columns [j, j + NVEC * W) of zrow: as partial
// sums, or on the last k block with the bias added and the activation applied.
template <typename T, int NVEC, bool TAIL>
inline void store_row(T* zrow, const typename V<T>::R* acc, int64_t j, typename V<T>::M tail,
                      bool last, const T* bias, Act act, T slope) {
  using X = V<T>;
  constexpr int W = X::W;
  const auto lmask = [&](int v) { return TAIL && v == NVEC - 1 ? tail : X::mask(W); };
  if (last && (act == Act::sigmoid || act == Act::tanh)) {
    alignas(64) T tile[NVEC * W];
#pragma GCC unroll 16
    for (int v = 0; v < NVEC; ++v) X::store(tile + v * W, acc[v]);
    const int cols = TAIL ? (NVEC - 1) * W + __builtin_popcount(unsigned(tail)) : NVEC * W;
    detail::store_tile<T>(zrow + j, 0, tile, 0, 1, cols, false, bias ? bias + j : nullptr, act,
                          slope);
    return;
  }
#pragma GCC unroll 16
  for (int v = 0; v < NVEC; ++v) {
    typename X::R y = acc[v];
    if (last) {
      if (bias) y = X::add(y, X::load(bias + j + v * W, lmask(v)));
      if (act == Act::relu) y = X::relu(y);
      else if (act == Act::leaky_relu) y = X::leaky(y, slope);
    }
    X::store(zrow + j + v * W, y, lmask(v));
  }
}

// One row of the forward product over the n listed (k, x[k]) pairs for columns
// [j, j + NVEC * W): continues the partial sums in zrow (unless first), and on the last block
// adds the bias and activates. A list (not a bit loop per 16 values) keeps the branch
// predictable.
template <typename T, int NVEC, bool TAIL>
inline void forward_tile(T* zrow, const int32_t* ks, const T* xs, int n, const T* wt, int64_t N,
                         int64_t j, typename V<T>::M tail, bool first, bool last, const T* bias,
                         Act act, T slope) {
  using X = V<T>;
  using R = typename X::R;
  constexpr int W = X::W;
  const auto lmask = [&](int v) { return TAIL && v == NVEC - 1 ? tail : X::mask(W); };
  R acc[NVEC];
#pragma GCC unroll 16
  for (int v = 0; v < NVEC; ++v) acc[v] = first ? X::zero() : X::load(zrow + j + v * W, lmask(v));
  for (int q = 0; q < n; ++q) {
    const R xv = X::bcast(xs[q]);
    const T* w = wt + int64_t(ks[q]) * N + j;
#pragma GCC unroll 16
    for (int v = 0; v < NVEC; ++v)
      acc[v] = X::fma(xv, TAIL && v == NVEC - 1 ? X::load(w + v * W, tail) : X::load(w + v * W),
                      acc[v]);
  }
  store_row<T, NVEC, TAIL>(zrow, acc, j, tail, last, bias, act, slope);
}

// acc[r][v] += sum over the n listed entries q, in order, of xr[q] * src[idx[q], j + v * W ..]
// for the two rows r (x0, x1) and NVEC vectors v; src has rows of ld values. Each loaded vector
// of src serves both rows, and a zero value adds fma(0, s, acc) == acc (s finite): each row
// keeps the bits of a chain over its own non-zero entries.
template <typename T, int NVEC, bool TAIL>
inline void accumulate_pair(typename V<T>::R (&acc)[2][NVEC], const int32_t* idx, const T* x0,
                            const T* x1, int n, const T* src, int64_t ld, int64_t j,
                            typename V<T>::M tail) {
  using X = V<T>;
  using R = typename X::R;
  constexpr int W = X::W;
  for (int q = 0; q < n; ++q) {
    const R a = X::bcast(x0[q]), b = X::bcast(x1[q]);
    const T* s = src + int64_t(idx[q]) * ld + j;
#pragma GCC unroll 16
    for (int v = 0; v < NVEC; ++v) {
      R sv = TAIL && v == NVEC - 1 ? X::load(s + v * W, tail) : X::load(s + v * W);
      // Keep the vector in a register: GCC would otherwise fold the load into both FMAs and
      // read it twice, which is the single-row kernel's load count again.
      asm("" : "+v"(sv));
      acc[0][v] = X::fma(a, sv, acc[0][v]);
      acc[1][v] = X::fma(b, sv, acc[1][v]);
    }
  }
}

// Two rows of the forward product at once (za, zb) over the union list of their non-zero k
// (ks, with both rows' values xa and xb, one of which may be 0).
template <typename T, int NVEC, bool TAIL>
inline void forward_pair_tile(T* za, T* zb, const int32_t* ks, const T* xa, const T* xb, int n,
                              const T* wt, int64_t N, int64_t j, typename V<T>::M tail,
                              bool first, bool last, const T* bias, Act act, T slope) {
  using X = V<T>;
  constexpr int W = X::W;
  const auto lmask = [&](int v) { return TAIL && v == NVEC - 1 ? tail : X::mask(W); };
  typename X::R acc[2][NVEC];
#pragma GCC unroll 16
  for (int v = 0; v < NVEC; ++v) {
    acc[0][v] = first ? X::zero() : X::load(za + j + v * W, lmask(v));
    acc[1][v] = first ? X::zero() : X::load(zb + j + v * W, lmask(v));
  }
  accumulate_pair<T, NVEC, TAIL>(acc, ks, xa, xb, n, wt, N, j, tail);
  store_row<T, NVEC, TAIL>(za, acc[0], j, tail, last, bias, act, slope);
  store_row<T, NVEC, TAIL>(zb, acc[1], j, tail, last, bias, act, slope);
}

// The (k, x[k]) pairs of x[kb:ke] in increasing k: the non-zero ones, or all when !skip_zeros.
// ks and xs need room for ke - kb + 16 entries: whole vectors are stored (a compressing store
// to memory is microcoded and slow on AMD Zen 4/5; compress in a register, then store).
inline int list_pairs(int32_t* ks, float* xs, const float* x, int64_t kb, int64_t ke,
                      bool skip_zeros) {
  int n = 0;
  const __m512i step = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  for (int64_t k = kb; k < ke; k += 16) {
    const __mmask16 valid = V<float>::mask(ke - k);
    const __m512 v = _mm512_maskz_loadu_ps(valid, x + k);
    const __mmask16 keep = skip_zeros ? __mmask16(V<float>::nonzero(v) & valid) : valid;
    const __m512i idx = _mm512_add_epi32(_mm512_set1_epi32(int32_t(k)), step);
    _mm512_storeu_si512(ks + n, _mm512_maskz_compress_epi32(keep, idx));
    _mm512_storeu_ps(xs + n, _mm512_maskz_compress_ps(keep, v));
    n += __builtin_popcount(unsigned(keep));
  }
  return n;
}

inline int list_pairs(int32_t* ks, double* xs, const double* x, int64_t kb, int64_t ke,
                      bool skip_zeros) {
  int n = 0;
  const __m256i step = _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0);
  for (int64_t k = kb; k < ke; k += 8) {
    const __mmask8 valid = V<double>::mask(ke - k);
    const __m512d v = _mm512_maskz_loadu_pd(valid, x + k);
    const __mmask8 keep = skip_zeros ? __mmask8(V<double>::nonzero(v) & valid) : valid;
    const __m256i idx = _mm256_add_epi32(_mm256_set1_epi32(int32_t(k)), step);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(ks + n), _mm256_maskz_compress_epi32(keep, idx));
    _mm512_storeu_pd(xs + n, _mm512_maskz_compress_pd(keep, v));
    n += __builtin_popcount(unsigned(keep));
  }
  return n;
}

// The union list of two rows over [kb, ke): the k where a or b is non-zero, in increasing k,
// with both values (all k when !skip_zeros). Room as for list_pairs.
inline int list_union(int32_t* ks, float* xa, float* xb, const float* a, const float* b,
                      int64_t kb, int64_t ke, bool skip_zeros) {
  int n = 0;
  const __m512i step = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  for (int64_t k = kb; k < ke; k += 16) {
    const __mmask16 valid = V<float>::mask(ke - k);
    const __m512 va = _mm512_maskz_loadu_ps(valid, a + k);
    const __m512 vb = _mm512_maskz_loadu_ps(valid, b + k);
    const __mmask16 keep =
        skip_zeros ? __mmask16((V<float>::nonzero(va) | V<float>::nonzero(vb)) & valid) : valid;
    const __m512i idx = _mm512_add_epi32(_mm512_set1_epi32(int32_t(k)), step);
    _mm512_storeu_si512(ks + n, _mm512_maskz_compress_epi32(keep, idx));
    _mm512_storeu_ps(xa + n, _mm512_maskz_compress_ps(keep, va));
    _mm512_storeu_ps(xb + n, _mm512_maskz_compress_ps(keep, vb));
    n += __builtin_popcount(unsigned(keep));
  }
  return n;
}

inline int list_union(int32_t* ks, double* xa, double* xb, const double* a, const double* b,
                      int64_t kb, int64_t ke, bool skip_zeros) {
  int n = 0;
  const __m256i step = _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0);
  for (int64_t k = kb; k < ke; k += 8) {
    const __mmask8 valid = V<double>::mask(ke - k);
    const __m512d va = _mm512_maskz_loadu_pd(valid, a + k);
    const __m512d vb = _mm512_maskz_loadu_pd(valid, b + k);
    const __mmask8 keep =
        skip_zeros ? __mmask8((V<double>::nonzero(va) | V<double>::nonzero(vb)) & valid) : valid;
    const __m256i idx = _mm256_add_epi32(_mm256_set1_epi32(int32_t(k)), step);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(ks + n), _mm256_maskz_compress_epi32(keep, idx));
    _mm512_storeu_pd(xa + n, _mm512_maskz_compress_pd(keep, va));
    _mm512_storeu_pd(xb + n, _mm512_maskz_compress_pd(keep, vb));
    n += __builtin_popcount(unsigned(keep));
  }
  return n;
}

// A sort key that brings rows with similar zero patterns together, so that pairs of
// consecutive rows share more of their non-zero k: the position of the first non-zero value
// (in 32 buckets of K), then the number of non-zeros (in 2048 buckets of K).
template <typename T>
inline uint16_t pattern_key(const T* x, int64_t K) {
  using X = V<T>;
  constexpr int W = X::W;
  int64_t count = 0, first = K;
  for (int64_t k = 0; k < K; k += W) {
    const auto valid = X::mask(K - k);
    const unsigned nz = unsigned(X::nonzero(X::load(x + k, valid)) & valid);
    count += __builtin_popcount(nz);
    if (first == K && nz) first = k + __builtin_ctz(nz);
  }
  return uint16_t((first * 32 / (K + 1)) << 11 | (count * 2047 / K));
}

// order[0, n) = 0 .. n - 1 sorted stably by key (two 8-bit passes of a radix sort).
inline void sort_by_key(int32_t* order, int32_t* tmp, const uint16_t* key, int64_t n) {
  for (int64_t i = 0; i < n; ++i) order[i] = int32_t(i);
  int32_t* src = order;  // two passes: the result ends in order again
  int32_t* dst = tmp;
  for (int shift = 0; shift < 16; shift += 8) {
    int64_t start[257] = {};
    for (int64_t i = 0; i < n; ++i) ++start[((key[src[i]] >> shift) & 255) + 1];
    for (int d = 0; d < 256; ++d) start[d + 1] += start[d];
    for (int64_t i = 0; i < n; ++i) dst[start[(key[src[i]] >> shift) & 255]++] = src[i];
    int32_t* t = src;
    src = dst;
    dst = t;
  }
}

// Dense mode: MR rows x NVEC vectors of z over all k, each loaded vector of wt serving MR rows
// (a GEMM micro-kernel reading wt in place). Every element is still one FMA chain in
// increasing k from zero, so the bits equal the sparse mode's.
template <typename T, int MR, int NVEC, bool TAIL>
inline void forward_dense_tile(T* z, const T* const* x, int64_t K, const T* wt, int64_t N,
                               int64_t j, typename V<T>::M tail, const T* bias, Act act,
                               T slope) {
  using X = V<T>;
  using R = typename X::R;
  constexpr int W = X::W;
  R acc[MR][NVEC];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NVEC; ++v) acc[r][v] = X::zero();
  const T* w = wt + j;
  for (int64_t k = 0; k < K; ++k, w += N) {
    R wv[NVEC];
#pragma GCC unroll 4
    for (int v = 0; v < NVEC; ++v)
      wv[v] = TAIL && v == NVEC - 1 ? X::load(w + v * W, tail) : X::load(w + v * W);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const R xv = X::bcast(x[r][k]);
#pragma GCC unroll 4
      for (int v = 0; v < NVEC; ++v) acc[r][v] = X::fma(xv, wv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
    store_row<T, NVEC, TAIL>(z + r * N, acc[r], j, tail, true, bias, act, slope);
}

// Rows [i0, i1) of the dense forward product, MR rows at a time.
template <typename T, int MR>
inline int64_t forward_dense_rows(T* z, const T* X, const int64_t* rows, int64_t i0, int64_t i1,
                                  int64_t K, const T* wt, int64_t N, const T* bias, Act act,
                                  T slope) {
  constexpr int W = V<T>::W, NB = 2;
  const int64_t full = N / (NB * W) * (NB * W);
  int64_t i = i0;
  for (; i + MR <= i1; i += MR) {
    const T* x[MR];
    for (int r = 0; r < MR; ++r) x[r] = X + rows[i + r] * K;
    T* zi = z + i * N;
    for (int64_t j = 0; j < full; j += NB * W)
      forward_dense_tile<T, MR, NB, false>(zi, x, K, wt, N, j, V<T>::mask(W), bias, act, slope);
    for (int64_t j = full; j < N; j += W) {
      if (N - j >= W)
        forward_dense_tile<T, MR, 1, false>(zi, x, K, wt, N, j, V<T>::mask(W), bias, act, slope);
      else
        forward_dense_tile<T, MR, 1, true>(zi, x, K, wt, N, j, V<T>::mask(N - j), bias, act,
                                           slope);
    }
  }
  return i;
}

template <typename T>
using SgdVec = SgdRule<simd::avx512::Vec<T>>;

// The SGD rule of sgd.hpp on one vector of parameters (lanes of m only).
template <typename T>
inline void sgd_vec(T* p, T* b, typename V<T>::R g, typename V<T>::M m, const SgdVec<T>& s) {
  using X = V<T>;
  typename X::R buf = s.use_momentum && !s.first ? X::load(b, m) : X::zero();
  const typename X::R w = s.step(X::load(p, m), g, &buf);
  if (s.use_momentum) X::store(b, buf, m);
  X::store(p, w, m);
}

// Gradient rows k .. k + KR - 1 of Wᵀ for columns [j, j + NVEC * W), then their SGD step.
// Each loaded vector of dz serves KR rows; an i is visited when any of the KR values
// xt[k + r, i] is non-zero (a zero one adds fma(0, d, acc) == acc: the same bits).
template <typename T, int KR, int NVEC, bool TAIL>
inline void backward_tile(T* wt, T* buft, const T* xt, int64_t ldxt, const T* dz, int64_t m,
                          int64_t N, int64_t k, int64_t j, typename V<T>::M tail,
                          const SgdVec<T>& sgd, bool skip_zeros) {
  using X = V<T>;
  using R = typename X::R;
  constexpr int W = X::W;
  R acc[KR][NVEC];
#pragma GCC unroll 16
  for (int r = 0; r < KR; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < NVEC; ++v) acc[r][v] = X::zero();
  const T* xk = xt + k * ldxt;
  for (int64_t i = 0; i < m; i += W) {
    const auto valid = X::mask(m - i);
    typename X::M nz = valid;
    if (skip_zeros) {
      nz = 0;
#pragma GCC unroll 8
      for (int r = 0; r < KR; ++r) nz = typename X::M(nz | X::nonzero(X::load(xk + r * ldxt + i)));
      nz = typename X::M(nz & valid);
    }
    while (nz) {
      const int t = __builtin_ctz(unsigned(nz));
      nz = typename X::M(nz & (nz - 1));
      const T* d = dz + (i + t) * N + j;
      R dv[NVEC];
#pragma GCC unroll 16
      for (int v = 0; v < NVEC; ++v) {
        dv[v] = TAIL && v == NVEC - 1 ? X::load(d + v * W, tail) : X::load(d + v * W);
        if (KR > 1) asm("" : "+v"(dv[v]));  // one load per vector, not one per FMA
      }
#pragma GCC unroll 8
      for (int r = 0; r < KR; ++r) {
        const R xv = X::bcast(xk[r * ldxt + i + t]);
#pragma GCC unroll 16
        for (int v = 0; v < NVEC; ++v) acc[r][v] = X::fma(xv, dv[v], acc[r][v]);
      }
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < KR; ++r) {
    T* wrow = wt + (k + r) * N + j;
    T* brow = buft ? buft + (k + r) * N + j : nullptr;
#pragma GCC unroll 16
    for (int v = 0; v < NVEC; ++v) {
      const auto mv = TAIL && v == NVEC - 1 ? tail : X::mask(W);
      sgd_vec<T>(wrow + v * W, brow ? brow + v * W : nullptr, acc[r][v], mv, sgd);
    }
  }
}

}  // namespace

namespace {

// xt[k, i0 + r] = src[r][k] for r < nr, k in [0, K), one value at a time; returns the non-zeros.
template <typename T>
int64_t gather_scalar(T* xt, int64_t ldxt, const T* const* src, int nr, int64_t i0, int64_t kb,
                      int64_t K) {
  int64_t nonzero = 0;
  for (int64_t k = kb; k < K; ++k) {
    T* d = xt + k * ldxt + i0;
    for (int r = 0; r < nr; ++r) {
      const T v = src[r][k];
      d[r] = v;
      nonzero += v != T(0);
    }
  }
  return nonzero;
}

// 8 rows x 8 floats through registers (8 loads, 24 shuffles, 8 stores).
inline int64_t gather_8x8(float* xt, int64_t ldxt, const float* const* src, int64_t i0,
                          int64_t k) {
  __m256 r[8];
  int64_t nonzero = 0;
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm256_loadu_ps(src[i] + k);
    nonzero += __builtin_popcount(
        unsigned(_mm256_cmp_ps_mask(r[i], _mm256_setzero_ps(), _CMP_NEQ_UQ)));
  }
  simd::avx2::transpose8x8(r);
  for (int i = 0; i < 8; ++i) _mm256_storeu_ps(xt + (k + i) * ldxt + i0, r[i]);
  return nonzero;
}

}  // namespace

template <typename T>
int64_t first_gather_transposed(T* xt, int64_t ldxt, const T* X, const int64_t* rows, int64_t m,
                                int64_t K) {
  int64_t nonzero = 0;
  for (int64_t k = 0; k < K; ++k)
    for (int64_t i = m; i < ldxt; ++i) xt[k * ldxt + i] = T(0);
  constexpr int RB = 8;
  for (int64_t i0 = 0; i0 < m; i0 += RB) {
    const int nr = int(m - i0 < RB ? m - i0 : RB);
    const T* src[RB];
    for (int r = 0; r < nr; ++r) src[r] = X + rows[i0 + r] * K;
    int64_t k = 0;
    if constexpr (sizeof(T) == 4) {
      if (nr == RB)
        for (; k + 8 <= K; k += 8) nonzero += gather_8x8(xt, ldxt, src, i0, k);
    }
    nonzero += gather_scalar(xt, ldxt, src, nr, i0, k, K);
  }
  return nonzero;
}

template <typename T>
void first_forward(T* z, const T* X, const int64_t* rows, int64_t i0, int64_t i1, int64_t K,
                   const T* wt, int64_t N, const T* bias, Act act, T slope, bool skip_zeros) {
  if (!skip_zeros) {
    int64_t i = forward_dense_rows<T, 8>(z, X, rows, i0, i1, K, wt, N, bias, act, slope);
    forward_dense_rows<T, 1>(z, X, rows, i, i1, K, wt, N, bias, act, slope);
    return;
  }
  constexpr int W = V<T>::W;
  const int64_t full = N / (NV * W) * (NV * W);
  const int64_t full_pair = N / (PV * W) * (PV * W);
  alignas(64) int32_t ks[KB + 16];
  alignas(64) T xa[KB + 16], xb[KB + 16];
  // Consecutive rows go in pairs over the union of their non-zero k (first_sort_rows orders a
  // batch so that neighbours share most of them), RC rows at a time so that their partial sums
  // stay in L2 between k blocks.
  constexpr int64_t RC = 128;
  for (int64_t c0 = i0; c0 < i1; c0 += RC) {
    const int64_t c1 = c0 + RC < i1 ? c0 + RC : i1;
    const int64_t pairs_end = c0 + (c1 - c0) / 2 * 2;
    for (int64_t kb = 0; kb < K; kb += KB) {
      const int64_t ke = kb + KB < K ? kb + KB : K;
      const bool first = kb == 0, last = ke == K;
      for (int64_t i = c0; i < pairs_end; i += 2) {
        const int n = list_union(ks, xa, xb, X + rows[i] * K, X + rows[i + 1] * K, kb, ke, true);
        T* za = z + i * N;
        T* zb = za + N;
        for (int64_t j = 0; j < full_pair; j += PV * W)
          forward_pair_tile<T, PV, false>(za, zb, ks, xa, xb, n, wt, N, j, V<T>::mask(W), first,
                                          last, bias, act, slope);
        for (int64_t j = full_pair; j < N; j += W) {
          if (N - j >= W)
            forward_pair_tile<T, 1, false>(za, zb, ks, xa, xb, n, wt, N, j, V<T>::mask(W),
                                           first, last, bias, act, slope);
          else
            forward_pair_tile<T, 1, true>(za, zb, ks, xa, xb, n, wt, N, j, V<T>::mask(N - j),
                                          first, last, bias, act, slope);
        }
      }
      if (pairs_end < c1) {  // the chunk's last row, alone
        const int n = list_pairs(ks, xa, X + rows[pairs_end] * K, kb, ke, true);
        T* zrow = z + pairs_end * N;
        for (int64_t j = 0; j < full; j += NV * W)
          forward_tile<T, NV, false>(zrow, ks, xa, n, wt, N, j, V<T>::mask(W), first, last,
                                     bias, act, slope);
        for (int64_t j = full; j < N; j += W) {
          if (N - j >= W)
            forward_tile<T, 1, false>(zrow, ks, xa, n, wt, N, j, V<T>::mask(W), first, last,
                                      bias, act, slope);
          else
            forward_tile<T, 1, true>(zrow, ks, xa, n, wt, N, j, V<T>::mask(N - j), first, last,
                                     bias, act, slope);
        }
      }
    }
  }
}

template <typename T>
void first_sort_rows(int64_t* sorted, int32_t* order, uint16_t* key, const T* X,
                     const int64_t* rows, int64_t m, int64_t K) {
  // The rows come from all over X (mostly from memory): the rows two ahead are fetched into L2
  // meanwhile (measured at batch 128: the epoch's sorting and gathering took 33 ms so, against
  // 45-53 ms without prefetching or when prefetching into L1).
  constexpr int64_t AHEAD = 2;
  const int64_t lines = (K * int64_t(sizeof(T)) + 63) / 64;
  for (int64_t i = 0; i < m; ++i) {
    if (i + AHEAD < m) {
      const char* next = reinterpret_cast<const char*>(X + rows[i + AHEAD] * K);
      for (int64_t l = 0; l < lines; ++l) _mm_prefetch(next + 64 * l, _MM_HINT_T1);
    }
    key[i] = pattern_key(X + rows[i] * K, K);
  }
  sort_by_key(order, order + m, key, m);
  for (int64_t i = 0; i < m; ++i) sorted[i] = rows[order[i]];
}

template <typename T>
void first_backward_sgd(T* wt, T* buft, const T* xt, int64_t ldxt, const T* dz, int64_t m,
                        int64_t N, int64_t k0, int64_t k1, const SgdParams& params,
                        bool skip_zeros) {
  const SgdVec<T> sgd(params);
  // Rows of Wᵀ go in pairs k, k + 1 over the union list of the i where either pixel is
  // non-zero (built once per pair and column range when the batch fits the list, LB rows;
  // batches of at most SHORT rows test the bits of each vector of i instead, which is faster
  // there), 8 vectors at a time (16 accumulators): each loaded vector of dz serves both rows,
  // and neighbouring pixels share most of their non-zero i (about 11% more FMAs than useful
  // ones on Fashion-MNIST). While dz is at most 256 KiB (it stays in L2) the k loop is outside,
  // so the two wt rows and their momentum rows are read and written once, as whole rows; a
  // larger dz is walked one column block at a time for every k. An odd last row takes the
  // one-row bit-loop tile; leftover columns the 4-vector, then the 1-vector bit-loop tiles.
  constexpr int W = V<T>::W, KR = 4, NB = 4, NP = 8;
  constexpr int64_t LB = 512, SHORT = 32;
  alignas(64) int32_t is[LB + 16];
  alignas(64) T xa[LB + 16], xb[LB + 16];
  const int64_t full = N / (NP * W) * (NP * W);
  const int64_t kpairs = k0 + (k1 - k0) / 2 * 2;
  // One pair of rows over the columns [jb, je) in NP-vector tiles; lists built per tile and
  // chunk unless the whole batch's list is built once (m <= LB).
  const auto pair_rows = [&](int64_t k, int64_t jb, int64_t je) {
    if (m <= SHORT) {
      for (int64_t j = jb; j < je; j += NP * W)
        backward_tile<T, 2, NP, false>(wt, buft, xt, ldxt, dz, m, N, k, j, V<T>::mask(W), sgd,
                                       skip_zeros);
      return;
    }
    const T* x0 = xt + k * ldxt;
    const T* x1 = x0 + ldxt;
    int n = 0;
    if (m <= LB) n = list_union(is, xa, xb, x0, x1, 0, m, skip_zeros);
    for (int64_t j = jb; j < je; j += NP * W) {
      typename V<T>::R acc[2][NP];
      for (int v = 0; v < NP; ++v) acc[0][v] = acc[1][v] = V<T>::zero();
      if (m <= LB) {
        accumulate_pair<T, NP, false>(acc, is, xa, xb, n, dz, N, j, V<T>::mask(W));
      } else {
        for (int64_t c = 0; c < m; c += LB) {
          const int nc = list_union(is, xa, xb, x0, x1, c, c + LB < m ? c + LB : m, skip_zeros);
          accumulate_pair<T, NP, false>(acc, is, xa, xb, nc, dz, N, j, V<T>::mask(W));
        }
      }
      for (int r = 0; r < 2; ++r) {
        T* wrow = wt + (k + r) * N + j;
        T* brow = buft ? buft + (k + r) * N + j : nullptr;
        for (int v = 0; v < NP; ++v)
          sgd_vec<T>(wrow + v * W, brow ? brow + v * W : nullptr, acc[r][v], V<T>::mask(W), sgd);
      }
    }
  };
  const auto single_row = [&](int64_t k, int64_t j) {
    backward_tile<T, 1, NP, false>(wt, buft, xt, ldxt, dz, m, N, k, j, V<T>::mask(W), sgd,
                                   skip_zeros);
  };
  // With N < NP * W there is no pair tile: the j-outer loop is then empty, while the k-outer
  // one would still build a union list for every pair of rows.
  if (full > 0 && m * N * int64_t(sizeof(T)) <= 256 * 1024) {
    for (int64_t k = k0; k < kpairs; k += 2) pair_rows(k, 0, full);
    for (int64_t k = kpairs; k < k1; ++k)
      for (int64_t j = 0; j < full; j += NP * W) single_row(k, j);
  } else {
    for (int64_t j = 0; j < full; j += NP * W) {
      for (int64_t k = k0; k < kpairs; k += 2) pair_rows(k, j, j + NP * W);
      for (int64_t k = kpairs; k < k1; ++k) single_row(k, j);
    }
  }
  const int64_t full4 = full + (N - full) / (NB * W) * (NB * W);
  const int64_t kfull = k0 + (k1 - k0) / KR * KR;
  for (int64_t j = full; j < full4; j += NB * W) {
    for (int64_t k = k0; k < kfull; k += KR)
      backward_tile<T, KR, NB, false>(wt, buft, xt, ldxt, dz, m, N, k, j, V<T>::mask(W), sgd,
                                      skip_zeros);
    for (int64_t k = kfull; k < k1; ++k)
      backward_tile<T, 1, NB, false>(wt, buft, xt, ldxt, dz, m, N, k, j, V<T>::mask(W), sgd,
                                     skip_zeros);
  }
  for (int64_t j = full4; j < N; j += W) {
    const auto tail = V<T>::mask(N - j);
    for (int64_t k = k0; k < k1; ++k) {
      if (N - j >= W)
        backward_tile<T, 1, 1, false>(wt, buft, xt, ldxt, dz, m, N, k, j, tail, sgd, skip_zeros);
      else
        backward_tile<T, 1, 1, true>(wt, buft, xt, ldxt, dz, m, N, k, j, tail, sgd, skip_zeros);
    }
  }
}

#define GK_INSTANTIATE(T)                                                                      \
  template int64_t first_gather_transposed<T>(T*, int64_t, const T*, const int64_t*, int64_t,  \
                                              int64_t);                                        \
  template void first_forward<T>(T*, const T*, const int64_t*, int64_t, int64_t, int64_t,      \
                                 const T*, int64_t, const T*, Act, T, bool);                   \
  template void first_sort_rows<T>(int64_t*, int32_t*, uint16_t*, const T*, const int64_t*,    \
                                   int64_t, int64_t);                                          \
  template void first_backward_sgd<T>(T*, T*, const T*, int64_t, const T*, int64_t, int64_t,   \
                                      int64_t, int64_t, const SgdParams&, bool);
GK_INSTANTIATE(float)
GK_INSTANTIATE(double)
#undef GK_INSTANTIATE

}  // namespace avx512
}  // namespace gk
