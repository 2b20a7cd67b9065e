// Bound-based exact k-means on the Lloyd driver's pass: Hamerly (2010) keeps per row an upper
// bound on the distance to its centre and one lower bound on the distance to every other
// centre; Elkan (2003) keeps one lower bound per row and centre. A row whose bounds separate
// its centre from the others keeps its label without a distance computed.
//
// Exactness: the labels must be the tile's (Lloyd's) labels, and the tile ranks centres by
// ||c||^2 - 2 x.c rounded in T. The bounds hold for true distances, and a row is skipped only
// when the gap exceeds twice the worst rounding of that expanded form (tile_error), so the
// tile could not have picked another centre. Rows the bounds cannot settle go through the same
// tile as Lloyd. The centre sums come from the same chunked pass (common.hpp), so centres and
// iteration counts are Lloyd's too. Bounds move by the centres' drift at the start of the
// next pass, the pass that also sums the new clusters: one read of X per iteration.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/kmeans.hpp"
#include "kernels/kmeans/common.hpp"

namespace gk {
namespace kmeans_detail {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Relative error allowed for a distance computed in float64 from d products (d ulps of 1e-16
// stay far below this for any d the data can have).
constexpr double kSlack = 1e-9;

// A bound on |tile value - (||c||^2 - 2 x.c)|: the dot product and ||c||^2 are d-term sums in
// T (error <= d u (||x||^2 + ||c||^2) / 2 and d u ||c||^2), plus one rounding of the result;
// doubled for safety.
template <typename T>
double tile_error(double xx, double cmax2, int64_t d) {
  return 2.0 * static_cast<double>(d + 2) * std::numeric_limits<T>::epsilon() * (xx + cmax2);
}

inline double upper_of(double sq) { return std::sqrt(std::max(sq, 0.0)) * (1 + kSlack); }
inline double lower_of(double sq) { return std::sqrt(std::max(sq, 0.0)) * (1 - kSlack); }

// Whether a centre within U of x is the tile's choice over every centre at least L away (a
// lower bound that drifted below 0 bounds nothing: its square must not count).
inline bool separated(double U, double L, double err) {
  return L > 0 && U * U + err < L * L - err;
}

// A float no larger than v (lower bounds stored in float must stay lower bounds).
inline float round_down(double v) {
  float f = static_cast<float>(v);
  if (static_cast<double>(f) > v) f = std::nextafter(f, -std::numeric_limits<float>::infinity());
  return f;
}

// What one pass knows of its centres: how far each moved since the last pass, the gaps between
// centres, and the largest squared norm (for tile_error).
template <typename T>
struct Geometry {
  std::vector<double> drift;  // ||c_j - c_j(previous pass)||, rounded up
  double drift1 = 0, drift2 = 0;
  int64_t drift_arg = -1;     // the centre that moved most (drift1), drift2 the runner-up
  std::vector<double> gap;    // hamerly: (k,) nearest other centre; elkan: (k, k) all
  double cmax2 = 0;

  Geometry(const T* c, const T* prev, int64_t d, int64_t k, bool all_pairs)
      : drift(k, 0.0), gap(all_pairs ? k * k : k, kInf) {
    for (int64_t j = 0; j < k; ++j) {
      cmax2 = std::max(cmax2, sq_norm(c + j * d, d));
      if (!prev) continue;
      drift[j] = upper_of(sq_dist(c + j * d, prev + j * d, d));
      if (drift[j] > drift1) {
        drift2 = drift1;
        drift1 = drift[j];
        drift_arg = j;
      } else {
        drift2 = std::max(drift2, drift[j]);
      }
    }
    for (int64_t a = 0; a < k; ++a)
      for (int64_t b = a + 1; b < k; ++b) {
        const double g = lower_of(sq_dist(c + a * d, c + b * d, d));
        if (all_pairs) {
          gap[a * k + b] = gap[b * k + a] = g;
        } else {
          gap[a] = std::min(gap[a], g);
          gap[b] = std::min(gap[b], g);
        }
      }
  }
  double other_drift(int64_t a) const { return a == drift_arg ? drift2 : drift1; }
};

// Per-row state of a bound-based fit; lower is (n,) for Hamerly, (n, k) for Elkan.
template <typename T>
struct Bounds {
  std::vector<double> upper, xx;
  std::vector<double> lower;
  std::vector<float> lower_k;
};

// The rows of one block the bounds could not settle, copied together for the tile.
template <typename T>
struct Gather {
  std::vector<T> rows, mind, mind2, xxb;
  std::vector<int32_t> label, at;
  std::vector<double> exact;  // elkan: one row's float64 distances, -1 where not measured
  Gather(int64_t B, int64_t d, int64_t k)
      : rows(B * d), mind(B), mind2(B), xxb(B), label(B), at(B), exact(k) {}
  void add(const T* x, int64_t d, int64_t r, int64_t& m) {
    std::copy(x, x + d, rows.begin() + m * d);
    at[m++] = static_cast<int32_t>(r);
  }
};

// Hamerly's labeler for one block (see the file comment).
template <typename T>
void hamerly_block(int64_t i0, int64_t rows, int32_t* lab, Partial& part, Gather<T>& g,
                   Bounds<T>& bd, const Geometry<T>& geo, const Packed<T>& pk,
                   const int32_t* labels, const T* X, const T* centers, int64_t d, int64_t k) {
  int64_t m = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = i0 + r;
    const int32_t a = labels[i];
    if (a >= 0) {
      const double err = tile_error<T>(bd.xx[i], geo.cmax2, d);
      double U = bd.upper[i] + geo.drift[a];
      double L = std::max(bd.lower[i] - geo.other_drift(a), geo.gap[a] - U);
      if (!separated(U, L, err)) {
        U = upper_of(sq_dist(X + i * d, centers + a * d, d));
        L = std::max(L, geo.gap[a] - U);
        ++part.distances;
      }
      bd.upper[i] = U;
      bd.lower[i] = L;
      if (separated(U, L, err)) {
        lab[r] = a;
        continue;
      }
    }
    g.add(X + i * d, d, r, m);
  }
  if (m == 0) return;
  const bool second = !pk.small_k && argmin2_rows(g.label.data(), g.mind.data(), g.mind2.data(),
                                                  g.rows.data(), m, d, pk.data.data(),
                                                  pk.cnorm.data(), k);
  if (!second) nearest(pk, g.label.data(), g.mind.data(), g.xxb.data(), g.rows.data(), m, d, k);
  part.distances += m * k;
  for (int64_t t = 0; t < m; ++t) {
    const int64_t r = g.at[t], i = i0 + r;
    const int32_t a = g.label[t];
    lab[r] = a;
    const double xx = bd.xx[i], err = tile_error<T>(xx, geo.cmax2, d);
    bd.upper[i] = upper_of(xx + g.mind[t] + err);
    if (second) {
      bd.lower[i] = lower_of(xx + g.mind2[t] - err);
    } else {  // this ISA's tile has no second-best variant: measure the others in float64
      double L = kInf;
      for (int64_t j = 0; j < k; ++j)
        if (j != a) L = std::min(L, lower_of(sq_dist(X + i * d, centers + j * d, d)));
      bd.lower[i] = L;
    }
  }
}

// Elkan for one row whose bounds did not settle it with U (the float64 distance to its centre
// a, rounded up): the centres the bounds do not exclude are measured in float64; the nearest is
// the label if it is then separated from every other centre, else -1 (the tile decides).
template <typename T>
int32_t elkan_row(const T* x, int32_t a, double U, float* l, Partial& part, Gather<T>& g,
                  const Geometry<T>& geo, double err, const T* centers, int64_t d, int64_t k) {
  const double* gap = geo.gap.data() + a * k;
  std::vector<double>& exact = g.exact;
  int32_t best = a;
  double best_up = U;
  for (int64_t j = 0; j < k; ++j) {
    exact[j] = -1;
    if (j == a || separated(U, std::max<double>(l[j], gap[j] - U), err)) continue;
    exact[j] = sq_dist(x, centers + j * d, d);
    l[j] = round_down(lower_of(exact[j]));
    ++part.distances;
    if (upper_of(exact[j]) < best_up) {
      best_up = upper_of(exact[j]);
      best = static_cast<int32_t>(j);
    }
  }
  const double low_a = U / (1 + kSlack) * (1 - kSlack);
  for (int64_t j = 0; j < k; ++j) {
    if (j == best) continue;
    const double low = j == a ? low_a : std::max<double>(l[j], gap[j] - U);
    if (!separated(best_up, low, err)) return -1;
  }
  return best;
}

// Elkan's labeler for one block: drift applied to every bound, then the tests of elkan_row;
// the first pass (no labels yet) and the unsettled rows go through the tile, and rows new to
// the tile get every bound measured in float64.
template <typename T>
void elkan_block(int64_t i0, int64_t rows, int32_t* lab, Partial& part, Gather<T>& g,
                 Bounds<T>& bd, const Geometry<T>& geo, const Packed<T>& pk,
                 const int32_t* labels, const T* X, const T* centers, int64_t d, int64_t k) {
  int64_t m = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = i0 + r;
    const int32_t a = labels[i];
    const T* x = X + i * d;
    if (a < 0) {
      g.add(x, d, r, m);
      continue;
    }
    float* l = bd.lower_k.data() + i * k;
    for (int64_t j = 0; j < k; ++j) l[j] = round_down(static_cast<double>(l[j]) - geo.drift[j]);
    const double err = tile_error<T>(bd.xx[i], geo.cmax2, d);
    double U = bd.upper[i] + geo.drift[a];
    double low = kInf;
    for (int64_t j = 0; j < k; ++j)
      if (j != a) low = std::min(low, std::max<double>(l[j], geo.gap[a * k + j] - U));
    if (!separated(U, low, err)) {
      U = upper_of(sq_dist(x, centers + a * d, d));
      ++part.distances;
    }
    bd.upper[i] = U;
    const int32_t b = separated(U, low, err) ? a : elkan_row(x, a, U, l, part, g, geo, err,
                                                             centers, d, k);
    if (b >= 0) {
      lab[r] = b;
      if (b != a) bd.upper[i] = upper_of(g.exact[b]);
    } else {
      g.add(x, d, r, m);
    }
  }
  if (m == 0) return;
  nearest(pk, g.label.data(), g.mind.data(), g.xxb.data(), g.rows.data(), m, d, k);
  part.distances += m * k;
  for (int64_t t = 0; t < m; ++t) {
    const int64_t r = g.at[t], i = i0 + r;
    const int32_t b = g.label[t];
    lab[r] = b;
    const T* x = X + i * d;
    float* l = bd.lower_k.data() + i * k;
    if (labels[i] < 0) {  // first pass: every bound measured
      for (int64_t j = 0; j < k; ++j) {
        const double sq = sq_dist(x, centers + j * d, d);
        l[j] = round_down(lower_of(sq));
        if (j == b) bd.upper[i] = upper_of(sq);
      }
      part.distances += k;
    } else {
      bd.upper[i] = upper_of(sq_dist(x, centers + b * d, d));
    }
  }
}

// The driver shared by both: the Lloyd loop with a bound-based labeler in the pass.
template <typename T>
double bounded_fit(T* centers, int32_t* labels, int64_t* n_iter, int64_t* n_distances,
                   const T* X, const T* w, int64_t n, int64_t d, int64_t k, int max_iter,
                   double tol, bool elkan, int n_threads) {
  Bounds<T> bd;
  bd.upper.assign(n, kInf);
  bd.xx.resize(n);
  if (elkan)
    bd.lower_k.assign(n * k, 0.0f);
  else
    bd.lower.assign(n, 0.0);
  const int64_t chunks = n_chunks(n);
  for_each_block(chunks, threads_for_chunks(n_threads, chunks, 3.0 * n * d), [&](int64_t c) {
    for (int64_t i = chunk_begin(c, chunks, n); i < chunk_begin(c + 1, chunks, n); ++i)
      bd.xx[i] = sq_norm(X + i * d, d);
  });
  std::vector<T> prev(k * d);
  bool have_prev = false;
  int64_t distances = 0;
  std::vector<Partial> parts;
  // One pass against the centres `cur` (labels INOUT); the chunk partials land in parts.
  auto pass = [&](const T* cur, bool update) {
    const Geometry<T> geo(cur, have_prev ? prev.data() : nullptr, d, k, elkan);
    const Packed<T> pk(cur, k, d, use_small_k<T>(k, d));
    chunked_pass(parts, labels, X, w, n, d, k, update, n_threads, 2.0 * n * d * k,
                 [&](int64_t B) {
                   return [&, g = Gather<T>(B, d, k)](int64_t i0, int64_t rows, int32_t* lab,
                                                      Partial& part) mutable {
                     if (elkan)
                       elkan_block(i0, rows, lab, part, g, bd, geo, pk, labels, X, cur, d, k);
                     else
                       hamerly_block(i0, rows, lab, part, g, bd, geo, pk, labels, X, cur, d, k);
                   };
                 });
    for (const Partial& part : parts) distances += part.distances;
    std::copy(cur, cur + k * d, prev.begin());
    have_prev = true;
  };
  std::fill(labels, labels + n, -1);
  const bool strict = lloyd_iterate(centers, k * d, max_iter, tol, n_iter, [&](T* nxt, T* cur) {
    pass(cur, /*update=*/true);
    const LloydStepStats st = reduce_and_update(nxt, parts, labels, X, w, cur, n, d, k);
    return IterStats{st.n_changed, st.center_shift};
  });
  // The final assignment (labels of the returned centres), through the bounds as well.
  if (!strict) pass(centers, /*update=*/false);
  *n_distances = distances;
  return kmeans_inertia(labels, X, w, centers, n, d, k, n_threads);
}

}  // namespace
}  // namespace kmeans_detail

