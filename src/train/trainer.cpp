#include "cnn/train/trainer.h"

#include <chrono>
#include <cmath>

#include "cnn/error.h"
#include "cnn/io/checkpoint.h"
#include "cnn/nn/grad_mode.h"
#include "cnn/nn/layers.h"
#include "cnn/nn/loss.h"
#include "cnn/nn/spec.h"
#include "cnn/ops/argmax.h"
#include "cnn/optim/adam.h"
#include "cnn/optim/sgd.h"

namespace cnn {

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Restores a module's training mode when it goes out of scope.
struct ModeGuard {
  Module& m;
  bool was_training;
  explicit ModeGuard(Module& module, bool training)
      : m(module), was_training(module.is_training()) {
    m.train(training);
  }
  ~ModeGuard() { m.train(was_training); }
};

int64_t count_correct(const Tensor& logits, const std::vector<int64_t>& labels) {
  const auto pred = argmax(logits, 1);
  int64_t correct = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) correct += pred[i] == labels[i];
  return correct;
}

nlohmann::json generator_json(const Generator& g) { return g.state(); }
}  // namespace

LogitsGuard::LogitsGuard(Module& model) {
  Module* last = &model;
  while (!last->children().empty()) last = last->children().back().second.get();
  auto* softmax = dynamic_cast<Softmax*>(last);
  // Over the classes: dim 1 or -1 of (N, classes) logits.
  if (softmax && (softmax->dim() == 1 || softmax->dim() == -1)) {
    active_ = true;
    if (!softmax->pass_through()) {  // an outer guard (fit's, around evaluate's) keeps it on
      softmax_ = softmax;
      softmax_->set_pass_through(true);
    }
  }
}

LogitsGuard::~LogitsGuard() {
  if (softmax_) softmax_->set_pass_through(false);
}

EvalResult evaluate(Module& model, const Dataset& data, int64_t batch_size,
                    std::optional<Normalize> normalize) {
  ModeGuard guard(model, false);
  LogitsGuard logits_guard(model);
  NoGradGuard no_grad;
  DataLoader loader(data, batch_size, false, 0, normalize);
  EvalResult r;
  r.confusion.assign(static_cast<std::size_t>(data.num_classes),
                     std::vector<int64_t>(static_cast<std::size_t>(data.num_classes), 0));
  CrossEntropyLoss loss_fn;
  double loss_sum = 0;
  int64_t correct = 0;
  Batch batch;
  while (loader.next(batch)) {
    const Tensor logits = model.forward(batch.images);
    if (logits.dim() != 2 || logits.size(1) != data.num_classes) {
      throw Error("the model gives logits of shape " + shape_str(logits.shape()) + ", but " +
                  data.name + " has " + std::to_string(data.num_classes) + " classes");
    }
    const auto b = static_cast<double>(batch.labels.size());
    loss_sum += loss_fn(logits, batch.labels) * b;
    const auto pred = argmax(logits, 1);
    for (std::size_t i = 0; i < pred.size(); ++i) {
      r.confusion[batch.labels[i]][pred[i]]++;
      correct += pred[i] == batch.labels[i];
    }
    r.count += static_cast<int64_t>(batch.labels.size());
  }
  if (r.count == 0) throw Error(data.name + " " + data.split + ": the dataset is empty");
  r.loss = loss_sum / r.count;
  r.accuracy = static_cast<double>(correct) / r.count;
  for (std::size_t c = 0; c < r.confusion.size(); ++c) {
    int64_t total = 0;
    for (int64_t v : r.confusion[c]) total += v;
    r.per_class_accuracy.push_back(total ? double(r.confusion[c][c]) / total : 0.0);
  }
  return r;
}

nlohmann::json TrainOptions::to_json() const {
  nlohmann::json j = {{"epochs", epochs},
                      {"batch_size", batch_size},
                      {"lr", lr},
                      {"optimizer", optimizer},
                      {"momentum", momentum},
                      {"weight_decay", weight_decay},
                      {"schedule", schedule},
                      {"seed", seed},
                      {"max_steps", max_steps}};
  if (normalize) j["normalize"] = {{"mean", normalize->mean}, {"std", normalize->std}};
  if (augment.enabled()) j["augment"] = augment.to_json();
  return j;
}

