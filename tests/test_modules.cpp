// Module behaviour: parameters and their names, train/eval, dropout, initialisation, gradient
// accumulation, Sequential.
#include <cmath>

#include "cnn/kernels.h"
#include "testing.h"

namespace cnn::testing {
namespace {

TEST(Modules, TutorialModelParameterCount) {
  TutorialCNN model;
  EXPECT_EQ(model.num_parameters(), 55338);
  EXPECT_EQ(model.named_parameters().size(), 8u);
}

TEST(Modules, DefaultInitialisationBounds) {
  // PyTorch: weights and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  Generator gen(3);
  Conv2d conv(Conv2dOptions(16, 32, 3), gen);
  Linear fc(LinearOptions(1568, 32), gen);
  auto check = [](const Tensor& t, double fan_in) {
    const double bound = 1.0 / std::sqrt(fan_in);
    double lo = 1e9, hi = -1e9, sum_sq = 0;
    for (float v : t) {
      lo = std::min(lo, double(v));
      hi = std::max(hi, double(v));
      sum_sq += double(v) * v;
    }
    EXPECT_GE(lo, -bound);
    EXPECT_LE(hi, bound);
    if (t.numel() > 1000) {
      EXPECT_LT(lo, -0.95 * bound);
      EXPECT_GT(hi, 0.95 * bound);
      // Variance of U(-b, b) is b^2 / 3.
      EXPECT_NEAR(sum_sq / t.numel(), bound * bound / 3, 0.1 * bound * bound / 3);
    }
  };
  check(conv.weight().value, 16 * 9);
  check(conv.bias()->value, 16 * 9);
  check(fc.weight().value, 1568);
  check(fc.bias()->value, 1568);
}

TEST(Modules, SeededConstructionIsReproducible) {
  manual_seed(5);
  TutorialCNN a;
  manual_seed(5);
  TutorialCNN b;
  for (std::size_t i = 0; i < a.state_dict().size(); ++i) {
    EXPECT_TRUE(all_close(a.state_dict()[i].second, b.state_dict()[i].second, Tol{0, 0}));
  }
}

TEST(Modules, TrainEvalReachesEveryChild) {
  TutorialCNN model;
  EXPECT_TRUE(model.submodule("classifier.3").is_training());
  model.eval();
  EXPECT_FALSE(model.submodule("classifier.3").is_training());
  EXPECT_FALSE(model.conv1->is_training());
  model.train();
  EXPECT_TRUE(model.submodule("conv2.2").is_training());
  EXPECT_THROW(model.submodule("conv3"), Error);
}

TEST(Modules, DropoutTrainVersusEval) {
  Generator gen(11);
  Dropout drop(0.3, gen);
  const Tensor x = Tensor::full({200, 100}, 2.0f);
  const Tensor y = drop.forward(x);
  int64_t zeros = 0;
  for (float v : y) {
    if (v == 0.0f) {
      ++zeros;
    } else {
      EXPECT_FLOAT_EQ(v, 2.0f / 0.7f);
    }
  }
  EXPECT_NEAR(double(zeros) / y.numel(), 0.3, 0.02);
  const Tensor dx = drop.backward(Tensor::full(x.shape(), 1.0f));
  for (int64_t i = 0; i < x.numel(); ++i) EXPECT_EQ(dx[i] == 0.0f, y[i] == 0.0f);

  drop.eval();
  EXPECT_TRUE(all_close(drop.forward(x), x, Tol{0, 0}));
  EXPECT_TRUE(all_close(drop.backward(x), x, Tol{0, 0}));
}

TEST(Modules, GradientsAccumulateUntilZeroGrad) {
  Generator gen(2);
  Linear fc(LinearOptions(3, 2), gen);
  const Tensor x = randn({4, 3}, gen), dy = randn({4, 2}, gen);
  fc.forward(x);
  fc.backward(dy);
  const Tensor once = fc.weight().grad.clone();
  fc.forward(x);
  fc.backward(dy);
  for (int64_t i = 0; i < once.numel(); ++i) {
    EXPECT_NEAR(fc.weight().grad[i], 2 * once[i], 1e-5);
  }
  fc.zero_grad();
  for (float v : fc.weight().grad) EXPECT_EQ(v, 0.0f);
}

TEST(Modules, SequentialChainsForwardAndBackward) {
  Generator gen(9);
  auto seq =
      sequential(std::make_shared<Linear>(LinearOptions(5, 4), gen), std::make_shared<ReLU>(),
                 std::make_shared<Linear>(LinearOptions(4, 3), gen));
  EXPECT_EQ(seq->size(), 3u);
  Tensor x = randn({2, 5}, gen);
  const Tensor dy = randn({2, 3}, gen);
  seq->forward(x);
  const Tensor dx = seq->backward(dy);
  EXPECT_TRUE(gradcheck([&] { return seq->forward(x); }, x, dx, dy, 1e-2));
  std::vector<std::string> names;
  for (auto& [name, p] : seq->named_parameters()) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"}));
}

TEST(Modules, SoftmaxArgmaxHead) {
  // The tutorial's prediction: softmax over the logits, argmax for the class.
  const Tensor logits = Tensor::from({1, 10}, {-7.427f, 8.698f, 0.407f, -4.990f, -4.264f, -3.783f,
                                               -4.286f, -3.159f, -2.024f, -4.415f});
  Softmax softmax(1);
  const Tensor probs = softmax.forward(logits);
  double sum = 0;
  for (float p : probs) sum += p;
  EXPECT_NEAR(sum, 1.0, 1e-6);
  EXPECT_NEAR(probs[1], 1.0, 1e-3);
  EXPECT_EQ(argmax(probs, 1), (std::vector<int64_t>{1}));
}

}  // namespace
}  // namespace cnn::testing

