// The step-throughs of the explorer: the tutorial's two figures exactly, and other options
// against the library's ops.
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
  const Tensor y = conv2d_forward(image.reshape({1, 1, 7, 6}), kernel.reshape({1, 1, 3, 2}), Tensor(),
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
  expect_error([&] { conv2d_steps(image, Tensor({4, 4}), 1, 0, 1); }, {"dilated kernel size (4 x 4)"});
  expect_error([&] { conv2d_steps(image, Tensor({2, 2}), 0, 0, 1); }, {"non-positive stride"});
  expect_error([&] { maxpool2d_steps(image, Pool2dGeometry{2, 1, 2, 1, false}); }, {"at most half"});
  EXPECT_EQ(format_number(0.5f), "0.5");
  EXPECT_EQ(format_number(-1.0f / 3.0f), "-0.3333");
}

}  // namespace
}  // namespace cnn::testing