nlohmann::json to_json(const EpochRecord& r) {
  return {{"epoch", r.epoch},           {"steps", r.steps},
          {"train_loss", r.train_loss}, {"train_accuracy", r.train_accuracy},
          {"test_loss", r.test_loss},   {"test_accuracy", r.test_accuracy},
          {"seconds", r.seconds},       {"images_per_second", r.images_per_second}};
}

EpochRecord epoch_record_from_json(const nlohmann::json& j) {
  EpochRecord r;
  r.epoch = j.at("epoch");
  r.steps = j.value("steps", int64_t{0});
  r.train_loss = j.at("train_loss");
  r.train_accuracy = j.at("train_accuracy");
  r.test_loss = j.value("test_loss", 0.0);
  r.test_accuracy = j.value("test_accuracy", 0.0);
  r.seconds = j.value("seconds", 0.0);
  r.images_per_second = j.value("images_per_second", 0.0);
  return r;
}

double scheduled_lr(const std::string& schedule, double base_lr, int64_t t, int64_t total) {
  if (schedule == "none") return base_lr;
  const double pi = std::acos(-1.0);
  if (schedule == "cosine") {
    return base_lr * 0.5 *
           (1.0 + std::cos(pi * static_cast<double>(t) / std::max<int64_t>(total, 1)));
  }
  if (schedule == "onecycle") {
    const double initial = base_lr / 25.0, final_lr = initial / 1e4;
    const double warm_end = 0.3 * static_cast<double>(total) - 1.0;
    auto anneal = [&](double start, double end, double pct) {
      return end + (start - end) / 2.0 * (std::cos(pi * pct) + 1.0);
    };
    const double step = static_cast<double>(t);
    if (step <= warm_end) return anneal(initial, base_lr, warm_end > 0 ? step / warm_end : 1.0);
    const double span = static_cast<double>(total - 1) - warm_end;
    return anneal(base_lr, final_lr, span > 0 ? std::min(1.0, (step - warm_end) / span) : 1.0);
  }
  throw Error("unknown schedule '" + schedule + "' (expected none, onecycle or cosine)");
}

Trainer::Trainer(std::shared_ptr<Module> model, const Dataset& train, const Dataset* test,
                 TrainOptions options)
    : model_(std::move(model)),
      train_(train),
      test_(test),
      options_(std::move(options)),
      loader_(train, options_.batch_size, true, options_.seed, options_.normalize) {
  if (train.count == 0) {
    throw Error(train.name + " " + train.split + ": the dataset holds no images to train on");
  }
  if (options_.epochs <= 0)
    throw Error("epochs must be positive, got " + std::to_string(options_.epochs));
  if (!(options_.lr > 0)) throw Error("the learning rate must be positive");
  scheduled_lr(options_.schedule, options_.lr, 0, 1);  // validates the name
  // Its own stream, so that augmenting leaves the shuffling order and the initialisation alone.
  loader_.set_augment(options_.augment, options_.seed ^ 0x9E3779B97F4A7C15ull);
  auto params = model_->parameters();
  if (options_.optimizer == "adam") {
    optimizer_ = std::make_unique<Adam>(
        params, AdamOptions(options_.lr).weight_decay(options_.weight_decay));
  } else if (options_.optimizer == "adamw") {
    optimizer_ = std::make_unique<AdamW>(
        params, AdamOptions(options_.lr).weight_decay(options_.weight_decay));
  } else if (options_.optimizer == "sgd") {
    optimizer_ = std::make_unique<SGD>(
        params,
        SGDOptions(options_.lr).momentum(options_.momentum).weight_decay(options_.weight_decay));
  } else {
    throw Error("unknown optimizer '" + options_.optimizer + "' (expected adam, adamw or sgd)");
  }
}

int64_t Trainer::total_steps() const {
  const int64_t all = steps_per_epoch() * options_.epochs;
  return options_.max_steps > 0 ? std::min(options_.max_steps, all) : all;
}

int64_t Trainer::epochs_to_run() const {
  const int64_t per_epoch = std::max<int64_t>(steps_per_epoch(), 1);
  return (total_steps() + per_epoch - 1) / per_epoch;
}

