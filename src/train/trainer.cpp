#include "cnn/train/trainer.h"

#include <chrono>
#include <cmath>
#include <map>

#include "../data/device_dataset.h"
#include "cnn/dist/communicator.h"
#include "cnn/error.h"
#include "cnn/io/archive.h"
#include "cnn/io/checkpoint.h"
#include "cnn/limits.h"
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
                    std::optional<Normalize> normalize, Communicator* communicator) {
  ModeGuard guard(model, false);
  LogitsGuard logits_guard(model);
  NoGradGuard no_grad;
  DataLoader loader(data, batch_size, false, 0, normalize);
  const bool sharded = communicator && communicator->size() > 1;
  if (sharded) loader.set_shard(communicator->rank(), communicator->size());
  EvalResult r;
  const auto classes = static_cast<std::size_t>(data.num_classes);
  r.confusion.assign(classes, std::vector<int64_t>(classes, 0));
  CrossEntropyLoss loss_fn;
  double loss_sum = 0;
  int64_t correct = 0;
  Batch batch;
  while (loader.next(batch)) {
    if (batch.labels.empty()) continue;  // this rank's part of a short last batch
    const Tensor logits = model.forward(batch.images.to(model.device()));
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
  if (sharded) {
    // Counts are exact in a double up to 2^53; the loss sums are added in rank order.
    std::vector<double> sums = {loss_sum, double(correct), double(r.count)};
    for (const auto& row : r.confusion) sums.insert(sums.end(), row.begin(), row.end());
    communicator->allreduce_sum(sums.data(), static_cast<int64_t>(sums.size()));
    loss_sum = sums[0];
    correct = static_cast<int64_t>(sums[1]);
    r.count = static_cast<int64_t>(sums[2]);
    for (std::size_t i = 0; i < classes; ++i) {
      for (std::size_t j = 0; j < classes; ++j) {
        r.confusion[i][j] = static_cast<int64_t>(sums[3 + i * classes + j]);
      }
    }
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
  if (patience > 0) j["patience"] = patience;
  if (val_split > 0) j["val_split"] = val_split;
  if (sync_batchnorm) j["sync_batchnorm"] = true;
  j["held_out"] = held_out;
  return j;
}

TrainOptions TrainOptions::from_json(const nlohmann::json& j) {
  TrainOptions o;
  o.epochs = j.at("epochs").get<int64_t>();
  o.batch_size = j.at("batch_size").get<int64_t>();
  o.lr = j.at("lr").get<double>();
  o.optimizer = j.at("optimizer").get<std::string>();
  o.momentum = j.value("momentum", o.momentum);
  o.weight_decay = j.value("weight_decay", o.weight_decay);
  o.schedule = j.value("schedule", o.schedule);
  o.seed = j.value("seed", o.seed);
  o.max_steps = j.value("max_steps", o.max_steps);
  if (j.contains("normalize")) {
    o.normalize =
        Normalize{j["normalize"].at("mean").get<float>(), j["normalize"].at("std").get<float>()};
  }
  if (j.contains("augment")) o.augment = Augment::from_json(j["augment"]);
  o.patience = j.value("patience", o.patience);
  o.held_out = j.value("held_out", o.held_out);
  o.val_split = j.value("val_split", o.val_split);
  o.sync_batchnorm = j.value("sync_batchnorm", o.sync_batchnorm);
  return o;
}

nlohmann::json to_json(const EpochRecord& r) {
  return {{"epoch", r.epoch},           {"steps", r.steps},
          {"train_loss", r.train_loss}, {"train_accuracy", r.train_accuracy},
          {"test_loss", r.test_loss},   {"test_accuracy", r.test_accuracy},
          {"seconds", r.seconds},       {"images_per_second", r.images_per_second},
          {"held_out", r.held_out}};
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
  r.held_out = j.value("held_out", std::string("test"));
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
  if (!device_available(options_.device)) {
    throw Error("device " + to_string(options_.device) +
                " is not available: " + device_unavailable_reason(options_.device));
  }
  // The model first, so that the optimizer's state is made on the same device; then its
  // parameters into one arena (one block of gradients to sum across ranks).
  model_->to(options_.device);
  model_->pack_parameters();
  comm_ = options_.communicator ? options_.communicator : local_communicator();
  if (distributed()) {
    const int ranks = comm_->size();
    const int64_t last = train.count % options_.batch_size;
    if (options_.batch_size < ranks || (last != 0 && last < ranks)) {
      throw Error("a global batch of " + std::to_string(options_.batch_size) + " images" +
                  (options_.batch_size < ranks
                       ? ""
                       : " (the epoch's last batch: " + std::to_string(last) + " images)") +
                  " cannot be split across " + std::to_string(ranks) +
                  " ranks: every rank needs an image of every batch (choose another --batch-size)");
    }
    loader_.set_shard(comm_->rank(), ranks);
    std::vector<Module*> stack = {model_.get()};
    while (!stack.empty()) {
      Module* m = stack.back();
      stack.pop_back();
      if (auto* d = dynamic_cast<Dropout*>(m)) dropouts_.push_back(d);
      if (auto* bn = dynamic_cast<BatchNorm2d*>(m); bn && options_.sync_batchnorm) {
        if (options_.device != Device::CPU) {
          throw Error("--sync-batchnorm (SyncBatchNorm) runs on the CPU only, not on " +
                      to_string(options_.device));
        }
        bn->set_communicator(comm_.get());
        synced_batchnorms_.push_back(bn);
      }
      for (const auto& [name, child] : m->children()) stack.push_back(child.get());
    }
    // Every rank starts from rank 0's weights, as DistributedDataParallel does.
    const ParameterArena& arena = *model_->parameter_arena();
    Tensor values = arena.values.cpu();
    comm_->broadcast(values.data(), values.numel(), 0);
    const_cast<Tensor&>(arena.values).copy_(values);
    broadcast_buffers();
  }
  if (options_.device == Device::CUDA && !options_.augment.enabled()) {
    device_data_ =
        std::make_shared<detail::DeviceDataset>(train, options_.device, options_.normalize);
    loader_.set_fill_images(false);
  }
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

Trainer::~Trainer() {
  // The model may train again without this run's communicator and batch split.
  for (Dropout* d : dropouts_) d->set_batch_shard(0, 0);
  for (BatchNorm2d* bn : synced_batchnorms_) bn->set_communicator(nullptr);
}

int64_t Trainer::total_steps() const {
  const int64_t all = steps_per_epoch() * options_.epochs;
  return options_.max_steps > 0 ? std::min(options_.max_steps, all) : all;
}

int64_t Trainer::epochs_to_run() const {
  const int64_t per_epoch = std::max<int64_t>(steps_per_epoch(), 1);
  return (total_steps() + per_epoch - 1) / per_epoch;
}

void Trainer::start_epoch() {
  epoch_ = static_cast<int64_t>(history_.size()) + 1;
  epoch_start_rng_ = loader_.generator().state();
  loader_.reset();
  partial_ = {};
  in_epoch_ = true;
}

EpochRecord Trainer::finish_epoch() {
  EpochRecord r;
  r.epoch = epoch_;
  r.steps = partial_.steps;
  r.seconds = partial_.seconds;
  const auto seen = std::max<int64_t>(partial_.seen, 1);
  r.train_loss = partial_.loss_sum / seen;
  r.train_accuracy = double(partial_.correct) / seen;
  r.images_per_second = partial_.seen / std::max(r.seconds, 1e-9);
  r.held_out = options_.held_out;
  if (distributed()) check_replicas();
  if (test_) {
    // The training batch size, so that evaluation reuses the blocks the training step freed.
    const EvalResult e = evaluate(*test_);
    r.test_loss = e.loss;
    r.test_accuracy = e.accuracy;
  }
  in_epoch_ = false;
  history_.push_back(r);
  return r;
}

EvalResult Trainer::evaluate(const Dataset& data) {
  if (distributed()) broadcast_buffers();
  return cnn::evaluate(*model_, data, options_.batch_size, options_.normalize, comm_.get());
}

void Trainer::exchange(int64_t local_count, int64_t global_count, double sums[4]) {
  const ParameterArena* arena = model_->parameter_arena();
  if (!arena) {
    throw Error(
        "the model's parameters are no longer in one arena (a parameter was added or "
        "replaced after the Trainer was made): its gradients cannot be exchanged");
  }
  // Each rank's gradient is its part's mean; weighted by the part's share, their sum is the mean
  // over the global batch.
  Tensor grads = arena->grads.cpu();  // the gradients themselves on the CPU; a copy from a GPU
  const float share = static_cast<float>(double(local_count) / double(global_count));
  for (float& g : grads) g *= share;
  comm_->allreduce_sum(grads.data(), grads.numel());
  if (arena->grads.is_cuda()) const_cast<Tensor&>(arena->grads).copy_(grads);
  comm_->allreduce_sum(sums, 4);
}

void Trainer::broadcast_buffers() {
  for (auto& [name, buffer] : model_->named_buffers()) {
    Tensor host = buffer->cpu();
    comm_->broadcast(host.data(), host.numel(), 0);
    buffer->copy_(host);
  }
}

void Trainer::check_replicas() {
  const ParameterArena* arena = model_->parameter_arena();
  if (!arena) throw Error("the model's parameters are no longer in one arena");
  // FNV-1a over the weights' bytes, 32 bits of it, in this rank's slot of a vector of zeros: the
  // sum gives every rank's hash exactly (a double holds any sum of one 32-bit value per slot).
  const Tensor values = arena->values.cpu();
  uint64_t h = 1469598103934665603ull;
  const auto* bytes = reinterpret_cast<const unsigned char*>(values.data());
  for (std::size_t i = 0; i < static_cast<std::size_t>(values.numel()) * sizeof(float); ++i) {
    h = (h ^ bytes[i]) * 1099511628211ull;
  }
  std::vector<double> hashes(static_cast<std::size_t>(comm_->size()), 0.0);
  hashes[static_cast<std::size_t>(comm_->rank())] = static_cast<double>(h >> 32);
  comm_->allreduce_sum(hashes.data(), static_cast<int64_t>(hashes.size()));
  std::string differ;
  for (std::size_t r = 1; r < hashes.size(); ++r) {
    if (hashes[r] != hashes[0]) differ += (differ.empty() ? "" : ", ") + std::to_string(r);
  }
  if (!differ.empty()) {
    throw CommError("rank " + std::to_string(comm_->rank()) + ": after epoch " +
                    std::to_string(epoch_) + " the weights of rank(s) " + differ +
                    " differ from rank 0's (the summed gradients were not the same bits on every "
                    "rank): stopping rather than training diverging copies");
  }
}

int64_t Trainer::best_epoch() const {
  int64_t best = 0;
  double best_accuracy = -1;
  for (const auto& r : history_) {
    if (r.test_accuracy > best_accuracy) {
      best_accuracy = r.test_accuracy;
      best = r.epoch;
    }
  }
  return best;
}

int64_t Trainer::steps_this_epoch() const {
  // Fewer than a full epoch's in the last epoch of a capped run.
  return std::min(steps_per_epoch(), total_steps() - (global_step_ - partial_.steps));
}

StepResult Trainer::step() {
  const int64_t total_steps = this->total_steps();
  if (global_step_ >= total_steps) {
    throw Error("the run's " + std::to_string(total_steps) + " steps are done");
  }
  // An epoch whose last step a caller of step() took is finished here (fit() finishes its own).
  if (in_epoch_ && partial_.steps == steps_this_epoch()) finish_epoch();
  if (!in_epoch_) start_epoch();
  LogitsGuard logits_guard(*model_);  // fit() holds one already; nested, it does nothing
  CrossEntropyLoss loss_fn;
  model_->train();
  const auto t0 = Clock::now();
  if (!loader_.next(batch_)) throw Error("the loader ran out of batches inside an epoch");
  const double lr = scheduled_lr(options_.schedule, options_.lr, global_step_, total_steps);
  optimizer_->set_lr(lr);
  optimizer_->zero_grad();
  Tensor images, labels;
  if (device_data_) {
    device_data_->gather(batch_.indices, images, labels);
  } else {
    images = batch_.images.to(options_.device);
  }
  for (Dropout* d : dropouts_) d->set_batch_shard(batch_.first, batch_.global_count);
  const Tensor logits = model_->forward(images);
  float loss = labels.defined() ? loss_fn(logits, labels) : loss_fn(logits, batch_.labels);
  StepResult r;
  r.count = static_cast<int64_t>(batch_.labels.size());
  // Checked after the sum over the ranks when there are several, so that all of them stop.
  const auto check_finite = [&](float value) {
    if (!std::isfinite(value)) {
      throw Error("training diverged: the loss is " + std::to_string(value) + " at epoch " +
                  std::to_string(epoch_) + ", step " + std::to_string(partial_.steps + 1) +
                  " (try a smaller learning rate)");
    }
  };
  if (!distributed()) check_finite(loss);
  model_->backward(loss_fn.backward(), /*input_grad=*/false);
  r.correct = count_correct(logits, batch_.labels);
  if (distributed()) {
    double sums[4] = {double(loss) * double(r.count), double(r.correct), double(r.count),
                      stop_asked_ ? 1.0 : 0.0};
    exchange(r.count, batch_.global_count, sums);
    stop_agreed_ = sums[3] > 0;
    r.count = static_cast<int64_t>(sums[2]);
    r.correct = static_cast<int64_t>(sums[1]);
    loss = static_cast<float>(sums[0] / sums[2]);
    check_finite(loss);
  }
  optimizer_->step();
  r.loss = loss;
  r.lr = lr;
  partial_.loss_sum += double(loss) * r.count;
  partial_.correct += r.correct;
  partial_.seen += r.count;
  partial_.seconds += seconds_since(t0);
  ++partial_.steps;
  ++global_step_;
  return r;
}

void Trainer::set_lr(double lr) {
  if (!(lr > 0)) throw Error("the learning rate must be positive");
  options_.lr = lr;
}

const std::vector<EpochRecord>& Trainer::fit(const TrainCallbacks& callbacks) {
  LogitsGuard logits_guard(*model_);
  const int64_t total_steps = this->total_steps(), epochs = epochs_to_run();
  stopped_ = stopped_early_ = false;
  stop_asked_ = stop_agreed_ = false;
  while (global_step_ < total_steps) {
    if (!in_epoch_) {
      if (static_cast<int64_t>(history_.size()) >= options_.epochs) break;
      start_epoch();
    }
    bool stop = callbacks.should_stop && callbacks.should_stop();
    if (distributed()) {
      // A rank's request travels with the next step's figures (no exchange of its own): every
      // rank stops after the same step.
      stop_asked_ = stop_asked_ || stop;
      stop = stop_agreed_;
    }
    if (stop) {
      stopped_ = true;
      break;
    }
    const int64_t steps_this_epoch = this->steps_this_epoch();
    const StepResult s = step();
    if (callbacks.on_step) {
      callbacks.on_step({epoch_, epochs, partial_.steps, steps_this_epoch,
                         partial_.loss_sum / partial_.seen,
                         double(partial_.correct) / partial_.seen, s.loss, s.lr,
                         partial_.seen / std::max(partial_.seconds, 1e-9), partial_.seconds});
    }
    if (partial_.steps == steps_this_epoch) {
      const EpochRecord r = finish_epoch();
      if (callbacks.on_epoch) callbacks.on_epoch(r);
      if (options_.patience > 0 && r.epoch - best_epoch() >= options_.patience) {
        stopped_early_ = true;
        break;
      }
    }
  }
  return history_;
}

void Trainer::save_checkpoint(const std::string& path) const {
  // A diverged run's weights would replace the last good checkpoint: refused instead.
  for (const auto& [name, p] : model_->named_parameters()) {
    for (float v : p->value.cpu()) {
      if (!std::isfinite(v)) {
        throw Error("training diverged: " + name + " holds " + std::to_string(v) + " after step " +
                    std::to_string(global_step_) + "; " + path +
                    " was not replaced (try a smaller learning rate)");
      }
    }
  }
  Archive a;
  a.meta["format"] = kCheckpointFormat;
  a.meta["version"] = kCheckpointVersion;
  a.meta["architecture"] = describe_model(*model_, train_.image_shape());
  a.meta["dataset"] = {{"name", train_.name},
                       {"num_classes", train_.num_classes},
                       {"class_names", train_.class_names},
                       {"image", {train_.rows, train_.cols}},
                       {"channels", train_.channels}};
  if (!train_.source.empty()) a.meta["dataset"]["source"] = train_.source;
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
  if (in_epoch_) {
    // Saved inside an epoch: where, and the sums so far; the loader's generator as it was before
    // the epoch's permutation (resume() draws the same permutation again and skips the steps).
    a.meta["in_epoch"] = {{"epoch", epoch_},
                          {"steps", partial_.steps},
                          {"seen", partial_.seen},
                          {"correct", partial_.correct},
                          {"loss_sum", partial_.loss_sum},
                          {"seconds", partial_.seconds},
                          {"loader_at_start", epoch_start_rng_}};
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

namespace {
Generator::State generator_state(const nlohmann::json& j) { return j.get<Generator::State>(); }
}  // namespace

void Trainer::resume(const std::string& path) {
  const Archive a = read_archive(path);
  const auto& meta = a.meta;
  try {
    if (!meta.contains("architecture") ||
        meta["architecture"] != describe_model(*model_, train_.image_shape())) {
      throw Error("it holds another model than this run's");
    }
    std::map<std::string, Tensor> state;
    for (const auto& [name, t] : a.tensors) {
      if (name.rfind("model/", 0) == 0) state[name.substr(6)] = t;
    }
    model_->load_state_dict(state);
    const auto& opt = meta.at("optimizer");
    if (opt.at("name").get<std::string>() != options_.optimizer) {
      throw Error("its optimizer is " + opt.at("name").get<std::string>() + ", this run's " +
                  options_.optimizer);
    }
    auto named = model_->named_parameters();
    // Copies a saved state tensor into the optimizer's, shapes checked.
    auto restore = [&](const std::string& name, Tensor& into, const Tensor& like) {
      const Tensor& t = a.get(name);
      if (t.shape() != like.shape()) {
        throw Error(name + " has shape " + shape_str(t.shape()) + ", the parameter " +
                    shape_str(like.shape()));
      }
      into = like.is_cuda() ? t.to(like.device()) : t.clone();
    };
    if (auto* adam = dynamic_cast<Adam*>(optimizer_.get())) {
      adam->set_steps(opt.at("steps").get<int64_t>());
      for (std::size_t i = 0; i < named.size(); ++i) {
        restore("optim/exp_avg/" + named[i].first, adam->exp_avg()[i], named[i].second->value);
        restore("optim/exp_avg_sq/" + named[i].first, adam->exp_avg_sq()[i],
                named[i].second->value);
      }
    } else if (auto* sgd = dynamic_cast<SGD*>(optimizer_.get())) {
      for (std::size_t i = 0; i < named.size(); ++i) {
        const std::string name = "optim/momentum/" + named[i].first;
        if (a.has(name)) restore(name, sgd->momentum_buffers()[i], named[i].second->value);
      }
    }
    history_.clear();
    for (const auto& r : meta.at("history")) history_.push_back(epoch_record_from_json(r));
    global_step_ = meta.at("global_step").get<int64_t>();
    if (global_step_ < 0 || global_step_ > total_steps()) {
      throw Error("its global step " + std::to_string(global_step_) + " is outside this run's " +
                  std::to_string(total_steps()) + " steps");
    }
    const auto& rng = meta.at("rng");
    default_generator().set_state(generator_state(rng.at("default")));
    if (options_.augment.enabled()) {
      loader_.augment_generator().set_state(generator_state(rng.at("augment")));
    }
    in_epoch_ = meta.contains("in_epoch");
    if (in_epoch_) {
      const auto& e = meta["in_epoch"];
      epoch_ = e.at("epoch").get<int64_t>();
      partial_.steps = e.at("steps").get<int64_t>();
      partial_.seen = e.at("seen").get<int64_t>();
      partial_.correct = e.at("correct").get<int64_t>();
      partial_.loss_sum = e.at("loss_sum").get<double>();
      partial_.seconds = e.at("seconds").get<double>();
      if (epoch_ != static_cast<int64_t>(history_.size()) + 1 || partial_.steps < 0 ||
          partial_.steps > steps_per_epoch()) {
        throw Error("its place in the epoch (epoch " + std::to_string(epoch_) + ", step " +
                    std::to_string(partial_.steps) + ") does not follow its history");
      }
      epoch_start_rng_ = generator_state(e.at("loader_at_start"));
      loader_.generator().set_state(epoch_start_rng_);
      loader_.reset();
      loader_.skip(partial_.steps);
    } else {
      loader_.generator().set_state(generator_state(rng.at("loader")));
      partial_ = {};
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": cannot resume from it: malformed checkpoint header: " +
                excerpt(e.what(), 4 * limits::kExcerpt));
  } catch (const Error& e) {
    const std::string what = e.what();
    throw Error(what.rfind(path + ": ", 0) == 0 ? what : path + ": cannot resume from it: " + what);
  }
}

}  // namespace cnn
