// The activations' vector paths (vmath.h). Each formula is written once, as scalar code over a
// policy that supplies exp and tanh: Libm (std::exp, std::tanh) for the baseline loop, Poly (below)
// for the vector paths. Poly is branch-free (selects, fma, bit casts), so GCC vectorises the loop
// of 16 floats in map_span() inside each target's function, 8 lanes on AVX2 and 16 on AVX-512,
// where libm's calls would keep it scalar.
#include "vmath.h"

#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "../../core/cpu.h"

namespace cnn::fast {

namespace {

#define CNN_INLINE __attribute__((always_inline)) inline

// exp(z) = 2^n exp(r): n = round(z / ln 2), r = z - n ln 2 in [-ln2/2, ln2/2], ln 2 split in two
// (Cody and Waite) so that n ln2_hi is exact; exp(r) = 1 + r + r^2 P(r) with Cephes' expf
// polynomial (degree 5, relative error below 2^-24 on the interval). 2^n is applied as 2^(n-1) * 2
// so that n = 128 still has an exponent field and overflows to inf exactly where expf does.
// Valid for z in [-86, 89], which callers clamp to; NaN passes through.
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kShift = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
constexpr float kLn2Hi = 0.693359375f;
constexpr float kLn2Lo = -2.12194440e-4f;

CNN_INLINE float exp_core(float z) {
  const float t = std::fma(z, kLog2e, kShift);
  const float n = t - kShift;
  float r = std::fma(n, -kLn2Hi, z);
  r = std::fma(n, -kLn2Lo, r);
  // Horner by hand: GCC vectorises the loop around this before it would unroll a loop in it.
  float p = std::fma(1.9875691500e-4f, r, 1.3981999507e-3f);
  p = std::fma(p, r, 8.3334519073e-3f);
  p = std::fma(p, r, 4.1665795894e-2f);
  p = std::fma(p, r, 1.6666665459e-1f);
  p = std::fma(p, r, 5.0000001201e-1f);
  const float e = 1.0f + std::fma(p, r * r, r);
  // n - 1 + 127 in the exponent field: t's low mantissa bits hold n + 2^22 (two's complement).
  const uint32_t bits = std::bit_cast<uint32_t>(t) - std::bit_cast<uint32_t>(kShift) + 126u;
  return e * std::bit_cast<float>(bits << 23) * 2.0f;
}

// c ? a : b on the bits: with a plain ?: GCC sinks a division feeding one side into a branch
// and, the division being able to trap, does not if-convert it back on AVX2.
CNN_INLINE float select(bool c, float a, float b) {
  const uint32_t m = 0u - static_cast<uint32_t>(c);
  return std::bit_cast<float>((std::bit_cast<uint32_t>(a) & m) | (std::bit_cast<uint32_t>(b) & ~m));
}

struct Poly {
  // exp(z) for z <= 89 and NaN; from 89 up inf, below -86 exp(-86) (callers add it to 1).
  static CNN_INLINE float exp(float z) {
    z = z > 89.0f ? 89.0f : z;  // comparisons with NaN are false: NaN passes
    z = z < -86.0f ? -86.0f : z;
    return exp_core(z);
  }

