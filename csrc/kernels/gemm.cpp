// GEMM driver: BLIS-style blocking and packing around a register-blocked micro-kernel.
//
// Loops, outermost first (C is M x N, the product runs over K):
//   jc: NC columns of C      -> pack op(B)[pc:pc+KC, jc:jc+NC] into k-major NR-wide panels
//   pc: KC slice of K           (the packed B block is shared by all threads, lives in L2/L3)
//   ic: MC rows of C         -> pack op(A)[ic:ic+MC, pc:pc+KC] into k-major MR-tall panels
//   (jr, ir): MR x NR tiles  -> micro-kernel; the epilogue is applied on the last K slice
// Packing absorbs the transposes, so NN, NT and TN run the same kernel. Threads split the
// packing and the tiles of C, never K: each element of C is the same sum in the same order for
// any thread count. Tiny products take the plain loop, and products with at most 4 rows a
// row-by-row path: neither packs.
#include "kernels/gemm.hpp"
#include "kernels/gemm_naive.hpp"

#include <omp.h>

#if defined(__AVX2__)
#include "kernels/simd/avx2.hpp"
#endif

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "kernels/cpu.hpp"
#include "kernels/gemm_kernels.hpp"

namespace gk {

// Flops per thread before GEMM splits its work: about 20 us of one core's arithmetic.
constexpr double kGemmGrain = 2e6;

template <typename T>
void gemm_naive(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const T* A,
                int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc, bool accumulate,
                const T* bias, Act act, T slope, int max_threads) {
  int nt = threads_for(2.0 * M * N * K, kGemmGrain);
  if (max_threads > 0 && nt > max_threads) nt = max_threads;
  if (nt <= 1) {
    // No OpenMP region at all: even a serialised one costs more than a tiny product (a 2-3-1
    // network's whole training step is a few of these).
    naive::rows(0, M, trans_a, trans_b, N, K, A, lda, B, ldb, C, ldc, accumulate, bias, act, slope);
    return;
  }
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t i = 0; i < M; ++i)
    naive::rows(i, i + 1, trans_a, trans_b, N, K, A, lda, B, ldb, C, ldc, accumulate, bias, act,
               slope);
}

namespace detail {

template <typename T>
void store_tile(T* c, int64_t ldc, const T* tile, int ldt, int m, int n, bool load_c,
                const T* bias, Act act, T slope) {
  for (int i = 0; i < m; ++i) {
    T* ci = c + i * ldc;
    const T* ti = tile + i * ldt;
    for (int j = 0; j < n; ++j) {
      T x = ti[j];
      if (load_c) x += ci[j];
      if (bias) x += bias[j];
      ci[j] = apply_act(x, act, slope);
    }
  }
}

}  // namespace detail


