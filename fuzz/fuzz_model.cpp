// Model files (cnn/nn/spec.h): the file read and parsed, the model built from it. When it builds
// and is small, it must keep the factory's promises: one forward pass of a zero sample gives the
// output shape the build computed, and the model's own description builds the same model again.
// cnn::Error is an expected refusal; anything else is a finding.
#include <string>

#include "cnn/error.h"
#include "cnn/nn/grad_mode.h"
#include "cnn/nn/spec.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  cnn::fuzz::ScratchFile file(".json");
  file.write(data, size);
  try {
    const nlohmann::json description = cnn::read_model_file(file.path());
    cnn::Generator gen(0);
    const cnn::BuiltModel m = cnn::build_model(description, gen, file.path());
    int64_t in = 1;
    for (const int64_t d : m.input) in *= d;
    if (m.parameters > (1 << 20) || in > (1 << 16)) return 0;  // keep each execution short
    cnn::Shape batched = {1};
    batched.insert(batched.end(), m.input.begin(), m.input.end());
    m.module->eval();
    cnn::NoGradGuard no_grad;
    const cnn::Tensor y = m.module->forward(cnn::Tensor::zeros(batched));
    cnn::Shape want = {1};
    want.insert(want.end(), m.output.begin(), m.output.end());
    if (y.shape() != want) std::abort();  // the shape arithmetic disagrees with the layers
    const cnn::BuiltModel again =
        cnn::build_model(cnn::describe_model(*m.module, m.input), gen, "described");
    if (again.module->repr() != m.module->repr()) std::abort();
  } catch (const cnn::Error&) {
  }
  return 0;
}
