// The register-blocked micro-kernel, written once on the SIMD layer (simd/simd.hpp) and compiled
// per ISA (see gemm_kernels.hpp for the interface). Include it INSIDE the unit's own namespace
// (gk::avx2, gk::avx512, gk::portable) after that ISA's simd header; V is its Vec<T>.
// Everything here has internal linkage, so two units never share machine code.
namespace {

// MR rows x NV vectors of accumulators stay in registers for the whole K loop; each step loads
// NV vectors of B and broadcasts MR values of A.
template <typename V, int MR, int NV>
void ukernel_simd(int64_t kc, const typename V::T* __restrict a, const typename V::T* __restrict b,
                  typename V::T* __restrict c, int64_t ldc, int m, int n, bool load_c,
                  const typename V::T* bias, Act act, typename V::T slope) {
  using T = typename V::T;
  using R = typename V::reg;
  constexpr int W = V::W;
  constexpr int NR = NV * W;
  // The C tile is read (after the first K slice) and written only after the K loop; its rows are
  // ldc apart, so without a prefetch each row is a cache miss the kernel waits for at the end.
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
    __builtin_prefetch(c + i * ldc, 1);
    __builtin_prefetch(c + i * ldc + NR - 1, 1);
  }
  R acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[i][v] = V::zero();

#pragma GCC unroll 2
  for (int64_t p = 0; p < kc; ++p) {
    R bv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) bv[v] = V::load(b + v * W);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const R ai = V::bcast(a + i);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[i][v] = V::fma(ai, bv[v], acc[i][v]);
    }
    a += MR;
    b += NR;
  }

  const bool full = (m == MR) && (n == NR);
  if (full && (act == Act::none || act == Act::relu || act == Act::leaky_relu)) {
    // The common case: the whole epilogue in registers, one store per vector.
    R bias_v[NV];
    const R slope_v = V::set1(slope);
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) bias_v[v] = bias ? V::load(bias + v * W) : V::zero();
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      T* ci = c + i * ldc;
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) {
        R x = acc[i][v];
        if (load_c) x = V::add(x, V::load(ci + v * W));
        if (bias) x = V::add(x, bias_v[v]);
        if (act == Act::relu) x = simd::relu<V>(x);
        else if (act == Act::leaky_relu) x = simd::leaky_relu<V>(x, slope_v);
        V::store(ci + v * W, x);
      }
    }
    return;
  }
  // Edge tiles and the transcendental activations: spill the tile and let the shared scalar
  // epilogue write the valid corner (still while the tile is hot, not in a second pass over C).
  alignas(64) T tile[MR * NR];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) V::store(tile + i * NR + v * W, acc[i][v]);
  detail::store_tile<T>(c, ldc, tile, NR, m, n, load_c, bias, act, slope);
}

}  // namespace
