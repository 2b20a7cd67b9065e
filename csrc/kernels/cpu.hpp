// CPU feature detection, the ISA the kernels dispatch to, and the OpenMP thread count.
#pragma once

#include <cstdint>

namespace gk {

enum class Isa : int { portable = 0, avx2 = 1, avx512 = 2 };

Isa detected_isa();          // the best the CPU (and this build) supports
Isa active_isa();            // what the kernels use now (detected unless forced)
void force_isa(Isa isa);     // clamps to detected_isa(); for tests of the fallbacks
const char* isa_name(Isa isa);

// The machine as the kernels see it, read once at first use: cache sizes from cpuid (leaf 4 on
// Intel, 0x8000001D on AMD), else from /sys/devices/system/cpu/cpu0/cache, else the fallbacks
// below; the vector width is the one of the ISA in use. Blocking sizes are derived from these.
struct CpuInfo {
  int64_t l1d_bytes;  // per core
  int64_t l2_bytes;   // per core
  int64_t l3_bytes;   // whole cache (shared), 0 when there is none
  const char* cache_source;  // "cpuid", "sysfs" or "assumed"
};
const CpuInfo& cpu_info();
int vector_bits(Isa isa);  // 512, 256 or 128 (the portable path's native SSE width on x86)

int num_threads();           // omp_get_max_threads()
void set_num_threads(int n); // omp_set_num_threads(n)

// Threads to use for `work` units (elements, bytes or flops): one thread per `grain` units, and
// 1 below two grains, so small calls never pay for waking a team (a fork/join costs a few
// microseconds idle, far more on a loaded machine). Elementwise kernels use the default grain;
// GEMM passes flops with a grain of about 20 microseconds of arithmetic.
int threads_for(double work, double grain = 1e5);

// Test hook: every grain above (elementwise, GEMM, the fused epoch) is multiplied by `scale`
// (default 1), so a test can push small problems onto several threads. Not for production use.
void set_thread_grain_scale(double scale);
double thread_grain_scale();

// The largest team size a kernel asked OpenMP for since the last reset (tests assert that the
// parallel code really ran in parallel).
void note_team(int threads);
int max_team_since_reset();
void reset_max_team();

}  // namespace gk
