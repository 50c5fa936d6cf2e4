// The explorer's live training run (POST/GET /api/train, cnn/explore/training.h): its steps are the
// trainer's (against Trainer::fit on MNIST), paused, stepped and resumed runs take the same steps
// as one left to run, malformed requests are 400 naming the field, actions the state does not
// allow 409, data that do not fit the model 422; the run's model is viewable between steps, the
// state can be read while it runs, a step that throws fails the run and not the server. Then
// through `cnn serve`: the tutorial's model learns on MNIST, and the options that pick the model
// and the data.
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <numeric>
#include <thread>

#include "cnn/explore/api.h"
#include "cnn/explore/training.h"
#include "cnn/models/registry.h"
#include "cnn/nn/spec.h"
#include "cnn/train/trainer.h"
#include "cnn/viz/image.h"
#include "explorer_testing.h"
#include "run_cli.h"
#include "serve_process.h"
#include "testing.h"

namespace cnn::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

// Random images of `shape` with labels below `classes` (label_of overrides some).
std::shared_ptr<Dataset> synthetic(int64_t count, int64_t classes, const Shape& shape,
                                   uint64_t seed, const std::string& split = "train") {
  auto d = std::make_shared<Dataset>();
  d->name = "synthetic";
  d->split = split;
  d->count = count;
  d->channels = shape[0];
  d->rows = shape[1];
  d->cols = shape[2];
  d->num_classes = classes;
  Generator gen(seed);
  for (int64_t i = 0; i < count * shape_numel(shape); ++i)
    d->pixels.push_back(static_cast<uint8_t>(gen.below(256)));
  for (int64_t i = 0; i < count; ++i) d->labels.push_back(static_cast<uint8_t>(gen.below(classes)));
  return d;
}

std::string mnist_dir() { return std::string(CNN_SOURCE_DIR) + "/data/mnist"; }
bool have_mnist() {
  return std::filesystem::exists(mnist_dir() + "/train-labels-idx1-ubyte.gz") ||
         std::filesystem::exists(mnist_dir() + "/train-labels-idx1-ubyte");
}

// MNIST's splits, read once.
std::shared_ptr<const Dataset> mnist(const std::string& split) {
  static std::map<std::string, std::shared_ptr<const Dataset>> cache;
  auto& d = cache[split];
  if (!d) d = std::make_shared<const Dataset>(load_dataset("mnist", mnist_dir(), split));
  return d;
}

#define REQUIRE_MNIST()                                                    \
  if (!have_mnist())                                                       \
  GTEST_SKIP() << "data/mnist is not fetched (bash scripts/fetch-data.sh " \
                  "mnist)"

// The untrained tutorial model's explorer with these splits.
std::unique_ptr<ExplorerApi> tutorial_api(std::shared_ptr<const Dataset> train,
                                          std::shared_ptr<const Dataset> test = nullptr) {
  auto api = std::make_unique<ExplorerApi>(nullptr, json::object());
  api->set_training_images([train] { return train; });
  if (test) api->set_test_images(test);
  return api;
}

// Polls the state until the run is no longer running (at most `limit`).
json wait_for_end(const ExplorerApi& api, std::chrono::seconds limit = 120s) {
  const auto until = std::chrono::steady_clock::now() + limit;
  json s;
  do {
    s = api.training(json::object());
    if (s["state"] != "running") return s;
    std::this_thread::sleep_for(5ms);
  } while (std::chrono::steady_clock::now() < until);
  ADD_FAILURE() << "the run still runs after " << limit.count() << " s at step " << s["step"];
  return s;
}

std::vector<double> losses(const json& state) {
  std::vector<double> out;
  for (const json& h : state["history"]) out.push_back(h["loss"].get<double>());
  return out;
}

double mean(const std::vector<double>& v, std::size_t from, std::size_t to) {
  return std::accumulate(v.begin() + from, v.begin() + to, 0.0) / static_cast<double>(to - from);
}

