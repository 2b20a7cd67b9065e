// k-means kernels (csrc/kernels/kmeans.hpp): dtype/shape checks, GIL release, nothing else.
// sample_weight may be None (unit weights, nothing allocated); labels are int32.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "bindings/common.hpp"
#include "kernels/kmeans.hpp"

namespace py = pybind11;
using gkpy::carray;

namespace {

// The weights as an exact-dtype C array of length n, or an empty array for None.
template <typename T>
carray<T> weights(const py::object& w, int64_t n) {
  if (w.is_none()) return carray<T>();
  if (!carray<T>::check_(w))
    throw py::type_error("sample_weight must be a C-contiguous array of the dtype of X");
  auto arr = py::reinterpret_borrow<carray<T>>(w);
  gkpy::require_ndim(arr, 1, "sample_weight");
  gkpy::require_dim(arr.shape(0), n, "sample_weight length");
  return arr;
}

template <typename T>
const T* wptr(const py::object& w, const carray<T>& arr) {
  return w.is_none() ? nullptr : arr.data();
}

template <typename T>
void check_centers(const carray<T>& X, const carray<T>& c, const char* name) {
  gkpy::require_ndim(X, 2, "X");
  gkpy::require_ndim(c, 2, name);
  gkpy::require_dim(c.shape(1), X.shape(1), "centers columns");
  if (c.shape(0) < 1) throw py::value_error(std::string(name) + " must have at least one row");
}

// labels must be (n,): the kernels write (or read) exactly n of them.
void check_labels(const carray<int32_t>& labels, int64_t n) {
  gkpy::require_ndim(labels, 1, "labels");
  gkpy::require_dim(labels.shape(0), n, "labels length");
}

template <typename T>
void bind_dtype(py::module_& m) {
  m.def(
      "kmeans_lloyd_step",
      [](carray<T> X, py::object sample_weight, carray<T> centers, carray<T> centers_new,
         carray<int32_t> labels, int n_threads) {
        check_centers(X, centers, "centers");
        gkpy::require_ndim(centers_new, 2, "centers_new");
        gkpy::require_dim(centers_new.shape(0), centers.shape(0), "centers_new rows");
        gkpy::require_dim(centers_new.shape(1), centers.shape(1), "centers_new columns");
        check_labels(labels, X.shape(0));
        const int64_t n = X.shape(0), d = X.shape(1), k = centers.shape(0);
        auto w = weights<T>(sample_weight, n);
        const T* wp = wptr(sample_weight, w);
        T* out = centers_new.mutable_data();
        int32_t* lab = labels.mutable_data();
        gk::LloydStepStats st;
        {
          py::gil_scoped_release release;
          st = gk::kmeans_lloyd_step(out, lab, X.data(), wp, centers.data(), n, d, k, n_threads);
        }
        return py::make_tuple(st.n_changed, st.center_shift, st.inertia, st.n_relocated);
      },
      py::arg("X").noconvert(), py::arg("sample_weight"), py::arg("centers").noconvert(),
      py::arg("centers_new").noconvert(), py::arg("labels").noconvert(), py::arg("n_threads"),
      "One Lloyd iteration in one pass over X; labels INOUT, centers_new OUT. Returns "
      "(n_changed, center_shift, inertia, n_relocated).");

  m.def(
      "kmeans_assign",
      [](carray<T> X, py::object sample_weight, carray<T> centers, carray<int32_t> labels,
         int n_threads) {
        check_centers(X, centers, "centers");
        check_labels(labels, X.shape(0));
        const int64_t n = X.shape(0), d = X.shape(1), k = centers.shape(0);
        auto w = weights<T>(sample_weight, n);
        const T* wp = wptr(sample_weight, w);
        int32_t* lab = labels.mutable_data();
        py::gil_scoped_release release;
        return gk::kmeans_assign(lab, X.data(), wp, centers.data(), n, d, k, n_threads);
      },
      py::arg("X").noconvert(), py::arg("sample_weight"), py::arg("centers").noconvert(),
      py::arg("labels").noconvert(), py::arg("n_threads"),
      "Nearest-centre labels (OUT) and the inertia.");

  m.def(
      "kmeans_inertia",
      [](carray<T> X, py::object sample_weight, carray<T> centers, carray<int32_t> labels,
         int n_threads) {
        check_centers(X, centers, "centers");
        check_labels(labels, X.shape(0));
        const int64_t n = X.shape(0), d = X.shape(1), k = centers.shape(0);
        const int32_t* lp = labels.data();
        for (int64_t i = 0; i < n; ++i)  // read as indices into centers: never out of range
          if (lp[i] < 0 || lp[i] >= k)
            throw py::value_error("labels must be in [0, " + std::to_string(k) + "), got " +
                                  std::to_string(lp[i]));
        auto w = weights<T>(sample_weight, n);
        const T* wp = wptr(sample_weight, w);
        py::gil_scoped_release release;
        return gk::kmeans_inertia(labels.data(), X.data(), wp, centers.data(), n, d, k,
                                  n_threads);
      },
      py::arg("X").noconvert(), py::arg("sample_weight"), py::arg("centers").noconvert(),
      py::arg("labels").noconvert(), py::arg("n_threads"),
      "sum w ||x - c_label||^2 from the differences, in float64.");

  m.def(
      "kmeans_lloyd",
      [](carray<T> X, py::object sample_weight, carray<T> centers, carray<int32_t> labels,
         int max_iter, double tol, int n_threads) {
        check_centers(X, centers, "centers");
        check_labels(labels, X.shape(0));
        const int64_t n = X.shape(0), d = X.shape(1), k = centers.shape(0);
        auto w = weights<T>(sample_weight, n);
        const T* wp = wptr(sample_weight, w);
        T* c = centers.mutable_data();
        int32_t* lab = labels.mutable_data();
        int64_t n_iter = 0;
        double inertia;
        {
          py::gil_scoped_release release;
          inertia = gk::kmeans_lloyd(c, lab, &n_iter, X.data(), wp, n, d, k, max_iter, tol,
                                     n_threads);
        }
        return py::make_tuple(inertia, n_iter);
      },
      py::arg("X").noconvert(), py::arg("sample_weight"), py::arg("centers").noconvert(),
      py::arg("labels").noconvert(), py::arg("max_iter"), py::arg("tol"), py::arg("n_threads"),
      "The whole Lloyd loop: centers INOUT, labels OUT. Returns (inertia, n_iter).");

  m.def(
      "kmeans_fit",
      [](carray<T> X, py::object sample_weight, carray<T> centers, carray<int32_t> labels,
         int max_iter, double tol, int algorithm, int n_threads) {
        check_centers(X, centers, "centers");
        check_labels(labels, X.shape(0));
        if (algorithm < 0 || algorithm > 2)
          throw py::value_error("algorithm must be 0 (lloyd), 1 (hamerly) or 2 (elkan), got " +
                                std::to_string(algorithm));
        const int64_t n = X.shape(0), d = X.shape(1), k = centers.shape(0);
        auto w = weights<T>(sample_weight, n);
        const T* wp = wptr(sample_weight, w);
        T* c = centers.mutable_data();
        int32_t* lab = labels.mutable_data();
        int64_t n_iter = 0, n_distances = 0;
        double inertia;
        {
          py::gil_scoped_release release;
          inertia = gk::kmeans_fit(c, lab, &n_iter, &n_distances, X.data(), wp, n, d, k,
                                   max_iter, tol, static_cast<gk::KMeansAlgorithm>(algorithm),
                                   n_threads);
        }
        return py::make_tuple(inertia, n_iter, n_distances);
      },
      py::arg("X").noconvert(), py::arg("sample_weight"), py::arg("centers").noconvert(),
      py::arg("labels").noconvert(), py::arg("max_iter"), py::arg("tol"), py::arg("algorithm"),
      py::arg("n_threads"),
      "The k-means loop with algorithm 0 (lloyd), 1 (hamerly) or 2 (elkan): centers INOUT, "
      "labels OUT. Returns (inertia, n_iter, n_distances computed).");

  m.def(
      "kmeans_plusplus",
      [](carray<T> X, py::object sample_weight, int64_t n_clusters, int64_t n_local_trials,
         carray<double> uniforms, int n_threads) {
        gkpy::require_ndim(X, 2, "X");
        const int64_t n = X.shape(0), d = X.shape(1);
        if (n_clusters < 1 || n_clusters > n)
          throw py::value_error("n_clusters=" + std::to_string(n_clusters) + " must be in [1, " +
                                std::to_string(n) + "]");
        if (n_local_trials < 1) throw py::value_error("n_local_trials must be >= 1");
        gkpy::require_dim(uniforms.size(), 1 + (n_clusters - 1) * n_local_trials,
                          "uniforms length");
        auto w = weights<T>(sample_weight, n);
        const T* wp = wptr(sample_weight, w);
        carray<int64_t> indices(n_clusters);
        int64_t* out = indices.mutable_data();
        {
          py::gil_scoped_release release;
          gk::kmeans_plusplus(out, X.data(), wp, n, d, n_clusters, n_local_trials,
                              uniforms.data(), n_threads);
        }
        return indices;
      },
      py::arg("X").noconvert(), py::arg("sample_weight"), py::arg("n_clusters"),
      py::arg("n_local_trials"), py::arg("uniforms").noconvert(), py::arg("n_threads"),
      "Greedy k-means++: the indices of the chosen rows.");

  m.def(
      "kmeans_mean_variance",
      [](carray<T> X, int n_threads) {
        gkpy::require_ndim(X, 2, "X");
        if (X.shape(0) < 1 || X.shape(1) < 1) throw py::value_error("X must not be empty");
        py::gil_scoped_release release;
        return gk::kmeans_mean_variance(X.data(), X.shape(0), X.shape(1), n_threads);
      },
      py::arg("X").noconvert(), py::arg("n_threads"),
      "Mean over features of the variance of X, in float64 (not finite if X is not).");
}

}  // namespace

void bind_cluster(py::module_& m) {
  bind_dtype<float>(m);
  bind_dtype<double>(m);
}
