// Per-chunk partial results of one Lloyd iteration, for a driver that reduces them across
// chunks of rows held by different processes (gradkit.cluster.dask). Row-major X (n, d),
// centers (k, d), w (n,) or nullptr for unit weights.
#pragma once

#include <cstdint>

namespace gk {

// Assigns each row to its nearest centre with kmeans_assign's tile (first on ties) and adds
// w x into sums (k, d) and w into weight (k,), both float64 and accumulated (+=), in row
// order. Returns the inertia of the chunk w.r.t. `centers` (expanded form, as kmeans_assign).
// Scratch: n int32 labels.
template <typename T>
double kmeans_chunk_partials(double* sums, double* weight, const T* X, const T* w,
                             const T* centers, int64_t n, int64_t d, int64_t k, int n_threads);

}  // namespace gk
