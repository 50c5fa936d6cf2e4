// cnn train: the tutorial's experiment.
#include <sched.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <map>
#include <thread>

#include "cnn/dist/mpi.h"
#include "cnn/io/checkpoint.h"
#include "cnn/models/registry.h"
#include "cnn/train/trainer.h"
#include "cnn/viz/curves.h"
#include "common.h"

namespace cnn::cli {

namespace {

struct TrainArgs {
  std::string model = "tutorial", dataset = "mnist", data_dir, out, json, schedule = "none",
              optimizer = "adam", augment = "none", resume, init, curves, bad_images = "stop",
              cache_dir, device = "cpu";
  int64_t epochs = 5, batch_size = 64, max_steps = -1, log_every = 100, save_every = 0,
          patience = 0;
  double val_split = 0.0;
  double comm_timeout = 20.0;
  double lr = 1e-3, momentum = 0.9, weight_decay = 0.0;
  uint64_t seed = 0;
  int threads = 0;
  bool normalize = false, quiet = false, overwrite = false, save_best = false,
       sync_batchnorm = false;
};

// checkpoints/mnist-tutorial.cnnt, else the first free of checkpoints/mnist-tutorial-2.cnnt,
// -3, ...: a run without --out never replaces the checkpoint of another.
std::string free_checkpoint_path(const std::string& dataset, const std::string& model) {
  const std::filesystem::path first = "checkpoints/" + dataset + "-" + model + ".cnnt";
  if (!std::filesystem::exists(first)) return first.string();
  for (int n = 2;; ++n) {
    std::filesystem::path p = first;
    p.replace_filename(first.stem().string() + "-" + std::to_string(n) +
                       first.extension().string());
    if (!std::filesystem::exists(p)) return p.string();
  }
}

// An existing file named by the user is replaced only when asked: it may be a long run's result.
void refuse_to_replace(const std::string& option, const std::string& path, bool overwrite) {
  if (!overwrite && std::filesystem::exists(path)) {
    throw Error(option + " " + path + ": the file exists; pass --overwrite to replace it");
  }
}

// "5 epochs", or what a --max-steps run really does: "30 steps (of epoch 1)",
// "1000 steps (1 epoch and 62 steps)".
std::string run_length(int64_t total_steps, int64_t steps_per_epoch) {
  const int64_t full = total_steps / steps_per_epoch, rest = total_steps % steps_per_epoch;
  if (rest == 0) return count_of(full, "epoch", "epochs");
  if (full == 0) return count_of(rest, "step", "steps") + " (of epoch 1)";
  return count_of(total_steps, "step", "steps") + " (" + count_of(full, "epoch", "epochs") +
         " and " + count_of(rest, "step", "steps") + ")";
}

std::string clock_str(double seconds) {
  const auto s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  return buf;
}

// A progress bar redrawn in place on a terminal; plain lines every log_every steps otherwise.
class Progress {
 public:
  Progress(bool tty, int64_t log_every, bool quiet)
      : tty_(tty), log_every_(log_every), quiet_(quiet) {}

  void step(const StepInfo& s) {
    if (quiet_) return;
    const double eta = (s.steps_per_epoch - s.step) * (s.elapsed_seconds / s.step);
    char stats[160];
    std::snprintf(stats, sizeof stats, "loss %.4f  acc %.4f  lr %.2e  %s img/s  eta %s", s.loss,
                  s.accuracy, s.lr, thousands(s.images_per_second).c_str(), clock_str(eta).c_str());
    if (tty_) {
      const auto now = std::chrono::steady_clock::now();
      if (s.step != s.steps_per_epoch && now - last_draw_ < std::chrono::milliseconds(100)) return;
      last_draw_ = now;
      constexpr int kWidth = 24;
      const int filled = static_cast<int>(kWidth * s.step / s.steps_per_epoch);
      std::string bar(static_cast<std::size_t>(filled), '=');
      if (filled < kWidth) {
        bar += '>' + std::string(static_cast<std::size_t>(kWidth - filled - 1), ' ');
      }
      std::fprintf(stderr, "\r\033[Kepoch %lld/%lld [%s] %lld/%lld  %s", (long long)s.epoch,
                   (long long)s.epochs, bar.c_str(), (long long)s.step,
                   (long long)s.steps_per_epoch, stats);
      std::fflush(stderr);
    } else if (s.step % log_every_ == 0 || s.step == s.steps_per_epoch) {
      std::fprintf(stderr, "epoch %lld/%lld  step %lld/%lld  %s\n", (long long)s.epoch,
                   (long long)s.epochs, (long long)s.step, (long long)s.steps_per_epoch, stats);
    }
  }

