// Every op against PyTorch 1.13: outputs and input, weight and bias gradients from the fixtures
// that tools/gen_fixtures.py wrote, for every parameter set stored there.
#include <limits>

#include "testing.h"

namespace cnn::testing {
namespace {

using nlohmann::json;

Size2 size2(const json& j) { return Size2(j.at(0).get<int64_t>(), j.at(1).get<int64_t>()); }

Conv2dPadding conv_padding(const json& j) {
  if (j.is_string()) return Conv2dPadding(j.get<std::string>());
  return Conv2dPadding(size2(j));
}

Tensor nan_like(const Shape& shape) {
  return Tensor::full(shape, std::numeric_limits<float>::quiet_NaN());
}

TEST(Golden, Conv2d) {
  const Archive a = read_archive(fixture("conv2d"));
  const auto& cases = a.meta.at("cases");
  ASSERT_GE(cases.size(), 6u);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const std::string k = case_name(static_cast<int>(i));
    SCOPED_TRACE("conv2d case " + std::to_string(i) + ": " + c.dump());
    const Conv2dGeometry g =
        conv2d_geometry(size2(c["kernel"]), size2(c["stride"]), conv_padding(c["padding"]),
                        size2(c["dilation"]), c["groups"].get<int64_t>());
    const bool bias = c["bias"].get<bool>();
    const Tensor& x = a.get(k + "x");
    const Tensor& w = a.get(k + "w");
    const Tensor b = bias ? a.get(k + "b") : Tensor();
    EXPECT_TRUE(all_close(conv2d_forward(x, w, b, g), a.get(k + "y"), kGolden));

    Tensor dx = nan_like(x.shape()), dw(w.shape()), db = bias ? Tensor(b.shape()) : Tensor();
    conv2d_backward(x, w, a.get(k + "dy"), g, &dx, &dw, bias ? &db : nullptr);
    EXPECT_TRUE(all_close(dx, a.get(k + "dx"), kGolden)) << "dx";
    EXPECT_TRUE(all_close(dw, a.get(k + "dw"), kGolden)) << "dw";
    if (bias) {
      EXPECT_TRUE(all_close(db, a.get(k + "db"), kGolden)) << "db";
    }
  }
}

TEST(Golden, Conv2dModuleMatchesOp) {
  // The module path (options, weight loading, cached input) gives the op's numbers.
  const Archive a = read_archive(fixture("conv2d"));
  const auto& c = a.meta.at("cases")[1];
  Conv2d conv(Conv2dOptions(3, 5, 3).stride(2).padding(1));
  ASSERT_EQ(c["stride"], json::array({2, 2}));
  conv.load_state_dict({{"weight", a.get("1/w")}, {"bias", a.get("1/b")}});
  EXPECT_TRUE(all_close(conv.forward(a.get("1/x")), a.get("1/y"), kGolden));
  EXPECT_TRUE(all_close(conv.backward(a.get("1/dy")), a.get("1/dx"), kGolden));
  EXPECT_TRUE(all_close(conv.weight().grad, a.get("1/dw"), kGolden));
  EXPECT_TRUE(all_close(conv.bias()->grad, a.get("1/db"), kGolden));
}

TEST(Golden, MaxPool2d) {
  const Archive a = read_archive(fixture("maxpool2d"));
  const auto& cases = a.meta.at("cases");
  ASSERT_GE(cases.size(), 6u);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const std::string k = case_name(static_cast<int>(i));
    SCOPED_TRACE("maxpool2d case " + std::to_string(i) + ": " + c.dump());
    Pool2dGeometry g;
    g.kernel = size2(c["kernel"]);
    g.stride = size2(c["stride"]);
    g.padding = size2(c["padding"]);
    g.dilation = size2(c["dilation"]);
    g.ceil_mode = c["ceil_mode"].get<bool>();
    Tensor indices;
    EXPECT_TRUE(all_close(maxpool2d_forward(a.get(k + "x"), g, &indices), a.get(k + "y"), kGolden));
    EXPECT_TRUE(all_close(maxpool2d_backward(a.get(k + "x").shape(), a.get(k + "dy"), indices, g),
                          a.get(k + "dx"), kGolden));
  }
}

TEST(Golden, MaxPool2dCeilModeDropsWindowInPadding) {
  // FACTS.md: MaxPool2d(2, stride=3, padding=1, ceil_mode=True) on length 4 gives 2.
  EXPECT_EQ(pool_output_size(4, 2, 1, 3, 1, true), 2);
  EXPECT_EQ(pool_output_size(4, 2, 1, 3, 1, false), 2);
  EXPECT_EQ(pool_output_size(28, 2, 1, 2, 1, false), 15);
  EXPECT_EQ(pool_output_size(26, 2, 1, 2, 1, false), 14);
  EXPECT_EQ(pool_output_size(5, 2, 0, 2, 1, true), 3);
}

