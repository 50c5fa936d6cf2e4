// The explorer's JSON API, without HTTP: each request body in, a response body out, every
// number computed by the library. `cnn serve` puts it behind cpp-httplib.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>

#include "cnn/data/dataset.h"
#include "cnn/explore/training.h"
#include "cnn/nn/module.h"

namespace cnn {

// A request the API refuses: status 400 (malformed, wrong type, out of the allowed range), 409
// (an action the live training run's state does not allow: a step while it runs) or 422 (well
// formed, but the library rejects the configuration; the message is the library's).
struct ApiError : std::runtime_error {
  int status;
  ApiError(int s, const std::string& message) : std::runtime_error(message), status(s) {}
};

// What one request may ask for. Each endpoint's cost follows from these before anything is
// computed: a step-through is at most max_taps multiply-adds written out, a layer stack at most
// max_params parameters built (its shapes are shape arithmetic: no layer is run), and the model
// endpoints take a 28x28 image or a drawing of at most max_drawing x max_drawing pixels (the
// model's own size bounds what they compute).
struct ExplorerLimits {
  int64_t max_grid = 32;    // image side
  int64_t max_kernel = 9;   // kernel side
  int64_t max_option = 8;   // stride, padding, dilation
  int64_t max_layers = 32;  // shapes
  int64_t max_channels = 1024;
  int64_t max_input_side = 256;
  int64_t max_drawing = 224;
  // Taps of one step-through (output positions x kernel taps): 2^16. A 32x32 image under a 9x9
  // kernel is 46,656; each tap is a JSON object of 7 fields and a term of an expression, so the
  // largest answer is about 6 MB of JSON (the grid limits alone allowed 186,624 taps, 24 MB).
  int64_t max_taps = int64_t{1} << 16;
  // Parameters of one layer stack: 2^24 (64 MB of float32, about 0.1 s to initialise on one
  // core). The tutorial's model has 55,338; Conv2d(1024, 1024, 9) alone would be 85 M.
  int64_t max_params = int64_t{1} << 24;
  // Output values one /api/network answer writes out, all layers together: 2^20. Each is at most
  // about 14 bytes of JSON ("-0.123456789,"), so the maps are at most about 14 MB; vgg-bn's
  // [3, 32, 32] maps are about 0.5 M values. Past the budget a layer's maps stop after the
  // channels that fit (its ranges still cover all of them).
  int64_t max_map_values = int64_t{1} << 20;
  // The live training run (POST /api/train): its steps, batch, learning rate, pace, and what its
  // state shows.
  TrainingLimits training;
};

// A request body parsed, its nesting depth bounded first (limits::kMaxJsonDepth: printing,
// copying and destroying a JSON value recurse once per level, so 60,000 '[' would overflow the
// stack). Throws ApiError 400 "request body: JSON nested deeper than 64 levels ..." or
// "request body: malformed JSON: ..." (an excerpt of the parser's message, valid UTF-8).
nlohmann::json parse_request(std::string_view body);

// A value of a request as an error message quotes it: compact JSON as dump() writes it, at most
// limits::kExcerpt bytes, invalid UTF-8 replaced; a deep or long value is cut ("[[[[…"), never
// walked whole.
std::string quote(const nlohmann::json& value);

class ExplorerApi {
 public:
  // model: the loaded checkpoint's model (may be null: the untrained tutorial model is shown);
  // meta: its checkpoint header (history, dataset). The model's input shape is the one its
  // description declares, meta["architecture"]["input"]; [1, 28, 28] (the tutorial's) when
  // there is none, as in a version-1 checkpoint.
  ExplorerApi(std::shared_ptr<Module> model, nlohmann::json meta, ExplorerLimits limits = {});
  // The same with the model's input shape given: one sample's, [C, H, W] (LoadedModel::input).
  ExplorerApi(std::shared_ptr<Module> model, Shape input, nlohmann::json meta,
              ExplorerLimits limits = {});
  // The test split whose images the page may show (optional).
  void set_test_images(std::shared_ptr<const Dataset> test) { test_ = std::move(test); }
  // The training split the live run trains on (optional), loaded when a run first needs it, so
  // that serving starts without waiting for it (cnn serve: its --dataset's). `load` throws Error
  // when the data cannot be read; the run is then refused with 422 and the message.
  void set_training_images(std::function<std::shared_ptr<const Dataset>()> load) {
    load_train_ = std::move(load);
  }

