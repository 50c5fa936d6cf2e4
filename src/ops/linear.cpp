// linear: shape checks and the one dispatch point to the kernels (cuda/linear.cu for tensors on
// CUDA; reference/linear.cpp and fast/linear.cpp on the CPU).
#include "cnn/ops/linear.h"

#include <vector>

#include "check.h"
#include "cnn/error.h"
#include "cnn/kernels.h"
#include "cuda/ops.h"
#include "fast/linear.h"
#include "reference/linear.h"

namespace cnn {

Shape linear_output_shape(const Shape& x, const Shape& w) {
  if (w.size() != 2) {
    throw Error("expected a 2-D weight (out_features, in_features), got " + shape_str(w));
  }
  if (w[1] == 0) {  // (the kernels split the input into rows of in_features)
    throw Error("in_features must be positive, got a weight of shape " + shape_str(w));
  }
  if (x.empty() || x.back() != w[1]) {
    throw Error("expected input with last dimension in_features=" + std::to_string(w[1]) +
                " (..., " + std::to_string(w[1]) + "), got input of shape " + shape_str(x));
  }
  Shape y = x;
  y.back() = w[0];
  return y;
}

namespace {
// x as the (M, in_features) matrix that the CUDA kernels take.
Tensor as_matrix(const Tensor& x) { return x.reshape({-1, x.size(-1)}); }
}  // namespace

Tensor linear_forward(const Tensor& x, const Tensor& w, const Tensor& b) {
  const Device device = detail::op_device("linear", {{"input", x}, {"weight", w}, {"bias", b}});
  const Shape y_shape = linear_output_shape(x.shape(), w.shape());
  const int64_t out = w.size(0);
  if (b.defined() && (b.dim() != 1 || b.size(0) != out)) {
    throw Error("expected a bias of shape (" + std::to_string(out) + ",), got " +
                shape_str(b.shape()));
  }
  if (device == Device::CUDA) return cuda::linear_forward(as_matrix(x), w, b).reshape(y_shape);
  return kernel_set() == KernelSet::Fast ? fast::linear_forward(x, w, b, y_shape)
                                         : reference::linear_forward(x, w, b, y_shape);
}

void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor* dw,
                     Tensor* db) {
  const Tensor none;
  const Device device = detail::op_device("linear_backward", {{"input", x},
                                                              {"weight", w},
                                                              {"grad_output", dy},
                                                              {"dx", dx ? *dx : none},
                                                              {"dw", dw ? *dw : none},
                                                              {"db", db ? *db : none}});
  const Shape y_shape = linear_output_shape(x.shape(), w.shape());
  if (dy.shape() != y_shape) {
    throw Error("linear_backward: expected grad_output of shape " + shape_str(y_shape) + ", got " +
                shape_str(dy.shape()));
  }
  if (dw && dw->shape() != w.shape()) {
    throw Error("linear_backward: dw has shape " + shape_str(dw->shape()) + ", expected " +
                shape_str(w.shape()));
  }
  if (db && (db->dim() != 1 || db->size(0) != w.size(0))) {
    throw Error("linear_backward: db has shape " + shape_str(db->shape()) + ", expected (" +
                std::to_string(w.size(0)) + ",)");
  }
  if (dx) detail::reuse_or_empty(*dx, x.shape(), device);
  if (device == Device::CUDA) {
    Tensor dx_matrix = dx ? as_matrix(*dx) : Tensor();  // shares dx's storage
    cuda::linear_backward(as_matrix(x), w, dy.reshape({-1, w.size(0)}), dx ? &dx_matrix : nullptr,
                          dw, db);
  } else if (kernel_set() == KernelSet::Fast) {
    fast::linear_backward(x, w, dy, dx, dw, db);
  } else {
    reference::linear_backward(x, w, dy, dx, dw, db);
  }
}

}  // namespace cnn
