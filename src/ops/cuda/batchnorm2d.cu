// batchnorm2d on CUDA: one block per channel. The block sums its channel's values in double
// (each thread a strided share, then a fixed-order tree in shared memory: the same result on
// every run), derives the statistics exactly as the CPU does (src/ops/batchnorm2d.cpp: two passes
// for the variance, the scale-and-shift form, the running statistics' update), and then writes
// its channel's outputs. The backward pass has the same shape: the two sums, then dx.
#include "../../core/cuda/check.cuh"
#include "ops.h"

namespace cnn::cuda {

namespace {

constexpr int kThreads = 256;

// The block's sum of v (every thread passes its partial); all threads get it.
__device__ double block_sum(double v, double* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s /= 2) {
    if (threadIdx.x < s) shared[threadIdx.x] += shared[threadIdx.x + s];
    __syncthreads();
  }
  const double total = shared[0];
  __syncthreads();
  return total;
}

struct BnArgs {
  const float* x;
  float* y;
  const float* weight;  // null: 1
  const float* bias;    // null: 0
  float* running_mean;  // null: no running statistics
  float* running_var;
  float* mean_out;
  float* invstd_out;
  int64_t N, C, HW;
  bool training;
  double momentum, eps;
};

__global__ void bn_forward_kernel(BnArgs a) {
  __shared__ double shared[kThreads];
  const int64_t c = blockIdx.x, M = a.N * a.HW;
  double m, inv;
  if (a.training) {
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < M; i += kThreads) {
      const int64_t n = i / a.HW, k = i % a.HW;
      s += a.x[(n * a.C + c) * a.HW + k];
    }
    m = block_sum(s, shared) / static_cast<double>(M);
    double sq = 0.0;
    for (int64_t i = threadIdx.x; i < M; i += kThreads) {
      const int64_t n = i / a.HW, k = i % a.HW;
      const double d = a.x[(n * a.C + c) * a.HW + k] - m;
      sq += d * d;
    }
    sq = block_sum(sq, shared);
    inv = 1.0 / sqrt(sq / static_cast<double>(M) + a.eps);
    if (threadIdx.x == 0 && a.running_mean) {
      const double unbiased = sq / static_cast<double>(M - 1);
      a.running_mean[c] =
          static_cast<float>((1.0 - a.momentum) * a.running_mean[c] + a.momentum * m);
      a.running_var[c] =
          static_cast<float>((1.0 - a.momentum) * a.running_var[c] + a.momentum * unbiased);
    }
  } else {
    m = a.running_mean[c];
    inv = 1.0 / sqrt(static_cast<double>(a.running_var[c]) + a.eps);
  }
  if (threadIdx.x == 0) {
    a.mean_out[c] = static_cast<float>(m);
    a.invstd_out[c] = static_cast<float>(inv);
  }
  const double w = a.weight ? a.weight[c] : 1.0, b = a.bias ? a.bias[c] : 0.0;
  const float scale = static_cast<float>(w * inv);
  const float shift = static_cast<float>(b - m * w * inv);
  for (int64_t i = threadIdx.x; i < M; i += kThreads) {
    const int64_t n = i / a.HW, k = i % a.HW, at = (n * a.C + c) * a.HW + k;
    a.y[at] = a.x[at] * scale + shift;
  }
}

struct BnBackArgs {
  const float* x;
  const float* dy;
  const float* weight;
  const float* mean;
  const float* invstd;
  float* dx;
  float* dweight;
  float* dbias;
  int64_t N, C, HW;
  bool training;
};

__global__ void bn_backward_kernel(BnBackArgs a) {
  __shared__ double shared[kThreads];
  const int64_t c = blockIdx.x, M = a.N * a.HW;
  const double m = a.mean[c], inv = a.invstd[c];
  double s = 0.0, d = 0.0;
  for (int64_t i = threadIdx.x; i < M; i += kThreads) {
    const int64_t n = i / a.HW, k = i % a.HW, at = (n * a.C + c) * a.HW + k;
    s += a.dy[at];
    d += a.dy[at] * (a.x[at] - m);
  }
  const double sum = block_sum(s, shared), dot = block_sum(d, shared);
  if (threadIdx.x == 0) {
    if (a.dbias) a.dbias[c] += static_cast<float>(sum);
    if (a.dweight) a.dweight[c] += static_cast<float>(dot * inv);
  }
  if (!a.dx) return;
  const double w = a.weight ? a.weight[c] : 1.0;
  const float scale = static_cast<float>(w * inv);
  const float mean_f = a.mean[c];
  const float proj = a.training ? static_cast<float>(inv * inv * dot / M) : 0.0f;
  const float grad_mean = a.training ? static_cast<float>(sum / M) : 0.0f;
  for (int64_t i = threadIdx.x; i < M; i += kThreads) {
    const int64_t n = i / a.HW, k = i % a.HW, at = (n * a.C + c) * a.HW + k;
    a.dx[at] = (a.dy[at] - (a.x[at] - mean_f) * proj - grad_mean) * scale;
  }
}

}  // namespace

Tensor batchnorm2d_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                           Tensor* running_mean, Tensor* running_var, bool training,
                           double momentum, double eps, BatchNorm2dSaved* saved) {
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  Tensor y = Tensor::empty(x.shape(), Device::CUDA);
  Tensor mean = Tensor::empty({C}, Device::CUDA), invstd = Tensor::empty({C}, Device::CUDA);
  if (C > 0) {
    BnArgs a{x.data(),
             y.data(),
             weight.defined() ? weight.data() : nullptr,
             bias.defined() ? bias.data() : nullptr,
             running_mean ? running_mean->data() : nullptr,
             running_var ? running_var->data() : nullptr,
             mean.data(),
             invstd.data(),
             N,
             C,
             HW,
             training,
             momentum,
             eps};
    bn_forward_kernel<<<static_cast<unsigned>(C), kThreads>>>(a);
    CNN_CUDA_CHECK(cudaGetLastError());
  }
  if (saved) *saved = {mean, invstd};
  return y;
}

void batchnorm2d_backward(const Tensor& x, const Tensor& dy, const Tensor& weight,
                          const BatchNorm2dSaved& saved, bool training, Tensor* dx, Tensor* dweight,
                          Tensor* dbias) {
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  if (dx) *dx = Tensor::empty(x.shape(), Device::CUDA);
  if (C == 0) return;
  BnBackArgs a{x.data(),
               dy.data(),
               weight.defined() ? weight.data() : nullptr,
               saved.mean.data(),
               saved.invstd.data(),
               dx ? dx->data() : nullptr,
               dweight ? dweight->data() : nullptr,
               dbias ? dbias->data() : nullptr,
               N,
               C,
               HW,
               training};
  bn_backward_kernel<<<static_cast<unsigned>(C), kThreads>>>(a);
  CNN_CUDA_CHECK(cudaGetLastError());
}

}  // namespace cnn::cuda
