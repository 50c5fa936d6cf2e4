// Invalid configurations throw a cnn::Error whose message names the layer, the shapes and what
// was expected.
#include "testing.h"

namespace cnn::testing {
namespace {

// Issue 10: an error quotes at most a short, printable excerpt of what it was given.
TEST(Errors, ExcerptIsShortPrintableAndSaysTheSize) {
  EXPECT_EQ(excerpt("tutorial"), "tutorial");
  EXPECT_EQ(excerpt("a\nb\x01\x7f"), "a\\x0Ab\\x01\\x7F");
  EXPECT_EQ(excerpt("caf\xc3\xa9 \xe2\x80\xa6"), "caf\xc3\xa9 \xe2\x80\xa6");  // valid UTF-8 kept
  EXPECT_EQ(excerpt("\xff\xc3(\xed\xa0\x80\xc2\x85"),
            "\\xFF\\xC3(\\xED\\xA0\\x80\\xC2\\x85");  // invalid, surrogate, C1 control
  const std::string deep(100000, '[');
  const std::string e = excerpt(deep);
  EXPECT_EQ(e, std::string(limits::kExcerpt, '[') + "\xe2\x80\xa6 (100000 bytes)");
  EXPECT_EQ(excerpt("abcdef", 3), "abc\xe2\x80\xa6 (6 bytes)");
  // A character is never cut in two.
  EXPECT_EQ(excerpt("ab\xc3\xa9", 3), "ab\xe2\x80\xa6 (4 bytes)");
  EXPECT_EQ(excerpt(""), "");
}

TEST(Errors, StrideZero) {
  expect_error([] { Conv2d(Conv2dOptions(1, 16, 3).stride(0)); },
               {"Conv2d(1, 16, kernel_size=(3, 3), stride=(0, 0))", "non-positive stride"});
  expect_error([] { MaxPool2d(MaxPool2dOptions(2).stride(0)); },
               {"MaxPool2d(kernel_size=2, stride=0", "stride should be greater than zero"});
}

// The op (the Linear layer refuses it first): no division by zero in the kernels.
TEST(Errors, LinearWithNoInputFeatures) {
  expect_error(
      [] {
        linear_forward(Tensor({2, 0}), Tensor({3, 0}), Tensor());
      },
      {"in_features must be positive", "(3, 0)"});
}

// Class targets are Int32 tensors; a float32 one is refused by name before any kernel runs.
TEST(Errors, OpInputsOfAnotherDtype) {
  const Tensor targets = Tensor::from({2}, {0, 1});  // float32, not the Int32 indices
  expect_error(
      [&] {
        cross_entropy_forward(Tensor({2, 3}), targets);
      },
      {"cross_entropy", "targets of dtype int32", "float32"});
}

TEST(Errors, KernelLargerThanPaddedInput) {
  Conv2d conv(Conv2dOptions(1, 4, 5).padding(1));
  expect_error(
      [&] {
        conv.forward(Tensor({2, 1, 2, 2}));
      },
      {"Conv2d(1, 4, kernel_size=(5, 5)", "(2, 1, 2, 2)", "padded input size per channel (4 x 4)",
       "dilated kernel size (5 x 5)"});
  Conv2d dilated(Conv2dOptions(1, 1, 3).dilation(3));
  expect_error([&] { dilated.forward(Tensor({1, 1, 6, 9})); }, {"(7 x 7)"});
}

TEST(Errors, PoolPaddingOverHalfTheKernel) {
  expect_error(
      [] { MaxPool2d(MaxPool2dOptions(2).padding(2)); },
      {"MaxPool2d(kernel_size=2, stride=2, padding=2", "pad should be at most half of kernel size",
       "padding=(2, 2)", "kernel_size=(2, 2)"});
  Pool2dGeometry g{3, 1, 2, 1, false};
  expect_error([&] { maxpool2d_forward(Tensor({1, 1, 5, 5}), g); }, {"at most half"});
}

TEST(Errors, PoolOutputTooSmall) {
  MaxPool2d pool(MaxPool2dOptions(3).stride(1));
  expect_error(
      [&] {
        pool.forward(Tensor({1, 2, 2, 2}));
      },
      {"MaxPool2d(kernel_size=3", "(1, 2, 2, 2)", "output size (0 x 0)"});
}

TEST(Errors, LinearInFeaturesMismatch) {
  Linear fc(1568, 32);
  expect_error(
      [&] {
        fc.forward(Tensor({64, 1500}));
      },
      {"Linear(in_features=1568, out_features=32, bias=True)", "in_features=1568", "(64, 1500)"});
}

TEST(Errors, WrongRankInput) {
  Conv2d conv(1, 16, 3);
  expect_error(
      [&] {
        conv.forward(Tensor({28, 28}));
      },
      {"Conv2d(1, 16", "expected a 4-D input (N, C_in, H, W)", "(28, 28)"});
  MaxPool2d pool(MaxPool2dOptions(2));
  expect_error([&] { pool.forward(Tensor({16, 28})); }, {"MaxPool2d", "4-D input", "(16, 28)"});
}

TEST(Errors, WrongChannelCount) {
  Conv2d conv(1, 16, 3);
  expect_error(
      [&] {
        conv.forward(Tensor({2, 3, 28, 28}));
      },
      {"expected input with 1 channels", "(16, 1, 3, 3)", "(2, 3, 28, 28)"});
}

TEST(Errors, ErrorNamesThePathInTheModel) {
  TutorialCNN model;
  expect_error([&] { model.forward(Tensor({2, 3, 28, 28})); }, {"conv1.0: Conv2d(1, 16"});
  expect_error(
      [&] {
        model.forward(Tensor({2, 1, 20, 20}));
      },
      {"classifier.1: Linear(in_features=1568", "(2, 800)"});
}

TEST(Errors, ConvConstructorRules) {
  expect_error([] { Conv2d(Conv2dOptions(3, 4, 3).groups(2)); },
               {"in_channels must be divisible by groups"});
  expect_error([] { Conv2d(Conv2dOptions(4, 3, 3).groups(2)); },
               {"out_channels must be divisible by groups"});
  expect_error([] { Conv2d(Conv2dOptions(1, 1, 3).stride(2).padding("same")); },
               {"padding='same' is not supported for strided convolutions"});
  expect_error([] { Conv2d(Conv2dOptions(1, 1, 3).padding("full")); },
               {"invalid padding string 'full'"});
  expect_error([] { Conv2d(Conv2dOptions(1, 1, 3).padding(-1)); }, {"negative padding"});
  expect_error([] { Conv2d(Conv2dOptions(1, 1, 3).dilation(0)); },
               {"dilation should be greater than zero"});
}

TEST(Errors, OtherOps) {
  expect_error([] { Dropout(1.5); }, {"Dropout(p=1.5", "between 0 and 1"});
  expect_error([] { softmax_forward(Tensor({2, 3}), 2); }, {"dimension out of range"});
  expect_error(
      [] {
        cross_entropy_forward(Tensor({2, 10}), {1, 10});
      },
      {"target 10", "out of bounds for 10 classes"});
  expect_error([] { cross_entropy_forward(Tensor({2, 10}), {1}); }, {"expected 2 targets"});
  expect_error([] { flatten_forward(Tensor({2, 3, 4}), 2, 1); }, {"cannot come after end_dim"});
  Conv2d conv(1, 2, 3);
  expect_error([&] { conv.backward(Tensor({1, 2, 1, 1})); }, {"before forward"});
}

TEST(Errors, LoadStateDictRejectsMismatches) {
  Conv2d conv(1, 2, 3);
  const Tensor before = conv.weight().value.clone();
  expect_error(
      [&] {
        conv.load_state_dict({{"weight", Tensor({2, 1, 5, 5})}, {"bias", Tensor({2})}});
      },
      {"size mismatch for weight", "(2, 1, 5, 5)", "(2, 1, 3, 3)"});
  expect_error(
      [&] {
        conv.load_state_dict({{"weight", Tensor({2, 1, 3, 3})}});
      },
      {"Missing key(s)", "\"bias\""});
  expect_error(
      [&] {
        conv.load_state_dict(
            {{"weight", Tensor({2, 1, 3, 3})}, {"bias", Tensor({2})}, {"x", Tensor({1})}});
      },
      {"Unexpected key(s)", "\"x\""});
  EXPECT_TRUE(all_close(conv.weight().value, before, Tol{0, 0})) << "a failed load changed weights";
}

}  // namespace
}  // namespace cnn::testing
