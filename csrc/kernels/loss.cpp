#include "kernels/loss.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "kernels/chunks.hpp"
#include "kernels/fastmath.hpp"
#include "kernels/loss_simd.hpp"

namespace gk {
namespace {

constexpr int64_t kBlock = 512;  // values staged on the stack between the two loops below
constexpr int kLanes = 8;        // independent double accumulators: a fixed order, vectorisable

// Sum of v[0..n) in double over kLanes interleaved accumulators, then lane by lane: the order
// depends only on n, so the result does too.
template <typename T>
double block_sum(const T* v, int64_t n) {
  double acc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += static_cast<double>(v[j + l]);
  for (int l = 0; j < n; ++j, ++l) acc[l] += static_cast<double>(v[j]);
  double total = 0.0;
  for (int l = 0; l < kLanes; ++l) total += acc[l];
  return total;
}

// Runs elem(i) -> per-element loss (elem writes grad[i] itself) over [0, n) in fixed chunks.
// "none" writes the losses to per; otherwise each block of kBlock losses is staged on the stack
// and summed in double. The elementwise loop has no reduction, so it vectorises plainly.
// count_bad(b, e), when given, counts invalid inputs of the chunk into *n_bad.
template <typename T, typename Elem, typename Bad>
double fused(T* per, int64_t* n_bad, int64_t n, double bytes_per_item, Elem elem, Bad count_bad) {
  std::vector<int64_t> bad(n_bad != nullptr ? (n + kChunk - 1) / kChunk + 1 : 1, 0);
  double total = chunked_sum(n, bytes_per_item, [&](int64_t b, int64_t e) {
    if (n_bad != nullptr) bad[b / kChunk] = count_bad(b, e);
    if (per != nullptr) {
      for (int64_t i = b; i < e; ++i) per[i] = elem(i);
      return 0.0;
    }
    alignas(64) T v[kBlock];
    double acc = 0.0;
    for (int64_t s = b; s < e; s += kBlock) {
      const int64_t m = e - s < kBlock ? e - s : kBlock;
      for (int64_t j = 0; j < m; ++j) v[j] = elem(s + j);
      acc += block_sum(v, m);
    }
    return acc;
  });
  if (n_bad != nullptr) {
    int64_t sum = 0;
    for (int64_t c : bad) sum += c;
    *n_bad = sum;
  }
  return total;
}

template <typename T, typename Elem>
double fused(T* per, int64_t n, double bytes_per_item, Elem elem) {
  return fused(per, nullptr, n, bytes_per_item, elem, [](int64_t, int64_t) { return int64_t(0); });
}

template <typename T>
T grad_scale(Reduction r, int64_t count) {
  return r == Reduction::mean ? static_cast<T>(1.0 / static_cast<double>(count)) : T(1);
}

double finish(double total, Reduction r, int64_t count) {
  if (r == Reduction::none) return 0.0;
  return r == Reduction::mean ? total / static_cast<double>(count) : total;
}

// Which explicitly vectorised float32 kernels (loss_simd.inl) this CPU runs: 2 = AVX-512,
// 1 = AVX2, 0 = none (the generic templates below).
int simd_level() {
  const Isa isa = active_isa();
#if defined(GRADKIT_HAVE_AVX512)
  if (isa == Isa::avx512) return 2;
#endif
#if defined(GK_HAVE_SIMD_AVX2)
  if (isa != Isa::portable) return 1;
#endif
  return 0;
}

// Runs range(begin, end, &bad) -> double over fixed chunks; bad counts are added per chunk.
template <typename Range>
double simd_chunks(int64_t n, int64_t* n_bad, Range range) {
  std::vector<int64_t> bad((n + kChunk - 1) / kChunk + 1, 0);
  double total = chunked_sum(n, 12.0, [&](int64_t b, int64_t e) {
    return range(b, e, &bad[b / kChunk]);
  });
  if (n_bad != nullptr) {
    int64_t sum = 0;
    for (int64_t c : bad) sum += c;
    *n_bad = sum;
  }
  return total;
}

// max(z, 0) - y z, the part of BCE-with-logits linear in z. At z = ±inf that is inf - inf or
// 0 * inf, so there it is the limit, (1 - y) z for z > 0 and -y z for z < 0, where a coefficient
// of exactly 0 gives 0 (ops_numpy._bce_logits_linear). Finite z keep the spec's rounding.
template <typename T>
inline T bce_logits_linear(T z, T y) {
  if (std::isinf(z)) {
    const T coef = z > T(0) ? T(1) - y : -y;
    return coef == T(0) ? T(0) : coef * z;
  }
  return std::max(z, T(0)) - y * z;
}

}  // namespace

template <typename T>
double l1_loss_fused(T* grad, T* per, const T* pred, const T* target, int64_t n, Reduction r) {
  const T s = grad_scale<T>(r, n);
  if (r != Reduction::none) per = nullptr;
  if constexpr (std::is_same_v<T, float>) {
    if (const int level = simd_level()) {
      const double total = simd_chunks(n, nullptr, [=](int64_t b, int64_t e, int64_t*) {
        float* pp = per != nullptr ? per + b : nullptr;
#if defined(GRADKIT_HAVE_AVX512)
        if (level == 2) return avx512::l1_range(grad + b, pp, pred + b, target + b, e - b, s);
#endif
        return avx2::l1_range(grad + b, pp, pred + b, target + b, e - b, s);
      });
      return finish(total, r, n);
    }
  }
  double total = fused(per, n, 3.0 * sizeof(T), [=](int64_t i) {
    T d = pred[i] - target[i];
    // sign(d) * s, branch-free; a NaN difference passes through as NaN (np.sign(nan) is nan)
    grad[i] = d == d ? static_cast<T>(d > T(0)) * s - static_cast<T>(d < T(0)) * s : d;
    return std::fabs(d);
  });
  return finish(total, r, n);
}

template <typename T>
double mse_loss_fused(T* grad, T* per, const T* pred, const T* target, int64_t n, Reduction r,
                      bool half) {
  const T factor = half ? T(0.5) : T(1);
  const T s = static_cast<T>((half ? 1.0 : 2.0) *
                             (r == Reduction::mean ? 1.0 / static_cast<double>(n) : 1.0));
  if (r != Reduction::none) per = nullptr;
  if constexpr (std::is_same_v<T, float>) {
    if (const int level = simd_level()) {
      const double total = simd_chunks(n, nullptr, [=](int64_t b, int64_t e, int64_t*) {
        float* pp = per != nullptr ? per + b : nullptr;
#if defined(GRADKIT_HAVE_AVX512)
        if (level == 2)
          return avx512::mse_range(grad + b, pp, pred + b, target + b, e - b, s, factor);
#endif
        return avx2::mse_range(grad + b, pp, pred + b, target + b, e - b, s, factor);
      });
      return finish(total, r, n);
    }
  }
  double total = fused(per, n, 3.0 * sizeof(T), [=](int64_t i) {
    T d = pred[i] - target[i];
    grad[i] = d * s;
    return factor * d * d;
  });
  return finish(total, r, n);
}

template <typename T>
double bce_loss_fused(T* grad, T* per, int64_t* n_bad, const T* pred, const T* target, int64_t n,
                      Reduction r) {
  const T s = grad_scale<T>(r, n);
  if (r != Reduction::none) per = nullptr;
  if constexpr (std::is_same_v<T, float>) {
    if (const int level = simd_level()) {
      const double total = simd_chunks(n, n_bad, [=](int64_t b, int64_t e, int64_t* bad) {
        float* pp = per != nullptr ? per + b : nullptr;
#if defined(GRADKIT_HAVE_AVX512)
        if (level == 2) return avx512::bce_range(grad + b, pp, bad, pred + b, target + b, e - b, s);
#endif
        return avx2::bce_range(grad + b, pp, bad, pred + b, target + b, e - b, s);
      });
      return finish(total, r, n);
    }
  }
  // Counted in the same pass over the chunk (pred is in cache), one count per chunk.
  auto count_bad = [=](int64_t b, int64_t e) {
    int64_t nb = 0;
    for (int64_t i = b; i < e; ++i) nb += (pred[i] >= T(0) && pred[i] <= T(1)) ? 0 : 1;
    return nb;
  };
  double total = fused(per, n_bad, n, 3.0 * sizeof(T), [=](int64_t i) {
    const T p = pred[i], y = target[i];
    const T log_p = std::max(fm::log(p), T(-100));
    const T log_1mp = std::max(fm::log1p(-p), T(-100));
    const T denom = std::max(p * (T(1) - p), T(1e-12));
    grad[i] = (p - y) / denom * s;
    return -(y * log_p + (T(1) - y) * log_1mp);
  }, count_bad);
  return finish(total, r, n);
}

template <typename T>
double bce_with_logits_loss_fused(T* grad, T* per, const T* logits, const T* target, int64_t n,
                                  Reduction r) {
  const T s = grad_scale<T>(r, n);
  if (r != Reduction::none) per = nullptr;
  if constexpr (std::is_same_v<T, float>) {
    if (const int level = simd_level()) {
      const double total = simd_chunks(n, nullptr, [=](int64_t b, int64_t e, int64_t*) {
        float* pp = per != nullptr ? per + b : nullptr;
#if defined(GRADKIT_HAVE_AVX512)
        if (level == 2)
          return avx512::bce_with_logits_range(grad + b, pp, logits + b, target + b, e - b, s);
#endif
        return avx2::bce_with_logits_range(grad + b, pp, logits + b, target + b, e - b, s);
      });
      return finish(total, r, n);
    }
  }
  double total = fused(per, n, 3.0 * sizeof(T), [=](int64_t i) {
    const T z = logits[i], y = target[i];
    const T e = fm::exp(-std::fabs(z));
    const T inv = T(1) / (T(1) + e);
    const T sig = z >= T(0) ? inv : e * inv;
    grad[i] = (sig - y) * s;
    return bce_logits_linear(z, y) + fm::log1p(e);
  });
  return finish(total, r, n);
}

template <typename T>
double cross_entropy_loss_fused(T* grad, T* per, const T* logits, const int64_t* labels,
                                int64_t B, int64_t C, Reduction r) {
  const T s = grad_scale<T>(r, B);
  if (r != Reduction::none) per = nullptr;
  const int64_t rows_per_chunk = std::max<int64_t>(1, kChunk / C);
  if constexpr (std::is_same_v<T, float>) {
    if (const int level = simd_level()) {
      const double total = chunked_sum(
          B, 12.0 * static_cast<double>(C),
          [=](int64_t b, int64_t e) {
            float* pp = per != nullptr ? per + b : nullptr;
#if defined(GRADKIT_HAVE_AVX512)
            if (level == 2)
              return avx512::cross_entropy_rows(grad + b * C, pp, logits + b * C, labels + b,
                                                e - b, C, s);
#endif
            return avx2::cross_entropy_rows(grad + b * C, pp, logits + b * C, labels + b, e - b,
                                            C, s);
          },
          rows_per_chunk);
      return finish(total, r, B);
    }
  }
  double total = chunked_sum(
      B, 3.0 * sizeof(T) * static_cast<double>(C),
      [&](int64_t b, int64_t e) {
        double acc = 0.0;
        for (int64_t row = b; row < e; ++row) {
          const T* z = logits + row * C;
          T* g = grad + row * C;
          T mx = z[0];
          for (int64_t j = 1; j < C; ++j) mx = std::max(mx, z[j]);
          T sum = 0;
#pragma omp simd reduction(+ : sum)
          for (int64_t j = 0; j < C; ++j) {
            T ex = fm::exp(z[j] - mx);
            g[j] = ex;
            sum += ex;
          }
          const T log_norm = fm::log(sum);
          const T scale = s / sum;
#pragma omp simd
          for (int64_t j = 0; j < C; ++j) g[j] *= scale;
          const int64_t k = labels[row];
          g[k] -= s;
          const T v = log_norm - (z[k] - mx);
          if (per != nullptr) per[row] = v;
          acc += static_cast<double>(v);
        }
        return acc;
      },
      rows_per_chunk);
  return finish(total, r, B);
}

#define GK_INSTANTIATE(T)                                                                       \
  template double l1_loss_fused<T>(T*, T*, const T*, const T*, int64_t, Reduction);            \
  template double mse_loss_fused<T>(T*, T*, const T*, const T*, int64_t, Reduction, bool);     \
  template double bce_loss_fused<T>(T*, T*, int64_t*, const T*, const T*, int64_t, Reduction); \
  template double bce_with_logits_loss_fused<T>(T*, T*, const T*, const T*, int64_t,           \
                                                Reduction);                                    \
  template double cross_entropy_loss_fused<T>(T*, T*, const T*, const int64_t*, int64_t,       \
                                              int64_t, Reduction);
GK_INSTANTIATE(float)
GK_INSTANTIATE(double)
#undef GK_INSTANTIATE

}  // namespace gk
