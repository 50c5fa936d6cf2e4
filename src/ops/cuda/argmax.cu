// argmax of each row of an (N, C) tensor on CUDA: one thread per row, with the CPU's loop
// (softmax.cpp's argmax) so that ties and NaN go the same way: the first maximum wins, and the
// first NaN wins and ends the search (NaN counts as the maximum, as torch.argmax).
#include "cnn/error.h"
#include "launch.cuh"
#include "ops.h"

namespace cnn::cuda {

namespace {

__global__ void argmax_kernel(const float* __restrict__ x, int32_t* __restrict__ out, int64_t N,
                              int64_t C) {
  for (int64_t n = grid_first(); n < N; n += grid_stride()) {
    const float* row = x + n * C;
    int64_t best = 0;
    for (int64_t k = 1; k < C; ++k) {
      const float cur = row[k], top = row[best];
      if (isnan(top)) break;
      if (cur > top || isnan(cur)) best = k;
    }
    out[n] = static_cast<int32_t>(best);
  }
}

}  // namespace

Tensor argmax_rows(const Tensor& x) {
  const int64_t N = x.size(0), C = x.size(1);
  Tensor out = Tensor::empty({N}, Device::CUDA, Dtype::Int32);
  if (N == 0) return out;
  argmax_kernel<<<grid_for(N), kBlock>>>(x.data(), out.data_int(), N, C);
  check_launch("argmax");
  return out;
}

}  // namespace cnn::cuda