  // POST /api/conv2d/steps, /api/maxpool2d/steps, /api/shapes; GET /api/model.
  // Throws ApiError.
  nlohmann::json conv2d_steps(const nlohmann::json& request) const;
  nlohmann::json maxpool2d_steps(const nlohmann::json& request) const;
  nlohmann::json shapes(const nlohmann::json& request) const;
  // The model's summary for its input shape, its printed form, "input", "trained", "history"
  // and "dataset".
  nlohmann::json model() const;
  // POST /api/predict {"pixels": [[0..255]]} (a drawing, up to 224x224): the preprocessing
  // steps as images, logits, probabilities, prediction. 422 for a model whose input is not
  // [1, 28, 28], what a drawing is prepared as.
  nlohmann::json predict(const nlohmann::json& request) const;
  // The inside view: the model's first two convolution stages, found by its layers' kinds and
  // order. "conv1" and "conv2" are its first two Conv2d layers in forward order; a stage is its
  // Conv2d and the layers after it up to the next Conv2d or a layer whose output is not 4-D (the
  // tutorial's: Conv2d, ReLU, MaxPool2d). The model must take [1, 28, 28] (a drawing or an MNIST
  // image) and have two Conv2d layers; else 422 saying what the view needs and what the model has.
  // POST /api/inside {"pixels": 28x28 in [0, 1]}: conv1's output maps, both stages' output maps
  // ("conv1_pooled", "conv2_pooled"), conv1's filters (of input channel 0) and biases, conv2's
  // filters of input channel 0, and "names" (the two layers' paths) and "stages" (each stage's
  // layer types).
  // POST /api/inside/step {"pixels", "channel", "row", "col"}: the step-through of conv1's output
  // at that position with the model's weights.
  // POST /api/inside/conv2-step {"pixels", "channel", "row", "col"}: a pixel of conv2's stage
  // output taken apart: its pooling window over the (ReLU'd) conv2 output (a 1x1 window when the
  // stage has no MaxPool2d), and the window's winner as the sum over conv2's input maps (stage 1's
  // output) of each one's step-through, plus the bias. Needs stage 2 to be Conv2d, then ReLU
  // and/or MaxPool2d in that order (Dropout, the identity here, aside).
  // The step-throughs need a padding the same on both sides (a number, "valid", or "same" with an
  // odd dilated kernel); otherwise 422.
  nlohmann::json inside(const nlohmann::json& request) const;
  nlohmann::json inside_step(const nlohmann::json& request) const;
  nlohmann::json inside_step2(const nlohmann::json& request) const;
  // The network view: any model, every leaf in forward order.
  // POST /api/network {"pixels": [C][H][W] (or H x W for a one-channel model) in [0, 1]} or
  // {"test_index": N} (a test image; 422 when the test split's shape is not the model's input):
  //   {"input": [C, H, W], "layers": [{"path": "conv1.0", "type": "Conv2d", "layer": its printed
  //   form, "description": its config as a model file declares it, "output_shape": [C, H, W] or
  //   [F], "range": {"min", "max"}, "drill": whether /api/layer/step takes it apart, "maps":
  //   [C][H][W] (the first "channels_shown" channels) or [F] ("values_shown"), "map_ranges":
  //   [{"min", "max"}] per channel (4-D outputs)}], "range": over all 4-D outputs, and for a model
  //   whose output is 2-D "logits", "probabilities" (the library's softmax) and "prediction"}.
  // The maps hold at most limits.max_channels channels of a layer and limits.max_map_values
  // values in all. Ranges are over the finite values (null when none is); in maps and logits an
  // infinity is the string "inf" or "-inf" and NaN is null. 422 when the model's forward pass runs
  // its layers in another order than they are held.
  // POST /api/layer/step {the same input, "layer": a path, "channel", "row", "col"}: that output
  // of a Conv2d, MaxPool2d, AvgPool2d or AdaptiveAvgPool2d layer taken apart over its window on the
  // layer's input: "rows", "cols" (the input rows and columns the window reads; outside the input
  // where "padded", a K_h x K_w grid), and for Conv2d "inputs" (one per input channel of the
  // output's group: "channel", "window", "kernel", "products", "sum"), "bias" (null without),
  // "total"; for MaxPool2d "window" (padding -inf), "winner" and "total"; for the average pools
  // "window" (padding 0), "sum", "divisor", "total". "value" is the layer's output there from the
  // model's forward pass; "total" is the same arithmetic written out, equal up to summation order.
  // 400 for an unknown layer (the message lists them) or a position out of range (the message
  // gives it); 422 for another kind of layer or more than limits.max_taps taps.
  nlohmann::json network(const nlohmann::json& request) const;
  nlohmann::json layer_step(const nlohmann::json& request) const;
  // The backprop views: the library's own backward pass (Module::backward) on the model in
  // evaluation mode for one input, taken as /api/network takes it ("pixels" or "test_index").
  // The objective is chosen by "class" (optional, an integer in [0, classes); by default the
  // prediction) and "of" (optional): "score", the class's logit (the model's output for it), or
  // "loss", the cross-entropy of the logits against the class (then for a "test_index" the
  // default class is the image's label). A model ending in Softmax over the classes is taken on
  // its logits, as training takes it. The parameters' .grad are zero before and after, and every
  // module's mode is put back. Each answer has "class", "of", "objective" and "prediction".
  // POST /api/gradient {input, "class", "of" (default "score"), "layer" (optional: a path as
  // /api/network lists them, of a layer whose output is (C, H, W) maps)}: "input_gradient"
  // [C][H][W] (d objective / d input, backward's dx), "input_range" {"min", "max"}; with "layer":
  // "layer", "layer_gradient" [C][H][W] (d objective / d that layer's output: the gradient its
  // backward receives; the first "channels_shown" channels, bounded as /api/network's maps),
  // "layer_ranges" (per channel, all of them) and "layer_range".
  // POST /api/layer/dw-step {input, "layer": a Conv2d's path, "out_channel", "in_channel" (within
  // the output channel's group: the weight's dimension 1), "row", "col" (the kernel tap), "class",
  // "of" (default "loss")}: that weight's gradient as the correlation of the layer's input with
  // the gradient its output receives, dw[o][i][r][c] = sum over output positions (y, x) of
  // input[g * C_in / groups + i][y S_h - pad_top + r D_h][x S_w - pad_left + c D_w] dy[o][y][x]:
  // "weight" [o, i, r, c], "input_channel" (the absolute one), "input_shape", "output_shape"
  // [H_out, W_out], "kernel_size", "stride", "dilation", "padding" {"top", "bottom", "left",
  // "right"} (as the layer applies it, "same" resolved), "groups", "rows" and "cols" (the input
  // rows and columns read, outside the input where "padded", an H_out x W_out grid), "window"
  // (the input values read, 0 where padded), "upstream" (dy[o]), "products", "total" (their sum,
  // in double) and "value" (the library's weight.grad there after the backward pass; equal to
  // "total" up to summation order).
  // 400 for an unknown layer (the message lists the layers the view takes), an index out of range
  // (the message gives the range) or an "of" that is neither; 422 for a layer of another kind or
  // shape, more than limits.max_taps output positions in a dw-step, or a model whose output is not
  // (1, classes).
  nlohmann::json gradient(const nlohmann::json& request) const;
  nlohmann::json dw_step(const nlohmann::json& request) const;
  // POST /api/test-image {"index": N}: a test image, its label and the model's prediction:
  // {"index", "label", "shape": [C, H, W], "pixels": values in [0, 1], H x W for a one-channel
  // image, else [C][H][W]; "probs", "pred"}. 422 when the test images' shape is not the model's
  // input.
  nlohmann::json test_image(const nlohmann::json& request) const;
  // /api/network, /api/layer/step, /api/gradient, /api/layer/dw-step and /api/test-image take
  // "model": "training" for the live training run's model as it is between two steps (422 "no
  // training run: start one with POST /api/train" without one); absent or "served", the served
  // model.

