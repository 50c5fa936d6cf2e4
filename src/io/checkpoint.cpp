#include "cnn/io/checkpoint.h"

#include <cctype>
#include <map>

#include "cnn/error.h"
#include "cnn/io/keras_model.h"
#include "cnn/limits.h"
#include "cnn/models/registry.h"

namespace cnn {

LoadedModel load_checkpoint(const std::string& path) {
  const Archive a = read_archive(path);  // sizes, checksum and JSON depth checked there
  const auto& meta = a.meta;
  LoadedModel out;
  try {
    // The metadata is the file's: every field's type is checked before it is used.
    const bool is_checkpoint = meta.is_object() && meta.contains("format") &&
                               meta["format"].is_string() && meta["format"] == kCheckpointFormat;
    if (!is_checkpoint) {
      throw Error(path + ": not a cnn checkpoint (no \"format\": \"" + kCheckpointFormat +
                  "\" in its header)");
    }
    const auto& v = meta.contains("version") ? meta["version"] : nlohmann::json(0);
    if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > kCheckpointVersion) {
      throw Error(path + ": checkpoint version " + excerpt(v.dump()) +
                  " is not supported (this build reads versions 1 to " +
                  std::to_string(kCheckpointVersion) + ")");
    }
    out.meta = meta;
    if (!meta.contains("architecture")) {
      throw Error(path + ": malformed checkpoint header: no \"architecture\"");
    }
    Generator scratch(0);  // the weights are overwritten: keep the default generator untouched
    try {
      // Version 2 stores the model's description (cnn/nn/spec.h); version 1 named the tutorial.
      BuiltModel built = build_model(meta["architecture"], scratch, path);
      out.model = built.module;
      out.input = built.input;
      out.output = built.output;
      out.name = built.name;
      std::map<std::string, Tensor> state;
      for (const auto& [name, t] : a.tensors) {
        if (name.rfind("model/", 0) == 0) state[name.substr(6)] = t;
      }
      out.model->load_state_dict(state);
    } catch (const Error& e) {
      // load_state_dict lists every unexpected name the file holds: a few names of a real
      // mismatch fit in full, a hostile file's thousands do not.
      const std::string what = e.what();
      throw Error(what.rfind(path + ": ", 0) == 0
                      ? what
                      : path + ": " + excerpt(what, 16 * limits::kExcerpt));
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": malformed checkpoint header: " + excerpt(e.what(), 4 * limits::kExcerpt));
  }
  out.model->eval();
  return out;
}

namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  if (s.size() < tail.size()) return false;
  for (size_t i = 0; i < tail.size(); ++i) {
    const char c = s[s.size() - tail.size() + i];
    if (std::tolower(static_cast<unsigned char>(c)) != tail[i]) return false;
  }
  return true;
}

}  // namespace

LoadedModel load_imported(const ImportedModel& imported, const std::string& source,
                          nlohmann::json meta) {
  LoadedModel out;
  Generator scratch(0);  // the weights are overwritten: keep the default generator untouched
  BuiltModel built = build_model(imported.architecture, scratch, source);
  try {
    built.module->load_state_dict(imported.state);
  } catch (const Error& e) {
    throw Error(source + ": " + excerpt(e.what(), 16 * limits::kExcerpt));
  }
  out.model = built.module;
  out.input = built.input;
  out.output = built.output;
  out.name = built.name;
  if (!meta.is_object()) meta = nlohmann::json::object();
  meta["architecture"] = imported.architecture;
  out.meta = std::move(meta);
  out.model->eval();
  return out;
}

LoadedModel load_model(const std::string& path) {
  if (ends_with(path, ".onnx")) {
    return load_imported(import_onnx(path), path,
                         {{"imported_from", {{"format", "onnx"}, {"file", path}}}});
  }
  if (ends_with(path, ".json")) {
    return load_imported(import_tfjs(path), path,
                         {{"imported_from", {{"format", "tfjs"}, {"file", path}}}});
  }
  return load_checkpoint(path);
}

void write_model_checkpoint(const std::string& path, const Module& model, const Shape& input,
                            const nlohmann::json& extra_meta) {
  Archive a;
  a.meta["format"] = kCheckpointFormat;
  a.meta["version"] = kCheckpointVersion;
  a.meta["architecture"] = describe_model(model, input);
  if (extra_meta.is_object()) {
    for (const auto& [k, v] : extra_meta.items()) {
      if (k != "format" && k != "version" && k != "architecture") a.meta[k] = v;
    }
  }
  for (auto& [name, t] : model.state_dict()) a.add("model/" + name, t);
  write_archive(path, a);
}

}  // namespace cnn
