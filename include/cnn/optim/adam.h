// Adam and AdamW with PyTorch's updates (torch.optim.Adam / AdamW, amsgrad off):
//   Adam:  g = grad + weight_decay * p          AdamW: p *= 1 - lr * weight_decay; g = grad
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g^2
//   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
#pragma once

#include <cstdint>

#include "cnn/nn/options.h"
#include "cnn/optim/optimizer.h"

namespace cnn {

struct AdamOptions {
  AdamOptions(double lr = 1e-3) : lr_(lr) {}  // NOLINT
  CNN_ARG(double, lr, 1e-3);
  CNN_ARG(double, beta1, 0.9);
  CNN_ARG(double, beta2, 0.999);
  CNN_ARG(double, eps, 1e-8);
  CNN_ARG(double, weight_decay, 0.0);
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<Parameter*> params, const AdamOptions& options = {});
  void step() override;
  const AdamOptions& options() const { return options_; }
  int64_t steps() const { return step_; }

  // State, for checkpoints: per parameter m (exp_avg) and v (exp_avg_sq), and the step count.
  std::vector<Tensor>& exp_avg() { return m_; }
  std::vector<Tensor>& exp_avg_sq() { return v_; }
  void set_steps(int64_t t) { step_ = t; }

 protected:
  Adam(std::vector<Parameter*> params, const AdamOptions& options, bool decoupled);

 private:
  AdamOptions options_;
  bool decoupled_weight_decay_;
  int64_t step_ = 0;
  std::vector<Tensor> m_, v_;
};

// AdamW: Adam with decoupled weight decay; PyTorch's default weight_decay is 1e-2.
class AdamW : public Adam {
 public:
  AdamW(std::vector<Parameter*> params,
        const AdamOptions& options = AdamOptions().weight_decay(1e-2))
      : Adam(std::move(params), options, true) {}
};

}  // namespace cnn
