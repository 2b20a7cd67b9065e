// gradkit._core: the table of contents. Each area binds its functions in its own file.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void bind_config(py::module_& m);   // config.cpp: version, ISA, threads
void bind_gemm(py::module_& m);     // gemm.cpp: matmul, linear, linear_backward
void bind_nn(py::module_& m);       // nn.cpp: activations, losses, SGD step
void bind_optim(py::module_& m);    // optim.cpp: Adam / AdamW step
void bind_mlp(py::module_& m);      // mlp.cpp: whole-epoch training of Sequential MLPs
void bind_cluster(py::module_& m);  // cluster.cpp: k-means kernels
void bind_dask(py::module_& m);     // dask.cpp: per-chunk k-means partials for Dask

PYBIND11_MODULE(_core, m) {
  m.doc() = "gradkit compiled kernels (C++17, OpenMP). Call through gradkit, not directly.";
  bind_config(m);
  bind_gemm(m);
  bind_nn(m);
  bind_optim(m);
  bind_mlp(m);
  bind_cluster(m);
  bind_dask(m);
}
