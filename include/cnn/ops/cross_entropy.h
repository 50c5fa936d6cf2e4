// cross_entropy: PyTorch's CrossEntropyLoss with class-index targets and mean reduction,
// computed through a stable log_softmax.
//
// logits: (N, C), targets: N class indices in [0, C) -> loss: scalar
#pragma once

#include <cstdint>
#include <vector>

#include "cnn/tensor.h"

namespace cnn {

struct CrossEntropyResult {
  float loss = 0.0f;
  Tensor log_probs;  // (N, C), kept for the backward pass
};

CrossEntropyResult cross_entropy_forward(const Tensor& logits, const std::vector<int64_t>& targets);
// dlogits = (softmax(logits) - one_hot(targets)) * dloss / N
Tensor cross_entropy_backward(const Tensor& log_probs, const std::vector<int64_t>& targets,
                              float dloss = 1.0f);

}  // namespace cnn
