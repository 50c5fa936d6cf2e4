// The optimizers' element-wise updates as ops, so that they run where the parameters live
// (cnn/optim/sgd.h and cnn/optim/adam.h compute the scalar factors and call these per
// parameter). Every tensor of one call is on the same device and has the same shape.
#pragma once

#include "cnn/tensor.h"

namespace cnn {

// One Adam update, as PyTorch's single-tensor Adam computes it operation by operation in float32:
//   mode 2 (AdamW): w *= decay;  mode 1 (Adam with L2): g += weight_decay * w;
//   m = m * beta1 + one_minus_beta1 * g;  v = v * beta2 + one_minus_beta2 * g * g;
//   w += -step_size * (m / (sqrt(v) / bias_correction2_sqrt + eps)).
// The factors are computed in double from the options and the step count, then rounded, as
// PyTorch computes them in Python.
struct AdamStep {
  float beta1, one_minus_beta1, beta2, one_minus_beta2, bias_correction2_sqrt, eps, step_size,
      weight_decay, decay;
  int mode;  // 0: no weight decay, 1: L2 (Adam), 2: decoupled (AdamW)
};
void adam_step(Tensor& w, const Tensor& g, Tensor& m, Tensor& v, const AdamStep& k);

// One SGD update, PyTorch's: d = g + weight_decay * w; with momentum, buf = first ? d :
// buf * momentum + dampening_complement * d and d = nesterov ? d + momentum * buf : buf;
// w += -lr * d. buf: the momentum buffer (null without momentum), overwritten when first.
struct SgdStep {
  float lr, weight_decay, momentum, dampening_complement;
  bool nesterov, first;
};
void sgd_step(Tensor& w, const Tensor& g, Tensor* buf, const SgdStep& k);

}  // namespace cnn
