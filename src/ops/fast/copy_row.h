// Copying the short rows that the fast kernels pad or deal: rows of 10 to 30 floats, where calls
// to memcpy cost more than the copy (they took 14 % of the tutorial's inference).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace cnn::fast {

// dst[0, n) = src[0, n) by vectors of 8, the last one moved back over the one before (so that
// nothing outside [0, n) is read or written); under 8 floats one by one. For the kernels' AVX2
// paths (the caller has AVX2).
__attribute__((target("avx2"), always_inline)) inline void copy_row_avx2(const float* src,
                                                                         int64_t n, float* dst) {
  if (n < 8) {
    for (int64_t c = 0; c < n; ++c) dst[c] = src[c];
    return;
  }
  for (int64_t c = 0;; c += 8) {
    if (c > n - 8) c = n - 8;
    _mm256_storeu_ps(dst + c, _mm256_loadu_ps(src + c));
    if (c == n - 8) break;
  }
}

}  // namespace cnn::fast
