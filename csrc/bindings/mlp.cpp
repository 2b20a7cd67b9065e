// Binding of the whole-epoch MLP trainer. Arrays are checked (exact dtype, C-contiguous,
// shapes) and the kernel runs with the GIL released; nothing is copied.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <string>
#include <vector>

#include "bindings/common.hpp"
#include "kernels/mlp/epoch.hpp"

namespace py = pybind11;
using gkpy::carray;

namespace {

// The array behind `obj`, refused unless it has dtype T and is C-contiguous (never copied).
template <typename T>
carray<T> exact(const py::handle& obj, const std::string& name) {
  if (!carray<T>::check_(obj))
    throw py::type_error(name + " must be a C-contiguous numpy array of the parameters' dtype");
  return py::reinterpret_borrow<carray<T>>(obj);
}

// Adam's arrays for one parameter of `size` values: moments = [exp_avg, exp_avg_sq] and, with
// amsgrad, max_exp_avg_sq after them.
template <typename T>
void adam_state(gk::OptState<T>* state, std::vector<carray<T>>* keep, const py::handle& moments,
                int64_t size, bool amsgrad, const std::string& name) {
  const size_t want = amsgrad ? 3 : 2;
  if (!py::isinstance<py::sequence>(moments) || py::len(moments) != want)
    throw py::value_error(name + " must be a list of " + std::to_string(want) +
                          " arrays (exp_avg, exp_avg_sq" + (amsgrad ? ", max_exp_avg_sq)" : ")"));
  auto seq = py::reinterpret_borrow<py::sequence>(moments);
  T** slots[3] = {&state->m, &state->v, &state->vmax};
  for (size_t k = 0; k < want; ++k) {
    const std::string item = name + "[" + std::to_string(k) + "]";
    auto a = exact<T>(seq[k], item);
    gkpy::require_dim(a.size(), size, ("size of " + item).c_str());
    *slots[k] = a.mutable_data();
    keep->push_back(a);
  }
}

template <typename T>
int64_t run(py::list weights, py::list biases, py::list weight_bufs, py::list bias_bufs,
            const std::vector<int>& acts, double slope, int loss_kind, bool mean, bool half,
            py::handle X_obj, py::handle labels_obj, py::handle targets_obj, py::handle perm_obj,
            int64_t batch, int64_t first_step, int64_t n_steps, const gk::MlpOptimizer& optimizer,
            py::list weight_moments, py::list bias_moments, py::handle step_loss_obj,
            int sparse_input) {
  const size_t L = weights.size();
  if (L == 0 || biases.size() != L || weight_bufs.size() != L || bias_bufs.size() != L ||
      acts.size() != L)
    throw py::value_error("weights, biases, buffers and activations must have one entry per layer");
  const bool adam = optimizer.kind == gk::MlpOptimizer::Kind::adam;
  if (adam && (weight_moments.size() != L || bias_moments.size() != L))
    throw py::value_error("with Adam, weight_moments and bias_moments must have one entry per "
                          "layer");
  const bool amsgrad = optimizer.adam.amsgrad;
  const bool momentum = !adam && optimizer.sgd.momentum != 0.0;
  std::vector<carray<T>> keep;  // holds references while the GIL is released
  std::vector<gk::MlpLayer<T>> layers(L);
  int64_t in = -1;
  for (size_t l = 0; l < L; ++l) {
    const std::string idx = "[" + std::to_string(l) + "]";
    auto w = exact<T>(weights[l], "weights" + idx);
    gkpy::require_ndim(w, 2, ("weights" + idx).c_str());
    auto& ly = layers[l];
    ly.out = w.shape(0);
    ly.in = w.shape(1);
    if (in >= 0) gkpy::require_dim(ly.in, in, ("in_features of layer " + std::to_string(l)).c_str());
    in = ly.out;
    ly.weight = w.mutable_data();
    if (acts[l] < static_cast<int>(gk::Act::none) || acts[l] > static_cast<int>(gk::Act::tanh))
      throw py::value_error("acts" + idx + "=" + std::to_string(acts[l]) + " is not an activation code");
    ly.act = static_cast<gk::Act>(acts[l]);
    keep.push_back(w);
    if (!biases[l].is_none()) {
      auto b = exact<T>(biases[l], "biases" + idx);
      gkpy::require_dim(b.size(), ly.out, ("size of biases" + idx).c_str());
      ly.bias = b.mutable_data();
      keep.push_back(b);
    }
    if (momentum) {
      auto wb = exact<T>(weight_bufs[l], "weight_bufs" + idx);
      gkpy::require_dim(wb.size(), w.size(), ("size of weight_bufs" + idx).c_str());
      ly.weight_state.buf = wb.mutable_data();
      keep.push_back(wb);
      if (ly.bias) {
        auto bb = exact<T>(bias_bufs[l], "bias_bufs" + idx);
        gkpy::require_dim(bb.size(), ly.out, ("size of bias_bufs" + idx).c_str());
        ly.bias_state.buf = bb.mutable_data();
        keep.push_back(bb);
      }
    }
    if (adam) {
      adam_state<T>(&ly.weight_state, &keep, weight_moments[l], w.size(), amsgrad,
                    "weight_moments" + idx);
      if (ly.bias)
        adam_state<T>(&ly.bias_state, &keep, bias_moments[l], ly.out, amsgrad,
                      "bias_moments" + idx);
    }
  }
  auto X = exact<T>(X_obj, "X");
  gkpy::require_ndim(X, 2, "X");
  gkpy::require_dim(X.shape(1), layers.front().in, "X columns");
  if (!py::isinstance<carray<int64_t>>(perm_obj) || !carray<int64_t>::check_(perm_obj))
    throw py::type_error("perm must be a C-contiguous int64 array");
  auto perm = py::reinterpret_borrow<carray<int64_t>>(perm_obj);
  if (!carray<double>::check_(step_loss_obj))
    throw py::type_error("step_loss must be a C-contiguous float64 array");
  auto step_loss = py::reinterpret_borrow<carray<double>>(step_loss_obj);
  const int64_t n_perm = perm.size();
  const int64_t n_rows = X.shape(0);
  if (n_rows < 1 || n_perm % n_rows != 0)
    throw py::value_error("perm must hold whole epochs: a multiple of X's rows");
  // One epoch's order serves every epoch of the call; several are taken in turn.
  const int64_t perm_stride = n_perm == n_rows ? 0 : n_rows;
  const int64_t steps_per_epoch = batch < 1 ? 0 : (n_rows + batch - 1) / batch;
  if (batch < 1 || first_step < 0 || n_steps < 0 ||
      (perm_stride != 0 && first_step + n_steps > steps_per_epoch * (n_perm / n_rows)))
    throw py::value_error("steps out of range for the permutation and batch size");
  gkpy::require_dim(step_loss.size(), n_steps, "step_loss size");
  const int64_t* pv = perm.data();
  // Rows of X to gather: never out of range (min/max vectorise; an empty perm gathers nothing).
  int64_t lo = n_perm > 0 ? pv[0] : 0, hi = n_perm > 0 ? pv[0] : -1;
  for (int64_t i = 1; i < n_perm; ++i) {
    lo = std::min(lo, pv[i]);
    hi = std::max(hi, pv[i]);
  }
  if (n_perm > 0 && (lo < 0 || hi >= n_rows))
    throw py::value_error("perm must hold row indices in [0, " + std::to_string(n_rows) + ")");

  gk::MlpLossParams loss;
  if (loss_kind < static_cast<int>(gk::MlpLoss::cross_entropy) ||
      loss_kind > static_cast<int>(gk::MlpLoss::bce_with_logits))
    throw py::value_error("loss=" + std::to_string(loss_kind) + " is not a loss code");
  loss.kind = static_cast<gk::MlpLoss>(loss_kind);
  loss.mean = mean;
  loss.half = half;
  const int64_t* labels = nullptr;
  const T* targets = nullptr;
  carray<int64_t> lab;
  carray<T> tar;
  if (loss.kind == gk::MlpLoss::cross_entropy) {
    if (!carray<int64_t>::check_(labels_obj))
      throw py::type_error("labels must be a C-contiguous int64 array");
    lab = py::reinterpret_borrow<carray<int64_t>>(labels_obj);
    gkpy::require_dim(lab.size(), X.shape(0), "number of labels");
    labels = lab.data();
    const int64_t classes = layers.back().out;
    for (int64_t i = 0; i < lab.size(); ++i)
      if (labels[i] < 0 || labels[i] >= classes)
        throw py::value_error("labels must be in [0, " + std::to_string(classes) + ")");
  } else {
    tar = exact<T>(targets_obj, "targets");
    gkpy::require_dim(tar.size(), X.shape(0) * layers.back().out, "size of targets");
    targets = tar.data();
  }
  if (sparse_input < 0 || sparse_input > static_cast<int>(gk::SparseInput::automatic))
    throw py::value_error("sparse_input=" + std::to_string(sparse_input) +
                          " is not a mode (0 dense, 1 sparse, 2 automatic)");
  const auto mode = static_cast<gk::SparseInput>(sparse_input);
  const T* x = X.data();
  const int64_t* p = perm.data();
  double* out = step_loss.mutable_data();
  py::gil_scoped_release release;
  return gk::mlp_epoch<T>(out, layers, T(slope), loss, optimizer, x, labels, targets, p,
                          perm_stride, n_rows, batch, first_step, n_steps, mode);
}

// The epoch's update rule from the binding's arguments, with its guards.
gk::MlpOptimizer optimizer_spec(int optimizer, double lr, double momentum, double dampening,
                                bool nesterov, double weight_decay, bool first, double beta1,
                                double beta2, double eps, bool amsgrad, bool decoupled,
                                int64_t adam_step) {
  gk::MlpOptimizer opt;
  opt.sgd.lr = lr;
  opt.sgd.momentum = momentum;
  opt.sgd.dampening = dampening;
  opt.sgd.nesterov = nesterov;
  opt.sgd.weight_decay = weight_decay;
  opt.sgd.first = first;
  if (optimizer != static_cast<int>(gk::MlpOptimizer::Kind::sgd) &&
      optimizer != static_cast<int>(gk::MlpOptimizer::Kind::adam))
    throw py::value_error("optimizer=" + std::to_string(optimizer) +
                          " is not an optimizer code (0 SGD, 1 Adam)");
  opt.kind = static_cast<gk::MlpOptimizer::Kind>(optimizer);
  if (opt.kind == gk::MlpOptimizer::Kind::adam) {
    if (!(beta1 >= 0.0 && beta1 < 1.0) || !(beta2 >= 0.0 && beta2 < 1.0))
      throw py::value_error("beta1 and beta2 must be in [0, 1)");
    if (adam_step < 0)
      throw py::value_error("adam_step=" + std::to_string(adam_step) +
                            " must be >= 0 (the updates done before this call)");
  }
  opt.adam.lr = lr;
  opt.adam.beta1 = beta1;
  opt.adam.beta2 = beta2;
  opt.adam.eps = eps;
  opt.adam.weight_decay = weight_decay;
  opt.adam.amsgrad = amsgrad;
  opt.adam.decoupled = decoupled;
  opt.adam.step = adam_step;
  return opt;
}

}  // namespace

