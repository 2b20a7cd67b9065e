// Whole-epoch MLP training (see mlp.hpp). The GEMMs go through gk::gemm; the small elementwise
// pieces (loss, activation backward, bias gradient, SGD update) live here so that one epoch is
// one call with its buffers allocated once.
#include "kernels/mlp.hpp"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include "kernels/cpu.hpp"
#include "kernels/gemm_naive.hpp"
#include "kernels/loss.hpp"
#if defined(GRADKIT_HAVE_AVX512)
#include "kernels/mlp_first.hpp"
#endif

namespace gk {
namespace {

// gk::gemm, except that a product small enough for gemm's naive path is inlined here: for a
// 2-3-1 network a call per product is a large part of a step. Same arithmetic as gemm's naive
// path, so the result is bitwise the same.
template <typename T>
void layer_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const T* A,
                int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc, bool accumulate = false,
                const T* bias = nullptr, Act act = Act::none, T slope = T(0)) {
  if (double(M) * N * K > 4096.0) {
    gemm<T>(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc, accumulate, bias, act, slope);
    return;
  }
  naive::rows(int64_t(0), M, trans_a, trans_b, N, K, A, lda, B, ldb, C, ldc, accumulate, bias, act,
              slope);
}

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

// dz = dy * act'(y), in place on d (n values), from the forward output y (activation.hpp).
template <typename T>
void act_backward_inplace(T* d, const T* y, int64_t n, Act act, T slope) {
  if (act == Act::none) return;
  const int nt = threads_for(double(n));
  const int64_t chunk = (n + nt - 1) / nt;
  parallel_for(nt, nt, [=](int64_t t) {
    const int64_t b = t * chunk, e = std::min(n, b + chunk);
    if (b < e) act::backward_range(act, d + b, d + b, y + b, e - b, slope);
  });
}

// Loss of one batch and its gradient w.r.t. the last layer's output: the standalone fused loss
// kernels of loss.hpp (one definition). out is (m, C); grad (m, C) OUT. Returns the reduced value.
template <typename T>
double loss_forward_backward(T* grad, const T* out, int64_t m, int64_t C, const MlpLossParams& p,
                             const int64_t* labels, const T* targets) {
  const Reduction r = p.mean ? Reduction::mean : Reduction::sum;
  switch (p.kind) {
    case MlpLoss::cross_entropy:
      return cross_entropy_loss_fused(grad, static_cast<T*>(nullptr), out, labels, m, C, r);
    case MlpLoss::mse:
      return mse_loss_fused(grad, static_cast<T*>(nullptr), out, targets, m * C, r, p.half);
    case MlpLoss::l1:
      return l1_loss_fused(grad, static_cast<T*>(nullptr), out, targets, m * C, r);
    default:
      return bce_with_logits_loss_fused(grad, static_cast<T*>(nullptr), out, targets, m * C, r);
  }
}

// g (n) OUT = column sums of d (m, n). Blocks of 16 columns accumulate in registers, each sum
// over the rows in order (through memory, every add would wait for the previous store); the
// columns left over are summed in four interleaved parts. The order never depends on threads.
template <typename T>
void column_sums(T* g, const T* d, int64_t m, int64_t n) {
  constexpr int64_t JB = 16;
  int64_t j0 = 0;
  for (; j0 + JB <= n; j0 += JB) {
    T acc[JB] = {};
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < JB; ++j) acc[j] += d[i * n + j0 + j];
    for (int64_t j = 0; j < JB; ++j) g[j0 + j] = acc[j];
  }
  for (; j0 < n; ++j0) {  // a leftover column alone: four interleaved sums over the rows
    T a0 = T(0), a1 = T(0), a2 = T(0), a3 = T(0);
    int64_t i = 0;
    for (; i + 4 <= m; i += 4) {
      a0 += d[i * n + j0];
      a1 += d[(i + 1) * n + j0];
      a2 += d[(i + 2) * n + j0];
      a3 += d[(i + 3) * n + j0];
    }
    for (; i < m; ++i) a0 += d[i * n + j0];
    g[j0] = (a0 + a1) + (a2 + a3);
  }
}

