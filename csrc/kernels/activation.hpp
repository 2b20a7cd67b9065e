// Activations, elementwise over n values (softmax: row-wise over (B, C)). Backward takes the
// forward OUTPUT y (what a layer caches), writes dx. Outputs may not alias inputs.
#pragma once

#include <cstdint>

namespace gk {

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
