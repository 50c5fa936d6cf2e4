#include "cnn/error.h"
#include "cnn/io/onnx.h"

namespace cnn {

ImportedModel import_onnx_bytes(const std::string&, const std::string& source) {
  throw Error(source + ": ONNX import: not built yet");
}

ImportedModel import_onnx(const std::string& path) { return import_onnx_bytes("", path); }

std::vector<std::string> onnx_import_ops() { return {}; }

}  // namespace cnn
