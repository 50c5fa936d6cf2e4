// The tensor archive and checkpoint readers (cnn/io/archive.h, cnn/io/checkpoint.h). The first
// byte chooses:
//   bit 0: append the CRC-32 of the rest, so that the header parser and the checkpoint loader
//          are reached (a random mutation otherwise almost always stops at the checksum)
//   bit 1: also load it as a checkpoint and, when that succeeds, run the model on one image
// cnn::Error is an expected refusal; anything else is a finding.
#include <zlib.h>

#include <string>

#include "cnn/error.h"
#include "cnn/io/archive.h"
#include "cnn/io/checkpoint.h"
#include "cnn/nn/grad_mode.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  if (mode & 1) {
    const auto crc = static_cast<uint32_t>(crc32(crc32(0L, Z_NULL, 0),
                                                 reinterpret_cast<const Bytef*>(bytes.data()),
                                                 static_cast<uInt>(bytes.size())));
    for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  }
  cnn::fuzz::ScratchFile file(".cnnt");
  file.write(bytes.data(), bytes.size());
  try {
    const cnn::Archive a = cnn::read_archive(file.path());
    for (const auto& [name, t] : a.tensors) {
      if (!a.has(name) || a.get(name).numel() < 0) std::abort();
    }
  } catch (const cnn::Error&) {
  }
  if (mode & 2) {
    try {
      const cnn::LoadedModel m = cnn::load_checkpoint(file.path());
      cnn::NoGradGuard no_grad;
      (void)m.model->forward(cnn::Tensor::zeros({1, 1, 28, 28}));
    } catch (const cnn::Error&) {
    }
  }
  return 0;
}
