#include "cnn/io/archive.h"

#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>

#include "cnn/error.h"
#include "cnn/io/file.h"
#include "cnn/io/json.h"
#include "cnn/limits.h"

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
  auto fail = [&](const std::string& what) { throw Error(path + ": " + what); };
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open file (" + std::strerror(errno) + ")");
  // The size first: the whole file is read into memory.
  in.seekg(0, std::ios::end);
  const std::streamoff file_size = in.tellg();
  in.seekg(0, std::ios::beg);
  if (file_size < 0) fail("cannot read the file");
  if (static_cast<uint64_t>(file_size) > limits::kMaxArchiveBytes) {
    fail("the file has " + std::to_string(file_size) + " bytes, more than the limit of " +
         std::to_string(limits::kMaxArchiveBytes) + " (cnn/limits.h)");
  }
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() < sizeof kMagic + 8 + 4)
    fail("truncated file (" + std::to_string(bytes.size()) + " bytes)");
  if (std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    fail("not a cnn archive (bad magic number)");
  }
  const uint32_t stored_crc = read_le<uint32_t>(bytes.data() + bytes.size() - 4);
  const auto header_size = read_le<uint64_t>(bytes.data() + 8);
  // (header_size is checked against the file's size before 16 + header_size can wrap.)
  if (header_size > bytes.size() || 16 + header_size > bytes.size() - 4) {
    fail("truncated file (header of " + std::to_string(header_size) + " bytes does not fit)");
  }
  const std::size_t data_start = 16 + header_size;
  if (header_size > limits::kMaxArchiveHeaderBytes) {
    fail("header of " + std::to_string(header_size) + " bytes, more than the limit of " +
         std::to_string(limits::kMaxArchiveHeaderBytes) + " (cnn/limits.h)");
  }
  if (crc32_of(bytes.data(), bytes.size() - 4) != stored_crc) {
    fail("checksum mismatch: the file is corrupted or truncated");
  }
  const std::string_view header_text(bytes.data() + 16, header_size);
  if (json_depth(header_text) > limits::kMaxJsonDepth) {
    fail("malformed header: JSON nested deeper than " + std::to_string(limits::kMaxJsonDepth) +
         " levels (the limit, cnn/limits.h): " + excerpt(header_text));
  }
  Archive a;
  a.source = path;
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(header_text);
    a.meta = header.value("meta", nlohmann::json::object());
    const std::size_t data_size = bytes.size() - 4 - data_start;
    for (const auto& e : header.at("tensors")) {
      const auto name = e.at("name").get<std::string>();
      const std::string quoted = "tensor '" + excerpt(name) + "'";
      // Each dimension an integer in [0, 2^63): a float or an unsigned above int64 would
      // otherwise convert silently.
      Shape shape;
      for (const auto& d : e.at("shape")) {
        if (!d.is_number_integer() || (d.is_number_unsigned() && d.get<uint64_t>() > INT64_MAX) ||
            (!d.is_number_unsigned() && d.get<int64_t>() < 0)) {
          fail(quoted + " has an invalid dimension " + excerpt(d.dump()) + " in its shape");
        }
        shape.push_back(d.get<int64_t>());
      }
      const auto offset = e.at("offset").get<uint64_t>();
      int64_t numel = 0;
      try {
        numel = checked_numel(shape, quoted);  // the dimensions are >= 0: only overflow throws
      } catch (const Error& err) {
        fail(err.what());
      }
      if (numel > limits::kMaxTensorElements) {
        fail(quoted + " of shape " + shape_str(shape) + " has more elements than the limit of " +
             std::to_string(limits::kMaxTensorElements) + " (cnn/limits.h)");
      }
      const uint64_t nbytes = static_cast<uint64_t>(numel) * sizeof(float);  // < 2^33: no wrap
      if (offset > data_size || nbytes > data_size - offset) {
        fail(quoted + " of shape " + shape_str(shape) + " lies outside the data");
      }
      Tensor t(shape);
      std::memcpy(t.data(), bytes.data() + data_start + offset, nbytes);
      a.add(name, std::move(t));
    }
  } catch (const nlohmann::json::exception& e) {
    fail("malformed header: " + excerpt(e.what(), 4 * limits::kExcerpt));
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
    const Tensor host = t.cpu();  // a model or optimizer state on CUDA is saved from a copy
    bytes.append(reinterpret_cast<const char*>(host.data()),
                 static_cast<std::size_t>(host.numel()) * 4);
  }
  const uint32_t crc = crc32_of(bytes.data(), bytes.size());
  bytes.append(reinterpret_cast<const char*>(&crc), 4);

  write_file_atomically(path, bytes);
}

}  // namespace cnn
