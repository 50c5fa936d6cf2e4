// linear, fast CPU kernels: one SGEMM per product; the rows split across threads, each thread's
// block one SGEMM (under 16 rows, one call on the calling thread).
#include "linear.h"

#include <algorithm>

#include "../../core/parallel.h"
#include "gemm.h"

namespace cnn::fast {

Tensor linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Shape& y_shape) {
  Tensor y = Tensor::empty(y_shape);
  const int64_t out = w.size(0), in = w.size(1), rows = x.numel() / in;
  if (rows == 1) {  // y = w x [+ b]
    if (b.defined()) std::copy(b.data(), b.data() + out, y.data());
    sgemv(out, in, 1.0f, w.data(), in, x.data(), b.defined() ? 1.0f : 0.0f, y.data());
    return y;
  }
  detail::parallel_chunks(rows, 16, [&](int64_t r0, int64_t r1) {
    float* y_rows = y.data() + r0 * out;
    if (b.defined()) {
      for (int64_t r = r0; r < r1; ++r) std::copy(b.data(), b.data() + out, y.data() + r * out);
    }
    // y (rows, out) = x (rows, in) w^T (in, out) [+ b]
    sgemm(false, true, r1 - r0, out, in, 1.0f, x.data() + r0 * in, in, w.data(), in,
          b.defined() ? 1.0f : 0.0f, y_rows, out);
  });
  return y;
}

void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor* dw,
                     Tensor* db) {
  const int64_t out = w.size(0), in = w.size(1), rows = x.numel() / in;
  if (dx) {
    // dx (rows, in) = dy (rows, out) w (out, in)
    detail::parallel_chunks(rows, 16, [&](int64_t r0, int64_t r1) {
      sgemm(false, false, r1 - r0, in, out, 1.0f, dy.data() + r0 * out, out, w.data(), in, 0.0f,
            dx->data() + r0 * in, in);
    });
  }
  if (dw) {
    // dw (out, in) += dy^T (out, rows) x (rows, in), split over the rows of dw
    detail::parallel_chunks(out, 16, [&](int64_t o0, int64_t o1) {
      sgemm(true, false, o1 - o0, in, rows, 1.0f, dy.data() + o0, out, x.data(), in, 1.0f,
            dw->data() + o0 * in, in);
    });
  }
  if (db) {
    for (int64_t o = 0; o < out; ++o) {
      double sum = 0.0;
      for (int64_t r = 0; r < rows; ++r) sum += dy[r * out + o];
      (*db)[o] += static_cast<float>(sum);
    }
  }
}

}  // namespace cnn::fast
