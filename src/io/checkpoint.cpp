#include "cnn/io/checkpoint.h"

#include <map>

#include "cnn/error.h"
#include "cnn/models/registry.h"

namespace cnn {

LoadedModel load_checkpoint(const std::string& path) {
  const Archive a = read_archive(path);
  const auto& meta = a.meta;
  if (meta.value("format", std::string()) != kCheckpointFormat) {
    throw Error(path + ": not a cnn checkpoint (no \"format\": \"" + kCheckpointFormat +
                "\" in its header)");
  }
  const int version = meta.value("version", 0);
  if (version != kCheckpointVersion) {
    throw Error(path + ": checkpoint version " + std::to_string(version) +
                " is not supported (this build reads version " +
                std::to_string(kCheckpointVersion) + ")");
  }
  LoadedModel out;
  out.meta = meta;
  try {
    Generator scratch(0);  // the weights are overwritten: keep the default generator untouched
    out.model = build_model(meta.at("architecture"), scratch);
    std::map<std::string, Tensor> state;
    for (const auto& [name, t] : a.tensors) {
      if (name.rfind("model/", 0) == 0) state[name.substr(6)] = t;
    }
    out.model->load_state_dict(state);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": malformed checkpoint header: " + e.what());
  }
  out.model->eval();
  return out;
}

}  // namespace cnn
