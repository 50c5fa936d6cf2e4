// The optimizers' element-wise updates on CUDA (cnn/ops/optim.h): one thread per element, the
// CPU's float operations in the CPU's order (src/ops/optim.cpp; built with --fmad=false, so no
// multiply-add is fused that the CPU rounds twice), so both devices take the same steps.
#include "../../core/cuda/check.cuh"
#include "ops.h"

namespace cnn::cuda {

namespace {

template <int Mode>
__global__ void adam_kernel(float* __restrict__ w, const float* __restrict__ g,
                            float* __restrict__ m, float* __restrict__ v, int64_t n, AdamStep k) {
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < n;
       j += int64_t(gridDim.x) * blockDim.x) {
    float grad = g[j];
    float wj = w[j];
    if (Mode == 2) wj *= k.decay;
    if (Mode == 1) grad += k.weight_decay * wj;
    const float mj = m[j] * k.beta1 + k.one_minus_beta1 * grad;
    const float vj = v[j] * k.beta2 + k.one_minus_beta2 * grad * grad;
    m[j] = mj;
    v[j] = vj;
    const float denom = sqrtf(vj) / k.bias_correction2_sqrt + k.eps;
    w[j] = wj + -k.step_size * (mj / denom);
  }
}

__global__ void sgd_kernel(float* __restrict__ w, const float* __restrict__ g,
                           float* __restrict__ b, int64_t n, SgdStep k) {
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < n;
       j += int64_t(gridDim.x) * blockDim.x) {
    float d = g[j];
    if (k.weight_decay != 0.0f) d += k.weight_decay * w[j];
    if (b) {
      const float bj = k.first ? d : b[j] * k.momentum + k.dampening_complement * d;
      b[j] = bj;
      d = k.nesterov ? d + k.momentum * bj : bj;
    }
    w[j] += -k.lr * d;
  }
}

}  // namespace

void adam_step(Tensor& w, const Tensor& g, Tensor& m, Tensor& v, const AdamStep& k) {
  const int64_t n = w.numel();
  if (n == 0) return;
  const unsigned blocks = blocks_for(n);
  if (k.mode == 2) {
    adam_kernel<2><<<blocks, 256>>>(w.data(), g.data(), m.data(), v.data(), n, k);
  } else if (k.mode == 1) {
    adam_kernel<1><<<blocks, 256>>>(w.data(), g.data(), m.data(), v.data(), n, k);
  } else {
    adam_kernel<0><<<blocks, 256>>>(w.data(), g.data(), m.data(), v.data(), n, k);
  }
  CNN_CUDA_CHECK(cudaGetLastError());
}

void sgd_step(Tensor& w, const Tensor& g, Tensor* buf, const SgdStep& k) {
  const int64_t n = w.numel();
  if (n == 0) return;
  sgd_kernel<<<blocks_for(n), 256>>>(w.data(), g.data(), buf ? buf->data() : nullptr, n, k);
  CNN_CUDA_CHECK(cudaGetLastError());
}

}  // namespace cnn::cuda
