// Body of the explicitly vectorised float32 losses, written once with GCC vector extensions
// and compiled per ISA: the including unit defines GK_SIMD_NS (its namespace, so the linker
// never merges code built for different ISAs) and GK_W (lanes per vector).
//
// exp/log are the same polynomials as fastmath.hpp, on whole vectors. Ragged ends use masked
// loads/stores; padded lanes are excluded from every sum and count.
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "kernels/fastmath.hpp"

namespace gk {
namespace GK_SIMD_NS {
namespace {

typedef float vf __attribute__((vector_size(GK_W * 4)));
typedef int32_t vi __attribute__((vector_size(GK_W * 4)));

inline vf splat(float a) { return vf{} + a; }
inline vi splati(int32_t a) { return vi{} + a; }
inline vf vmax(vf a, vf b) { return a > b ? a : b; }
inline vf vmin(vf a, vf b) { return a < b ? a : b; }
inline vf vabs(vf a) { return (vf)((vi)a & splati(0x7fffffff)); }

inline vi lane_index() {
  vi idx;
  for (int l = 0; l < GK_W; ++l) idx[l] = l;
  return idx;
}

// Lanes [0, t) from p, the others `pad`.
inline vf load_tail(const float* p, int64_t t, float pad) {
  const vi valid = lane_index() < splati(static_cast<int32_t>(t));
#if GK_W == 16
  vf x = (vf)_mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << t) - 1u), p);
#else
  vf x = (vf)_mm256_maskload_ps(p, (__m256i)valid);
#endif
  return valid ? x : splat(pad);
}

inline void store_tail(float* p, vf x, int64_t t) {
#if GK_W == 16
  _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << t) - 1u), (__m512)x);
#else
  const vi valid = lane_index() < splati(static_cast<int32_t>(t));
  _mm256_maskstore_ps(p, (__m256i)valid, (__m256)x);
#endif
}

inline vf loadu(const float* p) {
  vf x;
  __builtin_memcpy(&x, p, sizeof x);
  return x;
}

inline void storeu(float* p, vf x) { __builtin_memcpy(p, &x, sizeof x); }

// e^x, 0 below -87.3, +inf above 88.7 (see fm::exp).
inline vf vexp(vf x) {
  const float hi = 88.7228f, lo = -87.33654f;
  vf xc = vmin(vmax(x, splat(lo)), splat(hi));
  vf n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  vf r = n * -0.693359375f + xc;
  r = n * 2.12194440e-4f + r;
  vf p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = (p * r) * r + r + 1.0f;
  vi ni = __builtin_convertvector(n, vi);
  vi n1 = ni >> 1;
  vf s1 = (vf)((n1 + 127) << 23);
  vf s2 = (vf)((ni - n1 + 127) << 23);
  vf y = p * s1 * s2;
  y = x < lo ? splat(0.0f) : y;
  y = x > hi ? splat(INFINITY) : y;
  return x != x ? x : y;
}

// log(x) for positive, normal, finite x only (see fm::log for the method).
inline vf vlog_normal(vf x) {
  vi bits = (vi)x;
  vi e = ((bits >> 23) & 0xff) - 126;
  vf m = (vf)((bits & 0x007fffff) | 0x3f000000);
  const vi small = m < 0.707106781186547524f;
  e = small ? e - 1 : e;
  vf f = small ? m + m - 1.0f : m - 1.0f;
  vf fe = __builtin_convertvector(e, vf);
  vf z = f * f;
  vf p = splat(7.0376836292e-2f);
  p = p * f + -1.1514610310e-1f;
  p = p * f + 1.1676998740e-1f;
  p = p * f + -1.2420140846e-1f;
  p = p * f + 1.4249322787e-1f;
  p = p * f + -1.6668057665e-1f;
  p = p * f + 2.0000714765e-1f;
  p = p * f + -2.4999993993e-1f;
  p = p * f + 3.3333331174e-1f;
  vf y = p * f * z;
  y = fe * -2.12194440e-4f + y;
  y = z * -0.5f + y;
  vf r = f + y;
  return fe * 0.693359375f + r;
}

// log(x) for x >= 0 (log 0 = -inf, denormals scaled up first); negative or NaN give NaN.
inline vf vlog(vf x) {
  const vi tiny = x < 1.17549435e-38f;
  vf r = vlog_normal(tiny ? x * 8388608.0f : x) - (tiny ? splat(23.0f * 0.693147180559945f)
                                                        : splat(0.0f));
  r = x == 0.0f ? splat(-INFINITY) : r;
  r = x == INFINITY ? splat(INFINITY) : r;
  return (x < 0.0f) | (x != x) ? splat(NAN) : r;
}

