#include "cnn/ops/relu.h"

#include "cnn/error.h"

namespace cnn {

Tensor relu_forward(const Tensor& x) {
  Tensor y = Tensor::empty(x.shape());
  const float* in = x.data();
  float* out = y.data();
  const int64_t n = x.numel();
#pragma omp parallel for simd schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; ++i) {
    const float v = in[i];
    out[i] = v > 0.0f ? v : 0.0f;
  }
  return y;
}

Tensor relu_backward(const Tensor& y, const Tensor& dy) {
  if (y.shape() != dy.shape()) {
    throw Error("relu_backward: grad_output of shape " + shape_str(dy.shape()) +
                " does not match output shape " + shape_str(y.shape()));
  }
  Tensor dx = Tensor::empty(y.shape());
  const float* out = y.data();
  const float* g = dy.data();
  float* d = dx.data();
  const int64_t n = y.numel();
#pragma omp parallel for simd schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i];  // an unconditional load lets the compiler vectorise the select
    d[i] = out[i] > 0.0f ? gi : 0.0f;
  }
  return dx;
}

}  // namespace cnn
