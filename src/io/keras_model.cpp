#include "cnn/io/keras_model.h"

#include "cnn/error.h"

namespace cnn {

bool is_keras_json(const nlohmann::json&) { return false; }

nlohmann::json keras_to_description(const nlohmann::json&, const std::string& source) {
  throw Error(source + ": Keras import: not built yet");
}

ImportedModel import_tfjs(const std::string& path) {
  throw Error(path + ": Keras import: not built yet");
}

}  // namespace cnn
