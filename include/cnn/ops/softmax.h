// softmax and log_softmax along one dimension (negative counts from the end), numerically stable
// (the maximum is subtracted first).
//
// x: any shape -> y: same shape
#pragma once

#include "cnn/tensor.h"

namespace cnn {

Tensor softmax_forward(const Tensor& x, int64_t dim);
// y: the forward output. dx = y * (dy - sum(dy * y, dim))
Tensor softmax_backward(const Tensor& y, const Tensor& dy, int64_t dim);

Tensor log_softmax_forward(const Tensor& x, int64_t dim);
// y: the forward output. dx = dy - exp(y) * sum(dy, dim)
Tensor log_softmax_backward(const Tensor& y, const Tensor& dy, int64_t dim);

}  // namespace cnn