// Fixed-order double accumulation of float lanes: two native double vectors (the low and the
// high half of the lanes); a generic 2x-wide vector type would be lowered lane by lane.
struct Sum {
#if GK_W == 16
  __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
  void add(vf v) {
    lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256((__m512)v)));
    hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm512_extractf32x8_ps((__m512)v, 1)));
  }
#else
  __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
  void add(vf v) {
    lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128((__m256)v)));
    hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps((__m256)v, 1)));
  }
#endif
  double total() const {
    alignas(64) double lanes[GK_W];
    __builtin_memcpy(lanes, &lo, sizeof lo);
    __builtin_memcpy(lanes + GK_W / 2, &hi, sizeof hi);
    double t = 0.0;
    for (int l = 0; l < GK_W; ++l) t += lanes[l];
    return t;
  }
};

// op(a, b, &g) -> per-element loss vector. Tail lanes are padded with 0.5 (a valid input for
// every loss) and dropped from the sum.
template <typename Op>
double pair_range(float* grad, float* per, const float* a, const float* b, int64_t n, Op op) {
  Sum sum;
  int64_t i = 0;
  for (; i + GK_W <= n; i += GK_W) {
    vf g;
    vf v = op(loadu(a + i), loadu(b + i), g);
    storeu(grad + i, g);
    if (per != nullptr)
      storeu(per + i, v);
    else
      sum.add(v);
  }
  if (i < n) {
    const int64_t t = n - i;
    vf g;
    vf v = op(load_tail(a + i, t, 0.5f), load_tail(b + i, t, 0.5f), g);
    store_tail(grad + i, g, t);
    if (per != nullptr)
      store_tail(per + i, v, t);
    else
      sum.add(lane_index() < splati(static_cast<int32_t>(t)) ? v : splat(0.0f));
  }
  return per != nullptr ? 0.0 : sum.total();
}

}  // namespace

double l1_range(float* grad, float* per, const float* p, const float* y, int64_t n,
                float scale) {
  return pair_range(grad, per, p, y, n, [&](vf q, vf t, vf& g) {
    vf d = q - t;
    g = (d > 0.0f ? splat(scale) : splat(0.0f)) - (d < 0.0f ? splat(scale) : splat(0.0f));
    g = d == d ? g : d;  // a NaN difference stays NaN, as np.sign(nan)
    return vabs(d);
  });
}

double mse_range(float* grad, float* per, const float* p, const float* y, int64_t n,
                 float scale, float factor) {
  return pair_range(grad, per, p, y, n, [&](vf q, vf t, vf& g) {
    vf d = q - t;
    g = d * scale;
    return factor * d * d;
  });
}

double bce_range(float* grad, float* per, int64_t* n_bad, const float* p, const float* y,
                 int64_t n, float scale) {
  vi bad = vi{};
  double total = pair_range(grad, per, p, y, n, [&](vf q, vf t, vf& g) {
    bad -= ~((q >= 0.0f) & (q <= 1.0f));  // a lane is -1 where q is outside [0, 1] or NaN
    vf log_q = vmax(vlog(q), splat(-100.0f));
    // log(1 - q): u = 1 - q is 0 or a normal number >= 2^-24 for q in [0, 1]; the rounding
    // of u is corrected by (-q - (u - 1)) / u, as in log1p.
    vf u = 1.0f - q;
    vf log_u = vlog_normal(u) + (-q - (u - 1.0f)) / u;
    vf log_1mq = u == 0.0f ? splat(-100.0f) : vmax(log_u, splat(-100.0f));
    vf denom = vmax(q * u, splat(1e-12f));
    g = (q - t) / denom * scale;
    return -(t * log_q + (1.0f - t) * log_1mq);
  });
  int64_t count = 0;
  for (int l = 0; l < GK_W; ++l) count += bad[l];
  *n_bad = count;
  return total;
}

double bce_with_logits_range(float* grad, float* per, const float* z, const float* y, int64_t n,
                             float scale) {
  return pair_range(grad, per, z, y, n, [&](vf x, vf t, vf& g) {
    vf e = vexp(-vabs(x));  // in (0, 1]
    vf u = 1.0f + e;
    vf inv = 1.0f / u;
    vf sig = x >= 0.0f ? inv : e * inv;
    g = (sig - t) * scale;
    // log1p(e) = log(u) + (e - (u - 1)) / u: the rounding of u corrected with the 1/u we have.
    vf log1p_e = vlog_normal(u) + (e - (u - 1.0f)) * inv;
    // max(z, 0) - y z, and at z = ±inf its limit (scalar bce_logits_linear in loss.cpp).
    vf coef = x > 0.0f ? 1.0f - t : -t;
    vf limit = coef == 0.0f ? splat(0.0f) : coef * x;
    vf linear = vabs(x) == splat(INFINITY) ? limit : vmax(x, splat(0.0f)) - t * x;
    return linear + log1p_e;
  });
}

