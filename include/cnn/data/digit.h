// Turns a picture of a handwritten digit into an MNIST-like 28x28 input, the way MNIST's digits
// were made: grayscale, light strokes on black (inverted when dark-on-light), cropped to the
// strokes, scaled to fit 20x20 keeping the aspect ratio, placed in 28x28 with its centre of mass
// at the centre.
#pragma once

#include "cnn/tensor.h"
#include "cnn/viz/image.h"

namespace cnn {

struct DigitSteps {
  bool inverted = false;  // the input was dark on light
  GrayImage oriented;     // light on dark, full size
  GrayImage cropped;      // the strokes' bounding box
  GrayImage scaled;       // fits 20x20
  GrayImage centered;     // 28x28, centre of mass at (14, 14)
};

// Throws when the image is empty or holds no strokes.
DigitSteps preprocess_digit(const GrayImage& image);
// A 28x28 image as a (1, 1, 28, 28) tensor scaled to [0, 1].
Tensor digit_tensor(const GrayImage& centered);

}  // namespace cnn
