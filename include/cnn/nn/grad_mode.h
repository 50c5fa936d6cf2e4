// Gradient mode, as torch.no_grad(): while a NoGradGuard lives on this thread, modules keep
// nothing for a backward pass, so inference holds no activations beyond the layer at hand.
#pragma once

namespace cnn {

bool grad_enabled();

class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace cnn
