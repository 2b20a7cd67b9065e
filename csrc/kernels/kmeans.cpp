// k-means drivers (chunking, accumulation, relocation, k-means++) and the portable distance
// tile. The AVX-512 tile lives in kmeans_avx512.cpp; both read the same packed centres.
#include "kernels/kmeans.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "kernels/cpu.hpp"
#include "kernels/kmeans_tile.hpp"

namespace gk {

// ---- portable tile: plain loops, same contract as the AVX-512 one -------------------------
namespace kmeans_portable {

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

// pp_tile (portable) sits with the k-means++ driver at the end of this file.

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

}  // namespace kmeans_portable

namespace {

template <typename T>
bool use_avx512() {
#if defined(GRADKIT_HAVE_AVX512)
  return active_isa() == Isa::avx512;
#else
  return false;
#endif
}

template <typename T>
void argmin_rows(int32_t* label, T* mind, const T* X, int64_t rows, int64_t d, const T* packed,
                 const T* cnorm, int64_t k) {
#if defined(GRADKIT_HAVE_AVX512)
  if (use_avx512<T>()) return kmeans_avx512::argmin_rows(label, mind, X, rows, d, packed, cnorm, k);
#endif
  kmeans_portable::argmin_rows(label, mind, X, rows, d, packed, cnorm, k);
}

template <typename T>
void add_rows(double* out, const T* X, const T* w, const int32_t* idx, int64_t count,
              int64_t d) {
#if defined(GRADKIT_HAVE_AVX512)
  if (use_avx512<T>()) return kmeans_avx512::add_rows(out, X, w, idx, count, d);
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
  return use_avx512<T>() && k <= kmeans_tile::small_k_max<T>() && d >= 64;
}

// Sums of squares in float64 with 8 independent partial sums, added in a fixed order: the
// compiler vectorises them (one running sum would be a latency-bound scalar chain).
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
// more than one block.
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

int64_t n_chunks(int64_t n) {
  return std::max<int64_t>(1, std::min(kMaxChunks, (n + kMinChunkRows - 1) / kMinChunkRows));
}
inline int64_t chunk_begin(int64_t c, int64_t chunks, int64_t n) { return c * n / chunks; }

int threads_for_chunks(int n_threads, int64_t chunks, double work) {
  int t = n_threads > 0 ? n_threads : omp_get_max_threads();
  if (work < 2e5) t = 1;
  return static_cast<int>(std::min<int64_t>(t, chunks));
}

// Rows per block inside a chunk (about 256 KiB of X): their distances and updates happen while
// they are in L2, and the block sums in T cover that many rows.
template <typename T>
int64_t block_rows(int64_t d) {
  const int64_t r = (256 * 1024 / static_cast<int64_t>(sizeof(T))) / std::max<int64_t>(d, 1);
  return std::max<int64_t>(8, std::min<int64_t>(256, r / 8 * 8));
}

struct Partial {
  std::vector<double> sums, weight;
  double inertia = 0;
  int64_t changed = 0;
};

// The fused pass: labels (and, when `update`, per-chunk weighted sums) in one read of X.
template <typename T>
void assign_pass(std::vector<Partial>& parts, int32_t* labels, const T* X, const T* w,
                 const Packed<T>& pk, int64_t n, int64_t d, int64_t k, bool update,
                 int n_threads) {
  const int64_t chunks = n_chunks(n);
  parts.assign(chunks, Partial{});
  const int64_t B = block_rows<T>(d);
  const int threads = threads_for_chunks(n_threads, chunks, 2.0 * n * d * k);
#pragma omp parallel num_threads(threads)
  {
    std::vector<int32_t> lab(B);
    std::vector<T> mind(B), xxb(B);
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
        nearest(pk, lab.data(), mind.data(), xxb.data(), X + i0 * d, rows, d, k);
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t i = i0 + r;
          const int32_t j = lab[r];
          const T* x = X + i * d;
          const double wi = w ? static_cast<double>(w[i]) : 1.0;
          part.changed += labels[i] != j;
          labels[i] = j;
          if (update) {
            part.weight[j] += wi;
            groups.add(j, static_cast<int32_t>(r));
          }
          const double xx = pk.small_k ? xxb[r] : sq_norm_fast(x, d);
          part.inertia += wi * std::max(0.0, xx + static_cast<double>(mind[r]));
        }
        if (update)
          groups.drain([&](int32_t j, const int32_t* idx, int64_t count) {
            add_rows(part.sums.data() + j * d, X + i0 * d, w ? w + i0 : nullptr, idx, count, d);
          });
      }
    }
  }
}

