// The explorer's network view (/api/network) and its drill-down (/api/layer/step) on the shipped
// model files and on models with every pooling option: each layer's maps against running that
// layer's module on the maps before it, each drill-down's arithmetic against the layer's output.
#include <array>
#include <cmath>
#include <functional>
#include <memory>
#include <optional>

#include "cnn/explore/api.h"
#include "cnn/models/registry.h"
#include "cnn/nn/grad_mode.h"
#include "cnn/nn/spec.h"
#include "cnn/ops/argmax.h"
#include "explorer_testing.h"
#include "testing.h"

namespace cnn::testing {
namespace {

using json = nlohmann::json;

struct Model {
  std::shared_ptr<Module> module;
  Shape input;
};

Model shipped(const std::string& name) {
  Generator gen(17);
  BuiltModel b = build_model(shipped_model(name), gen, "models/" + name + ".json");
  return {b.module, b.input};
}

Model described(const std::string& text) {
  Generator gen(5);
  BuiltModel b = build_model(json::parse(text), gen);
  return {b.module, b.input};
}

void leaves_of(const std::shared_ptr<Module>& m, const std::string& path,
               std::vector<std::pair<std::string, std::shared_ptr<Module>>>& out) {
  if (m->children().empty()) {
    out.emplace_back(path, m);
    return;
  }
  for (const auto& [name, child] : m->children()) {
    leaves_of(child, path.empty() ? name : path + "." + name, out);
  }
}

const char* const kShipped[] = {"tutorial", "bn-gap", "rgb-nested", "dilated", "vgg-bn", "lenet5"};

TEST(ExplorerNetwork, EveryLayerIsItsModuleOnTheMapsBefore) {
  for (const char* name : kShipped) {
    SCOPED_TRACE(name);
    const Model m = shipped(name);
    const ExplorerApi api(m.module, m.input, json::object());
    const json pixels = random_pixels(m.input, 3);
    const json r = api.network({{"pixels", pixels}});
    EXPECT_EQ(r["input"].get<Shape>(), m.input);
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> leaves;
    leaves_of(m.module, "", leaves);
    ASSERT_EQ(r["layers"].size(), leaves.size());
    Tensor before = batch_of(pixels, m.input);
    const Tensor x = before;
    NoGradGuard no_grad;
    float lo = INFINITY, hi = -INFINITY;
    for (std::size_t i = 0; i < leaves.size(); ++i) {
      const json& l = r["layers"][i];
      const auto& [path, module] = leaves[i];
      SCOPED_TRACE(path);
      EXPECT_EQ(l["path"], path);
      EXPECT_EQ(l["type"], module->type_name());
      EXPECT_EQ(l["description"], module->config());
      const Shape out = l["output_shape"].get<Shape>();
      Shape want = module->output_shape(before.shape());
      want.erase(want.begin());
      ASSERT_EQ(out, want);
      // Every channel is shown: these models are far below the budget.
      if (out.size() == 3) {
        ASSERT_EQ(l["channels_shown"], out[0]);
      }
      const Tensor got = batch_of(l["maps"], out);
      // The same op on the same input: the same floats.
      const Tensor expected = module->forward(before);
      ASSERT_EQ(got.to_vector(), expected.to_vector());
      const std::vector<float> v = got.to_vector();
      const float mn = *std::min_element(v.begin(), v.end());
      const float mx = *std::max_element(v.begin(), v.end());
      EXPECT_EQ(l["range"]["min"].get<float>(), mn);
      EXPECT_EQ(l["range"]["max"].get<float>(), mx);
      if (out.size() == 3) {
        lo = std::min(lo, mn);
        hi = std::max(hi, mx);
        ASSERT_EQ(l["map_ranges"].size(), static_cast<std::size_t>(out[0]));
        const int64_t plane = out[1] * out[2];
        const int64_t c = out[0] - 1;
        EXPECT_EQ(l["map_ranges"][c]["max"].get<float>(),
                  *std::max_element(v.begin() + c * plane, v.begin() + (c + 1) * plane));
      }
      const bool drill = module->type_name() == "Conv2d" || module->type_name() == "MaxPool2d" ||
                         module->type_name() == "AvgPool2d" ||
                         module->type_name() == "AdaptiveAvgPool2d";
      EXPECT_EQ(l["drill"], drill);
      before = got;
    }
    EXPECT_EQ(r["range"]["min"].get<float>(), lo);
    EXPECT_EQ(r["range"]["max"].get<float>(), hi);
    // The last layer's maps are the model's output, and the head is the library's softmax.
    const Tensor logits = m.module->forward(x);
    EXPECT_EQ(r["logits"].get<std::vector<float>>(), logits.to_vector());
    EXPECT_EQ(r["prediction"], argmax(logits, 1)[0]);
    const auto probs = r["probabilities"].get<std::vector<float>>();
    ASSERT_EQ(probs.size(), static_cast<std::size_t>(logits.numel()));
    double total = 0;
    for (float p : probs) total += p;
    EXPECT_NEAR(total, 1.0, 1e-5);
  }
}

// The positions a drill-down is checked at: each corner (where the padding is), the middle, and
// one off the stride's and dilation's grid, for the first and last channel.
std::vector<std::array<int64_t, 3>> positions(const Shape& out) {
  std::vector<std::array<int64_t, 3>> p;
  for (int64_t c : {int64_t{0}, out[0] - 1}) {
    for (int64_t r : {int64_t{0}, out[1] / 2, out[1] - 1}) {
      for (int64_t col : {int64_t{0}, (out[2] + 1) / 3, out[2] - 1}) p.push_back({c, r, col});
    }
  }
  return p;
}

// Every drill-down of the model at positions(): its "value" is the network view's map there, its
// window reads the maps before, and its total equals the value up to summation order. Returns the
// number of positions checked.
int check_drill_downs(const Model& m, uint64_t seed) {
  const ExplorerApi api(m.module, m.input, json::object());
  const json pixels = random_pixels(m.input, seed);
  const json net = api.network({{"pixels", pixels}});
  int checked = 0;
  json before = pixels;
  for (const json& l : net["layers"]) {
    SCOPED_TRACE(l["path"].get<std::string>());
    const Shape out = l["output_shape"].get<Shape>();
    if (l["drill"] == true) {
      for (const auto& [c, row, col] : positions(out)) {
        SCOPED_TRACE(std::to_string(c) + ", " + std::to_string(row) + ", " + std::to_string(col));
        const json s = api.layer_step(
            {{"pixels", pixels}, {"layer", l["path"]}, {"channel", c}, {"row", row}, {"col", col}});
        const float value = s["value"].get<float>();
        EXPECT_EQ(value, l["maps"][c][row][col].get<float>());
        // The window reads the maps before at rows x cols; padded cells lie outside them.
        const json& rows = s["rows"];
        const json& cols = s["cols"];
        const int64_t H = static_cast<int64_t>(before[0].size());
        const int64_t W = static_cast<int64_t>(before[0][0].size());
        const auto cell = [&](int64_t ch, std::size_t i, std::size_t j) -> std::optional<float> {
          const int64_t y = rows[i], x = cols[j];
          const bool outside = y < 0 || y >= H || x < 0 || x >= W;
          EXPECT_EQ(s["padded"][i][j].get<bool>(), outside);
          if (outside) return std::nullopt;
          return before[ch][y][x].get<float>();
        };
        double total = 0, magnitude = 0;
        if (s["type"] == "Conv2d") {
          const json& b = s["bias"];
          total = b.is_null() ? 0.0 : b.get<double>();
          magnitude = std::fabs(total);
          for (const json& in : s["inputs"]) {
            const int64_t ch = in["channel"];
            double sum = 0;
            for (std::size_t i = 0; i < rows.size(); ++i) {
              for (std::size_t j = 0; j < cols.size(); ++j) {
                const auto v = cell(ch, i, j);
                EXPECT_EQ(in["window"][i][j].get<float>(), v.value_or(0.0f));
                const float product =
                    in["window"][i][j].get<float>() * in["kernel"][i][j].get<float>();
                EXPECT_EQ(in["products"][i][j].get<float>(), product);
                sum += product;
                magnitude += std::fabs(product);
              }
            }
            EXPECT_NEAR(in["sum"].get<double>(), sum, 1e-6 * (1 + std::fabs(sum)));
            total += sum;
          }
        } else {
          for (std::size_t i = 0; i < rows.size(); ++i) {
            for (std::size_t j = 0; j < cols.size(); ++j) {
              const auto v = cell(c, i, j);
              if (s["type"] == "MaxPool2d") {
                if (v) {
                  EXPECT_EQ(s["window"][i][j].get<float>(), *v);
                } else {
                  EXPECT_EQ(s["window"][i][j], "-inf");
                }
              } else {
                EXPECT_EQ(s["window"][i][j].get<float>(), v.value_or(0.0f));
                total += v.value_or(0.0f);
                magnitude += std::fabs(v.value_or(0.0f));
              }
            }
          }
          if (s["type"] == "MaxPool2d") {
            const json& w = s["winner"];
            total =
                s["window"][w["kernel_row"].get<std::size_t>()][w["kernel_col"].get<std::size_t>()]
                    .get<float>();
            // PyTorch's index: the first maximum in the window's row-major order (ReLU's zeros
            // tie often).
            const std::size_t first = w["kernel_row"].get<std::size_t>() * cols.size() +
                                      w["kernel_col"].get<std::size_t>();
            for (std::size_t t = 0; t < first; ++t) {
              const json& v = s["window"][t / cols.size()][t % cols.size()];
              if (v.is_number()) {
                EXPECT_LT(v.get<float>(), total);
              }
            }
          } else {
            EXPECT_NEAR(s["sum"].get<double>(), total, 1e-6 * (1 + magnitude));
            total /= s["divisor"].get<double>();
            magnitude /= s["divisor"].get<double>();
          }
        }
        // The library sums in float in its own order (im2col, blocked kernels): its value and
        // the sum written out differ by a few float roundings of the terms' magnitude.
        const double tol = 1e-5 * (1 + magnitude);
        EXPECT_NEAR(total, value, tol);
        EXPECT_NEAR(s["total"].get<double>(), value, tol);
        ++checked;
      }
    }
    if (out.size() == 3) before = l["maps"];
  }
  return checked;
}

TEST(ExplorerNetwork, DrillDownTotalsAreTheLayersOutputs) {
  for (const char* name : {"tutorial", "bn-gap", "rgb-nested", "dilated", "lenet5"}) {
    SCOPED_TRACE(name);
    EXPECT_GT(check_drill_downs(shipped(name), 11), 0);
  }
}

TEST(ExplorerNetwork, DrillDownsOfEveryPoolingAndPaddingOption) {
  // Asymmetric "same" padding (an even kernel), dilation with stride, groups without bias, and
  // every option of the pools (the ceil_mode AvgPool2d's last window runs past the padded input,
  // so its count_include_pad divisor is clipped).
  const Model m = described(R"({"input": [2, 13, 11], "layers": [
    {"type": "Conv2d", "out_channels": 4, "kernel_size": [4, 2], "padding": "same"},
    {"type": "Conv2d", "out_channels": 6, "kernel_size": 3, "stride": [2, 1], "padding": [2, 1],
     "dilation": [1, 2], "groups": 2, "bias": false},
    {"type": "MaxPool2d", "kernel_size": 3, "stride": 2, "padding": 1, "dilation": [1, 2],
     "ceil_mode": true},
    {"type": "Conv2d", "out_channels": 6, "kernel_size": 1, "padding": "valid"},
    {"type": "AvgPool2d", "kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": true,
     "count_include_pad": false},
    {"type": "AvgPool2d", "kernel_size": 2, "stride": 1, "padding": 1, "divisor_override": 3},
    {"type": "AvgPool2d", "kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": true},
    {"type": "AvgPool2d", "kernel_size": [2, 3], "stride": 1, "padding": [1, 1]},
    {"type": "AdaptiveAvgPool2d", "output_size": [2, 3]},
    {"type": "Flatten"}, {"type": "Linear", "out_features": 3}]})");
  EXPECT_GT(check_drill_downs(m, 23), 100);
}

