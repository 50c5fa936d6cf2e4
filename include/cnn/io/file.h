// Reading a whole untrusted file with its size checked first, and writing files so that a crash, a
// power cut or a full disk never leaves a partial file where a good one was: the bytes go to
// PATH.tmp, which is flushed to the disk (fsync), renamed over PATH, and the directory flushed in
// turn.
#pragma once

#include <cstdint>
#include <string>

namespace cnn {

// The whole of a file that may hold at most max_bytes, read after its size is checked. `what`
// names the kind of file in errors ("a model file", "an ONNX file"): "PATH: is a directory, not a
// model file", "PATH: cannot open a model file (no such file)", "PATH: N bytes, more than a model
// file may have (M, cnn/limits.h)".
std::string read_file_bounded(const std::string& path, uint64_t max_bytes, const std::string& what);

// Throws cnn::Error naming the path when it cannot write; PATH is then left as it was.
void write_file_atomically(const std::string& path, const std::string& bytes);

}  // namespace cnn
