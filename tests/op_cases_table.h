// The op table's cases: PyTorch's fixture sets first (tools/gen_fixtures.py wrote them: the
// options and shapes here are the fixture's, which the golden test checks), then cases beyond the
// fixtures: the finite-difference tests' shapes, the fast kernels' own paths (Winograd, the
// tutorial's shapes, a single row), per-side padding. Every case runs in every mode
// (tests/test_op_table.cpp) and is timed by bench/op_table_bench.cpp.
#pragma once

#include "op_cases.h"

namespace cnn::op_table {

inline const std::vector<OpCase>& op_cases() {
  static const std::vector<OpCase> cases = with_unique_names({
      // ---- from tests/fixtures/<op>.cnnt, set i ----
      conv2d({2, 1, 12, 12}, 4, 3, 1, 0, 1, 1, true).from_fixture("conv2d", 0),
      conv2d({3, 3, 9, 7}, 5, 3, 2, 1, 1, 1, true).from_fixture("conv2d", 1),
      conv2d({2, 2, 11, 10}, 3, Size2(3, 2), 3, Size2(2, 1), 2, 1, true).from_fixture("conv2d", 2),
      conv2d({2, 2, 8, 9}, 3, 3, 1, "same", 3, 1, true).from_fixture("conv2d", 3),
      conv2d({2, 4, 7, 8}, 6, Size2(2, 3), Size2(2, 1), 0, 1, 2, false).from_fixture("conv2d", 4),
      conv2d({1, 3, 9, 8}, 3, Size2(4, 2), 1, "same", Size2(1, 2), 3, true)
          .from_fixture("conv2d", 5),
      conv2d({2, 2, 5, 13}, 2, Size2(1, 5), Size2(1, 3), "valid", 1, 1, true)
          .from_fixture("conv2d", 6),
      conv2d({4, 3, 6, 6}, 2, 1, 1, 0, 1, 1, true).from_fixture("conv2d", 7),
      conv2d({2, 6, 10, 11}, 4, 3, Size2(3, 2), Size2(1, 2), Size2(2, 3), 2, true)
          .from_fixture("conv2d", 8),
      maxpool2d({2, 3, 13, 13}, 2, 2, 1, 1, false).from_fixture("maxpool2d", 0),
      maxpool2d({2, 2, 9, 10}, 3, 2, 1, 1, true).from_fixture("maxpool2d", 1),
      maxpool2d({1, 2, 11, 7}, Size2(3, 2), Size2(3, 1), Size2(1, 0), Size2(2, 1), false)
          .from_fixture("maxpool2d", 2),
      maxpool2d({1, 1, 4, 4}, 2, 3, 1, 1, true).from_fixture("maxpool2d", 3),
      maxpool2d({3, 2, 10, 10}, 3, 1, 0, 3, false).from_fixture("maxpool2d", 4),
      maxpool2d({2, 1, 6, 9}, Size2(2, 4), Size2(2, 4), Size2(1, 2), 1, true)
          .from_fixture("maxpool2d", 5),
      maxpool2d({1, 2, 5, 5}, 2, 2, 1, 1, false).from_fixture("maxpool2d", 6),
      maxpool2d({2, 3, 8, 7}, 5, 2, 2, 1, true).from_fixture("maxpool2d", 7),
      maxpool2d({1, 2, 12, 9}, 3, Size2(2, 3), 1, 2, true).from_fixture("maxpool2d", 8),
      avgpool2d({2, 3, 13, 13}, 2, 2, 1, false, true, std::nullopt).from_fixture("avgpool2d", 0),
      avgpool2d({2, 2, 9, 10}, 3, 2, 1, true, true, std::nullopt).from_fixture("avgpool2d", 1),
      avgpool2d({2, 2, 9, 10}, 3, 2, 1, true, false, std::nullopt).from_fixture("avgpool2d", 2),
      avgpool2d({3, 1, 11, 7}, Size2(3, 2), Size2(3, 1), Size2(1, 0), false, false, std::nullopt)
          .from_fixture("avgpool2d", 3),
      avgpool2d({2, 2, 6, 9}, Size2(2, 4), Size2(2, 4), Size2(1, 2), true, true, std::nullopt)
          .from_fixture("avgpool2d", 4),
      avgpool2d({2, 3, 8, 7}, 5, 2, 2, true, true, 7).from_fixture("avgpool2d", 5),
      avgpool2d({2, 2, 5, 5}, 4, 3, 2, true, false, std::nullopt).from_fixture("avgpool2d", 6),
      avgpool2d({3, 2, 10, 11}, Size2(3, 5), Size2(2, 3), Size2(1, 2), true, true, std::nullopt)
          .from_fixture("avgpool2d", 7),
      avgpool2d({1, 2, 7, 6}, 1, 2, 0, true, true, std::nullopt).from_fixture("avgpool2d", 8),
      adaptive_avgpool2d({2, 3, 7, 9}, Size2(3, 4)).from_fixture("adaptive_avgpool2d", 0),
      adaptive_avgpool2d({2, 2, 5, 5}, 1).from_fixture("adaptive_avgpool2d", 1),
      adaptive_avgpool2d({3, 2, 10, 7}, Size2(4, 3)).from_fixture("adaptive_avgpool2d", 2),
      adaptive_avgpool2d({2, 3, 6, 6}, 6).from_fixture("adaptive_avgpool2d", 3),
      adaptive_avgpool2d({2, 1, 4, 5}, Size2(7, 8)).from_fixture("adaptive_avgpool2d", 4),
      adaptive_avgpool2d({2, 4, 13, 11}, Size2(5, 2)).from_fixture("adaptive_avgpool2d", 5),
      linear({4, 7}, 3, true).from_fixture("linear", 0),
      linear({1, 1568}, 32, true).from_fixture("linear", 1),
      linear({64, 32}, 10, true).from_fixture("linear", 2),
      linear({5, 13}, 1, false).from_fixture("linear", 3),
      linear({2, 3, 6}, 4, true).from_fixture("linear", 4),
      linear({3, 1}, 9, true).from_fixture("linear", 5),
      relu({2, 3, 4, 5}).from_fixture("relu", 0),
      relu({7}).from_fixture("relu", 1),
      relu({3, 11}).from_fixture("relu", 2),
      relu({1, 16, 26, 26}).from_fixture("relu", 3),
      relu({64, 32}).from_fixture("relu", 4),
      relu({2, 1, 3, 3}).from_fixture("relu", 5),
      tanh_op({2, 3, 5, 7}, 1.0).from_fixture("tanh", 0),
      tanh_op({3, 11}, 3.0).from_fixture("tanh", 1),
      tanh_op({4, 1, 9, 9}, 1.0).from_fixture("tanh", 2),
      tanh_op({2, 5, 3}, 6.0).from_fixture("tanh", 3),
      tanh_op({5, 13}, 0.5).from_fixture("tanh", 4),
      tanh_op({3, 2, 7, 5}, 2.0).from_fixture("tanh", 5),
      sigmoid({2, 3, 5, 7}, 1.0).from_fixture("sigmoid", 0),
      sigmoid({3, 11}, 3.0).from_fixture("sigmoid", 1),
      sigmoid({4, 1, 9, 9}, 1.0).from_fixture("sigmoid", 2),
      sigmoid({2, 5, 3}, 6.0).from_fixture("sigmoid", 3),
      sigmoid({5, 13}, 0.5).from_fixture("sigmoid", 4),
      sigmoid({3, 2, 7, 5}, 2.0).from_fixture("sigmoid", 5),
      silu({2, 3, 5, 7}, 1.0).from_fixture("silu", 0),
      silu({3, 11}, 3.0).from_fixture("silu", 1),
      silu({4, 1, 9, 9}, 1.0).from_fixture("silu", 2),
      silu({2, 5, 3}, 6.0).from_fixture("silu", 3),
      silu({5, 13}, 0.5).from_fixture("silu", 4),
      silu({3, 2, 7, 5}, 2.0).from_fixture("silu", 5),
      identity({2, 3, 5, 7}, 1.0).from_fixture("identity", 0),
      identity({3, 11}, 3.0).from_fixture("identity", 1),
      identity({4, 1, 9, 9}, 1.0).from_fixture("identity", 2),
      identity({2, 5, 3}, 6.0).from_fixture("identity", 3),
      identity({5, 13}, 0.5).from_fixture("identity", 4),
      identity({3, 2, 7, 5}, 2.0).from_fixture("identity", 5),
      leaky_relu({2, 3, 5, 7}, 0.01, 1.0).from_fixture("leaky_relu", 0),
      leaky_relu({3, 11}, 0.2, 3.0).from_fixture("leaky_relu", 1),
      leaky_relu({4, 1, 9, 9}, 0.0, 1.0).from_fixture("leaky_relu", 2),
      leaky_relu({2, 5, 3}, 1.5, 6.0).from_fixture("leaky_relu", 3),
      leaky_relu({5, 13}, -0.3, 0.5).from_fixture("leaky_relu", 4),
      leaky_relu({3, 2, 7, 5}, 0.01, 2.0).from_fixture("leaky_relu", 5),
      gelu({2, 3, 5, 7}, "none", 1.0).from_fixture("gelu", 0),
      gelu({3, 11}, "tanh", 3.0).from_fixture("gelu", 1),
      gelu({4, 1, 9, 9}, "none", 1.0).from_fixture("gelu", 2),
      gelu({2, 5, 3}, "tanh", 6.0).from_fixture("gelu", 3),
      gelu({5, 13}, "none", 0.5).from_fixture("gelu", 4),
      gelu({3, 2, 7, 5}, "tanh", 2.0).from_fixture("gelu", 5),
      batchnorm2d({4, 3, 5, 7}, 1e-05, 0.1, true, true, true).from_fixture("batchnorm2d", 0),
      batchnorm2d({2, 5, 3, 3}, 0.001, 0.3, true, true, true).from_fixture("batchnorm2d", 1),
      batchnorm2d({3, 4, 6, 5}, 1e-05, 0.1, false, true, true).from_fixture("batchnorm2d", 2),
      batchnorm2d({2, 3, 7, 5}, 1e-05, 0.1, true, true, false).from_fixture("batchnorm2d", 3),
      batchnorm2d({3, 2, 4, 9}, 0.1, 0.5, false, true, false).from_fixture("batchnorm2d", 4),
      batchnorm2d({2, 3, 5, 5}, 1e-05, 0.1, true, false, false).from_fixture("batchnorm2d", 5),
      batchnorm2d({5, 2, 1, 1}, 1e-05, 1.0, true, true, true).from_fixture("batchnorm2d", 6),
      batchnorm2d({2, 4, 9, 7}, 1e-05, 0.0, true, true, true, 20.0f).from_fixture("batchnorm2d", 7),
      flatten({2, 3, 4, 5}, 1, -1).from_fixture("flatten", 0),
      flatten({2, 3, 4, 5}, 0, -1).from_fixture("flatten", 1),
      flatten({2, 3, 4, 5}, 1, 2).from_fixture("flatten", 2),
      flatten({2, 3, 4, 5}, -3, -2).from_fixture("flatten", 3),
      flatten({6}, 0, 0).from_fixture("flatten", 4),
      flatten({2, 1, 3}, 2, 2).from_fixture("flatten", 5),
      dropout({64, 32}, 0.3).from_fixture("dropout", 0),
      dropout({4, 5, 6}, 0.5).from_fixture("dropout", 1),
      dropout({10, 10}, 0.0).from_fixture("dropout", 2),
      dropout({20, 20}, 0.9).from_fixture("dropout", 3),
      dropout({3, 7}, 1.0).from_fixture("dropout", 4),
      dropout({2, 3, 4, 5}, 0.1).from_fixture("dropout", 5),
      softmax({4, 10}, 1, 1).from_fixture("softmax", 0),
      softmax({4, 10}, 0, 1).from_fixture("softmax", 1),
      softmax({2, 3, 5}, -1, 1).from_fixture("softmax", 2),
      softmax({2, 3, 5}, 1, 1).from_fixture("softmax", 3),
      softmax({1, 1}, 0, 1).from_fixture("softmax", 4),
      softmax({3, 4, 2, 5}, 2, 1).from_fixture("softmax", 5),
      softmax({3, 7}, 1, 300).from_fixture("softmax_large", 0),
      softmax({5, 4}, 0, 300).from_fixture("softmax_large", 1),
      softmax({2, 3, 6}, -1, 300).from_fixture("softmax_large", 2),
      softmax({6, 10}, 1, 300).from_fixture("softmax_large", 3),
      softmax({1, 3}, 1, 300).from_fixture("softmax_large", 4),
      softmax({4, 2}, 1, 300).from_fixture("softmax_large", 5),
      log_softmax({4, 10}, 1, 1).from_fixture("log_softmax", 0),
      log_softmax({4, 10}, 0, 1).from_fixture("log_softmax", 1),
      log_softmax({2, 3, 5}, -1, 1).from_fixture("log_softmax", 2),
      log_softmax({2, 3, 5}, 1, 1).from_fixture("log_softmax", 3),
      log_softmax({1, 1}, 0, 1).from_fixture("log_softmax", 4),
      log_softmax({3, 4, 2, 5}, 2, 1).from_fixture("log_softmax", 5),
      cross_entropy(64, 10).from_fixture("cross_entropy", 0),
      cross_entropy(1, 10).from_fixture("cross_entropy", 1),
      cross_entropy(5, 3).from_fixture("cross_entropy", 2),
      cross_entropy(7, 2).from_fixture("cross_entropy", 3),
      cross_entropy(3, 100).from_fixture("cross_entropy", 4),
      cross_entropy(6, 10, 50.0).from_fixture("cross_entropy", 5),

      // ---- beyond the fixtures ----
      // conv2d: tests/test_gradcheck.cpp's shapes; Winograd F(2x2, 3x3) (3x3, stride 1, output
      // channels in sixteens, output width up to 14) with padding, odd sizes, one image and
      // several; the tutorial's two convolutions; strides along one axis; 1x1 with stride 2;
      // TensorFlow's "same" with stride 2 (one more zero at the bottom and right).
      conv2d({2, 2, 7, 6}, 3, 3, 1, 0, 1, 1, true),
      conv2d({1, 4, 9, 8}, 4, Size2(3, 2), Size2(2, 3), Size2(1, 2), 2, 2, true),
      conv2d({2, 3, 8, 9}, 3, Size2(2, 3), 1, "same", Size2(2, 1), 3, true),
      conv2d({3, 5, 9, 12}, 16, 3, 1, 1, 1, 1, true),
      conv2d({1, 7, 13, 14}, 32, 3, 1, "same", 1, 1, false),
      conv2d({4, 1, 28, 28}, 16, 3, 1, 0, 1, 1, true),
      conv2d({2, 16, 14, 14}, 32, 3, 1, 0, 1, 1, true),
      conv2d({2, 3, 11, 10}, 6, Size2(3, 4), Size2(2, 1), Size2(1, 2), 1, 1, true),
      conv2d({2, 5, 7, 7}, 3, 1, 2, 0, 1, 1, false),
      conv2d({2, 3, 8, 7}, 4, 3, 2, Conv2dPadding::sides(0, 1, 1, 1), 1, 1, true),
      // maxpool2d: the gradient check's pool; the tutorial's 2x2 / stride 2 (its own vector
      // path) after even and odd sizes, padding 0 and 1, ceil_mode; per-side padding.
      maxpool2d({2, 3, 9, 8}, 3, 2, 1, Size2(1, 2), true),
      maxpool2d({4, 16, 26, 26}, 2, 2, 1, 1, false),
      maxpool2d({3, 2, 7, 9}, 2, 2, 0, 1, true),
      maxpool2d({2, 3, 5, 6}, 2, 2, 1, 1, true),
      maxpool2d({2, 2, 7, 8}, 2, 2, 0, 1, false, Size2(1, 1)),
      // avgpool2d and adaptive_avgpool2d: the gradient check's.
      avgpool2d({2, 3, 9, 8}, 3, 2, 1, true, true, std::nullopt),
      avgpool2d({2, 3, 9, 8}, 3, 2, 1, true, false, std::nullopt),
      avgpool2d({2, 3, 9, 8}, Size2(2, 3), Size2(1, 2), Size2(1, 0), false, true, 5),
      avgpool2d({2, 3, 9, 8}, 4, 3, 2, true, false, std::nullopt),
      adaptive_avgpool2d({2, 3, 7, 9}, Size2(3, 4)),
      adaptive_avgpool2d({2, 3, 7, 9}, 1),
      adaptive_avgpool2d({2, 3, 7, 9}, Size2(11, 6)),
      // linear: a 3-D input; one row (the fast kernels' SGEMV); many rows.
      linear({5, 3, 7}, 4, true),
      linear({1, 200}, 40, true),
      linear({70, 33}, 17, false),
      // The activations, softmax and log_softmax: the gradient check's slopes and dimensions.
      leaky_relu({3, 4, 5}, -0.5, 1.0),
      leaky_relu({3, 4, 5}, 2.0, 1.0),
      softmax({3, 5, 4}, 0),
      softmax({3, 5, 4}, 1),
      softmax({3, 5, 4}, -1),
      log_softmax({3, 5, 4}, 0),
      log_softmax({3, 5, 4}, 1),
      log_softmax({3, 5, 4}, -1),
      // batchnorm2d: the gradient check's shape, training and evaluation.
      batchnorm2d({3, 4, 5, 3}, 1e-5, 0.1, true, true, true),
      batchnorm2d({3, 4, 5, 3}, 1e-5, 0.1, true, true, false),
  });
  return cases;
}

}  // namespace cnn::op_table