// PyTorch SGD (sgd.hpp) on one parameter array (n values), in place on param and buf.
template <typename T>
void sgd_update(T* param, const T* grad, T* buf, int64_t n, const SgdParams& s) {
  const ScalarSgd<T> rule(s);
  const int nt = threads_for(4.0 * double(n));
  const int64_t chunk = (n + nt - 1) / nt;
  parallel_for(nt, nt, [=, &rule](int64_t t) {
    const int64_t b = t * chunk, e = std::min(n, b + chunk);
    if (b < e) sgd_range(param + b, buf ? buf + b : nullptr, grad + b, e - b, rule);
  });
}

// A 64-byte aligned buffer: rows of 16 floats then start on cache lines, and the AVX-512 loads
// of the transposed first layer never straddle two lines (which halved their speed).
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

// dst (cols, rows) = src (rows, cols)ᵀ, in 32 x 32 blocks.
template <typename T>
void transpose(T* dst, const T* src, int64_t rows, int64_t cols) {
  constexpr int64_t B = 32;
  for (int64_t i0 = 0; i0 < rows; i0 += B)
    for (int64_t j0 = 0; j0 < cols; j0 += B)
      for (int64_t i = i0; i < std::min(rows, i0 + B); ++i)
        for (int64_t j = j0; j < std::min(cols, j0 + B); ++j) dst[j * rows + i] = src[i * cols + j];
}

}  // namespace

// Input batches with at least this fraction of exact zeros skip them in the first layer. The
// sparse forward product pairs rows over the union of their non-zero k, so it does more FMAs
// than useful ones; per useful FMA it runs at 58-79% of the dense kernel's rate (50-10% zeros
// at random), which pays from about 40% zeros (measured with K = 784, N = 256).
static std::atomic<double> g_sparse_min_zero_fraction{0.4};  // set while an epoch may run
void set_mlp_sparse_threshold(double min_zero_fraction) {
  g_sparse_min_zero_fraction.store(min_zero_fraction, std::memory_order_relaxed);
}
double mlp_sparse_threshold() {
  return g_sparse_min_zero_fraction.load(std::memory_order_relaxed);
}

