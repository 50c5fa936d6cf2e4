#include "cnn/ops/cross_entropy.h"

#include <cmath>

#include "check.h"
#include "cnn/error.h"
#include "cnn/ops/softmax.h"
#include "cuda/ops.h"

namespace cnn {

namespace {
void check_count(const Shape& logits, int64_t targets) {
  if (logits.size() != 2) {
    throw Error("cross_entropy: expected logits of shape (N, C), got " + shape_str(logits));
  }
  if (targets != logits[0]) {
    throw Error("cross_entropy: expected " + std::to_string(logits[0]) +
                " targets for logits of shape " + shape_str(logits) + ", got " +
                std::to_string(targets));
  }
  if (logits[0] == 0)
    throw Error("cross_entropy: empty batch (logits of shape " + shape_str(logits) + ")");
}

template <class T>
void check_range(const Shape& logits, const T* targets, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (targets[i] < 0 || targets[i] >= logits[1]) {
      throw Error("cross_entropy: target " + std::to_string(targets[i]) + " at position " +
                  std::to_string(i) + " is out of bounds for " + std::to_string(logits[1]) +
                  " classes");
    }
  }
}

// The shape checks of both passes; on the host, the targets' range too (the CUDA kernels check
// it on the device).
Device check_targets(const char* op, const Tensor& logits, const Tensor& targets) {
  const Device device =
      detail::op_device(op, {{"logits", logits}, {"targets", targets, Dtype::Int32}});
  if (!targets.defined() || targets.dim() != 1) {
    throw Error(std::string(op) + ": expected targets of shape (N,), got " +
                (targets.defined() ? shape_str(targets.shape()) : std::string("none")));
  }
  check_count(logits.shape(), targets.numel());
  if (device == Device::CPU) check_range(logits.shape(), targets.data_int(), targets.numel());
  return device;
}

Tensor to_tensor(const Tensor& logits, const std::vector<int64_t>& targets) {
  check_count(logits.shape(), static_cast<int64_t>(targets.size()));
  check_range(logits.shape(), targets.data(), static_cast<int64_t>(targets.size()));
  return Tensor::from_ints({static_cast<int64_t>(targets.size())},
                           std::vector<int32_t>(targets.begin(), targets.end()), logits.device());
}
}  // namespace

CrossEntropyResult cross_entropy_forward(const Tensor& logits, const Tensor& targets) {
  const Device device = check_targets("cross_entropy", logits, targets);
  CrossEntropyResult r;
  r.log_probs = log_softmax_forward(logits, 1);
  if (device == Device::CUDA) {
    r.loss = cuda::nll_loss(r.log_probs, targets);
    return r;
  }
  const int64_t N = logits.size(0), C = logits.size(1);
  const int32_t* t = targets.data_int();
  double sum = 0.0;
  for (int64_t n = 0; n < N; ++n) sum -= r.log_probs[n * C + t[n]];
  r.loss = static_cast<float>(sum / N);
  return r;
}

Tensor cross_entropy_backward(const Tensor& log_probs, const Tensor& targets, float dloss) {
  const Device device = check_targets("cross_entropy_backward", log_probs, targets);
  const int64_t N = log_probs.size(0), C = log_probs.size(1);
  const float scale = dloss / static_cast<float>(N);
  if (device == Device::CUDA) return cuda::cross_entropy_backward(log_probs, targets, scale);
  Tensor dlogits = Tensor::empty(log_probs.shape());
  const int32_t* t = targets.data_int();
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c = 0; c < C; ++c) {
      const float p = std::exp(log_probs[n * C + c]);
      dlogits[n * C + c] = (p - (c == t[n] ? 1.0f : 0.0f)) * scale;
    }
  }
  return dlogits;
}

CrossEntropyResult cross_entropy_forward(const Tensor& logits,
                                         const std::vector<int64_t>& targets) {
  return cross_entropy_forward(logits, to_tensor(logits, targets));
}

Tensor cross_entropy_backward(const Tensor& log_probs, const std::vector<int64_t>& targets,
                              float dloss) {
  return cross_entropy_backward(log_probs, to_tensor(log_probs, targets), dloss);
}

}  // namespace cnn
