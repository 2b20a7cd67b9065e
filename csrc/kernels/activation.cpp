#include "kernels/activation.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/chunks.hpp"
#include "kernels/fastmath.hpp"

namespace gk {
namespace {

// f(i) for every i in [0, n), in fixed chunks over threads; f must be vectorisable.
template <typename T, typename F>
void elementwise(int64_t n, double bytes_per_item, F f) {
  chunked_for(n, bytes_per_item, [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) f(i);
  });
}

}  // namespace

template <typename T>
void relu_forward(T* y, const T* x, int64_t n) {
  elementwise<T>(n, 2.0 * sizeof(T), [=](int64_t i) { y[i] = x[i] > T(0) ? x[i] : T(0); });
}

template <typename T>
void leaky_relu_forward(T* y, const T* x, int64_t n, T slope) {
  elementwise<T>(n, 2.0 * sizeof(T),
                 [=](int64_t i) { y[i] = x[i] > T(0) ? x[i] : x[i] * slope; });
}

template <typename T>
void sigmoid_forward(T* y, const T* x, int64_t n) {
  // e^-|x| never overflows; 1/(1+e) for x >= 0, e/(1+e) below.
  elementwise<T>(n, 2.0 * sizeof(T), [=](int64_t i) {
    const T e = fm::exp(-std::fabs(x[i]));
    const T inv = T(1) / (T(1) + e);
    y[i] = x[i] >= T(0) ? inv : e * inv;
  });
}

template <typename T>
void tanh_forward(T* y, const T* x, int64_t n) {
  elementwise<T>(n, 2.0 * sizeof(T), [=](int64_t i) { y[i] = fm::tanh(x[i]); });
}

template <typename T>
void relu_backward(T* dx, const T* dy, const T* y, int64_t n) {
  elementwise<T>(n, 3.0 * sizeof(T), [=](int64_t i) { dx[i] = y[i] > T(0) ? dy[i] : T(0); });
}

template <typename T>
void leaky_relu_backward(T* dx, const T* dy, const T* y, int64_t n, T slope) {
  elementwise<T>(n, 3.0 * sizeof(T),
                 [=](int64_t i) { dx[i] = y[i] > T(0) ? dy[i] : dy[i] * slope; });
}

template <typename T>
void sigmoid_backward(T* dx, const T* dy, const T* y, int64_t n) {
  elementwise<T>(n, 3.0 * sizeof(T), [=](int64_t i) { dx[i] = dy[i] * y[i] * (T(1) - y[i]); });
}

template <typename T>
void tanh_backward(T* dx, const T* dy, const T* y, int64_t n) {
  elementwise<T>(n, 3.0 * sizeof(T), [=](int64_t i) { dx[i] = dy[i] * (T(1) - y[i] * y[i]); });
}

template <typename T>
void softmax_forward(T* y, const T* x, int64_t B, int64_t C) {
  const int64_t rows_per_chunk = std::max<int64_t>(1, kChunk / C);
  chunked_for(
      B, 2.0 * sizeof(T) * static_cast<double>(C),
      [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) {
          const T* xr = x + r * C;
          T* yr = y + r * C;
          T mx = xr[0];
          for (int64_t j = 1; j < C; ++j) mx = std::max(mx, xr[j]);
          T sum = 0;
#pragma omp simd reduction(+ : sum)
          for (int64_t j = 0; j < C; ++j) {
            const T ex = fm::exp(xr[j] - mx);
            yr[j] = ex;
            sum += ex;
          }
          const T inv = T(1) / sum;
#pragma omp simd
          for (int64_t j = 0; j < C; ++j) yr[j] *= inv;
        }
      },
      rows_per_chunk);
}

template <typename T>
void softmax_backward(T* dx, const T* dy, const T* y, int64_t B, int64_t C) {
  const int64_t rows_per_chunk = std::max<int64_t>(1, kChunk / C);
  chunked_for(
      B, 3.0 * sizeof(T) * static_cast<double>(C),
      [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) {
          const T* dyr = dy + r * C;
          const T* yr = y + r * C;
          T* dxr = dx + r * C;
          T dot = 0;
#pragma omp simd reduction(+ : dot)
          for (int64_t j = 0; j < C; ++j) dot += dyr[j] * yr[j];
#pragma omp simd
          for (int64_t j = 0; j < C; ++j) dxr[j] = yr[j] * (dyr[j] - dot);
        }
      },
      rows_per_chunk);
}

#define GK_INSTANTIATE(T)                                                               \
  template void relu_forward<T>(T*, const T*, int64_t);                                 \
  template void leaky_relu_forward<T>(T*, const T*, int64_t, T);                        \
  template void sigmoid_forward<T>(T*, const T*, int64_t);                              \
  template void tanh_forward<T>(T*, const T*, int64_t);                                 \
  template void relu_backward<T>(T*, const T*, const T*, int64_t);                      \
  template void leaky_relu_backward<T>(T*, const T*, const T*, int64_t, T);             \
  template void sigmoid_backward<T>(T*, const T*, const T*, int64_t);                   \
  template void tanh_backward<T>(T*, const T*, const T*, int64_t);                      \
  template void softmax_forward<T>(T*, const T*, int64_t, int64_t);                     \
  template void softmax_backward<T>(T*, const T*, const T*, int64_t, int64_t);
GK_INSTANTIATE(float)
GK_INSTANTIATE(double)
#undef GK_INSTANTIATE

}  // namespace gk