// Each step of the run is a step of `cnn train`'s: the run's losses, as the running means
// Trainer::fit reports, equal those of a Trainer fitting the same model (built from the same
// seed) on its own, step for step. A run that re-drew its batches, reused one, or left out the
// update would not.
TEST(ExplorerTraining, StepsAreTheTrainersSteps) {
  REQUIRE_MNIST();
  const auto train = mnist("train");
  auto api = tutorial_api(train);
  const int64_t steps = 40, batch = 32;
  const uint64_t seed = 3;
  api->train(
      {{"action", "start"}, {"steps", steps}, {"batch_size", batch}, {"seed", seed}, {"pace", 0}});
  const json state = wait_for_end(*api);
  ASSERT_EQ(state["state"], "done") << state.value("error", "");
  const std::vector<double> run = losses(state);
  ASSERT_EQ(run.size(), static_cast<std::size_t>(steps));

  // The reference on a thread of its own, as the run's steps are (the kernels' threads are a
  // thread's setting).
  std::vector<double> running_means;
  std::thread([&] {
    Generator gen(seed);
    BuiltModel built = build_model(tutorial_architecture(10), gen);
    TrainOptions o;
    o.epochs = 1;
    o.max_steps = steps;
    o.batch_size = batch;
    o.seed = seed;
    Trainer trainer(built.module, *train, nullptr, o);
    TrainCallbacks cb;
    cb.on_step = [&](const StepInfo& s) { running_means.push_back(s.loss); };
    trainer.fit(cb);
  }).join();
  ASSERT_EQ(running_means.size(), run.size());
  double sum = 0;
  for (std::size_t k = 0; k < run.size(); ++k) {
    sum += run[k] * static_cast<double>(batch);
    EXPECT_DOUBLE_EQ(sum / static_cast<double>(batch * (k + 1)), running_means[k])
        << "step " << k + 1;
  }
  for (const json& h : state["history"]) EXPECT_EQ(h["lr"], 1e-3);
}

// A run left to itself, and the same run stepped, paused, resumed at another pace and viewed
// between its steps: the same losses, step for step (dropout's masks included: the tutorial's
// model has a Dropout).
TEST(ExplorerTraining, PausedSteppedAndResumedRunsTakeTheSameSteps) {
  const auto train = synthetic(200, 10, {1, 28, 28}, 1);
  const json settings = {{"steps", 30}, {"batch_size", 16}, {"optimizer", "sgd"},
                         {"lr", 0.05},  {"seed", 9},        {"pace", 0}};
  auto a = tutorial_api(train);
  json start = settings;
  start["action"] = "start";
  a->train(start);
  const json left = wait_for_end(*a);
  ASSERT_EQ(left["state"], "done") << left.value("error", "");

  auto b = tutorial_api(train, synthetic(20, 10, {1, 28, 28}, 2, "test"));
  json first = settings;
  first["action"] = "step";  // no run yet: a paused one, and its first step
  json s = b->train(first);
  EXPECT_EQ(s["state"], "paused");
  EXPECT_EQ(s["step"], 1);
  for (int i = 0; i < 4; ++i) s = b->train({{"action", "step"}});
  EXPECT_EQ(s["step"], 5);
  EXPECT_EQ(s["history"].size(), 5u);
  b->network({{"test_index", 0}, {"model", "training"}});
  b->train({{"action", "set"}, {"pace", 200}});
  b->train({{"action", "resume"}});
  std::this_thread::sleep_for(40ms);
  s = b->train({{"action", "pause"}});
  EXPECT_EQ(s["state"], "paused");
  const int64_t at = s["step"];
  EXPECT_GT(at, 5);
  EXPECT_LT(at, 30);
  EXPECT_EQ(b->train({{"action", "step"}})["step"], at + 1);
  b->test_image({{"index", 3}, {"model", "training"}});
  b->train({{"action", "set"}, {"pace", 0}});
  b->train({{"action", "resume"}});
  const json stepped = wait_for_end(*b);
  ASSERT_EQ(stepped["state"], "done") << stepped.value("error", "");
  EXPECT_EQ(losses(stepped), losses(left));
  for (std::size_t k = 0; k < stepped["history"].size(); ++k)
    EXPECT_EQ(stepped["history"][k]["step"], k + 1);
  EXPECT_EQ(stepped["filters"], left["filters"]);
}

