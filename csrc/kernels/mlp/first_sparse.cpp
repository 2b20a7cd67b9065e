// The zero-skipping first layer (see first_layer.hpp and sparse_avx512.hpp) and the choice
// between it and the dense one.
#include <algorithm>
#include <atomic>
#include <vector>

#include "kernels/cpu.hpp"
#include "kernels/mlp/first_layer.hpp"
#include "kernels/mlp/sparse_avx512.hpp"

namespace gk {
namespace mlp {

// The cost model: per step, the sparse layer does (1 - zero_fraction) of the dense FMAs at
// kSparseRelativeRate of the dense rate (its row pairs visit the union of their non-zero k),
// plus a fixed cost per step (sorting the rows, the transposed gather, the zero tests) worth
// kSparseStepRows rows of dense work. Fitted to the epochs of 784-256-10 on raw Fashion-MNIST
// (50% zeros) on an AVX-512 Xeon (issue 10): sparse/dense time 1.16 at batch 128, 0.75 at 512.
constexpr double kSparseRelativeRate = 0.8;
constexpr double kSparseStepRows = 70.0;

bool sparse_pays(double zero_fraction, int64_t m) {
  return (1.0 - zero_fraction) / kSparseRelativeRate + kSparseStepRows / double(m) < 1.0;
}

namespace {

// Test hook (mlp_epoch.hpp): within the sparse layer, a batch skips its zeros when at least
// this fraction of its values are zero; 0 (the default) always, above 1 never. Same bits.
std::atomic<double> g_skip_threshold{0.0};

#if defined(GRADKIT_HAVE_AVX512)
template <typename T>
class SparseFirst final : public FirstLayer<T> {
 public:
  SparseFirst(const MlpLayer<T>& layer, const T* X, int64_t batch, T slope)
      : ly_(layer), X_(X), slope_(slope), ldxt_((batch + 15) / 16 * 16),
        sorted_(size_t(batch)), order_(size_t(2 * batch)), key_(size_t(batch)) {
    const int64_t in = ly_.in, out = ly_.out;
    wt_.resize(size_t(in * out));
    transpose(wt_.data(), ly_.weight, out, in);
    if (ly_.weight_state.buf) {
      buft_.resize(size_t(in * out));
      transpose(buft_.data(), ly_.weight_state.buf, out, in);
    }
    xt_.resize(size_t(in * ldxt_));
  }

  const int64_t* prepare(const int64_t* rows, int64_t m, bool) override {
    // Neighbouring rows with similar zero patterns share more non-zero k in the forward pairs.
    avx512::first_sort_rows(sorted_.data(), order_.data(), key_.data(), X_, rows, m, ly_.in);
    rows_ = sorted_.data();
    const int64_t nonzero =
        avx512::first_gather_transposed(xt_.data(), ldxt_, X_, rows_, m, ly_.in);
    const double values = double(m * ly_.in);
    skip_ = values - double(nonzero) >= g_skip_threshold.load(std::memory_order_relaxed) * values;
    return rows_;
  }

  void forward(T* z, int64_t m) override {
    const int nt = threads_for(2.0 * m * ly_.in * ly_.out, kLayerGrain);
    const int64_t chunk = (m + nt - 1) / nt;
    const MlpLayer<T> ly = ly_;
    const T* X = X_;
    const int64_t* rows = rows_;
    const T* wt = wt_.data();
    const T slope = slope_;
    const bool skip = skip_;
    parallel_for(nt, nt, [=](int64_t t) {
      const int64_t i0 = t * chunk, i1 = std::min(m, i0 + chunk);
      if (i0 < i1)
        avx512::first_forward(z, X, rows, i0, i1, ly.in, wt, ly.out, ly.bias, ly.act, slope, skip);
    });
  }

