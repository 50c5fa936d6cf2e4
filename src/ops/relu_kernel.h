// The relu kernel on a raw span, for fused blocks (src/ops/fast/conv2d.cpp).
#pragma once

#include <cstdint>

namespace cnn::detail {

// out[i] = max(in[i], 0), NaN kept; in and out may be the same span.
void relu_span(const float* in, float* out, int64_t n);

}  // namespace cnn::detail