TEST(Golden, Linear) {
  const Archive a = read_archive(fixture("linear"));
  const auto& cases = a.meta.at("cases");
  ASSERT_GE(cases.size(), 6u);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const std::string k = case_name(static_cast<int>(i));
    SCOPED_TRACE("linear case " + std::to_string(i));
    const bool bias = cases[i]["bias"].get<bool>();
    const Tensor& x = a.get(k + "x");
    const Tensor& w = a.get(k + "w");
    const Tensor b = bias ? a.get(k + "b") : Tensor();
    EXPECT_TRUE(all_close(linear_forward(x, w, b), a.get(k + "y"), kGolden));
    Tensor dx = nan_like(x.shape()), dw(w.shape()), db = bias ? Tensor(b.shape()) : Tensor();
    linear_backward(x, w, a.get(k + "dy"), &dx, &dw, bias ? &db : nullptr);
    EXPECT_TRUE(all_close(dx, a.get(k + "dx"), kGolden)) << "dx";
    EXPECT_TRUE(all_close(dw, a.get(k + "dw"), kGolden)) << "dw";
    if (bias) {
      EXPECT_TRUE(all_close(db, a.get(k + "db"), kGolden)) << "db";
    }
  }
}

// Runs the cases of an op with one input, one output and an option (a dimension, or a pair).
template <class Forward, class Backward>
void check_unary(const std::string& name, Forward forward, Backward backward) {
  const Archive a = read_archive(fixture(name));
  const auto& cases = a.meta.at("cases");
  ASSERT_GE(cases.size(), 6u);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const std::string k = case_name(static_cast<int>(i));
    SCOPED_TRACE(name + " case " + std::to_string(i) + ": " + cases[i].dump());
    const json& opt = cases[i]["option"];
    const Tensor y = forward(a.get(k + "x"), opt);
    EXPECT_TRUE(all_close(y, a.get(k + "y"), kGolden)) << "y";
    EXPECT_TRUE(
        all_close(backward(a.get(k + "x"), y, a.get(k + "dy"), opt), a.get(k + "dx"), kGolden))
        << "dx";
  }
}

TEST(Golden, ReLU) {
  check_unary(
      "relu", [](const Tensor& x, const json&) { return relu_forward(x); },
      [](const Tensor&, const Tensor& y, const Tensor& dy, const json&) {
        return relu_backward(y, dy);
      });
}

TEST(Golden, Flatten) {
  check_unary(
      "flatten",
      [](const Tensor& x, const json& o) {
        return flatten_forward(x, o[0].get<int64_t>(), o[1].get<int64_t>());
      },
      [](const Tensor& x, const Tensor&, const Tensor& dy, const json&) {
        return dy.reshape(x.shape());
      });
}

TEST(Golden, Softmax) {
  for (const char* name : {"softmax", "softmax_large"}) {
    check_unary(
        name, [](const Tensor& x, const json& d) { return softmax_forward(x, d.get<int64_t>()); },
        [](const Tensor&, const Tensor& y, const Tensor& dy, const json& d) {
          return softmax_backward(y, dy, d.get<int64_t>());
        });
  }
}

TEST(Golden, LogSoftmax) {
  check_unary(
      "log_softmax",
      [](const Tensor& x, const json& d) { return log_softmax_forward(x, d.get<int64_t>()); },
      [](const Tensor&, const Tensor& y, const Tensor& dy, const json& d) {
        return log_softmax_backward(y, dy, d.get<int64_t>());
      });
}

TEST(Golden, Dropout) {
  const Archive a = read_archive(fixture("dropout"));
  const auto& cases = a.meta.at("cases");
  ASSERT_GE(cases.size(), 6u);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const std::string k = case_name(static_cast<int>(i));
    const float p = cases[i]["p"].get<float>();
    SCOPED_TRACE("dropout case " + std::to_string(i) + ", p=" + std::to_string(p));
    const Tensor& mask = a.get(k + "mask");
    EXPECT_TRUE(all_close(dropout_forward(a.get(k + "x"), mask, p), a.get(k + "y"), kGolden));
    EXPECT_TRUE(all_close(dropout_backward(a.get(k + "dy"), mask, p), a.get(k + "dx"), kGolden));
  }
}

TEST(Golden, Argmax) {
  const Archive a = read_archive(fixture("argmax"));
  const auto& cases = a.meta.at("cases");
  ASSERT_GE(cases.size(), 6u);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const std::string k = case_name(static_cast<int>(i));
    SCOPED_TRACE("argmax case " + std::to_string(i));
    EXPECT_EQ(argmax(a.get(k + "x"), cases[i]["dim"].get<int64_t>()),
              to_indices(a.get(k + "indices")));
  }
}

TEST(Golden, CrossEntropy) {
  const Archive a = read_archive(fixture("cross_entropy"));
  const auto& cases = a.meta.at("cases");
  ASSERT_GE(cases.size(), 6u);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const std::string k = case_name(static_cast<int>(i));
    SCOPED_TRACE("cross_entropy case " + std::to_string(i));
    const auto targets = to_indices(a.get(k + "targets"));
    CrossEntropyLoss loss;
    const float value = loss(a.get(k + "logits"), targets);
    const float want = a.get(k + "loss")[0];
    EXPECT_NEAR(value, want, kGolden.atol + kGolden.rtol * std::fabs(want));
    EXPECT_TRUE(all_close(loss.backward(), a.get(k + "dlogits"), kGolden));
  }
}

}  // namespace
}  // namespace cnn::testing
