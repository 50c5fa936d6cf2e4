// Training and evaluation of a classifier on a Dataset. The trainer reports progress through
// callbacks and never prints: the command line and the web server decide how to show it.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cnn/data/dataset.h"
#include "cnn/nn/module.h"
#include "cnn/optim/optimizer.h"

namespace cnn {

struct EvalResult {
  int64_t count = 0;
  double loss = 0.0, accuracy = 0.0;
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
  std::vector<double> per_class_accuracy;
};

class Softmax;

// A model whose last layer is Softmax over the classes is trained and evaluated with the loss on
// that layer's input, as Keras trains one: cross-entropy on the logits, stable where the
// probabilities underflow to 0. While a LogitsGuard lives, that Softmax passes its input through
// (the model gives logits); afterwards it gives probabilities again. Any other model is left as
// it is. Trainer::fit and evaluate() hold one.
class LogitsGuard {
 public:
  explicit LogitsGuard(Module& model);
  ~LogitsGuard();
  LogitsGuard(const LogitsGuard&) = delete;
  LogitsGuard& operator=(const LogitsGuard&) = delete;
  // Whether the model ends in a Softmax (now passing its input through).
  bool active() const { return active_; }

 private:
  Softmax* softmax_ = nullptr;  // the one this guard switched, if any
  bool active_ = false;
};

// Evaluation mode for the duration (the module's mode is restored).
EvalResult evaluate(Module& model, const Dataset& data, int64_t batch_size = 250,
                    std::optional<Normalize> normalize = std::nullopt);

struct TrainOptions {
  int64_t epochs = 5;
  int64_t batch_size = 64;
  double lr = 1e-3;
  std::string optimizer = "adam";  // adam | adamw | sgd
  double momentum = 0.9;           // sgd only
  double weight_decay = 0.0;
  std::string schedule = "none";  // none | onecycle | cosine (per step)
  uint64_t seed = 0;
  std::optional<Normalize> normalize;
  int64_t max_steps = -1;  // stop after this many steps in total (-1: all epochs)
  // Training images only; its generator is seeded from seed (cnn/data/augment.h).
  Augment augment;

  nlohmann::json to_json() const;
};

struct EpochRecord {
  int64_t epoch = 0;
  int64_t steps = 0;
  double train_loss = 0, train_accuracy = 0;
  double test_loss = 0, test_accuracy = 0;
  double seconds = 0, images_per_second = 0;
};
nlohmann::json to_json(const EpochRecord& r);
EpochRecord epoch_record_from_json(const nlohmann::json& j);

// What will really run: with max_steps, `epochs` is the epochs the run reaches and
// `steps_per_epoch` the steps this epoch runs (fewer in the last epoch of a capped run).
struct StepInfo {
  int64_t epoch = 0, epochs = 0, step = 0, steps_per_epoch = 0;
  double loss = 0;  // running mean over the epoch so far
  double accuracy = 0;
  double lr = 0;
  double images_per_second = 0;
  double elapsed_seconds = 0;  // in this epoch
};

struct TrainCallbacks {
  std::function<void(const StepInfo&)> on_step;
  std::function<void(const EpochRecord&)> on_epoch;
};

// The learning rate at step t of total, after PyTorch's schedulers: "onecycle" is OneCycleLR
// (pct_start 0.3, cosine annealing, div_factor 25, final_div_factor 1e4; learning rate only),
// "cosine" is CosineAnnealingLR to 0 over all steps.
double scheduled_lr(const std::string& schedule, double base_lr, int64_t t, int64_t total);

class Trainer {
 public:
  // test may be null (no test figures per epoch). The checkpoint describes the model by its own
  // config() (cnn/nn/spec.h), for an input of the training images' shape.
  Trainer(std::shared_ptr<Module> model, const Dataset& train, const Dataset* test,
          TrainOptions options);
  // Runs the epochs; returns the history.
  const std::vector<EpochRecord>& fit(const TrainCallbacks& callbacks = {});
  // The plan of fit(): steps in a full epoch, steps in the whole run (options.max_steps caps
  // it), and the epochs that run reaches (fewer than options.epochs when capped).
  int64_t steps_per_epoch() const { return loader_.batches_per_epoch(); }
  int64_t total_steps() const;
  int64_t epochs_to_run() const;
  const std::vector<EpochRecord>& history() const { return history_; }
  Module& model() { return *model_; }
  Optimizer& optimizer() { return *optimizer_; }

  // A self-describing checkpoint: the model's description, weights (and buffers), optimizer
  // state, RNG states, epoch, history, options. Written atomically. Throws if a module of the
  // model cannot describe itself (a custom C++ module without config()).
  void save_checkpoint(const std::string& path) const;

 private:
  std::shared_ptr<Module> model_;
  const Dataset& train_;
  const Dataset* test_;
  TrainOptions options_;
  DataLoader loader_;
  std::unique_ptr<Optimizer> optimizer_;
  std::vector<EpochRecord> history_;
  int64_t global_step_ = 0;
};

}  // namespace cnn