TEST(ExplorerNetwork, TestImageAsInput) {
  const Model m = shipped("tutorial");
  ExplorerApi api(m.module, m.input, json::object());
  auto test = std::make_shared<Dataset>();
  test->name = "mnist";
  test->count = 2;
  test->rows = test->cols = 28;
  test->num_classes = 10;
  test->labels = {3, 4};
  Generator gen(1);
  for (int i = 0; i < 2 * 28 * 28; ++i)
    test->pixels.push_back(static_cast<uint8_t>(gen.uniform() * 255));
  api.set_test_images(test);
  const json r = api.network({{"test_index", 1}});
  NoGradGuard no_grad;
  EXPECT_EQ(r["logits"].get<std::vector<float>>(),
            m.module->forward(test->image_tensor(1)).to_vector());
  auto [status, what] = refusal([&] { return api.network({{"test_index", 2}}); });
  EXPECT_EQ(status, 400);
  expect_contains(what, {"'test_index'", "[0, 2)", "got 2"});
  // An RGB model cannot take MNIST's images.
  const Model rgb = shipped("rgb-nested");
  ExplorerApi rgb_api(rgb.module, rgb.input, json::object());
  rgb_api.set_test_images(test);
  std::tie(status, what) = refusal([&] { return rgb_api.network({{"test_index", 0}}); });
  EXPECT_EQ(status, 422);
  expect_contains(what, {"(1, 28, 28)", "(3, 32, 32)"});
  std::tie(status, what) = refusal([&] {
    return ExplorerApi(m.module, m.input, json::object()).network({{"test_index", 0}});
  });
  EXPECT_EQ(status, 422);
  expect_contains(what, {"no test images", "--data-dir"});
}