  void backward_update(const T* dz, int64_t m, const Optimizer<T>& opt) override {
    const SgdParams sgd = *opt.sgd();  // make_sparse_first_layer checked it is SGD
    const int64_t in = ly_.in, out = ly_.out, ldxt = ldxt_;
    const int nt = threads_for(2.0 * m * in * out, kLayerGrain);
    const int64_t chunk = (in + nt - 1) / nt;
    T* wt = wt_.data();
    T* bt = ly_.weight_state.buf ? buft_.data() : nullptr;
    const T* xt = xt_.data();
    const bool skip = skip_;
    parallel_for(nt, nt, [=, &sgd](int64_t t) {
      const int64_t k0 = t * chunk, k1 = std::min(in, k0 + chunk);
      if (k0 < k1) avx512::first_backward_sgd(wt, bt, xt, ldxt, dz, m, out, k0, k1, sgd, skip);
    });
  }

  void finish() override {
    transpose(ly_.weight, wt_.data(), ly_.in, ly_.out);
    if (ly_.weight_state.buf) transpose(ly_.weight_state.buf, buft_.data(), ly_.in, ly_.out);
  }
  bool skips_zeros() const override { return true; }

 private:
  MlpLayer<T> ly_;
  const T* X_;
  T slope_;
  int64_t ldxt_;
  Aligned<T> wt_, buft_, xt_;
  std::vector<int64_t> sorted_;
  std::vector<int32_t> order_;
  std::vector<uint16_t> key_;
  const int64_t* rows_ = nullptr;
  bool skip_ = true;
};
#endif

// Fraction of exact zeros among the given rows of X (K values each).
template <typename T>
double zero_fraction(const T* X, const int64_t* rows, int64_t m, int64_t K) {
  int64_t zeros = 0;
  for (int64_t i = 0; i < m; ++i) {
    const T* x = X + rows[i] * K;
    for (int64_t k = 0; k < K; ++k) zeros += x[k] == T(0);
  }
  return m * K > 0 ? double(zeros) / double(m * K) : 0.0;
}

}  // namespace

void set_sparse_skip_threshold(double min_zero_fraction) {
  g_skip_threshold.store(min_zero_fraction, std::memory_order_relaxed);
}
double sparse_skip_threshold() { return g_skip_threshold.load(std::memory_order_relaxed); }

template <typename T>
std::unique_ptr<FirstLayer<T>> make_sparse_first_layer(const MlpLayer<T>& layer, const T* X,
                                                       int64_t batch, T slope,
                                                       const Optimizer<T>& opt) {
#if defined(GRADKIT_HAVE_AVX512)
  if (active_isa() == Isa::avx512 && opt.sgd() != nullptr)
    return std::make_unique<SparseFirst<T>>(layer, X, batch, slope);
#endif
  return nullptr;
}

template <typename T>
std::unique_ptr<FirstLayer<T>> make_first_layer(const MlpLayer<T>& layer, const T* X,
                                                int64_t batch, T slope, const Optimizer<T>& opt,
                                                SparseInput mode, const int64_t* first_rows,
                                                int64_t first_m) {
  bool sparse = mode == SparseInput::sparse;
  if (mode == SparseInput::automatic)
    sparse = sparse_pays(zero_fraction(X, first_rows, first_m, layer.in), first_m);
  if (sparse)
    if (auto s = make_sparse_first_layer(layer, X, batch, slope, opt)) return s;
  return make_dense_first_layer(layer, X, batch, slope);
}

#define GK_INSTANTIATE(T)                                                                     \
  template std::unique_ptr<FirstLayer<T>> make_sparse_first_layer(                            \
      const MlpLayer<T>&, const T*, int64_t, T, const Optimizer<T>&);                          \
  template std::unique_ptr<FirstLayer<T>> make_first_layer(const MlpLayer<T>&, const T*,       \
                                                           int64_t, T, const Optimizer<T>&,    \
                                                           SparseInput, const int64_t*, int64_t);
GK_INSTANTIATE(float)
GK_INSTANTIATE(double)
#undef GK_INSTANTIATE

}  // namespace mlp
}  // namespace gk
