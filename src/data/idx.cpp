#include "cnn/data/idx.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "cnn/error.h"

namespace cnn {

namespace {

constexpr uint32_t kImagesMagic = 0x00000803, kLabelsMagic = 0x00000801;

std::string hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// The whole file, decompressed when it is gzip (zlib reads raw files unchanged).
std::string read_all(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw Error(path + ": cannot open file (" + std::strerror(errno) + ")");
  std::unique_ptr<gzFile_s, int (*)(gzFile)> guard(f, gzclose);
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const int n = gzread(f, buf, sizeof buf);
    if (n < 0) {
      int code = 0;
      const char* msg = gzerror(f, &code);
      throw Error(path + ": corrupted gzip data (" + std::string(msg ? msg : "read error") + ")");
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  int code = 0;
  gzerror(f, &code);
  if (code != Z_OK && code != Z_BUF_ERROR) {
    throw Error(path + ": corrupted gzip data");
  }
  return out;
}

uint32_t be32(const std::string& s, std::size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data() + at);
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}

// Checks the header and the size; returns the dimensions.
std::vector<int64_t> parse_header(const std::string& path, const std::string& bytes,
                                  uint32_t want_magic, const char* what) {
  if (bytes.size() < 4) {
    throw Error(path + ": truncated IDX file (" + std::to_string(bytes.size()) + " bytes)");
  }
  const uint32_t magic = be32(bytes, 0);
  if (magic != want_magic) {
    throw Error(path + ": wrong magic number " + hex(magic) + ", expected " + hex(want_magic) +
                " (" + what + ")");
  }
  const std::size_t rank = want_magic & 0xff;
  if (bytes.size() < 4 + 4 * rank) throw Error(path + ": truncated IDX header");
  std::vector<int64_t> dims;
  uint64_t payload = 1;
  for (std::size_t i = 0; i < rank; ++i) {
    dims.push_back(be32(bytes, 4 + 4 * i));
    payload *= static_cast<uint64_t>(dims.back());
  }
  const uint64_t want = 4 + 4 * rank + payload, have = bytes.size();
  if (have < want) {
    throw Error(path + ": truncated IDX file: the header promises " + std::to_string(want) +
                " bytes, the file has " + std::to_string(have));
  }
  if (have > want) {
    throw Error(path + ": " + std::to_string(have - want) +
                " unexpected bytes after the data (the header promises " + std::to_string(want) +
                " bytes)");
  }
  return dims;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  const bool gz = path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  gzFile f = gzopen(path.c_str(), gz ? "wb" : "wbT");
  if (!f) throw Error(path + ": cannot open for writing");
  const int n = gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
  if (n != static_cast<int>(bytes.size())) throw Error(path + ": write failed");
}

void put_be32(std::string& s, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>((v >> shift) & 0xff));
}

}  // namespace

IdxImages read_idx_images(const std::string& path) {
  const std::string bytes = read_all(path);
  const auto dims = parse_header(path, bytes, kImagesMagic, "IDX images: unsigned bytes, 3-D");
  IdxImages img;
  img.count = dims[0];
  img.rows = dims[1];
  img.cols = dims[2];
  if (img.rows == 0 || img.cols == 0) {
    throw Error(path + ": images of size " + std::to_string(img.rows) + "x" +
                std::to_string(img.cols));
  }
  img.pixels.assign(bytes.begin() + 16, bytes.end());
  return img;
}

std::vector<uint8_t> read_idx_labels(const std::string& path) {
  const std::string bytes = read_all(path);
  parse_header(path, bytes, kLabelsMagic, "IDX labels: unsigned bytes, 1-D");
  return {bytes.begin() + 8, bytes.end()};
}

void write_idx_images(const std::string& path, const IdxImages& images) {
  std::string bytes;
  put_be32(bytes, kImagesMagic);
  put_be32(bytes, static_cast<uint32_t>(images.count));
  put_be32(bytes, static_cast<uint32_t>(images.rows));
  put_be32(bytes, static_cast<uint32_t>(images.cols));
  bytes.append(images.pixels.begin(), images.pixels.end());
  write_bytes(path, bytes);
}

void write_idx_labels(const std::string& path, const std::vector<uint8_t>& labels) {
  std::string bytes;
  put_be32(bytes, kLabelsMagic);
  put_be32(bytes, static_cast<uint32_t>(labels.size()));
  bytes.append(labels.begin(), labels.end());
  write_bytes(path, bytes);
}

}  // namespace cnn
