// The element-wise activations on CUDA: one templated kernel per direction, instantiated for each
// activation, one element per thread in a grid-stride loop. The formulas are activation.cpp's,
// written in the same order with the same float constants and the float functions (tanhf, expf,
// erff), and this file is built with --fmad=false, so that the results match the CPU's to within
// the functions' last-bit differences. tanh and sigmoid differentiate from their output y, the
// others from their input x, as the CPU ops.
#include "cnn/error.h"
#include "launch.cuh"
#include "ops.h"

namespace cnn::cuda {

namespace {

constexpr float kSqrt1_2 = 0.70710678118654752440f;     // 1 / sqrt(2)
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;  // 1 / sqrt(2 pi)
constexpr float kBeta = 0.79788456080286535588f;        // sqrt(2 / pi)
constexpr float kKappa = 0.044715f;

template <Activation A>
__device__ inline float forward_one(float v, float slope) {
  if constexpr (A == Activation::Tanh) {
    return tanhf(v);
  } else if constexpr (A == Activation::Sigmoid) {
    // expf(-v) overflows to inf for v < -88, giving 0 as it should.
    return 1.0f / (1.0f + expf(-v));
  } else if constexpr (A == Activation::LeakyRelu) {
    return v > 0.0f ? v : v * slope;
  } else if constexpr (A == Activation::Gelu) {
    return 0.5f * v * (1.0f + erff(v * kSqrt1_2));
  } else if constexpr (A == Activation::GeluTanh) {
    const float inner = kBeta * (v + kKappa * v * v * v);
    return 0.5f * v * (1.0f + tanhf(inner));
  } else {  // Silu
    return v / (1.0f + expf(-v));
  }
}

// s: the saved tensor's element (y for Tanh and Sigmoid, x otherwise); g: the incoming gradient.
template <Activation A>
__device__ inline float backward_one(float s, float g, float slope) {
  if constexpr (A == Activation::Tanh) {
    return g * (1.0f - s * s);
  } else if constexpr (A == Activation::Sigmoid) {
    return g * (1.0f - s) * s;
  } else if constexpr (A == Activation::LeakyRelu) {
    return s > 0.0f ? g : g * slope;
  } else if constexpr (A == Activation::Gelu) {
    const float cdf = 0.5f * (1.0f + erff(s * kSqrt1_2));
    const float pdf = kInvSqrt2Pi * expf(-0.5f * s * s);
    return g * (cdf + s * pdf);
  } else if constexpr (A == Activation::GeluTanh) {
    // PyTorch's GeluBackward for 'tanh': d/dx [left * right], left = x / 2, right = 1 + tanh(u).
    const float v2 = s * s;
    const float t = tanhf(kBeta * (s + kKappa * v2 * s));
    const float left = 0.5f * s, right = 1.0f + t;
    const float d_inner = kBeta * (1.0f + 3.0f * kKappa * v2);
    return g * (0.5f * right + left * (1.0f - t * t) * d_inner);
  } else {  // Silu
    const float sg = 1.0f / (1.0f + expf(-s));
    return g * sg * (1.0f + s * (1.0f - sg));
  }
}

template <Activation A>
__global__ void forward_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t n,
                               float slope) {
  for (int64_t i = grid_first(); i < n; i += grid_stride()) y[i] = forward_one<A>(x[i], slope);
}

template <Activation A>
__global__ void backward_kernel(const float* __restrict__ saved, const float* __restrict__ dy,
                                float* __restrict__ dx, int64_t n, float slope) {
  for (int64_t i = grid_first(); i < n; i += grid_stride()) {
    dx[i] = backward_one<A>(saved[i], dy[i], slope);
  }
}

template <Activation A>
void launch_forward(const Tensor& x, Tensor& y, float slope) {
  forward_kernel<A><<<grid_for(x.numel()), kBlock>>>(x.data(), y.data(), x.numel(), slope);
}

template <Activation A>
void launch_backward(const Tensor& saved, const Tensor& dy, Tensor& dx, float slope) {
  backward_kernel<A>
      <<<grid_for(dy.numel()), kBlock>>>(saved.data(), dy.data(), dx.data(), dy.numel(), slope);
}

}  // namespace

Tensor activation_forward(Activation a, const Tensor& x, float slope) {
  Tensor y = Tensor::empty(x.shape(), Device::CUDA);
  if (x.numel() == 0) return y;
  switch (a) {
    case Activation::Tanh:
      launch_forward<Activation::Tanh>(x, y, slope);
      break;
    case Activation::Sigmoid:
      launch_forward<Activation::Sigmoid>(x, y, slope);
      break;
    case Activation::LeakyRelu:
      launch_forward<Activation::LeakyRelu>(x, y, slope);
      break;
    case Activation::Gelu:
      launch_forward<Activation::Gelu>(x, y, slope);
      break;
    case Activation::GeluTanh:
      launch_forward<Activation::GeluTanh>(x, y, slope);
      break;
    case Activation::Silu:
      launch_forward<Activation::Silu>(x, y, slope);
      break;
  }
  check_launch("activation");
  return y;
}

Tensor activation_backward(Activation a, const Tensor& saved, const Tensor& dy, float slope) {
  Tensor dx = Tensor::empty(dy.shape(), Device::CUDA);
  if (dy.numel() == 0) return dx;
  switch (a) {
    case Activation::Tanh:
      launch_backward<Activation::Tanh>(saved, dy, dx, slope);
      break;
    case Activation::Sigmoid:
      launch_backward<Activation::Sigmoid>(saved, dy, dx, slope);
      break;
    case Activation::LeakyRelu:
      launch_backward<Activation::LeakyRelu>(saved, dy, dx, slope);
      break;
    case Activation::Gelu:
      launch_backward<Activation::Gelu>(saved, dy, dx, slope);
      break;
    case Activation::GeluTanh:
      launch_backward<Activation::GeluTanh>(saved, dy, dx, slope);
      break;
    case Activation::Silu:
      launch_backward<Activation::Silu>(saved, dy, dx, slope);
      break;
  }
  check_launch("activation_backward");
  return dx;
}

}  // namespace cnn::cuda
