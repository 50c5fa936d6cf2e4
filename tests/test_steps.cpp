// The step-throughs of the explorer: the tutorial's two figures exactly, and other options
// against the library's ops.
#include <chrono>
#include <functional>
#include <memory>

#include "cnn/explore/api.h"
#include "cnn/limits.h"
#include "testing.h"

namespace cnn::testing {
namespace {

// A pooling geometry as PyTorch's arguments give it (the same padding on both sides).
Pool2dGeometry pool_geometry(Size2 kernel, Size2 stride, Size2 padding, Size2 dilation,
                             bool ceil_mode) {
  Pool2dGeometry g;
  g.kernel = kernel;
  g.stride = stride;
  g.padding = padding;
  g.dilation = dilation;
  g.ceil_mode = ceil_mode;
  return g;
}

TEST(Steps, TutorialConvolutionFigure) {
  const Tensor image = Tensor::from({3, 3}, {9, 3, 5, 6, 2, 3, 7, 4, 6});
  const Tensor kernel = Tensor::from({2, 2}, {1, 0, 1, 1});
  const StepThrough st = conv2d_steps(image, kernel, 1, 0, 1);
  EXPECT_EQ(st.output.to_vector(), (std::vector<float>{17, 8, 17, 12}));
  ASSERT_EQ(st.steps.size(), 4u);
  EXPECT_EQ(st.steps[0].expression, "9 x 1 + 3 x 0 + 6 x 1 + 2 x 1 = 17");
  EXPECT_EQ(st.steps[1].expression, "3 x 1 + 5 x 0 + 2 x 1 + 3 x 1 = 8");
  EXPECT_EQ(st.steps[2].expression, "6 x 1 + 2 x 0 + 7 x 1 + 4 x 1 = 17");
  EXPECT_EQ(st.steps[3].expression, "2 x 1 + 3 x 0 + 4 x 1 + 6 x 1 = 12");
  EXPECT_EQ(st.steps[3].taps[0].row, 1);
  EXPECT_EQ(st.steps[3].taps[0].col, 1);
}

TEST(Steps, TutorialPoolingFigure) {
  const Tensor image = Tensor::from({3, 3}, {3, 7, 0, 1, 2, 6, 9, 3, 4});
  const StepThrough st = maxpool2d_steps(image, pool_geometry(2, 1, 0, 1, false));
  EXPECT_EQ(st.output.to_vector(), (std::vector<float>{7, 7, 9, 6}));
  EXPECT_EQ(st.steps[0].expression, "max(3, 7, 1, 2) = 7");
  EXPECT_EQ(st.steps[0].winner, 1);
  EXPECT_EQ(st.steps[2].winner, 2);
}

TEST(Steps, StridePaddingDilationMatchTheOp) {
  Generator gen(12);
  const Tensor image = randn({7, 6}, gen), kernel = randn({3, 2}, gen);
  const StepThrough st = conv2d_steps(image, kernel, Size2(2, 3), Size2(1, 2), Size2(2, 1));
  const Tensor y = conv2d_forward(
      image.reshape({1, 1, 7, 6}), kernel.reshape({1, 1, 3, 2}), Tensor(),
      conv2d_geometry(Size2(3, 2), Size2(2, 3), Conv2dPadding(Size2(1, 2)), Size2(2, 1), 1));
  EXPECT_EQ(st.output.shape(), (Shape{y.size(2), y.size(3)}));
  for (const Step& s : st.steps) {
    // The multiply-adds written out add up to the op's value.
    double sum = 0;
    for (const StepTap& t : s.taps) {
      EXPECT_EQ(t.padded, t.row < 0 || t.row >= 7 || t.col < 0 || t.col >= 6);
      sum += double(t.input) * t.weight;
    }
    EXPECT_NEAR(sum, s.value, 1e-5);
    EXPECT_EQ(s.value, y[s.out_row * y.size(3) + s.out_col]);
  }
  EXPECT_TRUE(st.steps[0].taps[0].padded);
  EXPECT_EQ(st.steps[0].taps[0].row, -1);
  EXPECT_EQ(st.steps[0].taps[1].col, -1);  // dilation 1 along columns: the next column
  EXPECT_EQ(st.steps[0].taps[2].row, 1);   // dilation 2 along rows
}

TEST(Steps, PoolPaddingIsMinusInfinityAndCeilMode) {
  const Tensor image = Tensor::full({4, 4}, -1.0f);
  const StepThrough st = maxpool2d_steps(image, pool_geometry(2, 3, 1, 1, true));
  EXPECT_EQ(st.output.shape(), (Shape{2, 2}));
  EXPECT_EQ(st.steps[0].expression, "max(-inf, -inf, -inf, -1) = -1");
  for (float v : st.output) EXPECT_EQ(v, -1.0f);
}

TEST(Steps, ImpossibleConfigurationsGiveTheLibrarysError) {
  const Tensor image = Tensor::from({3, 3}, {9, 3, 5, 6, 2, 3, 7, 4, 6});
  expect_error(
      [&] {
        conv2d_steps(image, Tensor({4, 4}), 1, 0, 1);
      },
      {"dilated kernel size (4 x 4)"});
  expect_error([&] { conv2d_steps(image, Tensor({2, 2}), 0, 0, 1); }, {"non-positive stride"});
  expect_error([&] { maxpool2d_steps(image, pool_geometry(2, 1, 2, 1, false)); }, {"at most half"});
  EXPECT_EQ(format_number(0.5f), "0.5");
  EXPECT_EQ(format_number(-1.0f / 3.0f), "-0.3333");
}

// The explorer's API: an option that is not a valid number is refused with a 400 naming the field
// and what was sent, never computed with the default; only an absent option takes the default.
TEST(Steps, ApiRefusesOptionsThatAreNotNumbers) {
  using nlohmann::json;
  const ExplorerApi api(nullptr, json::object());
  const auto refused = [](const std::function<json()>& f) -> std::pair<int, std::string> {
    try {
      f();
    } catch (const ApiError& e) {
      return {e.status, e.what()};
    }
    return {200, ""};
  };
  const json conv = {{"image", {{9, 3, 5}, {6, 2, 3}, {7, 4, 6}}}, {"kernel", {{1, 0}, {1, 1}}}};
  // Absent: the default, stride 1 (the tutorial's figure).
  EXPECT_EQ(api.conv2d_steps(conv)["output"], json::parse("[[17,8],[17,12]]"));
  const std::vector<std::pair<json, std::string>> strides = {
      {"abc", R"('stride' must be an integer or [h, w] pair, got "abc")"},
      {nullptr, "'stride' must be an integer or [h, w] pair, got null"},
      {"2", R"('stride' must be an integer or [h, w] pair, got "2")"},
      {"", R"('stride' must be an integer or [h, w] pair, got "")"},
      {1.5, "'stride' must be an integer or [h, w] pair, got 1.5"},
      {json::array({2, nullptr}), "'stride' must be an integer or [h, w] pair, got [2,null]"},
      {json::array({2}), "'stride' must be an integer or [h, w] pair, got [2]"},
      {true, "'stride' must be an integer or [h, w] pair, got true"},
  };
  for (const auto& [stride, message] : strides) {
    json request = conv;
    request["stride"] = stride;
    const auto [status, what] = refused([&] { return api.conv2d_steps(request); });
    EXPECT_EQ(status, 400) << stride.dump();
    EXPECT_EQ(what, message);
  }
  json cell = conv;
  cell["kernel"] = {{1, "x"}, {1, 1}};
  EXPECT_EQ(
      refused([&] { return api.conv2d_steps(cell); }),
      std::make_pair(400, std::string(R"('kernel' holds a non-number at row 0, column 1: "x")")));

  // Pooling: the kernel has no default, a null stride is not "the kernel".
  json pool = {
      {"image", {{3, 7, 0}, {1, 2, 6}, {9, 3, 4}}}, {"kernel_size", 2}, {"stride", nullptr}};
  EXPECT_EQ(refused([&] { return api.maxpool2d_steps(pool); }).first, 400);
  pool.erase("stride");
  EXPECT_EQ(api.maxpool2d_steps(pool)["output"], json::parse("[[7]]"));  // stride = kernel
  pool["kernel_size"] = "abc";
  EXPECT_EQ(refused([&] { return api.maxpool2d_steps(pool); }),
            std::make_pair(
                400, std::string(R"('kernel_size' must be an integer or [h, w] pair, got "abc")")));

  // The layer stack: the layer is named, as for the library's own errors.
  const auto shapes = [&](const json& layer) {
    return refused([&] {
      return api.shapes({{"input", {1, 28, 28}}, {"layers", {{{"type", "ReLU"}}, layer}}});
    });
  };
  EXPECT_EQ(
      shapes({{"type", "Conv2d"}, {"out_channels", 4}, {"stride", "abc"}}),
      std::make_pair(
          400, std::string(R"(layer 2: 'stride' must be an integer or [h, w] pair, got "abc")")));
  EXPECT_EQ(shapes({{"type", "MaxPool2d"}, {"kernel_size", nullptr}}).first, 400);
  EXPECT_EQ(
      shapes({{"type", "Conv2d"}, {"out_channels", "16,"}}),
      std::make_pair(400, std::string(R"(layer 2: 'out_channels' must be an integer, got "16,")")));
  EXPECT_EQ(shapes({{"type", "Dropout"}, {"p", ""}}),
            std::make_pair(400, std::string(R"(layer 2: 'p' must be a number, got "")")));
  EXPECT_EQ(shapes({{"type", "MaxPool2d"}, {"ceil_mode", 1}}).first, 400);
  EXPECT_EQ(shapes({{"type", "Linear"}}),
            std::make_pair(400, std::string("layer 2: missing field 'out_features'")));
  EXPECT_EQ(shapes({{"type", "Resnet"}}).second.rfind("layer 2: unknown type", 0), 0u);
  // An impossible configuration is still the library's (422), named the same way.
  EXPECT_EQ(shapes({{"type", "Dropout"}, {"p", 2}}).first, 422);
}

// What an API call refuses: its status and message ({200, ""} when it answers).
std::pair<int, std::string> refusal(const std::function<nlohmann::json()>& f) {
  try {
    f();
  } catch (const ApiError& e) {
    return {e.status, e.what()};
  }
  return {200, ""};
}

bool valid_utf8(const std::string& s) {
  try {
    (void)nlohmann::json(s).dump();
    return true;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

// A request body nested 60,000 deep (120 KB) overflowed the stack when its 400 message printed it:
// the depth is refused before parsing, and the message quotes an excerpt.
TEST(Steps, RequestBodiesHaveADepthLimit) {
  const std::string deep = std::string(60000, '[') + std::string(60000, ']');
  for (const std::string& body : {R"({"image": [[1]], "kernel": [[1]], "stride": )" + deep + "}",
                                  R"({"image": [[1, )" + deep + R"(]], "kernel": [[1]]})"}) {
    const auto [status, what] = refusal([&] { return parse_request(body); });
    EXPECT_EQ(status, 400);
    EXPECT_NE(what.find("JSON nested deeper than 64"), std::string::npos) << what;
    EXPECT_LT(what.size(), 300u);
  }
  // As deep as allowed is parsed.
  const int ok = limits::kMaxJsonDepth;
  EXPECT_NO_THROW(parse_request(std::string(ok, '[') + std::string(ok, ']')));
  EXPECT_EQ(refusal([&] {
              return parse_request(std::string(ok + 1, '[') + std::string(ok + 1, ']'));
            }).first,
            400);
}

// Invalid UTF-8 was a 500 (printing the parser's message threw): a 400 whose message is valid
// UTF-8 and short.
TEST(Steps, InvalidUtf8IsA400WithAMessage) {
  for (const std::string& body :
       {std::string("{\"image\": [[1, \"\xff\xfe\"]]}"), std::string("{\"\xc3\x28\": 1}"),
        std::string("\xff"), std::string("{\"stride\": \"\xed\xa0\x80\"}")}) {
    const auto [status, what] = refusal([&] { return parse_request(body); });
    EXPECT_EQ(status, 400) << what;
    EXPECT_NE(what.find("malformed JSON"), std::string::npos) << what;
    EXPECT_TRUE(valid_utf8(what)) << what;
    EXPECT_LT(what.size(), 500u);
  }
}

// An error message quotes a short excerpt of the value, whatever its depth or size, as valid text.
TEST(Steps, ErrorsQuoteAnExcerptOfTheValue) {
  using nlohmann::json;
  const ExplorerApi api(nullptr, json::object());
  json request = {{"image", {{1, 2}}}, {"kernel", {{1}}}};
  json deep = 7;
  for (int i = 0; i < 5000; ++i) deep = json::array({std::move(deep)});
  request["stride"] = deep;
  auto [status, what] = refusal([&] { return api.conv2d_steps(request); });
  EXPECT_EQ(status, 400);
  EXPECT_EQ(what.rfind("'stride' must be an integer or [h, w] pair, got [[[[", 0), 0u) << what;
  EXPECT_LT(what.size(), 200u);
  request["stride"] = std::string(100000, 'x');
  std::tie(status, what) = refusal([&] { return api.conv2d_steps(request); });
  EXPECT_EQ(status, 400);
  EXPECT_LT(what.size(), 200u);
  // Bytes that are not UTF-8 inside a string value (possible through the C++ API).
  request["stride"] = std::string("\xff\xfe");
  std::tie(status, what) = refusal([&] { return api.conv2d_steps(request); });
  EXPECT_EQ(status, 400);
  EXPECT_TRUE(valid_utf8(what)) << what;
  request.erase("stride");
  request["image"] = {{1, {{"a", deep}}}};
  std::tie(status, what) = refusal([&] { return api.conv2d_steps(request); });
  EXPECT_EQ(status, 400);
  EXPECT_LT(what.size(), 200u);
}

// 18446744073709551615 is stored unsigned by nlohmann; read as int64 it was -1, within the range.
TEST(Steps, IntegersBeyondInt64AreRefused) {
  using nlohmann::json;
  const ExplorerApi api(nullptr, json::object());
  for (const char* big : {"18446744073709551615", "9223372036854775808"}) {
    json request = parse_request(std::string(R"({"image": [[1, 2]], "kernel": [[1]], "stride": )") +
                                 big + "}");
    ASSERT_TRUE(request["stride"].is_number_unsigned());
    EXPECT_EQ(refusal([&] { return api.conv2d_steps(request); }),
              std::make_pair(400, std::string("'stride' must be between -8 and 8, got ") + big));
    request["stride"] = json::array({1, request["stride"]});
    EXPECT_EQ(refusal([&] { return api.conv2d_steps(request); }).first, 400);
    json layer = {{"type", "Conv2d"}, {"out_channels", json::parse(big)}};
    EXPECT_EQ(refusal([&] {
                return api.shapes({{"input", {1, 28, 28}}, {"layers", {layer}}});
              }).first,
              400);
    json step = {{"pixels", std::vector<std::vector<int>>(28, std::vector<int>(28, 0))},
                 {"channel", json::parse(big)},
                 {"row", 0},
                 {"col", 0}};
    EXPECT_EQ(refusal([&] { return api.inside_step(step); }),
              std::make_pair(400, std::string("'channel' must be in [0, 16), got ") + big));
  }
}

// The layer stack's shapes are shape arithmetic: the same rows as running the layers, for a stack
// with every option, but nothing is computed.
TEST(Steps, ShapesAreTheLayersShapes) {
  using nlohmann::json;
  const ExplorerApi api(nullptr, json::object());
  const json layers = json::parse(R"([
      {"type": "Conv2d", "out_channels": 5, "kernel_size": [3, 2], "stride": [2, 1],
       "padding": [1, 2], "dilation": [1, 3]},
      {"type": "ReLU"},
      {"type": "MaxPool2d", "kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": true},
      {"type": "Dropout", "p": 0.25},
      {"type": "MaxPool2d", "kernel_size": [2, 1], "dilation": [2, 1]},
      {"type": "Linear", "out_features": 4},
      {"type": "Flatten"},
      {"type": "Linear", "out_features": 10}])");
  const json got = api.shapes({{"input", {3, 29, 23}}, {"layers", layers}});
  Generator gen(0);
  Sequential seq;
  seq.push_back(std::make_shared<Conv2d>(Conv2dOptions(3, 5, Size2(3, 2))
                                             .stride(Size2(2, 1))
                                             .padding(Size2(1, 2))
                                             .dilation(Size2(1, 3)),
                                         gen));
  seq.push_back(std::make_shared<ReLU>());
  seq.push_back(
      std::make_shared<MaxPool2d>(MaxPool2dOptions(3).stride(2).padding(1).ceil_mode(true)));
  seq.push_back(std::make_shared<Dropout>(0.25));
  seq.push_back(std::make_shared<MaxPool2d>(MaxPool2dOptions(Size2(2, 1)).dilation(Size2(2, 1))));
  std::vector<Shape> want;
  seq.trace_leaves({3, 29, 23}, [&](const Module&, const Tensor& y) { want.push_back(y.shape()); });
  const Shape last = want.back();  // (1, 5, H, W): Linear over W, then Flatten, then Linear
  want.push_back({1, last[1], last[2], 4});
  want.push_back({1, last[1] * last[2] * 4});
  want.push_back({1, 10});
  ASSERT_EQ(got["rows"].size(), want.size());
  int64_t total = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    Shape s = want[i];
    s[0] = -1;
    EXPECT_EQ(got["rows"][i]["output_shape"].get<Shape>(), s) << i;
    total += got["rows"][i]["params"].get<int64_t>();
  }
  EXPECT_EQ(got["rows"][0]["layer"],
            "Conv2d(3, 5, kernel_size=(3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 3))");
  EXPECT_EQ(got["rows"][0]["params"], 5 * 3 * 3 * 2 + 5);
  EXPECT_EQ(got["rows"][7]["params"], last[1] * last[2] * 4 * 10 + 10);
  EXPECT_EQ(got["total_params"], total);
}

// 32 MaxPool2d layers over a 1024x256x256 input took 170 s and GBs when the layers were run; and
// a stack whose parameters would not fit is refused by its count before anything is built.
TEST(Steps, ShapesHaveAComputeBudget) {
  using nlohmann::json;
  const ExplorerApi api(nullptr, json::object());
  json pools = json::array();
  for (int i = 0; i < 32; ++i) {
    pools.push_back({{"type", "MaxPool2d"}, {"kernel_size", 9}, {"stride", 1}, {"padding", 4}});
  }
  // Not a benchmark: a bound far above what it takes on any machine (ASan included), far under
  // the minutes it took.
  const auto t0 = std::chrono::steady_clock::now();
  const json got = api.shapes({{"input", {1024, 256, 256}}, {"layers", pools}});
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  EXPECT_EQ(got["rows"][31]["output_shape"], json::parse("[-1, 1024, 256, 256]"));

  const auto shapes = [&](const json& layers) {
    return refusal([&] { return api.shapes({{"input", {1024, 256, 256}}, {"layers", layers}}); });
  };
  const auto [s_conv, conv] =
      shapes(json::parse(R"([{"type": "Conv2d", "out_channels": 1024, "kernel_size": 9}])"));
  EXPECT_EQ(s_conv, 422);
  EXPECT_EQ(
      conv,
      "layer 1: the layers would hold 84935680 parameters; the explorer builds at most 16777216");
  const auto [s_lin, lin] =
      shapes(json::parse(R"([{"type": "Flatten"}, {"type": "Linear", "out_features": 2}])"));
  EXPECT_EQ(s_lin, 422);
  EXPECT_NE(lin.find("layer 2: the layers would hold 134217730 parameters"), std::string::npos)
      << lin;
  // The budget counts the whole stack.
  json convs = json::array();
  for (int i = 0; i < 3; ++i) {
    convs.push_back({{"type", "Conv2d"}, {"out_channels", 1024}, {"kernel_size", 3}});
  }
  EXPECT_EQ(shapes(convs).second.rfind("layer 2: the layers would hold", 0), 0u);
}

// A step-through's size follows from the grid limits; the largest are refused by their count
// of multiply-adds before any is written out.
TEST(Steps, StepThroughsHaveAComputeBudget) {
  using nlohmann::json;
  const ExplorerApi api(nullptr, json::object());
  const auto grid = [](int n) { return std::vector<std::vector<int>>(n, std::vector<int>(n, 1)); };
  const json big = {{"image", grid(32)}, {"kernel", grid(9)}};
  EXPECT_EQ(api.conv2d_steps(big)["steps"].size(), 24u * 24u);  // 46,656 taps
  json padded = big;
  padded["padding"] = 8;
  EXPECT_EQ(refusal([&] { return api.conv2d_steps(padded); }),
            std::make_pair(422, std::string("this step-through would write out 129600 "
                                            "multiply-adds (1600 outputs x 81 taps); the "
                                            "explorer shows at most 65536 (a smaller image, "
                                            "kernel or padding, or a larger stride)")));
  const json pool = {{"image", grid(32)}, {"kernel_size", 9}, {"stride", 1}, {"padding", 4}};
  EXPECT_EQ(refusal([&] { return api.maxpool2d_steps(pool); }).first, 422);
  // An impossible configuration is still the library's error.
  json zero = big;
  zero["stride"] = 0;
  EXPECT_EQ(refusal([&] { return api.conv2d_steps(zero); }).first, 422);
}

// The inside view finds a model's first two convolution stages from its layers alone: here a
// "same" padding, a grouped conv2 whose stage is pooling without ReLU, and a Dropout between.
TEST(Steps, InsideAnyModelsFirstTwoConvolutions) {
  using nlohmann::json;
  Generator gen(3);
  const BuiltModel built = build_model(json::parse(R"({"input": [1, 28, 28], "layers": [
      {"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "padding": "same"},
      {"type": "ReLU"},
      {"type": "MaxPool2d", "kernel_size": 2},
      {"type": "Conv2d", "out_channels": 6, "kernel_size": 3, "groups": 2, "padding": 1},
      {"type": "Dropout", "p": 0.5},
      {"type": "MaxPool2d", "kernel_size": 3, "stride": 2, "padding": 1},
      {"type": "Flatten"},
      {"type": "Linear", "out_features": 3}]})"),
                                       gen);
  built.module->train();  // the explorer runs it in evaluation mode (Dropout the identity)
  const ExplorerApi api(built.module, built.input, json::object());
  json px = json::array();
  for (int r = 0; r < 28; ++r) {
    json row = json::array();
    for (int c = 0; c < 28; ++c) row.push_back(((r * 7 + c * 3) % 11) / 10.0);
    px.push_back(row);
  }
  const json inside = api.inside({{"pixels", px}});
  EXPECT_EQ(inside["conv1"].size(), 4u);
  EXPECT_EQ(inside["conv1"][0].size(), 28u);  // "same"
  EXPECT_EQ(inside["conv1_pooled"][0].size(), 14u);
  ASSERT_EQ(inside["conv2_pooled"].size(), 6u);
  EXPECT_EQ(inside["conv2_pooled"][0].size(), 7u);
  EXPECT_EQ(inside["stages"][1], json::parse(R"(["Conv2d", "Dropout", "MaxPool2d"])"));
  // The stages' maps are the model's own: running its layers one by one gives the same numbers.
  Tensor x({1, 1, 28, 28});
  for (int64_t i = 0; i < 784; ++i) x[i] = px[i / 28][i % 28].get<float>();
  built.module->eval();
  Tensor y = x;
  for (std::size_t i = 0; i < 6; ++i) y = (*built.module)[i].forward(y);
  EXPECT_EQ(inside["conv2_pooled"][5][3][4].get<float>(), y[((5 * 7) + 3) * 7 + 4]);
  for (int c : {0, 2, 3, 5}) {
    for (auto [row, col] : {std::pair{0, 0}, std::pair{3, 4}, std::pair{6, 6}}) {
      const json d = api.inside_step2({{"pixels", px}, {"channel", c}, {"row", row}, {"col", col}});
      EXPECT_FALSE(d["relu"].get<bool>());
      EXPECT_TRUE(d["pooled"].get<bool>());
      EXPECT_EQ(d["pool"]["value"].get<float>(), inside["conv2_pooled"][c][row][col].get<float>());
      EXPECT_EQ(d["pool"]["value"].get<float>(), d["pre_activation"].get<float>());
      // Groups of 2: output channels 0..2 read maps 0 and 1, channels 3..5 maps 2 and 3.
      ASSERT_EQ(d["channels"].size(), 2u);
      EXPECT_EQ(d["channels"][0]["channel"], c < 3 ? 0 : 2);
      EXPECT_EQ(d["channels"][1]["channel"], c < 3 ? 1 : 3);
      EXPECT_NEAR(d["sum"].get<double>(), d["pre_activation"].get<double>(), 1e-5);
    }
  }
  const json step = api.inside_step({{"pixels", px}, {"channel", 3}, {"row", 0}, {"col", 0}});
  // The step-through's value is the op's on one plane; the layer's may round otherwise.
  EXPECT_FLOAT_EQ(step["value"].get<float>(), inside["conv1"][3][0][0].get<float>());
  EXPECT_TRUE(step["taps"][0]["padded"].get<bool>());  // "same" is 1 on each side here
}

// What the inside view cannot show is a 422 saying what it needs and what the model has.
TEST(Steps, InsideSaysWhatItCannotShow) {
  using nlohmann::json;
  const auto api_for = [](const std::string& layers, const std::string& input = "[1, 28, 28]") {
    Generator gen(0);
    const BuiltModel b =
        build_model(json::parse(R"({"input": )" + input + R"(, "layers": )" + layers + "}"), gen);
    return std::make_shared<ExplorerApi>(b.module, b.input, json::object());
  };
  json px = json::array();
  for (int r = 0; r < 28; ++r) px.push_back(std::vector<float>(28, 0.5f));
  const json request = {{"pixels", px}, {"channel", 0}, {"row", 0}, {"col", 0}};

  const auto none = api_for(R"([{"type": "Flatten"}, {"type": "Linear", "out_features": 10}])");
  EXPECT_EQ(refusal([&] { return none->inside(request); }),
            std::make_pair(422, std::string("the inside view shows a model's first two Conv2d "
                                            "layers; this model has none")));

  const auto rgb = api_for(R"([{"type": "Conv2d", "out_channels": 2, "kernel_size": 3},
      {"type": "Conv2d", "out_channels": 2, "kernel_size": 3}, {"type": "Flatten"}])",
                           "[3, 28, 28]");
  for (const auto& f : std::vector<std::function<json()>>{
           [&] { return rgb->inside(request); }, [&] { return rgb->inside_step2(request); }}) {
    EXPECT_EQ(refusal(f), std::make_pair(422, std::string("the inside view puts a 28x28 gray "
                                                          "digit (a drawing or an MNIST image) "
                                                          "into the model; this model takes "
                                                          "inputs of shape (3, 28, 28)")));
  }
  const auto [s_pred, pred] = refusal([&] { return rgb->predict({{"pixels", {{0, 255}}}}); });
  EXPECT_EQ(s_pred, 422);
  EXPECT_NE(pred.find("this model takes inputs of shape (3, 28, 28)"), std::string::npos) << pred;

  // "same" with an even kernel pads one side more: the maps are shown, the step-through is not.
  const auto even = api_for(R"([{"type": "Conv2d", "out_channels": 2, "kernel_size": 2,
      "padding": "same"}, {"type": "Conv2d", "out_channels": 2, "kernel_size": 3}])");
  EXPECT_EQ(even->inside(request)["conv1"][0].size(), 28u);
  EXPECT_EQ(refusal([&] { return even->inside_step(request); }),
            std::make_pair(422, std::string("the step-through pads both sides of the input alike; "
                                            "layer 0 has padding=same, which pads (top, bottom, "
                                            "left, right) = (0, 1, 0, 1)")));

  // conv2's stage pooled before its ReLU: not what the step explains.
  const auto order = api_for(R"([{"type": "Conv2d", "out_channels": 2, "kernel_size": 3},
      {"type": "Conv2d", "out_channels": 2, "kernel_size": 3},
      {"type": "MaxPool2d", "kernel_size": 2}, {"type": "ReLU"}])");
  EXPECT_EQ(order->inside(request)["stages"][1], json::parse(R"(["Conv2d", "MaxPool2d", "ReLU"])"));
  EXPECT_EQ(refusal([&] { return order->inside_step2(request); }),
            std::make_pair(422, std::string("taking a conv2 pixel apart needs layer 1 followed by "
                                            "ReLU "
                                            "and/or MaxPool2d, in that order; this model's second "
                                            "stage is Conv2d, MaxPool2d, ReLU")));
}

// The summary is the model's, for its own input.
TEST(Steps, ModelSummaryForTheModelsInput) {
  using nlohmann::json;
  Generator gen(0);
  const BuiltModel b = build_model(json::parse(R"({"input": [3, 20, 20], "layers": [
      {"type": "Conv2d", "out_channels": 2, "kernel_size": 3}, {"type": "Flatten"}]})"),
                                   gen);
  const json m = ExplorerApi(b.module, b.input, json::object()).model();
  EXPECT_EQ(m["input"], json::parse("[3, 20, 20]"));
  EXPECT_NE(m["summary"].get<std::string>().find("[-1, 2, 18, 18]"), std::string::npos)
      << m["summary"];
  // The input shape a checkpoint's header declares, when none is given.
  const json meta = {{"architecture", describe_model(*b.module, b.input)}};
  EXPECT_EQ(ExplorerApi(b.module, meta).model()["input"], json::parse("[3, 20, 20]"));
}

}  // namespace
}  // namespace cnn::testing
