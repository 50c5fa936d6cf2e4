#include "cnn/kernels.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "cpu.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace cnn {

namespace {
std::atomic<KernelSet> g_kernel_set{KernelSet::Fast};
}  // namespace

void set_kernel_set(KernelSet set) { g_kernel_set = set; }
KernelSet kernel_set() { return g_kernel_set; }

void set_num_threads(int threads) {
#ifdef _OPENMP
  omp_set_num_threads(threads > 0 ? threads : omp_get_num_procs());
#else
  (void)threads;
#endif
}

int num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

bool detail::use_avx512() {
  static const bool yes = [] {
    const char* off = std::getenv("CNN_NO_AVX512");
    return __builtin_cpu_supports("avx512f") && !(off && std::strcmp(off, "0") != 0 && *off);
  }();
  return yes;
}

bool detail::use_winograd() {
  static const bool yes = [] {
    const char* off = std::getenv("CNN_NO_WINOGRAD");
    return !(off && std::strcmp(off, "0") != 0 && *off);
  }();
  return yes;
}

bool detail::use_avx2_fma() {
  static const bool yes = [] {
    const char* off = std::getenv("CNN_NO_AVX2");
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           !(off && std::strcmp(off, "0") != 0 && *off);
  }();
  return yes;
}

}  // namespace cnn