namespace {

// 64-byte aligned scratch that grows on demand and is kept per calling thread, so repeated calls
// (and k-means workers calling with max_threads=1) never allocate once warmed up.
struct Scratch {
  struct Free { void operator()(void* p) const { std::free(p); } };
  std::unique_ptr<void, Free> mem;
  size_t bytes = 0;
  void* get(size_t want) {
    if (want > bytes) {
      want = (want + 4095) & ~size_t(4095);
      mem.reset(std::aligned_alloc(64, want));
      if (!mem) throw std::bad_alloc();
      bytes = want;
    }
    return mem.get();
  }
};

thread_local Scratch t_scratch;

// dst[p * width + i] = src[i * lds + p] for i < rows, p < kc: the transposing copy both packers
// need when the operand is stored "across" the panel (A in NN/NT, B in NT).
template <typename T>
void copy_transposed_scalar(const T* src, int64_t lds, int rows, int kc, T* dst, int width) {
  for (int i = 0; i < rows; ++i) {
    const T* s = src + i * lds;
    for (int p = 0; p < kc; ++p) dst[p * width + i] = s[p];
  }
}

#if defined(__AVX2__)
// An 8-value-wide slice of `rows` (<= 8) rows -> 8 rows of `rows` values, through registers (the
// baseline unit is x86-64-v3): a scalar transpose costs a few percent of a 256^3 product in this
// layout. Missing rows are zeros in the transpose and are not stored; the AVX2 micro-kernel's
// panels are 6 tall, so that case gets plain 4 + 2 stores rather than masked ones.
inline void transpose8(const float* src, int64_t lds, int rows, float* dst, int64_t ldd) {
  __m256 r[8];
  for (int i = 0; i < 8; ++i) r[i] = i < rows ? _mm256_loadu_ps(src + i * lds) : _mm256_setzero_ps();
  simd::avx2::transpose8x8(r);
  if (rows == 8) {
    for (int i = 0; i < 8; ++i) _mm256_storeu_ps(dst + i * ldd, r[i]);
  } else if (rows == 6) {
    for (int i = 0; i < 8; ++i) {
      _mm_storeu_ps(dst + i * ldd, _mm256_castps256_ps128(r[i]));
      _mm_storel_pi(reinterpret_cast<__m64*>(dst + i * ldd + 4), _mm256_extractf128_ps(r[i], 1));
    }
  } else {
    const __m256i keep = _mm256_cmpgt_epi32(_mm256_set1_epi32(rows),
                                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    for (int i = 0; i < 8; ++i) _mm256_maskstore_ps(dst + i * ldd, keep, r[i]);
  }
}

inline void transpose4x4(const double* src, int64_t lds, double* dst, int64_t ldd) {
  const __m256d r0 = _mm256_loadu_pd(src), r1 = _mm256_loadu_pd(src + lds);
  const __m256d r2 = _mm256_loadu_pd(src + 2 * lds), r3 = _mm256_loadu_pd(src + 3 * lds);
  const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
  const __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
  _mm256_storeu_pd(dst, _mm256_permute2f128_pd(t0, t2, 0x20));
  _mm256_storeu_pd(dst + ldd, _mm256_permute2f128_pd(t1, t3, 0x20));
  _mm256_storeu_pd(dst + 2 * ldd, _mm256_permute2f128_pd(t0, t2, 0x31));
  _mm256_storeu_pd(dst + 3 * ldd, _mm256_permute2f128_pd(t1, t3, 0x31));
}

template <typename T, int B>
void copy_transposed_blocked(const T* src, int64_t lds, int rows, int kc, T* dst, int width) {
  const int rows_b = rows / B * B, kc_b = kc / B * B;
  for (int i = 0; i < rows_b; i += B) {
    for (int p = 0; p < kc_b; p += B) {
      if constexpr (B == 8) transpose8(src + i * lds + p, lds, 8, dst + p * width + i, width);
      else transpose4x4(src + i * lds + p, lds, dst + p * width + i, width);
    }
    if (kc_b < kc)
      copy_transposed_scalar(src + i * lds + kc_b, lds, B, kc - kc_b, dst + kc_b * width + i,
                             width);
  }
  if (rows_b < rows) {
    int p = 0;
    if constexpr (B == 8)
      for (; p + 8 <= kc; p += 8)
        transpose8(src + rows_b * lds + p, lds, rows - rows_b, dst + p * width + rows_b, width);
    copy_transposed_scalar(src + rows_b * lds + p, lds, rows - rows_b, kc - p,
                           dst + p * width + rows_b, width);
  }
}

inline void copy_transposed(const float* src, int64_t lds, int rows, int kc, float* dst,
                            int width) {
  copy_transposed_blocked<float, 8>(src, lds, rows, kc, dst, width);
}
inline void copy_transposed(const double* src, int64_t lds, int rows, int kc, double* dst,
                            int width) {
  copy_transposed_blocked<double, 4>(src, lds, rows, kc, dst, width);
}
#else
template <typename T>
void copy_transposed(const T* src, int64_t lds, int rows, int kc, T* dst, int width) {
  copy_transposed_scalar(src, lds, rows, kc, dst, width);
}
#endif

// op(A)[i0:i0+rows, p0:p0+kc] -> one k-major panel mr tall (zero-padded to mr).
template <typename T>
void pack_a_panel(const T* A, int64_t lda, bool trans_a, int64_t i0, int rows, int64_t p0, int kc,
                  int mr, T* dst) {
  if (trans_a) {  // A is (K, M): the mr values for one p are contiguous
    for (int p = 0; p < kc; ++p) {
      const T* src = A + (p0 + p) * lda + i0;
      T* d = dst + p * mr;
      int i = 0;
      for (; i < rows; ++i) d[i] = src[i];
      for (; i < mr; ++i) d[i] = T(0);
    }
  } else {  // A is (M, K): transpose mr rows into the panel
    copy_transposed(A + i0 * lda + p0, lda, rows, kc, dst, mr);
    for (int p = 0; p < kc; ++p)
      for (int i = rows; i < mr; ++i) dst[p * mr + i] = T(0);
  }
}

// kc rows of W contiguous values (row stride lds) -> dst, rows back to back.
template <int W, typename T>
void copy_rows(const T* src, int64_t lds, int kc, T* __restrict dst) {
  for (int p = 0; p < kc; ++p)
#pragma GCC unroll 32
    for (int j = 0; j < W; ++j) dst[p * W + j] = src[p * lds + j];
}

// op(B)[p0:p0+kc, j0:j0+cols] -> one k-major panel nr wide (zero-padded to nr).
template <typename T>
void pack_b_panel(const T* B, int64_t ldb, bool trans_b, int64_t p0, int kc, int64_t j0, int cols,
                  int nr, T* dst) {
  if (!trans_b) {  // B is (K, N): a row of the panel is contiguous
    if (cols == nr) {
      switch (nr) {  // a fixed width becomes a few vector moves, not a memcpy call per row
        case 8: return copy_rows<8>(B + p0 * ldb + j0, ldb, kc, dst);
        case 16: return copy_rows<16>(B + p0 * ldb + j0, ldb, kc, dst);
        case 32: return copy_rows<32>(B + p0 * ldb + j0, ldb, kc, dst);
        default: break;
      }
    }
    for (int p = 0; p < kc; ++p) {
      const T* src = B + (p0 + p) * ldb + j0;
      T* d = dst + p * nr;
      std::memcpy(d, src, sizeof(T) * cols);
      for (int j = cols; j < nr; ++j) d[j] = T(0);
    }
  } else {  // B is (N, K): column j of the panel is row j0+j of B
    copy_transposed(B + j0 * ldb + p0, ldb, cols, kc, dst, nr);
    for (int p = 0; p < kc; ++p)
      for (int j = cols; j < nr; ++j) dst[p * nr + j] = T(0);
  }
}

// Cache blocking, derived from the caches of the machine at hand (BLIS's analytical rule):
//   KC: one kc x NR panel of B plus one MR x kc panel of A fit in kL1Share of L1d, so the B
//       panel stays in L1 while A panels stream past it;
//   MC: the MC x KC block of A takes kL2Share of L2 (the rest holds B panels and C tiles);
//   NC: the KC x NC block of B takes kL3Share of L3 per thread, capped at kMaxNC.
constexpr double kL1Share = 0.75, kL2Share = 0.5, kL3Share = 0.25;
constexpr int64_t kKcStep = 32, kMinKc = 64, kMaxKc = 512, kMaxNC = 4096;

struct Blocking {
  int64_t mc, kc, nc;
};

template <typename T>
Blocking blocking_for(int mr, int nr) {
  const CpuInfo& cpu = cpu_info();
  const int64_t t = sizeof(T);
  int64_t kc = int64_t(kL1Share * double(cpu.l1d_bytes)) / (t * (mr + nr)) / kKcStep * kKcStep;
  kc = std::max(kMinKc, std::min(kMaxKc, kc));
  const int64_t mc = std::max<int64_t>(mr, int64_t(kL2Share * double(cpu.l2_bytes)) / (t * kc) / mr * mr);
  const int64_t l3_share = int64_t(kL3Share * double(cpu.l3_bytes)) / std::max(1, num_threads());
  const int64_t nc_l3 = l3_share / (t * kc) / nr * nr;
  const int64_t nc = std::max<int64_t>(nr, std::min<int64_t>(kMaxNC / nr * nr, nc_l3 > 0 ? nc_l3 : kMaxNC));
  return {mc, kc, nc};
}

template <typename T>
detail::Ukernel<T> select_ukernel() {
  switch (active_isa()) {
#if defined(GRADKIT_HAVE_AVX512)
    case Isa::avx512: return avx512::ukernel(T());
#endif
    case Isa::avx2: return avx2::ukernel(T());
    default: return portable::ukernel(T());
  }
}

// One thread's share: the whole BLIS loop nest over a block of C, with this thread's own buffers.
template <typename T>
void gemm_packed_block(const detail::Ukernel<T>& uk, const Blocking& blk, bool trans_a, bool trans_b, int64_t M,
                       int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb,
                       T* C, int64_t ldc, bool accumulate, const T* bias, Act act, T slope) {
  const int MR = uk.mr, NR = uk.nr;
  // K in equal slices of at most blk.kc (rounded up to whole vectors of the packing): K = 784
  // at kc 256 is 4 x 196 rather than 3 x 256 + 16, whose last slice would pay the C tile's load
  // and store for 16 multiply-adds per element.
  const int64_t slices = (K + blk.kc - 1) / blk.kc;
  const int64_t KC = std::min<int64_t>(blk.kc, ((K + slices - 1) / slices + 7) / 8 * 8);
  // Shrink the blocks to the problem (rounded up to whole panels) so small calls use small buffers.
  const int64_t MC = std::min<int64_t>(blk.mc, (M + MR - 1) / MR * MR);
  const int64_t NC = std::min<int64_t>(blk.nc, (N + NR - 1) / NR * NR);
  const size_t a_elems = size_t(MC) * KC, b_elems = size_t(NC) * KC;
  T* bufB = static_cast<T*>(t_scratch.get(sizeof(T) * (a_elems + b_elems) + 64));
  T* bufA = bufB + (b_elems + 15) / 16 * 16;

  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min(NC, N - jc);
    const int64_t n_panels = (nc + NR - 1) / NR;
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int kc = static_cast<int>(std::min(KC, K - pc));
      const bool first = pc == 0, last = pc + kc == K;
      const bool load_c = accumulate || !first;
      const T* bias_k = last ? bias : nullptr;
      const Act act_k = last ? act : Act::none;
      for (int64_t jp = 0; jp < n_panels; ++jp) {
        const int cols = static_cast<int>(std::min<int64_t>(NR, nc - jp * NR));
        pack_b_panel(B, ldb, trans_b, pc, kc, jc + jp * NR, cols, NR, bufB + jp * NR * kc);
      }
      for (int64_t ic = 0; ic < M; ic += MC) {
        const int64_t mc = std::min(MC, M - ic);
        const int64_t m_panels = (mc + MR - 1) / MR;
        for (int64_t ip = 0; ip < m_panels; ++ip) {
          const int rows = static_cast<int>(std::min<int64_t>(MR, mc - ip * MR));
          pack_a_panel(A, lda, trans_a, ic + ip * MR, rows, pc, kc, MR, bufA + ip * MR * kc);
        }
        // Column panel outer: one B panel stays in L1 while the A panels stream from L2.
        for (int64_t jp = 0; jp < n_panels; ++jp) {
          const int64_t j = jc + jp * NR;
          const int cols = static_cast<int>(std::min<int64_t>(NR, N - j));
          for (int64_t ip = 0; ip < m_panels; ++ip) {
            const int64_t i = ic + ip * MR;
            const int rows = static_cast<int>(std::min<int64_t>(MR, M - i));
            uk.fn(kc, bufA + ip * MR * kc, bufB + jp * NR * kc, C + i * ldc + j, ldc, rows, cols,
                  load_c, bias_k ? bias_k + j : nullptr, act_k, slope);
          }
        }
      }
    }
  }
}

