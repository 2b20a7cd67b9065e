// What every k-means driver shares after its pass over X: the chunk partials reduced in
// order, empty clusters relocated, the new centres; and the whole-data helpers (inertia from
// the differences, the variance that scales tol), plus the L2 size the blocks are cut to.
#include <algorithm>
#include <vector>

#include "kernels/kmeans.hpp"
#include "kernels/kmeans/common.hpp"

namespace gk {
namespace kmeans_detail {

int64_t l2_cache_bytes() { return cpu_info().l2_bytes; }

// Empty clusters (weight 0) take the points farthest from their centres, farthest first, ties
// to the lower index; each point leaves its old cluster's sums and keeps its label, as in
// scikit-learn. Never taken: a cluster's last point in that order (its nearest: taking a
// cluster's only point just empties another), a point of weight 0 (it cannot fill a cluster),
// and a point nearer its centre than the rounding of the assignment's ||c||^2 - 2 x.c in T
// (it sits on its centre: moving it would only duplicate a centre, and which of two such points
// is "farther" is rounding noise that can make the fit oscillate). Clusters nothing can fill
// are placed by centers_from_sums. The rule of ops_numpy._kmeans_relocate_empty (the spec).
template <typename T>
int64_t relocate_empty(std::vector<double>& sums, std::vector<double>& weight,
                       const int32_t* labels, const T* X, const T* w, const T* centers,
                       int64_t n, int64_t d, int64_t k) {
  std::vector<int64_t> empty;
  for (int64_t j = 0; j < k; ++j)
    if (weight[j] == 0) empty.push_back(j);
  const int64_t m = static_cast<int64_t>(empty.size());
  if (m == 0) return 0;
  using Item = std::pair<double, int64_t>;  // (distance to its centre, index)
  auto farther = [](const Item& a, const Item& b) {  // a before b in the order
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  auto positive = [w](int64_t i) { return w ? w[i] > 0 : true; };
  const double eps = std::numeric_limits<T>::epsilon();
  // Each cluster's keeper: its point of positive weight that comes last in the order.
  std::vector<double> dist(n);
  std::vector<int64_t> keeper(k, -1);
  for (int64_t i = 0; i < n; ++i) {
    if (!positive(i)) continue;
    const int64_t j = labels[i];
    dist[i] = sq_dist(X + i * d, centers + j * d, d);
    if (keeper[j] < 0 || farther(Item{dist[keeper[j]], keeper[j]}, Item{dist[i], i}))
      keeper[j] = i;
  }
  // The first m of the others off their centres, in a min-heap (front: the last kept).
  std::vector<Item> heap;
  heap.reserve(m + 1);
  for (int64_t i = 0; i < n; ++i) {
    if (!positive(i) || keeper[labels[i]] == i) continue;
    const T* x = X + i * d;
    const T* c = centers + static_cast<int64_t>(labels[i]) * d;
    if (!(dist[i] > eps * (sq_norm(x, d) + sq_norm(c, d)))) continue;
    const Item item{dist[i], i};
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
  const int64_t filled = static_cast<int64_t>(heap.size());
  for (int64_t e = 0; e < filled; ++e) {
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
  return filled;
}

// A cluster still empty gets the centre of the heaviest cluster (the first on ties), as
// scikit-learn places it: on the data, and equal to it bit for bit (the same expression), so
// the two tie exactly in the next assignment.
template <typename T>
double centers_from_sums(T* centers_new, const std::vector<double>& sums,
                         const std::vector<double>& weight, const T* centers, int64_t d,
                         int64_t k) {
  const int64_t heaviest = std::max_element(weight.begin(), weight.end()) - weight.begin();
  double shift = 0;
  for (int64_t j = 0; j < k; ++j) {
    const int64_t src = weight[j] > 0 ? j : heaviest;
    const double scale = weight[src] > 0 ? 1.0 / weight[src] : 1.0;
    for (int64_t p = 0; p < d; ++p) {
      const T c = static_cast<T>(sums[src * d + p] * scale);
      const double diff = static_cast<double>(c) - centers[j * d + p];
      shift += diff * diff;
      centers_new[j * d + p] = c;
    }
  }
  return shift;
}

template <typename T>
LloydStepStats reduce_and_update(T* centers_new, const std::vector<Partial>& parts,
                                 const int32_t* labels, const T* X, const T* w,
                                 const T* centers, int64_t n, int64_t d, int64_t k) {
  std::vector<double> sums(k * d, 0.0), weight(k, 0.0);
  LloydStepStats st{0, 0.0, 0.0, 0};
  for (const Partial& part : parts) {
    for (int64_t t = 0; t < k * d; ++t) sums[t] += part.sums[t];
    for (int64_t j = 0; j < k; ++j) weight[j] += part.weight[j];
    st.inertia += part.inertia;
    st.n_changed += part.changed;
  }
  st.n_relocated = relocate_empty(sums, weight, labels, X, w, centers, n, d, k);
  st.center_shift = centers_from_sums(centers_new, sums, weight, centers, d, k);
  return st;
}

#define GK_KMEANS_UPDATE_INSTANTIATE(T)                                                        \
  template int64_t relocate_empty<T>(std::vector<double>&, std::vector<double>&, const int32_t*, \
                                     const T*, const T*, const T*, int64_t, int64_t, int64_t);   \
  template double centers_from_sums<T>(T*, const std::vector<double>&,                          \
                                       const std::vector<double>&, const T*, int64_t, int64_t);  \
  template LloydStepStats reduce_and_update<T>(T*, const std::vector<Partial>&, const int32_t*,  \
                                               const T*, const T*, const T*, int64_t, int64_t,   \
                                               int64_t);
GK_KMEANS_UPDATE_INSTANTIATE(float)
GK_KMEANS_UPDATE_INSTANTIATE(double)

}  // namespace kmeans_detail

using namespace kmeans_detail;

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

#define GK_KMEANS_WHOLE_INSTANTIATE(T)                                                          \
  template double kmeans_inertia<T>(const int32_t*, const T*, const T*, const T*, int64_t,      \
                                    int64_t, int64_t, int);                                     \
  template double kmeans_mean_variance<T>(const T*, int64_t, int64_t, int);
GK_KMEANS_WHOLE_INSTANTIATE(float)
GK_KMEANS_WHOLE_INSTANTIATE(double)

}  // namespace gk