  // The live training run (cnn/explore/training.h): a fresh model of the served model's
  // architecture (its own description, Module::config) trained on the training split. One run at
  // a time; every answer is the run's state (GET /api/train's).
  // POST /api/train {"action": ...}:
  //   "start" {"steps" (1..1000, default 300), "batch_size" (1..256, default 32), "optimizer"
  //     ("adam", the default, or "sgd" with momentum 0.9), "lr" (in (0, 1]; default 1e-3 for Adam,
  //     0.01 for SGD), "seed" (default 0), "pace" (steps per second in [0, 1000], default 20; 0:
  //     as fast as it goes)}: a fresh run, replacing a paused, done or failed one (409 while one
  //     runs: pause or reset it first).
  //   "pause", "resume": after the step under way; 409 without a run or after its end.
  //   "step" {the fields of "start"}: exactly one step of a paused run (the answer comes after
  //     it); without a run, a new paused run (of those fields) and its first step. 409 while it
  //     runs or after its end; 400 for "start"'s fields when a run exists (its settings stay).
  //   "set" {"lr" and/or "pace"}: from the next step on; 409 without a run.
  //   "reset": the run stopped and dropped (state "none").
  // 400 for a malformed or unknown field or action (the message names it and the allowed range);
  // 422 when the model cannot be trained here: no training images, or images whose shape is not
  // the model's input or classes not its outputs (the message says which and the cnn serve option
  // that picks other data).
  nlohmann::json train(const nlohmann::json& request);
  // GET /api/train {"since": K (optional, >= 0)}: the state, TrainingRun::to_json (its "history"
  // only after step K), or {"state": "none", the defaults of "start", "step": 0, "history": [],
  // "evals": [], "filters": null, "model": null}.
  nlohmann::json training(const nlohmann::json& request) const;

