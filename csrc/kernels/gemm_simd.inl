// The register-blocked micro-kernel shared by the AVX2 and AVX-512 units (see gemm_kernels.hpp
// for the interface). Include it INSIDE the ISA's own namespace, after defining a vector traits
// struct X with: T, reg, W (lanes), zero, load, store, bcast, fma, add, relu, leaky.
// Everything here has internal linkage, so the two units never share machine code.
namespace {

// MR rows x NV vectors of accumulators stay in registers for the whole K loop; each step loads
// NV vectors of B and broadcasts MR values of A.
template <typename X, int MR, int NV>
void ukernel_simd(int64_t kc, const typename X::T* __restrict a, const typename X::T* __restrict b,
                  typename X::T* __restrict c, int64_t ldc, int m, int n, bool load_c,
                  const typename X::T* bias, Act act, typename X::T slope) {
  using T = typename X::T;
  using R = typename X::reg;
  constexpr int W = X::W;
  constexpr int NR = NV * W;
  R acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[i][v] = X::zero();

#pragma GCC unroll 2
  for (int64_t p = 0; p < kc; ++p) {
    R bv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) bv[v] = X::load(b + v * W);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const R ai = X::bcast(a + i);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[i][v] = X::fma(ai, bv[v], acc[i][v]);
    }
    a += MR;
    b += NR;
  }

  const bool full = (m == MR) && (n == NR);
  if (full && (act == Act::none || act == Act::relu || act == Act::leaky_relu)) {
    // The common case: the whole epilogue in registers, one store per vector.
    R bias_v[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) bias_v[v] = bias ? X::load(bias + v * W) : X::zero();
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      T* ci = c + i * ldc;
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) {
        R x = acc[i][v];
        if (load_c) x = X::add(x, X::load(ci + v * W));
        if (bias) x = X::add(x, bias_v[v]);
        if (act == Act::relu) x = X::relu(x);
        else if (act == Act::leaky_relu) x = X::leaky(x, slope);
        X::store(ci + v * W, x);
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
    for (int v = 0; v < NV; ++v) X::store(tile + i * NR + v * W, acc[i][v]);
  detail::store_tile<T>(c, ldc, tile, NR, m, n, load_c, bias, act, slope);
}

}  // namespace
