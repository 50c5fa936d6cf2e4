// relu forward and backward: one kernel each, compiled for AVX2 and for the baseline and chosen
// when the library loads; split across threads only for large tensors.
#include "cnn/ops/relu.h"

#include <algorithm>

#include "cnn/error.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace cnn {

namespace {

// As PyTorch: NaN stays NaN (clamp_min propagates it).
__attribute__((target_clones("avx2", "default"))) void relu_span(const float* __restrict in,
                                                                 float* __restrict out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = in[i];
    out[i] = v < 0.0f ? 0.0f : v;
  }
}

// As PyTorch's threshold_backward: the gradient passes where y > 0 (and where y is NaN).
__attribute__((target_clones("avx2", "default"))) void relu_grad_span(
    const float* __restrict y, const float* __restrict dy, float* __restrict dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = dy[i];
    dx[i] = y[i] <= 0.0f ? 0.0f : g;
  }
}

template <class F>
void for_spans(int64_t n, F&& f) {
  if (n < (1 << 16)) {  // a parallel region costs more than it saves below this
    f(0, n);
    return;
  }
#pragma omp parallel
  {
#ifdef _OPENMP
    const int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
#else
    const int64_t t = 0, T = 1;
#endif
    const int64_t chunk = (n + T - 1) / T, lo = std::min(n, t * chunk), hi = std::min(n, lo + chunk);
    if (hi > lo) f(lo, hi);
  }
}

}  // namespace

Tensor relu_forward(const Tensor& x) {
  Tensor y = Tensor::empty(x.shape());
  for_spans(x.numel(), [&](int64_t lo, int64_t hi) { relu_span(x.data() + lo, y.data() + lo, hi - lo); });
  return y;
}

Tensor relu_backward(const Tensor& y, const Tensor& dy) {
  if (y.shape() != dy.shape()) {
    throw Error("relu_backward: grad_output of shape " + shape_str(dy.shape()) +
                " does not match output shape " + shape_str(y.shape()));
  }
  Tensor dx = Tensor::empty(y.shape());
  for_spans(y.numel(), [&](int64_t lo, int64_t hi) {
    relu_grad_span(y.data() + lo, dy.data() + lo, dx.data() + lo, hi - lo);
  });
  return dx;
}

}  // namespace cnn