TEST(ExplorerTraining, MalformedFieldsAre400NamingTheField) {
  auto api = tutorial_api(synthetic(10, 10, {1, 28, 28}, 1));
  const std::vector<std::pair<json, std::vector<std::string>>> cases = {
      {json::object(), {"missing field 'action'"}},
      {{{"action", 3}}, {"'action' must be one of start, pause, resume, step, set or reset"}},
      {{{"action", "go"}}, {"'action'", "got \"go\""}},
      {{{"action", "start"}, {"lr", 0}}, {"'lr'", "(0, 1]", "got 0"}},
      {{{"action", "start"}, {"lr", 1.5}}, {"'lr'", "(0, 1]", "got 1.5"}},
      {{{"action", "start"}, {"lr", "fast"}}, {"'lr'", "got \"fast\""}},
      {{{"action", "start"}, {"lr", nullptr}}, {"'lr'", "got null"}},
      {{{"action", "start"}, {"batch_size", 0}}, {"'batch_size'", "between 1 and 256", "got 0"}},
      {{{"action", "start"}, {"batch_size", 257}}, {"'batch_size'", "between 1 and 256"}},
      {{{"action", "start"}, {"batch_size", 2.5}}, {"'batch_size' must be an integer"}},
      {{{"action", "start"}, {"steps", 0}}, {"'steps'", "between 1 and 1000", "got 0"}},
      {{{"action", "start"}, {"steps", 1001}}, {"'steps'", "between 1 and 1000", "got 1001"}},
      {{{"action", "start"}, {"optimizer", "rmsprop"}}, {"'optimizer'", "\"adam\" or \"sgd\""}},
      {{{"action", "start"}, {"pace", -1}}, {"'pace'", "[0, 1000]", "got -1"}},
      {{{"action", "start"}, {"pace", 1e-12}}, {"'pace'", "0 (as fast as possible)", "0.1"}},
      {{{"action", "set"}, {"pace", 0.05}}, {"'pace'", "between 0.1 and 1000"}},
      {{{"action", "start"}, {"pace", 1e6}}, {"'pace'", "[0, 1000]"}},
      {{{"action", "start"}, {"seed", -1}}, {"'seed'", "got -1"}},
      {{{"action", "start"}, {"batchsize", 8}},
       {"\"batchsize\" is not a field of action 'start'", "batch_size"}},
      {{{"action", "step"}, {"steps", 5000}}, {"'steps'", "between 1 and 1000"}},
      {{{"action", "set"}}, {"action 'set' takes 'lr' or 'pace'"}},
      {{{"action", "set"}, {"lr", -0.1}}, {"'lr'", "(0, 1]"}},
      {{{"action", "set"}, {"batch_size", 8}}, {"\"batch_size\" is not a field of action 'set'"}},
      {{{"action", "pause"}, {"lr", 0.1}},
       {"\"lr\" is not a field of action 'pause'", "takes none"}},
  };
  for (const auto& [request, fragments] : cases) {
    const auto [status, what] = refusal([&] { return api->train(request); });
    EXPECT_EQ(status, 400) << request.dump() << ": " << what;
    expect_contains(what, fragments);
  }
  for (const json& request : {json{{"since", -1}}, json{{"since", "abc"}}, json{{"since", 1.5}}}) {
    const auto [status, what] = refusal([&] { return api->training(request); });
    EXPECT_EQ(status, 400) << request.dump();
    expect_contains(what, {"'since'"});
  }
  // None of them started a run.
  EXPECT_EQ(api->training(json::object())["state"], "none");
}