 private:
  // The model a request names ("model", above), held while this lives: the served model's lock
  // taken, or the run's (its steps wait; evaluation mode, training mode again when released).
  // Every endpoint that takes "model" starts with `const SelectedModel model =
  // select_model(request);` and uses *model where it used *model_.
  class SelectedModel {
   public:
    Module& operator*() const { return *model_; }
    Module* operator->() const { return model_; }

   private:
    friend class ExplorerApi;
    // Released in reverse: the run's model, the run (kept alive while held), the served model.
    std::unique_lock<std::mutex> served_;
    std::shared_ptr<TrainingRun> run_;
    std::unique_ptr<TrainingRun::ModelHold> hold_;
    Module* model_ = nullptr;
  };
  SelectedModel select_model(const nlohmann::json& request) const;
  std::shared_ptr<TrainingRun> current_run() const;
  // A new run of the served model's architecture, for POST /api/train.
  std::shared_ptr<TrainingRun> new_run(const TrainingConfig& config, bool paused);

  std::shared_ptr<Module> model_;
  Shape input_;  // one sample's
  std::shared_ptr<const Dataset> test_;
  // The server answers on several threads; a module keeps per-call state (its caches, the fused
  // block's flags), so calls into the model take turns.
  mutable std::mutex model_mutex_;
  nlohmann::json meta_;
  ExplorerLimits limits_;
  // The live training run. train() takes its actions one at a time under train_mutex_ (which
  // also guards the training split, loaded by the first run); run_mutex_ guards run_ alone, so
  // that reading the state waits for neither.
  std::function<std::shared_ptr<const Dataset>()> load_train_;
  std::shared_ptr<const Dataset> train_;
  std::mutex train_mutex_;
  mutable std::mutex run_mutex_;
  std::shared_ptr<TrainingRun> run_;
};

}  // namespace cnn
