// The Lloyd driver: one fused pass over X per iteration (labels, cluster sums), the loop to
// convergence with scikit-learn's rules, and the assignment pass that predict uses.
#include <algorithm>
#include <vector>

#include "kernels/kmeans.hpp"
#include "kernels/kmeans/common.hpp"

namespace gk {
namespace kmeans_detail {

// Lloyd's labeler: every row of the block through the tile, inertia in the expanded form.
template <typename T>
auto tile_labeler(const Packed<T>& pk, const T* X, const T* w, int64_t d, int64_t k) {
  return [&pk, X, w, d, k](int64_t B) {
    return [&pk, X, w, d, k, mind = std::vector<T>(B), xxb = std::vector<T>(B)](
               int64_t i0, int64_t rows, int32_t* lab, Partial& part) mutable {
      const T* Xb = X + i0 * d;
      nearest(pk, lab, mind.data(), xxb.data(), Xb, rows, d, k);
      for (int64_t r = 0; r < rows; ++r) {
        const double xx = pk.small_k ? xxb[r] : sq_norm_fast(Xb + r * d, d);
        const double wi = w ? static_cast<double>(w[i0 + r]) : 1.0;
        part.inertia += wi * std::max(0.0, xx + static_cast<double>(mind[r]));
      }
    };
  };
}

// The Lloyd loop for tiny inputs (one chunk, under the one-thread work threshold): no OpenMP
// region, buffers allocated once, no per-iteration inertia (the loop does not use it), and the
// cluster sums go straight to float64. For a 1,000 x 2 fit the general path's set-up per
// iteration cost more than the arithmetic.
template <typename T>
double lloyd_small_fit(T* centers, int32_t* labels, int64_t* n_iter, const T* X, const T* w,
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
    return IterStats{changed, centers_from_sums(nxt, sums, weight, cur, d, k)};
  });
  if (!strict)
    nearest(Packed<T>(centers, k, d, small_k), labels, mind.data(), xx.data(), X, n, d, k);
  double inertia = 0;  // as kmeans_inertia sums one chunk
  for (int64_t i = 0; i < n; ++i)
    inertia += (w ? static_cast<double>(w[i]) : 1.0) *
               sq_dist(X + i * d, centers + static_cast<int64_t>(labels[i]) * d, d);
  return inertia;
}

bool is_small_fit(int64_t n, int64_t d, int64_t k) {  // one chunk, one thread: set-up dominates
  return n_chunks(n) == 1 && 2.0 * n * d * k < 2e5;
}

// One Lloyd pass by fixed chunks of rows (labels, and per chunk the float64 sums, weights and
// inertia), not yet reduced: kmeans_lloyd_step reduces it here, gradkit.cluster.dask across
// processes (kernels/cluster_partials.cpp).
template <typename T>
void lloyd_pass(std::vector<Partial>& parts, int32_t* labels, const T* X, const T* w,
                const T* centers, int64_t n, int64_t d, int64_t k, int n_threads) {
  const Packed<T> pk(centers, k, d, use_small_k<T>(k, d));
  chunked_pass(parts, labels, X, w, n, d, k, /*update=*/true, n_threads, 2.0 * n * d * k,
               tile_labeler(pk, X, w, d, k));
}

template void lloyd_pass<float>(std::vector<Partial>&, int32_t*, const float*, const float*,
                                const float*, int64_t, int64_t, int64_t, int);
template void lloyd_pass<double>(std::vector<Partial>&, int32_t*, const double*, const double*,
                                 const double*, int64_t, int64_t, int64_t, int);

template double lloyd_small_fit<float>(float*, int32_t*, int64_t*, const float*, const float*,
                                       int64_t, int64_t, int64_t, int, double);
template double lloyd_small_fit<double>(double*, int32_t*, int64_t*, const double*,
                                        const double*, int64_t, int64_t, int64_t, int, double);

}  // namespace kmeans_detail

using namespace kmeans_detail;

template <typename T>
LloydStepStats kmeans_lloyd_step(T* centers_new, int32_t* labels, const T* X, const T* w,
                                 const T* centers, int64_t n, int64_t d, int64_t k,
                                 int n_threads) {
  std::vector<Partial> parts;
  lloyd_pass(parts, labels, X, w, centers, n, d, k, n_threads);
  return reduce_and_update(centers_new, parts, labels, X, w, centers, n, d, k);
}

template <typename T>
double kmeans_assign(int32_t* labels, const T* X, const T* w, const T* centers, int64_t n,
                     int64_t d, int64_t k, int n_threads) {
  const Packed<T> pk(centers, k, d, use_small_k<T>(k, d));
  std::vector<Partial> parts;
  chunked_pass(parts, labels, X, w, n, d, k, /*update=*/false, n_threads, 2.0 * n * d * k,
               tile_labeler(pk, X, w, d, k));
  double inertia = 0;
  for (const Partial& part : parts) inertia += part.inertia;
  return inertia;
}

template <typename T>
double kmeans_lloyd(T* centers, int32_t* labels, int64_t* n_iter, const T* X, const T* w,
                    int64_t n, int64_t d, int64_t k, int max_iter, double tol, int n_threads) {
  if (is_small_fit(n, d, k))
    return lloyd_small_fit(centers, labels, n_iter, X, w, n, d, k, max_iter, tol);
  std::fill(labels, labels + n, -1);
  const bool strict = lloyd_iterate(centers, k * d, max_iter, tol, n_iter, [&](T* nxt, T* cur) {
    const LloydStepStats st = kmeans_lloyd_step(nxt, labels, X, w, cur, n, d, k, n_threads);
    return IterStats{st.n_changed, st.center_shift};
  });
  // A final assignment so that the labels belong to the returned centres.
  if (!strict) kmeans_assign(labels, X, w, centers, n, d, k, n_threads);
  return kmeans_inertia(labels, X, w, centers, n, d, k, n_threads);
}

#define GK_KMEANS_LLOYD_INSTANTIATE(T)                                                          \
  template LloydStepStats kmeans_lloyd_step<T>(T*, int32_t*, const T*, const T*, const T*,      \
                                               int64_t, int64_t, int64_t, int);                 \
  template double kmeans_assign<T>(int32_t*, const T*, const T*, const T*, int64_t, int64_t,    \
                                   int64_t, int);                                               \
  template double kmeans_lloyd<T>(T*, int32_t*, int64_t*, const T*, const T*, int64_t, int64_t, \
                                  int64_t, int, double, int);
GK_KMEANS_LLOYD_INSTANTIATE(float)
GK_KMEANS_LLOYD_INSTANTIATE(double)

}  // namespace gk
