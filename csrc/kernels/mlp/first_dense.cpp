// The dense first layer: the batch's rows gathered (or read in place when consecutive), then the
// GEMM for the forward product and the weight gradient, then the optimizer's update.
#include <cstring>
#include <vector>

#include "kernels/mlp/first_layer.hpp"

namespace gk {
namespace mlp {
namespace {

template <typename T>
class DenseFirst final : public FirstLayer<T> {
 public:
  DenseFirst(const MlpLayer<T>& layer, const T* X, int64_t batch, T slope)
      : ly_(layer), X_(X), slope_(slope), xb_(size_t(batch * layer.in)),
        dw_(size_t(layer.out * layer.in)) {}

  const int64_t* prepare(const int64_t* rows, int64_t m, bool consecutive) override {
    const int64_t in = ly_.in;
    xin_ = X_ + rows[0] * in;
    if (!consecutive) {
      T* xbuf = xb_.data();
      const T* X = X_;
      parallel_for(m, threads_for(double(m * in)), [=](int64_t i) {
        std::memcpy(xbuf + i * in, X + rows[i] * in, sizeof(T) * size_t(in));
      });
      xin_ = xbuf;
    }
    return rows;
  }

  void forward(T* z, int64_t m) override {
    layer_gemm<T>(false, true, m, ly_.out, ly_.in, xin_, ly_.in, ly_.weight, ly_.in, z, ly_.out,
                  /*accumulate=*/false, ly_.bias, ly_.act, slope_);
  }

  void backward_update(const T* dz, int64_t m, const Optimizer<T>& opt) override {
    layer_gemm<T>(true, false, ly_.out, ly_.in, m, dz, ly_.out, xin_, ly_.in, dw_.data(), ly_.in);
    opt.update(ly_.weight, dw_.data(), ly_.weight_state, ly_.out * ly_.in);
  }

  void finish() override {}
  bool skips_zeros() const override { return false; }

 private:
  MlpLayer<T> ly_;
  const T* X_;
  T slope_;
  const T* xin_ = nullptr;
  std::vector<T> xb_, dw_;
};

}  // namespace

template <typename T>
std::unique_ptr<FirstLayer<T>> make_dense_first_layer(const MlpLayer<T>& layer, const T* X,
                                                      int64_t batch, T slope) {
  return std::make_unique<DenseFirst<T>>(layer, X, batch, slope);
}

template std::unique_ptr<FirstLayer<float>> make_dense_first_layer(const MlpLayer<float>&,
                                                                   const float*, int64_t, float);
template std::unique_ptr<FirstLayer<double>> make_dense_first_layer(const MlpLayer<double>&,
                                                                    const double*, int64_t,
                                                                    double);

}  // namespace mlp
}  // namespace gk
