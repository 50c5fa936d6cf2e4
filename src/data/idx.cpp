#include "cnn/data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include "cnn/error.h"
#include "cnn/limits.h"
#include "cnn/tensor.h"

namespace cnn {

namespace {

constexpr uint32_t kImagesMagic = 0x00000803, kLabelsMagic = 0x00000801;

std::string hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// Reads an IDX file straight into its payload buffer (no whole-file copy: the training images
// are 47 MB), decompressing when it is gzip (zlib reads raw files unchanged).
class IdxReader {
 public:
  explicit IdxReader(const std::string& path) : path_(path), f_(gzopen(path.c_str(), "rb")) {
    if (!f_) throw Error(path + ": cannot open file (" + std::strerror(errno) + ")");
    gzbuffer(f_, 1 << 17);
  }
  ~IdxReader() { gzclose(f_); }
  IdxReader(const IdxReader&) = delete;
  IdxReader& operator=(const IdxReader&) = delete;

  // Reads up to n bytes; returns how many there were. Throws on corrupted gzip data.
  uint64_t read(void* dst, uint64_t n) {
    auto* out = static_cast<char*>(dst);
    uint64_t got = 0;
    while (got < n) {
      const auto chunk = static_cast<unsigned>(std::min<uint64_t>(n - got, 1u << 30));
      const int r = gzread(f_, out + got, chunk);
      if (r < 0) fail_corrupted();
      if (r == 0) break;
      got += static_cast<uint64_t>(r);
    }
    // (Z_BUF_ERROR is zlib's "unexpected end of file": a cut gzip stream, even one cut only in
    // its trailer, is corrupted.)
    int code = 0;
    gzerror(f_, &code);
    if (code != Z_OK) fail_corrupted();
    return got;
  }

  // Whether the file is read as it is (not gzip). Known once the first bytes are read.
  bool raw() { return gzdirect(f_) == 1; }

 private:
  [[noreturn]] void fail_corrupted() {
    int code = 0;
    const char* msg = gzerror(f_, &code);
    throw Error(path_ + ": corrupted gzip data (" + std::string(msg ? msg : "read error") + ")");
  }
  std::string path_;
  gzFile f_;
};

uint32_t be32(const unsigned char* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}

struct IdxFile {
  std::vector<int64_t> dims;
  std::vector<uint8_t> payload;
};

// Checks the magic number, the header and that the file holds exactly what the header promises.
// Nothing is allocated or inflated before the declared size is known to be possible: a raw file's
// size must match it, and no file may declare more than limits::kMaxIdxBytes. A gzip file is
// inflated into a buffer grown as the stream delivers, up to the declared size and one byte
// further, never to its end: a byte after the data is refused however many gigabytes of zeros would
// follow it.
IdxFile read_idx(const std::string& path, uint32_t want_magic, const char* what) {
  IdxReader in(path);
  unsigned char head[4 + 4 * 3];
  const uint64_t got_magic = in.read(head, 4);
  if (got_magic < 4)
    throw Error(path + ": truncated IDX file (" + std::to_string(got_magic) + " bytes)");
  const uint32_t magic = be32(head);
  if (magic != want_magic) {
    throw Error(path + ": wrong magic number " + hex(magic) + ", expected " + hex(want_magic) +
                " (" + what + ")");
  }
  const std::size_t rank = want_magic & 0xff;
  if (in.read(head + 4, 4 * rank) < 4 * rank) throw Error(path + ": truncated IDX header");
  IdxFile f;
  std::string dims_str;
  int64_t payload = 1;
  for (std::size_t i = 0; i < rank; ++i) {
    f.dims.push_back(be32(head + 4 + 4 * i));
    dims_str += (i ? " x " : "") + std::to_string(f.dims.back());
    payload = checked_mul(payload, f.dims.back(), path + ": the IDX header's size");
  }
  const uint64_t header = 4 + 4 * rank, want = header + static_cast<uint64_t>(payload);
  if (in.raw()) {
    std::error_code ec;
    const uint64_t size = std::filesystem::file_size(path, ec);
    if (!ec && size < want) {
      throw Error(path + ": truncated IDX file: the header promises " + std::to_string(want) +
                  " bytes, the file has " + std::to_string(size));
    }
    if (!ec && size > want) {
      throw Error(path + ": " + std::to_string(size - want) +
                  " unexpected bytes after the data (the header promises " + std::to_string(want) +
                  " bytes)");
    }
  }
  if (static_cast<uint64_t>(payload) > limits::kMaxIdxBytes) {
    throw Error(path + ": the header promises " + dims_str + " = " + std::to_string(payload) +
                " bytes of data, more than the limit of " + std::to_string(limits::kMaxIdxBytes) +
                " (cnn/limits.h; a corrupted header?)");
  }
  // A raw file's size is known to match, so its buffer is allocated whole. A gzip stream's is
  // grown as the stream delivers (at most doubling, from 1 MiB): a 30-byte file declaring 256 MiB
  // that ends after a few bytes allocates what it delivered, not what it declared.
  uint64_t got = 0;
  if (in.raw()) {
    f.payload.resize(static_cast<std::size_t>(payload));
    got = in.read(f.payload.data(), static_cast<uint64_t>(payload));
  } else {
    const uint64_t total = static_cast<uint64_t>(payload);
    while (got < total) {
      const uint64_t next = std::min<uint64_t>(total, std::max<uint64_t>(got * 2, 1u << 20));
      f.payload.resize(static_cast<std::size_t>(next));
      const uint64_t n = in.read(f.payload.data() + got, next - got);
      got += n;
      if (got < next) break;
    }
    f.payload.resize(static_cast<std::size_t>(got));
  }
  const uint64_t have = header + got;
  if (have < want) {
    throw Error(path + ": truncated IDX file: the header promises " + std::to_string(want) +
                " bytes, the file has " + std::to_string(have));
  }
  // One byte more: at the real end this also checks the gzip trailer's CRC and length.
  char extra = 0;
  if (in.read(&extra, 1) > 0) {
    throw Error(path + ": unexpected bytes after the data (the header promises " +
                std::to_string(want) + " bytes; the rest is not read)");
  }
  return f;
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
  IdxFile f = read_idx(path, kImagesMagic, "IDX images: unsigned bytes, 3-D");
  IdxImages img;
  img.count = f.dims[0];
  img.rows = f.dims[1];
  img.cols = f.dims[2];
  if (img.rows == 0 || img.cols == 0) {
    throw Error(path + ": images of size " + std::to_string(img.rows) + "x" +
                std::to_string(img.cols));
  }
  // Each dimension is below 2^32, so the product can pass 2^63 (found by fuzz/fuzz_idx.cpp).
  if (checked_mul(img.rows, img.cols, path + ": the image size") > limits::kMaxImagePixels) {
    throw Error(path + ": images of size " + std::to_string(img.rows) + "x" +
                std::to_string(img.cols) + ", more pixels than the limit of " +
                std::to_string(limits::kMaxImagePixels) + " (cnn/limits.h)");
  }
  img.pixels = std::move(f.payload);
  return img;
}

std::vector<uint8_t> read_idx_labels(const std::string& path) {
  return read_idx(path, kLabelsMagic, "IDX labels: unsigned bytes, 1-D").payload;
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
