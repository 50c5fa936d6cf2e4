#include "cnn/explore/training.h"

#include <algorithm>
#include <cmath>
#include <exception>

#include "cnn/error.h"
#include "cnn/explain/steps.h"
#include "cnn/nn/layers.h"
#include "cnn/nn/spec.h"
#include "cnn/train/trainer.h"
#include "trace.h"

namespace cnn {

namespace {

using json = nlohmann::json;

// limits.eval_images of the test split (all of a smaller one), evenly spaced over it, in order:
// the same images after every step, from every class of a split sorted by class.
Dataset eval_subset(const Dataset& test, int64_t images) {
  // The description without the images (a copy of the whole split would be held by every run).
  Dataset d;
  const int64_t n = std::min(images, test.count);
  const int64_t plane = test.channels * test.rows * test.cols;
  d.name = test.name;
  d.split = test.split;
  d.source = test.source;
  d.rows = test.rows;
  d.cols = test.cols;
  d.channels = test.channels;
  d.num_classes = test.num_classes;
  d.class_names = test.class_names;
  d.count = n;
  d.pixels.resize(static_cast<std::size_t>(n * plane));
  d.labels.resize(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t from = i * test.count / n;
    std::copy(test.image(from), test.image(from) + plane, d.pixels.begin() + i * plane);
    d.labels[static_cast<std::size_t>(i)] = test.labels[static_cast<std::size_t>(from)];
  }
  return d;
}

// 0 (flat out) or [min_pace, max_pace]: a slower pace would wait minutes between steps (and
// 1 / pace in nanoseconds overflows for a tiny one).
void check_pace(double pace, const TrainingLimits& l) {
  if (!(pace == 0 || (pace >= l.min_pace && pace <= l.max_pace))) {
    throw Error("pace must be 0 or in [" + format_number(l.min_pace) + ", " +
                format_number(l.max_pace) + "] steps per second");
  }
}

void check_config(const TrainingConfig& c, const TrainingLimits& l) {
  if (c.steps < 1 || c.steps > l.max_steps)
    throw Error("steps must be between 1 and " + std::to_string(l.max_steps));
  if (c.batch_size < 1 || c.batch_size > l.max_batch)
    throw Error("batch_size must be between 1 and " + std::to_string(l.max_batch));
  if (c.optimizer != "adam" && c.optimizer != "sgd")
    throw Error("unknown optimizer '" + c.optimizer + "' (adam or sgd)");
  if (!(c.lr > 0 && c.lr <= l.max_lr))
    throw Error("lr must be in (0, " + format_number(l.max_lr) + "]");
  check_pace(c.pace, l);
}

}  // namespace

double default_lr(const std::string& optimizer) { return optimizer == "sgd" ? 0.01 : 1e-3; }

TrainingRun::TrainingRun(const json& description, std::shared_ptr<const Dataset> train,
                         std::shared_ptr<const Dataset> test, const TrainingConfig& config,
                         bool paused, const TrainingLimits& limits)
    : config_(config),
      limits_(limits),
      gen_(config.seed),
      train_(std::move(train)),
      lr_(config.lr),
      pace_(config.pace) {
  check_config(config_, limits_);
  if (!train_) throw Error("no training images");
  BuiltModel built = build_model(description, gen_, "the served model");
  if (train_->image_shape() != built.input) {
    throw Error("the training images of " + train_->name + " have shape " +
                shape_str(train_->image_shape()) + "; the model takes inputs of shape " +
                shape_str(built.input));
  }
  if (built.output != Shape{train_->num_classes}) {
    throw Error("the model's output has shape " + shape_str(built.output) + "; " + train_->name +
                " has " + std::to_string(train_->num_classes) +
                " classes (make the last layer's out_features " +
                std::to_string(train_->num_classes) + ")");
  }
  model_ = built.module;
  if (test && test->count > 0 && test->image_shape() == built.input &&
      test->num_classes == train_->num_classes) {
    eval_ = eval_subset(*test, limits_.eval_images);
  }
  TrainOptions o;
  // Every epoch has a step at least: `steps` epochs hold the run, and max_steps ends it.
  o.epochs = config_.steps;
  o.max_steps = config_.steps;
  o.batch_size = config_.batch_size;
  o.lr = config_.lr;
  o.optimizer = config_.optimizer;
  o.seed = config_.seed;
  trainer_ = std::make_unique<Trainer>(model_, *train_, nullptr, o);
  repr_ = model_->repr();
  std::vector<explore::Leaf> leaves;
  explore::collect_leaves(*model_, "", leaves);
  for (const explore::Leaf& leaf : leaves) {
    if (dynamic_cast<const Conv2d*>(leaf.module)) {
      for (const auto& [n, p] : leaf.module->own_parameters()) {
        if (n == "weight") filter_weight_ = p.get();
      }
      filter_path_ = leaf.path;
      break;
    }
  }
  filters_ = filter_snapshot();
  state_ = paused ? State::Paused : State::Running;
  thread_ = std::thread([this] { run(); });
}

TrainingRun::~TrainingRun() {
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

const char* TrainingRun::name(State state) {
  switch (state) {
    case State::Running:
      return "running";
    case State::Paused:
      return "paused";
    case State::Done:
      return "done";
    case State::Failed:
      return "failed";
  }
  return "?";
}

TrainingRun::State TrainingRun::state() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return state_;
}

void TrainingRun::pause() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (state_ != State::Running) return;
  state_ = State::Paused;
  changed_.notify_all();
  changed_.wait(lock, [&] { return !in_step_; });
}

