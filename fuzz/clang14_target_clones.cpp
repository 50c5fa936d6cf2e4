// Clang before 16 names the dispatcher of a target_clones function NAME.ifunc instead of NAME,
// so a call from another translation unit does not link (LLVM issue 50329, fixed in clang 16).
// The one such call in the library, to cnn::detail::relu_span (src/ops/relu.cpp, called from
// src/ops/fast/conv2d.cpp), is routed to the dispatcher here. Only the clang 14 fuzz build
// links this file.
#include <cstdint>

extern "C" void cnn_relu_span_dispatch(const float* in, float* out,
                                       int64_t n) __asm__("_ZN3cnn6detail9relu_spanEPKfPfl.ifunc");

namespace cnn::detail {
void relu_span(const float* in, float* out, int64_t n) { cnn_relu_span_dispatch(in, out, n); }
}  // namespace cnn::detail
