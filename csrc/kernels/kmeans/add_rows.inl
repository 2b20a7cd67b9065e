// The cluster sums of the Lloyd update, written once on a per-ISA vector struct S and included
// inside each tile unit's anonymous namespace (tile_avx2.cpp, tile_avx512.cpp) after its Simd<T>.
// S provides W, reg, set1, load, load_partial(p, n) (lanes past n read as 0), mul, add, fmadd
// and add_to(out, v, n): out[0, n) += v[0, n) in float64.

// out[p0, p0 + NV W) (the last vector holding `last` lanes) += the listed rows' weighted sum:
// NV accumulators stay in registers while the rows stream by, so the sums cost one read of
// each row and one update of out per call. The first term is rounded once, then each row is one
// fused multiply-add (a plain add without weights), as the portable tile sums.
template <typename T, int NV>
inline void add_rows_vectors(double* out, const T* X, const T* w, const int32_t* idx,
                             int64_t count, int64_t d, int64_t p0, int last) {
  using S = Simd<T>;
  using reg = typename S::reg;
  auto load = [&](const T* x, int v) {
    return v == NV - 1 && last < S::W ? S::load_partial(x + p0 + v * S::W, last)
                                      : S::load(x + p0 + v * S::W);
  };
  reg acc[NV];
  const T* x0 = X + static_cast<int64_t>(idx[0]) * d;
  const reg w0 = S::set1(w ? w[idx[0]] : T(1));
#pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) acc[v] = w ? S::mul(w0, load(x0, v)) : load(x0, v);
  for (int64_t t = 1; t < count; ++t) {
    const T* x = X + static_cast<int64_t>(idx[t]) * d;
    if (w) {
      const reg wt = S::set1(w[idx[t]]);
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[v] = S::fmadd(wt, load(x, v), acc[v]);
    } else {
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[v] = S::add(acc[v], load(x, v));
    }
  }
#pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) S::add_to(out + p0 + v * S::W, acc[v], v == NV - 1 ? last : S::W);
}

// Blocks of ADD_NV vectors of d at a time (the accumulators a unit's register file holds), then
// single vectors, then the partial one.
template <typename T, int ADD_NV>
void add_rows_impl(double* out, const T* X, const T* w, const int32_t* idx, int64_t count,
                   int64_t d) {
  constexpr int W = Simd<T>::W;
  if (count <= 0) return;
  const int64_t nfull = d / W;
  const int last = static_cast<int>(d - nfull * W);
  int64_t v = 0;
  for (; v + ADD_NV <= nfull; v += ADD_NV)
    add_rows_vectors<T, ADD_NV>(out, X, w, idx, count, d, v * W, W);
  for (; v < nfull; ++v) add_rows_vectors<T, 1>(out, X, w, idx, count, d, v * W, W);
  if (last) add_rows_vectors<T, 1>(out, X, w, idx, count, d, nfull * W, last);
}
