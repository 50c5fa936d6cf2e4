// Resuming a run exactly (Trainer::resume, `cnn train --resume`), stopping it cleanly (SIGINT,
// SIGTERM) and surviving SIGKILL, and the validation options (--val-split, --save-best,
// --patience). Exactness is bit for bit: the interrupted and the uninterrupted run execute the
// same kernels on the same threads in the same order, so no tolerance is needed or given.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "bars_dataset.h"
#include "cnn/data/idx.h"
#include "cnn/io/checkpoint.h"
#include "cnn/nn/spec.h"
#include "cnn/train/trainer.h"
#include "run_cli.h"
#include "testing.h"

namespace cnn::testing {
namespace {

namespace fs = std::filesystem;

// Everything that can go wrong on resume has state here: BatchNorm's running statistics,
// dropout's draws from the default generator, the optimizer's moments.
nlohmann::json small_model() {
  return nlohmann::json::parse(R"({"input": [1, 10, 10], "layers": [
    {"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1},
    {"type": "BatchNorm2d"}, {"type": "ReLU"}, {"type": "MaxPool2d", "kernel_size": 2},
    {"type": "Flatten"}, {"type": "Dropout", "p": 0.3}, {"type": "Linear", "out_features": 4}]})");
}

TrainOptions options(const std::string& optimizer) {
  TrainOptions o;
  o.epochs = 3;
  o.batch_size = 16;  // 100 images: 7 steps an epoch, the last one short
  o.lr = 3e-3;
  o.optimizer = optimizer;
  o.schedule = "onecycle";
  o.seed = 4;
  o.augment = Augment::parse("shift=1,rotate=5");
  return o;
}

std::vector<float> weights(Module& m) {
  std::vector<float> all;
  for (const auto& [name, t] : m.state_dict()) all.insert(all.end(), t.begin(), t.end());
  return all;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

struct Outcome {
  std::vector<float> weights;
  std::vector<EpochRecord> history;
};

Outcome uninterrupted(const std::string& optimizer, const Dataset& train, const Dataset& test) {
  const TrainOptions o = options(optimizer);
  manual_seed(o.seed);
  const BuiltModel m = build_model(small_model(), default_generator());
  Trainer t(m.module, train, &test, o);
  t.fit();
  return {weights(*m.module), t.history()};
}

// Stops before each step in `stops` (global step numbers), saves, and continues in a new
// trainer with a new model (built from another seed: resume must bring everything back).
Outcome interrupted(const std::string& optimizer, const Dataset& train, const Dataset& test,
                    const std::vector<int64_t>& stops, const std::string& path) {
  const TrainOptions o = options(optimizer);
  std::shared_ptr<Module> model;
  std::unique_ptr<Trainer> t;
  for (std::size_t leg = 0; leg <= stops.size(); ++leg) {
    manual_seed(leg == 0 ? o.seed : 1000 + leg);
    model = build_model(small_model(), default_generator()).module;
    t = std::make_unique<Trainer>(model, train, &test, o);
    if (leg > 0) t->resume(path);
    TrainCallbacks cb;
    if (leg < stops.size()) {
      const int64_t stop_at = stops[leg];
      cb.should_stop = [&t, stop_at] { return t->global_step() == stop_at; };
    }
    t->fit(cb);
    if (leg < stops.size()) {
      EXPECT_TRUE(t->stopped()) << "leg " << leg;
      t->save_checkpoint(path);
    } else {
      EXPECT_FALSE(t->stopped());
    }
  }
  return {weights(*model), t->history()};
}

void expect_same_history(const std::vector<EpochRecord>& a, const std::vector<EpochRecord>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].epoch, b[i].epoch);
    EXPECT_EQ(a[i].steps, b[i].steps);
    EXPECT_EQ(a[i].train_loss, b[i].train_loss) << "epoch " << i + 1;
    EXPECT_EQ(a[i].train_accuracy, b[i].train_accuracy);
    EXPECT_EQ(a[i].test_loss, b[i].test_loss);
    EXPECT_EQ(a[i].test_accuracy, b[i].test_accuracy);
  }
}

struct Resume : ::testing::Test {
  fs::path dir;
  void SetUp() override { dir = fresh_test_dir("cnn_resume"); }
  void TearDown() override { fs::remove_all(dir); }
};

