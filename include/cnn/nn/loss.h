// CrossEntropyLoss, after PyTorch's (class-index targets, mean reduction).
#pragma once

#include <vector>

#include "cnn/ops/cross_entropy.h"

namespace cnn {

class CrossEntropyLoss {
 public:
  // logits: (N, C), targets: N class indices (an Int32 tensor on the logits' device, or on the
  // host) -> the mean loss.
  float forward(const Tensor& logits, const Tensor& targets);
  float forward(const Tensor& logits, const std::vector<int64_t>& targets);
  float operator()(const Tensor& logits, const Tensor& targets) { return forward(logits, targets); }
  float operator()(const Tensor& logits, const std::vector<int64_t>& targets) {
    return forward(logits, targets);
  }
  // d(loss)/d(logits), (N, C), for the last forward().
  Tensor backward() const;

 private:
  Tensor log_probs_;
  Tensor targets_;
};

}  // namespace cnn
