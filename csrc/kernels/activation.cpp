#include "kernels/activation.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/chunks.hpp"
#include "kernels/fastmath.hpp"

namespace gk {

// The elementwise kernels: act::forward_range / backward_range over fixed chunks.
template <typename T>
void forward(Act a, T* y, const T* x, int64_t n, T slope) {
  chunked_for(n, 2.0 * sizeof(T),
              [&](int64_t b, int64_t e) { act::forward_range(a, y + b, x + b, e - b, slope); });
}

template <typename T>
void backward(Act a, T* dx, const T* dy, const T* y, int64_t n, T slope) {
  chunked_for(n, 3.0 * sizeof(T), [&](int64_t b, int64_t e) {
    act::backward_range(a, dx + b, dy + b, y + b, e - b, slope);
  });
}

template <typename T>
void relu_forward(T* y, const T* x, int64_t n) { forward(Act::relu, y, x, n, T(0)); }
template <typename T>
void leaky_relu_forward(T* y, const T* x, int64_t n, T slope) {
  forward(Act::leaky_relu, y, x, n, slope);
}
template <typename T>
void sigmoid_forward(T* y, const T* x, int64_t n) { forward(Act::sigmoid, y, x, n, T(0)); }
template <typename T>
void tanh_forward(T* y, const T* x, int64_t n) { forward(Act::tanh, y, x, n, T(0)); }

template <typename T>
void relu_backward(T* dx, const T* dy, const T* y, int64_t n) {
  backward(Act::relu, dx, dy, y, n, T(0));
}
template <typename T>
void leaky_relu_backward(T* dx, const T* dy, const T* y, int64_t n, T slope) {
  backward(Act::leaky_relu, dx, dy, y, n, slope);
}
template <typename T>
void sigmoid_backward(T* dx, const T* dy, const T* y, int64_t n) {
  backward(Act::sigmoid, dx, dy, y, n, T(0));
}
template <typename T>
void tanh_backward(T* dx, const T* dy, const T* y, int64_t n) {
  backward(Act::tanh, dx, dy, y, n, T(0));
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
