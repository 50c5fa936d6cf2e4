// conv2d forward by a direct, register-blocked AVX2 (and AVX-512) convolution: no column matrix.
// The image is copied once into a zero-padded buffer of rows Wp = W + pad wide. For stride 1 an
// output row read across that buffer is a one-dimensional correlation: output q = oh Wp + ow takes
// tap (ic, kh, kw) from input q + ic Hp Wp + kh D_h Wp + kw D_w, so eight consecutive q are one
// unaligned vector load, whatever the kernel, dilation or padding. With a stride the copy deals
// the padded plane out to S_h x S_w phase planes (every S_h-th row from row a, every S_w-th
// column from column b): each tap then reads one phase plane at unit stride, and the same
// kernels run unchanged. The kernel computes 4 output channels x 24 positions in 12 accumulators
// (3 vector loads and 4 broadcasts per 12 FMAs), on "wide" rows of which the last few positions
// are dropped when the result is copied out; or, for small outputs, 6 pixels x 16 channels (on
// AVX-512, 6 pixels x 2 blocks of 16 channels, or 12 pixels x 16 channels).
// Measured against im2col + SGEMM in docs/KERNELS.md (build/cnn_conv_layers --compare).
#pragma once

#include <vector>

#include "cnn/ops/conv2d.h"

namespace cnn::fast {

// Whether the fast forward pass takes this path for input x, weights w and output y: a processor
// with AVX2 and FMA (CNN_NO_AVX2=1 turns it off), strides of at most 4, and phase planes at most
// about twice as high and wide as the output (so the padded copy stays within a small multiple
// of the output, whatever padding or dilation a model file declares); any kernel or groups.
bool direct_conv_applies(const Shape& x, const Shape& w, const Shape& y, const Conv2dGeometry& g);

// The kernel's block of output channels for this convolution: 4 (wide rows), or 16 (tiles of 6
// pixels, each a broadcast: no dropped positions) where whole sixteens of channels make each
// group, there are 64 taps or more, and that computes fewer outputs, as for small images. Both
// give the same numbers.
int direct_conv_block(const Shape& x, const Shape& w, const Shape& y, const Conv2dGeometry& g);

// The weights rearranged for the kernel, blocks of 4 output channels of one group, each block's
// taps in the weights' order with the 4 channels side by side (zeros past a group's last
// channel), from a per-thread cache of the weights last seen: an entry is used only while the
// weights equal, bit for bit, the copy it was made from. The reference stays valid until this
// thread's next call.
const std::vector<float>& direct_weights_cached(const Tensor& w, int64_t groups, int block);

// The same for the input gradient of a stride-1 convolution, which is the stride-1 convolution
// of dy with the weights transposed (input and output channels swapped within each group) and
// turned by 180 degrees, under direct_conv_backward_geometry. Packed into `packed` (the weights
// change at every training step: no cache).
void direct_weights_transposed(const Tensor& w, int64_t groups, int block,
                               std::vector<float>& packed);
// That convolution's geometry and weight shape, if its padding is not negative (a padding wider
// than the dilated kernel, which only a 1-wide kernel allows, is not covered).
bool direct_conv_backward_geometry(const Shape& w, const Conv2dGeometry& g, Conv2dGeometry* gt,
                                   Shape* wt);

// One image: y_img (C_out, H_out, W_out) = conv(x_img) + bias (bias may be null), for the output
// channels [oc0, oc1) only, so that threads may share an image. packed: direct_weights_cached's.
void direct_conv_image(const float* x_img, const Shape& x, const Shape& w, const Conv2dGeometry& g,
                       const Shape& y, const std::vector<float>& packed, const float* bias,
                       int64_t oc0, int64_t oc1, float* y_img);

}  // namespace cnn::fast