TEST(ExplorerNetwork, RefusesInputsThatAreNotTheModels) {
  const Model m = shipped("rgb-nested");
  const ExplorerApi api(m.module, m.input, json::object());
  auto [status, what] = refusal([&] {
    return api.network({{"pixels", random_pixels({1, 32, 32}, 1)[0]}});
  });
  EXPECT_EQ(status, 400);
  expect_contains(what, {"[3][32][32]", "2-D array of size 32x32"});
  std::tie(status, what) = refusal([&] {
    return api.network({{"pixels", random_pixels({3, 28, 28}, 1)}});
  });
  EXPECT_EQ(status, 400);
  expect_contains(what, {"[3][32][32]", "3x28x28"});
  json too_bright = random_pixels({3, 32, 32}, 1);
  too_bright[2][5][7] = 1.5;
  std::tie(status, what) = refusal([&] { return api.network({{"pixels", too_bright}}); });
  EXPECT_EQ(status, 400);
  expect_contains(what, {"[0, 1]", "channel 2, row 5, column 7 holds 1.5"});
  std::tie(status, what) = refusal([&] { return api.network(json::object()); });
  EXPECT_EQ(status, 400);
  expect_contains(what, {"'pixels'", "'test_index'", "neither"});
  // A one-channel model takes H x W as well as [1][H][W].
  const Model t = shipped("tutorial");
  const ExplorerApi tutorial(t.module, t.input, json::object());
  const json px = random_pixels(t.input, 4);
  EXPECT_EQ(tutorial.network({{"pixels", px}}), tutorial.network({{"pixels", px[0]}}));
}

