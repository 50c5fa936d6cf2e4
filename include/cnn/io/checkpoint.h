// Checkpoints: a tensor archive (cnn/io/archive.h) whose metadata says what it holds:
//   {"format": "cnn-checkpoint", "version": 2, "architecture": {...}, "dataset": {...},
//    "epoch": N, "history": [...], "train_options": {...}, "optimizer": {...}, "rng": {...}}
// and whose tensors are "model/<state_dict name>" and "optim/<state>/<state_dict name>".
// "architecture" is the model's own description (cnn/nn/spec.h: {"name"?, "input", "layers"});
// version 1 stored {"name": "tutorial", "num_classes": N} and is still read.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cnn/io/archive.h"
#include "cnn/io/onnx.h"
#include "cnn/nn/module.h"
#include "cnn/nn/spec.h"

namespace cnn {

inline constexpr const char* kCheckpointFormat = "cnn-checkpoint";
inline constexpr int kCheckpointVersion = 2;

struct LoadedModel {
  std::shared_ptr<Module> model;
  nlohmann::json meta;  // the checkpoint's metadata
  Shape input;          // one sample's shape, [C, H, W]
  Shape output;         // one sample's output shape, [classes]
  std::string name;     // the model's name, or empty
};

// Reads a checkpoint and rebuilds its model from it alone (in evaluation mode). Throws naming
// the file: unreadable, corrupted, not a checkpoint, an unknown version or architecture, or
// weights that do not fit the architecture.
LoadedModel load_checkpoint(const std::string& path);

// Reads a model from any file that holds one with its weights, by its name: an ONNX file
// ("*.onnx", cnn/io/onnx.h), a TensorFlow.js layers-model ("*.json", cnn/io/keras_model.h), else a
// checkpoint. What every --weights option of the command line takes. An imported model's meta is
// {"architecture": ..., "imported_from": {"format": "onnx" | "tfjs", "file": path}}.
LoadedModel load_model(const std::string& path);

// A model read from another format as a loaded one (built, weights loaded, evaluation mode).
// `source` names it in errors; `meta` becomes LoadedModel::meta (its "architecture" is set).
LoadedModel load_imported(const ImportedModel& imported, const std::string& source,
                          nlohmann::json meta = nlohmann::json::object());

// Writes a checkpoint of a model alone (no dataset, optimizer or history): its description and
// state_dict, plus the entries of `extra_meta`. What `cnn import` writes; train --init, eval,
// predict, summary and the explorer read it like any checkpoint.
void write_model_checkpoint(const std::string& path, const Module& model, const Shape& input,
                            const nlohmann::json& extra_meta = nlohmann::json::object());

}  // namespace cnn