// Empty clusters take the points farthest from their centres (scikit-learn's rule): the
// farthest first, ties to the lower index. Labels are left as they are, as scikit-learn does.
template <typename T>
int64_t relocate_empty(std::vector<double>& sums, std::vector<double>& weight,
                       const int32_t* labels, const T* X, const T* w, const T* centers,
                       int64_t n, int64_t d, int64_t k) {
  std::vector<int64_t> empty;
  for (int64_t j = 0; j < k; ++j)
    if (weight[j] == 0) empty.push_back(j);
  const int64_t m = static_cast<int64_t>(empty.size());
  if (m == 0) return 0;
  // Keep the m largest (distance, -index) in a min-heap.
  using Item = std::pair<double, int64_t>;
  auto farther = [](const Item& a, const Item& b) {  // a before b in the final order
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  std::vector<Item> heap;
  heap.reserve(m + 1);
  for (int64_t i = 0; i < n; ++i) {
    const T* x = X + i * d;
    const T* c = centers + static_cast<int64_t>(labels[i]) * d;
    const Item item{sq_dist(x, c, d), i};
    if (static_cast<int64_t>(heap.size()) < m) {
      heap.push_back(item);
      std::push_heap(heap.begin(), heap.end(), farther);
    } else if (farther(item, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), farther);
      heap.back() = item;
      std::push_heap(heap.begin(), heap.end(), farther);
    }
  }
  std::sort(heap.begin(), heap.end(), farther);
  for (int64_t e = 0; e < m; ++e) {
    const int64_t far = heap[e].second, fresh = empty[e], old = labels[far];
    const double wf = w ? static_cast<double>(w[far]) : 1.0;
    for (int64_t p = 0; p < d; ++p) {
      const double v = wf * static_cast<double>(X[far * d + p]);
      sums[old * d + p] -= v;
      sums[fresh * d + p] = v;
    }
    weight[fresh] = wf;
    weight[old] -= wf;
  }
  return m;
}

}  // namespace

template <typename T>
LloydStepStats kmeans_lloyd_step(T* centers_new, int32_t* labels, const T* X, const T* w,
                                 const T* centers, int64_t n, int64_t d, int64_t k,
                                 int n_threads) {
  const Packed<T> pk(centers, k, d, use_small_k<T>(k, d));
  std::vector<Partial> parts;
  assign_pass(parts, labels, X, w, pk, n, d, k, /*update=*/true, n_threads);
  // Reduce the chunk partials in chunk order.
  std::vector<double> sums(k * d, 0.0), weight(k, 0.0);
  LloydStepStats st{0, 0.0, 0.0, 0};
  for (const Partial& part : parts) {
    for (int64_t t = 0; t < k * d; ++t) sums[t] += part.sums[t];
    for (int64_t j = 0; j < k; ++j) weight[j] += part.weight[j];
    st.inertia += part.inertia;
    st.n_changed += part.changed;
  }
  st.n_relocated = relocate_empty(sums, weight, labels, X, w, centers, n, d, k);
  for (int64_t j = 0; j < k; ++j) {
    const double scale = weight[j] > 0 ? 1.0 / weight[j] : 1.0;
    for (int64_t p = 0; p < d; ++p) {
      const T c = static_cast<T>(sums[j * d + p] * scale);
      const double diff = static_cast<double>(c) - centers[j * d + p];
      st.center_shift += diff * diff;
      centers_new[j * d + p] = c;
    }
  }
  return st;
}

