// Keras models (cnn/io/keras_model.h): the bytes parsed as JSON (depth bounded, as every reader
// parses), converted by keras_to_description as a to_json() document or a TF.js model.json's
// topology, and the description built. A description that converts must build (the conversion
// builds the same layers through cnn/nn/keras.h), and when small, one forward pass of a zero
// sample must give the output shape the build computed. cnn::Error is an expected refusal;
// anything else is a finding.
#include <cstdlib>
#include <string_view>

#include "cnn/error.h"
#include "cnn/io/json.h"
#include "cnn/io/keras_model.h"
#include "cnn/nn/grad_mode.h"
#include "cnn/nn/spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  nlohmann::json doc;
  try {
    doc = cnn::parse_json(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
  } catch (const cnn::Error&) {
    return 0;
  }
  (void)cnn::is_keras_json(doc);
  nlohmann::json description;
  try {
    description = cnn::keras_to_description(doc, "fuzz");
  } catch (const cnn::Error&) {
    return 0;
  }
  cnn::BuiltModel m;
  try {
    cnn::Generator gen(0);
    m = cnn::build_model(description, gen, "converted");
  } catch (const cnn::Error&) {
    std::abort();  // keras_to_description promises a description that builds
  }
  int64_t in = 1;
  for (const int64_t d : m.input) in *= d;
  if (m.parameters > (1 << 20) || in > (1 << 16)) return 0;  // keep each execution short
  cnn::Shape batched = {1};
  batched.insert(batched.end(), m.input.begin(), m.input.end());
  m.module->eval();
  cnn::NoGradGuard no_grad;
  try {
    const cnn::Tensor y = m.module->forward(cnn::Tensor::zeros(batched));
    cnn::Shape want = {1};
    want.insert(want.end(), m.output.begin(), m.output.end());
    if (y.shape() != want) std::abort();  // the shape arithmetic disagrees with the layers
  } catch (const cnn::Error&) {
    std::abort();  // a model that built must run
  }
  return 0;
}