  void end_epoch() {
    if (tty_ && !quiet_) std::fprintf(stderr, "\r\033[K");
  }

 private:
  bool tty_;
  int64_t log_every_;
  bool quiet_;
  std::chrono::steady_clock::time_point last_draw_{};
};

// The model's name for file names: its "name", else the file's stem, else "model"; only
// letters, digits, '-', '_' and '.'.
std::string model_label(const ModelSource& m, const std::string& name) {
  std::string label = name.empty() ? std::filesystem::path(m.source).stem().string() : name;
  for (char& c : label) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
  }
  return label.empty() ? "model" : label;
}

// The signal that asked the run to stop (0: none). Set by the handler, read between steps.
volatile std::sig_atomic_t g_stop_signal = 0;
extern "C" void request_stop(int sig) { g_stop_signal = sig; }

// SIGINT and SIGTERM ask the run to stop after the current step while it lives; a second one
// ends the process at once (SA_RESETHAND: the checkpoint on disk is always whole, being
// written to a temporary file and renamed).
class StopSignals {
 public:
  StopSignals() {
    struct sigaction sa {};
    sa.sa_handler = request_stop;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  struct sigaction old_int_ {
  }, old_term_{};
};

// Options that shape the run: a resumed run takes them from its checkpoint.
const std::vector<std::string>& run_shaping_options() {
  static const std::vector<std::string> names = {
      "--model",     "--dataset",   "--batch-size",   "--lr",
      "--optimizer", "--momentum",  "--weight-decay", "--schedule",
      "--seed",      "--max-steps", "--normalize",    "--augment",
      "--val-split", "--patience",  "--init",         "--sync-batchnorm"};
  return names;
}

// The dataset's part of a checkpoint's default name: mnist, or an image folder's name.
std::string dataset_label(const std::string& dataset) {
  if (is_idx_dataset(dataset)) return dataset;
  std::filesystem::path p = std::filesystem::absolute(dataset).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  std::string label = p.filename().string();
  for (char& c : label) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
  }
  return label.empty() ? "images" : label;
}

// checkpoints/run.cnnt -> checkpoints/run-best.cnnt, checkpoints/run-curves.png
std::string beside(const std::string& out, const std::string& suffix, const std::string& ext) {
  std::filesystem::path p = out;
  p.replace_filename(p.stem().string() + suffix + (ext.empty() ? p.extension().string() : ext));
  return p.string();
}

// The history as the curves figure draws it.
void write_curves(const std::string& path, const std::vector<EpochRecord>& history,
                  const std::string& held_out) {
  std::vector<CurvePoint> points;
  for (const auto& r : history) {
    CurvePoint p;
    p.epoch = static_cast<double>(r.epoch);
    p.train_loss = r.train_loss;
    p.train_accuracy = r.train_accuracy;
    p.val_loss = r.test_loss;
    p.val_accuracy = r.test_accuracy;
    points.push_back(p);
  }
  CurveOptions o;
  o.held_out_label = held_out;
  write_training_curves(path, points, o);
}

int train_with(const TrainArgs& a, const CLI::App& cmd, const std::shared_ptr<Communicator>& comm);

// Returns once every rank has called it (a sum of nothing).
void wait_for_all(Communicator& comm) {
  double nothing = 0;
  comm.allreduce_sum(&nothing, 1);
}

// The threads a rank uses by default: the cores it may run on, shared with the other ranks on its
// machine when they may all run everywhere (not bound).
int rank_threads() {
  const int machine = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  cpu_set_t set;
  CPU_ZERO(&set);
  const int mine = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : machine;
  return mine < machine ? std::max(1, mine) : std::max(1, machine / launched_local_size());
}

// Under mpirun (or another MPI launcher) with several ranks: MPI's communicator; else one process.
// Each rank reports its own error, naming itself, and ends the whole run (MPI_Abort) so that the
// others do not wait for their timeout.
int run_train(const TrainArgs& a, const CLI::App& cmd) {
  std::shared_ptr<Communicator> comm = local_communicator();
  // A launcher that says how many ranks it started (mpirun, PMI) or only that it started this one
  // (PMIx, as srun --mpi=pmix): MPI says how many there are. A build without MPI refuses several.
  if (launched_by_mpi() && (mpi_built() || launched_world_size() > 1)) {
    comm = mpi_communicator(a.comm_timeout);
  }
  try {
    return train_with(a, cmd, comm);
  } catch (const std::exception& e) {
    if (comm->size() == 1) throw;
    // The communicator's errors name the rank already ("rank 0: ...").
    std::string what = e.what();
    const std::string self = "rank " + std::to_string(comm->rank()) + ": ";
    if (what.rfind(self, 0) == 0) what.erase(0, self.size());
    std::fprintf(stderr, "cnn: error: rank %d of %d: %s\n", comm->rank(), comm->size(),
                 what.c_str());
    std::fflush(stderr);
    comm->abort(1);
    throw;
  }
}

int train_with(const TrainArgs& a, const CLI::App& cmd, const std::shared_ptr<Communicator>& comm) {
  // Rank 0 speaks and writes the files; the other ranks train in silence.
  const bool lead = comm->rank() == 0;
  const auto say = [lead](const char* format, auto... args) {
    if (lead) std::printf(format, args...);
  };
  // From the start: a signal while the data loads stops the run before its first step (on several
  // ranks: after the first, as a stop travels with a step's figures), still with a checkpoint to
  // resume from.
  g_stop_signal = 0;
  StopSignals signals;
  // Everything that can be known wrong before loading data or training is checked first: the
  // model is built (and thrown away) to check its file before the data is read.
  const bool resuming = !a.resume.empty();
  TrainOptions o;
  nlohmann::json description;
  std::map<std::string, Tensor> init_state;  // --init's weights
  std::string label, dataset = a.dataset, source_name, data_dir = a.data_dir;
  Shape input;
  if (resuming) {
    for (const auto& name : run_shaping_options()) {
      if (cmd.count(name) > 0) {
        throw Error(name + ": a resumed run keeps the options of its checkpoint " + a.resume +
                    " (only --epochs may change, to lengthen it)");
      }
    }
    const LoadedModel loaded = load_checkpoint(a.resume);
    try {
      o = TrainOptions::from_json(loaded.meta.at("train_options"));
      dataset = dataset_of(loaded, "");
    } catch (const nlohmann::json::exception& e) {
      throw Error(a.resume +
                  ": cannot resume from it: malformed checkpoint header: " + excerpt(e.what()));
    }
    if (cmd.count("--epochs") > 0) o.epochs = a.epochs;
    // The data where the run found it, unless told otherwise.
    const auto& d = loaded.meta["dataset"];
    if (is_idx_dataset(dataset) && a.data_dir.empty() && d.contains("source") &&
        d["source"].is_string()) {
      data_dir = d["source"].get<std::string>();
    }
    description = loaded.meta["architecture"];
    input = loaded.input;
    source_name = a.resume;
    label = loaded.name.empty() ? "model" : loaded.name;
  } else {
    const Augment augment = Augment::parse(a.augment);
    if (!a.init.empty()) {
      if (cmd.count("--model") > 0) {
        throw Error("--init " + a.init + " brings its own model: --model cannot choose another");
      }
      // Fine-tuning: the model and weights of a checkpoint or of a model from elsewhere.
      const LoadedModel loaded = load_model(a.init);
      description = loaded.meta["architecture"];
      input = loaded.input;
      source_name = a.init;
      label = loaded.name.empty() ? std::filesystem::path(a.init).stem().string() : loaded.name;
      for (auto& [name, t] : loaded.model->state_dict()) init_state[name] = t;
    } else {
      const ModelSource source = find_model(a.model);
      Generator check_gen(0);
      const BuiltModel check = build_model(source.description, check_gen, source.source);
      description = source.description;
      input = check.input;
      source_name = source.source;
      label = model_label(source, check.name);
    }
    o.device = resolve_device(a.device);
    o.epochs = a.epochs;
    o.batch_size = a.batch_size;
    o.lr = a.lr;
    o.optimizer = a.optimizer;
    o.momentum = a.momentum;
    o.weight_decay = a.weight_decay;
    o.schedule = a.schedule;
    o.seed = a.seed;
    o.max_steps = a.max_steps;
    // MNIST's published figures; any other data's are measured below, on the training part.
    if (a.normalize && dataset == "mnist") o.normalize = Normalize{0.1307f, 0.3081f};
    o.augment = augment;
    o.patience = a.patience;
    o.val_split = a.val_split;
    o.sync_batchnorm = a.sync_batchnorm;
    if (a.val_split > 0) o.held_out = "validation";
    if ((a.save_best || a.patience > 0) && a.val_split <= 0) {
      throw Error(std::string(a.save_best ? "--save-best" : "--patience") +
                  " chooses by the held-out accuracy: it needs --val-split (choosing by the "
                  "test set would leak it)");
    }
  }
  const std::string out = !a.out.empty() ? a.out
                          : resuming     ? a.resume
                                         : free_checkpoint_path(dataset_label(dataset), label);
  const std::string best = beside(out, "-best", "");
  const std::string curves = a.curves.empty() ? beside(out, "-curves", ".png") : a.curves;
  if (lead) {
    check_output_file("--out", out);
    // Resuming continues writing its own checkpoint.
    if (!(resuming && out == a.resume)) refuse_to_replace("--out", out, a.overwrite);
    check_output_file("--curves", curves);
    if (a.save_best) refuse_to_replace("--save-best: " + best + ":", best, a.overwrite || resuming);
  }
  if (lead && !a.json.empty()) {
    if (std::filesystem::path(a.json).lexically_normal() ==
        std::filesystem::path(out).lexically_normal()) {
      throw Error("--json " + a.json + ": the same file as the checkpoint");
    }
    check_output_file("--json", a.json);
    refuse_to_replace("--json", a.json, a.overwrite);
  }

  // Ranks on one machine share its cores: by default each takes the cores it is bound to (mpirun
  // binds each rank to a core or a socket by default), or its part of them when unbound.
  set_num_threads(a.threads > 0 || comm->size() == 1 ? a.threads : rank_threads());
  DataOptions data_options{data_dir, a.cache_dir, a.bad_images == "skip"};
  Dataset train = load_split(dataset, "train", input, data_options);
  Dataset test;
  const bool has_test = has_test_split(dataset, data_options);
  if (has_test) {
    test = load_split(dataset, "test", input, data_options, train.class_names);
  } else if (o.val_split <= 0) {
    throw Error(dataset +
                ": no test/ folder beside the class folders: hold out a part of them "
                "for the per-epoch figures with --val-split (e.g. --val-split 0.1)");
  }
  Dataset validation;
  if (o.val_split > 0) std::tie(train, validation) = split_dataset(train, o.val_split, o.seed);
  if (!resuming && a.normalize && !o.normalize) {
    o.normalize = channel_stats(train);
    say("normalising with the training images' mean %s and std %s\n",
        nlohmann::json(o.normalize->mean).dump().c_str(),
        nlohmann::json(o.normalize->std).dump().c_str());
  }

  // The input's shape comes from the model, the classes from the data.
  Generator check_gen(0);
  const BuiltModel check = build_model(description, check_gen, source_name);
  const Shape image_shape = train.image_shape();
  if (check.input != image_shape) {
    throw Error(source_name + ": the model takes inputs of shape " + shape_str(check.input) + "; " +
                dataset + "'s images are " + shape_str(image_shape));
  }
  const bool tutorial = !resuming && a.init.empty() && a.model == "tutorial";
  if (tutorial) description = tutorial_architecture(train.num_classes);
  const Shape classes = {train.num_classes};
  if (!tutorial && check.output != classes) {
    throw Error(source_name + ": the model's output has shape " + shape_str(check.output) + "; " +
                dataset + " has " + std::to_string(train.num_classes) +
                " classes (make the last layer's out_features " +
                std::to_string(train.num_classes) + ")");
  }

  manual_seed(o.seed);
  const BuiltModel built = build_model(description, default_generator(), source_name);
  auto model = built.module;
  if (!init_state.empty()) model->load_state_dict(init_state);
  const Dataset* held_out = o.val_split > 0 ? &validation : &test;
  o.communicator = comm;
  Trainer trainer(model, train, held_out, o);
  if (resuming) trainer.resume(a.resume);

  const int64_t epochs = trainer.epochs_to_run();
  // Said first, since without --out the name depends on the files already there.
  say("checkpoint: %s\n", out.c_str());
  say("training %s (%s parameters) on %s: %lld train / %lld %s images, %s, lr %g, "
      "batch %lld, %s%s%s\n",
      label.c_str(), with_commas(built.parameters).c_str(), dataset.c_str(), (long long)train.count,
      (long long)held_out->count, o.val_split > 0 ? "validation" : "test", o.optimizer.c_str(),
      o.lr, (long long)o.batch_size,
      run_length(trainer.total_steps(), trainer.steps_per_epoch()).c_str(),
      o.schedule == "none" ? "" : (", schedule " + o.schedule).c_str(),
      o.augment.enabled() ? (", augment " + o.augment.str()).c_str() : "");
  if (comm->size() > 1) {
    const Shard least = shard_of(o.batch_size, comm->size() - 1, comm->size());
    say("data-parallel on %d ranks (MPI): %lld to %lld images of each batch per rank, %d "
        "thread(s) each%s\n",
        comm->size(), (long long)least.count,
        (long long)shard_of(o.batch_size, 0, comm->size()).count, num_threads(),
        o.sync_batchnorm ? ", BatchNorm statistics over all ranks" : "");
  }
  if (resuming) {
    say("resuming from %s at step %lld of %lld (epoch %lld%s)\n", a.resume.c_str(),
        (long long)trainer.global_step(), (long long)trainer.total_steps(),
        (long long)(trainer.epoch_in_progress() ? trainer.epoch_in_progress()
                                                : trainer.history().size() + 1),
        trainer.steps_in_epoch() ? (", step " + std::to_string(trainer.steps_in_epoch())).c_str()
                                 : "");
  }
  std::fflush(stdout);
  const std::string held_name = o.val_split > 0 ? "val" : "test";
  Progress progress(stderr_is_terminal(), a.log_every, a.quiet || !lead);
  std::vector<double> step_losses;
  const auto t0 = std::chrono::steady_clock::now();
  TrainCallbacks cb;
  cb.on_step = [&](const StepInfo& s) {
    progress.step(s);
    step_losses.push_back(s.step_loss);
    if (!lead) return;
    if (a.save_every > 0 && trainer.global_step() % a.save_every == 0 &&
        s.step != s.steps_per_epoch) {
      trainer.save_checkpoint(out);
    }
  };
  cb.on_epoch = [&](const EpochRecord& r) {
    progress.end_epoch();
    if (!lead) return;
    std::printf(
        "epoch %lld/%lld  train loss %.5f  acc %.4f  |  %s loss %.5f  acc %.4f  |  %.1f s, %s "
        "img/s\n",
        (long long)r.epoch, (long long)epochs, r.train_loss, r.train_accuracy, held_name.c_str(),
        r.test_loss, r.test_accuracy, r.seconds, thousands(r.images_per_second).c_str());
    std::fflush(stdout);
    trainer.save_checkpoint(out);
    if (a.save_best && trainer.best_epoch() == r.epoch) trainer.save_checkpoint(best);
    write_curves(curves, trainer.history(), o.held_out);
  };
  cb.should_stop = [] { return g_stop_signal != 0; };
  const auto& history = trainer.fit(cb);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  nlohmann::json j = {{"dataset", dataset},        {"model", describe_model(*model, built.input)},
                      {"options", o.to_json()},    {"epochs", nlohmann::json::array()},
                      {"wall_seconds", wall},      {"checkpoint", out},
                      {"curves", curves},          {"ranks", comm->size()},
                      {"step_losses", step_losses}};
  double images = 0, train_seconds = 0;
  for (const auto& r : history) {
    images += r.images_per_second * r.seconds;
    train_seconds += r.seconds;
    j["epochs"].push_back(to_json(r));
  }
  j["images_per_second"] = images / std::max(train_seconds, 1e-9);
  // Which signal stopped the run: this process's, or (on several ranks) another rank's.
  const int stop_signal = g_stop_signal ? static_cast<int>(g_stop_signal) : SIGTERM;
  const std::string stopped_by = g_stop_signal == SIGINT    ? "SIGINT"
                                 : g_stop_signal == SIGTERM ? "SIGTERM"
                                                            : "a signal to another rank";
  if (!lead) {
    // The figures are rank 0's to report; the final test evaluation is shared.
    if (!trainer.stopped() && !history.empty() && o.val_split > 0 && has_test) {
      trainer.evaluate(test);
    }
    if (!trainer.stopped()) return 0;
    // A non-zero exit makes mpirun end the other ranks: not before rank 0 has saved and said so.
    wait_for_all(*comm);
    return 128 + stop_signal;
  }
  if (trainer.stopped()) {
    trainer.save_checkpoint(out);
    j["stopped"] = {{"signal", g_stop_signal ? stopped_by : "another rank's"},
                    {"global_step", trainer.global_step()}};
    if (!a.json.empty()) write_json(a.json, j);
    std::printf("stopped by %s at step %lld of %lld; continue with: cnn train --resume %s\n",
                stopped_by.c_str(), (long long)trainer.global_step(),
                (long long)trainer.total_steps(), out.c_str());
    std::fflush(stdout);
    wait_for_all(*comm);  // the other ranks wait for this before they exit
    return 128 + stop_signal;
  }
  // The Trainer refuses an empty dataset, so an epoch always runs; history.back() is still never
  // reached on an empty history.
  if (history.empty()) throw Error("training ran no epoch: nothing to report");
  if (trainer.stopped_early()) {
    std::printf("stopped early: no better validation accuracy for %lld epochs (best: epoch %lld)\n",
                (long long)o.patience, (long long)trainer.best_epoch());
  }
  const EpochRecord& last = history.back();
  double test_accuracy = last.test_accuracy, test_loss = last.test_loss;
  if (o.val_split > 0 && !has_test) {
    std::printf(
        "no test set (%s has no test/ folder): the figures above are the validation "
        "split's\n",
        dataset.c_str());
    j["final_val_accuracy"] = last.test_accuracy;
    j["best_epoch"] = trainer.best_epoch();
    if (a.save_best) j["best_checkpoint"] = best;
    if (!a.json.empty()) write_json(a.json, j);
    return 0;
  }
  if (o.val_split > 0) {
    // The test set, touched once, at the end.
    const EvalResult e = trainer.evaluate(test);
    test_accuracy = e.accuracy;
    test_loss = e.loss;
    j["final_val_accuracy"] = last.test_accuracy;
    j["best_epoch"] = trainer.best_epoch();
    if (a.save_best) j["best_checkpoint"] = best;
  }
  j["final_test_accuracy"] = test_accuracy;
  j["final_test_loss"] = test_loss;
  std::printf("test accuracy %.4f (%s)  |  wall time %.1f s  |  checkpoint %s\n", test_accuracy,
              dataset.c_str(), wall, out.c_str());
  if (a.save_best) {
    std::printf("best validation accuracy %.4f at epoch %lld: %s\n",
                history[trainer.best_epoch() - 1].test_accuracy, (long long)trainer.best_epoch(),
                best.c_str());
  }
  if (!a.json.empty()) write_json(a.json, j);
  return 0;
}

}  // namespace

