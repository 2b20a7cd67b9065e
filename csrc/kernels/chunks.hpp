// Fixed-size chunks for the memory-bound kernels: the work is cut into CHUNK-element pieces
// independent of the thread count, each piece reports a double partial, and the partials are
// added in chunk order. So a reduced value is bitwise the same for 1, 2 or 64 threads.
#pragma once

#include <omp.h>

#include <cstdint>
#include <vector>

#include "kernels/cpu.hpp"

namespace gk {

constexpr int64_t kChunk = 32768;

// body(begin, end) -> double partial; runs over [0, n) in pieces of `chunk` items and returns
// the ordered sum of partials. `bytes_per_item` sizes the work for gk::threads_for.
template <typename Body>
double chunked_sum(int64_t n, double bytes_per_item, Body body, int64_t chunk = kChunk) {
  const int64_t n_chunks = (n + chunk - 1) / chunk;
  if (n_chunks <= 1) return n > 0 ? body(int64_t(0), n) : 0.0;
  int threads = threads_for(double(n) * bytes_per_item);
  if (threads > n_chunks) threads = static_cast<int>(n_chunks);
  std::vector<double> partial(n_chunks);
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
  for (int64_t c = 0; c < n_chunks; ++c) {
    const int64_t begin = c * chunk;
    const int64_t end = begin + chunk < n ? begin + chunk : n;
    partial[c] = body(begin, end);
  }
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

// The same chunking for kernels with nothing to reduce.
template <typename Body>
void chunked_for(int64_t n, double bytes_per_item, Body body, int64_t chunk = kChunk) {
  chunked_sum(
      n, bytes_per_item,
      [&](int64_t b, int64_t e) {
        body(b, e);
        return 0.0;
      },
      chunk);
}

}  // namespace gk
