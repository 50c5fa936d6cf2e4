// softmax and log_softmax on CUDA, along one dimension of any rank: the tensor is viewed as
// (outer, size, inner) and each thread takes one (outer, inner) row, walking it with stride inner
// (consecutive threads read consecutive inner positions, so the loads coalesce when inner > 1).
// The arithmetic is the CPU's (softmax.cpp) step by step: the row's maximum taken as std::max
// takes it (so NaN never becomes the maximum, and then turns the sum into NaN), the exponentials
// and their sum in double, one rounding to float at the end. One thread per row suits the
// library's rows (class scores, channels); a very long dimension would want a block per row.
#include "cnn/error.h"
#include "launch.cuh"
#include "ops.h"

namespace cnn::cuda {

namespace {

struct View {
  int64_t outer, size, inner;
};

View view(const Shape& shape, int64_t dim) {
  View v{1, shape[dim], 1};
  for (int64_t i = 0; i < dim; ++i) v.outer *= shape[i];
  for (int64_t i = dim + 1; i < static_cast<int64_t>(shape.size()); ++i) v.inner *= shape[i];
  return v;
}

template <bool kLog>
__global__ void softmax_kernel(const float* __restrict__ x, float* __restrict__ y, View v) {
  const int64_t rows = v.outer * v.inner;
  for (int64_t r = grid_first(); r < rows; r += grid_stride()) {
    const int64_t base = (r / v.inner) * v.size * v.inner + r % v.inner;
    const float* in = x + base;
    float* out = y + base;
    float max = -INFINITY;
    for (int64_t k = 0; k < v.size; ++k) {
      const float e = in[k * v.inner];
      max = max < e ? e : max;  // std::max(max, e)
    }
    const double m = max;
    double sum = 0.0;
    for (int64_t k = 0; k < v.size; ++k) sum += exp(double(in[k * v.inner]) - m);
    if constexpr (kLog) {
      const double log_sum = log(sum);
      for (int64_t k = 0; k < v.size; ++k) {
        out[k * v.inner] = static_cast<float>(double(in[k * v.inner]) - m - log_sum);
      }
    } else {
      for (int64_t k = 0; k < v.size; ++k) {
        out[k * v.inner] = static_cast<float>(exp(double(in[k * v.inner]) - m) / sum);
      }
    }
  }
}

// dx = y (dy - sum(dy y)) for softmax, dy - exp(y) sum(dy) for log_softmax; sums in double.
template <bool kLog>
__global__ void softmax_backward_kernel(const float* __restrict__ y, const float* __restrict__ dy,
                                        float* __restrict__ dx, View v) {
  const int64_t rows = v.outer * v.inner;
  for (int64_t r = grid_first(); r < rows; r += grid_stride()) {
    const int64_t base = (r / v.inner) * v.size * v.inner + r % v.inner;
    double sum = 0.0;
    for (int64_t k = 0; k < v.size; ++k) {
      const int64_t j = base + k * v.inner;
      if constexpr (kLog) {
        sum += double(dy[j]);
      } else {
        sum += double(dy[j]) * y[j];
      }
    }
    for (int64_t k = 0; k < v.size; ++k) {
      const int64_t j = base + k * v.inner;
      if constexpr (kLog) {
        dx[j] = static_cast<float>(dy[j] - exp(double(y[j])) * sum);
      } else {
        dx[j] = static_cast<float>(y[j] * (dy[j] - sum));
      }
    }
  }
}

}  // namespace

Tensor softmax_forward(const Tensor& x, int64_t dim, bool log) {
  Tensor y = Tensor::empty(x.shape(), Device::CUDA);
  if (x.numel() == 0) return y;
  // A scalar is its own one-element row (the CPU's view of rank 0: 1 x 1 x 1).
  const View v = x.dim() == 0 ? View{1, 1, 1} : view(x.shape(), dim);
  const unsigned grid = grid_for(v.outer * v.inner);
  if (log) {
    softmax_kernel<true><<<grid, kBlock>>>(x.data(), y.data(), v);
  } else {
    softmax_kernel<false><<<grid, kBlock>>>(x.data(), y.data(), v);
  }
  check_launch(log ? "log_softmax" : "softmax");
  return y;
}

Tensor softmax_backward(const Tensor& y, const Tensor& dy, int64_t dim, bool log) {
  Tensor dx = Tensor::empty(y.shape(), Device::CUDA);
  if (y.numel() == 0) return dx;
  const View v = y.dim() == 0 ? View{1, 1, 1} : view(y.shape(), dim);  // as the forward
  const unsigned grid = grid_for(v.outer * v.inner);
  if (log) {
    softmax_backward_kernel<true><<<grid, kBlock>>>(y.data(), dy.data(), dx.data(), v);
  } else {
    softmax_backward_kernel<false><<<grid, kBlock>>>(y.data(), dy.data(), dx.data(), v);
  }
  check_launch(log ? "log_softmax_backward" : "softmax_backward");
  return dx;
}

}  // namespace cnn::cuda
