#include <pybind11/pybind11.h>

#include "bindings/common.hpp"

namespace py = pybind11;

void bind_mlp(py::module_& m) {}
