#include "cnn/models/tutorial.h"

namespace cnn {

TutorialCNN::TutorialCNN(int64_t num_classes, Generator& gen) {
  // One statement a layer, in the order PyTorch's constructor runs (and a model file declares
  // them): the order of a function's arguments' evaluation is unspecified, and each layer with
  // weights draws from gen.
  auto pool = [] { return std::make_shared<MaxPool2d>(MaxPool2dOptions(2).stride(2).padding(1)); };
  auto c1 = std::make_shared<Conv2d>(Conv2dOptions(1, 16, 3), gen);
  conv1 = register_module("conv1", sequential(c1, std::make_shared<ReLU>(), pool()));
  auto c2 = std::make_shared<Conv2d>(Conv2dOptions(16, 32, 3), gen);
  conv2 = register_module("conv2", sequential(c2, std::make_shared<ReLU>(), pool()));
  auto fc1 = std::make_shared<Linear>(LinearOptions(7 * 7 * 32, 32), gen);
  auto dropout = std::make_shared<Dropout>(0.3, gen);
  auto fc2 = std::make_shared<Linear>(LinearOptions(32, num_classes), gen);
  classifier = register_module("classifier", sequential(std::make_shared<Flatten>(1, -1), fc1,
                                                        std::make_shared<ReLU>(), dropout, fc2));
}

nlohmann::json TutorialCNN::config() const {
  nlohmann::json c = sequential_config(*this);
  c["name"] = "tutorial";
  return c;
}

Shape TutorialCNN::output_shape(const Shape& input) const {
  return classifier->output_shape(conv2->output_shape(conv1->output_shape(input)));
}

Tensor TutorialCNN::forward_impl(const Tensor& x) {
  return classifier->forward(conv2->forward(conv1->forward(x)));
}

Tensor TutorialCNN::backward_impl(const Tensor& dy) {
  return conv1->backward(conv2->backward(classifier->backward(dy)), input_grad());
}

}  // namespace cnn
