// Shared helpers for the pybind11 bindings. Bindings check dtype/contiguity through the
// pybind11 signature (py::array::c_style + noconvert) and shapes here; the Python layer has
// already validated and converted, so a failure here is a programming error in gradkit.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace gkpy {
namespace py = pybind11;

template <typename T>
using carray = py::array_t<T, py::array::c_style>;

// Throws ValueError unless `a` has exactly `ndim` dimensions.
inline void require_ndim(const py::array& a, int ndim, const char* name) {
  if (a.ndim() != ndim)
    throw py::value_error(std::string(name) + " must be " + std::to_string(ndim) +
                          "-D, got " + std::to_string(a.ndim()) + "-D");
}

inline void require_dim(int64_t got, int64_t want, const char* what) {
  if (got != want)
    throw py::value_error(std::string(what) + ": expected " + std::to_string(want) + ", got " +
                          std::to_string(got));
}

}  // namespace gkpy
