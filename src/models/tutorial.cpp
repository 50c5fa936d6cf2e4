#include "cnn/models/tutorial.h"

namespace cnn {

TutorialCNN::TutorialCNN(int64_t num_classes, Generator& gen) {
  auto pool = [] { return std::make_shared<MaxPool2d>(MaxPool2dOptions(2).stride(2).padding(1)); };
  conv1 =
      register_module("conv1", sequential(std::make_shared<Conv2d>(Conv2dOptions(1, 16, 3), gen),
                                          std::make_shared<ReLU>(), pool()));
  conv2 =
      register_module("conv2", sequential(std::make_shared<Conv2d>(Conv2dOptions(16, 32, 3), gen),
                                          std::make_shared<ReLU>(), pool()));
  classifier = register_module(
      "classifier", sequential(std::make_shared<Flatten>(1, -1),
                               std::make_shared<Linear>(LinearOptions(7 * 7 * 32, 32), gen),
                               std::make_shared<ReLU>(), std::make_shared<Dropout>(0.3, gen),
                               std::make_shared<Linear>(LinearOptions(32, num_classes), gen)));
}

Tensor TutorialCNN::forward_impl(const Tensor& x) {
  return classifier->forward(conv2->forward(conv1->forward(x)));
}

Tensor TutorialCNN::backward_impl(const Tensor& dy) {
  return conv1->backward(conv2->backward(classifier->backward(dy)), input_grad());
}

}  // namespace cnn
