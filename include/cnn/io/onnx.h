// ONNX in and out. A model of the library's layers (any model a model file can declare,
// cnn/nn/spec.h) is written as an ONNX ModelProto built with the ONNX project's own classes
// (libonnx's onnx_proto, checked by its checker and shape inference before it is written); a
// chain graph as torch.onnx.export writes it (opsets 11 to 17) is read back into a model
// description plus weights, which build_model() and Module::load_state_dict() turn into a model
// that predicts, evaluates, trains further and is drawn like any other.
//
// Export: the input is "input" [N, C, H, W] with a dynamic batch dimension "batch", the output
// "output" [N, classes]; each layer's nodes are named by the layer's path in the model
// ("conv1.0"; a layer written as several nodes adds "/<op>" to the others), its weights by their
// state_dict names ("conv1.0.weight"). GELU and SiLU, which have no ONNX op in these opsets, are
// written as PyTorch writes them (Erf and Sigmoid patterns), and read back as GELU and SiLU.
//
// Import: an ONNX file is untrusted input: its size, every count, dimension and tensor size is
// checked before anything is allocated, every name it refers to must exist, and anything the
// library cannot represent (an op or attribute outside the supported set, a graph that branches,
// external data) is refused by a one-line error naming the node, its op and what is supported.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cnn/nn/module.h"
#include "cnn/tensor.h"

namespace cnn {

// A model read from another format: its description (cnn/nn/spec.h: {"name"?, "input",
// "layers"}) and every entry of its state_dict (parameters and buffers), by state_dict name.
struct ImportedModel {
  nlohmann::json architecture;
  std::map<std::string, Tensor> state;
};

// The opsets export_onnx() writes.
inline constexpr int kOnnxMinExportOpset = 11;
inline constexpr int kOnnxMaxExportOpset = 17;
inline constexpr int kOnnxDefaultExportOpset = 17;

struct OnnxExportOptions {
  int opset = kOnnxDefaultExportOpset;  // kOnnxMinExportOpset to kOnnxMaxExportOpset
  std::string model_name;               // the graph's name; the model's own name when empty
};

// The serialized ModelProto of `model` (in evaluation mode: Dropout is the identity, BatchNorm2d
// uses its running statistics) for one sample of shape `input` ([C, H, W]). Throws naming the
// layer when a layer or option has no ONNX form, and when the checker or shape inference
// refuses the result (a bug of this library's, not the user's).
std::string export_onnx(const Module& model, const Shape& input, const std::string& name = "",
                        const OnnxExportOptions& options = {});
// The same, written to `path` atomically (cnn/io/file.h).
void write_onnx(const std::string& path, const Module& model, const Shape& input,
                const std::string& name = "", const OnnxExportOptions& options = {});

// Reads an ONNX model. `source` names it in errors. Throws cnn::Error, one line, for anything
// malformed or unsupported.
ImportedModel import_onnx_bytes(const std::string& bytes, const std::string& source);
ImportedModel import_onnx(const std::string& path);

// The ONNX ops import_onnx() reads, sorted (for errors and --help).
std::vector<std::string> onnx_import_ops();

}  // namespace cnn
