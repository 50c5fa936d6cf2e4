// Keras models in: the architecture JSON Keras 2 writes for a Sequential model
// (model.to_json(): {"class_name": "Sequential", "config": {"layers": [...]}}) and TensorFlow.js
// layers-model files (model.json: {"modelTopology": <the same, under "model_config">,
// "weightsManifest": [{"paths": [shard files], "weights": [{"name", "shape", "dtype"}]}]}, the
// shards beside it), with Conv2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D,
// Flatten, Dense, Dropout, BatchNormalization, Activation and the activations as arguments.
//
// The model becomes a description of the library's layers (cnn/nn/spec.h) that computes on NCHW
// what the Keras model computes on NHWC: the conversions of cnn/nn/keras.h (TensorFlow's "same"
// padding, Flatten in (H, W, C) order, BatchNormalization's momentum), with each Keras layer's
// weights transposed to PyTorch's layout (a Conv2D kernel (kh, kw, in, out) to (out, in, kh, kw),
// a Dense kernel (in, out) to (out, in)).
//
// Both are untrusted input: sizes and counts are checked before allocating, every shard's size
// against what the manifest declares; errors name the file, the Keras layer and what is wrong.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "cnn/io/onnx.h"  // ImportedModel

namespace cnn {

// Whether a parsed JSON document is a Keras model (to_json's or a TF.js model.json).
bool is_keras_json(const nlohmann::json& doc);

// The description of the model a Keras 2 to_json() document (or a TF.js model.json's topology)
// declares. `source` names it in errors.
nlohmann::json keras_to_description(const nlohmann::json& doc, const std::string& source);

// A TF.js layers-model: model.json and its weight shards (read from the same directory).
ImportedModel import_tfjs(const std::string& model_json_path);

}  // namespace cnn
