// summary() and the printed model against what torchsummary and PyTorch print.
#include "testing.h"

namespace cnn::testing {
namespace {

// FACTS.md's table, character for character.
const char* const kTutorialSummary =
    "----------------------------------------------------------------\n"
    "        Layer (type)               Output Shape         Param #\n"
    "================================================================\n"
    "            Conv2d-1           [-1, 16, 26, 26]             160\n"
    "              ReLU-2           [-1, 16, 26, 26]               0\n"
    "         MaxPool2d-3           [-1, 16, 14, 14]               0\n"
    "            Conv2d-4           [-1, 32, 12, 12]           4,640\n"
    "              ReLU-5           [-1, 32, 12, 12]               0\n"
    "         MaxPool2d-6             [-1, 32, 7, 7]               0\n"
    "           Flatten-7                 [-1, 1568]               0\n"
    "            Linear-8                   [-1, 32]          50,208\n"
    "              ReLU-9                   [-1, 32]               0\n"
    "          Dropout-10                   [-1, 32]               0\n"
    "           Linear-11                   [-1, 10]             330\n"
    "================================================================\n"
    "Total params: 55,338\n"
    "Trainable params: 55,338\n"
    "Non-trainable params: 0\n"
    "----------------------------------------------------------------\n"
    "Input size (MB): 0.00\n"
    "Forward/backward pass size (MB): 0.28\n"
    "Params size (MB): 0.21\n"
    "Estimated Total Size (MB): 0.50\n"
    "----------------------------------------------------------------\n";

TEST(Summary, TutorialModelMatchesTorchsummary) {
  TutorialCNN model;
  EXPECT_EQ(summary(model, {1, 28, 28}), kTutorialSummary);
  EXPECT_TRUE(model.is_training()) << "summary() must restore the training mode";
}

TEST(Summary, SameTableUnderNoGradGuard) {
  // Inference fuses Conv2d -> ReLU -> MaxPool2d into one block; the table must still show each
  // layer (the fusion is off while a forward hook watches the leaves).
  TutorialCNN model;
  NoGradGuard no_grad;
  EXPECT_EQ(summary(model, {1, 28, 28}), kTutorialSummary);
}

TEST(Summary, WrongInputSizeNamesTheLayer) {
  TutorialCNN model;
  try {
    summary(model, {1, 32, 32});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("classifier.1"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("in_features=1568"), std::string::npos) << e.what();
  }
}

TEST(Repr, TutorialModelPrintsLikePyTorch) {
  TutorialCNN model;
  EXPECT_EQ(model.repr(),
            "CNN(\n"
            "  (conv1): Sequential(\n"
            "    (0): Conv2d(1, 16, kernel_size=(3, 3), stride=(1, 1))\n"
            "    (1): ReLU()\n"
            "    (2): MaxPool2d(kernel_size=2, stride=2, padding=1, dilation=1, ceil_mode=False)\n"
            "  )\n"
            "  (conv2): Sequential(\n"
            "    (0): Conv2d(16, 32, kernel_size=(3, 3), stride=(1, 1))\n"
            "    (1): ReLU()\n"
            "    (2): MaxPool2d(kernel_size=2, stride=2, padding=1, dilation=1, ceil_mode=False)\n"
            "  )\n"
            "  (classifier): Sequential(\n"
            "    (0): Flatten(start_dim=1, end_dim=-1)\n"
            "    (1): Linear(in_features=1568, out_features=32, bias=True)\n"
            "    (2): ReLU()\n"
            "    (3): Dropout(p=0.3, inplace=False)\n"
            "    (4): Linear(in_features=32, out_features=10, bias=True)\n"
            "  )\n"
            ")");
}

TEST(Repr, LayerOptionsPrintLikePyTorch) {
  EXPECT_EQ(
      Conv2d(Conv2dOptions(3, 6, {3, 5}).stride(2).padding(1).dilation(2).groups(3).bias(false))
          .repr(),
      "Conv2d(3, 6, kernel_size=(3, 5), stride=(2, 2), padding=(1, 1), dilation=(2, 2), "
      "groups=3, bias=False)");
  EXPECT_EQ(Conv2d(Conv2dOptions(1, 1, 3).padding("same")).repr(),
            "Conv2d(1, 1, kernel_size=(3, 3), stride=(1, 1), padding=same)");
  EXPECT_EQ(MaxPool2d(MaxPool2dOptions(3).stride(Size2(2, 1)).ceil_mode(true)).repr(),
            "MaxPool2d(kernel_size=3, stride=(2, 1), padding=0, dilation=1, ceil_mode=True)");
  EXPECT_EQ(Linear(4, 2, false).repr(), "Linear(in_features=4, out_features=2, bias=False)");
  EXPECT_EQ(Dropout(0.5).repr(), "Dropout(p=0.5, inplace=False)");
  EXPECT_EQ(Softmax(1).repr(), "Softmax(dim=1)");
  EXPECT_EQ(python_float(1e-5), "1e-05");
  EXPECT_EQ(python_float(1.0), "1.0");
  EXPECT_EQ(python_float(0.0001), "0.0001");
  EXPECT_EQ(python_float(123.25), "123.25");
}

}  // namespace
}  // namespace cnn::testing
