// Per-chunk Lloyd partials (cluster_partials.hpp): single-machine Lloyd's own pass over the
// chunk (labels, cluster sums, weights and inertia from one read of each row), then its
// internal chunk results added in order. The driver adds the chunks' results and relocates
// empty clusters, as kmeans_lloyd_step's reduce_and_update does on one machine.
#include "kernels/cluster_partials.hpp"

#include <algorithm>
#include <vector>

#include "kernels/kmeans/common.hpp"

namespace gk {

template <typename T>
double kmeans_chunk_partials(int32_t* labels, double* sums, double* weight, const T* X,
                             const T* w, const T* centers, int64_t n, int64_t d, int64_t k,
                             int n_threads) {
  std::fill(labels, labels + n, -1);  // the pass counts changed labels; nothing to compare here
  std::vector<kmeans_detail::Partial> parts;
  kmeans_detail::lloyd_pass(parts, labels, X, w, centers, n, d, k, n_threads);
  double inertia = 0;
  for (const kmeans_detail::Partial& part : parts) {
    for (int64_t t = 0; t < k * d; ++t) sums[t] += part.sums[t];
    for (int64_t j = 0; j < k; ++j) weight[j] += part.weight[j];
    inertia += part.inertia;
  }
  return inertia;
}

template double kmeans_chunk_partials<float>(int32_t*, double*, double*, const float*,
                                             const float*, const float*, int64_t, int64_t,
                                             int64_t, int);
template double kmeans_chunk_partials<double>(int32_t*, double*, double*, const double*,
                                              const double*, const double*, int64_t, int64_t,
                                              int64_t, int);

}  // namespace gk
