#include "cnn/nn/loss.h"

#include "cnn/error.h"

namespace cnn {

float CrossEntropyLoss::forward(const Tensor& logits, const std::vector<int64_t>& targets) {
  auto r = cross_entropy_forward(logits, targets);
  log_probs_ = std::move(r.log_probs);
  targets_ = targets;
  return r.loss;
}

Tensor CrossEntropyLoss::backward() const {
  if (!log_probs_.defined()) throw Error("CrossEntropyLoss: backward() called before forward()");
  return cross_entropy_backward(log_probs_, targets_);
}

}  // namespace cnn