TEST(ExplorerTraining, ActionsTheStateDoesNotAllowAre409) {
  auto api = tutorial_api(synthetic(64, 10, {1, 28, 28}, 1));
  for (const char* action : {"pause", "resume"}) {
    const auto [status, what] = refusal([&] { return api->train({{"action", action}}); });
    EXPECT_EQ(status, 409) << action;
    expect_contains(what, {"no training run", "start"});
  }
  EXPECT_EQ(refusal([&] { return api->train({{"action", "set"}, {"lr", 0.1}}); }).first, 409);
  json s = api->train({{"action", "start"}, {"steps", 1000}, {"batch_size", 4}, {"pace", 50}});
  EXPECT_EQ(s["state"], "running");
  EXPECT_EQ(s["steps"], 1000);
  auto [status, what] = refusal([&] { return api->train({{"action", "step"}}); });
  EXPECT_EQ(status, 409);
  expect_contains(what, {"running", "pause it first"});
  std::tie(status, what) = refusal([&] { return api->train({{"action", "start"}}); });
  EXPECT_EQ(status, 409);
  expect_contains(what, {"a run is running", "pause or reset"});
  s = api->train({{"action", "pause"}});
  EXPECT_EQ(s["state"], "paused");
  // A step continues the run as it started; lr and pace change by "set", from the next step.
  std::tie(status, what) = refusal([&] { return api->train({{"action", "step"}, {"lr", 0.1}}); });
  EXPECT_EQ(status, 400);
  expect_contains(what, {"'lr'", "set"});
  s = api->train({{"action", "set"}, {"lr", 0.25}});
  EXPECT_EQ(s["lr"], 0.25);
  s = api->train({{"action", "step"}});
  EXPECT_EQ(s["history"].back()["lr"], 0.25);
  // A new pace applies at once: resumed at one step in ten seconds, then set to 1000 a second.
  api->train({{"action", "set"}, {"pace", 0.1}});
  s = api->train({{"action", "resume"}});
  const int64_t slow = s["step"].get<int64_t>();
  std::this_thread::sleep_for(300ms);
  api->train({{"action", "set"}, {"pace", 1000}});
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (api->training(json::object())["step"].get<int64_t>() < slow + 3 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_GE(api->training(json::object())["step"].get<int64_t>(), slow + 3);
  s = api->train({{"action", "pause"}});
  // A paused run is replaced by a new start.
  s = api->train({{"action", "start"}, {"steps", 3}, {"pace", 0}});
  EXPECT_EQ(s["steps"], 3);
  EXPECT_EQ(wait_for_end(*api)["state"], "done");
  std::tie(status, what) = refusal([&] { return api->train({{"action", "step"}}); });
  EXPECT_EQ(status, 409);
  expect_contains(what, {"the run is done (3 of 3 steps)", "start a new one"});
  EXPECT_EQ(refusal([&] { return api->train({{"action", "resume"}}); }).first, 409);
}

// The data must be the model's input and classes; the message says which and what picks others.
TEST(ExplorerTraining, DataThatDoNotFitTheModelAre422) {
  Generator gen(1);
  BuiltModel rgb = build_model(shipped_model("rgb-nested"), gen);
  ExplorerApi api(rgb.module, rgb.input, json::object());
  api.set_training_images([] { return synthetic(10, 10, {1, 28, 28}, 1); });
  auto [status, what] = refusal([&] { return api.train({{"action", "start"}}); });
  EXPECT_EQ(status, 422);
  expect_contains(what, {"(1, 28, 28)", "(3, 32, 32)", "--dataset", "image folder"});
  // The model's outputs are not the data's classes.
  auto three = tutorial_api(synthetic(10, 3, {1, 28, 28}, 1));
  std::tie(status, what) = refusal([&] { return three->train({{"action", "step"}}); });
  EXPECT_EQ(status, 422);
  expect_contains(what, {"(10,)", "3 classes", "out_features 3"});
  // No training images, or none that load.
  ExplorerApi none(nullptr, json::object());
  std::tie(status, what) = refusal([&] { return none.train({{"action", "start"}}); });
  EXPECT_EQ(status, 422);
  expect_contains(what, {"no training images", "--dataset"});
  none.set_training_images([]() -> std::shared_ptr<const Dataset> {
    throw Error("data/nowhere/train-images-idx3-ubyte: no such file");
  });
  std::tie(status, what) = refusal([&] { return none.train({{"action", "start"}}); });
  EXPECT_EQ(status, 422);
  expect_contains(what, {"cannot load the training images", "data/nowhere", "--data-dir"});
  EXPECT_EQ(none.training(json::object())["state"], "none");
}

// "model": "training" shows the run's model between its steps: its maps change as it trains,
// the served model's do not; without a run, 422.
TEST(ExplorerTraining, TheRunsModelIsViewable) {
  auto api = tutorial_api(synthetic(64, 10, {1, 28, 28}, 1), synthetic(5, 10, {1, 28, 28}, 2));
  const json view = {{"test_index", 2}, {"model", "training"}};
  auto [status, what] = refusal([&] { return api->network(view); });
  EXPECT_EQ(status, 422);
  EXPECT_EQ(what, "no training run: start one with POST /api/train");
  EXPECT_EQ(refusal([&] {
              return api->test_image({{"index", 0}, {"model", "training"}});
            }).first,
            422);
  std::tie(status, what) = refusal([&] { return api->network({{"test_index", 2}, {"model", 1}}); });
  EXPECT_EQ(status, 400);
  expect_contains(what, {"'model'", "\"training\""});

  api->train({{"action", "step"}, {"lr", 0.01}, {"batch_size", 8}});
  const json before = api->network(view);
  const json served_before = api->network({{"test_index", 2}});
  const json step = api->layer_step({{"test_index", 2},
                                     {"model", "training"},
                                     {"layer", "conv1.0"},
                                     {"channel", 3},
                                     {"row", 5},
                                     {"col", 6}});
  EXPECT_EQ(step["value"], before["layers"][0]["maps"][3][5][6]);
  for (int i = 0; i < 5; ++i) api->train({{"action", "step"}});
  const json after = api->network(view);
  EXPECT_NE(after["layers"][0]["maps"], before["layers"][0]["maps"]);
  EXPECT_NE(after["logits"], before["logits"]);
  EXPECT_EQ(api->network({{"test_index", 2}})["logits"], served_before["logits"]);
  // The gradients of the run's model are its own, not the served model's; taking them leaves
  // the run's steps as they were (each step zeroes the gradients first).
  const json g = api->gradient({{"test_index", 2}, {"model", "training"}, {"class", 1}});
  const json served_g = api->gradient({{"test_index", 2}, {"class", 1}});
  EXPECT_EQ(g["objective"], after["logits"][1]);
  EXPECT_NE(g["input_gradient"], served_g["input_gradient"]);
  const json dw = api->dw_step({{"test_index", 2},
                                {"model", "training"},
                                {"layer", "conv1.0"},
                                {"out_channel", 3},
                                {"in_channel", 0},
                                {"row", 1},
                                {"col", 2}});
  // The written-out sum against the library's dw: float32 against double summation, within
  // 1e-5 of the terms' magnitude.
  double magnitude = 0;
  for (const json& row : dw["products"]) {
    for (const json& v : row) magnitude += std::abs(v.get<double>());
  }
  EXPECT_NEAR(dw["total"].get<double>(), dw["value"].get<double>(), 1e-5 * (1 + magnitude));
  // The state's filters are the model's first convolution's weights.
  const json s = api->training(json::object());
  EXPECT_EQ(s["filters"]["layer"], "conv1.0");
  EXPECT_EQ(s["filters"]["shape"], json::parse("[16, 1, 3, 3]"));
  const json image = api->test_image({{"index", 2}, {"model", "training"}});
  EXPECT_EQ(image["probs"], after["probabilities"]);
  expect_contains(s["model"].get<std::string>(), {"Conv2d(1, 16, kernel_size=(3, 3)"});
}

TEST(ExplorerTraining, ResetDropsTheRun) {
  auto api = tutorial_api(synthetic(64, 10, {1, 28, 28}, 1));
  api->train({{"action", "start"}, {"pace", 100}});
  const json s = api->train({{"action", "reset"}});
  EXPECT_EQ(s["state"], "none");
  EXPECT_EQ(s["history"], json::array());
  EXPECT_EQ(api->training(json::object())["state"], "none");
  EXPECT_EQ(refusal([&] {
              return api->network(
                  {{"pixels", std::vector<std::vector<float>>(28, std::vector<float>(28, 0.5f))},
                   {"model", "training"}});
            }).first,
            422);
  EXPECT_EQ(api->train({{"action", "reset"}})["state"], "none");  // nothing to drop: as it was
  EXPECT_EQ(api->train({{"action", "start"}, {"steps", 2}, {"pace", 0}})["state"], "running");
  EXPECT_EQ(wait_for_end(*api)["step"], 2);
}

// The state and the run's model read from several threads while the run trains flat out: every
// answer is whole (its history the steps after `since`, in order), and the run ends as it would.
// Dropping the explorer while a run trains stops the run's thread.
TEST(ExplorerTraining, ReadingWhileRunningIsSafe) {
  auto api = tutorial_api(synthetic(64, 10, {1, 28, 28}, 1), synthetic(8, 10, {1, 28, 28}, 2));
  api->train({{"action", "start"}, {"steps", 120}, {"batch_size", 4}, {"pace", 0}});
  std::atomic<bool> done{false};
  std::atomic<int> reads{0}, views{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      int64_t since = 0, last_step = 0;
      while (!done) {
        const json s = api->training({{"since", since}});
        const int64_t step = s["step"];
        EXPECT_GE(step, last_step);
        last_step = step;
        int64_t expect = since + 1;
        for (const json& h : s["history"]) EXPECT_EQ(h["step"], expect++);
        EXPECT_EQ(expect - 1, step);
        since = t == 0 ? step : 0;  // one reader polls as the page does, the others read it all
        ++reads;
        if (t == 2) {
          const json n = api->network({{"test_index", 1}, {"model", "training"}});
          EXPECT_EQ(n["layers"].size(), 11u);
          ++views;
        }
        if (s["state"] != "running") done = true;
      }
    });
  }
  for (auto& r : readers) r.join();
  const json s = api->training(json::object());
  EXPECT_EQ(s["state"], "done") << s.value("error", "");
  EXPECT_EQ(s["history"].size(), 120u);
  EXPECT_EQ(s["evals"].size(), 3u);  // steps 50, 100 and the last
  EXPECT_GT(reads, 3);
  EXPECT_GT(views, 0);

  api->train({{"action", "start"}, {"steps", 1000}, {"batch_size", 64}, {"pace", 0}});
  const auto t0 = std::chrono::steady_clock::now();
  api.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

