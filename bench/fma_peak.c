/* What one core can do: FMA throughput with no memory traffic, for ZMM and YMM registers.
 * The GEMM targets are fractions of this number, so measure it on the machine at hand:
 *     gcc -O1 bench/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak
 * Twelve independent accumulators cover the FMA latency on both pipes. Timed with the thread's
 * CPU clock, so time spent descheduled on a shared machine does not count. */
#include <stdio.h>
#include <time.h>

static double cpu_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

#define FMA12(R)                                                                          \
  "vfmadd231ps %%" R "14,%%" R "15,%%" R "0\n vfmadd231ps %%" R "14,%%" R "15,%%" R "1\n"  \
  "vfmadd231ps %%" R "14,%%" R "15,%%" R "2\n vfmadd231ps %%" R "14,%%" R "15,%%" R "3\n"  \
  "vfmadd231ps %%" R "14,%%" R "15,%%" R "4\n vfmadd231ps %%" R "14,%%" R "15,%%" R "5\n"  \
  "vfmadd231ps %%" R "14,%%" R "15,%%" R "6\n vfmadd231ps %%" R "14,%%" R "15,%%" R "7\n"  \
  "vfmadd231ps %%" R "14,%%" R "15,%%" R "8\n vfmadd231ps %%" R "14,%%" R "15,%%" R "9\n"  \
  "vfmadd231ps %%" R "14,%%" R "15,%%" R "10\n vfmadd231ps %%" R "14,%%" R "15,%%" R "11\n"

int main(void) {
  const long n = 200000000;
  double t;
  /* ZMM registers only where the CPU has AVX-512F (an AVX2-only CPU, such as AMD Zen 3, would
   * stop with an illegal instruction). */
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512f")) {
    printf("float32 peak, ZMM FMAs: n/a (no AVX-512 on this CPU)\n");
    goto ymm;
  }
  t = cpu_seconds();
  __asm__ volatile("mov %0, %%rcx\n1:\n" FMA12("zmm") "dec %%rcx\njnz 1b\n"
                   : : "r"(n) : "rcx", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6",
                     "xmm7", "xmm8", "xmm9", "xmm10", "xmm11");
  printf("float32 peak, ZMM FMAs: %.1f GFLOP/s\n", 12.0 * 32 * n / (cpu_seconds() - t) / 1e9);
ymm:
  t = cpu_seconds();
  __asm__ volatile("mov %0, %%rcx\n1:\n" FMA12("ymm") "dec %%rcx\njnz 1b\n"
                   : : "r"(n) : "rcx", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6",
                     "xmm7", "xmm8", "xmm9", "xmm10", "xmm11");
  printf("float32 peak, YMM FMAs: %.1f GFLOP/s\n", 12.0 * 16 * n / (cpu_seconds() - t) / 1e9);
  return 0;
}
