// Branch-free exp/log/log1p/tanh for float that GCC vectorises inside plain loops (std::expf
// and std::logf are library calls that keep a loop scalar). Accurate to about 2 ulp on the
// ranges the kernels use. double keeps the C library: float64 is the accuracy reference here,
// not the speed target.
//
// Everything is inline in an unnamed-per-unit namespace (`static`), so a unit compiled with
// other -march flags never shares these bodies with another unit through the linker.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace gk {
namespace fm {

static inline float bits_to_float(int32_t i) {
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}

static inline int32_t float_to_bits(float f) {
  int32_t i;
  std::memcpy(&i, &f, sizeof i);
  return i;
}

// e^x: x = n ln2 + r with |r| <= ln2/2, e^r by a degree-6 polynomial, 2^n put in the exponent.
// Returns 0 below -87.3 (no denormals) and +inf above 88.7.
static inline float exp(float x) {
  const float hi = 88.7228f, lo = -87.33654f;
  // Written so that NaN clamps to lo (a false comparison picks the bound), as vexp does: a NaN
  // left in xc would reach the int conversion and the shifts below, which is undefined
  // behaviour (UBSan: "left shift of negative value"). The last line returns the NaN.
  float xc = x > lo ? x : lo;
  xc = xc < hi ? xc : hi;
  // Round to nearest by adding and subtracting 1.5 * 2^23 (vectorises; nearbyint may not).
  float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = std::fma(n, -0.693359375f, xc);
  r = std::fma(n, 2.12194440e-4f, r);
  float p = 1.9875691500e-4f;
  p = std::fma(p, r, 1.3981999507e-3f);
  p = std::fma(p, r, 8.3334519073e-3f);
  p = std::fma(p, r, 4.1665795894e-2f);
  p = std::fma(p, r, 1.6666665459e-1f);
  p = std::fma(p, r, 5.0000001201e-1f);
  p = std::fma(p * r, r, r) + 1.0f;
  // 2^n in two halves so that n = 128 (x near 88.7) does not overflow the exponent field.
  int32_t ni = static_cast<int32_t>(n);
  int32_t n1 = ni >> 1;
  float s1 = bits_to_float((n1 + 127) << 23);
  float s2 = bits_to_float((ni - n1 + 127) << 23);
  float y = p * s1 * s2;
  y = x < lo ? 0.0f : y;
  y = x > hi ? INFINITY : y;
  return x != x ? x : y;
}

// log(x) for x >= 0: x = 2^e m with m in [sqrt(1/2), sqrt(2)), log(m) by a polynomial in m - 1.
// log(0) = -inf; denormal inputs are scaled up first. Negative or NaN input gives NaN.
static inline float log(float x) {
  const bool tiny = x < 1.17549435e-38f;
  float xs = tiny ? x * 8388608.0f : x;  // 2^23
  int32_t bits = float_to_bits(xs);
  int32_t e = ((bits >> 23) & 0xff) - 126;
  float m = bits_to_float((bits & 0x007fffff) | 0x3f000000);  // in [0.5, 1)
  const bool small = m < 0.707106781186547524f;
  e = small ? e - 1 : e;
  float f = small ? m + m - 1.0f : m - 1.0f;
  float fe = static_cast<float>(e) - (tiny ? 23.0f : 0.0f);
  float z = f * f;
  float p = 7.0376836292e-2f;
  p = std::fma(p, f, -1.1514610310e-1f);
  p = std::fma(p, f, 1.1676998740e-1f);
  p = std::fma(p, f, -1.2420140846e-1f);
  p = std::fma(p, f, 1.4249322787e-1f);
  p = std::fma(p, f, -1.6668057665e-1f);
  p = std::fma(p, f, 2.0000714765e-1f);
  p = std::fma(p, f, -2.4999993993e-1f);
  p = std::fma(p, f, 3.3333331174e-1f);
  float y = p * f * z;
  y = std::fma(fe, -2.12194440e-4f, y);
  y = std::fma(z, -0.5f, y);
  float r = f + y;
  r = std::fma(fe, 0.693359375f, r);
  r = x == 0.0f ? -INFINITY : r;
  r = x == INFINITY ? INFINITY : r;
  return (x < 0.0f || x != x) ? NAN : r;
}

// log(1 + x) without losing the digits of a small x: log(u) * x / (u - 1) with u = 1 + x
// corrects the rounding of u (Goldberg's trick).
static inline float log1p(float x) {
  float u = 1.0f + x;
  float d = u - 1.0f;
  float l = log(u);
  return d == 0.0f ? x : l * (x / d);
}

// tanh: an odd polynomial near 0 (where 1 - 2/(e^2x + 1) would cancel), that formula beyond.
static inline float tanh(float x) {
  float a = std::fabs(x);
  float z = x * x;
  float p = -5.70498872745e-3f;
  p = std::fma(p, z, 2.06390887954e-2f);
  p = std::fma(p, z, -5.37397155531e-2f);
  p = std::fma(p, z, 1.33314422036e-1f);
  p = std::fma(p, z, -3.33332819422e-1f);
  float small = std::fma(p * z, x, x);
  float big = 1.0f - 2.0f / (exp(a + a) + 1.0f);
  big = std::copysign(big, x);
  return a < 0.625f ? small : big;
}

static inline double exp(double x) { return std::exp(x); }
static inline double log(double x) { return std::log(x); }
static inline double log1p(double x) { return std::log1p(x); }
static inline double tanh(double x) { return std::tanh(x); }

}  // namespace fm
}  // namespace gk
