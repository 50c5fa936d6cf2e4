// The models the ONNX export tests run in the peer runtimes (tests/test_onnx_export.cpp: ONNX
// Runtime; tests/test_onnx_opencv.cpp: OpenCV dnn), their inputs and the comparison.
//
// Every model file in models/ (random weights from a fixed seed, BatchNorm2d's running statistics
// and affine parameters set to random values so that normalisation really is exercised), the
// tutorial's model trained for a few seconds on real MNIST, and two models that hold every layer
// type and option the exporter writes. MNIST-shaped models get real MNIST test images (data/mnist,
// `bash scripts/fetch-data.sh mnist`); others (rgb-nested, 3x32x32) get uniform random images.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cnn/cnn.h"

namespace cnn::onnx_test {

// Exported model against cnn's own forward pass: max |got - want| over max |want|, on the whole
// batch of logits, held to 1e-5. The runtimes compute the same float32 function with their own
// kernels: convolutions and matrix products sum in another order (ONNX Runtime's MLAS and OpenCV
// block their GEMMs otherwise than OpenBLAS and cnn's fast kernels), ONNX Runtime folds
// BatchNormalization into the preceding Conv's weights (another rounding of the same product) and
// each library has its own expf/erff/tanhf, a few ulp apart. Each is a rounding of the same value
// (about 1e-7 relative per operation), so their difference stays far below 1e-5 of the logits'
// scale; a wrong padding, axis or constant gives differences of order 1.
inline constexpr double kOnnxRelTol = 1e-5;

inline double max_rel_diff(const std::vector<float>& got, const std::vector<float>& want) {
  if (got.size() != want.size()) return INFINITY;
  double diff = 0.0, scale = 0.0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double d = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (!(d <= diff)) diff = d;  // a NaN poisons the result
    scale = std::max(scale, std::fabs(static_cast<double>(want[i])));
  }
  return diff / std::max(scale, 1e-30);
}

struct ExportCase {
  std::string name;
  std::shared_ptr<Module> model;  // evaluation mode
  Shape input;                    // one sample's shape
  bool mnist = false;             // whether real MNIST images fit it
};

inline std::string source_path(const std::string& rel) {
  return std::string(CNN_SOURCE_DIR) + "/" + rel;
}

// Random running statistics (variances positive) and affine parameters for every BatchNorm2d:
// its state_dict entries beside a ".running_mean".
inline void randomize_batchnorm(Module& m, uint64_t seed) {
  Generator gen(seed);
  const auto state = m.state_dict();
  const std::string mean = ".running_mean";
  for (const auto& [name, t] : state) {
    if (name.size() < mean.size() || name.compare(name.size() - mean.size(), mean.size(), mean)) {
      continue;
    }
    const std::string layer = name.substr(0, name.size() - mean.size());
    for (const auto& [other, v] : state) {
      Tensor shared = v;  // shares storage with the module's tensor
      if (other == layer + ".running_mean" || other == layer + ".bias") {
        for (float& x : shared) x = gen.uniform(-0.5f, 0.5f);
      } else if (other == layer + ".running_var") {
        for (float& x : shared) x = gen.uniform(0.25f, 2.0f);
      } else if (other == layer + ".weight") {
        for (float& x : shared) x = gen.uniform(0.5f, 1.5f);
      }
    }
  }
}

inline ExportCase case_from_description(const std::string& name, const nlohmann::json& desc,
                                        uint64_t seed) {
  Generator gen(seed);
  BuiltModel built = build_model(desc, gen, name);
  randomize_batchnorm(*built.module, seed + 1);
  built.module->eval();
  const bool mnist = built.input == Shape{1, 28, 28};
  return {name, built.module, built.input, mnist};
}

// Every file in models/, sorted by name.
inline std::vector<ExportCase> model_file_cases() {
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(source_path("models"))) {
    if (e.path().extension() == ".json") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  std::vector<ExportCase> cases;
  for (const auto& f : files) {
    cases.push_back(case_from_description(std::filesystem::path(f).stem().string(),
                                          read_model_file(f), 20240601));
  }
  return cases;
}

