// Models as data. A model file declares a model in JSON:
//
//   {"name": "tutorial", "input": [1, 28, 28], "layers": [
//     {"type": "Sequential", "name": "conv1", "layers": [
//       {"type": "Conv2d", "out_channels": 16, "kernel_size": 3},
//       {"type": "ReLU"},
//       {"type": "MaxPool2d", "kernel_size": 2, "stride": 2, "padding": 1}]},
//     ...]}
//
// Each layer is {"type": <PyTorch class name>, <PyTorch's argument names and values>}: ints or
// [h, w] pairs, "same" / "valid" paddings, booleans, numbers. An omitted in_channels, in_features
// or num_features is the size of the shape that flows into the layer. {"type": "Sequential",
// "layers": [...]} nests; a child's optional "name" names it, else it is numbered by its position
// as PyTorch numbers them, so state_dict names equal PyTorch's for the same nesting.
//
// Every module describes itself the same way (Module::config()), and build_layer() builds any
// module from such a description, so a checkpoint stores its model's own description and any
// model built in C++ from the library's layers can be saved and loaded again.
//
// A model file is untrusted input: sizes, parameters, activations and nesting are checked
// against cnn/limits.h before anything is allocated; every error names the source, the layer's
// path and what was expected.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cnn/nn/module.h"
#include "cnn/random.h"

namespace cnn {

// A model built from its description.
struct BuiltModel {
  std::shared_ptr<Sequential> module;  // in training mode, as a new PyTorch module is
  Shape input;                         // one sample's shape, [C, H, W] (or [F])
  Shape output;                        // one sample's output shape, [classes] for a classifier
  std::string name;                    // the description's "name", or empty
  int64_t parameters = 0;
};

// Builds a model from a description: {"name"?, "input": [C, H, W], "layers": [...]}. `source`
// names where it came from in errors ("models/lenet5.json", "checkpoint.cnnt"). Weights are
// initialised as PyTorch initialises each layer, drawing from gen in the layers' order.
// Also accepts the architecture of a version-1 checkpoint ({"name": "tutorial", "num_classes":
// N}), which is the shipped tutorial model with N classes.
BuiltModel build_model(const nlohmann::json& description, Generator& gen = default_generator(),
                       const std::string& source = "model");

// Builds one layer (or container) from its config for an input of shape `input` (batch
// dimension included; batch 1 will do) and sets `input` to the layer's output shape.
std::shared_ptr<Module> build_layer(const nlohmann::json& config, Shape& input,
                                    Generator& gen = default_generator(),
                                    const std::string& source = "layer");

// The description of a model built in C++ or from a file: {"name"?, "input", "layers"}. A
// Sequential root gives its children as the layers (and its name, if it has one); any other
// module is the one layer. Throws if a module in it cannot describe itself.
nlohmann::json describe_model(const Module& model, const Shape& input);

// Reads and parses a model file, checking its size and nesting before parsing. Errors name the
// file. (build_model then checks what it declares.) A Keras model's JSON (model.to_json(), or a
// TF.js model.json, cnn/io/keras_model.h) is read as the description it converts to.
nlohmann::json read_model_file(const std::string& path);

// The layer types a model file may declare, sorted.
std::vector<std::string> layer_types();

}  // namespace cnn
