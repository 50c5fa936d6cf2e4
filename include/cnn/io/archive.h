// The tensor archive: one self-describing binary file of named float32 tensors plus JSON
// metadata, protected by a CRC-32. Used for the test fixtures that PyTorch writes
// (tools/gen_fixtures.py) and as the container of checkpoints.
//
// Layout (little-endian):
//   "CNNARCH1"                      8 bytes, magic and version
//   u64 header_size
//   header                          JSON: {"meta": {...}, "tensors": [{"name", "shape", "offset"}]}
//                                   offset: bytes from the start of the data section
//   data                            float32 values, row-major
//   u32 crc32                       of every byte before it
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "cnn/tensor.h"

namespace cnn {

struct Archive {
  nlohmann::json meta = nlohmann::json::object();
  std::vector<std::pair<std::string, Tensor>> tensors;
  std::string source;  // the path it was read from, for error messages

  bool has(const std::string& name) const;
  // Throws, naming the archive and the tensor, when there is none by that name.
  const Tensor& get(const std::string& name) const;
  void add(std::string name, Tensor t) { tensors.emplace_back(std::move(name), std::move(t)); }
};

// Throws cnn::Error naming the file and what is wrong (missing, truncated, bad magic,
// checksum mismatch, malformed header, a size over the limits of cnn/limits.h: the file, the
// header, its JSON depth, a tensor's elements). Errors quote only an excerpt of the file.
Archive read_archive(const std::string& path);
// Writes to path + ".tmp" and renames it over path (write_file_atomically, cnn/io/file.h: fsync
// before the rename, of the directory after), so a crash never leaves a partial file.
void write_archive(const std::string& path, const Archive& archive);

}  // namespace cnn
