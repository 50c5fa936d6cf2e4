// relu on CUDA: one element per thread in a grid-stride loop, with the CPU kernel's comparisons
// (relu.cpp) so that NaN behaves the same: the forward keeps NaN (v < 0 is false for it), and the
// backward lets the gradient through where y is NaN (y <= 0 is false for it), as PyTorch.
#include "cnn/error.h"
#include "launch.cuh"
#include "ops.h"

namespace cnn::cuda {

namespace {

__global__ void relu_kernel(const float* __restrict__ in, float* __restrict__ out, int64_t n) {
  for (int64_t i = grid_first(); i < n; i += grid_stride()) {
    const float v = in[i];
    out[i] = v < 0.0f ? 0.0f : v;
  }
}

__global__ void relu_grad_kernel(const float* __restrict__ y, const float* __restrict__ dy,
                                 float* __restrict__ dx, int64_t n) {
  for (int64_t i = grid_first(); i < n; i += grid_stride()) {
    const float g = dy[i];
    dx[i] = y[i] <= 0.0f ? 0.0f : g;
  }
}

}  // namespace

Tensor relu_forward(const Tensor& x) {
  Tensor y = Tensor::empty(x.shape(), Device::CUDA);
  const int64_t n = x.numel();
  if (n == 0) return y;
  relu_kernel<<<grid_for(n), kBlock>>>(x.data(), y.data(), n);
  check_launch("relu");
  return y;
}

Tensor relu_backward(const Tensor& y, const Tensor& dy) {
  Tensor dx = Tensor::empty(y.shape(), Device::CUDA);
  const int64_t n = y.numel();
  if (n == 0) return dx;
  relu_grad_kernel<<<grid_for(n), kBlock>>>(y.data(), dy.data(), dx.data(), n);
  check_launch("relu_backward");
  return dx;
}

}  // namespace cnn::cuda
