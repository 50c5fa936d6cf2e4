// Launch conventions shared by the element-wise and pooling kernels of src/ops/cuda/: one block
// size, a grid capped so that huge tensors are covered by grid-stride loops (every kernel loops
// `for (i = first; i < n; i += stride)` with int64 indices, so no size overflows 32 bits), and
// the check after each launch, which turns a launch failure into a cnn::Error naming the op
// instead of a silent wrong result. Private to the ops' .cu files.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "cnn/error.h"

namespace cnn::cuda {

constexpr int kBlock = 256;
// Beyond this many blocks each thread simply takes more elements: enough to fill an H200 many
// times over, and far under gridDim.x's limit.
constexpr int64_t kMaxBlocks = int64_t{1} << 16;

// Blocks of kBlock threads for n work items (at least 1, so callers that skip n == 0 themselves
// never launch an empty grid by mistake).
inline unsigned grid_for(int64_t n) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  return static_cast<unsigned>(std::clamp<int64_t>(blocks, 1, kMaxBlocks));
}

// The first index and the stride of a grid-stride loop, in int64.
__device__ inline int64_t grid_first() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ inline int64_t grid_stride() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

// Throws cnn::Error naming op when a runtime call failed.
inline void check_cuda(cudaError_t status, const char* op) {
  if (status != cudaSuccess) {
    throw Error(std::string(op) + ": CUDA error: " + cudaGetErrorString(status));
  }
}

// After a launch: a bad configuration or an earlier asynchronous fault surfaces here (without
// synchronising: the ops do not wait for their kernels).
inline void check_launch(const char* op) { check_cuda(cudaGetLastError(), op); }

}  // namespace cnn::cuda
