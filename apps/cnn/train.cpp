// cnn train: the tutorial's experiment.
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "cnn/models/registry.h"
#include "cnn/train/trainer.h"
#include "common.h"

namespace cnn::cli {

namespace {

struct TrainArgs {
  std::string model = "tutorial", dataset = "mnist", data_dir, out, json, schedule = "none",
              optimizer = "adam", augment = "none";
  int64_t epochs = 5, batch_size = 64, max_steps = -1, log_every = 100;
  double lr = 1e-3, momentum = 0.9, weight_decay = 0.0;
  uint64_t seed = 0;
  int threads = 0;
  bool normalize = false, quiet = false, overwrite = false;
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

int run_train(const TrainArgs& a) {
  // Everything that can be known wrong before loading data or training is checked first: the
  // model is built (and thrown away) to check its file before the data is read.
  const Augment augment = Augment::parse(a.augment);
  const ModelSource source = find_model(a.model);
  Generator check_gen(0);
  const BuiltModel check = build_model(source.description, check_gen, source.source);
  const std::string out =
      a.out.empty() ? free_checkpoint_path(a.dataset, model_label(source, check.name)) : a.out;
  check_output_file("--out", out);
  refuse_to_replace("--out", out, a.overwrite);
  if (!a.json.empty()) {
    if (std::filesystem::path(a.json).lexically_normal() ==
        std::filesystem::path(out).lexically_normal()) {
      throw Error("--json " + a.json + ": the same file as the checkpoint");
    }
    check_output_file("--json", a.json);
    refuse_to_replace("--json", a.json, a.overwrite);
  }

  set_num_threads(a.threads);
  const std::string dir = data_dir_for(a.dataset, a.data_dir);
  const Dataset train = load_dataset(a.dataset, dir, "train");
  const Dataset test = load_dataset(a.dataset, dir, "test");

  // The input's shape comes from the model, the classes from the data.
  const Shape image_shape = train.image_shape();
  if (check.input != image_shape) {
    throw Error(source.source + ": the model takes inputs of shape " + shape_str(check.input) +
                "; " + a.dataset + "'s images are " + shape_str(image_shape));
  }
  nlohmann::json description = source.description;
  if (a.model == "tutorial") description = tutorial_architecture(train.num_classes);
  const Shape classes = {train.num_classes};
  if (a.model != "tutorial" && check.output != classes) {
    throw Error(source.source + ": the model's output has shape " + shape_str(check.output) + "; " +
                a.dataset + " has " + std::to_string(train.num_classes) +
                " classes (make the last layer's out_features " +
                std::to_string(train.num_classes) + ")");
  }

  manual_seed(a.seed);
  const BuiltModel built = build_model(description, default_generator(), source.source);
  auto model = built.module;
  TrainOptions o;
  o.epochs = a.epochs;
  o.batch_size = a.batch_size;
  o.lr = a.lr;
  o.optimizer = a.optimizer;
  o.momentum = a.momentum;
  o.weight_decay = a.weight_decay;
  o.schedule = a.schedule;
  o.seed = a.seed;
  o.max_steps = a.max_steps;
  if (a.normalize) o.normalize = Normalize{0.1307f, 0.3081f};
  o.augment = augment;
  Trainer trainer(model, train, &test, o);

  const int64_t epochs = trainer.epochs_to_run();
  // Said first, since without --out the name depends on the files already there.
  std::printf("checkpoint: %s\n", out.c_str());
  std::printf(
      "training %s (%s parameters) on %s: %lld train / %lld test images, %s, lr %g, "
      "batch %lld, %s%s%s\n",
      model_label(source, built.name).c_str(), with_commas(built.parameters).c_str(),
      a.dataset.c_str(), (long long)train.count, (long long)test.count, a.optimizer.c_str(), a.lr,
      (long long)a.batch_size, run_length(trainer.total_steps(), trainer.steps_per_epoch()).c_str(),
      a.schedule == "none" ? "" : (", schedule " + a.schedule).c_str(),
      augment.enabled() ? (", augment " + augment.str()).c_str() : "");
  std::fflush(stdout);
  Progress progress(stderr_is_terminal(), a.log_every, a.quiet);
  const auto t0 = std::chrono::steady_clock::now();
  TrainCallbacks cb;
  cb.on_step = [&](const StepInfo& s) { progress.step(s); };
  cb.on_epoch = [&](const EpochRecord& r) {
    progress.end_epoch();
    std::printf(
        "epoch %lld/%lld  train loss %.5f  acc %.4f  |  test loss %.5f  acc %.4f  |  %.1f s, %s "
        "img/s\n",
        (long long)r.epoch, (long long)epochs, r.train_loss, r.train_accuracy, r.test_loss,
        r.test_accuracy, r.seconds, thousands(r.images_per_second).c_str());
    std::fflush(stdout);
    trainer.save_checkpoint(out);
  };
  const auto& history = trainer.fit(cb);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // The Trainer refuses an empty dataset, so an epoch always runs; history.back() is still never
  // reached on an empty history.
  if (history.empty()) throw Error("training ran no epoch: nothing to report");
  const EpochRecord& last = history.back();
  double images = 0, train_seconds = 0;
  for (const auto& r : history) {
    images += r.images_per_second * r.seconds;
    train_seconds += r.seconds;
  }
  std::printf("test accuracy %.4f (%s)  |  wall time %.1f s  |  checkpoint %s\n",
              last.test_accuracy, a.dataset.c_str(), wall, out.c_str());
  if (!a.json.empty()) {
    nlohmann::json j = {{"dataset", a.dataset},
                        {"model", describe_model(*model, built.input)},
                        {"options", o.to_json()},
                        {"epochs", nlohmann::json::array()},
                        {"final_test_accuracy", last.test_accuracy},
                        {"final_test_loss", last.test_loss},
                        {"wall_seconds", wall},
                        {"images_per_second", images / std::max(train_seconds, 1e-9)},
                        {"checkpoint", out}};
    for (const auto& r : history) j["epochs"].push_back(to_json(r));
    write_json(a.json, j);
  }
  return 0;
}

}  // namespace

void add_train_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<TrainArgs>();
  auto* cmd = app.add_subcommand(
      "train",
      "Train a CNN (the tutorial's, or any model file) and save a checkpoint after every epoch");
  cmd->add_option("--model", args->model,
                  "A shipped model (" + join_names(shipped_model_names()) +
                      ") or the path of a model file (JSON; docs/MODELS.md)")
      ->capture_default_str();
  cmd->add_option("--dataset", args->dataset, "Dataset")
      ->check(one_of(dataset_names()))
      ->capture_default_str();
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
  cmd->add_option("--seed", args->seed, "Seed of initialisation, shuffling and dropout")
      ->check(unsigned_integer())
      ->capture_default_str();
  cmd->add_option("--threads", args->threads, "Threads for the kernels (0: all cores)")
      ->check(integer_in(0, 4096));
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
                "Normalise inputs with MNIST's mean and std (0.1307, 0.3081)");
  cmd->add_option(
      "--out", args->out,
      "Checkpoint path (default: checkpoints/<dataset>-<model>.cnnt, or -2, -3, ... when taken)");
  cmd->add_option("--json", args->json, "Write a machine-readable summary here");
  cmd->add_flag("--overwrite", args->overwrite,
                "Replace the files --out and --json name if they exist");
  cmd->add_option("--log-every", args->log_every, "Steps between log lines when not on a terminal")
      ->check(integer_in(1))
      ->capture_default_str();
  cmd->add_flag("--quiet", args->quiet, "No progress, only the per-epoch lines");
  cmd->callback([args, &exit_code] { exit_code = run_train(*args); });
}

}  // namespace cnn::cli
