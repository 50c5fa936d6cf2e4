// The step-throughs of the explorer: the tutorial's two figures exactly, and other options
// against the library's ops.
#include "cnn/explore/api.h"
#include "testing.h"

namespace cnn::testing {
namespace {

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
  const StepThrough st = maxpool2d_steps(image, Pool2dGeometry{2, 1, 0, 1, false});
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
  const StepThrough st = maxpool2d_steps(image, Pool2dGeometry{2, 3, 1, 1, true});
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
  expect_error(
      [&] {
        maxpool2d_steps(image, Pool2dGeometry{2, 1, 2, 1, false});
      },
      {"at most half"});
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

}  // namespace
}  // namespace cnn::testing
