#include "cnn/ops/cross_entropy.h"

#include <cmath>

#include "cnn/error.h"
#include "cnn/ops/softmax.h"

namespace cnn {

namespace {
void check_targets(const Shape& logits, const std::vector<int64_t>& targets) {
  if (logits.size() != 2) {
    throw Error("cross_entropy: expected logits of shape (N, C), got " + shape_str(logits));
  }
  if (static_cast<int64_t>(targets.size()) != logits[0]) {
    throw Error("cross_entropy: expected " + std::to_string(logits[0]) +
                " targets for logits of shape " + shape_str(logits) + ", got " +
                std::to_string(targets.size()));
  }
  if (logits[0] == 0)
    throw Error("cross_entropy: empty batch (logits of shape " + shape_str(logits) + ")");
  for (std::size_t n = 0; n < targets.size(); ++n) {
    if (targets[n] < 0 || targets[n] >= logits[1]) {
      throw Error("cross_entropy: target " + std::to_string(targets[n]) + " at position " +
                  std::to_string(n) + " is out of bounds for " + std::to_string(logits[1]) +
                  " classes");
    }
  }
}
}  // namespace

CrossEntropyResult cross_entropy_forward(const Tensor& logits,
                                         const std::vector<int64_t>& targets) {
  check_targets(logits.shape(), targets);
  CrossEntropyResult r;
  r.log_probs = log_softmax_forward(logits, 1);
  const int64_t N = logits.size(0), C = logits.size(1);
  double sum = 0.0;
  for (int64_t n = 0; n < N; ++n) sum -= r.log_probs[n * C + targets[n]];
  r.loss = static_cast<float>(sum / N);
  return r;
}

Tensor cross_entropy_backward(const Tensor& log_probs, const std::vector<int64_t>& targets,
                              float dloss) {
  check_targets(log_probs.shape(), targets);
  const int64_t N = log_probs.size(0), C = log_probs.size(1);
  Tensor dlogits(log_probs.shape());
  const float scale = dloss / static_cast<float>(N);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c = 0; c < C; ++c) {
      const float p = std::exp(log_probs[n * C + c]);
      dlogits[n * C + c] = (p - (c == targets[n] ? 1.0f : 0.0f)) * scale;
    }
  }
  return dlogits;
}

}  // namespace cnn