// Threads take disjoint blocks of whole panels of C (along N when it is the longer side, else
// along M) and each runs the loop nest with private packing: no barrier until the end, which
// matters on a busy machine, and each core's L2 holds its own panels. Every element of C is
// computed by the same micro-kernel arithmetic wherever the block boundaries fall, so the bits
// do not depend on the thread count.
template <typename T>
void gemm_packed(const detail::Ukernel<T>& uk, bool trans_a, bool trans_b, int64_t M, int64_t N,
                 int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc,
                 bool accumulate, const T* bias, Act act, T slope, int nt) {
  const Blocking blk = blocking_for<T>(uk.mr, uk.nr);
  if (nt <= 1) {
    gemm_packed_block(uk, blk, trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc, accumulate, bias, act,
                      slope);
    return;
  }
  const bool split_n = N >= M;
  const int64_t unit = split_n ? uk.nr : uk.mr;
  const int64_t panels = ((split_n ? N : M) + unit - 1) / unit;
#pragma omp parallel num_threads(nt)
  {
    const int64_t team = omp_get_num_threads(), t = omp_get_thread_num();
    if (t == 0) note_team(static_cast<int>(team));
    const int64_t p0 = panels * t / team, p1 = panels * (t + 1) / team;
    const int64_t lo = p0 * unit, hi = std::min(p1 * unit, split_n ? N : M);
    if (lo < hi) {
      if (split_n) {
        const T* Bj = trans_b ? B + lo * ldb : B + lo;
        gemm_packed_block(uk, blk, trans_a, trans_b, M, hi - lo, K, A, lda, Bj, ldb, C + lo, ldc,
                          accumulate, bias ? bias + lo : nullptr, act, slope);
      } else {
        const T* Ai = trans_a ? A + lo : A + lo * lda;
        gemm_packed_block(uk, blk, trans_a, trans_b, hi - lo, N, K, Ai, lda, B, ldb, C + lo * ldc, ldc,
                          accumulate, bias, act, slope);
      }
    }
  }
}