TEST(ExplorerNetwork, RefusesLayersAndPositionsItCannotTakeApart) {
  const Model m = shipped("tutorial");
  const ExplorerApi api(m.module, m.input, json::object());
  const json px = random_pixels(m.input, 2)[0];
  const auto step = [&](const json& layer, int64_t c, int64_t r, int64_t col) {
    return refusal([&] {
      return api.layer_step(
          {{"pixels", px}, {"layer", layer}, {"channel", c}, {"row", r}, {"col", col}});
    });
  };
  auto [status, what] = step("conv9", 0, 0, 0);
  EXPECT_EQ(status, 400);
  expect_contains(what, {"\"conv9\"", "not a layer", "conv1.0", "conv1.1", "classifier.4"});
  std::tie(status, what) = step("conv1.1", 0, 0, 0);
  EXPECT_EQ(status, 422);
  expect_contains(what, {"layer conv1.1 (ReLU) has no step-through",
                         "the drill-down covers convolution and pooling layers"});
  std::tie(status, what) = step("conv1.0", 16, 0, 0);
  EXPECT_EQ(status, 400);
  expect_contains(what, {"'channel'", "[0, 16)", "conv1.0 (Conv2d)", "got 16"});
  // conv1.0 has no padding: 26 x 26 outputs of a 28 x 28 image.
  std::tie(status, what) = step("conv1.0", 0, 26, 0);
  EXPECT_EQ(status, 400);
  expect_contains(what, {"'row'", "[0, 26)", "got 26"});
  std::tie(status, what) = step("conv1.0", 0, 0, -1);
  EXPECT_EQ(status, 400);
  expect_contains(what, {"'col'", "[0, 26)", "got -1"});
  // More taps than the limit allows: refused before anything is written out.
  ExplorerLimits small;
  small.max_taps = 8;
  const ExplorerApi tight(m.module, m.input, json::object(), small);
  std::tie(status, what) = refusal([&] {
    return tight.layer_step(
        {{"pixels", px}, {"layer", "conv1.0"}, {"channel", 0}, {"row", 0}, {"col", 0}});
  });
  EXPECT_EQ(status, 422);
  expect_contains(what, {"conv1.0 (Conv2d)", "9 taps", "at most 8"});
}

