// Activations: each formula and its derivative written ONCE here, as inline scalar functions and
// range functions, used by the standalone kernels (activation.cpp), the GEMM epilogue and the
// fused epoch alike. Backward takes the forward OUTPUT y (what a layer caches).
//
// Everything inline is `static` (internal linkage): units compiled with other -march flags
// include this header too, and must never share these bodies through the linker.
// NaN propagates as in ops_numpy (np.maximum keeps NaN): relu(NaN) = leaky_relu(NaN) = NaN.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/fastmath.hpp"

namespace gk {

enum class Act : int { none = 0, relu = 1, leaky_relu = 2, sigmoid = 3, tanh = 4 };

namespace act {

// ---- y = f(x) ---------------------------------------------------------------------------------
// 0 only where x < 0 (false for NaN); -0.0 stays -0.0 as np.maximum(-0.0, 0) gives.
template <typename T> static inline T relu(T x) { return x < T(0) ? T(0) : x; }
template <typename T> static inline T leaky_relu(T x, T slope) { return x < T(0) ? x * slope : x; }
// e^-|x| never overflows; 1/(1+e) for x >= 0, e/(1+e) below.
template <typename T> static inline T sigmoid(T x) {
  const T e = fm::exp(-std::fabs(x));
  const T inv = T(1) / (T(1) + e);
  return x >= T(0) ? inv : e * inv;
}
template <typename T> static inline T tanh(T x) { return fm::tanh(x); }

template <typename T> static inline T forward(Act a, T x, T slope) {
  switch (a) {
    case Act::relu: return relu(x);
    case Act::leaky_relu: return leaky_relu(x, slope);
    case Act::sigmoid: return sigmoid(x);
    case Act::tanh: return tanh(x);
    default: return x;
  }
}

// ---- dx = dy * f'(x), from y = f(x) -----------------------------------------------------------
template <typename T> static inline T relu_grad(T dy, T y) { return y > T(0) ? dy : T(0); }
template <typename T> static inline T leaky_relu_grad(T dy, T y, T slope) {
  return y > T(0) ? dy : dy * slope;
}
template <typename T> static inline T sigmoid_grad(T dy, T y) { return dy * y * (T(1) - y); }
template <typename T> static inline T tanh_grad(T dy, T y) { return dy * (T(1) - y * y); }

// ---- over ranges: the loops every caller runs (in its own chunks / threads) -------------------
// y (n) OUT = f(x (n)); y may equal x.
template <typename T>
static inline void forward_range(Act a, T* y, const T* x, int64_t n, T slope) {
  switch (a) {
    case Act::relu:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) y[i] = relu(x[i]);
      break;
    case Act::leaky_relu:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) y[i] = leaky_relu(x[i], slope);
      break;
    case Act::sigmoid:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) y[i] = sigmoid(x[i]);
      break;
    case Act::tanh:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) y[i] = tanh(x[i]);
      break;
    default:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i];
  }
}

// dx (n) OUT = dy * f'(from y); dx may equal dy (in place).
template <typename T>
static inline void backward_range(Act a, T* dx, const T* dy, const T* y, int64_t n, T slope) {
  switch (a) {
    case Act::relu:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) dx[i] = relu_grad(dy[i], y[i]);
      break;
    case Act::leaky_relu:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) dx[i] = leaky_relu_grad(dy[i], y[i], slope);
      break;
    case Act::sigmoid:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) dx[i] = sigmoid_grad(dy[i], y[i]);
      break;
    case Act::tanh:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) dx[i] = tanh_grad(dy[i], y[i]);
      break;
    default:
      if (dx != dy)
        for (int64_t i = 0; i < n; ++i) dx[i] = dy[i];
  }
}

}  // namespace act

// ---- the standalone kernels (activation.cpp): chunked over threads, same formulas -------------
// x, y are (n,)
template <typename T> void relu_forward(T* y, const T* x, int64_t n);
template <typename T> void leaky_relu_forward(T* y, const T* x, int64_t n, T slope);
template <typename T> void sigmoid_forward(T* y, const T* x, int64_t n);
template <typename T> void tanh_forward(T* y, const T* x, int64_t n);

// dx, dy, y are (n,)
template <typename T> void relu_backward(T* dx, const T* dy, const T* y, int64_t n);
template <typename T> void leaky_relu_backward(T* dx, const T* dy, const T* y, int64_t n, T slope);
template <typename T> void sigmoid_backward(T* dx, const T* dy, const T* y, int64_t n);
template <typename T> void tanh_backward(T* dx, const T* dy, const T* y, int64_t n);

// x, y are (B, C): y = e^(x - rowmax) / rowsum
template <typename T> void softmax_forward(T* y, const T* x, int64_t B, int64_t C);
// dx, dy, y are (B, C): dx = y * (dy - rowsum(dy * y))
template <typename T> void softmax_backward(T* dx, const T* dy, const T* y, int64_t B, int64_t C);

}  // namespace gk
