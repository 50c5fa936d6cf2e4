// dropout on CUDA: y = x * mask * scale element-wise, multiplied in the CPU's order (dropout.cpp)
// so that both give the same bits. The mask is drawn on the host (dropout_mask) and copied here.
#include "cnn/error.h"
#include "launch.cuh"
#include "ops.h"

namespace cnn::cuda {

namespace {

__global__ void dropout_kernel(const float* __restrict__ in, const float* __restrict__ m,
                               float scale, float* __restrict__ out, int64_t n) {
  for (int64_t i = grid_first(); i < n; i += grid_stride()) out[i] = in[i] * m[i] * scale;
}

}  // namespace

Tensor dropout_apply(const Tensor& x, const Tensor& mask, float scale) {
  Tensor y = Tensor::empty(x.shape(), Device::CUDA);
  const int64_t n = x.numel();
  if (n == 0) return y;
  dropout_kernel<<<grid_for(n), kBlock>>>(x.data(), mask.data(), scale, y.data(), n);
  check_launch("dropout");
  return y;
}

}  // namespace cnn::cuda
