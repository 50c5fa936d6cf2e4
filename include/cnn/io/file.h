// Writing files so that a crash, a power cut or a full disk never leaves a partial file where a
// good one was: the bytes go to PATH.tmp, which is flushed to the disk (fsync), renamed over PATH,
// and the directory flushed in turn.
#pragma once

#include <string>

namespace cnn {

// Throws cnn::Error naming the path when it cannot write; PATH is then left as it was.
void write_file_atomically(const std::string& path, const std::string& bytes);

}  // namespace cnn