// A step that throws (a label beyond the model's classes, as a corrupt file could hold) ends the
// run "failed" with the message; the explorer goes on answering.
TEST(ExplorerTraining, AStepThatThrowsFailsTheRun) {
  auto bad = synthetic(16, 10, {1, 28, 28}, 1);
  for (auto& l : bad->labels) l = 12;
  auto api = tutorial_api(bad);
  api->train({{"action", "start"}, {"pace", 0}});
  const json s = wait_for_end(*api);
  EXPECT_EQ(s["state"], "failed");
  expect_contains(s.value("error", ""), {"target 12"});
  EXPECT_EQ(s["step"], 0);
  const auto [status, what] = refusal([&] { return api->train({{"action", "step"}}); });
  EXPECT_EQ(status, 409);
  expect_contains(what, {"the run failed", "target 12"});
  EXPECT_EQ(api->train({{"action", "reset"}})["state"], "none");
}

// /api/test-image gives any input shape: H x W for one channel (the page's digits), [C][H][W]
// otherwise, with "shape"; test images that are not the model's input are refused.
TEST(ExplorerTraining, TestImagesOfAnyShape) {
  auto gray = tutorial_api(nullptr, synthetic(3, 10, {1, 28, 28}, 1, "test"));
  json t = gray->test_image({{"index", 1}});
  EXPECT_EQ(t["shape"], json::parse("[1, 28, 28]"));
  EXPECT_EQ(t["pixels"].size(), 28u);
  EXPECT_EQ(t["pixels"][0].size(), 28u);
  EXPECT_TRUE(t["pixels"][0][0].is_number());

  Generator gen(4);
  BuiltModel rgb = build_model(json::parse(R"({"input": [3, 8, 6], "layers": [
      {"type": "Conv2d", "out_channels": 4, "kernel_size": 3}, {"type": "ReLU"},
      {"type": "Flatten"}, {"type": "Linear", "out_features": 5}]})"),
                               gen);
  ExplorerApi api(rgb.module, rgb.input, json::object());
  const auto test = synthetic(4, 5, {3, 8, 6}, 2, "test");
  api.set_test_images(test);
  t = api.test_image({{"index", 3}});
  EXPECT_EQ(t["shape"], json::parse("[3, 8, 6]"));
  ASSERT_EQ(t["pixels"].size(), 3u);
  EXPECT_EQ(t["pixels"][2].size(), 8u);
  EXPECT_EQ(t["pixels"][2][7].size(), 6u);
  EXPECT_FLOAT_EQ(t["pixels"][2][7][5].get<float>(), test->pixels.back() / 255.0f);
  EXPECT_EQ(t["probs"].size(), 5u);
  EXPECT_EQ(t["label"], test->labels[3]);

  gray->set_test_images(test);
  const auto [status, what] = refusal([&] { return gray->test_image({{"index", 0}}); });
  EXPECT_EQ(status, 422);
  expect_contains(what, {"(3, 8, 6)", "(1, 28, 28)"});
}

