// Greedy k-means++ seeding in one pass over X per centre (see kmeans.hpp).
#include <algorithm>
#include <limits>
#include <vector>

#include "kernels/kmeans.hpp"
#include "kernels/kmeans/common.hpp"

namespace gk {
namespace {

using kmeans_detail::for_each_block;

template <typename T>
void pp_norms(T* xx, const T* X, int64_t rows, int64_t d) {
#if defined(GRADKIT_HAVE_AVX512)
  if (active_isa() == Isa::avx512) return kmeans_avx512::pp_norms(xx, X, rows, d);
#endif
  kmeans_portable::pp_norms(xx, X, rows, d);
}

template <typename T>
void pp_tile(double* pots, T* closest, const T* X, const T* xx, const T* w, int64_t rows,
             int64_t d, const T* packed, const T* cn, int64_t m, bool update) {
#if defined(GRADKIT_HAVE_AVX512)
  if (active_isa() == Isa::avx512)
    return kmeans_avx512::pp_tile(pots, closest, X, xx, w, rows, d, packed, cn, m, update);
#endif
  kmeans_portable::pp_tile(pots, closest, X, xx, w, rows, d, packed, cn, m, update);
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

template void kmeans_plusplus<float>(int64_t*, const float*, const float*, int64_t, int64_t,
                                     int64_t, int64_t, const double*, int);
template void kmeans_plusplus<double>(int64_t*, const double*, const double*, int64_t, int64_t,
                                      int64_t, int64_t, const double*, int);

}  // namespace gk