template <typename T>
double kmeans_fit(T* centers, int32_t* labels, int64_t* n_iter, int64_t* n_distances,
                  const T* X, const T* w, int64_t n, int64_t d, int64_t k, int max_iter,
                  double tol, KMeansAlgorithm algorithm, int n_threads) {
  using namespace kmeans_detail;
  if (algorithm == KMeansAlgorithm::lloyd || is_small_fit(n, d, k)) {
    const double inertia = kmeans_lloyd(centers, labels, n_iter, X, w, n, d, k, max_iter, tol,
                                        n_threads);
    *n_distances = (*n_iter + 1) * n * k;  // the iterations and the final assignment (at most)
    return inertia;
  }
  return bounded_fit(centers, labels, n_iter, n_distances, X, w, n, d, k, max_iter, tol,
                     algorithm == KMeansAlgorithm::elkan, n_threads);
}

template double kmeans_fit<float>(float*, int32_t*, int64_t*, int64_t*, const float*,
                                  const float*, int64_t, int64_t, int64_t, int, double,
                                  KMeansAlgorithm, int);
template double kmeans_fit<double>(double*, int32_t*, int64_t*, int64_t*, const double*,
                                   const double*, int64_t, int64_t, int64_t, int, double,
                                   KMeansAlgorithm, int);

}  // namespace gk