const std::vector<EpochRecord>& Trainer::fit(const TrainCallbacks& callbacks) {
  LogitsGuard logits_guard(*model_);
  CrossEntropyLoss loss_fn;
  const int64_t total_steps = this->total_steps(), epochs = epochs_to_run();
  Batch batch;
  for (int64_t epoch = static_cast<int64_t>(history_.size()) + 1;
       epoch <= options_.epochs && global_step_ < total_steps; ++epoch) {
    const int64_t steps_this_epoch = std::min(steps_per_epoch(), total_steps - global_step_);
    model_->train();
    loader_.reset();
    const auto t0 = Clock::now();
    double loss_sum = 0;
    int64_t seen = 0, correct = 0, step = 0;
    while (global_step_ < total_steps && loader_.next(batch)) {
      const double lr = scheduled_lr(options_.schedule, options_.lr, global_step_, total_steps);
      optimizer_->set_lr(lr);
      optimizer_->zero_grad();
      const Tensor logits = model_->forward(batch.images);
      const float loss = loss_fn(logits, batch.labels);
      if (!std::isfinite(loss)) {
        throw Error("training diverged: the loss is " + std::to_string(loss) + " at epoch " +
                    std::to_string(epoch) + ", step " + std::to_string(step + 1) +
                    " (try a smaller learning rate)");
      }
      model_->backward(loss_fn.backward(), /*input_grad=*/false);
      optimizer_->step();
      const auto b = static_cast<int64_t>(batch.labels.size());
      loss_sum += double(loss) * b;
      correct += count_correct(logits, batch.labels);
      seen += b;
      ++step;
      ++global_step_;
      if (callbacks.on_step) {
        const double elapsed = seconds_since(t0);
        callbacks.on_step({epoch, epochs, step, steps_this_epoch, loss_sum / seen,
                           double(correct) / seen, lr, seen / std::max(elapsed, 1e-9), elapsed});
      }
    }
    EpochRecord r;
    r.epoch = epoch;
    r.steps = step;
    r.seconds = seconds_since(t0);
    r.train_loss = loss_sum / std::max<int64_t>(seen, 1);
    r.train_accuracy = double(correct) / std::max<int64_t>(seen, 1);
    r.images_per_second = seen / std::max(r.seconds, 1e-9);
    if (test_) {
      // The training batch size, so that evaluation reuses the blocks the training step freed.
      const EvalResult e = evaluate(*model_, *test_, options_.batch_size, options_.normalize);
      r.test_loss = e.loss;
      r.test_accuracy = e.accuracy;
    }
    history_.push_back(r);
    if (callbacks.on_epoch) callbacks.on_epoch(r);
  }
  return history_;
}

void Trainer::save_checkpoint(const std::string& path) const {
  Archive a;
  a.meta["format"] = kCheckpointFormat;
  a.meta["version"] = kCheckpointVersion;
  a.meta["architecture"] = describe_model(*model_, train_.image_shape());
  a.meta["dataset"] = {{"name", train_.name},
                       {"num_classes", train_.num_classes},
                       {"class_names", train_.class_names},
                       {"image", {train_.rows, train_.cols}},
                       {"channels", train_.channels}};
  a.meta["epoch"] = history_.empty() ? 0 : history_.back().epoch;
  a.meta["global_step"] = global_step_;
  a.meta["history"] = nlohmann::json::array();
  for (const auto& r : history_) a.meta["history"].push_back(to_json(r));
  a.meta["train_options"] = options_.to_json();
  a.meta["rng"] = {{"loader", generator_json(const_cast<DataLoader&>(loader_).generator())},
                   {"default", generator_json(default_generator())}};
  if (options_.augment.enabled()) {
    a.meta["rng"]["augment"] = generator_json(const_cast<DataLoader&>(loader_).augment_generator());
  }
  for (const auto& [name, t] : model_->state_dict()) a.add("model/" + name, t);
  auto named = model_->named_parameters();
  nlohmann::json opt = {{"name", options_.optimizer}, {"lr", optimizer_->lr()}};
  if (auto* adam = dynamic_cast<Adam*>(optimizer_.get())) {
    opt["steps"] = adam->steps();
    for (std::size_t i = 0; i < named.size(); ++i) {
      a.add("optim/exp_avg/" + named[i].first, adam->exp_avg()[i]);
      a.add("optim/exp_avg_sq/" + named[i].first, adam->exp_avg_sq()[i]);
    }
  } else if (auto* sgd = dynamic_cast<SGD*>(optimizer_.get())) {
    for (std::size_t i = 0; i < named.size(); ++i) {
      if (sgd->momentum_buffers()[i].defined()) {
        a.add("optim/momentum/" + named[i].first, sgd->momentum_buffers()[i]);
      }
    }
  }
  a.meta["optimizer"] = opt;
  write_archive(path, a);
}

}  // namespace cnn
