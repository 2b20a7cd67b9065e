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
  m.def("cpu_info", [] {
        const gk::CpuInfo& c = gk::cpu_info();
        py::dict d;
        d["l1d_bytes"] = c.l1d_bytes;
        d["l2_bytes"] = c.l2_bytes;
        d["l3_bytes"] = c.l3_bytes;
        d["cache_source"] = c.cache_source;
        d["vector_bits"] = gk::vector_bits(gk::active_isa());
        return d;
      }, "Cache sizes (read once from cpuid or sysfs) and the vector width of the ISA in use.");
  m.def("_set_thread_grain_scale", &gk::set_thread_grain_scale, py::arg("scale"),
        "Test hook: multiply every threading threshold by scale (1 = default).");
  m.def("_thread_grain_scale", &gk::thread_grain_scale);
  m.def("_max_team_since_reset", &gk::max_team_since_reset,
        "Test hook: the largest OpenMP team a kernel ran since _reset_max_team().");
  m.def("_reset_max_team", &gk::reset_max_team);
  m.def("get_num_threads", &gk::num_threads);
  m.def("set_num_threads", &gk::set_num_threads, py::arg("n"));
}
