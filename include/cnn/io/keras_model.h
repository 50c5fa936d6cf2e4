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
// Layers: InputLayer (or the first layer's batch_input_shape; Keras 3's batch_shape), Conv2D
// (filters, kernel_size, strides, padding, dilation_rate, groups, use_bias, activation),
// MaxPooling2D and AveragePooling2D (pool_size, strides, padding), GlobalAveragePooling2D, Flatten,
// Dense (units, activation, use_bias), Dropout (rate), BatchNormalization (axis -1 / 3 or [3],
// momentum, epsilon, center, scale), Activation, LeakyReLU (alpha / negative_slope) and
// ZeroPadding2D (symmetric), as cnn/nn/keras.h builds them; data_format channels_last only. Any
// other class (LSTM, Conv1D, a Functional model, ...) is refused naming the layer. Keys that do not
// change what a trained layer computes (initializers, regularizers, constraints, trainable, dtype)
// are ignored; those that would (renorm, noise_shape, keepdims, data_format channels_first) are
// refused unless at their defaults.
//
// Names: each Keras layer becomes a Sequential child named by the Keras layer's name (which must
// be 1 to 64 characters without dots, spaces or '/'), holding the library's layers for it in order:
// "conv2d" is Sequential(Conv2d, ReLU) for Conv2D(activation="relu"). A layer's weights are always
// in its child 0, so the state_dict names follow from Keras's weight names:
//   conv2d/kernel (KH, KW, C_in, C_out)   -> conv2d.0.weight (C_out, C_in, KH, KW)
//   conv2d/bias                           -> conv2d.0.bias
//   dense/kernel (in, out)                -> dense.0.weight (out, in);  dense/bias -> dense.0.bias
//   batch_normalization/gamma, beta       -> batch_normalization.0.weight, .bias
//   batch_normalization/moving_mean       -> batch_normalization.0.running_mean
//   batch_normalization/moving_variance   -> batch_normalization.0.running_var
// (a trailing ":0", as TensorFlow names variables, is ignored); BatchNorm2d's num_batches_tracked,
// which Keras does not keep, is 0. A layer with no modules of its own (InputLayer,
// Activation("linear"), ZeroPadding2D, folded into the next layer) has no child. The description's
// "name" is the Sequential's name.
//
// Both are untrusted input: sizes and counts are checked before allocating, every shard's size
// against what the manifest declares; errors name the file, the Keras layer and what is wrong, in
// one line: "model.json: keras layer 2 'lstm' (LSTM): layer class 'LSTM' is not supported (...)",
// "model.json: keras layer 'dense' (Dense): weight 'dense/kernel': shape [18, 4], the layer
// expects [18, 3]", "model.json: weights manifest declares 308 bytes in group1-shard1of1.bin, the
// file holds 300".
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "cnn/io/onnx.h"  // ImportedModel

namespace cnn {

// Whether a parsed JSON document is a Keras model (to_json's or a TF.js model.json).
bool is_keras_json(const nlohmann::json& doc);

// The description of the model a Keras 2 to_json() document (or a TF.js model.json's topology)
// declares: {"name", "input": [C, H, W], "layers": [one Sequential per Keras layer]}. It has been
// built once (build_model's checks passed), so it builds. `source` names it in errors.
nlohmann::json keras_to_description(const nlohmann::json& doc, const std::string& source);

// A TF.js layers-model: model.json (at most limits::kMaxModelFileBytes, JSON depth bounded) and
// its weight shards, plain file names in model.json's directory, concatenated in the order of
// "paths", each group's weights in manifest order; float32 only (no quantization). Every weight of
// the model must be given once, under its Keras name, with its Keras shape; the state holds every
// state_dict entry of build_model(architecture), ready for load_state_dict(strict).
ImportedModel import_tfjs(const std::string& model_json_path);

}  // namespace cnn
