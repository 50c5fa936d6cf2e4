// linear forward and backward: reference CPU kernels.
#include "cnn/ops/linear.h"

#include <vector>

#include "cnn/error.h"

namespace cnn {

Shape linear_output_shape(const Shape& x, const Shape& w) {
  if (w.size() != 2) {
    throw Error("expected a 2-D weight (out_features, in_features), got " + shape_str(w));
  }
  if (x.empty() || x.back() != w[1]) {
    throw Error("expected input with last dimension in_features=" + std::to_string(w[1]) +
                " (..., " + std::to_string(w[1]) + "), got input of shape " + shape_str(x));
  }
  Shape y = x;
  y.back() = w[0];
  return y;
}

Tensor linear_forward(const Tensor& x, const Tensor& w, const Tensor& b) {
  Tensor y(linear_output_shape(x.shape(), w.shape()));
  const int64_t out = w.size(0), in = w.size(1), rows = x.numel() / in;
  if (b.defined() && (b.dim() != 1 || b.size(0) != out)) {
    throw Error("expected a bias of shape (" + std::to_string(out) + ",), got " +
                shape_str(b.shape()));
  }
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* x_row = x.data() + r * in;
    float* y_row = y.data() + r * out;
    for (int64_t o = 0; o < out; ++o) {
      const float* w_row = w.data() + o * in;
      float acc = 0.0f;
      for (int64_t i = 0; i < in; ++i) acc += x_row[i] * w_row[i];
      y_row[o] = acc + (b.defined() ? b[o] : 0.0f);
    }
  }
  return y;
}

void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor* dw,
                     Tensor* db) {
  const Shape y_shape = linear_output_shape(x.shape(), w.shape());
  if (dy.shape() != y_shape) {
    throw Error("linear_backward: expected grad_output of shape " + shape_str(y_shape) +
                ", got " + shape_str(dy.shape()));
  }
  const int64_t out = w.size(0), in = w.size(1), rows = x.numel() / in;
  if (dx) {
    *dx = Tensor(x.shape());
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      float* dx_row = dx->data() + r * in;
      const float* dy_row = dy.data() + r * out;
      for (int64_t o = 0; o < out; ++o) {
        const float g = dy_row[o];
        const float* w_row = w.data() + o * in;
        for (int64_t i = 0; i < in; ++i) dx_row[i] += g * w_row[i];
      }
    }
  }
  if (dw) {
    if (dw->shape() != w.shape()) {
      throw Error("linear_backward: dw has shape " + shape_str(dw->shape()) + ", expected " +
                  shape_str(w.shape()));
    }
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < out; ++o) {
      float* dw_row = dw->data() + o * in;
      for (int64_t r = 0; r < rows; ++r) {
        const float g = dy[r * out + o];
        const float* x_row = x.data() + r * in;
        for (int64_t i = 0; i < in; ++i) dw_row[i] += g * x_row[i];
      }
    }
  }
  if (db) {
    for (int64_t o = 0; o < out; ++o) {
      double sum = 0.0;
      for (int64_t r = 0; r < rows; ++r) sum += dy[r * out + o];
      (*db)[o] += static_cast<float>(sum);
    }
  }
}

}  // namespace cnn
