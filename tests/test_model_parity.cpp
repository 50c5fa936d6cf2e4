// The tutorial model against PyTorch: PyTorch's initial weights, a batch of 64 MNIST-shaped
// inputs, the same dropout masks on both sides; logits, loss and every parameter gradient, then
// the loss at each of 10 Adam steps and the final weights.
#include "testing.h"

namespace cnn::testing {
namespace {

struct ModelParity : ::testing::Test {
  void SetUp() override {
    a = read_archive(fixture("tutorial_model"));
    std::map<std::string, Tensor> init;
    for (const auto& [name, t] : a.tensors) {
      if (name.rfind("init/", 0) == 0) init[name.substr(5)] = t;
    }
    model.load_state_dict(init);
    targets = to_indices(a.get("targets"));
    // PyTorch drew one mask per forward pass; hand out the same ones in the same order.
    auto& dropout = dynamic_cast<Dropout&>(model.submodule("classifier.3"));
    dropout.set_mask_provider([this](const Shape& shape) {
      const Tensor& m = a.get("mask" + std::to_string(next_mask++));
      EXPECT_EQ(m.shape(), shape);
      return m;
    });
  }
  Archive a;
  TutorialCNN model;
  std::vector<int64_t> targets;
  int next_mask = 0;
};

TEST_F(ModelParity, StateDictNamesMatchPyTorch) {
  std::vector<std::string> names;
  for (const auto& [name, t] : model.state_dict()) names.push_back(name);
  const std::vector<std::string> want = {
      "conv1.0.weight",      "conv1.0.bias",      "conv2.0.weight",      "conv2.0.bias",
      "classifier.1.weight", "classifier.1.bias", "classifier.4.weight", "classifier.4.bias"};
  EXPECT_EQ(names, want);
}

TEST_F(ModelParity, LogitsLossAndEveryGradient) {
  CrossEntropyLoss loss_fn;
  const Tensor logits = model.forward(a.get("x"));
  EXPECT_TRUE(all_close(logits, a.get("logits"), kGolden)) << "logits";
  const float loss = loss_fn(logits, targets);
  EXPECT_NEAR(loss, a.get("loss")[0], 1e-4 * a.get("loss")[0]);
  model.zero_grad();
  model.backward(loss_fn.backward());
  int checked = 0;
  for (const auto& [name, p] : model.named_parameters()) {
    EXPECT_TRUE(all_close(p->grad, a.get("grad/" + name), kModel)) << name;
    ++checked;
  }
  EXPECT_EQ(checked, 8);
}

TEST_F(ModelParity, TenAdamStepsLossAndWeights) {
  a.get("mask0");  // the step-0 fixture used mask0; the Adam steps start at mask1
  next_mask = 1;
  CrossEntropyLoss loss_fn;
  Adam opt(model.parameters(), AdamOptions(1e-3));
  const Tensor& want = a.get("adam_losses");
  ASSERT_EQ(want.numel(), 10);
  for (int step = 0; step < 10; ++step) {
    opt.zero_grad();
    const float loss = loss_fn(model.forward(a.get("x")), targets);
    model.backward(loss_fn.backward());
    opt.step();
    EXPECT_NEAR(loss, want[step], 1e-4 * std::fabs(want[step])) << "step " << step;
  }
  // The weights: see kAdamNoiseDecided (testing.h); the losses above to 1e-4.
  for (const auto& [name, t] : model.state_dict()) {
    EXPECT_TRUE(all_close_but_few(t, a.get("final/" + name), Tol{1e-4, 1e-5}, kAdamNoiseDecided,
                                  adam_reach(10, 1e-3)))
        << name;
  }
}

}  // namespace
}  // namespace cnn::testing
