// k-means kernels: one pass over X per Lloyd iteration, greedy k-means++, and the assignment
// pass. Row-major throughout: X is (n, d), centers (k, d), sample weights w (n,) or nullptr
// for unit weights, labels int32 (n,).
//
// Work is split into fixed chunks of rows whose number depends on n only; each chunk keeps
// its own float64 partial sums, counts and inertia, and the partials are added in chunk order,
// so the results are bitwise identical for any thread count. Memory beyond the caller's
// arrays: chunks x k x d doubles of partials plus one small row block per thread; never n x k.
// Kernels trust their input: finite values, n >= k >= 1, d >= 1, weights >= 0.
#pragma once

#include <cstdint>

namespace gk {

struct LloydStepStats {
  int64_t n_changed;      // labels that differ from the labels passed in
  double center_shift;    // sum over clusters of ||new - old||^2
  double inertia;         // sum w ||x - c_label||^2 with the old centres (expanded form)
  int64_t n_relocated;    // empty clusters filled with far points
};

// One Lloyd iteration (scikit-learn semantics). labels is INOUT: the previous labels in
// (-1 on the first iteration), the labels w.r.t. `centers` out. centers_new (k, d) is OUT:
// weighted means of the new clusters; an empty cluster takes the point farthest from its
// centre (farthest first, ties to the lower index; never a cluster's last point, a point of
// weight 0 or one on its centre), which leaves its old cluster; one nothing can fill gets the
// heaviest cluster's centre.
template <typename T>
LloydStepStats kmeans_lloyd_step(T* centers_new, int32_t* labels, const T* X, const T* w,
                                 const T* centers, int64_t n, int64_t d, int64_t k,
                                 int n_threads);

// Assignment only: labels (OUT) = nearest centre (first on ties); returns the inertia in the
// expanded form ||x||^2 + ||c||^2 - 2 x.c (clipped at 0).
template <typename T>
double kmeans_assign(int32_t* labels, const T* X, const T* w, const T* centers, int64_t n,
                     int64_t d, int64_t k, int n_threads);

// sum_i w_i ||x_i - c_{labels_i}||^2 computed from the differences, in float64.
template <typename T>
double kmeans_inertia(const int32_t* labels, const T* X, const T* w, const T* centers,
                      int64_t n, int64_t d, int64_t k, int n_threads);

// The whole Lloyd loop: centers INOUT (initial centres in, final out), labels OUT.
// tol is absolute (already scaled by the data variance). Returns the inertia; *n_iter OUT.
template <typename T>
double kmeans_lloyd(T* centers, int32_t* labels, int64_t* n_iter, const T* X, const T* w,
                    int64_t n, int64_t d, int64_t k, int max_iter, double tol, int n_threads);

// Exact k-means algorithms: the same labels, centres and iteration count as Lloyd (the bounds
// carry a margin for the rounding of the tile's expanded-form distances, so a row they skip
// is a row whose tile label could not change), differing only in the distances computed.
enum class KMeansAlgorithm : int {
  lloyd = 0,    // every distance, every iteration
  hamerly = 1,  // one upper and one lower bound per row: 3 extra n-vectors of doubles
  elkan = 2,    // one lower bound per row and centre: n x k floats, plus 2 n-vectors
};

// kmeans_lloyd with the algorithm chosen; *n_distances OUT = row-centre distances computed
// over the whole fit (Lloyd computes n k per iteration).
template <typename T>
double kmeans_fit(T* centers, int32_t* labels, int64_t* n_iter, int64_t* n_distances,
                  const T* X, const T* w, int64_t n, int64_t d, int64_t k, int max_iter,
                  double tol, KMeansAlgorithm algorithm, int n_threads);

// Greedy k-means++: indices (OUT, n_clusters) of the chosen rows. uniforms holds
// 1 + (n_clusters - 1) * n_local_trials numbers in [0, 1): the first picks the first centre
// with probability proportional to w, each later group of n_local_trials picks candidates
// with probability proportional to w * D(x)^2. Closest squared distances are kept in T and
// updated incrementally, in the same pass over X that measures the next candidates (one extra
// n-vector, plus the row norms when d >= 32 or n <= 65536; no n x trials matrix).
template <typename T>
void kmeans_plusplus(int64_t* indices, const T* X, const T* w, int64_t n, int64_t d,
                     int64_t n_clusters, int64_t n_local_trials, const double* uniforms,
                     int n_threads);

// np.mean(np.var(X, axis=0)) in float64 (two passes by fixed chunks of rows): the scale of
// scikit-learn's tol. Not finite when X holds NaN or inf.
template <typename T>
double kmeans_mean_variance(const T* X, int64_t n, int64_t d, int n_threads);

}  // namespace gk
