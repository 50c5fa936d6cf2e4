// The explorer's live training run (`cnn serve`, POST /api/train): a fresh model of the served
// model's architecture, trained on a training split one optimizer step at a time on a thread of
// its own, paced so that a learner can watch, pausable and steppable, its figures readable at any
// time. The steps are Trainer::step's: a run's losses are those `cnn train` makes with the same
// model, seed, batch size, learning rate and optimizer (without --normalize).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "cnn/data/dataset.h"
#include "cnn/nn/module.h"
#include "cnn/random.h"

namespace cnn {

class Trainer;

// What a run is asked for; TrainingLimits bounds each field.
struct TrainingConfig {
  int64_t steps = 300;             // optimizer steps in the run
  int64_t batch_size = 32;         // images per step
  std::string optimizer = "adam";  // "adam", or "sgd" (momentum 0.9)
  double lr = 1e-3;                // default_lr(optimizer) when a request gives none
  uint64_t seed = 0;               // the initial weights, the sampling order, dropout's masks
  double pace = 20;                // steps per second; 0: as fast as the machine goes
};

// A run's learning rate when none is given: Adam's 1e-3 (PyTorch's default), SGD's 0.01.
double default_lr(const std::string& optimizer);

// The bounds of a run: at most max_steps steps of max_batch images each (the tutorial's model at
// 256 images a step: 35 ms on one core of this project's Xeon, `cnn train --threads 1`), and how
// much of it the state shows.
struct TrainingLimits {
  int64_t max_steps = 1000;  // also bounds "history": one entry per step
  int64_t max_batch = 256;
  double max_lr = 1.0;     // lr in (0, max_lr]
  double max_pace = 1000;  // steps per second, pace 0 (flat out) or in [min_pace, max_pace]
  double min_pace = 0.1;
  int64_t eval_every = 50;         // steps between evaluations (and one after the last step)
  int64_t eval_images = 500;       // the test split's images evaluated: fixed, evenly spaced
  int64_t max_filters = 64;        // output channels of the first Conv2d's weights shown
  int64_t max_filter_inputs = 16;  // input channels of each of those shown
};

class TrainingRun {
 public:
  enum class State { Running, Paused, Done, Failed };

  // Builds description's model (build_model; its weights and dropout's masks drawn from a
  // generator seeded with config.seed, as `cnn train --seed` draws them) and a Trainer for it on
  // train; test (may be null) is the test split, limits.eval_images of which are evaluated every
  // limits.eval_every steps and after the last. The run starts running, or paused when `paused`.
  // Throws Error when config is out of limits, or the data do not fit the model (their image
  // shape is not its input, or their classes not its outputs), naming both.
  TrainingRun(const nlohmann::json& description, std::shared_ptr<const Dataset> train,
              std::shared_ptr<const Dataset> test, const TrainingConfig& config, bool paused,
              const TrainingLimits& limits = {});
  // Stops the run's thread after the step under way and joins it.
  ~TrainingRun();
  TrainingRun(const TrainingRun&) = delete;
  TrainingRun& operator=(const TrainingRun&) = delete;

  State state() const;
  // A running run is paused once the step under way is done (this returns then); any other
  // state is left as it is.
  void pause();
  // A paused run runs again, its next step at once; any other state is left as it is.
  void resume();
  // Exactly one step of a paused run, taken on the run's thread (every step is, so that each runs
  // with the same threads and kernels); returns once it is done. A step that throws leaves the
  // run Failed with the message. Throws Error when the run is not paused.
  void step();
  // From the next step on; in (0, limits.max_lr] and 0 or [limits.min_pace, limits.max_pace] (else
  // Error).
  void set_lr(double lr);
  void set_pace(double pace);

  // {"state": "running" | "paused" | "done" | "failed", "error" (when failed), "step" (steps
  // done), "steps", "lr", "batch_size", "optimizer", "seed", "pace", "history": [{"step", "loss",
  // "accuracy" (of that step's batch, before its update), "lr"}] (the steps after `since`),
  // "evals": [{"step", "loss", "accuracy"}], "filters": {"layer" (the first Conv2d's path),
  // "shape" (its weight's), "weights": [O][I][K_h][K_w] (at most max_filters x max_filter_inputs)}
  // or null without a Conv2d, "model": the model as PyTorch prints it}.
  nlohmann::json to_json(int64_t since = 0) const;

  // The run's model between steps, for as long as a hold lives: the steps wait, and the model is
  // in evaluation mode (in training mode again afterwards). The explorer's views of it take one.
  class ModelHold {
   public:
    explicit ModelHold(TrainingRun& run);
    ~ModelHold();
    ModelHold(const ModelHold&) = delete;
    ModelHold& operator=(const ModelHold&) = delete;
    Module& model() const { return *run_.model_; }

   private:
    TrainingRun& run_;
    std::lock_guard<std::mutex> lock_;
    bool was_training_;
  };

 private:
  using Clock = std::chrono::steady_clock;
  // What a step leaves behind, made on the run's thread and recorded under mutex_.
  struct Outcome {
    nlohmann::json record, eval;  // eval: null unless the step was evaluated
    Tensor filters;
    std::string error;  // non-empty: the step threw
  };

  void run();                      // the run's thread
  Outcome take_step(double lr);    // one step and what follows it, under model_mutex_
  Tensor filter_snapshot() const;  // the shown part of the first Conv2d's weights
  static const char* name(State state);

  const TrainingConfig config_;
  const TrainingLimits limits_;
  // The model's generator: Dropout keeps a pointer to the one it was built with, so it lives as
  // long as the model.
  Generator gen_;
  std::shared_ptr<const Dataset> train_;
  Dataset eval_;  // the test split's fixed subset (count 0: none)
  std::shared_ptr<Module> model_;
  std::unique_ptr<Trainer> trainer_;
  std::string repr_, filter_path_;
  const Parameter* filter_weight_ = nullptr;  // the first Conv2d's weight, or null

  // The model and trainer: a step with its evaluation, or a view (with_model).
  std::mutex model_mutex_;
  // Everything below; changed_ is signalled when any of it changes.
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  State state_ = State::Paused;
  std::string error_;
  int64_t step_ = 0;       // steps done
  int64_t requested_ = 0;  // steps asked for by step() and not yet taken
  bool in_step_ = false, stopping_ = false;
  double lr_, pace_;
  Clock::time_point last_started_{};  // when the last step began (a paced run's clock)
  std::vector<nlohmann::json> history_, evals_;
  Tensor filters_;
  std::thread thread_;  // last: started once everything above is ready
};

}  // namespace cnn