template <typename T>
double kmeans_assign(int32_t* labels, const T* X, const T* w, const T* centers, int64_t n,
                     int64_t d, int64_t k, int n_threads) {
  const Packed<T> pk(centers, k, d, use_small_k<T>(k, d));
  std::vector<Partial> parts;
  assign_pass(parts, labels, X, w, pk, n, d, k, /*update=*/false, n_threads);
  double inertia = 0;
  for (const Partial& part : parts) inertia += part.inertia;
  return inertia;
}

template <typename T>
double kmeans_inertia(const int32_t* labels, const T* X, const T* w, const T* centers,
                      int64_t n, int64_t d, int64_t k, int n_threads) {
  const int64_t chunks = n_chunks(n);
  std::vector<double> part(chunks, 0.0);
  const int threads = threads_for_chunks(n_threads, chunks, 3.0 * n * d);
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t c = 0; c < chunks; ++c) {
    double acc = 0;
    for (int64_t i = chunk_begin(c, chunks, n); i < chunk_begin(c + 1, chunks, n); ++i) {
      const T* x = X + i * d;
      const T* ctr = centers + static_cast<int64_t>(labels[i]) * d;
      acc += (w ? static_cast<double>(w[i]) : 1.0) * sq_dist(x, ctr, d);
    }
    part[c] = acc;
  }
  double inertia = 0;
  for (double v : part) inertia += v;
  return inertia;
}

namespace {

struct IterStats {
  int64_t n_changed;
  double center_shift;
};

// The Lloyd loop of both drivers: step(new, old) runs one iteration from the centres `old`,
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

// The Lloyd loop for tiny inputs (one chunk, under the one-thread work threshold): no OpenMP
// region, buffers allocated once, no per-iteration inertia (the loop does not use it), and the
// cluster sums go straight to float64. For a 1,000 x 2 fit the general path's set-up per
// iteration cost more than the arithmetic.
template <typename T>
double lloyd_small(T* centers, int32_t* labels, int64_t* n_iter, const T* X, const T* w,
                   int64_t n, int64_t d, int64_t k, int max_iter, double tol) {
  std::vector<T> mind(n), xx(n);
  std::vector<int32_t> lab(n);
  std::vector<double> sums(k * d), weight(k);
  const bool small_k = use_small_k<T>(k, d);  // the tile kmeans_assign (predict) would use
  std::fill(labels, labels + n, -1);
  const bool strict = lloyd_iterate(centers, k * d, max_iter, tol, n_iter, [&](T* nxt, T* cur) {
    nearest(Packed<T>(cur, k, d, small_k), lab.data(), mind.data(), xx.data(), X, n, d, k);
    std::fill(sums.begin(), sums.end(), 0.0);
    std::fill(weight.begin(), weight.end(), 0.0);
    int64_t changed = 0;
    for (int64_t i = 0; i < n; ++i) {
      const int32_t j = lab[i];
      changed += labels[i] != j;
      labels[i] = j;
      const double wi = w ? static_cast<double>(w[i]) : 1.0;
      weight[j] += wi;
      const T* x = X + i * d;
      double* s = sums.data() + j * d;
      for (int64_t p = 0; p < d; ++p) s[p] += wi * static_cast<double>(x[p]);
    }
    relocate_empty(sums, weight, labels, X, w, cur, n, d, k);
    double shift = 0;
    for (int64_t j = 0; j < k; ++j) {
      const double scale = weight[j] > 0 ? 1.0 / weight[j] : 1.0;
      for (int64_t p = 0; p < d; ++p) {
        const T c = static_cast<T>(sums[j * d + p] * scale);
        const double diff = static_cast<double>(c) - cur[j * d + p];
        shift += diff * diff;
        nxt[j * d + p] = c;
      }
    }
    return IterStats{changed, shift};
  });
  if (!strict)
    nearest(Packed<T>(centers, k, d, small_k), labels, mind.data(), xx.data(), X, n, d, k);
  double inertia = 0;  // as kmeans_inertia sums one chunk
  for (int64_t i = 0; i < n; ++i)
    inertia += (w ? static_cast<double>(w[i]) : 1.0) *
               sq_dist(X + i * d, centers + static_cast<int64_t>(labels[i]) * d, d);
  return inertia;
}

}  // namespace

