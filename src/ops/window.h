// Helpers shared by the sliding-window ops (conv2d, maxpool2d): the output positions at which
// one kernel tap lands inside the input.
#pragma once

#include <algorithm>
#include <cstdint>

namespace cnn::detail {

// The half-open range [lo, hi) of output positions o with 0 <= o * S + offset < n, clipped to
// [0, n_out). offset is the tap's position relative to the window start: k * D - P.
struct OutRange {
  int64_t lo, hi;
};
inline OutRange tap_range(int64_t offset, int64_t S, int64_t n, int64_t n_out) {
  int64_t lo = offset >= 0 ? 0 : (-offset + S - 1) / S;
  int64_t hi = (n - 1 - offset) < 0 ? 0 : (n - 1 - offset) / S + 1;
  lo = std::min(lo, n_out);
  hi = std::clamp(hi, lo, n_out);
  return {lo, hi};
}

}  // namespace cnn::detail
