#include <pybind11/pybind11.h>

#include <initializer_list>
#include <string>

#include "kernels/cpu.hpp"

namespace py = pybind11;

#ifndef GRADKIT_VERSION
#define GRADKIT_VERSION "dev"
#endif

void bind_config(py::module_& m) {
  m.attr("__version__") = GRADKIT_VERSION;
  m.def("detected_isa", [] { return gk::isa_name(gk::detected_isa()); },
        "Best instruction set the CPU and this build support.");
  m.def("active_isa", [] { return gk::isa_name(gk::active_isa()); },
        "Instruction set the kernels use now.");
  m.def("force_isa", [](const std::string& name) {
        for (gk::Isa isa : {gk::Isa::portable, gk::Isa::avx2, gk::Isa::avx512})
          if (name == gk::isa_name(isa)) { gk::force_isa(isa); return; }
        throw py::value_error("isa must be one of 'portable', 'avx2', 'avx512', got '" + name + "'");
      }, py::arg("isa"), "Lower the instruction set in use (for testing the fallbacks).");
  m.def("get_num_threads", &gk::num_threads);
  m.def("set_num_threads", &gk::set_num_threads, py::arg("n"));
}
