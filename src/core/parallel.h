// Splitting a range of work across the OpenMP threads in contiguous chunks, one per thread (so
// that each chunk can be one call of a vector loop or one SGEMM).
#pragma once

#include <algorithm>
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace cnn::detail {

// Calls f(lo, hi) on each thread's share of [0, n); below min_n, once on the calling thread
// (a parallel region costs more than it saves on little work).
template <class F>
void parallel_chunks(int64_t n, int64_t min_n, F&& f) {
  if (n < min_n) {
    if (n > 0) f(int64_t{0}, n);
    return;
  }
#pragma omp parallel
  {
#ifdef _OPENMP
    const int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
#else
    const int64_t t = 0, T = 1;
#endif
    const int64_t chunk = (n + T - 1) / T, lo = std::min(n, t * chunk),
                  hi = std::min(n, lo + chunk);
    if (hi > lo) f(lo, hi);
  }
}

}  // namespace cnn::detail
