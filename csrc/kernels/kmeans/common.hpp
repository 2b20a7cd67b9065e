// Internal to the k-means kernels: the ISA dispatch of the tiles, packed centres, the fixed
// row chunks that make results independent of the thread count, and the pieces every driver
// shares (grouped block sums, the centre update, the iteration loop). Not a public header.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "kernels/cpu.hpp"
#include "kernels/kmeans.hpp"
#include "kernels/kmeans/tile.hpp"

namespace gk {
namespace kmeans_detail {

// L2 bytes per core as the CPU reports it (gk::cpu_info). update.cpp.
int64_t l2_cache_bytes();

// ---- ISA dispatch: one tile per ISA, chosen at run time -----------------------------------

inline Isa tile_isa() { return active_isa(); }

template <typename T>
void argmin_rows(int32_t* label, T* mind, const T* X, int64_t rows, int64_t d, const T* packed,
                 const T* cnorm, int64_t k) {
#if defined(GRADKIT_HAVE_AVX512)
  if (tile_isa() == Isa::avx512)
    return kmeans_avx512::argmin_rows(label, mind, X, rows, d, packed, cnorm, k);
#endif
#if defined(GRADKIT_HAVE_AVX2)
  if (tile_isa() == Isa::avx2)
    return kmeans_avx2::argmin_rows(label, mind, X, rows, d, packed, cnorm, k);
#endif
  kmeans_portable::argmin_rows(label, mind, X, rows, d, packed, cnorm, k);
}

// As argmin_rows (the same label and mind bits) plus mind2 = the second smallest value, or
// false where this ISA's tile has no such variant.
template <typename T>
bool argmin2_rows(int32_t* label, T* mind, T* mind2, const T* X, int64_t rows, int64_t d,
                  const T* packed, const T* cnorm, int64_t k) {
#if defined(GRADKIT_HAVE_AVX512)
  if (tile_isa() == Isa::avx512) return false;
#endif
#if defined(GRADKIT_HAVE_AVX2)
  if (tile_isa() == Isa::avx2) {
    kmeans_avx2::argmin2_rows(label, mind, mind2, X, rows, d, packed, cnorm, k);
    return true;
  }
#endif
  kmeans_portable::argmin2_rows(label, mind, mind2, X, rows, d, packed, cnorm, k);
  return true;
}

template <typename T>
void add_rows(double* out, const T* X, const T* w, const int32_t* idx, int64_t count,
              int64_t d) {
#if defined(GRADKIT_HAVE_AVX512)
  if (tile_isa() == Isa::avx512) return kmeans_avx512::add_rows(out, X, w, idx, count, d);
#endif
#if defined(GRADKIT_HAVE_AVX2)
  if (tile_isa() == Isa::avx2) return kmeans_avx2::add_rows(out, X, w, idx, count, d);
#endif
  kmeans_portable::add_rows(out, X, w, idx, count, d);
}

// The small-k tile (lanes along d) where the ISA has one; it also returns ||x||^2.
template <typename T>
void argmin_rows_small_k(int32_t* label, T* mind, T* xx, const T* X, int64_t rows, int64_t d,
                         const T* packed, const T* cnorm, int64_t k) {
#if defined(GRADKIT_HAVE_AVX512)
  kmeans_avx512::argmin_rows_small_k(label, mind, xx, X, rows, d, packed, cnorm, k);
#endif
}

// Whether the assignment uses the small-k tile: few centres (a centre panel would leave lanes
// idle) and rows long enough to fill the lanes along d. Measured against the panel tile: ahead
// up to 12 centres in float32 (6 in float64) from d = 64 on; at 16 (8) the panel has no idle
// lane and wins.
template <typename T>
bool use_small_k(int64_t k, int64_t d) {
  return tile_isa() == Isa::avx512 && k <= kmeans_tile::small_k_max<T>() && d >= 64;
}

// ---- row arithmetic -----------------------------------------------------------------------

template <typename T>
inline double sq_norm(const T* x, int64_t d) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t p = 0;
  for (; p + 8 <= d; p += 8)
    for (int l = 0; l < 8; ++l) acc[l] += static_cast<double>(x[p + l]) * x[p + l];
  for (; p < d; ++p) acc[0] += static_cast<double>(x[p]) * x[p];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

template <typename T>
inline double sq_dist(const T* x, const T* c, int64_t d) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t p = 0;
  for (; p + 8 <= d; p += 8)
    for (int l = 0; l < 8; ++l) {
      const double diff = static_cast<double>(x[p + l]) - c[p + l];
      acc[l] += diff * diff;
    }
  for (; p < d; ++p) {
    const double diff = static_cast<double>(x[p]) - c[p];
    acc[0] += diff * diff;
  }
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// ||x||^2 in T with 16 independent partial sums (for the step's inertia, a by-product).
template <typename T>
inline T sq_norm_fast(const T* x, int64_t d) {
  T acc[16] = {};
  int64_t p = 0;
  for (; p + 16 <= d; p += 16)
    for (int l = 0; l < 16; ++l) acc[l] += x[p + l] * x[p + l];
  for (; p < d; ++p) acc[0] += x[p] * x[p];
  T s = 0;
  for (int l = 0; l < 16; ++l) s += acc[l];
  return s;
}

// The rows of one block grouped by label, each group in row order (a linked list per label;
// only the labels the block touched are visited and reset). Each group's weighted sum is then
// taken in T, with the partial sums in registers while its rows stream by from cache, and
// added to the chunk's float64 sums: float32 adds stay cheap, and no float32 sum runs over

struct BlockGroups {
  std::vector<int32_t> head, tail, next, touched, idx;
  BlockGroups(int64_t k, int64_t rows) : head(k, -1), tail(k), next(rows), idx(rows) {}
  void add(int32_t j, int32_t r) {
    if (head[j] < 0) {
      head[j] = r;
      touched.push_back(j);
    } else {
      next[tail[j]] = r;
    }
    tail[j] = r;
    next[r] = -1;
  }
  // f(j, rows of group j, count) for each touched label; then empty.
  template <typename F>
  void drain(F f) {
    for (int32_t j : touched) {
      int64_t n = 0;
      for (int32_t r = head[j]; r >= 0; r = next[r]) idx[n++] = r;
      f(j, idx.data(), n);
      head[j] = -1;
    }
    touched.clear();
  }
};

// Centres packed for the tiles (see kmeans_tile.hpp): in panels, or chunk-interleaved for
// the small-k tile.
template <typename T>
struct Packed {
  std::vector<T> data, cnorm;
  bool small_k;
  Packed(const T* centers, int64_t k, int64_t d, bool small_k_ = false) : small_k(small_k_) {
    constexpr int64_t NR = kmeans_tile::panel_width<T>();
    constexpr int64_t V = kmeans_tile::small_k_width<T>();
    const int64_t kpad = (k + NR - 1) / NR * NR;
    data.assign(small_k ? (d + V - 1) / V * V * k : kpad * d, T(0));
    cnorm.assign(kpad, std::numeric_limits<T>::infinity());
    for (int64_t j = 0; j < k; ++j) {
      T s = 0;
      for (int64_t p = 0; p < d; ++p) {
        const T c = centers[j * d + p];
        if (small_k)
          data[(p / V * k + j) * V + p % V] = c;
        else
          data[(j / NR) * NR * d + p * NR + j % NR] = c;
        s += c * c;
      }
      cnorm[j] = s;
    }
  }
};

// label, mind = the nearest centre of `rows` rows of X, through the tile `pk` was packed for
// (the two tiles may round near-ties differently, so every pass over the same centres must use
// the same one). xx: room for `rows` values (the small-k tile writes ||x||^2 there).
template <typename T>
void nearest(const Packed<T>& pk, int32_t* label, T* mind, T* xx, const T* X, int64_t rows,
             int64_t d, int64_t k) {
  if (pk.small_k)
    argmin_rows_small_k(label, mind, xx, X, rows, d, pk.data.data(), pk.cnorm.data(), k);
  else
    argmin_rows(label, mind, X, rows, d, pk.data.data(), pk.cnorm.data(), k);
}

// Fixed chunks of rows: how many depends on n only, never on the thread count.
constexpr int64_t kMaxChunks = 16;
constexpr int64_t kMinChunkRows = 4096;

inline int64_t n_chunks(int64_t n) {
  return std::max<int64_t>(1, std::min(kMaxChunks, (n + kMinChunkRows - 1) / kMinChunkRows));
}
inline int64_t chunk_begin(int64_t c, int64_t chunks, int64_t n) { return c * n / chunks; }

inline int threads_for_chunks(int n_threads, int64_t chunks, double work) {
  int t = n_threads > 0 ? n_threads : omp_get_max_threads();
  if (work < 2e5) t = 1;
  return static_cast<int>(std::min<int64_t>(t, chunks));
}

// Rows per block inside a chunk (half the L2 of X, read from the CPU): their distances and
// updates happen while they are in L2, and the block sums in T cover that many rows.
template <typename T>
int64_t block_rows(int64_t d) {
  const int64_t bytes = l2_cache_bytes() / 2;
  const int64_t r = (bytes / static_cast<int64_t>(sizeof(T))) / std::max<int64_t>(d, 1);
  return std::max<int64_t>(8, std::min<int64_t>(256, r / 8 * 8));
}

// Per-chunk results of one pass: float64 cluster sums and weights, inertia, changed labels.
struct Partial {
  std::vector<double> sums, weight;
  double inertia = 0;
  int64_t changed = 0;
  int64_t distances = 0;  // row-centre distances the bound-based labelers computed
};

// The fused pass of every driver, in one read of X: for each block of rows of each fixed
// chunk, a labeler writes the labels (and adds what it knows of the inertia to the chunk's
// partial); then, when `update`, the rows are grouped by label and their weighted sums added
// to the chunk's float64 sums. make_labeler() runs once per thread and returns a callable
// labeler(i0, rows, lab, part) with its own scratch. Only the labeler differs between Lloyd
// and the bound-based drivers, so the sums (and so the centres) are bitwise the same.
template <typename T, typename MakeLabeler>
void chunked_pass(std::vector<Partial>& parts, int32_t* labels, const T* X, const T* w,
                  int64_t n, int64_t d, int64_t k, bool update, int n_threads, double work,
                  MakeLabeler&& make_labeler) {
  const int64_t chunks = n_chunks(n);
  parts.assign(chunks, Partial{});
  const int64_t B = block_rows<T>(d);
  const int threads = threads_for_chunks(n_threads, chunks, work);
#pragma omp parallel num_threads(threads)
  {
    auto labeler = make_labeler(B);
    std::vector<int32_t> lab(B);
    BlockGroups groups(update ? k : 0, B);
#pragma omp for schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {
      Partial& part = parts[c];
      if (update) {
        part.sums.assign(k * d, 0.0);
        part.weight.assign(k, 0.0);
      }
      const int64_t end = chunk_begin(c + 1, chunks, n);
      for (int64_t i0 = chunk_begin(c, chunks, n); i0 < end; i0 += B) {
        const int64_t rows = std::min(B, end - i0);
        labeler(i0, rows, lab.data(), part);
        for (int64_t r = 0; r < rows; ++r) {
          const int32_t j = lab[r];
          part.changed += labels[i0 + r] != j;
          labels[i0 + r] = j;
          if (update) {
            part.weight[j] += w ? static_cast<double>(w[i0 + r]) : 1.0;
            groups.add(j, static_cast<int32_t>(r));
          }
        }
        if (update)
          groups.drain([&](int32_t j, const int32_t* idx, int64_t count) {
            add_rows(part.sums.data() + j * d, X + i0 * d, w ? w + i0 : nullptr, idx, count, d);
          });
      }
    }
  }
}

// f(i) for i in [0, n): a plain loop on one thread (no OpenMP team to set up for small inputs).
template <typename F>
void for_each_block(int64_t n, int threads, F&& f) {
  if (threads <= 1) {
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t i = 0; i < n; ++i) f(i);
}

// Empty clusters take the points farthest from their centres (scikit-learn's rule), but never
// a cluster's last point, a point of weight 0 or one on its centre. Returns how many were
// filled. update.cpp.
template <typename T>
int64_t relocate_empty(std::vector<double>& sums, std::vector<double>& weight,
                       const int32_t* labels, const T* X, const T* w, const T* centers,
                       int64_t n, int64_t d, int64_t k);

// centers_new (OUT) = sums / weight (an empty cluster: the heaviest's); returns the squared
// shift sum_j ||new_j - old_j||^2. update.cpp.
template <typename T>
double centers_from_sums(T* centers_new, const std::vector<double>& sums,
                         const std::vector<double>& weight, const T* centers, int64_t d,
                         int64_t k);

// One Lloyd pass over X by fixed chunks: labels (OUT; changes counted against their values
// on entry) and per-chunk sums, weights and inertia, not yet reduced. lloyd.cpp.
template <typename T>
void lloyd_pass(std::vector<Partial>& parts, int32_t* labels, const T* X, const T* w,
                const T* centers, int64_t n, int64_t d, int64_t k, int n_threads);

// The chunk partials added in chunk order, empty clusters relocated, new centres out: the end
// of every driver's pass. update.cpp.
template <typename T>
LloydStepStats reduce_and_update(T* centers_new, const std::vector<Partial>& parts,
                                 const int32_t* labels, const T* X, const T* w,
                                 const T* centers, int64_t n, int64_t d, int64_t k);

struct IterStats {
  int64_t n_changed;
  double center_shift;
};


// The Lloyd loop of every driver: step(new, old) runs one iteration from the centres `old`,
// writes the next ones to `new` and returns what changed. Stops when no label changed (strict
// convergence, returns true) or the centres moved by at most tol; leaves the last centres in
// `centers` and the iteration count in *n_iter.
template <typename T, typename Step>
bool lloyd_iterate(T* centers, int64_t size, int max_iter, double tol, int64_t* n_iter,
                   Step&& step) {
  std::vector<T> other(centers, centers + size);
  T* cur = centers;
  T* nxt = other.data();
  bool strict = false;
  int it = 0;
  for (; it < max_iter; ++it) {
    const IterStats st = step(nxt, cur);
    std::swap(cur, nxt);
    if (st.n_changed == 0) {
      strict = true;
      break;
    }
    if (st.center_shift <= tol) break;
  }
  if (cur != centers) std::copy(cur, cur + size, centers);
  *n_iter = std::min(it + 1, max_iter);
  return strict;
}


// Inputs so small (one chunk, under the one-thread work threshold) that the Lloyd loop runs
// without the chunked pass; every algorithm takes that loop for them. lloyd.cpp.
bool is_small_fit(int64_t n, int64_t d, int64_t k);
template <typename T>
double lloyd_small_fit(T* centers, int32_t* labels, int64_t* n_iter, const T* X, const T* w,
                       int64_t n, int64_t d, int64_t k, int max_iter, double tol);

}  // namespace kmeans_detail
}  // namespace gk
