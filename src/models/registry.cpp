#include "cnn/models/registry.h"

#include "cnn/error.h"
#include "cnn/models/tutorial.h"

namespace cnn {

nlohmann::json tutorial_architecture(int64_t num_classes) {
  return {{"name", "tutorial"}, {"num_classes", num_classes}, {"input", {1, 28, 28}}};
}

std::shared_ptr<Module> build_model(const nlohmann::json& arch, Generator& gen) {
  if (!arch.is_object() || !arch.contains("name") || !arch["name"].is_string()) {
    throw Error("architecture description without a name: " + arch.dump());
  }
  const std::string name = arch["name"];
  if (name == "tutorial") {
    const auto classes = arch.value("num_classes", int64_t{10});
    if (classes <= 0) throw Error("architecture 'tutorial': num_classes must be positive");
    return std::make_shared<TutorialCNN>(classes, gen);
  }
  throw Error("unknown architecture '" + name + "' (this build knows: tutorial)");
}

}  // namespace cnn