void TrainingRun::resume() {
  const std::lock_guard<std::mutex> lock(mutex_);
  if (state_ != State::Paused) return;
  state_ = State::Running;
  last_started_ = {};  // the next step at once
  changed_.notify_all();
}

void TrainingRun::step() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (state_ != State::Paused) {
    throw Error(std::string("only a paused run takes single steps; this one is ") + name(state_));
  }
  ++requested_;
  changed_.notify_all();
  changed_.wait(lock, [&] { return requested_ == 0 && !in_step_; });
}

void TrainingRun::set_lr(double lr) {
  if (!(lr > 0 && lr <= limits_.max_lr))
    throw Error("lr must be in (0, " + format_number(limits_.max_lr) + "]");
  const std::lock_guard<std::mutex> lock(mutex_);
  lr_ = lr;
}

void TrainingRun::set_pace(double pace) {
  check_pace(pace, limits_);
  const std::lock_guard<std::mutex> lock(mutex_);
  pace_ = pace;
  changed_.notify_all();  // the next step's time is recomputed from the new pace
}

void TrainingRun::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    // A single step is taken only in a paused run (one asked for as the run ended is dropped).
    const bool asked = requested_ > 0 && state_ == State::Paused;
    if (!asked && state_ != State::Running) {
      requested_ = 0;
      changed_.notify_all();
      changed_.wait(lock);
      continue;
    }
    // The next step's time from the pace as it is now, so that a new pace applies at once.
    const Clock::time_point next_at =
        pace_ > 0 ? last_started_ + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(1.0 / pace_))
                  : Clock::time_point{};
    if (!asked && pace_ > 0 && Clock::now() < next_at) {
      changed_.wait_until(lock, next_at);
      continue;
    }
    in_step_ = true;
    const double lr = lr_;
    const Clock::time_point started = Clock::now();
    lock.unlock();
    Outcome o = take_step(lr);
    lock.lock();
    in_step_ = false;
    if (asked) --requested_;
    if (!o.error.empty()) {
      state_ = State::Failed;
      error_ = o.error;
      requested_ = 0;
    } else {
      ++step_;
      history_.push_back(std::move(o.record));
      if (!o.eval.is_null()) evals_.push_back(std::move(o.eval));
      filters_ = std::move(o.filters);
      if (step_ == config_.steps) state_ = State::Done;
    }
    last_started_ = started;
    changed_.notify_all();
  }
}

