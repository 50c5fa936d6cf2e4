// Errors thrown by the library. Nothing in the library prints or exits: it throws a cnn::Error
// whose message names the layer (with its path in the model, when known), the shapes involved and
// what was expected.
#pragma once

#include <cstddef>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>

#include "cnn/limits.h"

namespace cnn {

class Error : public std::runtime_error {
 public:
  explicit Error(std::string message) : std::runtime_error(message), detail_(std::move(message)) {}

  // Adds the layer that raised the error, e.g. "Conv2d(1, 16, kernel_size=(3, 3), stride=(1, 1))".
  // Only the innermost layer is kept.
  void set_layer(const std::string& layer) {
    if (layer_.empty()) layer_ = layer;
    rebuild();
  }
  // Prepends one level of the module path: "0" then "conv1" gives "conv1.0".
  void prepend_path(const std::string& name) {
    path_ = path_.empty() ? name : name + "." + path_;
    rebuild();
  }

  const char* what() const noexcept override {
    return message_.empty() ? detail_.c_str() : message_.c_str();
  }
  const std::string& detail() const { return detail_; }
  const std::string& path() const { return path_; }

 private:
  void rebuild() {
    message_.clear();
    if (!path_.empty()) message_ += path_ + ": ";
    if (!layer_.empty()) message_ += layer_ + ": ";
    message_ += detail_;
  }
  std::string detail_, layer_, path_, message_;
};

// At most `max` bytes of untrusted text, for an error message: what is printable ASCII or valid
// UTF-8 (other than control characters) is kept, every other byte is written \xNN, so the
// message stays one line of valid text; a longer text is cut, with its full size said:
// "[[[[[[… (100000 bytes)". Never echo a file's or a request's contents without it.
inline std::string excerpt(std::string_view text, std::size_t max = limits::kExcerpt) {
  // The length of the valid UTF-8 sequence of a printable character at text[i], or 0.
  auto utf8_length = [&](std::size_t i) -> std::size_t {
    const auto b = [&](std::size_t k) {
      return i + k < text.size() ? static_cast<unsigned char>(text[i + k]) : 0u;
    };
    const unsigned c = b(0);
    const auto cont = [&](std::size_t k) { return (b(k) & 0xC0u) == 0x80u; };
    if (c >= 0xC2 && c <= 0xDF) return c == 0xC2 && b(1) < 0xA0 ? 0 : (cont(1) ? 2 : 0);  // no C1
    if (c >= 0xE0 && c <= 0xEF) {
      const unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;  // no surrogates
      return b(1) >= lo && b(1) <= hi && cont(2) ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
      const unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
      return b(1) >= lo && b(1) <= hi && cont(2) && cont(3) ? 4 : 0;
    }
    return 0;
  };
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7F) {
      if (i + 1 > max) break;
      out += static_cast<char>(c);
      ++i;
    } else if (const std::size_t n = utf8_length(i); n > 0) {
      if (i + n > max) break;
      out.append(text.substr(i, n));
      i += n;
    } else {
      if (i + 1 > max) break;
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
      ++i;
    }
  }
  if (i < text.size()) out += "\xE2\x80\xA6 (" + std::to_string(text.size()) + " bytes)";
  return out;
}

}  // namespace cnn
