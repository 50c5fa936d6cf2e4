#include "cnn/nn/loss.h"

#include "cnn/error.h"

namespace cnn {

float CrossEntropyLoss::forward(const Tensor& logits, const Tensor& targets) {
  auto r = cross_entropy_forward(logits, targets);
  log_probs_ = std::move(r.log_probs);
  targets_ = targets;
  return r.loss;
}

float CrossEntropyLoss::forward(const Tensor& logits, const std::vector<int64_t>& targets) {
  // The checks of the op, with the host's indices, before they become a tensor.
  auto r = cross_entropy_forward(logits, targets);
  log_probs_ = std::move(r.log_probs);
  targets_ =
      Tensor::from_ints({static_cast<int64_t>(targets.size())},
                        std::vector<int32_t>(targets.begin(), targets.end()), logits.device());
  return r.loss;
}

Tensor CrossEntropyLoss::backward() const {
  if (!log_probs_.defined()) throw Error("CrossEntropyLoss: backward() called before forward()");
  return cross_entropy_backward(log_probs_, targets_);
}

}  // namespace cnn
