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
#include "cnn/dist/communicator.h"
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
class Dropout;
class BatchNorm2d;
namespace detail {
class DeviceDataset;
}

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

// Evaluation mode for the duration (the module's mode is restored). Runs on the model's device
// (Module::device()). With a communicator of several ranks, each rank evaluates its part of every
// batch (shard_of) and the figures are summed: every rank returns the whole set's (the model must
// be the same on every rank; a BatchNorm2d without running statistics normalises each rank's
// part with that part's statistics).
EvalResult evaluate(Module& model, const Dataset& data, int64_t batch_size = 250,
                    std::optional<Normalize> normalize = std::nullopt,
                    Communicator* communicator = nullptr);

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
  // Stop when this many epochs in a row bring no better held-out accuracy (0: never).
  int64_t patience = 0;
  // What the per-epoch held-out set is: "test" (the test set) or "validation" (a part held out
  // of the training data; the test set is then left for the end).
  std::string held_out = "test";
  // The share of the training data the command line held out for validation (split_dataset
  // with `seed`); recorded so that a resumed run splits the same way. The Trainer itself is
  // given the datasets.
  double val_split = 0.0;
  // Where the model trains (Trainer moves it there; evaluate() runs where the model is). Not part
  // of to_json(): a run may resume on another device.
  Device device = Device::CPU;
  // Data-parallel training (cnn/dist/communicator.h): every rank runs a Trainer with the same
  // options on the same data; each takes its part of every global batch of batch_size images, and
  // the gradients are summed over the ranks between backward and the optimizer step (weighted by
  // each part's share of the batch), so that each step is the step one process makes on the
  // whole batch, up to the order of the float sums. The figures of each step and evaluation are
  // the whole batch's and set's on every rank. BatchNorm2d keeps statistics per rank, as
  // PyTorch's DistributedDataParallel does; rank 0's buffers are given to every rank before each
  // evaluation. Null: one process. Not part of to_json(): a run may resume on any rank count.
  std::shared_ptr<Communicator> communicator;
  // With several ranks: BatchNorm2d's statistics over the whole global batch (PyTorch's
  // SyncBatchNorm; BatchNorm2d::set_communicator) instead of each rank's part. Part of to_json():
  // it changes the results.
  bool sync_batchnorm = false;

  nlohmann::json to_json() const;
  // The inverse of to_json(); throws naming the field that is missing or of the wrong type.
  static TrainOptions from_json(const nlohmann::json& j);
};

struct EpochRecord {
  int64_t epoch = 0;
  int64_t steps = 0;
  double train_loss = 0, train_accuracy = 0;
  // On the held-out set (TrainOptions::held_out names it: the test set or the validation split).
  double test_loss = 0, test_accuracy = 0;
  std::string held_out = "test";
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
  double step_loss = 0;  // this step's batch
  double lr = 0;
  double images_per_second = 0;
  double elapsed_seconds = 0;  // in this epoch
};

struct TrainCallbacks {
  // After each step (the trainer's state is consistent: save_checkpoint() may be called).
  std::function<void(const StepInfo&)> on_step;
  // After each epoch and its held-out evaluation.
  std::function<void(const EpochRecord&)> on_epoch;
  // Asked before each step: true stops the run there, resumably (fit() returns; stopped() says
  // so; a checkpoint saved then continues from that step).
  std::function<bool()> should_stop;
};

