// cuBLAS, loaded at its first use (check.cuh says why it is not linked): libcublas.so.13 from the
// loader's search path (LD_LIBRARY_PATH, the system's), else from the CUDA toolkit the library
// was built with (CNN_CUBLAS_DIR).
#include <dlfcn.h>

#include <mutex>
#include <string>

#include "check.cuh"

namespace cnn::cuda {

namespace {

template <class F>
void resolve(void* lib, const char* name, F& fn) {
  fn = reinterpret_cast<F>(dlsym(lib, name));
  if (!fn) throw Error(std::string("cuBLAS: libcublas.so.13 has no ") + name);
}

CublasApi load() {
  void* lib = dlopen("libcublas.so.13", RTLD_NOW | RTLD_LOCAL);
  std::string tried = "libcublas.so.13 (the loader's search path)";
#ifdef CNN_CUBLAS_DIR
  if (!lib) {
    const std::string path = std::string(CNN_CUBLAS_DIR) + "/libcublas.so.13";
    lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    tried += ", " + path;
  }
#endif
  if (!lib) {
    const char* why = dlerror();
    throw Error("cuBLAS could not be loaded: tried " + tried +
                (why ? std::string(": ") + why : "") +
                "; add the CUDA toolkit's library directory to LD_LIBRARY_PATH");
  }
  CublasApi api{};
  resolve(lib, "cublasCreate_v2", api.create);
  resolve(lib, "cublasSetMathMode", api.set_math_mode);
  resolve(lib, "cublasSgemm_v2", api.sgemm);
  resolve(lib, "cublasSgemmStridedBatched", api.sgemm_strided_batched);
  resolve(lib, "cublasGetStatusName", api.status_name);
  return api;
}

}  // namespace

const CublasApi& cublas_api() {
  // Not a function-local static initialised by load(): a failed load must be retried and
  // reported again, not leave a half-made object.
  static std::mutex mu;
  static CublasApi api{};
  static bool loaded = false;
  std::lock_guard<std::mutex> lock(mu);
  if (!loaded) {
    api = load();
    loaded = true;
  }
  return api;
}

}  // namespace cnn::cuda
