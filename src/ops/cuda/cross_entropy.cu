// The negative log-likelihood loss and cross_entropy's gradient on CUDA.
//
// nll_loss: one block reduces the whole batch, so the result does not depend on the launch (no
// atomics): each thread sums its strided share of -log_probs[n, t_n] in double (as the CPU), then
// a tree in shared memory adds the partial sums. The same pass validates the targets: each thread
// notes its first target outside [0, C), the tree keeps the smallest position, and that position,
// its target and the sum come back to the host in one copy, so the error names the same (first)
// bad target as the CPU's check.
//
// cross_entropy_backward: one element per thread, (expf(lp) - one_hot) * scale, as the CPU.
#include <string>

#include "cnn/error.h"
#include "launch.cuh"
#include "ops.h"

namespace cnn::cuda {

namespace {

constexpr int kReduceThreads = 256;  // a power of two, for the tree

// What the reduction hands back to the host, in one copy.
struct NllResult {
  double sum;       // sum over valid targets of -log_probs[n, t_n]
  int64_t bad_pos;  // the first position with a target out of [0, C), or N if none
  int32_t bad_target;
  int32_t unused;
};

__global__ void nll_kernel(const float* __restrict__ lp, const int32_t* __restrict__ t, int64_t N,
                           int64_t C, NllResult* __restrict__ result) {
  __shared__ double sums[kReduceThreads];
  __shared__ int64_t bads[kReduceThreads];
  double sum = 0.0;
  int64_t bad = N;
  for (int64_t n = threadIdx.x; n < N; n += kReduceThreads) {
    const int32_t c = t[n];
    if (c < 0 || c >= C) {
      if (bad == N) bad = n;  // positions rise along the loop: the first is the smallest
      continue;
    }
    sum -= lp[n * C + c];
  }
  sums[threadIdx.x] = sum;
  bads[threadIdx.x] = bad;
  __syncthreads();
  for (int half = kReduceThreads / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) {
      sums[threadIdx.x] += sums[threadIdx.x + half];
      bads[threadIdx.x] = min(bads[threadIdx.x], bads[threadIdx.x + half]);
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    result->sum = sums[0];
    result->bad_pos = bads[0];
    result->bad_target = bads[0] < N ? t[bads[0]] : 0;
    result->unused = 0;
  }
}

// An out-of-range target has no one-hot entry (nll_loss has already rejected it in a forward
// pass; here it only must not read out of bounds, and it does not).
__global__ void ce_backward_kernel(const float* __restrict__ lp, const int32_t* __restrict__ t,
                                   float scale, float* __restrict__ dlogits, int64_t total,
                                   int64_t C) {
  for (int64_t i = grid_first(); i < total; i += grid_stride()) {
    const int64_t n = i / C, c = i % C;
    const float p = expf(lp[i]);
    dlogits[i] = (p - (c == t[n] ? 1.0f : 0.0f)) * scale;
  }
}

}  // namespace

float nll_loss(const Tensor& log_probs, const Tensor& targets) {
  const int64_t N = log_probs.size(0), C = log_probs.size(1);
  // Scratch for the result from the caching allocator (no cudaMalloc, which would synchronise).
  static_assert(sizeof(NllResult) % sizeof(float) == 0);
  Tensor scratch =
      Tensor::empty({static_cast<int64_t>(sizeof(NllResult) / sizeof(float))}, Device::CUDA);
  auto* result = reinterpret_cast<NllResult*>(scratch.data());
  nll_kernel<<<1, kReduceThreads>>>(log_probs.data(), targets.data_int(), N, C, result);
  check_launch("cross_entropy");
  NllResult host{};
  // Synchronous: it waits for the kernel on the default stream.
  check_cuda(cudaMemcpy(&host, result, sizeof host, cudaMemcpyDeviceToHost), "cross_entropy");
  if (host.bad_pos < N) {
    throw Error("cross_entropy: target " + std::to_string(host.bad_target) + " at position " +
                std::to_string(host.bad_pos) + " is out of bounds for " + std::to_string(C) +
                " classes");
  }
  return static_cast<float>(host.sum / static_cast<double>(N));
}

Tensor cross_entropy_backward(const Tensor& log_probs, const Tensor& targets, float scale) {
  Tensor dlogits = Tensor::empty(log_probs.shape(), Device::CUDA);
  const int64_t total = log_probs.numel(), C = log_probs.size(1);
  if (total == 0) return dlogits;
  ce_backward_kernel<<<grid_for(total), kBlock>>>(log_probs.data(), targets.data_int(), scale,
                                                  dlogits.data(), total, C);
  check_launch("cross_entropy_backward");
  return dlogits;
}

}  // namespace cnn::cuda
