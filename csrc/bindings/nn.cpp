// Activations, fused losses and the SGD step: float32 and float64, zero-copy, GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "bindings/common.hpp"
#include "kernels/activation.hpp"
#include "kernels/loss.hpp"
#include "kernels/sgd.hpp"

namespace py = pybind11;
using gkpy::carray;

namespace {

template <typename T>
carray<T> empty_like(const carray<T>& a) {
  return carray<T>(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
}

void require_same_shape(const py::array& a, const py::array& b, const char* na, const char* nb) {
  bool same = a.ndim() == b.ndim();
  for (py::ssize_t d = 0; same && d < a.ndim(); ++d) same = a.shape(d) == b.shape(d);
  if (!same) throw py::value_error(std::string(na) + " and " + nb + " must have the same shape");
}

gk::Reduction parse_reduction(const std::string& r) {
  if (r == "mean") return gk::Reduction::mean;
  if (r == "sum") return gk::Reduction::sum;
  if (r == "none") return gk::Reduction::none;
  throw py::value_error("reduction='" + r + "' must be one of 'mean', 'sum', 'none'");
}

// (value, grad): value a float, or the per-element array for "none".
template <typename T>
py::tuple loss_result(double value, carray<T>& per, carray<T>& grad, gk::Reduction r) {
  if (r == gk::Reduction::none) return py::make_tuple(per, grad);
  return py::make_tuple(value, grad);
}

template <typename T, typename Kernel>
py::tuple pair_loss(const carray<T>& pred, const carray<T>& target, const std::string& red,
                    Kernel kernel) {
  require_same_shape(pred, target, "pred", "target");
  const gk::Reduction r = parse_reduction(red);
  carray<T> grad = empty_like(pred);
  carray<T> per = r == gk::Reduction::none ? empty_like(pred) : carray<T>(0);
  const int64_t n = pred.size();
  T* g = grad.mutable_data();
  T* pp = r == gk::Reduction::none ? per.mutable_data() : nullptr;
  const T* p = pred.data();
  const T* y = target.data();
  double value;
  {
    py::gil_scoped_release release;
    value = kernel(g, pp, p, y, n, r);
  }
  return loss_result(value, per, grad, r);
}

template <typename T>
void bind_losses(py::module_& m) {
  m.def("l1_loss", [](const carray<T>& pred, const carray<T>& target, const std::string& red) {
    return pair_loss<T>(pred, target, red, gk::l1_loss_fused<T>);
  }, py::arg("pred").noconvert(), py::arg("target").noconvert(), py::arg("reduction"));

  m.def("mse_loss", [](const carray<T>& pred, const carray<T>& target, const std::string& red,
                       bool half) {
    return pair_loss<T>(pred, target, red,
                        [half](T* g, T* pp, const T* p, const T* y, int64_t n, gk::Reduction r) {
                          return gk::mse_loss_fused<T>(g, pp, p, y, n, r, half);
                        });
  }, py::arg("pred").noconvert(), py::arg("target").noconvert(), py::arg("reduction"),
     py::arg("half"));

  m.def("bce_loss", [](const carray<T>& pred, const carray<T>& target, const std::string& red) {
    int64_t n_bad = 0;
    py::tuple out = pair_loss<T>(
        pred, target, red,
        [&n_bad](T* g, T* pp, const T* p, const T* y, int64_t n, gk::Reduction r) {
          return gk::bce_loss_fused<T>(g, pp, &n_bad, p, y, n, r);
        });
    // Same words as gradkit._validation.bce_pred_message.
    if (n_bad != 0)
      throw py::value_error("pred must hold probabilities in [0, 1], but " +
                            std::to_string(n_bad) +
                            " value(s) are outside or NaN (use bce_with_logits_loss for raw "
                            "scores)");
    return out;
  }, py::arg("pred").noconvert(), py::arg("target").noconvert(), py::arg("reduction"));

  m.def("bce_with_logits_loss", [](const carray<T>& logits, const carray<T>& target,
                                   const std::string& red) {
    return pair_loss<T>(logits, target, red, gk::bce_with_logits_loss_fused<T>);
  }, py::arg("logits").noconvert(), py::arg("target").noconvert(), py::arg("reduction"));

  m.def("cross_entropy_loss", [](const carray<T>& logits, const carray<int64_t>& labels,
                                 const std::string& red) {
    gkpy::require_ndim(logits, 2, "logits");
    gkpy::require_ndim(labels, 1, "labels");
    const int64_t B = logits.shape(0), C = logits.shape(1);
    gkpy::require_dim(labels.shape(0), B, "labels length");
    if (B < 1 || C < 1) throw py::value_error("logits must be non-empty (batch, classes)");
    const int64_t* lab = labels.data();
    for (int64_t i = 0; i < B; ++i)  // labels index the rows of logits: never out of range
      if (lab[i] < 0 || lab[i] >= C)
        throw py::value_error("labels must be in [0, " + std::to_string(C) + "), got " +
                              std::to_string(lab[i]));
    const gk::Reduction r = parse_reduction(red);
    carray<T> grad = empty_like(logits);
    carray<T> per = r == gk::Reduction::none ? carray<T>(B) : carray<T>(0);
    T* g = grad.mutable_data();
    T* pp = r == gk::Reduction::none ? per.mutable_data() : nullptr;
    const T* z = logits.data();
    const int64_t* k = labels.data();
    double value;
    {
      py::gil_scoped_release release;
      value = gk::cross_entropy_loss_fused<T>(g, pp, z, k, B, C, r);
    }
    return loss_result(value, per, grad, r);
  }, py::arg("logits").noconvert(), py::arg("labels").noconvert(), py::arg("reduction"));
}

template <typename T, void (*Kernel)(T*, const T*, int64_t)>
carray<T> unary(const carray<T>& x) {
  carray<T> y = empty_like(x);
  T* out = y.mutable_data();
  const T* in = x.data();
  const int64_t n = x.size();
  py::gil_scoped_release release;
  Kernel(out, in, n);
  return y;
}

template <typename T, void (*Kernel)(T*, const T*, const T*, int64_t)>
carray<T> backward(const carray<T>& dy, const carray<T>& y) {
  require_same_shape(dy, y, "dy", "y");
  carray<T> dx = empty_like(y);
  T* out = dx.mutable_data();
  const T* d = dy.data();
  const T* yy = y.data();
  const int64_t n = y.size();
  py::gil_scoped_release release;
  Kernel(out, d, yy, n);
  return dx;
}

template <typename T>
void bind_activations(py::module_& m) {
  auto x = py::arg("x").noconvert();
  auto dy = py::arg("dy").noconvert();
  auto y = py::arg("y").noconvert();
  m.def("relu", &unary<T, gk::relu_forward<T>>, x);
  m.def("sigmoid", &unary<T, gk::sigmoid_forward<T>>, x);
  m.def("tanh", &unary<T, gk::tanh_forward<T>>, x);
  m.def("relu_backward", &backward<T, gk::relu_backward<T>>, dy, y);
  m.def("sigmoid_backward", &backward<T, gk::sigmoid_backward<T>>, dy, y);
  m.def("tanh_backward", &backward<T, gk::tanh_backward<T>>, dy, y);

  m.def("leaky_relu", [](const carray<T>& x, double slope) {
    carray<T> y = empty_like(x);
    T* out = y.mutable_data();
    const T* in = x.data();
    const int64_t n = x.size();
    py::gil_scoped_release release;
    gk::leaky_relu_forward<T>(out, in, n, static_cast<T>(slope));
    return y;
  }, x, py::arg("slope"));
  m.def("leaky_relu_backward", [](const carray<T>& dy, const carray<T>& y, double slope) {
    require_same_shape(dy, y, "dy", "y");
    carray<T> dx = empty_like(y);
    T* out = dx.mutable_data();
    const T* d = dy.data();
    const T* yy = y.data();
    const int64_t n = y.size();
    py::gil_scoped_release release;
    gk::leaky_relu_backward<T>(out, d, yy, n, static_cast<T>(slope));
    return dx;
  }, dy, y, py::arg("slope"));

  m.def("softmax", [](const carray<T>& x) {
    gkpy::require_ndim(x, 2, "x");
    carray<T> y = empty_like(x);
    T* out = y.mutable_data();
    const T* in = x.data();
    const int64_t B = x.shape(0), C = x.shape(1);
    py::gil_scoped_release release;
    if (C > 0) gk::softmax_forward<T>(out, in, B, C);
    return y;
  }, x);
  m.def("softmax_backward", [](const carray<T>& dy, const carray<T>& y) {
    gkpy::require_ndim(y, 2, "y");
    require_same_shape(dy, y, "dy", "y");
    carray<T> dx = empty_like(y);
    T* out = dx.mutable_data();
    const T* d = dy.data();
    const T* yy = y.data();
    const int64_t B = y.shape(0), C = y.shape(1);
    py::gil_scoped_release release;
    if (C > 0) gk::softmax_backward<T>(out, d, yy, B, C);
    return dx;
  }, dy, y);
}

template <typename T>
void bind_sgd(py::module_& m) {
  // buf is None when momentum == 0.
  m.def("sgd_step", [](carray<T>& param, const carray<T>& grad, py::object buf, double lr,
                       double momentum, double dampening, bool nesterov, double weight_decay,
                       bool first) {
    require_same_shape(param, grad, "param", "grad");
    T* b = nullptr;
    carray<T> buf_arr;
    if (momentum != 0.0) {
      if (buf.is_none()) throw py::value_error("momentum_buffer is required when momentum != 0");
      if (!carray<T>::check_(buf) || !(py::cast<py::array>(buf).flags() & py::array::c_style))
        throw py::type_error("momentum_buffer must be a C-contiguous array of param's dtype");
      buf_arr = py::reinterpret_borrow<carray<T>>(buf);
      require_same_shape(param, buf_arr, "param", "momentum_buffer");
      b = buf_arr.mutable_data();
    }
    T* p = param.mutable_data();
    const T* g = grad.data();
    const int64_t n = param.size();
    py::gil_scoped_release release;
    gk::sgd_step<T>(p, b, g, n, lr, momentum, dampening, nesterov, weight_decay, first);
  }, py::arg("param").noconvert(), py::arg("grad").noconvert(), py::arg("buf"), py::arg("lr"),
     py::arg("momentum"), py::arg("dampening"), py::arg("nesterov"), py::arg("weight_decay"),
     py::arg("first"));
}

}  // namespace

void bind_nn(py::module_& m) {
  // float32 first: pybind11 tries overloads in order and noconvert makes each exact.
  bind_activations<float>(m);
  bind_activations<double>(m);
  bind_losses<float>(m);
  bind_losses<double>(m);
  bind_sgd<float>(m);
  bind_sgd<double>(m);
}
