// relu forward and backward: one kernel each, compiled for AVX2 and for the baseline and chosen
// when the library loads; split across threads only for large tensors (cuda/relu.cu on CUDA).
#include "cnn/ops/relu.h"

#include "../core/parallel.h"
#include "check.h"
#include "cnn/error.h"
#include "cuda/ops.h"
#include "relu_kernel.h"

namespace cnn {

namespace {

// As PyTorch: NaN stays NaN (clamp_min propagates it). No __restrict: it may run in place.
// File-local, and called from other files through detail::relu_span below: clang before 16 names
// a target_clones dispatcher NAME.ifunc, so a call from another translation unit would not link
// (LLVM issue 50329).
__attribute__((target_clones("avx2", "default"))) void relu_kernel(const float* in, float* out,
                                                                   int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = in[i];
    out[i] = v < 0.0f ? 0.0f : v;
  }
}

}  // namespace

void detail::relu_span(const float* in, float* out, int64_t n) { relu_kernel(in, out, n); }

namespace {

// As PyTorch's threshold_backward: the gradient passes where y > 0 (and where y is NaN).
__attribute__((target_clones("avx2", "default"))) void relu_grad_span(const float* __restrict y,
                                                                      const float* __restrict dy,
                                                                      float* __restrict dx,
                                                                      int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = dy[i];
    dx[i] = y[i] <= 0.0f ? 0.0f : g;
  }
}

}  // namespace

Tensor relu_forward(const Tensor& x) {
  if (detail::op_device("relu", {{"input", x}}) == Device::CUDA) return cuda::relu_forward(x);
  Tensor y = Tensor::empty(x.shape());
  detail::parallel_chunks(x.numel(), 1 << 16, [&](int64_t lo, int64_t hi) {
    detail::relu_span(x.data() + lo, y.data() + lo, hi - lo);
  });
  return y;
}

Tensor relu_backward(const Tensor& y, const Tensor& dy) {
  const Device device = detail::op_device("relu_backward", {{"output", y}, {"grad_output", dy}});
  if (y.shape() != dy.shape()) {
    throw Error("relu_backward: grad_output of shape " + shape_str(dy.shape()) +
                " does not match output shape " + shape_str(y.shape()));
  }
  if (device == Device::CUDA) return cuda::relu_backward(y, dy);
  Tensor dx = Tensor::empty(y.shape());
  detail::parallel_chunks(y.numel(), 1 << 16, [&](int64_t lo, int64_t hi) {
    relu_grad_span(y.data() + lo, dy.data() + lo, dx.data() + lo, hi - lo);
  });
  return dx;
}

}  // namespace cnn
