// Per-chunk partial results of one Lloyd iteration, for a driver that reduces them across
// chunks of rows held by different processes (gradkit.cluster.dask). Row-major X (n, d),
// centers (k, d), w (n,) or nullptr for unit weights.
#pragma once

#include <cstdint>

namespace gk {

// One pass over the chunk, the pass of single-machine Lloyd (kmeans/lloyd.cpp lloyd_pass):
// labels (OUT, n) = the nearest centre by the k-means tile (first on ties); sums (k, d) += the
// weighted rows of each cluster and weight (k,) += their weights, both float64, summed as
// single-machine KMeans sums them; returns the chunk's inertia w.r.t. `centers` (expanded
// form, as kmeans_assign).
template <typename T>
double kmeans_chunk_partials(int32_t* labels, double* sums, double* weight, const T* X,
                             const T* w, const T* centers, int64_t n, int64_t d, int64_t k,
                             int n_threads);

}  // namespace gk
