// Optimizer base: holds the parameters it updates, in a fixed order.
#pragma once

#include <vector>

#include "cnn/nn/module.h"

namespace cnn {

class Optimizer {
 public:
  explicit Optimizer(std::vector<Parameter*> params);
  virtual ~Optimizer() = default;
  // One update from the gradients currently in each parameter's .grad.
  virtual void step() = 0;
  void zero_grad();
  double lr() const { return lr_; }
  // For learning-rate schedules.
  void set_lr(double lr) { lr_ = lr; }
  const std::vector<Parameter*>& params() const { return params_; }

 protected:
  std::vector<Parameter*> params_;
  double lr_ = 0.0;
};

}  // namespace cnn
