#include "kernels/cpu.hpp"

#include <omp.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

namespace gk {
namespace {

Isa probe() {
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
#if defined(GRADKIT_HAVE_AVX512)
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return Isa::avx512;
#endif
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
#endif
  return Isa::portable;
}

Isa initial() {
  Isa best = probe();
  // GRADKIT_ISA=portable|avx2|avx512 lowers the choice (never raises it above the hardware).
  if (const char* env = std::getenv("GRADKIT_ISA")) {
    for (Isa isa : {Isa::portable, Isa::avx2, Isa::avx512})
      if (std::strcmp(env, isa_name(isa)) == 0 && static_cast<int>(isa) < static_cast<int>(best))
        best = isa;
  }
  return best;
}

std::atomic<int> g_active{-1};

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "portable";
  }
}

Isa detected_isa() {
  static const Isa isa = probe();
  return isa;
}

Isa active_isa() {
  int v = g_active.load(std::memory_order_relaxed);
  if (v < 0) {
    v = static_cast<int>(initial());
    g_active.store(v, std::memory_order_relaxed);
  }
  return static_cast<Isa>(v);
}

void force_isa(Isa isa) {
  int v = static_cast<int>(isa);
  int best = static_cast<int>(detected_isa());
  g_active.store(v < best ? v : best, std::memory_order_relaxed);
}

int num_threads() { return omp_get_max_threads(); }

void set_num_threads(int n) { omp_set_num_threads(n < 1 ? 1 : n); }

int threads_for(double work, double grain) {
  const int n = omp_get_max_threads();
  if (work < 2 * grain || n <= 1) return 1;
  const double want = work / grain;
  return want < n ? static_cast<int>(want) : n;
}

}  // namespace gk