  // Small |x|: the odd polynomial, exact for tiny and denormal x where 1 - 2 / (exp(2x) + 1) would
  // lose every digit. Otherwise that formula, whose cancellation costs at most a bit from
  // |x| = 0.625 on (the result is above 0.55). Beyond |x| = 10 tanh rounds to +-1: 2|x| is clamped
  // to 20 so that exp stays finite and 1 - 2 / (e + 1) rounds to exactly 1.
  static CNN_INLINE float tanh(float x) {
    const float a = std::fabs(x);
    const float a2 = a * a;
    // x + x^3 Q(x^2) with Cephes' tanhf polynomial for |x| < 0.625.
    float q = std::fma(-5.70498872745e-3f, a2, 2.06390887954e-2f);
    q = std::fma(q, a2, -5.37397155531e-2f);
    q = std::fma(q, a2, 1.33314422036e-1f);
    q = std::fma(q, a2, -3.33332819422e-1f);
    const float small = std::fma(q * a2, a, a);
    const float z = select(a > 10.0f, 20.0f, a + a);
    const float large = 1.0f - 2.0f / (exp_core(z) + 1.0f);
    return std::copysign(select(a < 0.625f, small, large), x);
  }
};

struct Libm {
  static float exp(float z) { return std::exp(z); }
  static float tanh(float x) { return std::tanh(x); }
};

// Poly's operations, in the same order, on 8 lanes of AVX2 written out: the loops GCC made of
// Poly over blocks of 16 floats kept spilling to the stack: 45 TSC ticks per 8 SiLUs on this
// project's AMD EPYC against 10 for these, and 54 against 16 for tanh (in L1; over a batch's
// tensors, build/cnn_ops_bench --benchmark_filter=Activation).
#define CNN_AVX2 __attribute__((target("avx2,fma"), always_inline)) inline

CNN_AVX2 __m256 splat(float f) { return _mm256_set1_ps(f); }

CNN_AVX2 __m256 exp_core8(__m256 z) {
  const __m256 t = _mm256_fmadd_ps(z, splat(kLog2e), splat(kShift));
  const __m256 n = _mm256_sub_ps(t, splat(kShift));
  __m256 r = _mm256_fmadd_ps(n, splat(-kLn2Hi), z);
  r = _mm256_fmadd_ps(n, splat(-kLn2Lo), r);
  __m256 p = _mm256_fmadd_ps(splat(1.9875691500e-4f), r, splat(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, splat(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, splat(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, splat(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, splat(5.0000001201e-1f));
  const __m256 e = _mm256_add_ps(splat(1.0f), _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r));
  const __m256i bits =
      _mm256_add_epi32(_mm256_sub_epi32(_mm256_castps_si256(t), _mm256_castps_si256(splat(kShift))),
                       _mm256_set1_epi32(126));
  const __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(bits, 23));
  return _mm256_mul_ps(_mm256_mul_ps(e, scale), splat(2.0f));
}

struct Vec8 {
  // MINPS and MAXPS return their second operand when either is NaN: NaN passes, as in Poly.
  static CNN_AVX2 __m256 exp(__m256 z) {
    z = _mm256_min_ps(splat(89.0f), z);
    z = _mm256_max_ps(splat(-86.0f), z);
    return exp_core8(z);
  }

  static CNN_AVX2 __m256 tanh(__m256 x) {
    const __m256 sign = splat(-0.0f);
    const __m256 a = _mm256_andnot_ps(sign, x);
    const __m256 a2 = _mm256_mul_ps(a, a);
    __m256 q = _mm256_fmadd_ps(splat(-5.70498872745e-3f), a2, splat(2.06390887954e-2f));
    q = _mm256_fmadd_ps(q, a2, splat(-5.37397155531e-2f));
    q = _mm256_fmadd_ps(q, a2, splat(1.33314422036e-1f));
    q = _mm256_fmadd_ps(q, a2, splat(-3.33332819422e-1f));
    const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(q, a2), a, a);
    const __m256 z = _mm256_blendv_ps(_mm256_add_ps(a, a), splat(20.0f),
                                      _mm256_cmp_ps(a, splat(10.0f), _CMP_GT_OQ));
    const __m256 large = _mm256_sub_ps(
        splat(1.0f), _mm256_div_ps(splat(2.0f), _mm256_add_ps(exp_core8(z), splat(1.0f))));
    const __m256 r = _mm256_blendv_ps(large, small, _mm256_cmp_ps(a, splat(0.625f), _CMP_LT_OQ));
    return _mm256_or_ps(_mm256_andnot_ps(sign, r), _mm256_and_ps(sign, x));
  }
};

constexpr float kBeta = 0.79788456080286535588f;  // sqrt(2 / pi)
constexpr float kKappa = 0.044715f;

namespace scalar {
#define CNN_FORMULA CNN_INLINE
#include "vmath_formulas.inc"
#undef CNN_FORMULA
}  // namespace scalar

namespace avx2 {
#define CNN_FORMULA CNN_AVX2
#include "vmath_formulas.inc"
#undef CNN_FORMULA
}  // namespace avx2

// Blocks of a fixed 16 floats through a local buffer: a loop of known trip count on memory that
// aliases nothing, which GCC vectorises even at -O2 with no run-time checks; the tail pads a block.
constexpr int64_t kBlock = 16;

template <class F>
CNN_INLINE void map_span(const float* x, float* y, int64_t n, F f) {
  alignas(64) float t[kBlock];  // whole-vector stores into it, then whole-vector loads
  int64_t i = 0;
  // Whole blocks with copies of a constant size (vector moves; a copy of a variable size is a
  // call or a `rep movs`, whose start-up cost was most of the time of a block).
  for (; i + kBlock <= n; i += kBlock) {
    std::memcpy(t, x + i, sizeof t);
    for (int64_t j = 0; j < kBlock; ++j) t[j] = f(t[j]);
    std::memcpy(y + i, t, sizeof t);
  }
  if (const int64_t m = n - i; m > 0) {
    std::fill(t, t + kBlock, 0.0f);
    std::memcpy(t, x + i, sizeof(float) * m);
    for (int64_t j = 0; j < kBlock; ++j) t[j] = f(t[j]);
    std::memcpy(y + i, t, sizeof(float) * m);
  }
}

template <class F>
CNN_INLINE void map_span2(const float* x, const float* dy, float* dx, int64_t n, F f) {
  alignas(64) float t[kBlock], g[kBlock];
  int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {  // as map_span
    std::memcpy(t, x + i, sizeof t);
    std::memcpy(g, dy + i, sizeof g);
    for (int64_t j = 0; j < kBlock; ++j) t[j] = f(t[j], g[j]);
    std::memcpy(dx + i, t, sizeof t);
  }
  if (const int64_t m = n - i; m > 0) {
    std::fill(t, t + kBlock, 0.0f);
    std::fill(g, g + kBlock, 0.0f);
    std::memcpy(t, x + i, sizeof(float) * m);
    std::memcpy(g, dy + i, sizeof(float) * m);
    for (int64_t j = 0; j < kBlock; ++j) t[j] = f(t[j], g[j]);
    std::memcpy(dx + i, t, sizeof(float) * m);
  }
}

template <class F>
__attribute__((target("avx512f,avx2,fma"))) void span_avx512(const float* x, float* y, int64_t n) {
  map_span(x, y, n, F{});
}
// 8 lanes at a time; the tail through a zero-padded vector.
template <class F>
__attribute__((target("avx2,fma"))) void span_avx2(const float* x, float* y, int64_t n) {
  const F f;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(x + i)));
  if (i < n) {
    alignas(32) float t[8] = {};
    std::copy(x + i, x + n, t);
    _mm256_store_ps(t, f(_mm256_load_ps(t)));
    std::copy(t, t + (n - i), y + i);
  }
}
template <class F>
__attribute__((target("avx512f,avx2,fma"))) void span2_avx512(const float* x, const float* dy,
                                                              float* dx, int64_t n) {
  map_span2(x, dy, dx, n, F{});
}
template <class F>
__attribute__((target("avx2,fma"))) void span2_avx2(const float* x, const float* dy, float* dx,
                                                    int64_t n) {
  const F f;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(dx + i, f(_mm256_loadu_ps(x + i), _mm256_loadu_ps(dy + i)));
  }
  if (i < n) {
    alignas(32) float t[8] = {}, g[8] = {};
    std::copy(x + i, x + n, t);
    std::copy(dy + i, dy + n, g);
    _mm256_store_ps(t, f(_mm256_load_ps(t), _mm256_load_ps(g)));
    std::copy(t, t + (n - i), dx + i);
  }
}

