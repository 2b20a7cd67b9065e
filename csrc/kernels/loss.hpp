// Losses, each ONE fused pass that writes the gradient w.r.t. the prediction and returns the
// value. Kernels trust their input (the Python layer validated shapes and dtypes).
//
// Reduction::mean / sum: the return value is the mean / sum of the per-element losses, each
// rounded to T and accumulated in double (as ops_numpy does); `per` is not touched (may be null).
// Reduction::none: `per` receives the per-element (CE: per-row) losses, the return value is 0,
// and grad is the derivative of their sum. Sums run over fixed-size chunks added in order, so the
// value is bitwise the same for any thread count.
#pragma once

#include <cstdint>

namespace gk {

enum class Reduction : int { mean = 0, sum = 1, none = 2 };

// pred, target, grad, per are (n,): |p - y|, grad sign(p - y) (/ n for mean).
template <typename T>
double l1_loss_fused(T* grad, T* per, const T* pred, const T* target, int64_t n, Reduction r);

// (p - y)^2 (half: 0.5 (p - y)^2), grad 2 (p - y) (half: p - y), / n for mean.
template <typename T>
double mse_loss_fused(T* grad, T* per, const T* pred, const T* target, int64_t n, Reduction r,
                      bool half);

// -(y log p + (1 - y) log(1 - p)), each log clamped at -100; grad (p - y) / max(p (1 - p), 1e-12).
// *n_bad receives how many p are outside [0, 1] or NaN (the outputs are then meaningless).
template <typename T>
double bce_loss_fused(T* grad, T* per, int64_t* n_bad, const T* pred, const T* target, int64_t n,
                      Reduction r);

// max(z, 0) - y z + log(1 + e^-|z|), grad sigmoid(z) - y; finite for any finite z, and the
// limit at z = ±inf (0 or ±inf, never inf - inf).
template <typename T>
double bce_with_logits_loss_fused(T* grad, T* per, const T* logits, const T* target, int64_t n,
                                  Reduction r);

// logits and grad are (B, C), labels (B,) in [0, C), per (B,): logsumexp(z) - z[label],
// grad softmax(z) - onehot(label) (/ B for mean).
template <typename T>
double cross_entropy_loss_fused(T* grad, T* per, const T* logits, const int64_t* labels,
                                int64_t B, int64_t C, Reduction r);

}  // namespace gk
