// The exported ONNX files in a second runtime, OpenCV dnn 4.6 (Debian's libopencv-dnn-dev):
// every model file in models/, the tutorial's model trained briefly on MNIST and the models that
// hold every layer type (tests/onnx_export_models.h), at opsets 17, 13 and 11, on real MNIST
// images in batches of 1 and more, compared with cnn's logits to 1e-5 of their scale. One
// limitation of OpenCV's is documented below (DilatedMaxPool).
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include "onnx_export_models.h"

namespace cnn::onnx_test {
namespace {

// The model's output in OpenCV dnn for one input batch (a fresh network per call: OpenCV keeps
// the shapes of the first input it saw).
std::vector<float> run_in_opencv(const std::string& onnx, const Tensor& x, Shape& shape) {
  cv::dnn::Net net = cv::dnn::readNetFromONNX(onnx.data(), onnx.size());
  net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
  std::vector<int> sizes(x.shape().begin(), x.shape().end());
  cv::Mat blob(static_cast<int>(sizes.size()), sizes.data(), CV_32F);
  std::memcpy(blob.ptr<float>(), x.data(), static_cast<std::size_t>(x.numel()) * sizeof(float));
  net.setInput(blob, "input");
  cv::Mat out = net.forward("output");
  shape.clear();
  for (int d = 0; d < out.dims; ++d) shape.push_back(out.size[d]);
  cv::Mat dense = out.isContinuous() ? out : out.clone();
  const float* p = dense.ptr<float>();
  return std::vector<float>(p, p + dense.total());
}

void expect_matches_opencv(const ExportCase& c, const std::vector<int>& opsets, int64_t batch) {
  SCOPED_TRACE(c.name);
  for (int64_t n : {int64_t{1}, batch}) {
    const Tensor x = input_batch(c, n);
    const std::vector<float> want = cnn_logits(c, x);
    const Shape want_shape = c.model->output_shape(x.shape());
    for (int opset : opsets) {
      SCOPED_TRACE("opset " + std::to_string(opset) + ", batch " + std::to_string(n));
      const std::string bytes = export_onnx(*c.model, c.input, c.name, {opset, ""});
      Shape shape;
      std::vector<float> got;
      try {
        got = run_in_opencv(bytes, x, shape);
      } catch (const cv::Exception& e) {
        ADD_FAILURE() << "OpenCV dnn refused or failed: " << e.what();
        continue;
      }
      EXPECT_EQ(shape, want_shape);
      const double rel = max_rel_diff(got, want);
      std::printf("[OpenCV] %-20s opset %2d batch %3lld: max |cv - cnn| / max |cnn| = %.3g\n",
                  c.name.c_str(), opset, static_cast<long long>(n), rel);
      EXPECT_LE(rel, kOnnxRelTol);
    }
  }
}

bool have_mnist() { return std::filesystem::exists(source_path("data/mnist")); }

TEST(OnnxOpenCV, EveryModelFileMatches) {
  ASSERT_TRUE(have_mnist()) << missing_mnist_message();
  const auto cases = model_file_cases();
  ASSERT_GE(cases.size(), 6u);
  for (const auto& c : cases) expect_matches_opencv(c, {17, 13, 11}, 16);
}

TEST(OnnxOpenCV, TrainedTutorialModelMatches) {
  ASSERT_TRUE(have_mnist()) << missing_mnist_message();
  expect_matches_opencv(trained_tutorial_case(), {17, 13, 11}, 64);
}

TEST(OnnxOpenCV, EveryLayerTypeMatches) {
  ASSERT_TRUE(have_mnist()) << missing_mnist_message();
  for (const auto& c : coverage_cases()) expect_matches_opencv(c, {17, 13, 11}, 9);
  expect_matches_opencv(flat_input_case(), {17, 13, 11}, 9);
}

// OpenCV dnn 4.6 does not read MaxPool's dilations (its Pooling layer has no dilation): it pools
// as if the dilation were 1, and its output has that shape. The test checks that this is what
// happens (else it fails) and skips naming the limitation; ONNX Runtime runs the same export
// (OnnxExport.EveryLayerTypeMatchesOnnxRuntime). It passes once OpenCV reads dilations.
TEST(OnnxOpenCV, DilatedMaxPool) {
  ASSERT_TRUE(have_mnist()) << missing_mnist_message();
  const ExportCase c = dilated_maxpool_case();
  const Tensor x = input_batch(c, 2);
  const std::vector<float> want = cnn_logits(c, x);
  const Shape want_shape = c.model->output_shape(x.shape());
  Shape shape;
  const auto got = run_in_opencv(export_onnx(*c.model, c.input), x, shape);
  if (shape != want_shape) {
    // The shape of the same pooling without dilation.
    auto undilated = c.model->config();
    undilated["layers"][1]["dilation"] = 1;
    const Shape plain = build_model({{"input", c.input}, {"layers", undilated["layers"]}})
                            .module->output_shape(x.shape());
    ASSERT_EQ(shape, plain) << "OpenCV's output " << shape_str(shape)
                            << " is neither cnn's nor that of the pooling without dilation";
    GTEST_SKIP() << "OpenCV dnn 4.6 ignores MaxPool's dilations: its output is " << shape_str(shape)
                 << ", that of the undilated pooling, where cnn and ONNX "
                 << "Runtime give " << shape_str(want_shape);
  }
  EXPECT_LE(max_rel_diff(got, want), kOnnxRelTol);
}

}  // namespace
}  // namespace cnn::onnx_test