// Stops at the first step, inside epochs, on an epoch's boundary (7: before epoch 2's first
// step) and twice in one epoch; each time a new process's worth of objects resumes.
TEST_F(Resume, StoppedAndResumedRunsEndBitForBitAsUninterruptedOnes) {
  const Dataset train = bars(100, 10, 1), test = bars(30, 10, 2);
  for (const std::string optimizer : {"adam", "sgd"}) {
    SCOPED_TRACE(optimizer);
    const Outcome whole = uninterrupted(optimizer, train, test);
    const Outcome pieces = interrupted(optimizer, train, test, {0, 3, 7, 9, 10, 20},
                                       (dir / ("run-" + optimizer + ".cnnt")).string());
    EXPECT_TRUE(same_bits(whole.weights, pieces.weights));
    expect_same_history(whole.history, pieces.history);
    // And the runs did learn: the comparison is not of two untouched models.
    EXPECT_GT(whole.history.back().train_accuracy, 0.5);
  }
}

TEST_F(Resume, ACheckpointOfAnotherModelOrRunIsRefused) {
  const Dataset train = bars(100, 10, 1), test = bars(30, 10, 2);
  const std::string path = (dir / "run.cnnt").string();
  {
    manual_seed(0);
    const BuiltModel m = build_model(small_model(), default_generator());
    Trainer t(m.module, train, &test, options("adam"));
    TrainCallbacks cb;
    cb.should_stop = [&t] { return t.global_step() == 2; };
    t.fit(cb);
    t.save_checkpoint(path);
  }
  nlohmann::json other = small_model();
  other["layers"][0]["out_channels"] = 5;
  const BuiltModel m = build_model(other, default_generator());
  Trainer t(m.module, train, &test, options("adam"));
  expect_error([&] { t.resume(path); }, {path, "cannot resume from it", "another model"});
  const BuiltModel same = build_model(small_model(), default_generator());
  Trainer sgd(same.module, train, &test, options("sgd"));
  expect_error([&] { sgd.resume(path); }, {path, "its optimizer is adam"});
  expect_error([&] { t.resume((dir / "none.cnnt").string()); }, {"none.cnnt"});
}

TEST_F(Resume, PatienceStopsWhenTheHeldOutAccuracyStopsImproving) {
  const Dataset train = bars(100, 10, 1), test = bars(30, 10, 2);
  TrainOptions o = options("adam");
  o.epochs = 40;
  o.patience = 2;
  manual_seed(0);
  const BuiltModel m = build_model(small_model(), default_generator());
  Trainer t(m.module, train, &test, o);
  const auto& h = t.fit();
  ASSERT_TRUE(t.stopped_early());
  ASSERT_LT(h.size(), 40u);
  // The last `patience` epochs brought nothing better than the best before them.
  const int64_t best = t.best_epoch();
  EXPECT_EQ(static_cast<int64_t>(h.size()) - best, 2);
  for (std::size_t i = best; i < h.size(); ++i) {
    EXPECT_LE(h[i].test_accuracy, h[best - 1].test_accuracy);
  }
}

TEST(SplitDataset, HoldsOutASeededShareKeepingOrder) {
  const Dataset d = bars(100, 10, 3);
  const auto [train, val] = split_dataset(d, 0.2, 9);
  EXPECT_EQ(train.count, 80);
  EXPECT_EQ(val.count, 20);
  EXPECT_EQ(val.split, "validation");
  EXPECT_EQ(train.pixels.size(), 80u * 100);
  // Every image lands in exactly one part: count each picture's bytes.
  std::multiset<std::vector<uint8_t>> all, parts;
  auto add = [](std::multiset<std::vector<uint8_t>>& set, const Dataset& x) {
    for (int64_t i = 0; i < x.count; ++i) {
      std::vector<uint8_t> img(x.image(i), x.image(i) + 100);
      img.push_back(x.labels[i]);
      set.insert(img);
    }
  };
  add(all, d);
  add(parts, train);
  add(parts, val);
  EXPECT_EQ(all, parts);
  // Seeded: the same seed, the same split; another, another.
  EXPECT_EQ(split_dataset(d, 0.2, 9).second.pixels, val.pixels);
  EXPECT_NE(split_dataset(d, 0.2, 10).second.pixels, val.pixels);
  expect_error([&] { split_dataset(d, 1.0, 0); }, {"between 0 and 1"});
}