void bind_mlp(py::module_& m) {
  m.def("_set_mlp_sparse_skip_threshold", &gk::mlp::set_sparse_skip_threshold,
        py::arg("min_zero_fraction"),
        "Test hook: in the sparse first layer, a batch skips zeros from this zero fraction "
        "(default 0: always; above 1: never). Same bits either way.");
  m.def("_mlp_sparse_skip_threshold", &gk::mlp::sparse_skip_threshold);
  m.def("_mlp_last_first_layer", &gk::mlp_last_first_layer,
        "Test hook: 1 if the calling thread's last mlp_epoch skipped zeros, else 0.");
  m.def(
      "mlp_epoch",
      [](py::list weights, py::list biases, py::list weight_bufs, py::list bias_bufs,
         std::vector<int> acts, double slope, int loss, bool mean, bool half, py::object X,
         py::object labels, py::object targets, py::object perm, int64_t batch_size,
         int64_t first_step, int64_t n_steps, double lr, double momentum, double dampening,
         bool nesterov, double weight_decay, bool first, py::object step_loss, int sparse_input,
         int optimizer, double beta1, double beta2, double eps, bool amsgrad, bool decoupled,
         int64_t adam_step, py::list weight_moments, py::list bias_moments) {
        const gk::MlpOptimizer opt =
            optimizer_spec(optimizer, lr, momentum, dampening, nesterov, weight_decay, first,
                           beta1, beta2, eps, amsgrad, decoupled, adam_step);
        py::array x = py::array::ensure(X);
        if (!x) throw py::type_error("X must be a numpy array");
        if (x.dtype().equal(py::dtype::of<float>()))
          return run<float>(weights, biases, weight_bufs, bias_bufs, acts, slope, loss, mean, half,
                            X, labels, targets, perm, batch_size, first_step, n_steps, opt,
                            weight_moments, bias_moments, step_loss, sparse_input);
        if (x.dtype().equal(py::dtype::of<double>()))
          return run<double>(weights, biases, weight_bufs, bias_bufs, acts, slope, loss, mean,
                             half, X, labels, targets, perm, batch_size, first_step, n_steps, opt,
                             weight_moments, bias_moments, step_loss, sparse_input);
        throw py::type_error("X must have dtype float32 or float64");
      },
      py::arg("weights"), py::arg("biases"), py::arg("weight_bufs"), py::arg("bias_bufs"),
      py::arg("acts"), py::arg("slope"), py::arg("loss"), py::arg("mean"), py::arg("half"),
      py::arg("X"), py::arg("labels"), py::arg("targets"), py::arg("perm"), py::arg("batch_size"),
      py::arg("first_step"), py::arg("n_steps"), py::arg("lr"), py::arg("momentum"),
      py::arg("dampening"), py::arg("nesterov"), py::arg("weight_decay"), py::arg("first"),
      py::arg("step_loss"), py::arg("sparse_input") = 2, py::arg("optimizer") = 0,
      py::arg("beta1") = 0.9, py::arg("beta2") = 0.999, py::arg("eps") = 1e-8,
      py::arg("amsgrad") = false, py::arg("decoupled") = false, py::arg("adam_step") = 0,
      py::arg("weight_moments") = py::list(), py::arg("bias_moments") = py::list(),
      "Run n_steps mini-batches of MLP training in place (see csrc/kernels/mlp/epoch.hpp); perm "
      "holds one or more epochs' row orders back to back. Returns the steps done (fewer when a "
      "loss is not finite). sparse_input: 0 dense first layer, 1 zero-skipping (where the CPU "
      "has it, with SGD), 2 chosen by the cost model. optimizer: 0 SGD (lr, momentum, "
      "dampening, nesterov, weight_decay, first; weight_bufs/bias_bufs its momentum buffers), "
      "1 Adam (lr, beta1, beta2, eps, weight_decay, amsgrad, decoupled = AdamW; adam_step the "
      "updates each parameter had before; weight_moments[l] / bias_moments[l] = [exp_avg, "
      "exp_avg_sq(, max_exp_avg_sq)], bias_moments[l] None for a layer without bias).");
}