void add_train_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<TrainArgs>();
  auto* cmd = app.add_subcommand(
      "train",
      "Train a CNN (the tutorial's, or any model file) and save a checkpoint after every epoch; "
      "under mpirun -np N, data-parallel across N processes (docs/SCALING.md)");
  cmd->add_option("--model", args->model,
                  "A shipped model (" + join_names(shipped_model_names()) +
                      ") or the path of a model file (JSON; docs/MODELS.md)")
      ->capture_default_str();
  cmd->add_option("--dataset", args->dataset,
                  "mnist, fashion-mnist, or an image folder: DIR/<class>/*.png|jpg|bmp, with "
                  "DIR/train and DIR/test, or only class folders (then use --val-split); images "
                  "are resized to the model's input")
      ->check(dataset_choice())
      ->capture_default_str();
  cmd->add_option("--bad-images", args->bad_images,
                  "An image folder's corrupt or unreadable image: stop (naming it) or skip it "
                  "(counted)")
      ->check(one_of({"stop", "skip"}))
      ->capture_default_str();
  cmd->add_option("--cache-dir", args->cache_dir,
                  "Where an image folder's decoded images are kept for later runs (none: no "
                  "cache; default: $XDG_CACHE_HOME/cnn or ~/.cache/cnn)");
  cmd->add_option("--data-dir", args->data_dir,
                  "Directory of the IDX files (default: data/<dataset>)");
  cmd->add_option("--epochs", args->epochs, "Epochs")->check(integer_in(1))->capture_default_str();
  cmd->add_option("--batch-size", args->batch_size, "Batch size")
      ->check(integer_in(1))
      ->capture_default_str();
  cmd->add_option("--lr", args->lr, "Learning rate (the peak rate with a schedule)")
      ->check(positive_number())
      ->capture_default_str();
  cmd->add_option("--optimizer", args->optimizer, "Optimizer")
      ->check(one_of({"adam", "adamw", "sgd"}))
      ->capture_default_str();
  cmd->add_option("--momentum", args->momentum, "SGD momentum")
      ->check(number_in(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--weight-decay", args->weight_decay, "Weight decay")
      ->check(number_in(0.0))
      ->capture_default_str();
  cmd->add_option("--schedule", args->schedule, "Learning-rate schedule, stepped every batch")
      ->check(one_of({"none", "onecycle", "cosine"}))
      ->capture_default_str();
  cmd->add_option(
         "--seed", args->seed,
         "Seed of initialisation, shuffling, dropout, augmentation and the validation split")
      ->check(unsigned_integer())
      ->capture_default_str();
  cmd->add_option("--threads", args->threads, "Threads for the kernels (0: all cores)")
      ->check(integer_in(0, 4096));
  add_device_option(cmd, args->device);
  // Absent: no limit (-1 inside); a user's value must be a real count.
  cmd->add_option("--max-steps", args->max_steps,
                  "Stop after this many steps in total (a short run)")
      ->check(integer_in(1));
  cmd->add_option("--augment", args->augment,
                  "Random changes to each training image, seeded: shift=PIXELS (whole-pixel "
                  "moves, zero fill), rotate=DEGREES (up to, either way), hflip (mirror half; not "
                  "for digits), comma-separated; or none")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            try {
              Augment::parse(text);
              return "";
            } catch (const Error& e) {
              return e.what();
            }
          },
          "SPEC"))
      ->capture_default_str();
  cmd->add_flag("--normalize", args->normalize,
                "Normalise inputs per channel: MNIST's mean and std (0.1307, 0.3081), or for "
                "other data those of its training images");
  cmd->add_option(
      "--out", args->out,
      "Checkpoint path (default: checkpoints/<dataset>-<model>.cnnt, or -2, -3, ... when taken)");
  cmd->add_option("--json", args->json, "Write a machine-readable summary here");
  cmd->add_option("--curves", args->curves,
                  "Where the loss and accuracy curves go, redrawn every epoch (PNG; default: "
                  "beside the checkpoint, <out>-curves.png)");
  cmd->add_flag("--overwrite", args->overwrite,
                "Replace the files --out and --json name if they exist");
  cmd->add_option("--log-every", args->log_every, "Steps between log lines when not on a terminal")
      ->check(integer_in(1))
      ->capture_default_str();
  cmd->add_flag("--quiet", args->quiet, "No progress, only the per-epoch lines");
  cmd->add_option("--val-split", args->val_split,
                  "Hold out this share of the training data (seeded) for the per-epoch figures; "
                  "the test set is then evaluated once, at the end")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            double v = 0;
            // The split keeps at least one image on each side: 0 and 1 are no split.
            if (CLI::detail::lexical_cast(text, v) && v > 0.0 && v < 1.0) return "";
            return "must be a fraction between 0 and 1 (e.g. 0.1), got '" + excerpt(text) + "'";
          },
          "(0, 1)"));
  cmd->add_flag("--save-best", args->save_best,
                "Also keep the checkpoint of the best validation accuracy (<out>-best.cnnt)");
  cmd->add_option("--patience", args->patience,
                  "Stop after this many epochs without a better validation accuracy")
      ->check(integer_in(1));
  cmd->add_option("--save-every", args->save_every,
                  "Also save the checkpoint every N steps inside epochs (resumable from there)")
      ->check(integer_in(1));
  cmd->add_option("--init", args->init,
                  "Start from this model and its weights (fine-tuning): a checkpoint, an ONNX "
                  "file (.onnx) or a TF.js model.json; instead of --model");
  cmd->add_flag("--sync-batchnorm", args->sync_batchnorm,
                "Under mpirun: BatchNorm2d's statistics over the whole global batch (PyTorch's "
                "SyncBatchNorm) instead of each rank's part; CPU only");
  cmd->add_option("--comm-timeout", args->comm_timeout,
                  "Under mpirun: seconds a rank waits for the others at an exchange (the first "
                  "waits at least 600, for the ranks' start) before it names the ranks that did "
                  "not come and ends the run")
      ->check(positive_number())
      ->capture_default_str();
  cmd->add_option("--resume", args->resume,
                  "Continue the run this checkpoint saved, exactly (its options; --epochs may "
                  "lengthen it); writes to it unless --out is given");
  cmd->callback([args, cmd, &exit_code] { exit_code = run_train(*args, *cmd); });
}

}  // namespace cnn::cli
