// ONNX files (cnn/io/onnx.h): the file read, parsed by protobuf and converted; when it converts,
// the model must build from its description and take its weights (load_imported), and, when
// small, one forward pass of a zero sample must give the output shape the build computed.
// cnn::Error is an expected refusal; anything else is a finding.
#include <string>

#include "cnn/error.h"
#include "cnn/io/checkpoint.h"
#include "cnn/io/onnx.h"
#include "cnn/nn/grad_mode.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  cnn::fuzz::ScratchFile file(".onnx");
  file.write(data, size);
  try {
    const cnn::ImportedModel imported = cnn::import_onnx(file.path());
    const cnn::LoadedModel m = cnn::load_imported(imported, file.path());
    int64_t in = 1;
    for (const int64_t d : m.input) in *= d;
    int64_t parameters = 0;
    for (const auto& [name, t] : m.model->state_dict()) parameters += t.numel();
    if (parameters > (1 << 20) || in > (1 << 16)) return 0;  // keep each execution short
    cnn::Shape batched = {1};
    batched.insert(batched.end(), m.input.begin(), m.input.end());
    cnn::NoGradGuard no_grad;
    const cnn::Tensor y = m.model->forward(cnn::Tensor::zeros(batched));
    cnn::Shape want = {1};
    want.insert(want.end(), m.output.begin(), m.output.end());
    if (y.shape() != want) std::abort();  // the shape arithmetic disagrees with the layers
  } catch (const cnn::Error&) {
  }
  return 0;
}
