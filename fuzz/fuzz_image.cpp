// Image decoding (cnn/viz/image.h) and the digit preparation behind `cnn predict --image`
// (cnn/data/digit.h): any bytes as a file, decoded to gray and to RGB, then, when it decodes,
// prepared as an MNIST digit. cnn::Error is an expected refusal; anything else is a finding.
#include <string>

#include "cnn/data/digit.h"
#include "cnn/error.h"
#include "cnn/viz/image.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  // No extension: the decoder must recognise the format from the bytes, as `--image` does.
  cnn::fuzz::ScratchFile file;
  file.write(data, size);
  try {
    const cnn::GrayImage g = cnn::read_gray_image(file.path());
    if (g.width <= 0 || g.height <= 0 ||
        g.pixels.size() != static_cast<std::size_t>(g.width * g.height)) {
      std::abort();  // a decoded image is never empty or inconsistent
    }
    try {
      const cnn::DigitSteps steps = cnn::preprocess_digit(g);
      if (steps.centered.width != 28 || steps.centered.height != 28) std::abort();
      const cnn::Tensor x = cnn::digit_tensor(steps.centered);
      if (x.numel() != 28 * 28) std::abort();
    } catch (const cnn::Error&) {
    }
  } catch (const cnn::Error&) {
  }
  try {
    const cnn::RgbImage rgb = cnn::read_rgb_image(file.path());
    if (rgb.rgb.size() != static_cast<std::size_t>(rgb.width * rgb.height * 3)) std::abort();
  } catch (const cnn::Error&) {
  }
  return 0;
}
