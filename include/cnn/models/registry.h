// Builds a model from its architecture description, the JSON a checkpoint stores:
//   {"name": "tutorial", "num_classes": 10, "input": [1, 28, 28]}
#pragma once

#include <memory>
#include <nlohmann/json.hpp>

#include "cnn/nn/module.h"
#include "cnn/random.h"

namespace cnn {

nlohmann::json tutorial_architecture(int64_t num_classes = 10);
// Throws naming what is unknown or malformed.
std::shared_ptr<Module> build_model(const nlohmann::json& architecture,
                                    Generator& gen = default_generator());

}  // namespace cnn