// Every layer type and the options the exporter maps (cnn/nn/spec.h's layer_types(), less
// Sequential, which nests): two MNIST models, one ending in Softmax, one in LogSoftmax.
inline std::vector<ExportCase> coverage_cases() {
  const auto a =
      nlohmann::json::parse(R"({"name": "every-layer-a", "input": [1, 28, 28], "layers": [
    {"type": "Conv2d", "out_channels": 8, "kernel_size": 3, "padding": "same"},
    {"type": "BatchNorm2d", "affine": false, "eps": 0.001, "momentum": 0.3},
    {"type": "GELU"},
    {"type": "Conv2d", "out_channels": 8, "kernel_size": [3, 2], "padding": [[0, 1], [1, 0]],
     "groups": 2, "dilation": [2, 1]},
    {"type": "SiLU"},
    {"type": "MaxPool2d", "kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": true},
    {"type": "AvgPool2d", "kernel_size": 3, "stride": 2, "padding": [[1, 0], [1, 1]],
     "count_include_pad": false},
    {"type": "LeakyReLU", "negative_slope": 0.2},
    {"type": "GELU", "approximate": "tanh"},
    {"type": "Sequential", "name": "head", "layers": [
      {"type": "Identity"},
      {"type": "Dropout", "p": 0.5},
      {"type": "Flatten", "channels_last": true},
      {"type": "Linear", "out_features": 16},
      {"type": "Tanh"},
      {"type": "Linear", "out_features": 10, "bias": false},
      {"type": "Softmax", "dim": 1}]}]})");
  const auto b =
      nlohmann::json::parse(R"({"name": "every-layer-b", "input": [1, 28, 28], "layers": [
    {"type": "Conv2d", "out_channels": 6, "kernel_size": 4, "stride": 2, "padding": [[1, 2], [2, 1]]},
    {"type": "BatchNorm2d"},
    {"type": "Sigmoid"},
    {"type": "MaxPool2d", "kernel_size": 2, "stride": 1, "padding": [[0, 1], [1, 0]]},
    {"type": "AvgPool2d", "kernel_size": [2, 3], "stride": 1, "padding": [[1, 0], [1, 1]]},
    {"type": "AvgPool2d", "kernel_size": 2, "stride": 1, "padding": 1, "ceil_mode": true},
    {"type": "AdaptiveAvgPool2d", "output_size": [5, 1]},
    {"type": "ReLU"},
    {"type": "Flatten", "start_dim": 2},
    {"type": "LogSoftmax", "dim": -1},
    {"type": "Flatten"},
    {"type": "Linear", "out_features": 10},
    {"type": "LogSoftmax", "dim": 1}]})");
  return {case_from_description("every-layer-a", a, 7),
          case_from_description("every-layer-b", b, 8)};
}

// A flat input ([784]: MNIST's pixels in a row), as a multilayer perceptron takes them.
inline ExportCase flat_input_case() {
  const auto d = nlohmann::json::parse(R"({"name": "flat-mlp", "input": [784], "layers": [
    {"type": "Linear", "out_features": 64}, {"type": "ReLU"},
    {"type": "Linear", "out_features": 10}, {"type": "LogSoftmax", "dim": 1}]})");
  return case_from_description("flat-mlp", d, 10);
}

// MaxPool2d with dilation, apart: OpenCV dnn 4.6 does not read MaxPool's dilations.
inline ExportCase dilated_maxpool_case() {
  const auto d =
      nlohmann::json::parse(R"({"name": "dilated-maxpool", "input": [1, 28, 28], "layers": [
    {"type": "Conv2d", "out_channels": 4, "kernel_size": 3},
    {"type": "MaxPool2d", "kernel_size": 3, "stride": 2, "dilation": [2, 3], "padding": 1}]})");
  return case_from_description("dilated-maxpool", d, 9);
}

// The tutorial's model (TutorialCNN, the class `cnn train` trains) trained briefly on real
// MNIST: 400 steps of Adam (lr 1e-3, batch 64) on the first 25600 training images (one epoch), a
// few seconds on one core. Throws if the data is missing.
inline ExportCase trained_tutorial_case() {
  Dataset train = load_dataset("mnist", source_path("data/mnist"), "train");
  train.count = std::min<int64_t>(train.count, 25600);
  train.pixels.resize(static_cast<std::size_t>(train.count * train.rows * train.cols));
  train.labels.resize(static_cast<std::size_t>(train.count));
  Generator gen(3);
  auto model = std::make_shared<TutorialCNN>(10, gen);
  TrainOptions options;
  options.epochs = 1;
  options.max_steps = 400;
  options.seed = 3;
  // One thread: with other work on the machine, OpenMP's threads wait on each other.
  const int threads = num_threads();
  set_num_threads(1);
  Trainer trainer(model, train, nullptr, options);
  trainer.fit();
  set_num_threads(threads);
  model->eval();
  return {"tutorial (trained)", model, {1, 28, 28}, true};
}

inline std::string missing_mnist_message() {
  return "real MNIST is needed in " + source_path("data/mnist") +
         ": run `bash scripts/fetch-data.sh mnist` (scripts/test.sh does)";
}

// The first n MNIST test images (scaled to [0, 1]) as (n, 1, 28, 28); throws if data is missing.
inline Tensor mnist_batch(int64_t n, int64_t first = 0) {
  static const Dataset test = load_dataset("mnist", source_path("data/mnist"), "test");
  Tensor x({n, 1, 28, 28});
  const int64_t per = 28 * 28;
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* p = test.image(first + i);
    for (int64_t k = 0; k < per; ++k) x.data()[i * per + k] = p[k] / 255.0f;
  }
  return x;
}

inline Tensor random_batch(int64_t n, const Shape& sample, uint64_t seed) {
  Shape s = {n};
  s.insert(s.end(), sample.begin(), sample.end());
  Tensor x(s);
  Generator gen(seed);
  for (float& v : x) v = gen.uniform();
  return x;
}

inline Tensor input_batch(const ExportCase& c, int64_t n) {
  if (c.input == Shape{784}) {
    const Tensor x = mnist_batch(n, 100);
    return Tensor::from({n, 784}, std::vector<float>(x.begin(), x.end()));
  }
  return c.mnist ? mnist_batch(n, 100) : random_batch(n, c.input, 99);
}

// cnn's own logits in evaluation mode.
inline std::vector<float> cnn_logits(const ExportCase& c, const Tensor& x) {
  NoGradGuard no_grad;
  c.model->eval();
  Tensor y = c.model->forward(x);
  return std::vector<float>(y.begin(), y.end());
}

}  // namespace cnn::onnx_test
