// The IDX reader (cnn/data/idx.h), raw and gzip. The first byte chooses:
//   bit 0: images (0x803) or labels (0x801)
//   bit 1: the rest is gzip-compressed by the harness first, so that the reader's header and
//          size checks are reached through zlib as well as directly (a seed that is already a
//          .gz file exercises zlib's handling of corrupted streams instead).
// Every cnn::Error is an expected refusal; anything else (a crash, a sanitizer report, another
// exception, an allocation over -rss_limit_mb) is a finding.
#include <zlib.h>

#include <cstring>
#include <string>

#include "cnn/data/idx.h"
#include "cnn/error.h"
#include "fuzz_common.h"

namespace {

std::string gzip(const uint8_t* data, std::size_t size) {
  z_stream z{};
  if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    std::abort();
  std::string out(deflateBound(&z, size) + 32, '\0');
  z.next_in = const_cast<Bytef*>(data);
  z.avail_in = static_cast<uInt>(size);
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) std::abort();
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  const bool labels = mode & 1, compress = mode & 2;
  const uint8_t* body = data + 1;
  const std::size_t n = size - 1;
  cnn::fuzz::ScratchFile file(compress ? ".gz" : "");
  if (compress) {
    const std::string z = gzip(body, n);
    file.write(z.data(), z.size());
  } else {
    file.write(body, n);
  }
  try {
    if (labels) {
      const auto l = cnn::read_idx_labels(file.path());
      // A raw (not gzip) file is the 8-byte header and exactly the labels.
      const bool gz_magic = n >= 2 && body[0] == 0x1f && body[1] == 0x8b;
      if (!compress && !gz_magic && l.size() + 8 != n) std::abort();
    } else {
      const auto im = cnn::read_idx_images(file.path());
      // What the reader promises: the payload is exactly count * rows * cols.
      if (static_cast<int64_t>(im.pixels.size()) != im.count * im.rows * im.cols) std::abort();
    }
  } catch (const cnn::Error&) {
  }
  return 0;
}
