// The model files shipped in models/ (built into the library, so they are found wherever the
// program runs), and how `--model NAME_OR_FILE` finds a model's description.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cnn/nn/spec.h"

namespace cnn {

// "tutorial", "lenet5", ...: the files in models/ without ".json", sorted.
std::vector<std::string> shipped_model_names();
// A shipped model's description; throws naming the shipped ones (and the nearest) otherwise.
nlohmann::json shipped_model(const std::string& name);

// A description and where it came from, for errors.
struct ModelSource {
  nlohmann::json description;
  std::string source;  // the file's path, or "models/<name>.json" for a shipped one
};
// A path to a model file (anything with a '/' or ending in ".json", or an existing file), else
// the name of a shipped model.
ModelSource find_model(const std::string& name_or_path);

// The tutorial's model with num_classes outputs: models/tutorial.json, its last layer resized.
nlohmann::json tutorial_architecture(int64_t num_classes = 10);

}  // namespace cnn
