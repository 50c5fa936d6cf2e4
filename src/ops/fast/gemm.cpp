#include "gemm.h"

#include <cblas.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <mutex>
#include <string>

// OpenBLAS's own (pthreads) build: stops its worker threads. Weak, so that a build of OpenBLAS
// without it (serial, OpenMP) still links; then it is null.
extern "C" int blas_thread_shutdown_(void) __attribute__((weak));
// A build of OpenBLAS for several processors (DYNAMIC_ARCH, as Debian's): forgets the kernel set
// it chose, and chooses again (by OPENBLAS_CORETYPE if set, else by the processor's model).
// Weak: a build for one processor has neither, and then they are null.
extern "C" void gotoblas_dynamic_quit(void) __attribute__((weak));
extern "C" void gotoblas_dynamic_init(void) __attribute__((weak));

namespace cnn::fast {

namespace {
std::string blas_note;  // why cnn chose OpenBLAS's kernels, empty where OpenBLAS's choice stands

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// OpenBLAS chooses its kernels by the processor's model number when it loads, and a model newer
// than its table falls back to Prescott's SSE3 kernels: Debian 12's 0.3.21 knows no Emerald
// Rapids (family 6, model 207), and there cnn's training ran 1.6-1.9x slower on Prescott's SGEMM
// than on SkylakeX's (docs/BENCHMARKS.md). Where OpenBLAS has fallen back like that on a
// processor with AVX2 and FMA, and nobody named a kernel set in OPENBLAS_CORETYPE, choose by the
// processor's features instead: SkylakeX's kernels with AVX-512 (F, BW, DQ, VL), Haswell's with
// AVX2. A choice of AVX2 kernels or better is left alone, and so is any OPENBLAS_CORETYPE.
void choose_kernels_by_features() {
  if (!gotoblas_dynamic_quit || !gotoblas_dynamic_init || std::getenv("OPENBLAS_CORETYPE")) return;
  const char* name = openblas_get_corename();
  if (name == nullptr) return;
  const std::string before = name;
  const std::string chosen = lower(before);
  static const char* const kBeforeAvx2[] = {
      "prescott",   "core2",       "penryn",    "dunnington",   "nehalem",     "atom",
      "nano",       "athlon",      "opteron",   "opteron_sse3", "barcelona",   "bobcat",
      "katmai",     "coppermine",  "northwood", "banias",       "sandybridge", "bulldozer",
      "piledriver", "steamroller", "excavator", "unknown"};
  if (std::find(std::begin(kBeforeAvx2), std::end(kBeforeAvx2), chosen) == std::end(kBeforeAvx2))
    return;
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return;
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  const char* wanted = avx512 ? "SkylakeX" : "Haswell";
  // OpenBLAS reads the variable when it chooses; it is taken away again, so that the
  // environment this process hands on is the one it was given.
  setenv("OPENBLAS_CORETYPE", wanted, 1);
  gotoblas_dynamic_quit();
  gotoblas_dynamic_init();
  unsetenv("OPENBLAS_CORETYPE");
  const char* now = openblas_get_corename();
  const std::string features = avx512 ? "AVX-512" : "AVX2";
  if (now != nullptr && lower(now) == lower(wanted))
    blas_note = "chosen by cnn for this processor's " + features +
                "; OpenBLAS had taken it for a " + before;
  else
    blas_note = "OpenBLAS took this processor for a " + before +
                " and kept it when cnn asked for " + wanted;
}

// One BLAS thread per call, and none waiting: OpenBLAS's pthreads build starts a worker per core
// when it loads, and after openblas_set_num_threads(1) they still poll for work with
// sched_yield, taking a core's time from ours (a third of a one-thread run of
// build/cnn_conv_layers went to them; with OPENBLAS_NUM_THREADS=1 in the environment, which
// starts none, the convolutions ran 1.5-2x faster at batch 1 and batch-1000 inference 1.2x).
// With one thread set, OpenBLAS never hands work to a worker again, so shutting them down is
// safe; it would start them again only for more threads.
void single_threaded() {
  static std::once_flag once;
  std::call_once(once, [] {
    choose_kernels_by_features();
    openblas_set_num_threads(1);
    if (blas_thread_shutdown_) blas_thread_shutdown_();
  });
}
// Done when the library's static objects are built, before the first product: inference may
// run for long before it calls OpenBLAS at all.
const bool kSingleThreaded = (single_threaded(), true);
}  // namespace

std::string blas_kernels() {
  single_threaded();
  const char* name = openblas_get_corename();
  std::string s = std::string("OpenBLAS ") + (name ? name : "?");
  if (!blas_note.empty()) s += " (" + blas_note + ")";
  return s;
}

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  single_threaded();
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, static_cast<blasint>(M), static_cast<blasint>(N),
              static_cast<blasint>(K), alpha, A, static_cast<blasint>(lda), B,
              static_cast<blasint>(ldb), beta, C, static_cast<blasint>(ldc));
}

void sgemv(int64_t M, int64_t N, float alpha, const float* A, int64_t lda, const float* x,
           float beta, float* y) {
  single_threaded();
  cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<blasint>(M), static_cast<blasint>(N), alpha,
              A, static_cast<blasint>(lda), x, 1, beta, y, 1);
}

}  // namespace cnn::fast
