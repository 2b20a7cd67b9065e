#include "kernels/cpu.hpp"

#include <omp.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>

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
std::atomic<double> g_grain_scale{1.0};
std::atomic<int> g_max_team{1};

// Used only when neither cpuid nor sysfs says: a small-core x86 of the last decade.
constexpr int64_t kAssumedL1d = 32 * 1024;
constexpr int64_t kAssumedL2 = 512 * 1024;
constexpr int64_t kAssumedL3 = 8 * 1024 * 1024;

// One cache level of a deterministic cache-parameters leaf (Intel 4, AMD 0x8000001D: the same
// layout). Returns false past the last cache.
bool cpuid_cache(unsigned leaf, unsigned index, int* level, int* type, int64_t* bytes) {
#if defined(__x86_64__) || defined(_M_X64)
  unsigned a, b, c, d;
  if (!__get_cpuid_count(leaf, index, &a, &b, &c, &d)) return false;
  *type = static_cast<int>(a & 0x1f);  // 0 none, 1 data, 2 instruction, 3 unified
  if (*type == 0) return false;
  *level = static_cast<int>((a >> 5) & 0x7);
  const int64_t ways = ((b >> 22) & 0x3ff) + 1, parts = ((b >> 12) & 0x3ff) + 1;
  const int64_t line = (b & 0xfff) + 1, sets = int64_t(c) + 1;
  *bytes = ways * parts * line * sets;
  return true;
#else
  (void)leaf; (void)index; (void)level; (void)type; (void)bytes;
  return false;
#endif
}

bool caches_from_cpuid(CpuInfo* info) {
#if defined(__x86_64__) || defined(_M_X64)
  unsigned a, b, c, d;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return false;
  const bool amd = b == 0x68747541 || b == 0x6f677948;  // "Auth"enticAMD, "Hygo"nGenuine
  unsigned leaf = 4;
  if (amd) {
    // The AMD leaf exists when "topology extensions" (0x80000001 ECX bit 22) is set.
    if (!__get_cpuid(0x80000001, &a, &b, &c, &d) || !(c & (1u << 22))) return false;
    leaf = 0x8000001D;
  } else if (a < 4) {
    return false;
  }
  bool any = false;
  for (unsigned i = 0; i < 16; ++i) {
    int level = 0, type = 0;
    int64_t bytes = 0;
    if (!cpuid_cache(leaf, i, &level, &type, &bytes)) break;
    if (type == 2) continue;
    if (level == 1) info->l1d_bytes = bytes;
    if (level == 2) info->l2_bytes = bytes;
    if (level == 3) info->l3_bytes = bytes;
    any = true;
  }
  return any && info->l1d_bytes > 0 && info->l2_bytes > 0;
#else
  (void)info;
  return false;
#endif
}

// "32K", "512K", "32768K", "8M" -> bytes; 0 if unreadable.
int64_t sysfs_size(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return 0;
  char buf[64] = {};
  const bool ok = std::fgets(buf, sizeof buf, f) != nullptr;
  std::fclose(f);
  if (!ok) return 0;
  char* end = nullptr;
  int64_t v = std::strtoll(buf, &end, 10);
  if (end && (*end == 'K' || *end == 'k')) v *= 1024;
  else if (end && (*end == 'M' || *end == 'm')) v *= 1024 * 1024;
  return v;
}

bool caches_from_sysfs(CpuInfo* info) {
  const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index";
  bool any = false;
  for (int i = 0; i < 8; ++i) {
    const std::string base = dir + std::to_string(i) + "/";
    const int64_t level = sysfs_size(base + "level");
    if (level <= 0) break;
    FILE* f = std::fopen((base + "type").c_str(), "r");
    char type[32] = {};
    if (f) {
      if (!std::fgets(type, sizeof type, f)) type[0] = 0;
      std::fclose(f);
    }
    if (std::strncmp(type, "Instruction", 11) == 0) continue;
    const int64_t bytes = sysfs_size(base + "size");
    if (level == 1) info->l1d_bytes = bytes;
    if (level == 2) info->l2_bytes = bytes;
    if (level == 3) info->l3_bytes = bytes;
    any = any || bytes > 0;
  }
  return any && info->l1d_bytes > 0 && info->l2_bytes > 0;
}

CpuInfo read_cpu() {
  CpuInfo info{0, 0, 0, "cpuid"};
  if (caches_from_cpuid(&info)) return info;
  info = CpuInfo{0, 0, 0, "sysfs"};
  if (caches_from_sysfs(&info)) return info;
  return CpuInfo{kAssumedL1d, kAssumedL2, kAssumedL3, "assumed"};
}

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

const CpuInfo& cpu_info() {
  static const CpuInfo info = read_cpu();
  return info;
}

int vector_bits(Isa isa) {
  switch (isa) {
    case Isa::avx512: return 512;
    case Isa::avx2: return 256;
    default: return 128;
  }
}

int num_threads() { return omp_get_max_threads(); }

void set_num_threads(int n) { omp_set_num_threads(n < 1 ? 1 : n); }

int threads_for(double work, double grain_in) {
  const int n = omp_get_max_threads();
  const double grain = grain_in * g_grain_scale.load(std::memory_order_relaxed);
  if (work < 2 * grain || n <= 1) return 1;
  const double want = work / grain;
  return want < n ? static_cast<int>(want) : n;
}

void set_thread_grain_scale(double scale) {
  g_grain_scale.store(scale > 0 ? scale : 1.0, std::memory_order_relaxed);
}
double thread_grain_scale() { return g_grain_scale.load(std::memory_order_relaxed); }

void note_team(int threads) {
  int seen = g_max_team.load(std::memory_order_relaxed);
  while (threads > seen && !g_max_team.compare_exchange_weak(seen, threads)) {
  }
}
int max_team_since_reset() { return g_max_team.load(std::memory_order_relaxed); }
void reset_max_team() { g_max_team.store(1, std::memory_order_relaxed); }

}  // namespace gk