TEST(ExplorerNetwork, BoundsTheMapsAndWritesNonFiniteValues) {
  const Model m = shipped("tutorial");
  // A weight of infinity makes conv1's channel 0 infinite, and NaN where it meets a 0 pixel.
  for (const auto& [name, p] :
       m.module->children().front().second->children().front().second->own_parameters()) {
    if (name == "weight") p->value[0] = INFINITY;
  }
  ExplorerLimits limits;
  limits.max_channels = 4;
  limits.max_map_values = 26 * 26 * 6;
  const ExplorerApi api(m.module, m.input, json::object(), limits);
  const json r = api.network({{"pixels", random_pixels(m.input, 8)}});
  const std::string text = r.dump();  // nlohmann's dump() throws on nothing here
  const json& conv1 = r["layers"][0];
  EXPECT_EQ(conv1["channels_shown"], 4);
  EXPECT_EQ(conv1["maps"].size(), 4u);
  EXPECT_EQ(conv1["map_ranges"].size(), 16u);
  // Inside the image every pixel is positive: +inf; the ranges leave it out.
  EXPECT_EQ(conv1["maps"][0][14][14], "inf");
  EXPECT_TRUE(conv1["map_ranges"][0]["max"].is_null() ||
              std::isfinite(conv1["map_ranges"][0]["max"].get<float>()));
  EXPECT_NE(text.find("\"inf\""), std::string::npos);
  // 6 maps of 26 x 26 fit: conv1's 4, then 2 of the next layer (ReLU), then none.
  EXPECT_EQ(r["layers"][1]["channels_shown"], 2);
  EXPECT_EQ(r["layers"][2]["channels_shown"], 0);
  EXPECT_EQ(r["layers"][2]["map_ranges"].size(), 16u);
}

}  // namespace
}  // namespace cnn::testing
