// Size2: an (h, w) pair given as one int or as two, as PyTorch's kernel_size/stride/padding/
// dilation are. It remembers which form it was given so that a module prints as PyTorch does.
#pragma once

#include <cstdint>
#include <string>

namespace cnn {

struct Size2 {
  int64_t h = 0, w = 0;
  bool scalar = true;  // given as one int

  Size2() = default;
  Size2(int64_t v) : h(v), w(v), scalar(true) {}  // NOLINT: implicit like PyTorch's int-or-tuple
  Size2(int64_t h_, int64_t w_) : h(h_), w(w_), scalar(false) {}

  bool operator==(const Size2& o) const { return h == o.h && w == o.w; }
  bool all(int64_t v) const { return h == v && w == v; }
  // "(3, 3)"
  std::string pair_str() const { return "(" + std::to_string(h) + ", " + std::to_string(w) + ")"; }
  // "3" when given as one int, else "(3, 2)"
  std::string str() const { return scalar ? std::to_string(h) : pair_str(); }
};

}  // namespace cnn
