// What the processor offers the fast kernels, decided once when first asked.
#pragma once

namespace cnn::detail {

// AVX-512F is present and not turned off: CNN_NO_AVX512=1 in the environment makes the fast
// kernels take their AVX2 / baseline paths (the tests run both ways).
bool use_avx512();

// AVX2 and FMA are present and not turned off (CNN_NO_AVX2=1): the direct convolution's path.
bool use_avx2_fma();

// Winograd's convolution is not turned off (CNN_NO_WINOGRAD=1): its benchmark's comparison, and
// the tests of the paths it would otherwise take.
bool use_winograd();

}  // namespace cnn::detail
