// Bindings for the GEMM and the dense layer: matmul, linear, linear_backward (float32/float64).
// Arrays must already be C-contiguous of the exact dtype (noconvert): nothing is copied here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <vector>

#include "bindings/common.hpp"
#include "kernels/dense.hpp"
#include "kernels/gemm.hpp"

namespace py = pybind11;
using gkpy::carray;

namespace {

gk::Act parse_act(const std::string& name) {
  if (name == "none") return gk::Act::none;
  if (name == "relu") return gk::Act::relu;
  if (name == "leaky_relu") return gk::Act::leaky_relu;
  if (name == "sigmoid") return gk::Act::sigmoid;
  if (name == "tanh") return gk::Act::tanh;
  throw py::value_error("activation must be one of 'none', 'relu', 'leaky_relu', 'sigmoid', "
                        "'tanh', got '" + name + "'");
}

// out (M, N) = op(a) @ op(b) [+ out]; a is (M, K) or (K, M) with trans_a, b is (K, N) or (N, K).
template <typename T>
carray<T> matmul(carray<T> a, carray<T> b, bool trans_a, bool trans_b, carray<T> out,
                 bool accumulate) {
  gkpy::require_ndim(a, 2, "a");
  gkpy::require_ndim(b, 2, "b");
  gkpy::require_ndim(out, 2, "out");
  const int64_t M = trans_a ? a.shape(1) : a.shape(0), K = trans_a ? a.shape(0) : a.shape(1);
  const int64_t N = trans_b ? b.shape(0) : b.shape(1);
  gkpy::require_dim(trans_b ? b.shape(1) : b.shape(0), K, "rows of op(b) (inner dimension)");
  gkpy::require_dim(out.shape(0), M, "rows of out");
  gkpy::require_dim(out.shape(1), N, "columns of out");
  const T* pa = a.data();
  const T* pb = b.data();
  T* pc = out.mutable_data();
  {
    py::gil_scoped_release release;
    gk::gemm<T>(trans_a, trans_b, M, N, K, pa, a.shape(1), pb, b.shape(1), pc, N, accumulate);
  }
  return out;
}

// y (B, OUT) = act(x (B, IN) @ w (OUT, IN)ᵀ + b (OUT)).
template <typename T>
carray<T> linear(carray<T> x, carray<T> w, std::optional<carray<T>> b,
                 const std::string& activation, double slope) {
  gkpy::require_ndim(x, 2, "x");
  gkpy::require_ndim(w, 2, "w");
  const gk::Act act = parse_act(activation);
  const int64_t batch = x.shape(0), in = x.shape(1), out_f = w.shape(0);
  gkpy::require_dim(w.shape(1), in, "columns of w (in_features)");
  const T* pb = nullptr;
  if (b) {
    gkpy::require_ndim(*b, 1, "b");
    gkpy::require_dim(b->shape(0), out_f, "length of b (out_features)");
    pb = b->data();
  }
  carray<T> y({batch, out_f});
  const T* px = x.data();
  const T* pw = w.data();
  T* py_ = y.mutable_data();
  {
    py::gil_scoped_release release;
    gk::linear_forward<T>(py_, px, pw, pb, batch, in, out_f, act, T(slope));
  }
  return y;
}

// dw (OUT, IN) += dyᵀ x; db (OUT) += Σ_rows dy; returns dx (B, IN) = dy w when need_dx.
template <typename T>
py::object linear_backward(carray<T> dy, carray<T> x, carray<T> w, carray<T> dw,
                           std::optional<carray<T>> db, bool need_dx) {
  gkpy::require_ndim(dy, 2, "dy");
  gkpy::require_ndim(x, 2, "x");
  gkpy::require_ndim(w, 2, "w");
  gkpy::require_ndim(dw, 2, "dw");
  const int64_t batch = x.shape(0), in = x.shape(1), out_f = w.shape(0);
  gkpy::require_dim(w.shape(1), in, "columns of w (in_features)");
  gkpy::require_dim(dy.shape(0), batch, "rows of dy (batch)");
  gkpy::require_dim(dy.shape(1), out_f, "columns of dy (out_features)");
  gkpy::require_dim(dw.shape(0), out_f, "rows of dw");
  gkpy::require_dim(dw.shape(1), in, "columns of dw");
  T* pdb = nullptr;
  if (db) {
    gkpy::require_ndim(*db, 1, "db");
    gkpy::require_dim(db->shape(0), out_f, "length of db");
    pdb = db->mutable_data();
  }
  carray<T> dx;
  T* pdx = nullptr;
  if (need_dx) {
    dx = carray<T>({batch, in});
    pdx = dx.mutable_data();
  }
  const T* pdy = dy.data();
  const T* px = x.data();
  const T* pw = w.data();
  T* pdw = dw.mutable_data();
  {
    py::gil_scoped_release release;
    gk::linear_backward<T>(pdx, pdw, pdb, pdy, px, pw, batch, in, out_f);
  }
  if (!need_dx) return py::none();
  return std::move(dx);
}

template <typename T>
void bind_for(py::module_& m) {
  m.def("matmul", &matmul<T>, py::arg("a").noconvert(), py::arg("b").noconvert(),
        py::arg("trans_a"), py::arg("trans_b"), py::arg("out").noconvert(), py::arg("accumulate"),
        "out = op(a) @ op(b) (+ out when accumulate), in place; returns out.");
  m.def("linear", &linear<T>, py::arg("x").noconvert(), py::arg("w").noconvert(),
        py::arg("b").noconvert().none(true), py::arg("activation"), py::arg("slope"),
        "y = act(x @ w.T + b) with the bias and activation fused into the GEMM epilogue.");
  m.def("linear_backward", &linear_backward<T>, py::arg("dy").noconvert(),
        py::arg("x").noconvert(), py::arg("w").noconvert(), py::arg("dw").noconvert(),
        py::arg("db").noconvert().none(true), py::arg("need_dx"),
        "dw += dy.T @ x, db += dy.sum(0) (in place); returns dy @ w or None.");
}

}  // namespace

void bind_gemm(py::module_& m) {
  bind_for<float>(m);
  bind_for<double>(m);
}
