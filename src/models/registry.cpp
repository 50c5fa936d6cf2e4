#include "cnn/models/registry.h"

#include "cnn/error.h"
#include "cnn/limits.h"
#include "cnn/models/tutorial.h"

namespace cnn {

nlohmann::json tutorial_architecture(int64_t num_classes) {
  return {{"name", "tutorial"}, {"num_classes", num_classes}, {"input", {1, 28, 28}}};
}

std::shared_ptr<Module> build_model(const nlohmann::json& arch, Generator& gen) {
  if (!arch.is_object() || !arch.contains("name") || !arch["name"].is_string()) {
    throw Error("architecture description without a name: " + excerpt(arch.dump()));
  }
  const std::string name = arch["name"];
  if (name == "tutorial") {
    const nlohmann::json n = arch.value("num_classes", nlohmann::json(10));
    if (!n.is_number_integer() || (n.is_number_unsigned() && n.get<uint64_t>() > INT64_MAX)) {
      throw Error("architecture 'tutorial': num_classes must be an integer, got " +
                  excerpt(n.dump()));
    }
    const auto classes = n.get<int64_t>();
    if (classes <= 0) throw Error("architecture 'tutorial': num_classes must be positive");
    if (classes > limits::kMaxClasses) {
      throw Error("architecture 'tutorial': num_classes " + std::to_string(classes) +
                  " is more than the limit of " + std::to_string(limits::kMaxClasses) +
                  " (cnn/limits.h)");
    }
    return std::make_shared<TutorialCNN>(classes, gen);
  }
  throw Error("unknown architecture '" + excerpt(name) + "' (this build knows: tutorial)");
}

}  // namespace cnn
