// Uses an installed cnn (examples/consumer/CMakeLists.txt, or pkg-config): the tutorial's model,
// one forward pass on a batch of random images, the predicted classes and torchsummary's table.
#include <cnn/cnn.h>

#include <cstdint>
#include <iostream>

int main() {
  try {
    cnn::manual_seed(0);
    cnn::TutorialCNN model;
    model.eval();

    cnn::Tensor images({2, 1, 28, 28});  // images: (N, 1, 28, 28)
    cnn::uniform_(images, 0.0f, 1.0f);
    cnn::Tensor logits = model.forward(images);  // logits: (N, 10)

    std::cout << "input " << cnn::shape_str(images.shape()) << " -> logits "
              << cnn::shape_str(logits.shape()) << "\n";
    std::cout << "predicted:";
    for (int64_t c : cnn::argmax(logits, 1)) std::cout << " " << c;
    std::cout << "\n" << cnn::summary(model, {1, 28, 28});
  } catch (const cnn::Error& e) {
    std::cerr << "consumer: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
