#include "cnn/io/archive.h"

#include <zlib.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "cnn/error.h"
#include "cnn/io/file.h"

namespace cnn {

namespace {

constexpr char kMagic[8] = {'C', 'N', 'N', 'A', 'R', 'C', 'H', '1'};

uint32_t crc32_of(const char* data, std::size_t n) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (n > 0) {
    const auto chunk = static_cast<uInt>(std::min<std::size_t>(n, 1u << 30));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(data), chunk);
    data += chunk;
    n -= chunk;
  }
  return static_cast<uint32_t>(crc);
}

template <class T>
T read_le(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);  // the supported platforms are little-endian
  return v;
}

}  // namespace

bool Archive::has(const std::string& name) const {
  for (const auto& [n, t] : tensors) {
    if (n == name) return true;
  }
  return false;
}

const Tensor& Archive::get(const std::string& name) const {
  for (const auto& [n, t] : tensors) {
    if (n == name) return t;
  }
  throw Error(source + ": no tensor named '" + name + "'");
}

Archive read_archive(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open file (" + std::strerror(errno) + ")");
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto fail = [&](const std::string& what) { throw Error(path + ": " + what); };
  if (bytes.size() < sizeof kMagic + 8 + 4)
    fail("truncated file (" + std::to_string(bytes.size()) + " bytes)");
  if (std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    fail("not a cnn archive (bad magic number)");
  }
  const uint32_t stored_crc = read_le<uint32_t>(bytes.data() + bytes.size() - 4);
  const auto header_size = read_le<uint64_t>(bytes.data() + 8);
  const std::size_t data_start = 16 + header_size;
  if (header_size > bytes.size() || data_start > bytes.size() - 4) {
    fail("truncated file (header of " + std::to_string(header_size) + " bytes does not fit)");
  }
  if (crc32_of(bytes.data(), bytes.size() - 4) != stored_crc) {
    fail("checksum mismatch: the file is corrupted or truncated");
  }
  Archive a;
  a.source = path;
  nlohmann::json header;
  try {
    header =
        nlohmann::json::parse(bytes.begin() + 16, bytes.begin() + static_cast<long>(data_start));
    a.meta = header.value("meta", nlohmann::json::object());
    const std::size_t data_size = bytes.size() - 4 - data_start;
    for (const auto& e : header.at("tensors")) {
      const auto name = e.at("name").get<std::string>();
      const auto shape = e.at("shape").get<Shape>();
      const auto offset = e.at("offset").get<uint64_t>();
      for (int64_t d : shape) {
        if (d < 0) fail("tensor '" + name + "' has a negative dimension");
      }
      const auto nbytes = static_cast<uint64_t>(shape_numel(shape)) * sizeof(float);
      if (offset > data_size || nbytes > data_size - offset) {
        fail("tensor '" + name + "' of shape " + shape_str(shape) + " lies outside the data");
      }
      Tensor t(shape);
      std::memcpy(t.data(), bytes.data() + data_start + offset, nbytes);
      a.add(name, std::move(t));
    }
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("malformed header: ") + e.what());
  }
  return a;
}

void write_archive(const std::string& path, const Archive& archive) {
  nlohmann::json header;
  header["meta"] = archive.meta;
  header["tensors"] = nlohmann::json::array();
  uint64_t offset = 0;
  for (const auto& [name, t] : archive.tensors) {
    header["tensors"].push_back({{"name", name}, {"shape", t.shape()}, {"offset", offset}});
    offset += static_cast<uint64_t>(t.numel()) * sizeof(float);
  }
  const std::string h = header.dump();
  std::string bytes(kMagic, sizeof kMagic);
  const uint64_t header_size = h.size();
  bytes.append(reinterpret_cast<const char*>(&header_size), 8);
  bytes += h;
  for (const auto& [name, t] : archive.tensors) {
    bytes.append(reinterpret_cast<const char*>(t.data()), static_cast<std::size_t>(t.numel()) * 4);
  }
  const uint32_t crc = crc32_of(bytes.data(), bytes.size());
  bytes.append(reinterpret_cast<const char*>(&crc), 4);

  write_file_atomically(path, bytes);
}

}  // namespace cnn
