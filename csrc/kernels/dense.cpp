#include "kernels/dense.hpp"

#include <vector>

namespace gk {

template <typename T>
void column_sums(T* g, const T* d, int64_t m, int64_t n) {
  constexpr int64_t JB = 16;  // columns whose running sums stay in registers
  int64_t j0 = 0;
  for (; j0 + JB <= n; j0 += JB) {
    T acc[JB] = {};
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < JB; ++j) acc[j] += d[i * n + j0 + j];
    for (int64_t j = 0; j < JB; ++j) g[j0 + j] = acc[j];
  }
  for (; j0 < n; ++j0) {  // a leftover column alone: four interleaved sums over the rows
    T a0 = T(0), a1 = T(0), a2 = T(0), a3 = T(0);
    int64_t i = 0;
    for (; i + 4 <= m; i += 4) {
      a0 += d[i * n + j0];
      a1 += d[(i + 1) * n + j0];
      a2 += d[(i + 2) * n + j0];
      a3 += d[(i + 3) * n + j0];
    }
    for (; i < m; ++i) a0 += d[i * n + j0];
    g[j0] = (a0 + a1) + (a2 + a3);
  }
}

template <typename T>
void linear_forward(T* y, const T* x, const T* w, const T* b, int64_t B, int64_t IN, int64_t OUT,
                    Act act, T slope) {
  gemm<T>(false, true, B, OUT, IN, x, IN, w, IN, y, OUT, false, b, act, slope);
}

template <typename T>
void linear_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, int64_t B,
                     int64_t IN, int64_t OUT) {
  gemm<T>(true, false, OUT, IN, B, dy, OUT, x, IN, dw, IN, /*accumulate=*/true);
  if (db) {
    std::vector<T> sum(static_cast<size_t>(OUT));
    column_sums(sum.data(), dy, B, OUT);
    for (int64_t j = 0; j < OUT; ++j) db[j] += sum[static_cast<size_t>(j)];
  }
  if (dx) gemm<T>(false, false, B, IN, OUT, dy, OUT, w, IN, dx, IN);
}

#define GK_INSTANTIATE(T)                                                                       \
  template void column_sums<T>(T*, const T*, int64_t, int64_t);                               \
  template void linear_forward<T>(T*, const T*, const T*, const T*, int64_t, int64_t, int64_t, \
                                  Act, T);                                                     \
  template void linear_backward<T>(T*, T*, T*, const T*, const T*, const T*, int64_t, int64_t, \
                                   int64_t);
GK_INSTANTIATE(float)
GK_INSTANTIATE(double)
#undef GK_INSTANTIATE

}  // namespace gk
