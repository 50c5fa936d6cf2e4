#include "cnn/ops/relu.h"

#include "cnn/error.h"

namespace cnn {

Tensor relu_forward(const Tensor& x) {
  Tensor y(x.shape());
  const float* in = x.data();
  float* out = y.data();
  for (int64_t i = 0; i < x.numel(); ++i) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
  return y;
}

Tensor relu_backward(const Tensor& y, const Tensor& dy) {
  if (y.shape() != dy.shape()) {
    throw Error("relu_backward: grad_output of shape " + shape_str(dy.shape()) +
                " does not match output shape " + shape_str(y.shape()));
  }
  Tensor dx(y.shape());
  for (int64_t i = 0; i < y.numel(); ++i) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
  return dx;
}

}  // namespace cnn
