// The FMA peak: independent chains of fused multiply-adds, enough of them to cover the FMA
// latency, in the widest vector unit this processor has (chosen at run time).
#include <immintrin.h>

#include <chrono>

#include "cnn/perf/bench.h"

namespace cnn {

namespace {

constexpr int kChains = 12;
constexpr int64_t kIters = 1 << 22;

__attribute__((target("avx512f"))) double fma_avx512() {
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(0.001f * i);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < kIters; ++it) {
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  alignas(64) float out[16];
  float sink = 0;
  for (int i = 0; i < kChains; ++i) {
    _mm512_store_ps(out, acc[i]);
    for (float v : out) sink += v;
  }
  volatile float keep = sink;
  (void)keep;
  return 2.0 * 16 * kChains * static_cast<double>(kIters);
}

__attribute__((target("avx2,fma"))) double fma_avx2() {
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(0.001f * i);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < kIters; ++it) {
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  alignas(32) float out[8];
  float sink = 0;
  for (int i = 0; i < kChains; ++i) {
    _mm256_store_ps(out, acc[i]);
    for (float v : out) sink += v;
  }
  volatile float keep = sink;
  (void)keep;
  return 2.0 * 8 * kChains * static_cast<double>(kIters);
}

double mul_add_sse() {
  __m128 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm_set1_ps(0.001f * i);
  const __m128 a = _mm_set1_ps(0.999999f), b = _mm_set1_ps(1e-7f);
  for (int64_t it = 0; it < kIters; ++it) {
    for (int i = 0; i < kChains; ++i) acc[i] = _mm_add_ps(_mm_mul_ps(acc[i], a), b);
  }
  alignas(16) float out[4];
  float sink = 0;
  for (int i = 0; i < kChains; ++i) {
    _mm_store_ps(out, acc[i]);
    for (float v : out) sink += v;
  }
  volatile float keep = sink;
  (void)keep;
  return 2.0 * 4 * kChains * static_cast<double>(kIters);
}

}  // namespace

std::string simd_level() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return "avx512";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "avx2";
  return "sse";
}

double measure_fma_peak_gflops(int threads) {
  const std::string level = simd_level();
  auto one = [&] {
    return level == "avx512" ? fma_avx512() : level == "avx2" ? fma_avx2() : mul_add_sse();
  };
  double flops = 0;
  const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : flops)
  flops += one();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return flops / s / 1e9;
}

}  // namespace cnn
