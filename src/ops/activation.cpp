// The element-wise activations, split across threads only for large tensors: the exp- and
// tanh-based ones (tanh, sigmoid, SiLU, GELU's tanh form) through the vectorised spans of
// fast/vmath.h (AVX-512 or AVX2 polynomials within 2 ulp of libm's results; libm's loop on other
// processors); the others one plain loop each (leaky_relu vectorises, GELU's erf form calls
// libm). On CUDA, cuda/activation.cu with the same formulas.
#include "cnn/ops/activation.h"

#include <cmath>

#include "../core/parallel.h"
#include "check.h"
#include "cnn/error.h"
#include "cuda/ops.h"
#include "fast/vmath.h"

namespace cnn {

namespace {

// Below this many elements a parallel region costs more than it saves (as relu.cpp).
constexpr int64_t kParallelMin = 1 << 16;

using cuda::Activation;

// y[i] = f(x[i]); on CUDA, the kernel of activation a (slope: leaky_relu's).
template <class F>
Tensor map1(const char* op, Activation a, float slope, const Tensor& x, F f) {
  if (detail::op_device(op, {{"input", x}}) == Device::CUDA) {
    return cuda::activation_forward(a, x, slope);
  }
  Tensor y = Tensor::empty(x.shape());
  const float* in = x.data();
  float* out = y.data();
  detail::parallel_chunks(x.numel(), kParallelMin, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) out[i] = f(in[i]);
  });
  return y;
}

// dx[i] = f(saved[i], dy[i]), saved being the forward pass's input or output.
template <class F>
Tensor map2(const char* op, Activation a, float slope, const Tensor& saved, const Tensor& dy, F f) {
  const Device device = detail::op_device(op, {{"saved", saved}, {"grad_output", dy}});
  if (saved.shape() != dy.shape()) {
    throw Error(std::string(op) + ": grad_output of shape " + shape_str(dy.shape()) +
                " does not match the saved tensor's shape " + shape_str(saved.shape()));
  }
  if (device == Device::CUDA) return cuda::activation_backward(a, saved, dy, slope);
  Tensor dx = Tensor::empty(dy.shape());
  const float* s = saved.data();
  const float* g = dy.data();
  float* out = dx.data();
  detail::parallel_chunks(dy.numel(), kParallelMin, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) out[i] = f(s[i], g[i]);
  });
  return dx;
}

// map1 and map2 over a span function of fast/vmath.h, which takes a chunk at a time.
Tensor span1(const char* op, Activation a, const Tensor& x,
             void (*span)(const float*, float*, int64_t, fast::Isa)) {
  if (detail::op_device(op, {{"input", x}}) == Device::CUDA) {
    return cuda::activation_forward(a, x, 0.0f);
  }
  Tensor y = Tensor::empty(x.shape());
  const float* in = x.data();
  float* out = y.data();
  detail::parallel_chunks(x.numel(), kParallelMin, [&](int64_t lo, int64_t hi) {
    span(in + lo, out + lo, hi - lo, fast::best_isa());
  });
  return y;
}

Tensor span2(const char* op, Activation a, const Tensor& saved, const Tensor& dy,
             void (*span)(const float*, const float*, float*, int64_t, fast::Isa)) {
  const Device device = detail::op_device(op, {{"saved", saved}, {"grad_output", dy}});
  if (saved.shape() != dy.shape()) {
    throw Error(std::string(op) + ": grad_output of shape " + shape_str(dy.shape()) +
                " does not match the saved tensor's shape " + shape_str(saved.shape()));
  }
  if (device == Device::CUDA) return cuda::activation_backward(a, saved, dy, 0.0f);
  Tensor dx = Tensor::empty(dy.shape());
  const float* s = saved.data();
  const float* g = dy.data();
  float* out = dx.data();
  detail::parallel_chunks(dy.numel(), kParallelMin, [&](int64_t lo, int64_t hi) {
    span(s + lo, g + lo, out + lo, hi - lo, fast::best_isa());
  });
  return dx;
}

constexpr float kSqrt1_2 = 0.70710678118654752440f;     // 1 / sqrt(2)
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;  // 1 / sqrt(2 pi)

}  // namespace

Tensor tanh_forward(const Tensor& x) { return span1("tanh", Activation::Tanh, x, fast::tanh_span); }

Tensor tanh_backward(const Tensor& y, const Tensor& dy) {
  return map2("tanh_backward", Activation::Tanh, 0.0f, y, dy,
              [](float t, float g) { return g * (1.0f - t * t); });
}

Tensor sigmoid_forward(const Tensor& x) {
  return span1("sigmoid", Activation::Sigmoid, x, fast::sigmoid_span);
}

Tensor sigmoid_backward(const Tensor& y, const Tensor& dy) {
  return map2("sigmoid_backward", Activation::Sigmoid, 0.0f, y, dy,
              [](float s, float g) { return g * (1.0f - s) * s; });
}

Tensor leaky_relu_forward(const Tensor& x, float negative_slope) {
  return map1("leaky_relu", Activation::LeakyRelu, negative_slope, x,
              [negative_slope](float v) { return v > 0.0f ? v : v * negative_slope; });
}

Tensor leaky_relu_backward(const Tensor& x, const Tensor& dy, float negative_slope) {
  return map2("leaky_relu_backward", Activation::LeakyRelu, negative_slope, x, dy,
              [negative_slope](float v, float g) { return v > 0.0f ? g : g * negative_slope; });
}

GeluApproximate gelu_approximate(const std::string& name) {
  if (name == "none") return GeluApproximate::None;
  if (name == "tanh") return GeluApproximate::Tanh;
  throw Error("approximate argument must be either none or tanh, got '" + excerpt(name) + "'");
}

std::string to_string(GeluApproximate a) { return a == GeluApproximate::Tanh ? "tanh" : "none"; }

Tensor gelu_forward(const Tensor& x, GeluApproximate approximate) {
  if (approximate == GeluApproximate::Tanh) {
    return span1("gelu", Activation::GeluTanh, x, fast::gelu_tanh_span);
  }
  return map1("gelu", Activation::Gelu, 0.0f, x,
              [](float v) { return 0.5f * v * (1.0f + std::erf(v * kSqrt1_2)); });
}

Tensor gelu_backward(const Tensor& x, const Tensor& dy, GeluApproximate approximate) {
  if (approximate == GeluApproximate::Tanh) {
    return span2("gelu_backward", Activation::GeluTanh, x, dy, fast::gelu_tanh_backward_span);
  }
  return map2("gelu_backward", Activation::Gelu, 0.0f, x, dy, [](float v, float g) {
    const float cdf = 0.5f * (1.0f + std::erf(v * kSqrt1_2));
    const float pdf = kInvSqrt2Pi * std::exp(-0.5f * v * v);
    return g * (cdf + v * pdf);
  });
}

Tensor silu_forward(const Tensor& x) { return span1("silu", Activation::Silu, x, fast::silu_span); }

Tensor silu_backward(const Tensor& x, const Tensor& dy) {
  return span2("silu_backward", Activation::Silu, x, dy, fast::silu_backward_span);
}

}  // namespace cnn
