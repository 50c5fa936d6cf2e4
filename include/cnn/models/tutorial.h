// The tutorial's MNIST CNN (class CNN in its notebook):
//   conv1 = Sequential(Conv2d(1, 16, 3), ReLU(), MaxPool2d(2, stride=2, padding=1))
//   conv2 = Sequential(Conv2d(16, 32, 3), ReLU(), MaxPool2d(2, stride=2, padding=1))
//   classifier = Sequential(Flatten(1, -1), Linear(7 * 7 * 32, 32), ReLU(), Dropout(0.3),
//                           Linear(32, num_classes))
// x: (N, 1, 28, 28) -> logits: (N, num_classes)
#pragma once

#include <memory>

#include "cnn/nn/layers.h"

namespace cnn {

class TutorialCNN : public Module {
 public:
  explicit TutorialCNN(int64_t num_classes = 10, Generator& gen = default_generator());
  std::string type_name() const override { return "CNN"; }
  // As models/tutorial.json declares it: conv1, conv2 and classifier as named Sequentials.
  nlohmann::json config() const override;
  Shape output_shape(const Shape& input) const override;

  std::shared_ptr<Sequential> conv1, conv2, classifier;

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& dy) override;
};

}  // namespace cnn
