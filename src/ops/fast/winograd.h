// conv2d forward by Winograd's minimal filtering F(2x2, 3x3), AVX-512 or AVX2: each 2x2 block of
// outputs from a 4x4 block of input with 16 multiplications per (input, output) channel pair
// instead of 36, 2.25x fewer. Y = A^T [ (G g G^T) . (B^T d B) ] A: the weights' and the input's
// transforms, 16 products (tiles x C_in) (C_in x C_out), the output's transform. Measured against
// im2col + SGEMM and a direct convolution by bench/conv_algorithms.cpp; its results differ from
// theirs by float rounding only (the tests compare it with the reference kernel).
#pragma once

#include <vector>

#include "cnn/ops/conv2d.h"

namespace cnn::fast {

// Whether the fast kernels take this path: a 3x3 kernel, stride 1, dilation 1, one group, and
// either AVX-512 with output channels a multiple of 16 and an output at most 14 wide (a row of
// tiles in one vector), or AVX2 with FMA and at least 8 input and 8 output channels (any size:
// the image's tiles in blocks, 8 tiles to a vector).
bool winograd_applies(const Shape& x, const Shape& w, const Conv2dGeometry& g, const Shape& y);

// Whether winograd_applies takes the AVX-512 variant for these weights and output.
bool winograd_avx512(const Shape& w, const Shape& y);

// The whole number of output channels that winograd_image's shares of an image must hold (16 for
// the AVX-512 variant; 4, its block of channels, for AVX2). Every output is computed alone
// either way: a share's numbers are those of the whole image.
int64_t winograd_channel_unit(const Shape& w, const Shape& y);

// The weights' transform G g G^T: U[xi][ic][oc], xi = 4 r + c, for the output channels
// [oc0, oc1) (multiples of 16); U grows to hold all of them.
void winograd_weights(const Tensor& w, int64_t oc0, int64_t oc1, std::vector<float>& U);

// The same for all output channels, from a per-thread cache of the last weights seen: an entry
// is used only while the weights equal, bit for bit, the copy it was made from (comparing costs
// a fifth of the transform), so a changed weight is never missed. The reference stays valid
// until this thread's next call.
const std::vector<float>& winograd_weights_cached(const Tensor& w);

// One image: y_img (C_out, H_out, W_out) = conv(x_img) + bias (bias may be null), for the output
// channels [oc0, oc1) only (multiples of winograd_channel_unit): threads may share an image by
// output channels.
void winograd_image(const float* x_img, const Shape& x, const Conv2dGeometry& g, const Shape& y,
                    const std::vector<float>& U, const float* bias, int64_t oc0, int64_t oc1,
                    float* y_img);

}  // namespace cnn::fast
