// Kernels for gradkit.cluster.dask (csrc/kernels/cluster_partials.hpp): checks, GIL release.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>

#include "bindings/common.hpp"
#include "kernels/cluster_partials.hpp"

namespace py = pybind11;
using gkpy::carray;

namespace {

template <typename T>
void bind_dtype(py::module_& m) {
  m.def(
      "kmeans_chunk_partials",
      [](carray<T> X, py::object sample_weight, carray<T> centers) {
        gkpy::require_ndim(X, 2, "X");
        gkpy::require_ndim(centers, 2, "centers");
        gkpy::require_dim(centers.shape(1), X.shape(1), "centers columns");
        const int64_t n = X.shape(0), d = X.shape(1), k = centers.shape(0);
        if (k < 1) throw py::value_error("centers must have at least one row");
        const T* wp = nullptr;
        carray<T> w;
        if (!sample_weight.is_none()) {
          if (!carray<T>::check_(sample_weight))
            throw py::type_error("sample_weight must be a C-contiguous array of the dtype of X");
          w = py::reinterpret_borrow<carray<T>>(sample_weight);
          gkpy::require_ndim(w, 1, "sample_weight");
          gkpy::require_dim(w.shape(0), n, "sample_weight length");
          wp = w.data();
        }
        carray<double> sums({k, d}), weight(k);
        carray<int32_t> labels(n);
        double* s = sums.mutable_data();
        double* wt = weight.mutable_data();
        int32_t* lab = labels.mutable_data();
        double inertia;
        {
          py::gil_scoped_release release;
          std::fill(s, s + k * d, 0.0);
          std::fill(wt, wt + k, 0.0);
          inertia = n == 0 ? 0.0
                           : gk::kmeans_chunk_partials(lab, s, wt, X.data(), wp, centers.data(),
                                                       n, d, k, /*n_threads=*/1);
        }
        return py::make_tuple(sums, weight, inertia, labels);
      },
      py::arg("X").noconvert(), py::arg("sample_weight"), py::arg("centers").noconvert(),
      "(sums (k, d), weights (k,), inertia, labels (n,) int32) of a chunk's rows for the nearest "
      "of `centers`, from one pass (float64 sums and weights; one thread: the task is the unit "
      "of parallelism).");
}

}  // namespace

void bind_dask(py::module_& m) {
  bind_dtype<float>(m);
  bind_dtype<double>(m);
}
