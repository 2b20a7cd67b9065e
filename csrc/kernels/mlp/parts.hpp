// The pieces the fused epoch is built from (internal to csrc/kernels/mlp/): threading over an
// index range, aligned buffers, and the per-step operations, each calling the one definition of
// its formula (activation.hpp, loss.hpp, sgd.hpp, dense.hpp).
#pragma once

#include <omp.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

#include "kernels/cpu.hpp"
#include "kernels/gemm.hpp"
#include "kernels/gemm_naive.hpp"
#include "kernels/mlp/epoch.hpp"

namespace gk {
namespace mlp {

// Flops per thread before the first layer's own kernels split their work (as gemm's grain).
constexpr double kLayerGrain = 2e6;
// Products up to this many multiply-adds run inline (gemm's naive threshold): for a 2-3-1
// network a call per product is a large part of a step.
constexpr double kInlineProduct = 4096.0;

// f(i) for i in [0, n) on nt threads; a serial loop outside any OpenMP region when nt == 1
// (even an `if(false)` region costs a team set-up, which dominates tiny networks).
template <typename F>
void parallel_for(int64_t n, int nt, F&& f) {
  if (nt <= 1) {
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    if (i == 0) note_team(omp_get_num_threads());
    f(i);
  }
}

// gk::gemm, except that a product small enough for gemm's naive path is inlined here. Same
// arithmetic as gemm's naive path, so the result is bitwise the same.
template <typename T>
void layer_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const T* A,
                int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc, bool accumulate = false,
                const T* bias = nullptr, Act act = Act::none, T slope = T(0)) {
  if (double(M) * N * K > kInlineProduct) {
    gemm<T>(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc, accumulate, bias, act, slope);
    return;
  }
  naive::rows(int64_t(0), M, trans_a, trans_b, N, K, A, lda, B, ldb, C, ldc, accumulate, bias, act,
              slope);
}

// A 64-byte aligned buffer: rows of 16 floats start on cache lines, and vector loads never
// straddle two lines.
template <typename T>
struct Aligned {
  struct Free { void operator()(T* p) const { std::free(p); } };
  std::unique_ptr<T, Free> mem;
  void resize(size_t n) {
    const size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
    mem.reset(static_cast<T*>(std::aligned_alloc(64, bytes > 0 ? bytes : 64)));
    if (!mem) throw std::bad_alloc();
  }
  T* data() const { return mem.get(); }
};

// d = d * act'(y) in place (n values), y the forward output.
template <typename T>
void act_backward_inplace(T* d, const T* y, int64_t n, Act act, T slope);

// Loss of one batch and its gradient w.r.t. the last layer's output. out, grad are (m, C).
template <typename T>
double loss_forward_backward(T* grad, const T* out, int64_t m, int64_t C, const MlpLossParams& p,
                             const int64_t* labels, const T* targets);

// dst (cols, rows) = src (rows, cols)ᵀ.
template <typename T>
void transpose(T* dst, const T* src, int64_t rows, int64_t cols);

// The update rule of the epoch, applied to one parameter array at a time: SGD (sgd.hpp) or
// Adam (adam.hpp), each calling the one definition of its formula.
template <typename T>
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // param INOUT (n), grad IN (n), state INOUT: the rule's arrays for this parameter.
  virtual void update(T* param, const T* grad, const OptState<T>& state, int64_t n) const = 0;
  virtual void end_step() = 0;  // after every parameter of a step was updated
  // The SGD rule, for a first layer that fuses it into its gradient loop; null for others.
  virtual const SgdParams* sgd() const { return nullptr; }
};

template <typename T>
class SgdOptimizer final : public Optimizer<T> {
 public:
  explicit SgdOptimizer(const SgdParams& p) : p_(p) {}
  void update(T* param, const T* grad, const OptState<T>& state, int64_t n) const override;
  void end_step() override { p_.first = false; }
  const SgdParams* sgd() const override { return &p_; }

 private:
  SgdParams p_;
};

// Adam / AdamW: the step's scalars (bias corrections of step t) are computed once per step.
template <typename T>
class AdamOptimizer final : public Optimizer<T> {
 public:
  explicit AdamOptimizer(const AdamParams& p) : p_(p), t_(p.step + 1), c_(coeffs()) {}
  void update(T* param, const T* grad, const OptState<T>& state, int64_t n) const override;
  void end_step() override {
    ++t_;
    c_ = coeffs();
  }

 private:
  AdamCoeffs<T> coeffs() const {
    return adam_coeffs<T>(p_.lr, p_.beta1, p_.beta2, p_.eps, p_.weight_decay, t_, p_.amsgrad,
                          p_.decoupled);
  }
  AdamParams p_;
  int64_t t_;  // the 1-based step being taken
  AdamCoeffs<T> c_;
};

template <typename T>
std::unique_ptr<Optimizer<T>> make_optimizer(const MlpOptimizer& spec);

}  // namespace mlp
}  // namespace gk