// What the state shows is bounded: the first convolution's filters at most 64 x 16 (the whole
// weight's shape beside them), one history entry per step, an evaluation every 50 steps and one
// after the last.
TEST(ExplorerTraining, TheStateIsBounded) {
  Generator gen(2);
  BuiltModel wide = build_model(json::parse(R"({"input": [20, 5, 5], "layers": [
      {"type": "Conv2d", "out_channels": 70, "kernel_size": 3}, {"type": "ReLU"},
      {"type": "Flatten"}, {"type": "Linear", "out_features": 3}]})"),
                                gen);
  ExplorerApi api(wide.module, wide.input, json::object());
  api.set_training_images([] { return synthetic(40, 3, {20, 5, 5}, 1); });
  api.set_test_images(synthetic(900, 3, {20, 5, 5}, 2, "test"));
  api.train({{"action", "start"}, {"steps", 60}, {"batch_size", 8}, {"pace", 0}});
  const json s = wait_for_end(api);
  ASSERT_EQ(s["state"], "done") << s.value("error", "");
  EXPECT_EQ(s["filters"]["layer"], "0");
  EXPECT_EQ(s["filters"]["shape"], json::parse("[70, 20, 3, 3]"));
  EXPECT_EQ(s["filters"]["weights"].size(), 64u);
  EXPECT_EQ(s["filters"]["weights"][63].size(), 16u);
  EXPECT_EQ(s["filters"]["weights"][63][15].size(), 3u);
  EXPECT_EQ(s["history"].size(), 60u);
  ASSERT_EQ(s["evals"].size(), 2u);
  EXPECT_EQ(s["evals"][0]["step"], 50);
  EXPECT_EQ(s["evals"][1]["step"], 60);
  // 500 of the 900 test images: accuracies are multiples of 1/500.
  const double correct = s["evals"][1]["accuracy"].get<double>() * 500;
  EXPECT_NEAR(correct, std::round(correct), 1e-9);
  EXPECT_EQ(api.training({{"since", 58}})["history"].size(), 2u);
  EXPECT_EQ(api.training({{"since", 600}})["history"].size(), 0u);
}