namespace {

constexpr int64_t kFewClasses = 32;  // up to here, rows go in lanes; above, classes do

// GK_W rows at once, one row per lane, for C <= kFewClasses: each class is one vector running
// down the rows, so exp and log run on full vectors however small C is. The gradient is
// written back row-major through a small transposing buffer. Returns the W row losses.
inline vf cross_entropy_lanes(float* grad, const float* z, const int64_t* labels, int64_t C,
                              float scale) {
  alignas(64) float buf[kFewClasses][GK_W];
  vi label;
  for (int l = 0; l < GK_W; ++l) label[l] = static_cast<int32_t>(labels[l]);
  // Transpose in with scalar moves: measured faster here than vgatherdps (which took half
  // the time of this function).
  vf z_label;
  for (int l = 0; l < GK_W; ++l) {
    for (int64_t c = 0; c < C; ++c) buf[c][l] = z[l * C + c];
    z_label[l] = z[l * C + label[l]];
  }
  vf mx = splat(-INFINITY);
  for (int64_t c = 0; c < C; ++c) mx = vmax(mx, loadu(buf[c]));
  vf sum = vf{};
  for (int64_t c = 0; c < C; ++c) {
    vf e = vexp(loadu(buf[c]) - mx);
    storeu(buf[c], e);
    sum += e;
  }
  const vf g = scale / sum;
  for (int64_t c = 0; c < C; ++c) {
    const vi hot = label == splati(static_cast<int32_t>(c));
    storeu(buf[c], loadu(buf[c]) * g - (hot ? splat(scale) : splat(0.0f)));
  }
  for (int l = 0; l < GK_W; ++l)
    for (int64_t c = 0; c < C; ++c) grad[l * C + c] = buf[c][l];
  return vlog(sum) - (z_label - mx);
}

}  // namespace

double cross_entropy_rows(float* grad, float* per, const float* z, const int64_t* labels,
                          int64_t rows, int64_t C, float scale) {
  double total = 0.0;
  int64_t r = 0;
  if (C <= kFewClasses) {
    Sum sum;
    for (; r + GK_W <= rows; r += GK_W) {
      vf v = cross_entropy_lanes(grad + r * C, z + r * C, labels + r, C, scale);
      if (per != nullptr)
        storeu(per + r, v);
      else
        sum.add(v);
    }
    total = sum.total();
  }
  const int64_t full = C - C % GK_W;
  const int64_t t = C - full;
  for (; r < rows; ++r) {
    const float* zr = z + r * C;
    float* gr = grad + r * C;
    // Row max; padded lanes are -inf, so they add exp(-inf) = 0 to the sum below.
    vf m = splat(-INFINITY);
    for (int64_t c = 0; c < full; c += GK_W) m = vmax(m, loadu(zr + c));
    vf tail = t ? load_tail(zr + full, t, -INFINITY) : splat(-INFINITY);
    m = vmax(m, tail);
    float mx = m[0];
    for (int l = 1; l < GK_W; ++l) mx = mx > m[l] ? mx : m[l];
    vf s = vf{};
    for (int64_t c = 0; c < full; c += GK_W) {
      vf e = vexp(loadu(zr + c) - mx);
      storeu(gr + c, e);
      s += e;
    }
    vf et = vexp(tail - mx);
    s += et;
    float sum = 0.0f;
    for (int l = 0; l < GK_W; ++l) sum += s[l];
    const float g = scale / sum;
    // The one-hot is subtracted in registers: reading gr[k] back right after a masked store
    // would stall on store forwarding.
    const int64_t k = labels[r];
    const vi lane = lane_index();
    for (int64_t c = 0; c < full; c += GK_W) {
      const vi hot = lane == splati(static_cast<int32_t>(k - c));
      storeu(gr + c, loadu(gr + c) * g - (hot ? splat(scale) : splat(0.0f)));
    }
    if (t) {
      const vi hot = lane == splati(static_cast<int32_t>(k - full));
      store_tail(gr + full, et * g - (hot ? splat(scale) : splat(0.0f)), t);
    }
    const float v = fm::log(sum) - (zr[k] - mx);
    if (per != nullptr)
      per[r] = v;
    else
      total += static_cast<double>(v);
  }
  return total;
}

}  // namespace GK_SIMD_NS
}  // namespace gk
