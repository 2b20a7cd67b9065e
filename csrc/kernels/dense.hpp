// The dense (Linear) layer: forward and backward over a batch, on the GEMM. The one place the
// layer's arithmetic lives; the bindings only check arrays and call these.
#pragma once

#include <cstdint>

#include "kernels/gemm.hpp"

namespace gk {

// g (n) OUT = column sums of d (m, n), each sum over the rows in order (blocks of 16 columns in
// registers; a leftover column in four interleaved parts). The order never depends on threads.
template <typename T>
void column_sums(T* g, const T* d, int64_t m, int64_t n);

// y (B, OUT) = act(x (B, IN) w (OUT, IN)ᵀ + b (OUT, or null)).
template <typename T>
void linear_forward(T* y, const T* x, const T* w, const T* b, int64_t B, int64_t IN, int64_t OUT,
                    Act act, T slope);

// dw (OUT, IN) += dyᵀ x; db (OUT) += column sums of dy (when db is not null);
// dx (B, IN) = dy w (when dx is not null). dy is (B, OUT), x (B, IN), w (OUT, IN).
template <typename T>
void linear_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, int64_t B,
                     int64_t IN, int64_t OUT);

}  // namespace gk
