#include "cnn/models/registry.h"

#include <cctype>
#include <filesystem>
#include <utility>

#include "cnn/error.h"
#include "cnn/io/json.h"
#include "cnn/io/onnx.h"

namespace cnn {

namespace detail {
// Generated from models/*.json by cmake/embed_models.cmake.
const std::vector<std::pair<std::string, const char*>>& shipped_model_texts();
}  // namespace detail

std::vector<std::string> shipped_model_names() {
  std::vector<std::string> names;
  for (const auto& [name, text] : detail::shipped_model_texts()) names.push_back(name);
  return names;
}

nlohmann::json shipped_model(const std::string& name) {
  for (const auto& [known, text] : detail::shipped_model_texts()) {
    if (known == name) return parse_json(text, "models/" + name + ".json");
  }
  std::string list;
  for (const auto& n : shipped_model_names()) list += (list.empty() ? "" : ", ") + n;
  throw Error("no model named '" + excerpt(name) + "' (the shipped models: " + list +
              "; or give the path of a model file)");
}

ModelSource find_model(const std::string& name_or_path) {
  std::error_code ec;
  const bool looks_like_path = name_or_path.find('/') != std::string::npos ||
                               (name_or_path.size() > 5 && name_or_path.ends_with(".json")) ||
                               std::filesystem::exists(name_or_path, ec);
  if (looks_like_path) {
    // An ONNX file declares its model too (cnn/io/onnx.h); its weights are not needed here.
    std::string ext = std::filesystem::path(name_or_path).extension().string();
    for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (ext == ".onnx") return {import_onnx(name_or_path).architecture, name_or_path};
    return {read_model_file(name_or_path), name_or_path};
  }
  return {shipped_model(name_or_path), "models/" + name_or_path + ".json"};
}

nlohmann::json tutorial_architecture(int64_t num_classes) {
  nlohmann::json d = shipped_model("tutorial");
  d["layers"].back()["layers"].back()["out_features"] = num_classes;
  return d;
}

}  // namespace cnn