// ---- the command line ----

struct ResumeCli : Resume {
  std::string data;
  void SetUp() override {
    Resume::SetUp();
    data = (dir / "data").string();
    fs::create_directories(data);
    for (const auto& [prefix, n] : {std::pair<std::string, int64_t>{"train", 240}, {"t10k", 60}}) {
      const Dataset d = bars(n, 28, prefix == "train" ? 5 : 6);
      IdxImages img{n, 28, 28, d.pixels};
      write_idx_images(data + "/" + prefix + "-images-idx3-ubyte", img);
      write_idx_labels(data + "/" + prefix + "-labels-idx1-ubyte", d.labels);
    }
  }
  std::string train_args(const std::string& out, int epochs = 4) const {
    // One thread: the same kernels and order in every process, whatever the machine.
    return "train --data-dir " + data + " --epochs " + std::to_string(epochs) +
           " --batch-size 16 --threads 1 --quiet " +
           "--seed 3 --augment shift=1 --schedule onecycle --out " + out;
  }
};

std::vector<float> checkpoint_weights(const std::string& path) {
  return weights(*load_checkpoint(path).model);
}

// Starts `cnn ARGS` (stdout and stderr to log) as a child process of its own.
pid_t spawn(const std::string& args, const std::string& log) {
  const std::string cmd = "exec " + std::string(CNN_BINARY) + " " + args + " > " + log + " 2>&1";
  const pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

std::string slurp_file(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Issue 12's check: killed at 20 random moments (SIGINT at some), resumed each time, the final
// weights equal an uninterrupted run's bit for bit, every checkpoint on disk loads, and no
// temporary file is left.
TEST_F(ResumeCli, KilledAtRandomMomentsAndResumedEndsAsAnUninterruptedRun) {
  // 40 epochs of 15 steps: a few seconds, long enough for 20 kills to land inside it.
  const int epochs = 40;
  const std::string whole = (dir / "whole.cnnt").string();
  const Result r = run_cli(train_args(whole, epochs));
  ASSERT_EQ(r.code, 0) << r.out;

  const std::string out = (dir / "pieces.cnnt").string();
  std::mt19937 rng(12);  // the moments are random but the same in every run of the test
  std::uniform_int_distribution<int> delay_ms(0, 150);
  int resumed = 0, interrupted_cleanly = 0;
  for (int kill_no = 0; kill_no < 20; ++kill_no) {
    const bool have = fs::exists(out);
    const std::string args = have ? "train --resume " + out + " --threads 1 --quiet --save-every 1"
                                  : train_args(out, epochs) + " --save-every 1";
    resumed += have;
    const std::string log = (dir / ("leg" + std::to_string(kill_no) + ".log")).string();
    const auto before = have ? fs::last_write_time(out) : fs::file_time_type::min();
    const pid_t pid = spawn(args, log);
    // The moment is random once the run has saved a step: a slow start (a sanitizer build, a
    // busy machine) would otherwise swallow every kill before training begins.
    int status = 0;
    bool exited = false;
    for (int waited = 0; waited < 60000; waited += 2) {
      std::error_code ec;
      if (fs::exists(out, ec) && fs::last_write_time(out, ec) != before && !ec) break;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        exited = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ASSERT_FALSE(exited) << "leg " << kill_no << " ended before saving a step:\n"
                         << slurp_file(log);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    const bool gentle = kill_no % 4 == 3;
    kill(pid, gentle ? SIGINT : SIGKILL);
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) break;  // it finished first
    if (gentle && WIFEXITED(status)) {
      EXPECT_EQ(WEXITSTATUS(status), 130) << slurp_file(log);
      EXPECT_NE(slurp_file(log).find("continue with: cnn train --resume " + out), std::string::npos)
          << slurp_file(log);
      ++interrupted_cleanly;
    }
    // Whatever was on disk is whole: the checkpoint and any temporary the kill left.
    if (fs::exists(out)) {
      EXPECT_NO_THROW(load_checkpoint(out)) << "after kill " << kill_no;
    }
    if (fs::exists(out + ".tmp")) {
      EXPECT_NO_THROW(load_checkpoint(out + ".tmp"));
    }
  }
  const Result last = run_cli(fs::exists(out) ? "train --resume " + out + " --threads 1 --quiet"
                                              : train_args(out, epochs));
  ASSERT_EQ(last.code, 0) << last.out;
  EXPECT_GE(resumed, 15);
  EXPECT_GE(interrupted_cleanly, 3);
  EXPECT_TRUE(same_bits(checkpoint_weights(whole), checkpoint_weights(out)));
  const LoadedModel a = load_checkpoint(whole), b = load_checkpoint(out);
  EXPECT_EQ(a.meta["history"].size(), b.meta["history"].size());
  for (std::size_t i = 0; i < a.meta["history"].size(); ++i) {
    EXPECT_EQ(a.meta["history"][i]["train_loss"], b.meta["history"][i]["train_loss"]);
    EXPECT_EQ(a.meta["history"][i]["test_accuracy"], b.meta["history"][i]["test_accuracy"]);
  }
  for (const auto& e : fs::directory_iterator(dir)) {
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << e.path();
  }
}

// A run that diverges stops with a clear message and leaves the last good checkpoint alone.
TEST_F(ResumeCli, ADivergedRunKeepsTheLastGoodCheckpoint) {
  const std::string out = (dir / "diverged.cnnt").string();
  const Result r = run_cli(train_args(out) + " --optimizer sgd --lr 1e9 --save-every 1");
  EXPECT_EQ(r.code, 1) << r.out;
  expect_contains(r.out, {"training diverged"});
  // Step 1 starts from finite weights, so at least its checkpoint was written.
  ASSERT_TRUE(fs::exists(out)) << r.out;
  for (float v : checkpoint_weights(out)) ASSERT_TRUE(std::isfinite(v));
}

TEST_F(ResumeCli, ResumeRefusesNewRunOptions) {
  const std::string out = (dir / "run.cnnt").string();
  ASSERT_EQ(run_cli(train_args(out) + " --max-steps 3").code, 0);
  const Result r = run_cli("train --resume " + out + " --lr 0.1");
  EXPECT_EQ(r.code, 1) << r.out;
  expect_contains(r.out, {"--lr: a resumed run keeps the options of its checkpoint", out});
}

TEST_F(ResumeCli, ValidationSplitSaveBestAndPatience) {
  const std::string out = (dir / "val.cnnt").string(), json = (dir / "val.json").string();
  const Result r =
      run_cli(train_args(out, 30) + " --val-split 0.25 --save-best --patience 2 --json " + json);
  ASSERT_EQ(r.code, 0) << r.out;
  expect_contains(r.out,
                  {"180 train / 60 validation images", "val loss", "best validation accuracy"});
  const auto j = nlohmann::json::parse(slurp_file(json));
  const auto& epochs = j["epochs"];
  ASSERT_LT(epochs.size(), 30u) << "patience 2 should have stopped it";
  // The best checkpoint holds the epoch of the best validation accuracy (the first if tied).
  std::size_t best = 0;
  for (std::size_t i = 0; i < epochs.size(); ++i) {
    EXPECT_EQ(epochs[i]["held_out"], "validation");
    if (epochs[i]["test_accuracy"].get<double>() > epochs[best]["test_accuracy"].get<double>())
      best = i;
  }
  EXPECT_EQ(j["best_epoch"], best + 1);
  EXPECT_EQ(load_checkpoint(out + "").meta["epoch"], epochs.size());
  const LoadedModel b = load_checkpoint((dir / "val-best.cnnt").string());
  EXPECT_EQ(b.meta["epoch"], best + 1);
  // The test set was evaluated once, at the end: its figure is in the summary, and no epoch's.
  EXPECT_TRUE(j.contains("final_test_accuracy"));
  const Result whole = run_cli(train_args((dir / "y.cnnt").string()) + " --val-split 1");
  EXPECT_EQ(whole.code, 2);
  expect_contains(whole.out, {"--val-split must be a fraction between 0 and 1"});
  expect_contains(run_cli(train_args((dir / "x.cnnt").string()) + " --save-best").out,
                  {"--save-best", "needs --val-split"});
}

}  // namespace
}  // namespace cnn::testing
