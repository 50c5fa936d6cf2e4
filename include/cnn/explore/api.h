// The explorer's JSON API, without HTTP: each request body in, a response body out, every
// number computed by the library. `cnn serve` puts it behind cpp-httplib.
#pragma once

#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "cnn/data/dataset.h"
#include "cnn/nn/module.h"

namespace cnn {

// A request the API refuses: status 400 (malformed, wrong type, out of the allowed range) or
// 422 (well formed, but the library rejects the configuration; the message is the library's).
struct ApiError : std::runtime_error {
  int status;
  ApiError(int s, const std::string& message) : std::runtime_error(message), status(s) {}
};

struct ExplorerLimits {
  int64_t max_grid = 32;    // image side
  int64_t max_kernel = 9;   // kernel side
  int64_t max_option = 8;   // stride, padding, dilation
  int64_t max_layers = 32;  // shapes
  int64_t max_channels = 1024;
  int64_t max_input_side = 256;
  int64_t max_drawing = 224;
};

class ExplorerApi {
 public:
  // model: the loaded checkpoint's model (may be null: the untrained tutorial model is shown);
  // meta: its checkpoint header (history, dataset).
  ExplorerApi(std::shared_ptr<Module> model, nlohmann::json meta, ExplorerLimits limits = {});
  // The test split whose images the page may show (optional).
  void set_test_images(std::shared_ptr<const Dataset> test) { test_ = std::move(test); }

  // POST /api/conv2d/steps, /api/maxpool2d/steps, /api/shapes; GET /api/model.
  // Throws ApiError.
  nlohmann::json conv2d_steps(const nlohmann::json& request) const;
  nlohmann::json maxpool2d_steps(const nlohmann::json& request) const;
  nlohmann::json shapes(const nlohmann::json& request) const;
  nlohmann::json model() const;
  // POST /api/predict {"pixels": [[0..255]]} (a drawing, up to 224x224): the preprocessing
  // steps as images, logits, probabilities, prediction.
  nlohmann::json predict(const nlohmann::json& request) const;
  // POST /api/inside {"pixels": 28x28 in [0, 1]}: conv1's maps before and after pooling, conv2's
  // pooled maps, conv1's filters and biases, conv2's filters of input channel 0.
  // POST /api/inside/step {"pixels", "channel", "row", "col"}: the step-through of conv1's output
  // at that position with the model's weights.
  // POST /api/inside/conv2-step {"pixels", "channel", "row", "col"}: a pixel of conv2's pooled
  // maps taken apart: its pooling window over the ReLU'd conv2 output, and the window's winner
  // as the sum over the 16 pooled conv1 maps of each one's step-through, plus the bias.
  nlohmann::json inside(const nlohmann::json& request) const;
  nlohmann::json inside_step(const nlohmann::json& request) const;
  nlohmann::json inside_step2(const nlohmann::json& request) const;
  // POST /api/test-image {"index": N}: a test image as 28x28 values in [0, 1], its label and
  // the model's prediction.
  nlohmann::json test_image(const nlohmann::json& request) const;

 private:
  std::shared_ptr<Module> model_;
  std::shared_ptr<const Dataset> test_;
  // The server answers on several threads; a module keeps per-call state (its caches, the fused
  // block's flags), so calls into the model take turns.
  mutable std::mutex model_mutex_;
  nlohmann::json meta_;
  ExplorerLimits limits_;
};

}  // namespace cnn