// Through `cnn serve`: the tutorial's untrained model trains on MNIST, 100 steps flat out, and
// learns (its last 20 losses below its first 20; its held-out accuracy far above chance); the
// page's calls (a poll with since, a view of the run's model) answer meanwhile.
TEST(ServeTraining, TheTutorialLearnsOnMnist) {
  REQUIRE_MNIST();
  ServeProcess server({"--data-dir", mnist_dir()});
  httplib::Client client(server.host(), server.port());
  const auto post = [&](const std::string& path, const json& body) {
    auto res = client.Post(path.c_str(), body.dump(), "application/json");
    return res ? std::pair<int, json>{res->status, json::parse(res->body)}
               : std::pair<int, json>{0, json()};
  };
  auto [status, s] = post("/api/train", {{"action", "start"}, {"steps", 100}, {"pace", 0}});
  ASSERT_EQ(status, 200) << s.dump();
  EXPECT_EQ(s["batch_size"], 32);
  EXPECT_EQ(s["optimizer"], "adam");
  json history = json::array();
  int64_t since = 0;
  const auto until = std::chrono::steady_clock::now() + 120s;
  std::string state = "running";
  while (state == "running" && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(100ms);
    auto res = client.Get(("/api/train?since=" + std::to_string(since)).c_str());
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    const json g = json::parse(res->body);
    for (const json& h : g["history"]) history.push_back(h);
    since = g["step"];
    state = g["state"];
    const auto [vs, view] = post("/api/network", {{"test_index", 7}, {"model", "training"}});
    EXPECT_EQ(vs, 200) << view.dump();
  }
  ASSERT_EQ(state, "done");
  ASSERT_EQ(history.size(), 100u);
  std::vector<double> loss;
  for (std::size_t k = 0; k < history.size(); ++k) {
    EXPECT_EQ(history[k]["step"], k + 1);
    loss.push_back(history[k]["loss"].get<double>());
  }
  EXPECT_LT(mean(loss, 80, 100), mean(loss, 0, 20));
  auto res = client.Get("/api/train");
  ASSERT_TRUE(res);
  const json end = json::parse(res->body);
  ASSERT_EQ(end["evals"].size(), 2u);
  // 0.77 here; the same run on one fixed batch reached 0.54.
  EXPECT_GT(end["evals"][1]["accuracy"].get<double>(), 0.7) << end["evals"].dump();
  std::tie(status, s) = post("/api/train", {{"action", "start"}, {"lr", 3}});
  EXPECT_EQ(status, 400);
  EXPECT_EQ(s["error"], "'lr' must be a number in (0, 1], got 3");
  std::tie(status, s) = post("/api/train", {{"action", "reset"}});
  EXPECT_EQ(status, 200);
  std::tie(status, s) = post("/api/network", {{"test_index", 7}, {"model", "training"}});
  EXPECT_EQ(status, 422);
  res = client.Get("/api/train?since=x");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_TRUE(server.alive());
}

