// Finite-difference gradient checks for every op with a backward pass, each with a random
// upstream gradient (never all ones: that would hide a backward that ignores dy).
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
  std::vector<int32_t> idx;
  const Tensor y = maxpool2d_forward(x, g, &idx);
  const Tensor dy = randn(y.shape());
  const Tensor dx = maxpool2d_backward(x.shape(), dy, idx);
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

}  // namespace
}  // namespace cnn::testing