template <typename T>
double kmeans_lloyd(T* centers, int32_t* labels, int64_t* n_iter, const T* X, const T* w,
                    int64_t n, int64_t d, int64_t k, int max_iter, double tol, int n_threads) {
  if (n_chunks(n) == 1 && 2.0 * n * d * k < 2e5)  // one chunk, one thread: set-up dominates
    return lloyd_small(centers, labels, n_iter, X, w, n, d, k, max_iter, tol);
  std::fill(labels, labels + n, -1);
  const bool strict = lloyd_iterate(centers, k * d, max_iter, tol, n_iter, [&](T* nxt, T* cur) {
    const LloydStepStats st = kmeans_lloyd_step(nxt, labels, X, w, cur, n, d, k, n_threads);
    return IterStats{st.n_changed, st.center_shift};
  });
  // A final assignment so that the labels belong to the returned centres.
  if (!strict) kmeans_assign(labels, X, w, centers, n, d, k, n_threads);
  return kmeans_inertia(labels, X, w, centers, n, d, k, n_threads);
}

// ---- k-means++ ------------------------------------------------------------------------------

namespace kmeans_portable {

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

}  // namespace kmeans_portable

namespace {

template <typename T>
void pp_norms(T* xx, const T* X, int64_t rows, int64_t d) {
#if defined(GRADKIT_HAVE_AVX512)
  if (use_avx512<T>()) return kmeans_avx512::pp_norms(xx, X, rows, d);
#endif
  kmeans_portable::pp_norms(xx, X, rows, d);
}

template <typename T>
void pp_tile(double* pots, T* closest, const T* X, const T* xx, const T* w, int64_t rows,
             int64_t d, const T* packed, const T* cn, int64_t m, bool update) {
#if defined(GRADKIT_HAVE_AVX512)
  if (use_avx512<T>())
    return kmeans_avx512::pp_tile(pots, closest, X, xx, w, rows, d, packed, cn, m, update);
#endif
  kmeans_portable::pp_tile(pots, closest, X, xx, w, rows, d, packed, cn, m, update);
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

}  // namespace

// One pass over X per centre. Candidates of round c are drawn before the centre chosen in
// round c - 1 (`pending`) has been folded into `closest`: the draw needs only per-block totals
// of w min(closest, d_pending), which the previous sweep produced, and rescans one block of
// rows for the exact position. The next sweep then folds `pending` in while it measures the
// new candidates, so X is read once per centre and no n x trials matrix is kept.
template <typename T>
void kmeans_plusplus(int64_t* indices, const T* X, const T* w, int64_t n, int64_t d,
                     int64_t n_clusters, int64_t n_local_trials, const double* uniforms,
                     int n_threads) {
  constexpr int64_t B = kmeans_tile::pp_block_rows();
  const int64_t nb = (n + B - 1) / B, L = n_local_trials, M = L + 1;
  auto wt = [w](int64_t i) { return w ? static_cast<double>(w[i]) : 1.0; };
  auto rows_of = [&](int64_t b) { return std::min(B, n - b * B); };
  int nt = n_threads > 0 ? n_threads : omp_get_max_threads();
  if (2.0 * n * d * M < 2e5) nt = 1;
  nt = static_cast<int>(std::min<int64_t>(nt, nb));

  std::vector<T> closest(n, std::numeric_limits<T>::infinity());
  // Row norms are kept for all rounds when that n-vector is small next to X (d >= 32) or
  // small outright; otherwise each sweep recomputes them block by block.
  const bool keep_norms = d >= 32 || n <= (1 << 16);
  std::vector<T> norms(keep_norms ? n : 0);
  if (keep_norms)
    for_each_block(nb, nt, [&](int64_t b) {
      pp_norms(norms.data() + b * B, X + b * B * d, rows_of(b), d);
    });
  // The norms of block b: kept, or computed into buf.
  auto norms_of = [&](int64_t b, T* buf) -> const T* {
    if (keep_norms) return norms.data() + b * B;
    pp_norms(buf, X + b * B * d, rows_of(b), d);
    return buf;
  };
  std::vector<double> pots(nb * M), block_mass(nb);
  std::vector<T> rows_buf(M * d), packed(kmeans_tile::pp_packed_size<T>(M, d)), cn(M);
  std::vector<T> one_packed(kmeans_tile::pp_packed_size<T>(1, d)), scratch(B);
  T one_cn = 0;
  std::vector<int64_t> slot(M);  // the rows measured in the current sweep
  std::vector<double> total(M);

  // Candidate rows gathered and packed, with their squared norms (summed as the Lloyd
  // tile's packing does).
  auto load = [&](const int64_t* idx, int64_t m, T* pk, T* cnorm) {
    for (int64_t t = 0; t < m; ++t) {
      const T* c = X + idx[t] * d;
      std::copy(c, c + d, rows_buf.begin() + t * d);
      T s = 0;
      for (int64_t p = 0; p < d; ++p) {
        const T v = c[p];
        s += v * v;
      }
      cnorm[t] = s;
    }
    kmeans_tile::pp_pack(pk, rows_buf.data(), m, d);
  };
  // Measures rows slot[0..m) over all blocks; when `update`, slot 0 is folded into closest.
  auto sweep = [&](int64_t m, bool update) {
    load(slot.data(), m, packed.data(), cn.data());
    for_each_block(nb, nt, [&](int64_t b) {
      double* pb = pots.data() + b * M;
      std::fill(pb, pb + m, 0.0);
      T buf[B];
      pp_tile(pb, closest.data() + b * B, X + b * B * d, norms_of(b, buf),
              w ? w + b * B : nullptr, rows_of(b), d, packed.data(), cn.data(), m, update);
    });
    for (int64_t t = 0; t < m; ++t) {
      double s = 0;
      for (int64_t b = 0; b < nb; ++b) s += pots[b * M + t];
      total[t] = s;
    }
  };
  // The first row whose running sum of mass reaches target (clipped to n - 1): whole blocks by
  // their totals, then row by row inside one block.
  auto draw = [&](double target, auto&& row_masses) -> int64_t {
    int64_t b = 0;
    double run = 0;
    while (b < nb - 1 && run + block_mass[b] < target) run += block_mass[b++];
    for (; b < nb; ++b) {
      const double* mass = row_masses(b);
      for (int64_t r = 0; r < rows_of(b); ++r) {
        run += mass[r];
        if (run >= target) return b * B + r;
      }
    }
    return n - 1;
  };
  std::vector<double> mass_buf(B);

  // First centre: drawn with probability w.
  for (int64_t b = 0; b < nb; ++b) {
    double s = 0;
    for (int64_t i = b * B; i < b * B + rows_of(b); ++i) s += wt(i);
    block_mass[b] = s;
  }
  double wsum = 0;
  for (double s : block_mass) wsum += s;
  indices[0] = draw(uniforms[0] * wsum, [&](int64_t b) {
    for (int64_t r = 0; r < rows_of(b); ++r) mass_buf[r] = wt(b * B + r);
    return mass_buf.data();
  });
  slot[0] = indices[0];
  sweep(1, /*update=*/true);
  double current = total[0];
  for (int64_t b = 0; b < nb; ++b) block_mass[b] = pots[b * M];
  bool pending = false;  // whether slot[0] is chosen but not yet folded into closest

  for (int64_t c = 1; c < n_clusters; ++c) {
    // Row masses of block b: w min(closest, d_pending), computed as the next sweep will.
    auto masses = [&](int64_t b) {
      const int64_t rows = rows_of(b);
      std::copy(closest.begin() + b * B, closest.begin() + b * B + rows, scratch.begin());
      if (pending) {
        double unused = 0;
        T buf[B];
        pp_tile(&unused, scratch.data(), X + b * B * d, norms_of(b, buf),
                w ? w + b * B : nullptr, rows, d, one_packed.data(), &one_cn, 1, true);
      }
      for (int64_t r = 0; r < rows; ++r)
        mass_buf[r] = wt(b * B + r) * static_cast<double>(scratch[r]);
      return mass_buf.data();
    };
    const int64_t first = pending ? 1 : 0;
    for (int64_t t = 0; t < L; ++t)
      slot[first + t] = draw(uniforms[1 + (c - 1) * L + t] * current, masses);
    sweep(first + L, pending);
    const int64_t best =
        std::min_element(total.begin() + first, total.begin() + first + L) - total.begin();
    current = total[best];
    indices[c] = slot[best];
    for (int64_t b = 0; b < nb; ++b) block_mass[b] = pots[b * M + best];
    // The chosen row becomes slot 0 of the next sweep, and is packed alone for the rescans.
    slot[0] = indices[c];
    pending = true;
    load(slot.data(), 1, one_packed.data(), &one_cn);
  }
}

template <typename T>
double kmeans_mean_variance(const T* X, int64_t n, int64_t d, int n_threads) {
  const int64_t chunks = n_chunks(n);
  const int threads = threads_for_chunks(n_threads, chunks, 3.0 * n * d);
  std::vector<double> part(chunks * d), mean(d, 0.0), ss(d, 0.0);
  // Two passes (mean, then squared deviations), each by fixed chunks of rows added in order.
  for (int pass = 0; pass < 2; ++pass) {
    for_each_block(chunks, threads, [&](int64_t c) {
      double* acc = part.data() + c * d;
      std::fill(acc, acc + d, 0.0);
      for (int64_t i = chunk_begin(c, chunks, n); i < chunk_begin(c + 1, chunks, n); ++i) {
        const T* x = X + i * d;
        if (pass == 0) {
          for (int64_t p = 0; p < d; ++p) acc[p] += static_cast<double>(x[p]);
        } else {
          for (int64_t p = 0; p < d; ++p) {
            const double diff = static_cast<double>(x[p]) - mean[p];
            acc[p] += diff * diff;
          }
        }
      }
    });
    std::vector<double>& out = pass == 0 ? mean : ss;
    for (int64_t c = 0; c < chunks; ++c)
      for (int64_t p = 0; p < d; ++p) out[p] += part[c * d + p];
    if (pass == 0)
      for (double& v : mean) v /= static_cast<double>(n);
  }
  double total = 0;
  for (double v : ss) total += v / static_cast<double>(n);
  return total / static_cast<double>(d);
}

#define GK_KMEANS_INSTANTIATE(T)                                                              \
  template LloydStepStats kmeans_lloyd_step<T>(T*, int32_t*, const T*, const T*, const T*,      \
                                               int64_t, int64_t, int64_t, int);                 \
  template double kmeans_assign<T>(int32_t*, const T*, const T*, const T*, int64_t, int64_t,    \
                                   int64_t, int);                                               \
  template double kmeans_inertia<T>(const int32_t*, const T*, const T*, const T*, int64_t,      \
                                    int64_t, int64_t, int);                                     \
  template double kmeans_lloyd<T>(T*, int32_t*, int64_t*, const T*, const T*, int64_t, int64_t, \
                                  int64_t, int, double, int);                                   \
  template void kmeans_plusplus<T>(int64_t*, const T*, const T*, int64_t, int64_t, int64_t,     \
                                   int64_t, const double*, int);                                \
  template double kmeans_mean_variance<T>(const T*, int64_t, int64_t, int);
GK_KMEANS_INSTANTIATE(float)
GK_KMEANS_INSTANTIATE(double)

}  // namespace gk