// --model and --seed pick the untrained model (--weights excludes both); a model whose input is
// not the data's gets a 422 for test images and training alike; --dataset DIR serves an image
// folder's RGB images as [C][H][W] and trains on it.
TEST(ServeTraining, ModelAndDatasetOptions) {
  const Result both = run_cli("serve --port 0 --model lenet5 --weights x.cnnt", "timeout 10 ");
  EXPECT_NE(both.code, 0);
  expect_contains(both.out, {"--model", "--weights", "cannot be given together"});

  const std::filesystem::path dir = fresh_test_dir("cnn_serve_training");
  Generator gen(5);
  for (const char* split : {"train", "test"}) {
    for (const char* cls : {"red", "green"}) {
      std::filesystem::create_directories(dir / "images" / split / cls);
      for (int i = 0; i < 6; ++i) {
        RgbImage img(10, 12);
        for (int64_t y = 0; y < 12; ++y) {
          for (int64_t x = 0; x < 10; ++x) {
            const auto v = static_cast<uint8_t>(gen.below(100));
            img.set(x, y,
                    cls[0] == 'r' ? std::array<uint8_t, 3>{255, v, v}
                                  : std::array<uint8_t, 3>{v, 255, v});
          }
        }
        write_png((dir / "images" / split / cls / (std::to_string(i) + ".png")).string(), img);
      }
    }
  }
  const std::string model = (dir / "small.json").string();
  std::ofstream(model) << R"({"input": [3, 8, 8], "layers": [
      {"type": "Conv2d", "out_channels": 4, "kernel_size": 3}, {"type": "ReLU"},
      {"type": "Flatten"}, {"type": "Linear", "out_features": 2}]})";
  // The folder's decoded images are cached under $XDG_CACHE_HOME: here, not in the user's.
  const char* old_cache = std::getenv("XDG_CACHE_HOME");
  const std::string saved = old_cache ? old_cache : "";
  setenv("XDG_CACHE_HOME", (dir / "cache").c_str(), 1);
  {
    ServeProcess server({"--model", model, "--seed", "4", "--dataset", (dir / "images").string()});
    httplib::Client client(server.host(), server.port());
    auto res = client.Post("/api/test-image", R"({"index": 7})", "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    const json t = json::parse(res->body);
    EXPECT_EQ(t["shape"], json::parse("[3, 8, 8]"));
    EXPECT_EQ(t["pixels"].size(), 3u);
    res = client.Post("/api/train", R"({"action": "start", "steps": 20, "batch_size": 4,
        "pace": 0})",
                      "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    json s;
    for (int i = 0; i < 200 && (s.empty() || s["state"] == "running"); ++i) {
      std::this_thread::sleep_for(20ms);
      s = json::parse(client.Get("/api/train")->body);
    }
    EXPECT_EQ(s["state"], "done") << s.dump();
    EXPECT_EQ(s["evals"].size(), 1u);  // after the last step; 12 test images
  }
  if (have_mnist()) {
    ServeProcess server({"--model", "rgb-nested", "--data-dir", mnist_dir()});
    httplib::Client client(server.host(), server.port());
    for (const auto& [path, body] :
         {std::pair<const char*, const char*>{"/api/test-image", R"({"index": 0})"},
          {"/api/train", R"({"action": "start"})"}}) {
      auto res = client.Post(path, body, "application/json");
      ASSERT_TRUE(res);
      EXPECT_EQ(res->status, 422) << path;
      expect_contains(json::parse(res->body)["error"].get<std::string>(),
                      {"(1, 28, 28)", "(3, 32, 32)"});
    }
  }
  old_cache ? setenv("XDG_CACHE_HOME", saved.c_str(), 1) : unsetenv("XDG_CACHE_HOME");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cnn::testing
