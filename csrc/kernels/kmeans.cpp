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

template <typename T>
void dots_rows(T* dots, const T* X, int64_t rows, int64_t d, const T* packed, int64_t ncols) {
  constexpr int64_t NR = kmeans_tile::panel_width<T>();
  T dot[NR];
  for (int64_t i = 0; i < rows; ++i) {
    const T* x = X + i * d;
    for (int64_t c = 0; c < NR; ++c) dot[c] = T(0);
    for (int64_t p = 0; p < d; ++p)
      for (int64_t c = 0; c < NR; ++c) dot[c] += x[p] * packed[p * NR + c];
    for (int64_t c = 0; c < ncols; ++c) dots[i * ncols + c] = dot[c];
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
void dots_rows(T* dots, const T* X, int64_t rows, int64_t d, const T* packed, int64_t ncols) {
#if defined(GRADKIT_HAVE_AVX512)
  if (use_avx512<T>()) return kmeans_avx512::dots_rows(dots, X, rows, d, packed, ncols);
#endif
  kmeans_portable::dots_rows(dots, X, rows, d, packed, ncols);
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
        if (pk.small_k)
          argmin_rows_small_k(lab.data(), mind.data(), xxb.data(), X + i0 * d, rows, d,
                              pk.data.data(), pk.cnorm.data(), k);
        else
          argmin_rows(lab.data(), mind.data(), X + i0 * d, rows, d, pk.data.data(),
                      pk.cnorm.data(), k);
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

template <typename T>
double kmeans_lloyd(T* centers, int32_t* labels, int64_t* n_iter, const T* X, const T* w,
                    int64_t n, int64_t d, int64_t k, int max_iter, double tol, int n_threads) {
  std::vector<T> other(centers, centers + k * d);
  T* cur = centers;
  T* nxt = other.data();
  std::fill(labels, labels + n, -1);
  bool strict = false;
  int it = 0;
  for (; it < max_iter; ++it) {
    const LloydStepStats st = kmeans_lloyd_step(nxt, labels, X, w, cur, n, d, k, n_threads);
    std::swap(cur, nxt);
    if (st.n_changed == 0) {  // labels did not change: strict convergence
      strict = true;
      break;
    }
    if (st.center_shift <= tol) break;
  }
  if (cur != centers) std::copy(cur, cur + k * d, centers);
  // A final assignment so that the labels belong to the returned centres.
  if (!strict) kmeans_assign(labels, X, w, centers, n, d, k, n_threads);
  *n_iter = std::min(it + 1, max_iter);
  return kmeans_inertia(labels, X, w, centers, n, d, k, n_threads);
}

template <typename T>
void kmeans_plusplus(int64_t* indices, const T* X, const T* w, int64_t n, int64_t d,
                     int64_t n_clusters, int64_t n_local_trials, const double* uniforms,
                     int n_threads) {
  const int64_t chunks = n_chunks(n);
  const int64_t L = n_local_trials;
  const int threads = threads_for_chunks(n_threads, chunks, 2.0 * n * d * L);
  const int64_t B = block_rows<T>(d);
  auto wt = [w](int64_t i) { return w ? static_cast<double>(w[i]) : 1.0; };
  std::vector<T> closest(n);
  std::vector<double> chunk_sum(chunks);

  // Inverse-CDF draws over the weights `mass(i)`, by chunk totals then a scan in one chunk:
  // the first i whose running sum reaches u * total (clipped to n - 1).
  auto draw = [&](auto mass, double target) -> int64_t {
    int64_t c = 0;
    double run = 0;
    while (c < chunks - 1 && run + chunk_sum[c] < target) run += chunk_sum[c++];
    for (int64_t i = chunk_begin(c, chunks, n); i < n; ++i) {
      run += mass(i);
      if (run >= target) return i;
    }
    return n - 1;
  };
  auto chunk_totals = [&](auto mass) {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t c = 0; c < chunks; ++c) {
      double s = 0;
      for (int64_t i = chunk_begin(c, chunks, n); i < chunk_begin(c + 1, chunks, n); ++i)
        s += mass(i);
      chunk_sum[c] = s;
    }
    double total = 0;
    for (double s : chunk_sum) total += s;
    return total;
  };

  // Squared distances from every row to `ncand` rows of X (packed once), block by block;
  // `visit(i, dist_row)` consumes them in row order within each chunk.
  auto sweep = [&](const int64_t* cand, int64_t ncand, std::vector<double>& pot_out,
                   bool update_closest) {
    std::vector<T> cands(ncand * d);
    for (int64_t c = 0; c < ncand; ++c)
      std::copy(X + cand[c] * d, X + cand[c] * d + d, cands.begin() + c * d);
    const Packed<T> pk(cands.data(), ncand, d);
    std::vector<double> pots(chunks * ncand, 0.0);
#pragma omp parallel num_threads(threads)
    {
      std::vector<T> dots(B * ncand);
#pragma omp for schedule(static)
      for (int64_t c = 0; c < chunks; ++c) {
        double* pot = pots.data() + c * ncand;
        const int64_t end = chunk_begin(c + 1, chunks, n);
        for (int64_t i0 = chunk_begin(c, chunks, n); i0 < end; i0 += B) {
          const int64_t rows = std::min(B, end - i0);
#if defined(GRADKIT_HAVE_AVX512)
          if (use_avx512<T>() &&
              kmeans_avx512::pp_sweep_rows(pot, closest.data() + i0, X + i0 * d,
                                           w ? w + i0 : nullptr, rows, d, pk.data.data(),
                                           pk.cnorm.data(), ncand, update_closest))
            continue;
#endif
          dots_rows(dots.data(), X + i0 * d, rows, d, pk.data.data(), ncand);
          for (int64_t r = 0; r < rows; ++r) {
            const int64_t i = i0 + r;
            const T* x = X + i * d;
            const T xx = static_cast<T>(sq_norm(x, d));
            for (int64_t cc = 0; cc < ncand; ++cc) {
              T dist = xx + pk.cnorm[cc] - T(2) * dots[r * ncand + cc];
              dist = std::max(dist, T(0));
              dist = std::min(dist, closest[i]);
              if (update_closest) closest[i] = dist;
              pot[cc] += wt(i) * static_cast<double>(dist);
            }
          }
        }
      }
    }
    pot_out.assign(ncand, 0.0);
    for (int64_t c = 0; c < chunks; ++c)
      for (int64_t cc = 0; cc < ncand; ++cc) pot_out[cc] += pots[c * ncand + cc];
  };

  const double wsum = chunk_totals(wt);
  indices[0] = draw(wt, uniforms[0] * wsum);
  std::fill(closest.begin(), closest.end(), std::numeric_limits<T>::infinity());
  std::vector<double> pot;
  sweep(indices, 1, pot, /*update_closest=*/true);
  double current = pot[0];
  std::vector<int64_t> cand(L);
  auto mass = [&](int64_t i) { return wt(i) * static_cast<double>(closest[i]); };
  for (int64_t c = 1; c < n_clusters; ++c) {
    chunk_totals(mass);
    for (int64_t t = 0; t < L; ++t) cand[t] = draw(mass, uniforms[1 + (c - 1) * L + t] * current);
    sweep(cand.data(), L, pot, /*update_closest=*/false);
    const int64_t best = std::min_element(pot.begin(), pot.end()) - pot.begin();
    current = pot[best];
    indices[c] = cand[best];
    sweep(cand.data() + best, 1, pot, /*update_closest=*/true);
  }
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
                                   int64_t, const double*, int);
GK_KMEANS_INSTANTIATE(float)
GK_KMEANS_INSTANTIATE(double)

}  // namespace gk