// Dot product with 16 running partial sums: the compiler vectorises it (a plain `acc += a*b`
// loop is a serial chain it may not reorder), and the summation order depends only on k.
template <typename T>
T dot(const T* __restrict a, const T* __restrict b, int64_t k) {
  constexpr int L = 16;
  T part[L] = {};
  int64_t p = 0;
  for (; p + L <= k; p += L)
    for (int l = 0; l < L; ++l) part[l] += a[p + l] * b[p + l];
  T tail = T(0);
  for (; p < k; ++p) tail += a[p] * b[p];
  for (int w = L / 2; w > 0; w /= 2)
    for (int l = 0; l < w; ++l) part[l] += part[l + w];
  return part[0] + tail;
}

// Few rows of C (a batch of 1-4 vectors): no packing, since packing B would cost as much as the
// product. Row i of C is either dot products with the rows of B (trans_b) or a sum of rows of B
// scaled by op(A)[i, p]. Threads take fixed column blocks, so the bits do not depend on them.
template <typename T>
void gemm_few_rows(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const T* A,
                   int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc, bool accumulate,
                   const T* bias, Act act, T slope, int nt) {
  constexpr int64_t JB = 256;  // columns per block
  const int64_t n_blocks = (N + JB - 1) / JB;
  // Row i of op(A) as a contiguous vector (a copy only when A is stored transposed).
  T* arows = static_cast<T*>(t_scratch.get(sizeof(T) * size_t(M) * K + 64));
  for (int64_t i = 0; i < M; ++i)
    for (int64_t p = 0; p < K; ++p) arows[i * K + p] = trans_a ? A[p * lda + i] : A[i * lda + p];

#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t jb = 0; jb < n_blocks; ++jb) {
    const int64_t j0 = jb * JB;
    const int cols = static_cast<int>(std::min(JB, N - j0));
    alignas(64) T acc[JB];
    for (int64_t i = 0; i < M; ++i) {
      const T* a = arows + i * K;
      if (trans_b) {
        for (int j = 0; j < cols; ++j) acc[j] = dot(a, B + (j0 + j) * ldb, K);
      } else {
        for (int j = 0; j < cols; ++j) acc[j] = T(0);
        for (int64_t p = 0; p < K; ++p) {
          const T ap = a[p];
          const T* b = B + p * ldb + j0;
          for (int j = 0; j < cols; ++j) acc[j] += ap * b[j];
        }
      }
      detail::store_tile<T>(C + i * ldc + j0, ldc, acc, JB, 1, cols, accumulate,
                            bias ? bias + j0 : nullptr, act, slope);
    }
  }
}

}  // namespace

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda,
          const T* B, int64_t ldb, T* C, int64_t ldc, bool accumulate, const T* bias, Act act,
          T slope, int max_threads) {
  if (M <= 0 || N <= 0) return;
  // Below about 16^3 the packing costs more than it saves; K == 0 is just the epilogue.
  if (K == 0 || double(M) * N * K <= 4096.0) {
    gemm_naive(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc, accumulate, bias, act, slope, 1);
    return;
  }
  int nt = threads_for(2.0 * M * N * K, kGemmGrain);
  if (max_threads > 0 && nt > max_threads) nt = max_threads;
  if (M <= 4) {
    gemm_few_rows(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc, accumulate, bias, act, slope,
                  nt);
    return;
  }
  gemm_packed(select_ukernel<T>(), trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc, accumulate,
              bias, act, slope, nt);
}

#define GK_INSTANTIATE(T)                                                                      \
  template void gemm<T>(bool, bool, int64_t, int64_t, int64_t, const T*, int64_t, const T*,    \
                        int64_t, T*, int64_t, bool, const T*, Act, T, int);                    \
  template void gemm_naive<T>(bool, bool, int64_t, int64_t, int64_t, const T*, int64_t,        \
                              const T*, int64_t, T*, int64_t, bool, const T*, Act, T, int);    \
  template void detail::store_tile<T>(T*, int64_t, const T*, int, int, int, bool, const T*,    \
                                      Act, T);
GK_INSTANTIATE(float)
GK_INSTANTIATE(double)
#undef GK_INSTANTIATE

}  // namespace gk
