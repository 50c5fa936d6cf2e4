// Finite-difference gradient checks for every op with a backward pass, each with a random
// upstream gradient (never all ones: that would hide a backward that ignores dy).
#include <optional>

#include "testing.h"

namespace cnn::testing {
namespace {

struct GradCheck : ::testing::Test {
  Generator gen{1234};
  Tensor randn(const Shape& s) { return testing::randn(s, gen); }
};

TEST_F(GradCheck, Conv2dAllOptions) {
  struct Spec {
    Shape x;
    int64_t c_out;
    Size2 k, s;
    Conv2dPadding p;
    Size2 d;
    int64_t groups;
  };
  const std::vector<Spec> specs = {
      {{2, 2, 7, 6}, 3, 3, 1, 0, 1, 1},
      {{1, 4, 9, 8}, 4, Size2(3, 2), Size2(2, 3), Size2(1, 2), 2, 2},
      {{2, 3, 8, 9}, 3, Size2(2, 3), 1, "same", Size2(2, 1), 3},
  };
  for (const auto& sp : specs) {
    const Conv2dGeometry g = conv2d_geometry(sp.k, sp.s, sp.p, sp.d, sp.groups);
    Tensor x = randn(sp.x), w = randn({sp.c_out, sp.x[1] / sp.groups, sp.k.h, sp.k.w});
    Tensor b = randn({sp.c_out});
    const Tensor dy = randn(conv2d_output_shape(x.shape(), w.shape(), g));
    Tensor dx, dw(w.shape()), db(b.shape());
    conv2d_backward(x, w, dy, g, &dx, &dw, &db);
    auto f = [&] { return conv2d_forward(x, w, b, g); };
    // conv2d is linear in each argument: central differences are exact up to rounding.
    EXPECT_TRUE(gradcheck(f, x, dx, dy, 0.1)) << "dx";
    EXPECT_TRUE(gradcheck(f, w, dw, dy, 0.1)) << "dw";
    EXPECT_TRUE(gradcheck(f, b, db, dy, 0.1)) << "db";
  }
}

TEST_F(GradCheck, Linear) {
  Tensor x = randn({5, 3, 7}), w = randn({4, 7}), b = randn({4});
  const Tensor dy = randn({5, 3, 4});
  Tensor dx, dw(w.shape()), db(b.shape());
  linear_backward(x, w, dy, &dx, &dw, &db);
  auto f = [&] { return linear_forward(x, w, b); };
  EXPECT_TRUE(gradcheck(f, x, dx, dy, 0.1));
  EXPECT_TRUE(gradcheck(f, w, dw, dy, 0.1));
  EXPECT_TRUE(gradcheck(f, b, db, dy, 0.1));
}

TEST_F(GradCheck, MaxPool2d) {
  Pool2dGeometry g{3, 2, 1, Size2(1, 2), true};
  Tensor x = randn({2, 3, 9, 8});
  Tensor idx;
  const Tensor y = maxpool2d_forward(x, g, &idx);
  const Tensor dy = randn(y.shape());
  const Tensor dx = maxpool2d_backward(x.shape(), dy, idx, g);
  // A small step, so that no window changes its winner.
  EXPECT_TRUE(gradcheck([&] { return maxpool2d_forward(x, g); }, x, dx, dy, 1e-3));
}

TEST_F(GradCheck, ReLU) {
  Tensor x = randn({3, 4, 5});
  for (float& v : x) v += v >= 0 ? 0.1f : -0.1f;  // away from the kink at 0
  const Tensor dy = randn(x.shape());
  const Tensor dx = relu_backward(relu_forward(x), dy);
  EXPECT_TRUE(gradcheck([&] { return relu_forward(x); }, x, dx, dy, 1e-2));
}

TEST_F(GradCheck, Dropout) {
  Tensor x = randn({6, 7});
  const Tensor mask = dropout_mask(x.shape(), 0.4f, gen);
  const Tensor dy = randn(x.shape());
  const Tensor dx = dropout_backward(dy, mask, 0.4f);
  EXPECT_TRUE(gradcheck([&] { return dropout_forward(x, mask, 0.4f); }, x, dx, dy, 0.1));
}

TEST_F(GradCheck, SoftmaxAndLogSoftmax) {
  for (int64_t dim : {0, 1, -1}) {
    Tensor x = randn({3, 5, 4});
    const Tensor dy = randn(x.shape());
    const Tensor dx = softmax_backward(softmax_forward(x, dim), dy, dim);
    EXPECT_TRUE(gradcheck([&] { return softmax_forward(x, dim); }, x, dx, dy, 1e-3)) << dim;
    const Tensor dlx = log_softmax_backward(log_softmax_forward(x, dim), dy, dim);
    EXPECT_TRUE(gradcheck([&] { return log_softmax_forward(x, dim); }, x, dlx, dy, 1e-3)) << dim;
  }
}

TEST_F(GradCheck, CrossEntropy) {
  Tensor logits = randn({6, 10});
  const std::vector<int64_t> targets = {3, 0, 9, 9, 1, 5};
  const Tensor dlogits =
      cross_entropy_backward(cross_entropy_forward(logits, targets).log_probs, targets);
  const Tensor dloss = Tensor::from({1}, {1.0f});
  auto f = [&] { return Tensor::from({1}, {cross_entropy_forward(logits, targets).loss}); };
  EXPECT_TRUE(gradcheck(f, logits, dlogits, dloss, 1e-2));
}

TEST_F(GradCheck, FlattenThroughModule) {
  Flatten flat(1, 2);
  Tensor x = randn({2, 3, 4, 5});
  const Tensor dy = randn({2, 12, 5});
  flat.forward(x);
  const Tensor dx = flat.backward(dy);
  EXPECT_TRUE(gradcheck([&] { return flat.forward(x).clone(); }, x, dx, dy, 0.1));
}

TEST_F(GradCheck, Activations) {
  Tensor x = randn({3, 4, 5});
  for (float& v : x) v += v >= 0 ? 0.1f : -0.1f;  // away from LeakyReLU's kink at 0
  const Tensor dy = randn(x.shape());
  const Tensor t = tanh_forward(x), s = sigmoid_forward(x);
  EXPECT_TRUE(gradcheck([&] { return tanh_forward(x); }, x, tanh_backward(t, dy), dy, 1e-3))
      << "tanh";
  EXPECT_TRUE(gradcheck([&] { return sigmoid_forward(x); }, x, sigmoid_backward(s, dy), dy, 1e-3))
      << "sigmoid";
  for (const float slope : {0.01f, -0.5f, 2.0f}) {
    EXPECT_TRUE(gradcheck([&] { return leaky_relu_forward(x, slope); }, x,
                          leaky_relu_backward(x, dy, slope), dy, 1e-2))
        << "leaky_relu " << slope;
  }
  for (const auto a : {GeluApproximate::None, GeluApproximate::Tanh}) {
    EXPECT_TRUE(gradcheck([&] { return gelu_forward(x, a); }, x, gelu_backward(x, dy, a), dy, 1e-3))
        << "gelu " << to_string(a);
  }
  EXPECT_TRUE(gradcheck([&] { return silu_forward(x); }, x, silu_backward(x, dy), dy, 1e-3))
      << "silu";
  Identity id;
  id.forward(x);
  EXPECT_TRUE(gradcheck([&] { return id.forward(x).clone(); }, x, id.backward(dy), dy, 0.1))
      << "identity";
}

TEST_F(GradCheck, AvgPool2d) {
  std::vector<AvgPool2dGeometry> geometries(4);
  geometries[0] = {3, 2, 1, true, true, std::nullopt};   // ceil_mode window past the padding
  geometries[1] = {3, 2, 1, true, false, std::nullopt};  // padding not counted
  geometries[2] = {Size2(2, 3), Size2(1, 2), Size2(1, 0), false, true, 5};  // divisor_override
  geometries[3] = {4, 3, 2, true, false, std::nullopt};  // padding kernel / 2, not counted
  for (const auto& g : geometries) {
    Tensor x = randn({2, 3, 9, 8});
    const Tensor dy = randn(avgpool2d_output_shape(x.shape(), g));
    const Tensor dx = avgpool2d_backward(x.shape(), dy, g);
    // Linear in x: central differences are exact up to rounding.
    EXPECT_TRUE(gradcheck([&] { return avgpool2d_forward(x, g); }, x, dx, dy, 0.1))
        << g.kernel.pair_str() << " " << g.stride.pair_str();
  }
}

TEST_F(GradCheck, AdaptiveAvgPool2d) {
  for (const Size2 out : {Size2(3, 4), Size2(1), Size2(11, 6)}) {
    Tensor x = randn({2, 3, 7, 9});
    const Tensor dy = randn({2, 3, out.h, out.w});
    const Tensor dx = adaptive_avgpool2d_backward(x.shape(), dy);
    EXPECT_TRUE(gradcheck([&] { return adaptive_avgpool2d_forward(x, out); }, x, dx, dy, 0.1))
        << out.pair_str();
  }
}

TEST_F(GradCheck, BatchNorm2d) {
  // Training: the gradient through the batch's mean and variance (every output of a channel
  // depends on every input of it); evaluation: an affine map of the running statistics.
  for (const bool training : {true, false}) {
    for (const bool affine : {true, false}) {
      SCOPED_TRACE(std::string(training ? "training" : "evaluation") +
                   (affine ? ", affine" : ", affine=False"));
      Tensor x = randn({3, 4, 5, 3}), w = randn({4}), b = randn({4});
      if (!affine) w = b = Tensor();
      Tensor rm = randn({4}), rv = randn({4});
      for (float& v : rv) v = 0.5f + std::fabs(v);
      const Tensor dy = randn(x.shape());
      BatchNorm2dSaved saved;
      batchnorm2d_forward(x, w, b, &rm, &rv, training, 0.1, 1e-5, &saved);
      Tensor dx, dw({4}), db({4});
      batchnorm2d_backward(x, dy, w, saved, training, &dx, affine ? &dw : nullptr,
                           affine ? &db : nullptr);
      // The running statistics are not what is differentiated: a copy is updated each call.
      auto f = [&] {
        Tensor m = rm.clone(), v = rv.clone();
        return batchnorm2d_forward(x, w, b, &m, &v, training, 0.1, 1e-5);
      };
      EXPECT_TRUE(gradcheck(f, x, dx, dy, 1e-2)) << "dx";
      if (affine) {
        EXPECT_TRUE(gradcheck(f, w, dw, dy, 0.1)) << "dweight";  // linear in weight and bias
        EXPECT_TRUE(gradcheck(f, b, db, dy, 0.1)) << "dbias";
      }
    }
  }
}

TEST_F(GradCheck, BatchNorm2dModuleAccumulates) {
  // The module's gradients through backward(), twice: parameter gradients accumulate.
  BatchNorm2d bn(BatchNorm2dOptions(3).momentum(0.0));  // momentum 0: the forward is repeatable
  Tensor x = randn({2, 3, 4, 5});
  const Tensor dy = randn(x.shape());
  bn.forward(x);
  const Tensor dx = bn.backward(dy);
  EXPECT_TRUE(gradcheck([&] { return bn.forward(x); }, x, dx, dy, 1e-2));
  const Tensor db1 = bn.bias()->grad.clone();
  bn.forward(x);
  bn.backward(dy);
  for (int64_t c = 0; c < 3; ++c) EXPECT_FLOAT_EQ(bn.bias()->grad[c], 2.0f * db1[c]);
}

TEST_F(GradCheck, TutorialModelEndToEnd) {
  // Every layer chained: the input gradient of the whole model, dropout off.
  Generator init(7);
  TutorialCNN model(10, init);
  model.eval();
  Tensor x = randn({2, 1, 28, 28});
  const Tensor dy = randn({2, 10});
  model.forward(x);
  const Tensor dx = model.backward(dy);
  EXPECT_TRUE(gradcheck([&] { return model.forward(x); }, x, dx, dy, 1e-3, kGradCheck, 60));
}

// A dilated window can have no tap inside the input (H = 2, kernel 2, padding 1, dilation 3: the
// taps at -1 and 2): its output has no winner in the plane, and its gradient goes nowhere (it
// was once written outside dx).
TEST(MaxPool2dEdge, WindowWithNoTapInsideTheInput) {
  const Pool2dGeometry g{2, 1, 1, 3, false};
  const Tensor x = Tensor::from({1, 1, 2, 2}, {1, 2, 3, 4});
  Tensor idx;
  const Tensor y = maxpool2d_forward(x, g, &idx);
  ASSERT_EQ(y.shape(), (Shape{1, 1, 1, 1}));
  const Tensor dx = maxpool2d_backward(x.shape(), Tensor::full(y.shape(), 1.0f), idx, g);
  EXPECT_EQ(dx.to_vector(), std::vector<float>(4, 0.0f));
}

}  // namespace
}  // namespace cnn::testing
