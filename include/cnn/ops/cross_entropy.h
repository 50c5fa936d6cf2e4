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

// targets: an Int32 tensor of N class indices on the logits' device.
CrossEntropyResult cross_entropy_forward(const Tensor& logits, const Tensor& targets);
// dlogits = (softmax(logits) - one_hot(targets)) * dloss / N
Tensor cross_entropy_backward(const Tensor& log_probs, const Tensor& targets, float dloss = 1.0f);

// The same with the class indices on the host (tests, tools): checked, then made an Int32 tensor
// on the logits' device.
CrossEntropyResult cross_entropy_forward(const Tensor& logits, const std::vector<int64_t>& targets);
Tensor cross_entropy_backward(const Tensor& log_probs, const std::vector<int64_t>& targets,
                              float dloss = 1.0f);

}  // namespace cnn
