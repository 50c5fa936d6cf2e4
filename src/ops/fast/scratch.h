// Per-thread scratch buffers of the fast kernels.
#pragma once

#include <cstdint>
#include <vector>

namespace cnn::fast {

// buf's storage for at least n elements. The buffer only grows: no allocation in a steady-state
// training step, and no zeroing when layers of different sizes take turns.
template <class T>
T* scratch(std::vector<T>& buf, int64_t n) {
  if (static_cast<int64_t>(buf.size()) < n) buf.resize(static_cast<std::size_t>(n));
  return buf.data();
}

}  // namespace cnn::fast
