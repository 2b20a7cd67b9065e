// The first layer of the fused epoch is a strategy: the epoch (epoch.cpp) calls these four steps
// and knows nothing of how they are done. It is the layer that reads the input X, so it is where
// the input's structure (exact zeros of images) can be used.
//
//   dense  (first_dense.cpp)   the GEMM on the batch's rows, any ISA; never looks at zeros
//   sparse (first_sparse.cpp)  weight held transposed for the whole call, exact zeros skipped in
//                              both products and the SGD update fused into the gradient loop
//                              (AVX-512 kernels, sparse_avx512.cpp); bitwise the same either way
//
// With Adam the dense layer runs whatever the mode: the sparse kernels fuse the SGD rule into
// their gradient loop, and an Adam update reads and writes m and v of every weight each step
// (a zero gradient still moves them), so only the products could skip zeros. That saving is
// the same one SGD with momentum gets (its update also touches every weight), but it needs a
// second backward kernel that writes the gradient out for the Optimizer interface; it is not
// written, and this CPU-independent fallback keeps one tested path for Adam on every ISA.
//
// make_first_layer picks one per call (SparseInput), "automatic" from the cost model in
// first_sparse.cpp, measured on the first batch.
#pragma once

#include <cstdint>
#include <memory>

#include "kernels/mlp/epoch.hpp"
#include "kernels/mlp/parts.hpp"

namespace gk {
namespace mlp {

template <typename T>
class FirstLayer {
 public:
  virtual ~FirstLayer() = default;
  // Gathers what the batch's products read. Returns the rows in the order the step runs them
  // (a layer may reorder the batch: the same set of rows, so the same step up to the order of
  // its sums over rows). consecutive: rows[i] == rows[0] + i.
  virtual const int64_t* prepare(const int64_t* rows, int64_t m, bool consecutive) = 0;
  // z (m, OUT) OUT = act(x Wᵀ + b) for the prepared batch.
  virtual void forward(T* z, int64_t m) = 0;
  // The weight gradient from dz (m, OUT) and the weight's update (the bias is the epoch's).
  virtual void backward_update(const T* dz, int64_t m, const Optimizer<T>& opt) = 0;
  // Puts the layer's weight (and its optimizer state) back into the caller's arrays.
  virtual void finish() = 0;
  virtual bool skips_zeros() const = 0;
};

template <typename T>
std::unique_ptr<FirstLayer<T>> make_dense_first_layer(const MlpLayer<T>& layer, const T* X,
                                                      int64_t batch, T slope);

// The zero-skipping layer, or null when this CPU/build has no kernels for it or the optimizer
// is not one it can fuse.
template <typename T>
std::unique_ptr<FirstLayer<T>> make_sparse_first_layer(const MlpLayer<T>& layer, const T* X,
                                                       int64_t batch, T slope,
                                                       const Optimizer<T>& opt);

// Whether skipping zeros pays for a batch of m rows of which `zero_fraction` of the values are 0.
bool sparse_pays(double zero_fraction, int64_t m);

template <typename T>
std::unique_ptr<FirstLayer<T>> make_first_layer(const MlpLayer<T>& layer, const T* X,
                                                int64_t batch, T slope, const Optimizer<T>& opt,
                                                SparseInput mode, const int64_t* first_rows,
                                                int64_t first_m);

}  // namespace mlp
}  // namespace gk
