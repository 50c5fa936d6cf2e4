// The element-wise activations: one plain loop each, which GCC vectorises where the formula
// allows (leaky_relu; the others call libm), split across threads only for large tensors; on
// CUDA, cuda/activation.cu with the same formulas.
#include "cnn/ops/activation.h"

#include <cmath>

#include "../core/parallel.h"
#include "check.h"
#include "cnn/error.h"
#include "cuda/ops.h"

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

constexpr float kSqrt1_2 = 0.70710678118654752440f;     // 1 / sqrt(2)
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;  // 1 / sqrt(2 pi)
constexpr float kBeta = 0.79788456080286535588f;        // sqrt(2 / pi)
constexpr float kKappa = 0.044715f;

}  // namespace

Tensor tanh_forward(const Tensor& x) {
  return map1("tanh", Activation::Tanh, 0.0f, x, [](float v) { return std::tanh(v); });
}

Tensor tanh_backward(const Tensor& y, const Tensor& dy) {
  return map2("tanh_backward", Activation::Tanh, 0.0f, y, dy,
              [](float t, float g) { return g * (1.0f - t * t); });
}

Tensor sigmoid_forward(const Tensor& x) {
  // exp(-x) overflows to inf for x < -88, giving 0 as it should.
  return map1("sigmoid", Activation::Sigmoid, 0.0f, x,
              [](float v) { return 1.0f / (1.0f + std::exp(-v)); });
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
    return map1("gelu", Activation::GeluTanh, 0.0f, x, [](float v) {
      const float inner = kBeta * (v + kKappa * v * v * v);
      return 0.5f * v * (1.0f + std::tanh(inner));
    });
  }
  return map1("gelu", Activation::Gelu, 0.0f, x,
              [](float v) { return 0.5f * v * (1.0f + std::erf(v * kSqrt1_2)); });
}

Tensor gelu_backward(const Tensor& x, const Tensor& dy, GeluApproximate approximate) {
  if (approximate == GeluApproximate::Tanh) {
    // PyTorch's GeluBackward for 'tanh': d/dx [left * right], left = x / 2, right = 1 + tanh(u).
    return map2("gelu_backward", Activation::GeluTanh, 0.0f, x, dy, [](float v, float g) {
      const float v2 = v * v;
      const float t = std::tanh(kBeta * (v + kKappa * v2 * v));
      const float left = 0.5f * v, right = 1.0f + t;
      const float d_inner = kBeta * (1.0f + 3.0f * kKappa * v2);
      return g * (0.5f * right + left * (1.0f - t * t) * d_inner);
    });
  }
  return map2("gelu_backward", Activation::Gelu, 0.0f, x, dy, [](float v, float g) {
    const float cdf = 0.5f * (1.0f + std::erf(v * kSqrt1_2));
    const float pdf = kInvSqrt2Pi * std::exp(-0.5f * v * v);
    return g * (cdf + v * pdf);
  });
}

Tensor silu_forward(const Tensor& x) {
  return map1("silu", Activation::Silu, 0.0f, x, [](float v) { return v / (1.0f + std::exp(-v)); });
}

Tensor silu_backward(const Tensor& x, const Tensor& dy) {
  return map2("silu_backward", Activation::Silu, 0.0f, x, dy, [](float v, float g) {
    const float s = 1.0f / (1.0f + std::exp(-v));
    return g * s * (1.0f + v * (1.0f - s));
  });
}

}  // namespace cnn