TrainingRun::Outcome TrainingRun::take_step(double lr) {
  const std::lock_guard<std::mutex> lock(model_mutex_);
  Outcome o;
  // Anything a step throws ends the run with its message, never the server.
  try {
    trainer_->set_lr(lr);
    const StepResult s = trainer_->step();
    const int64_t step = trainer_->global_step();
    o.record = {{"step", step},
                {"loss", s.loss},
                {"accuracy", static_cast<double>(s.correct) / static_cast<double>(s.count)},
                {"lr", s.lr}};
    if (eval_.count > 0 && (step % limits_.eval_every == 0 || step == config_.steps)) {
      const EvalResult e = evaluate(*model_, eval_);
      o.eval = {{"step", step}, {"loss", e.loss}, {"accuracy", e.accuracy}};
    }
    o.filters = filter_snapshot();
  } catch (const std::exception& e) {
    o.error = e.what();
    if (o.error.empty()) o.error = "the step failed";
  }
  return o;
}

Tensor TrainingRun::filter_snapshot() const {
  if (!filter_weight_) return Tensor();
  const Tensor& w = filter_weight_->value;  // (C_out, C_in / groups, K_h, K_w)
  const int64_t O = std::min(w.size(0), limits_.max_filters);
  const int64_t I = std::min(w.size(1), limits_.max_filter_inputs);
  const int64_t K = w.size(2) * w.size(3);
  Tensor out({O, I, w.size(2), w.size(3)});
  for (int64_t o = 0; o < O; ++o) {
    for (int64_t i = 0; i < I; ++i) {
      const float* from = w.data() + (o * w.size(1) + i) * K;
      std::copy(from, from + K, out.data() + (o * I + i) * K);
    }
  }
  return out;
}

json TrainingRun::to_json(int64_t since) const {
  const std::lock_guard<std::mutex> lock(mutex_);
  json history = json::array();
  // history_[k] is step k + 1.
  for (std::size_t k = static_cast<std::size_t>(std::clamp<int64_t>(since, 0, step_));
       k < history_.size(); ++k) {
    history.push_back(history_[k]);
  }
  json filters = nullptr;
  if (filters_.defined()) {
    const Tensor& f = filters_;
    json weights = json::array();
    for (int64_t o = 0; o < f.size(0); ++o) {
      json inputs = json::array();
      for (int64_t i = 0; i < f.size(1); ++i) {
        json rows = json::array();
        for (int64_t r = 0; r < f.size(2); ++r) {
          json row = json::array();
          for (int64_t c = 0; c < f.size(3); ++c) {
            row.push_back(
                explore::number(f[((o * f.size(1) + i) * f.size(2) + r) * f.size(3) + c]));
          }
          rows.push_back(row);
        }
        inputs.push_back(rows);
      }
      weights.push_back(inputs);
    }
    filters = {
        {"layer", filter_path_}, {"shape", filter_weight_->value.shape()}, {"weights", weights}};
  }
  json out = {{"state", name(state_)},
              {"step", step_},
              {"steps", config_.steps},
              {"lr", lr_},
              {"batch_size", config_.batch_size},
              {"optimizer", config_.optimizer},
              {"seed", config_.seed},
              {"pace", pace_},
              {"history", history},
              {"evals", evals_},
              {"filters", filters},
              {"model", repr_}};
  if (state_ == State::Failed) out["error"] = error_;
  return out;
}

TrainingRun::ModelHold::ModelHold(TrainingRun& run)
    : run_(run), lock_(run.model_mutex_), was_training_(run.model_->is_training()) {
  run_.model_->eval();
}

TrainingRun::ModelHold::~ModelHold() { run_.model_->train(was_training_); }

}  // namespace cnn