// One optimizer step's figures (Trainer::step).
struct StepResult {
  double loss = 0;      // the batch's mean cross-entropy
  int64_t correct = 0;  // the batch's images the model classified right (before the update)
  int64_t count = 0;    // the batch's images
  double lr = 0;        // the learning rate of the step
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
  // Leaves the model as it was given, but for its weights and its parameters' arena: its
  // BatchNorm2d layers without the communicator and its Dropout layers without the batch split.
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;
  // Runs the epochs (from where a resumed run stopped); returns the history.
  const std::vector<EpochRecord>& fit(const TrainCallbacks& callbacks = {});
  // The next step of the run fit() makes, and only that: the loader's next batch forward, backward
  // and through the optimizer (an epoch is started when none is under way, and one whose last step
  // was taken is finished, with its held-out figures, at the next call). fit() is this in a loop;
  // a caller that paces the steps itself (the explorer's live run) calls it directly, and the
  // steps are the same. Throws once total_steps() are done, and when the loss is not finite
  // (training diverged).
  StepResult step();
  // The base learning rate from the next step on (a schedule scales it); positive.
  void set_lr(double lr);
  // Continues the run a checkpoint of this trainer's model and options stopped: weights and
  // buffers, optimizer state, the global step, history, RNG streams (the default generator's
  // too) and, for a checkpoint saved inside an epoch, the loader's position and the epoch's
  // running sums. With the same threads and kernels the run then ends bit for bit as an
  // uninterrupted one. Throws naming the file when it is not a checkpoint of this model.
  void resume(const std::string& path);
  // Why fit() returned early: should_stop (the run can resume) or patience ran out.
  bool stopped() const { return stopped_; }
  bool stopped_early() const { return stopped_early_; }
  // Inside an epoch: its number and the steps done (0 between epochs).
  int64_t epoch_in_progress() const { return in_epoch_ ? epoch_ : 0; }
  int64_t steps_in_epoch() const { return in_epoch_ ? partial_.steps : 0; }
  int64_t global_step() const { return global_step_; }
  // The epoch with the best held-out accuracy so far (0 before any epoch), the first if tied.
  int64_t best_epoch() const;
  // The plan of fit(): steps in a full epoch, steps in the whole run (options.max_steps caps
  // it), and the epochs that run reaches (fewer than options.epochs when capped).
  int64_t steps_per_epoch() const { return loader_.batches_per_epoch(); }
  int64_t total_steps() const;
  int64_t epochs_to_run() const;
  const std::vector<EpochRecord>& history() const { return history_; }
  Module& model() { return *model_; }
  Optimizer& optimizer() { return *optimizer_; }
  // The run's communicator (local_communicator() for one process).
  Communicator& communicator() const { return *comm_; }
  // evaluate() of the trained model on data with the run's batch size, normalisation and
  // communicator (rank 0's buffers given to every rank first).
  EvalResult evaluate(const Dataset& data);

  // A self-describing checkpoint: the model's description, weights (and buffers), optimizer
  // state, RNG states, epoch, history, options. Written atomically. Throws if a module of the
  // model cannot describe itself (a custom C++ module without config()), and when a weight is
  // not finite (a diverged run: the file on disk is left as it was).
  void save_checkpoint(const std::string& path) const;

 private:
  std::shared_ptr<Module> model_;
  const Dataset& train_;
  const Dataset* test_;
  TrainOptions options_;
  DataLoader loader_;
  // On CUDA without augmentation: the training set on the device (src/data/device_dataset.h).
  std::shared_ptr<const detail::DeviceDataset> device_data_;
  std::unique_ptr<Optimizer> optimizer_;
  std::shared_ptr<Communicator> comm_;
  std::vector<Dropout*> dropouts_;  // the model's, told each step's part of the global batch
  std::vector<BatchNorm2d*> synced_batchnorms_;  // given the communicator (sync_batchnorm)
  std::vector<EpochRecord> history_;
  int64_t global_step_ = 0;
  // The epoch under way: the loader's generator as it was before this epoch's permutation, and
  // the running sums of the steps done.
  struct Partial {
    int64_t steps = 0, seen = 0, correct = 0;
    double loss_sum = 0, seconds = 0;
  };
  bool in_epoch_ = false;
  int64_t epoch_ = 0;
  Generator::State epoch_start_rng_{};
  Partial partial_;
  bool stopped_ = false, stopped_early_ = false;

  Batch batch_;  // the step's; kept so that its buffers are reused

  void start_epoch();
  EpochRecord finish_epoch();
  bool distributed() const { return comm_->size() > 1; }
  // Several ranks: the gradients summed over the ranks, each rank's weighted by its share of the
  // global batch; sums[] (the step's loss sum, correct and count, and 1 where the rank was asked
  // to stop) summed too.
  void exchange(int64_t local_count, int64_t global_count, double sums[4]);
  // fit() on several ranks: this rank was asked to stop; some rank was (known after a step).
  bool stop_asked_ = false, stop_agreed_ = false;
  // Rank 0's buffers (BatchNorm2d's running statistics) on every rank.
  void broadcast_buffers();
  // Throws when the ranks' weights are not the same bits (checked at each epoch's end).
  void check_replicas();
  // The steps the epoch under way runs: fewer in the last epoch of a capped run.
  int64_t steps_this_epoch() const;
};

}  // namespace cnn
