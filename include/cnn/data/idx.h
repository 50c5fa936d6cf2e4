// IDX files (the MNIST format), raw or gzip-compressed, fully validated: magic number, rank,
// dimensions and exact size. Errors name the file and the problem.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cnn {

struct IdxImages {
  int64_t count = 0, rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  // count * rows * cols, row-major
};

// Magic 0x00000803: unsigned bytes, 3 dimensions (count, rows, cols).
IdxImages read_idx_images(const std::string& path);
// Magic 0x00000801: unsigned bytes, 1 dimension (count).
std::vector<uint8_t> read_idx_labels(const std::string& path);

// Writers, for tests and tools: raw when the path does not end in ".gz", else gzip.
void write_idx_images(const std::string& path, const IdxImages& images);
void write_idx_labels(const std::string& path, const std::vector<uint8_t>& labels);

}  // namespace cnn
