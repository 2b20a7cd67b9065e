// Optimizer steps other than SGD (which nn.cpp binds): Adam / AdamW.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "bindings/common.hpp"
#include "kernels/adam.hpp"

namespace py = pybind11;
using gkpy::carray;

namespace {

// A C-contiguous array of T with param's shape, or a TypeError/ValueError naming it.
template <typename T>
carray<T> state_array(const py::object& obj, const carray<T>& param, const char* name) {
  if (obj.is_none() || !carray<T>::check_(obj) ||
      !(py::cast<py::array>(obj).flags() & py::array::c_style))
    throw py::type_error(std::string(name) + " must be a C-contiguous array of param's dtype");
  auto arr = py::reinterpret_borrow<carray<T>>(obj);
  bool same = arr.ndim() == param.ndim();
  for (py::ssize_t d = 0; same && d < arr.ndim(); ++d) same = arr.shape(d) == param.shape(d);
  if (!same) throw py::value_error(std::string(name) + " must have param's shape");
  return arr;
}

template <typename T>
void bind_adam(py::module_& m) {
  // max_exp_avg_sq is None unless amsgrad.
  m.def("adam_step", [](carray<T>& param, const carray<T>& grad, py::object exp_avg,
                        py::object exp_avg_sq, py::object max_exp_avg_sq, int64_t step, double lr,
                        double beta1, double beta2, double eps, double weight_decay, bool amsgrad,
                        bool decoupled) {
    if (step < 1) throw py::value_error("step must be >= 1 (the count after this step)");
    auto g = state_array<T>(grad, param, "grad");
    auto mm = state_array<T>(exp_avg, param, "exp_avg");
    auto vv = state_array<T>(exp_avg_sq, param, "exp_avg_sq");
    carray<T> vmax_arr;
    T* vmax = nullptr;
    if (amsgrad) {
      vmax_arr = state_array<T>(max_exp_avg_sq, param, "max_exp_avg_sq");
      vmax = vmax_arr.mutable_data();
    }
    T* p = param.mutable_data();
    T* pm = mm.mutable_data();
    T* pv = vv.mutable_data();
    const T* pg = g.data();
    const int64_t n = param.size();
    py::gil_scoped_release release;
    gk::adam_step<T>(p, pm, pv, vmax, pg, n, lr, beta1, beta2, eps, weight_decay, step, amsgrad,
                     decoupled);
  }, py::arg("param").noconvert(), py::arg("grad").noconvert(), py::arg("exp_avg"),
     py::arg("exp_avg_sq"), py::arg("max_exp_avg_sq"), py::arg("step"), py::arg("lr"),
     py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"),
     py::arg("amsgrad"), py::arg("decoupled"));
}

}  // namespace

void bind_optim(py::module_& m) {
  // float32 first: pybind11 tries overloads in order and noconvert makes each exact.
  bind_adam<float>(m);
  bind_adam<double>(m);
}
