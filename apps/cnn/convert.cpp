// cnn export, cnn import: models out to ONNX, and in from ONNX and Keras (TensorFlow.js).
#include <cstdio>
#include <filesystem>

#include "cnn/io/keras_model.h"
#include "cnn/io/onnx.h"
#include "cnn/summary.h"
#include "common.h"

namespace cnn::cli {

namespace {

std::string lowercase_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

std::string size_str(uintmax_t bytes) {
  char buf[32];
  if (bytes < 10 * 1024) {
    std::snprintf(buf, sizeof buf, "%ju bytes", bytes);
  } else if (bytes < 10 * 1024 * 1024) {
    std::snprintf(buf, sizeof buf, "%.1f KB", bytes / 1024.0);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f MB", bytes / (1024.0 * 1024.0));
  }
  return buf;
}

}  // namespace

void add_export_command(CLI::App& app, int& exit_code) {
  struct Args {
    std::string weights, onnx;
    int opset = kOnnxDefaultExportOpset;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "export", "Write a model as an ONNX file (for ONNX Runtime, OpenCV dnn, any ONNX runtime)");
  cmd->footer(
      "The file's input is \"input\" [batch, C, H, W] (any batch), its output \"output\" "
      "[batch, classes]: the model's last layer's outputs, logits (or probabilities for a model "
      "ending in Softmax). Nodes are named by the layers' paths, weights by their state_dict "
      "names.");
  cmd->add_option("--weights", a->weights, kWeightsHelp)->required();
  cmd->add_option("--onnx", a->onnx, "The ONNX file to write (replaced if it exists)")->required();
  cmd->add_option("--opset", a->opset, "ONNX opset version")
      ->check(integer_in(kOnnxMinExportOpset, kOnnxMaxExportOpset))
      ->capture_default_str();
  cmd->callback([a, &exit_code] {
    check_output_file("--onnx", a->onnx);
    const LoadedModel loaded = load_model(a->weights);
    OnnxExportOptions options;
    options.opset = a->opset;
    write_onnx(a->onnx, *loaded.model, loaded.input, loaded.name, options);
    std::error_code ec;
    const auto bytes = std::filesystem::file_size(a->onnx, ec);
    std::string in = "[batch";
    for (int64_t d : loaded.input) in += ", " + std::to_string(d);
    std::string out = "[batch";
    for (int64_t d : loaded.output) out += ", " + std::to_string(d);
    std::printf("wrote %s (ONNX opset %d, %s): input \"input\" %s] -> output \"output\" %s]\n",
                a->onnx.c_str(), a->opset, ec ? "?" : size_str(bytes).c_str(), in.c_str(),
                out.c_str());
    // What a runtime elsewhere must do to the pixels first, when the model was trained so.
    const auto& opts = loaded.meta.value("train_options", nlohmann::json::object());
    if (opts.is_object() && opts.contains("normalize") && opts["normalize"].is_object()) {
      std::printf(
          "note: the model was trained on normalised pixels: give it (x - mean) / std, "
          "mean %s, std %s, x in [0, 1]\n",
          opts["normalize"].value("mean", nlohmann::json()).dump().c_str(),
          opts["normalize"].value("std", nlohmann::json()).dump().c_str());
    }
    exit_code = 0;
  });
}

void add_import_command(CLI::App& app, int& exit_code) {
  struct Args {
    std::string file, out;
    bool overwrite = false, quiet = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "import", "Read an ONNX file or a TensorFlow.js layers-model into a checkpoint");
  cmd->footer(
      "FILE: an ONNX file (.onnx: a chain of the supported layers, as torch.onnx.export writes "
      "it, opsets 11 to 17; ops: " +
      join_names(onnx_import_ops()) +
      ") or a TensorFlow.js layers-model (model.json, its weight files beside it). The checkpoint "
      "predicts, evaluates, trains further (cnn train --init) and is drawn by summary like any "
      "other; every --weights option also takes the file itself.");
  cmd->add_option("file", a->file, "The .onnx file or TF.js model.json")->required();
  cmd->add_option("--out", a->out, "The checkpoint to write")->required();
  cmd->add_flag("--overwrite", a->overwrite, "Replace --out if it exists");
  cmd->add_flag("--quiet", a->quiet, "Do not print the model's summary");
  cmd->callback([a, &exit_code] {
    const std::string ext = lowercase_extension(a->file);
    if (ext != ".onnx" && ext != ".json") {
      throw Error(a->file +
                  ": not a file 'cnn import' reads (an .onnx file or a TF.js model.json)");
    }
    check_output_file("--out", a->out);
    if (!a->overwrite && std::filesystem::exists(a->out)) {
      throw Error("--out " + a->out + ": the file exists; pass --overwrite to replace it");
    }
    const LoadedModel loaded = load_model(a->file);
    write_model_checkpoint(
        a->out, *loaded.model, loaded.input,
        {{"imported_from", loaded.meta.value("imported_from", nlohmann::json())}});
    if (!a->quiet) std::fputs(summary(*loaded.model, loaded.input).c_str(), stdout);
    std::printf("wrote %s (from %s)\n", a->out.c_str(), a->file.c_str());
    exit_code = 0;
  });
}

}  // namespace cnn::cli