namespace cnn::testing {
namespace {

TEST(Modules, BackwardWithoutInputGradient) {
  // The parameter gradients are the same; dx is simply not computed.
  Generator init(4), data(5);
  TutorialCNN a(10, init);
  a.eval();
  const Tensor x = randn({3, 1, 28, 28}, data), dy = randn({3, 10}, data);
  a.forward(x);
  const Tensor dx = a.backward(dy, true);
  std::vector<Tensor> with;
  for (auto& [name, p] : a.named_parameters()) with.push_back(p->grad.clone());
  a.zero_grad();
  a.forward(x);
  EXPECT_FALSE(a.backward(dy, false).defined());
  EXPECT_TRUE(dx.defined());
  std::size_t i = 0;
  for (auto& [name, p] : a.named_parameters())
    EXPECT_TRUE(all_close(p->grad, with[i++], Tol{0, 0})) << name;
}

}  // namespace
}  // namespace cnn::testing

namespace cnn::testing {
namespace {

// Inference under NoGradGuard runs Conv2d [-> BatchNorm2d] [-> ReLU [-> MaxPool2d]] as one fused
// block (cnn/ops/fused.h). The block applies the normalisation as batchnorm2d_forward does (same
// float operations in the same order), so its output must equal, bit for bit, the layers run one
// after the other; any other result would be a bug, not rounding. Both kernel sets, with groups,
// strides and padding, batch 1 (threads share the image) and batches.
TEST(Modules, FusedInferenceBlocksEqualTheLayers) {
  struct Case {
    int64_t in, out, k, stride, pad, groups;
    bool bias, pool;
    const char* act;  // the layer after the batch norm
    bool bn = true;
  };
  const Case cases[] = {
      {1, 32, 3, 1, 1, 1, false, true, "ReLU"},
      {16, 32, 3, 1, 0, 1, true, true, "ReLU"},
      {8, 16, 5, 1, 2, 1, true, false, "ReLU"},
      {4, 16, 3, 2, 1, 1, false, false, "SiLU"},
      {8, 16, 3, 1, 1, 2, false, true, "ReLU"},
      {16, 64, 3, 1, 1, 1, false, false, "Tanh"},
      {8, 8, 3, 1, 1, 8, true, false, "ReLU"},
      {8, 16, 3, 1, 1, 1, true, false, "Sigmoid"},
      {4, 16, 5, 1, 2, 2, true, false, "LeakyReLU"},
      {6, 16, 5, 1, 0, 1, true, false, "Tanh", false},
      {4, 8, 3, 2, 1, 1, true, false, "LeakyReLU", false},
  };
  for (const KernelSet ks : {KernelSet::Fast, KernelSet::Reference}) {
    set_kernel_set(ks);
    for (const Case& c : cases) {
      Generator gen(17);
      auto conv = std::make_shared<Conv2d>(Conv2dOptions(c.in, c.out, Size2(c.k))
                                               .stride(Size2(c.stride))
                                               .padding(Size2(c.pad))
                                               .groups(c.groups)
                                               .bias(c.bias),
                                           gen);
      auto bn = std::make_shared<BatchNorm2d>(c.out);
      uniform_(bn->weight()->value, 0.5f, 1.5f, gen);
      uniform_(bn->bias()->value, -0.5f, 0.5f, gen);
      uniform_(*bn->running_mean(), -0.2f, 0.2f, gen);
      uniform_(*bn->running_var(), 0.5f, 2.0f, gen);
      std::shared_ptr<Module> act;
      if (std::string(c.act) == "ReLU") act = std::make_shared<ReLU>();
      if (std::string(c.act) == "SiLU") act = std::make_shared<SiLU>();
      if (std::string(c.act) == "Tanh") act = std::make_shared<Tanh>();
      if (std::string(c.act) == "Sigmoid") act = std::make_shared<Sigmoid>();
      if (std::string(c.act) == "LeakyReLU") act = std::make_shared<LeakyReLU>(0.1);
      auto seq = c.pool ? sequential(conv, bn, act,
                                     std::make_shared<MaxPool2d>(MaxPool2dOptions(Size2(2))))
                 : c.bn ? sequential(conv, bn, act)
                        : sequential(conv, act);
      seq->eval();
      NoGradGuard no_grad;
      const int threads = num_threads();
      for (const int t : {1, 2}) {
        set_num_threads(t);
        for (const int64_t n : {1, 5}) {
          const Tensor x = randn({n, c.in, 12, 12}, gen);
          const Tensor fused = seq->forward(x);
          Tensor layered = x;
          for (auto& [name, layer] : seq->children()) layered = layer->forward(layered);
          ASSERT_EQ(fused.shape(), layered.shape());
          // One image on two threads: the fast block shares it by output channels, and OpenBLAS
          // may sum a share of the product's rows in another order than the whole product
          // (tests/test_fast_kernels.cpp): the last places may differ there, and only there.
          const bool shared = ks == KernelSet::Fast && t > 1 && n == 1;
          const std::string what = std::string(ks == KernelSet::Fast ? "fast" : "reference") +
                                   " in=" + std::to_string(c.in) + " out=" + std::to_string(c.out) +
                                   " groups=" + std::to_string(c.groups) + " " + c.act +
                                   " n=" + std::to_string(n) + " threads=" + std::to_string(t);
          for (int64_t i = 0; i < fused.numel(); ++i) {
            const float a = fused.data()[i], b = layered.data()[i];
            if (shared) {
              ASSERT_NEAR(a, b, 1e-5f * (1.0f + std::fabs(b))) << what << " at " << i;
            } else {
              ASSERT_EQ(a, b) << what << " at " << i;
            }
          }
        }
      }
      set_num_threads(threads);
      // In training mode the batch norm uses the batch's statistics: not fused, still right.
      seq->train();
      const Tensor x = randn({3, c.in, 12, 12}, gen);
      EXPECT_EQ(seq->forward(x).shape()[1], c.out);
    }
  }
  set_kernel_set(KernelSet::Fast);
}

}  // namespace
}  // namespace cnn::testing
