// SGD with PyTorch's update (torch.optim.SGD):
//   g = grad + weight_decay * p
//   buf = g (first step), else momentum * buf + (1 - dampening) * g
//   g = nesterov ? g + momentum * buf : buf          (when momentum != 0)
//   p -= lr * g
#pragma once

#include "cnn/nn/options.h"
#include "cnn/optim/optimizer.h"

namespace cnn {

struct SGDOptions {
  SGDOptions(double lr) : lr_(lr) {}  // NOLINT
  CNN_ARG(double, lr, 0.0);
  CNN_ARG(double, momentum, 0.0);
  CNN_ARG(double, dampening, 0.0);
  CNN_ARG(double, weight_decay, 0.0);
  CNN_ARG(bool, nesterov, false);
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<Parameter*> params, const SGDOptions& options);
  void step() override;
  const SGDOptions& options() const { return options_; }
  // Momentum buffers, one per parameter (undefined until the first step).
  std::vector<Tensor>& momentum_buffers() { return buffers_; }

 private:
  SGDOptions options_;
  std::vector<Tensor> buffers_;
};

}  // namespace cnn