template <typename T>
int64_t mlp_epoch(double* step_loss, std::vector<MlpLayer<T>>& layers, T slope,
                  const MlpLossParams& loss, const SgdParams& sgd_in, const T* X,
                  const int64_t* labels, const T* targets, const int64_t* perm,
                  int64_t perm_stride, int64_t n_rows, int64_t batch_size, int64_t first_step,
                  int64_t n_steps) {
  // A batch larger than the data is the whole data (one step per epoch): buffers need no more.
  const int64_t batch = std::min(batch_size, n_rows);
  const int64_t steps_per_epoch = (n_rows + batch - 1) / batch;
  const size_t L = layers.size();
  const int64_t in0 = layers.front().in;
  const int64_t out0 = layers.front().out;
  const int64_t n_out = layers.back().out;
  int64_t width = in0;
  for (const auto& l : layers) width = std::max(width, l.out);

  // The first layer's weight is held transposed for the whole call (see mlp_first.hpp) when the
  // AVX-512 kernels can run and the layer is big enough for them to matter; tiny networks keep
  // the inlined naive products.
  bool first_t = false;
#if defined(GRADKIT_HAVE_AVX512)
  first_t = active_isa() == Isa::avx512 && double(in0) * out0 >= 4096.0;
#endif
  const int64_t ldxt = (batch + 15) / 16 * 16;
  Aligned<T> wt, buft, xt;
  MlpLayer<T>& l0 = layers.front();
  if (first_t) {
    wt.resize(size_t(in0 * out0));
    transpose(wt.data(), l0.weight, out0, in0);
    if (l0.weight_buf) {
      buft.resize(size_t(in0 * out0));
      transpose(buft.data(), l0.weight_buf, out0, in0);
    }
    xt.resize(size_t(in0 * ldxt));
  }
  // Puts the transposed first layer back into the caller's arrays (on every return).
  auto finish = [&](int64_t done) {
    if (first_t) {
      transpose(l0.weight, wt.data(), in0, out0);
      if (l0.weight_buf) transpose(l0.weight_buf, buft.data(), in0, out0);
    }
    return done;
  };

  // Every buffer of the call, allocated once.
  std::vector<T> xb(first_t ? 0 : size_t(batch * in0));
  std::vector<T> tb(loss.kind == MlpLoss::cross_entropy ? 0 : size_t(batch * n_out));
  std::vector<int64_t> lb(loss.kind == MlpLoss::cross_entropy ? size_t(batch) : 0);
  std::vector<Aligned<T>> act(L);
  std::vector<std::vector<T>> dw(L), db(L);
  for (size_t l = 0; l < L; ++l) {
    act[l].resize(size_t(batch * layers[l].out));
    dw[l].resize(first_t && l == 0 ? 0 : size_t(layers[l].out * layers[l].in));
    db[l].resize(layers[l].bias ? size_t(layers[l].out) : 0);
  }
  // Narrow later layers (at most 16 outputs, e.g. the 10 classes) run their forward product
  // through the first layer's dense kernel on a transposed copy of the weight made each step:
  // the GEMM would fill 10 of its 32-wide panels and pack both operands. Each output is one
  // sum in k order from zero, then the bias: the GEMM's bits when in <= 256 (one K block).
  std::vector<Aligned<T>> narrow_wt(L);
  std::vector<int64_t> iota;
  if (first_t) {
    iota.resize(size_t(batch));
    for (int64_t i = 0; i < batch; ++i) iota[size_t(i)] = i;
    for (size_t l = 1; l < L; ++l)
      if (layers[l].out <= 16) narrow_wt[l].resize(size_t(layers[l].in * layers[l].out));
  }
  std::vector<int64_t> sorted_rows(first_t ? size_t(batch) : 0);
  std::vector<int32_t> sort_order(first_t ? size_t(2 * batch) : 0);
  std::vector<uint16_t> sort_key(first_t ? size_t(batch) : 0);
  Aligned<T> d0, d1;
  d0.resize(size_t(batch * width));
  d1.resize(size_t(batch * width));

  SgdParams sgd = sgd_in;
  for (int64_t s = 0; s < n_steps; ++s) {
    const int64_t epoch = (first_step + s) / steps_per_epoch;
    const int64_t offset = ((first_step + s) % steps_per_epoch) * batch;
    const int64_t m = std::min(batch, n_rows - offset);
    const int64_t* rows = perm + epoch * perm_stride + offset;
#if defined(GRADKIT_HAVE_AVX512)
    // The transposed first layer takes the batch's rows in an order that puts similar zero
    // patterns side by side (its forward product pairs neighbouring rows). The batch is the
    // same set of rows, so the step is the same up to the order of its sums over rows.
    if (first_t) {
      avx512::first_sort_rows(sorted_rows.data(), sort_order.data(), sort_key.data(), X, rows, m,
                              in0);
      rows = sorted_rows.data();
    }
#endif

    // Gather the batch (and its targets) into contiguous buffers, unless its rows already are
    // consecutive (no shuffle): then read X in place. The transposed first layer reads rows of
    // X in place and gathers the batch transposed instead, counting its zeros.
    int64_t gaps = 0;  // integer ops and no early exit: this loop vectorises
    for (int64_t i = 1; i < m; ++i) gaps |= rows[i] ^ (rows[0] + i);
    const bool consecutive = gaps == 0;
    const T* xin = X + rows[0] * in0;
    const int64_t* lab = labels ? labels + rows[0] : nullptr;
    const T* tgt = targets ? targets + rows[0] * n_out : nullptr;
    bool sparse = false;
#if defined(GRADKIT_HAVE_AVX512)
    if (first_t) {
      const int64_t nonzero = avx512::first_gather_transposed(xt.data(), ldxt, X, rows, m, in0);
      sparse = double(m * in0 - nonzero) >= mlp_sparse_threshold() * double(m * in0);
    }
#endif
    if (!consecutive) {
      if (!first_t) {
        T* xbuf = xb.data();
        parallel_for(m, threads_for(double(m * in0)), [=](int64_t i) {
          std::memcpy(xbuf + i * in0, X + rows[i] * in0, sizeof(T) * size_t(in0));
        });
        xin = xbuf;
      }
      if (loss.kind == MlpLoss::cross_entropy) {
        for (int64_t i = 0; i < m; ++i) lb[size_t(i)] = labels[rows[i]];
        lab = lb.data();
      } else {
        for (int64_t i = 0; i < m; ++i)
          std::memcpy(&tb[size_t(i * n_out)], targets + rows[i] * n_out, sizeof(T) * size_t(n_out));
        tgt = tb.data();
      }
    }

    // Forward: a_l = act(a_{l-1} W_lᵀ + b_l), bias and activation fused into the GEMM.
    const T* input = xin;
    for (size_t l = 0; l < L; ++l) {
      const MlpLayer<T>& ly = layers[l];
      if (first_t && l == 0) {
#if defined(GRADKIT_HAVE_AVX512)
        T* z = act[0].data();
        const T* wp = wt.data();
        const int nt = threads_for(2.0 * m * in0 * out0, 2e6);
        const int64_t chunk = (m + nt - 1) / nt;
        parallel_for(nt, nt, [=](int64_t t) {
          const int64_t i0 = t * chunk, i1 = std::min(m, i0 + chunk);
          if (i0 < i1)
            avx512::first_forward(z, X, rows, i0, i1, in0, wp, out0, ly.bias, ly.act, slope,
                                  sparse);
        });
#endif
      } else if (narrow_wt[l].data() && double(m) * ly.in * ly.out > 4096.0) {
#if defined(GRADKIT_HAVE_AVX512)
        transpose(narrow_wt[l].data(), ly.weight, ly.out, ly.in);
        avx512::first_forward(act[l].data(), input, iota.data(), 0, m, ly.in,
                              narrow_wt[l].data(), ly.out, ly.bias, ly.act, slope, false);
#endif
      } else {
        layer_gemm<T>(false, true, m, ly.out, ly.in, input, ly.in, ly.weight, ly.in,
                      act[l].data(), ly.out, /*accumulate=*/false, ly.bias, ly.act, slope);
      }
      input = act[l].data();
    }

    // Loss and dL/d(output) in one pass, then through the last activation.
    T* dz = d0.data();
    T* dnext = d1.data();
    const double value = loss_forward_backward(dz, act[L - 1].data(), m, n_out, loss, lab, tgt);
    step_loss[s] = value;
    if (!std::isfinite(value)) return finish(s);
    act_backward_inplace(dz, act[L - 1].data(), m * n_out, layers[L - 1].act, slope);

    // Backward: dW = dzᵀ a_{l-1}, db = column sums of dz, dz_{l-1} = (dz W) * act'(a_{l-1}).
    // The transposed first layer computes its weight gradient and update in one pass.
    for (size_t l = L; l-- > 0;) {
      const MlpLayer<T>& ly = layers[l];
      const T* a_prev = l > 0 ? act[l - 1].data() : xin;
      if (first_t && l == 0) {
#if defined(GRADKIT_HAVE_AVX512)
        T* wp = wt.data();
        T* bp = l0.weight_buf ? buft.data() : nullptr;
        const T* xp = xt.data();
        const T* dzp = dz;
        const int nt = threads_for(2.0 * m * in0 * out0, 2e6);
        const int64_t chunk = (in0 + nt - 1) / nt;
        parallel_for(nt, nt, [=, &sgd](int64_t t) {
          const int64_t k0 = t * chunk, k1 = std::min(in0, k0 + chunk);
          if (k0 < k1)
            avx512::first_backward_sgd(wp, bp, xp, ldxt, dzp, m, out0, k0, k1, sgd, sparse);
        });
#endif
      } else {
        layer_gemm<T>(true, false, ly.out, ly.in, m, dz, ly.out, a_prev, ly.in, dw[l].data(),
                      ly.in);
      }
      if (ly.bias) column_sums(db[l].data(), dz, m, ly.out);
      if (l > 0) {
        layer_gemm<T>(false, false, m, ly.in, ly.out, dz, ly.out, ly.weight, ly.in, dnext, ly.in);
        act_backward_inplace(dnext, act[l - 1].data(), m * ly.in, layers[l - 1].act, slope);
        std::swap(dz, dnext);
      }
    }

    // SGD on every other parameter, after all gradients are known.
    for (size_t l = 0; l < L; ++l) {
      MlpLayer<T>& ly = layers[l];
      if (!(first_t && l == 0)) sgd_update(ly.weight, dw[l].data(), ly.weight_buf, ly.out * ly.in, sgd);
      if (ly.bias) sgd_update(ly.bias, db[l].data(), ly.bias_buf, ly.out, sgd);
    }
    sgd.first = false;
  }
  return finish(n_steps);
}

#define GK_INSTANTIATE(T)                                                                     \
  template int64_t mlp_epoch<T>(double*, std::vector<MlpLayer<T>>&, T, const MlpLossParams&, \
                                const SgdParams&, const T*, const int64_t*, const T*,       \
                                const int64_t*, int64_t, int64_t, int64_t, int64_t, int64_t);
GK_INSTANTIATE(float)
GK_INSTANTIATE(double)
#undef GK_INSTANTIATE

}  // namespace gk
