// The activations' vector paths (vmath.h). Each formula is written once (vmath_formulas.inc) over
// a policy that supplies exp and tanh and a value type: Libm (std::exp, std::tanh) on floats for
// the baseline loop, Vec8 on 8 lanes of AVX2 and Vec16 on 16 lanes of AVX-512 for the vector
// paths, branch-free (selects, fma, bit casts) and written out in intrinsics.
#include "vmath.h"

#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cmath>

#include "../../core/cpu.h"

namespace cnn::fast {

namespace {

#define CNN_INLINE __attribute__((always_inline)) inline

// exp(z) = 2^n exp(r): n = round(z / ln 2), r = z - n ln 2 in [-ln2/2, ln2/2], ln 2 split in two
// (Cody and Waite) so that n ln2_hi is exact; exp(r) = 1 + r + r^2 P(r) with Cephes' expf
// polynomial (degree 5, relative error below 2^-24 on the interval). 2^n is applied as 2^(n-1) * 2
// so that n = 128 still has an exponent field and overflows to inf exactly where expf does.
// Valid for z in [-86, 89], which callers clamp to; NaN passes through. Written out below on 8
// lanes (exp_core8) and 16 (exp_core16), the same operations in the same order.
//
// tanh(x): for |x| < 0.625 the odd polynomial x + x^3 Q(x^2) (Cephes' tanhf), exact for tiny
// and denormal x where 1 - 2 / (exp(2x) + 1) would lose every digit; otherwise that formula,
// whose cancellation costs at most a bit from |x| = 0.625 on (the result is above 0.55). Beyond
// |x| = 10 tanh rounds to +-1: 2|x| is clamped to 20 so that exp stays finite and 1 - 2 / (e + 1)
// rounds to exactly 1.
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kShift = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
constexpr float kLn2Hi = 0.693359375f;
constexpr float kLn2Lo = -2.12194440e-4f;

struct Libm {
  static float exp(float z) { return std::exp(z); }
  static float tanh(float x) { return std::tanh(x); }
};

// exp and tanh on 8 lanes of AVX2, written out: the loops GCC made of a scalar form of them
// (over blocks of 16 floats) kept spilling to the stack: 45 TSC ticks per 8 SiLUs on this
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
  // MINPS and MAXPS return their second operand when either is NaN: NaN passes.
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

// The same on 16 lanes of AVX-512, where GCC's vectorised scalar form spilled too. The same
// operations in the same order as Vec8: both give the same numbers (tests/test_vmath.cpp).
#define CNN_AVX512 __attribute__((target("avx512f,avx2,fma"), always_inline)) inline

CNN_AVX512 __m512 splat16(float f) { return _mm512_set1_ps(f); }

CNN_AVX512 __m512 exp_core16(__m512 z) {
  const __m512 t = _mm512_fmadd_ps(z, splat16(kLog2e), splat16(kShift));
  const __m512 n = _mm512_sub_ps(t, splat16(kShift));
  __m512 r = _mm512_fmadd_ps(n, splat16(-kLn2Hi), z);
  r = _mm512_fmadd_ps(n, splat16(-kLn2Lo), r);
  __m512 p = _mm512_fmadd_ps(splat16(1.9875691500e-4f), r, splat16(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, splat16(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, splat16(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, splat16(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, splat16(5.0000001201e-1f));
  const __m512 e = _mm512_add_ps(splat16(1.0f), _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r));
  // The integer steps as GCC vector operations: GCC 12's _mm512_slli_epi32 and
  // _mm512_andnot_si512 start from an "undefined" vector that -Wmaybe-uninitialized reports.
  const __v16si bits = (__builtin_bit_cast(__v16si, t) - std::bit_cast<int32_t>(kShift) + 126)
                       << 23;
  const __m512 scale = __builtin_bit_cast(__m512, bits);
  return _mm512_mul_ps(_mm512_mul_ps(e, scale), splat16(2.0f));
}

struct Vec16 {
  // VMINPS and VMAXPS return their second operand when either is NaN, as on AVX2. (Their
  // masked forms with every lane set: GCC 12's plain ones start from an "undefined" vector.)
  static CNN_AVX512 __m512 exp(__m512 z) {
    z = _mm512_mask_min_ps(z, static_cast<__mmask16>(0xffff), splat16(89.0f), z);
    z = _mm512_mask_max_ps(z, static_cast<__mmask16>(0xffff), splat16(-86.0f), z);
    return exp_core16(z);
  }

  static CNN_AVX512 __m512 tanh(__m512 x) {
    const __v16si xi = __builtin_bit_cast(__v16si, x);
    const __m512 a = __builtin_bit_cast(__m512, xi & 0x7fffffff);
    const __m512 a2 = _mm512_mul_ps(a, a);
    __m512 q = _mm512_fmadd_ps(splat16(-5.70498872745e-3f), a2, splat16(2.06390887954e-2f));
    q = _mm512_fmadd_ps(q, a2, splat16(-5.37397155531e-2f));
    q = _mm512_fmadd_ps(q, a2, splat16(1.33314422036e-1f));
    q = _mm512_fmadd_ps(q, a2, splat16(-3.33332819422e-1f));
    const __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(q, a2), a, a);
    const __m512 z = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, splat16(10.0f), _CMP_GT_OQ),
                                          _mm512_add_ps(a, a), splat16(20.0f));
    const __m512 large = _mm512_sub_ps(
        splat16(1.0f), _mm512_div_ps(splat16(2.0f), _mm512_add_ps(exp_core16(z), splat16(1.0f))));
    const __m512 r =
        _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, splat16(0.625f), _CMP_LT_OQ), large, small);
    return __builtin_bit_cast(__m512, (__builtin_bit_cast(__v16si, r) & 0x7fffffff) |
                                          (xi & static_cast<int>(0x80000000u)));
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

namespace avx512 {
#define CNN_FORMULA CNN_AVX512
#include "vmath_formulas.inc"
#undef CNN_FORMULA
}  // namespace avx512

// 16 lanes at a time; the tail by a masked load and store.
template <class F>
__attribute__((target("avx512f,avx2,fma"))) void span_avx512(const float* x, float* y, int64_t n) {
  const F f;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, f(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const auto m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(y + i, m, f(_mm512_maskz_loadu_ps(m, x + i)));
  }
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
  const F f;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm512_storeu_ps(dx + i, f(_mm512_loadu_ps(x + i), _mm512_loadu_ps(dy + i)));
  }
  if (i < n) {
    const auto m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(dx + i, m,
                          f(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, dy + i)));
  }
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

// Op: the scalar formula, OpV and OpW: the same in namespaces avx2 and avx512
// (vmath_formulas.inc).
template <template <class> class Op, template <class> class OpV, template <class> class OpW>
void run(const float* x, float* y, int64_t n, Isa isa) {
  switch (isa) {
    case Isa::Avx512:
      return span_avx512<OpW<Vec16>>(x, y, n);
    case Isa::Avx2:
      return span_avx2<OpV<Vec8>>(x, y, n);
    case Isa::Baseline:
      break;
  }
  const Op<Libm> f;
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

template <template <class> class Op, template <class> class OpV, template <class> class OpW>
void run2(const float* x, const float* dy, float* dx, int64_t n, Isa isa) {
  switch (isa) {
    case Isa::Avx512:
      return span2_avx512<OpW<Vec16>>(x, dy, dx, n);
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
  run<scalar::Tanh, avx2::Tanh, avx512::Tanh>(x, y, n, isa);
}
void sigmoid_span(const float* x, float* y, int64_t n, Isa isa) {
  run<scalar::Sigmoid, avx2::Sigmoid, avx512::Sigmoid>(x, y, n, isa);
}
void silu_span(const float* x, float* y, int64_t n, Isa isa) {
  run<scalar::Silu, avx2::Silu, avx512::Silu>(x, y, n, isa);
}
void silu_backward_span(const float* x, const float* dy, float* dx, int64_t n, Isa isa) {
  run2<scalar::SiluBackward, avx2::SiluBackward, avx512::SiluBackward>(x, dy, dx, n, isa);
}
void gelu_tanh_span(const float* x, float* y, int64_t n, Isa isa) {
  run<scalar::GeluTanh, avx2::GeluTanh, avx512::GeluTanh>(x, y, n, isa);
}
void gelu_tanh_backward_span(const float* x, const float* dy, float* dx, int64_t n, Isa isa) {
  run2<scalar::GeluTanhBackward, avx2::GeluTanhBackward, avx512::GeluTanhBackward>(x, dy, dx, n,
                                                                                   isa);
}

}  // namespace cnn::fast
