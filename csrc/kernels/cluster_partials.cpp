// Per-chunk Lloyd partials (cluster_partials.hpp): kmeans_assign's distance tile, then one
// sweep that adds each row into its cluster's float64 sums. The chunk is a slice of one
// worker's data, so the second sweep mostly reads rows still in cache from the first.
#include "kernels/cluster_partials.hpp"

#include <cstddef>
#include <vector>

#include "kernels/kmeans.hpp"

namespace gk {

template <typename T>
double kmeans_chunk_partials(double* sums, double* weight, const T* X, const T* w,
                             const T* centers, int64_t n, int64_t d, int64_t k, int n_threads) {
  std::vector<int32_t> labels(static_cast<size_t>(n));
  const double inertia = kmeans_assign(labels.data(), X, w, centers, n, d, k, n_threads);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t j = labels[i];
    const double wi = w ? static_cast<double>(w[i]) : 1.0;
    const T* x = X + i * d;
    double* s = sums + j * d;
    for (int64_t p = 0; p < d; ++p) s[p] += wi * static_cast<double>(x[p]);
    weight[j] += wi;
  }
  return inertia;
}

template double kmeans_chunk_partials<float>(double*, double*, const float*, const float*,
                                             const float*, int64_t, int64_t, int64_t, int);
template double kmeans_chunk_partials<double>(double*, double*, const double*, const double*,
                                              const double*, int64_t, int64_t, int64_t, int);

}  // namespace gk
