// summary(): the table torchsummary prints for a model, character for character.
#pragma once

#include <string>

#include "cnn/nn/module.h"

namespace cnn {

// input_size: one sample's shape without the batch dimension, e.g. {1, 28, 28}. Runs one
// forward pass (in evaluation mode; the model's mode is restored) and returns the table.
std::string summary(Module& model, const Shape& input_size);

// 55338 -> "55,338", as Python's "{:,}".format(n).
std::string with_commas(int64_t n);

}  // namespace cnn
