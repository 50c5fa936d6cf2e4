// Vectorised float32 transcendental activations for the CPU: tanh, sigmoid, SiLU (and its
// gradient) and GELU's tanh form, on raw spans. Each is built for AVX-512, for AVX2 + FMA and for
// the baseline, chosen at run time (AVX-512 unless CNN_NO_AVX512=1, see src/core/cpu.h); the
// baseline is the plain scalar loop over libm, as before. The vector paths replace libm's exp and
// tanh by a range reduction and polynomials written as branch-free scalar code that the compiler
// vectorises in each target's function (docs/KERNELS.md: method, accuracy, speed). Accuracy,
// checked over the whole float range by tests/test_vmath.cpp: within 2 ulp of the correctly rounded
// result; saturation (tanh to +-1, sigmoid to 0 and 1), +-0, +-inf and NaN as the scalar loop.
//
// Every span function reads [0, n) and writes out[0, n); out may be an input (in place) but may
// not overlap one otherwise.
#pragma once

#include <cstdint>

namespace cnn::fast {

// The instruction sets of the span functions; best_isa() is the one the dispatch takes.
enum class Isa { Baseline, Avx2, Avx512 };
Isa best_isa();
// Whether this processor can run isa (Baseline always).
bool isa_supported(Isa isa);

// y = tanh(x)
void tanh_span(const float* x, float* y, int64_t n, Isa isa = best_isa());
// y = 1 / (1 + exp(-x))
void sigmoid_span(const float* x, float* y, int64_t n, Isa isa = best_isa());
// y = x / (1 + exp(-x))
void silu_span(const float* x, float* y, int64_t n, Isa isa = best_isa());
// dx = dy * s * (1 + x * (1 - s)), s = sigmoid(x)
void silu_backward_span(const float* x, const float* dy, float* dx, int64_t n,
                        Isa isa = best_isa());
// y = 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
void gelu_tanh_span(const float* x, float* y, int64_t n, Isa isa = best_isa());
// dx = dy * d/dx of the above, as PyTorch's GeluBackward for approximate='tanh'
void gelu_tanh_backward_span(const float* x, const float* dy, float* dx, int64_t n,
                             Isa isa = best_isa());

}  // namespace cnn::fast
