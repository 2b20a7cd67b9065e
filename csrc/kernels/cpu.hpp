// CPU feature detection, the ISA the kernels dispatch to, and the OpenMP thread count.
#pragma once

namespace gk {

enum class Isa : int { portable = 0, avx2 = 1, avx512 = 2 };

Isa detected_isa();          // the best the CPU (and this build) supports
Isa active_isa();            // what the kernels use now (detected unless forced)
void force_isa(Isa isa);     // clamps to detected_isa(); for tests of the fallbacks
const char* isa_name(Isa isa);

int num_threads();           // omp_get_max_threads()
void set_num_threads(int n); // omp_set_num_threads(n)

// Threads to use for `work` units (elements, bytes or flops): one thread per `grain` units, and
// 1 below two grains, so small calls never pay for waking a team (a fork/join costs a few
// microseconds idle, far more on a loaded machine). Elementwise kernels use the default grain;
// GEMM passes flops with a grain of about 20 microseconds of arithmetic.
int threads_for(double work, double grain = 1e5);

}  // namespace gk
