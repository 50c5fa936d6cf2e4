// linear, reference CPU kernels: plain loops, the oracle for the fast kernels.
#include "linear.h"

namespace cnn::reference {

Tensor linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Shape& y_shape) {
  Tensor y = Tensor::empty(y_shape);
  const int64_t out = w.size(0), in = w.size(1), rows = x.numel() / in;
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
  const int64_t out = w.size(0), in = w.size(1), rows = x.numel() / in;
  if (dx) {
    dx->fill(0.0f);
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

}  // namespace cnn::reference