// Op: the scalar formula, OpV: the same in namespace avx2 (vmath_formulas.inc).
template <template <class> class Op, template <class> class OpV>
void run(const float* x, float* y, int64_t n, Isa isa) {
  switch (isa) {
    case Isa::Avx512:
      return span_avx512<Op<Poly>>(x, y, n);
    case Isa::Avx2:
      return span_avx2<OpV<Vec8>>(x, y, n);
    case Isa::Baseline:
      break;
  }
  const Op<Libm> f;
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

template <template <class> class Op, template <class> class OpV>
void run2(const float* x, const float* dy, float* dx, int64_t n, Isa isa) {
  switch (isa) {
    case Isa::Avx512:
      return span2_avx512<Op<Poly>>(x, dy, dx, n);
    case Isa::Avx2:
      return span2_avx2<OpV<Vec8>>(x, dy, dx, n);
    case Isa::Baseline:
      break;
  }
  const Op<Libm> f;
  for (int64_t i = 0; i < n; ++i) dx[i] = f(x[i], dy[i]);
}

}  // namespace

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::Avx512:
      return __builtin_cpu_supports("avx512f");
    case Isa::Avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::Baseline:
      break;
  }
  return true;
}

Isa best_isa() {
  static const Isa isa = detail::use_avx512()       ? Isa::Avx512
                         : isa_supported(Isa::Avx2) ? Isa::Avx2
                                                    : Isa::Baseline;
  return isa;
}

void tanh_span(const float* x, float* y, int64_t n, Isa isa) {
  run<scalar::Tanh, avx2::Tanh>(x, y, n, isa);
}
void sigmoid_span(const float* x, float* y, int64_t n, Isa isa) {
  run<scalar::Sigmoid, avx2::Sigmoid>(x, y, n, isa);
}
void silu_span(const float* x, float* y, int64_t n, Isa isa) {
  run<scalar::Silu, avx2::Silu>(x, y, n, isa);
}
void silu_backward_span(const float* x, const float* dy, float* dx, int64_t n, Isa isa) {
  run2<scalar::SiluBackward, avx2::SiluBackward>(x, dy, dx, n, isa);
}
void gelu_tanh_span(const float* x, float* y, int64_t n, Isa isa) {
  run<scalar::GeluTanh, avx2::GeluTanh>(x, y, n, isa);
}
void gelu_tanh_backward_span(const float* x, const float* dy, float* dx, int64_t n, Isa isa) {
  run2<scalar::GeluTanhBackward, avx2::GeluTanhBackward>(x, dy, dx, n, isa);
}

}  // namespace cnn::fast
