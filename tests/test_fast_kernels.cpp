// The fast kernels against the reference kernels (the oracle) on random shapes and options.
#include <cstdlib>
#include <limits>

#include "testing.h"
// Which convolutions take Winograd (whose shares of an image are exact by construction).
#include "../src/ops/fast/winograd.h"
// And which take the direct convolution.
#include "../src/core/cpu.h"
#include "../src/ops/fast/direct_conv.h"
#include "../src/ops/fast/gemm.h"

namespace cnn::testing {
namespace {

// Runs f under a kernel set and restores the previous one.
template <class F>
auto with_kernels(KernelSet set, F&& f) {
  const KernelSet before = kernel_set();
  set_kernel_set(set);
  struct Restore {
    KernelSet s;
    ~Restore() { set_kernel_set(s); }
  } restore{before};
  return f();
}

// Exactly equal, NaN equal to NaN.
bool same(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return false;
  for (int64_t i = 0; i < a.numel(); ++i) {
    if (!(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i])))) return false;
  }
  return true;
}

TEST(FastKernels, Conv2dMatchesReferenceOnRandomConfigurations) {
  Generator gen(77);
  for (int trial = 0; trial < 60; ++trial) {
    const int64_t k_h = 1 + gen.below(4), k_w = 1 + gen.below(4);
    const Size2 stride(1 + gen.below(3), 1 + gen.below(3));
    const Size2 dilation(1 + gen.below(3), 1 + gen.below(2));
    const bool same = stride.all(1) && gen.below(3) == 0;
    const Conv2dPadding padding =
        same ? Conv2dPadding("same") : Conv2dPadding(Size2(gen.below(3), gen.below(3)));
    // Every other trial grouped: 2 or 3 groups, or depthwise (as many groups as channels).
    const int64_t n = 1 + gen.below(5), c_in_group = 1 + gen.below(5);
    const int64_t groups = trial % 2 == 0 ? 1 : trial % 6 == 5 ? c_in_group * 2 : 2 + gen.below(2);
    const int64_t c_in = trial % 6 == 5 ? groups : groups * c_in_group;
    const int64_t c_out = groups * (1 + gen.below(trial % 2 == 0 ? 6 : 3));
    const Conv2dGeometry g = conv2d_geometry(Size2(k_h, k_w), stride, padding, dilation, groups);
    const int64_t h = dilation.h * (k_h - 1) + 1 + gen.below(9),
                  w = dilation.w * (k_w - 1) + 1 + gen.below(9);
    SCOPED_TRACE("trial " + std::to_string(trial) + ": x (" + std::to_string(n) + ", " +
                 std::to_string(c_in) + ", " + std::to_string(h) + ", " + std::to_string(w) +
                 "), groups " + std::to_string(groups) + ", kernel " + Size2(k_h, k_w).pair_str() +
                 ", stride " + stride.pair_str() + ", dilation " + dilation.pair_str() +
                 ", padding " + padding.str());
    const Tensor x = randn({n, c_in, h, w}, gen), wt = randn({c_out, c_in / groups, k_h, k_w}, gen);
    const Tensor b = gen.below(2) ? randn({c_out}, gen) : Tensor();
    auto run = [&] {
      Tensor y = conv2d_forward(x, wt, b, g);
      const Tensor dy = [&] {
        Generator local(trial);
        return randn(y.shape(), local);
      }();
      Tensor dx, dw(wt.shape()), db = b.defined() ? Tensor(b.shape()) : Tensor();
      conv2d_backward(x, wt, dy, g, &dx, &dw, b.defined() ? &db : nullptr);
      return std::vector<Tensor>{y, dx, dw, db};
    };
    const auto ref = with_kernels(KernelSet::Reference, run);
    const auto fast = with_kernels(KernelSet::Fast, run);
    // The forward pass's im2col workspace, reused by backward, gives the same gradients.
    const auto cached = with_kernels(KernelSet::Fast, [&] {
      Tensor columns;
      Tensor y = conv2d_forward(x, wt, b, g, &columns);
      Generator local(trial);
      const Tensor dy = randn(y.shape(), local);
      Tensor dx, dw(wt.shape()), db = b.defined() ? Tensor(b.shape()) : Tensor();
      conv2d_backward(x, wt, dy, g, &dx, &dw, b.defined() ? &db : nullptr, &columns);
      return std::vector<Tensor>{y, dx, dw, db};
    });
    const char* names[] = {"y", "dx", "dw", "db"};
    for (int i = 0; i < 4; ++i) {
      // The same products, except db: with the workspace it comes out of the weight gradient's
      // product (the ones row), summed in another order than sum_of's.
      const Tol tol = i == 3 ? kFastVsReference : Tol{0, 0};
      if (fast[i].defined()) {
        EXPECT_TRUE(all_close(cached[i], fast[i], tol)) << names[i] << " with the workspace";
      }
    }
    for (int i = 0; i < 4; ++i) {
      if (ref[i].defined()) {
        EXPECT_TRUE(all_close(cached[i], ref[i], kFastVsReference))
            << names[i] << " with the workspace";
      }
    }
    for (int i = 0; i < 4; ++i) {
      if (ref[i].defined()) {
        EXPECT_TRUE(all_close(fast[i], ref[i], kFastVsReference)) << names[i];
      }
    }
  }
}

TEST(FastKernels, Conv2dWinogradShapesMatchReference) {
  // 3x3, stride 1, output channels in sixteens, output width up to 14: the Winograd path on
  // processors with AVX-512 (src/ops/fast/winograd.h), im2col elsewhere. Odd output sizes (tiles
  // cut off), padding, with and without bias, one image and several; then the fused inference
  // block on the same shapes against the layers one by one, also with more threads than images
  // (they share each image by sixteens of output channels); then the weights changed in place,
  // which the cache of transformed weights must notice.
  Generator gen(19);
  for (int trial = 0; trial < 24; ++trial) {
    const int64_t c_in = 1 + gen.below(20), c_out = 16 * (1 + gen.below(3)),
                  n = trial % 3 == 0 ? 1 : 1 + gen.below(3);
    const int64_t pad = trial % 4 == 3 ? 1 : gen.below(2);
    const Conv2dPadding padding = trial % 4 == 3 ? Conv2dPadding("same") : Conv2dPadding(pad);
    const int64_t h = 3 + gen.below(16), w = 3 + gen.below(14 - 2 * pad);
    const Conv2dGeometry g = conv2d_geometry(3, 1, padding, 1, 1);
    SCOPED_TRACE("trial " + std::to_string(trial) + ": x (" + std::to_string(n) + ", " +
                 std::to_string(c_in) + ", " + std::to_string(h) + ", " + std::to_string(w) +
                 "), " + std::to_string(c_out) + " outputs, padding " + padding.str());
    const Tensor x = randn({n, c_in, h, w}, gen), wt = randn({c_out, c_in, 3, 3}, gen);
    const Tensor b = trial % 2 ? randn({c_out}, gen) : Tensor();
    const Tensor ref =
        with_kernels(KernelSet::Reference, [&] { return conv2d_forward(x, wt, b, g); });
    const Tensor fast = with_kernels(KernelSet::Fast, [&] { return conv2d_forward(x, wt, b, g); });
    EXPECT_TRUE(all_close(fast, ref, kFastVsReference));
    const Pool2dGeometry pool{2, 2, 0, 1, true};
    // Each output's sum|products| (the reference kernel on |x|, |w|, |b|), pooled like the
    // outputs: what bounds two sums of the same products in different orders.
    const Tensor magnitude = with_kernels(KernelSet::Reference, [&] {
      return conv2d_forward(abs(x), abs(wt), b.defined() ? abs(b) : b, g);
    });
    const Tensor magnitude_pooled = maxpool2d_forward(magnitude, pool, nullptr);
    const int64_t terms = c_in * 9 + (b.defined() ? 1 : 0);
    const bool winograd = fast::winograd_applies(x.shape(), wt.shape(), g, fast.shape());
    with_kernels(KernelSet::Fast, [&] {
      const int threads = num_threads();
      // One thread: the fused block makes the kernel calls the layers make, on the same operands
      // (the whole product per image), so the same numbers by construction.
      set_num_threads(1);
      const Tensor conv = conv2d_forward(x, wt, b, g);
      const Tensor layered = maxpool2d_forward(relu_forward(conv), pool, nullptr);
      EXPECT_TRUE(same(conv2d_relu_pool_forward(x, wt, b, g, &pool), layered)) << "fused block";
      EXPECT_TRUE(same(conv2d_relu_pool_forward(x, wt, b, g, nullptr), relu_forward(conv)))
          << "fused, no pool";
      // More threads than images: they share each image by output channels. Winograd's shares
      // are whole sixteens of channels, each computed as in the whole image: exact again. The
      // SGEMM's shares are some of the product's rows, which OpenBLAS may sum in another order
      // than the whole (its kernel is picked at run time by processor, OPENBLAS_CORETYPE and the
      // rows' count: on an AMD family-26 processor as Haswell, 8 rows of 16 differ in the last
      // places): held to the bound on sums in any order.
      for (int t : {2, 3, 4}) {
        set_num_threads(t);
        const Tensor pooled = conv2d_relu_pool_forward(x, wt, b, g, &pool);
        const Tensor unpooled = conv2d_relu_pool_forward(x, wt, b, g, nullptr);
        if (winograd) {
          EXPECT_TRUE(same(pooled, layered)) << "fused block, Winograd, " << t << " threads";
          EXPECT_TRUE(same(unpooled, relu_forward(conv))) << "fused, Winograd, " << t << " threads";
        } else {
          EXPECT_TRUE(within_sum_order_bound(pooled, layered, magnitude_pooled, terms))
              << "fused block, " << t << " threads";
          EXPECT_TRUE(within_sum_order_bound(unpooled, relu_forward(conv), magnitude, terms))
              << "fused, no pool, " << t << " threads";
        }
      }
      set_num_threads(threads);
      return 0;
    });
    Tensor changed = wt.clone();
    const Tensor first =
        with_kernels(KernelSet::Fast, [&] { return conv2d_forward(x, changed, b, g); });
    EXPECT_TRUE(all_close(first, fast, Tol{0, 0})) << "the same weights again";
    changed[gen.below(static_cast<uint64_t>(changed.numel()))] += 0.5f;  // same storage, new value
    const Tensor ref2 =
        with_kernels(KernelSet::Reference, [&] { return conv2d_forward(x, changed, b, g); });
    const Tensor fast2 =
        with_kernels(KernelSet::Fast, [&] { return conv2d_forward(x, changed, b, g); });
    EXPECT_TRUE(all_close(fast2, ref2, kFastVsReference)) << "weights changed in place";
  }
}

// A batch's last image as a batch of one.
Tensor last_image(const Tensor& t) {
  Shape shape = t.shape();
  const int64_t size = t.numel() / shape[0];
  shape[0] = 1;
  Tensor one = Tensor::empty(shape);
  std::copy(t.data() + t.numel() - size, t.data() + t.numel(), one.data());
  return one;
}

TEST(FastKernels, Conv2dWinogradAnyWidthMatchesReference) {
  // 3x3, stride 1, at least 8 input and output channels, any width: the AVX2 variant of Winograd
  // (src/ops/fast/winograd.h), the AVX-512 one where its narrower shapes apply, the direct
  // kernel where neither does. Output channels that are no multiple of its block of 4; images
  // whose tiles take several blocks (64 channels on 28x28: blocks of 24 tiles that end inside a
  // row of 14); paddings on each side.
  // F(2x2, 3x3) sums other products than the reference: each output is a sum over the input
  // channels of 9 products of transformed values, a transformed input combining 4 inputs and a
  // transformed weight 9 weights / 4, so its terms are bounded by at most 9 times the direct
  // sum's |products| (the weights' and inputs' largest against their means, which the normal
  // samples here keep under 2x each): held to the bound on sums in any order (testing.h) on
  // 16 times `magnitude`, still far below one product missing or wrong for these channel
  // counts. Every output is its own tile's, computed in the same order whatever the batch, the
  // block or the threads' shares: bit for bit.
  Generator gen(31);
  for (int trial = 0; trial < 20; ++trial) {
    // Trial 0: blocks of tiles ending inside rows; trial 1: a padding far beyond the input, as a
    // model file may declare (the output, and the padded copy with it, mostly zeros).
    const bool large = trial == 0, padded = trial == 1;
    const int64_t c_in = large ? 64 : 8 + gen.below(33), c_out = large ? 64 : 8 + gen.below(33);
    const Conv2dPadding padding =
        padded ? Conv2dPadding(40)
        : trial % 4 == 3
            ? Conv2dPadding::sides(gen.below(3), gen.below(3), gen.below(3), gen.below(3))
        : trial % 4 == 2 ? Conv2dPadding("same")
                         : Conv2dPadding(gen.below(3));
    const int64_t h = large ? 28 : padded ? 3 : 3 + gen.below(38);
    const int64_t w = large ? 28 : padded ? 2 : 3 + gen.below(38);
    const int64_t n = 1 + gen.below(3);
    const Conv2dGeometry g = conv2d_geometry(3, 1, padding, 1, 1);
    SCOPED_TRACE("trial " + std::to_string(trial) + ": x (" + std::to_string(n) + ", " +
                 std::to_string(c_in) + ", " + std::to_string(h) + ", " + std::to_string(w) +
                 "), " + std::to_string(c_out) + " outputs, padding " + padding.str());
    const Tensor x = randn({n, c_in, h, w}, gen), wt = randn({c_out, c_in, 3, 3}, gen);
    const Tensor b = trial % 2 ? randn({c_out}, gen) : Tensor();
    const Tensor ref =
        with_kernels(KernelSet::Reference, [&] { return conv2d_forward(x, wt, b, g); });
    Tensor magnitude = with_kernels(KernelSet::Reference, [&] {
      return conv2d_forward(abs(x), abs(wt), b.defined() ? abs(b) : b, g);
    });
    for (int64_t i = 0; i < magnitude.numel(); ++i) magnitude[i] *= 16.0f;
    const int64_t terms = c_in * 9 + (b.defined() ? 1 : 0);
    const Pool2dGeometry pool{2, 2, 0, 1, true};
    with_kernels(KernelSet::Fast, [&] {
      const Tensor fast = conv2d_forward(x, wt, b, g);
      EXPECT_TRUE(within_sum_order_bound(fast, ref, magnitude, terms));
      if (detail::use_avx2_fma() && detail::use_winograd() && fast.size(2) * fast.size(3) >= 64) {
        EXPECT_TRUE(fast::winograd_applies(x.shape(), wt.shape(), g, fast.shape()));
      }
      // The im2col matrices for the backward pass change nothing.
      Tensor columns;
      EXPECT_TRUE(same(conv2d_forward(x, wt, b, g, &columns), fast)) << "with the columns";
      const Tensor last = last_image(x);
      const Tensor alone = conv2d_forward(last, wt, b, g);
      EXPECT_TRUE(same(alone, last_image(fast))) << "one image against the batch";
      const bool exact_shares = fast::winograd_applies(x.shape(), wt.shape(), g, fast.shape()) ||
                                fast::direct_conv_applies(x.shape(), wt.shape(), fast.shape(), g);
      const int threads = num_threads();
      for (int t : {1, 2, 3, 4}) {
        set_num_threads(t);
        EXPECT_TRUE(same(conv2d_forward(last, wt, b, g), alone)) << t << " threads";
        if (alone.size(2) < 2 || alone.size(3) < 2) continue;
        const Tensor fused = conv2d_relu_pool_forward(last, wt, b, g, &pool);
        const Tensor layered = maxpool2d_forward(relu_forward(alone), pool, nullptr);
        EXPECT_TRUE(exact_shares ? same(fused, layered) : all_close(fused, layered, kSharedImage))
            << "fused block, " << t << " threads";
      }
      set_num_threads(threads);
      return 0;
    });
    // The input gradient: the stride-1 convolution of dy with the weights transposed and turned
    // (Winograd again where that one qualifies), held to the same bound on its own magnitudes.
    const Tensor dy = randn(ref.shape(), gen);
    auto input_gradient = [&](const Tensor& xs, const Tensor& ws, const Tensor& dys) {
      Tensor dx = Tensor(xs.shape()), dw(ws.shape());
      conv2d_backward(xs, ws, dys, g, &dx, &dw, nullptr);
      return dx;
    };
    const Tensor dx_ref =
        with_kernels(KernelSet::Reference, [&] { return input_gradient(x, wt, dy); });
    Tensor dx_magnitude = with_kernels(KernelSet::Reference,
                                       [&] { return input_gradient(abs(x), abs(wt), abs(dy)); });
    for (int64_t i = 0; i < dx_magnitude.numel(); ++i) dx_magnitude[i] *= 16.0f;
    const Tensor dx_fast = with_kernels(KernelSet::Fast, [&] { return input_gradient(x, wt, dy); });
    EXPECT_TRUE(within_sum_order_bound(dx_fast, dx_ref, dx_magnitude, c_out * 9)) << "dx";
  }
}

TEST(FastKernels, Conv2dDirectMatchesReference) {
  // The direct convolution on processors with AVX2 (src/ops/fast/direct_conv.h), im2col elsewhere.
  // Kernels, strides, dilations and paddings on each side; groups whose channels are not a
  // multiple of the kernel's block of 4; images large enough that at batch 1 the threads share
  // them by output channels. The direct kernel computes each output alone, its taps summed in the
  // weights' order whatever the batch or the threads' shares: one image alone, the same image in
  // a batch, and the fused block at 1 to 4 threads give the same numbers bit for bit. (Without
  // AVX2, the fused block's shares are some of the SGEMM's rows, which OpenBLAS may sum in
  // another order than the whole product: there, as kSharedImage.)
  Generator gen(23);
  for (int trial = 0; trial < 30; ++trial) {
    const int64_t k_h = 1 + gen.below(5), k_w = 1 + gen.below(5);
    const Size2 dilation(1 + gen.below(2), 1 + gen.below(3));
    const int64_t groups = trial % 3 == 2 ? 2 + gen.below(2) : 1;
    // Every fifth trial with sixteens of output channels per group and many taps: the kernel's
    // tiles of pixels where they compute fewer outputs than its rows.
    const bool sixteens = trial % 5 == 4;
    const int64_t c_in = groups * (1 + gen.below(sixteens ? 12 : 6)),
                  c_out = groups * (sixteens ? 16 * (1 + gen.below(2)) : 1 + gen.below(11));
    const Conv2dPadding padding = trial % 4 == 3 ? Conv2dPadding::sides(gen.below(3), gen.below(3),
                                                                        gen.below(3), gen.below(3))
                                                 : Conv2dPadding(Size2(gen.below(3), gen.below(3)));
    // Every third trial with a stride (phase planes; the input gradient then stays on im2col).
    // Strides up to 6: past 4 the im2col path takes them (direct_conv_applies).
    const Size2 stride = trial % 3 == 1 ? Size2(1 + gen.below(6), 1 + gen.below(6)) : Size2(1);
    const Conv2dGeometry g = conv2d_geometry(Size2(k_h, k_w), stride, padding, dilation, groups);
    const int64_t h = dilation.h * (k_h - 1) + 1 + gen.below(30),
                  w = dilation.w * (k_w - 1) + 1 + gen.below(30), n = 1 + gen.below(3);
    SCOPED_TRACE("trial " + std::to_string(trial) + ": x (" + std::to_string(n) + ", " +
                 std::to_string(c_in) + ", " + std::to_string(h) + ", " + std::to_string(w) +
                 "), " + std::to_string(c_out) + " outputs, groups " + std::to_string(groups) +
                 ", kernel " + Size2(k_h, k_w).pair_str() + ", stride " + stride.pair_str() +
                 ", dilation " + dilation.pair_str() + ", padding " + padding.str());
    const Tensor x = randn({n, c_in, h, w}, gen), wt = randn({c_out, c_in / groups, k_h, k_w}, gen);
    const Tensor b = trial % 2 ? randn({c_out}, gen) : Tensor();
    const Tensor ref =
        with_kernels(KernelSet::Reference, [&] { return conv2d_forward(x, wt, b, g); });
    with_kernels(KernelSet::Fast, [&] {
      const Tensor fast = conv2d_forward(x, wt, b, g);
      EXPECT_TRUE(all_close(fast, ref, kFastVsReference));
      const Tensor last = last_image(x);  // the batch's last image, alone
      const Tensor alone = conv2d_forward(last, wt, b, g);
      EXPECT_TRUE(same(alone, last_image(fast))) << "one image against the batch";
      const int threads = num_threads();
      for (int t : {1, 2, 3, 4}) {
        set_num_threads(t);
        EXPECT_TRUE(same(conv2d_forward(last, wt, b, g), alone)) << t << " threads";
        const Tensor fused = conv2d_relu_pool_forward(last, wt, b, g, nullptr);
        EXPECT_TRUE(fast::direct_conv_applies(last.shape(), wt.shape(), alone.shape(), g)
                        ? same(fused, relu_forward(alone))
                        : all_close(fused, relu_forward(alone), kSharedImage))
            << "fused block, " << t << " threads";
      }
      set_num_threads(threads);
      return 0;
    });
  }
}

TEST(FastKernels, Conv2dDirectPixelTilesMatchReference) {
  // The direct kernel's tiles of pixels (16 output channels, 6 pixels a tile on AVX2, 12 on
  // AVX-512) on every output size from 1 to 15 x 15: outputs of fewer pixels than a tile (the
  // last pixel repeated), a last tile moved back over the one before, and on AVX-512 a tile's
  // second half cut short. Each output is bias + its taps in order on either processor. Two
  // groups of 16 input channels (as rgb-nested's stage1): Winograd takes one group only.
  Generator gen(29);
  int tiled = 0;
  for (int64_t side = 1; side <= 15; ++side) {
    for (const int64_t c_out : {32, 64}) {
      const int64_t h = side, w = side + gen.below(3);
      const Conv2dGeometry g =
          conv2d_geometry(Size2(3), Size2(1), Conv2dPadding(Size2(1)), Size2(1), 2);
      const Tensor x = randn({2, 32, h, w}, gen), wt = randn({c_out, 16, 3, 3}, gen);
      const Tensor b = randn({c_out}, gen);
      SCOPED_TRACE("x (2, 32, " + std::to_string(h) + ", " + std::to_string(w) + "), " +
                   std::to_string(c_out) + " outputs");
      const Tensor ref =
          with_kernels(KernelSet::Reference, [&] { return conv2d_forward(x, wt, b, g); });
      with_kernels(KernelSet::Fast, [&] {
        const Tensor fast = conv2d_forward(x, wt, b, g);
        EXPECT_TRUE(all_close(fast, ref, kFastVsReference));
        const Tensor last = last_image(x);
        EXPECT_TRUE(same(conv2d_forward(last, wt, b, g), last_image(fast)));
        if (fast::direct_conv_applies(x.shape(), wt.shape(), fast.shape(), g) &&
            !fast::winograd_applies(x.shape(), wt.shape(), g, fast.shape()) &&
            fast::direct_conv_block(x.shape(), wt.shape(), fast.shape(), g) == 16) {
          ++tiled;
        }
        return 0;
      });
    }
  }
  // The pixel tiles took the small outputs, where rows of 24 positions would drop most of theirs.
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      std::getenv("CNN_NO_AVX2") == nullptr) {
    EXPECT_GE(tiled, 6);
  }
}

TEST(FastKernels, Conv2dDirectLeavesHugePaddingToIm2col) {
  // A padding and dilation far beyond the output (a model file may declare them): the direct
  // kernel's padded copy would be 100 times the output, so im2col takes it, with the same result
  // as the reference; a stride past 4 likewise.
  Generator gen(29);
  const Tensor x = randn({2, 3, 6, 6}, gen), w = randn({4, 3, 3, 3}, gen), b = randn({4}, gen);
  for (const auto& g : {conv2d_geometry(3, 1, 50, 50, 1), conv2d_geometry(3, 5, 1, 1, 1)}) {
    const Shape y_shape = conv2d_output_shape(x.shape(), w.shape(), g);
    EXPECT_FALSE(fast::direct_conv_applies(x.shape(), w.shape(), y_shape, g));
    const Tensor ref =
        with_kernels(KernelSet::Reference, [&] { return conv2d_forward(x, w, b, g); });
    const Tensor fast = with_kernels(KernelSet::Fast, [&] { return conv2d_forward(x, w, b, g); });
    EXPECT_TRUE(all_close(fast, ref, kFastVsReference));
  }
  // An ordinary padding takes the direct kernel (where the processor has AVX2).
  const Conv2dGeometry same = conv2d_geometry(3, 1, 1, 1, 1);
  EXPECT_EQ(fast::direct_conv_applies(x.shape(), w.shape(), {2, 4, 6, 6}, same),
            detail::use_avx2_fma());
}

TEST(FastKernels, MaxPool2dMatchesReferenceOnRandomConfigurations) {
  Generator gen(31);
  for (int trial = 0; trial < 160; ++trial) {
    Pool2dGeometry g;
    // Half the trials are the tutorial's 2x2 / stride 2 pool, which has its own vector path.
    const bool tutorial = trial % 2 == 0;
    g.kernel = tutorial ? Size2(2) : Size2(1 + gen.below(4), 1 + gen.below(4));
    g.stride = tutorial ? Size2(2) : Size2(1 + gen.below(3), 1 + gen.below(3));
    g.padding = Size2(gen.below(g.kernel.h / 2 + 1), gen.below(g.kernel.w / 2 + 1));
    g.ceil_mode = gen.below(2) == 1;
    // A quarter of the trials (tutorial pools) have rows of 30 to 69 columns: more than one
    // chunk of 16 outputs on the AVX-512 path.
    const int64_t h = g.kernel.h + gen.below(12),
                  w = g.kernel.w + (trial % 4 == 2 ? 28 + gen.below(40) : gen.below(12));
    Tensor x = randn(
        {1 + static_cast<int64_t>(gen.below(3)), 1 + static_cast<int64_t>(gen.below(4)), h, w},
        gen);
    if (trial % 5 == 0)
      x[gen.below(static_cast<uint64_t>(x.numel()))] = std::numeric_limits<float>::quiet_NaN();
    if (trial % 7 == 0) x.fill(-1.0f);       // ties everywhere: the first maximum must win
    if (trial % 8 == 2 || trial % 8 == 3) {  // ties of every kind: 0, 1 or 2 in each tap
      for (int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(gen.below(3));
    }
    if (trial % 9 == 0) x.fill(-std::numeric_limits<float>::infinity());  // ties with padding
    if (trial % 6 == 0) {  // several NaN: the last one in the window's scan wins
      for (int k = 0; k < 6; ++k)
        x[gen.below(static_cast<uint64_t>(x.numel()))] = std::numeric_limits<float>::quiet_NaN();
    }
    SCOPED_TRACE("trial " + std::to_string(trial) + ": x " + shape_str(x.shape()) + ", kernel " +
                 g.kernel.pair_str() + ", stride " + g.stride.pair_str() + ", padding " +
                 g.padding.pair_str() + (g.ceil_mode ? ", ceil_mode" : ""));
    Tensor idx_ref, idx_fast;
    const Tensor ref =
        with_kernels(KernelSet::Reference, [&] { return maxpool2d_forward(x, g, &idx_ref); });
    const Tensor fast =
        with_kernels(KernelSet::Fast, [&] { return maxpool2d_forward(x, g, &idx_fast); });
    EXPECT_TRUE(same(fast, ref));
    EXPECT_EQ(idx_fast.to_int_vector(), idx_ref.to_int_vector());
    const Tensor y_no_idx =
        with_kernels(KernelSet::Fast, [&] { return maxpool2d_forward(x, g, nullptr); });
    EXPECT_TRUE(same(y_no_idx, fast)) << "without indices";
  }
}

TEST(FastKernels, MaxPool2dPaddingNeverWinsAgainstMinusInfinity) {
  // Every tap -inf: PyTorch's index is the window's first tap inside the input, never padding.
  for (int64_t pad : {0, 1}) {
    for (bool ceil : {false, true}) {
      for (int64_t h : {3, 4}) {
        for (int64_t w : {3, 4, 5}) {
          const Pool2dGeometry g{2, 2, pad, 1, ceil};
          Tensor x({1, 2, h, w});
          x.fill(-std::numeric_limits<float>::infinity());
          Tensor idx_ref, idx_fast;
          with_kernels(KernelSet::Reference, [&] { return maxpool2d_forward(x, g, &idx_ref); });
          with_kernels(KernelSet::Fast, [&] { return maxpool2d_forward(x, g, &idx_fast); });
          EXPECT_EQ(idx_fast.to_int_vector(), idx_ref.to_int_vector())
              << h << "x" << w << ", padding " << pad << (ceil ? ", ceil_mode" : "");
        }
      }
    }
  }
}

TEST(FastKernels, LinearMatchesReference) {
  Generator gen(5);
  for (int trial = 0; trial < 20; ++trial) {
    // A quarter of the trials are one row (a single image: its own path).
    const int64_t rows = trial % 4 == 0 ? 1 : 1 + gen.below(70), in = 1 + gen.below(200),
                  out = 1 + gen.below(40);
    const Tensor x = randn({rows, in}, gen), w = randn({out, in}, gen), b = randn({out}, gen);
    const Tensor dy = randn({rows, out}, gen);
    auto run = [&] {
      Tensor y = linear_forward(x, w, b), dx, dw(w.shape()), db(b.shape());
      linear_backward(x, w, dy, &dx, &dw, &db);
      return std::vector<Tensor>{y, dx, dw, db};
    };
    const auto ref = with_kernels(KernelSet::Reference, run);
    const auto fast = with_kernels(KernelSet::Fast, run);
    for (int i = 0; i < 4; ++i)
      EXPECT_TRUE(all_close(fast[i], ref[i], kFastVsReference)) << trial << " " << i;
  }
}

TEST(FastKernels, TutorialModelTrainsIdenticallyEnough) {
  // Ten training steps of the whole model under each kernel set: SGD with momentum lands on the
  // same weights; Adam follows the same losses. (Adam's weights are no test of the kernels: its
  // first steps move each weight by about lr times the sign of its gradient, so a gradient that
  // is zero but for rounding moves by +-lr on one kernel set and the opposite on the other.)
  auto train = [](KernelSet set, bool adam) {
    return with_kernels(set, [adam] {
      Generator init(3), data(4);
      TutorialCNN model(10, init);
      model.eval();  // no dropout: the two runs must see the same network
      Adam adam_opt(model.parameters());
      SGD sgd_opt(model.parameters(), SGDOptions(0.01).momentum(0.9));
      Optimizer& opt = adam ? static_cast<Optimizer&>(adam_opt) : sgd_opt;
      CrossEntropyLoss loss_fn;
      const Tensor x = randn({32, 1, 28, 28}, data);
      std::vector<int64_t> y(32);
      for (auto& v : y) v = static_cast<int64_t>(data.below(10));
      Tensor losses({10});
      for (int step = 0; step < 10; ++step) {
        opt.zero_grad();
        losses[step] = loss_fn(model.forward(x), y);
        model.backward(loss_fn.backward());
        opt.step();
      }
      std::vector<Tensor> out{losses};
      for (auto& [name, t] : model.state_dict()) out.push_back(t.clone());
      return out;
    });
  };
  const auto sgd_ref = train(KernelSet::Reference, false), sgd_fast = train(KernelSet::Fast, false);
  for (std::size_t i = 0; i < sgd_ref.size(); ++i) {
    EXPECT_TRUE(all_close(sgd_fast[i], sgd_ref[i], Tol{1e-4, 1e-6}))
        << "SGD, " << (i == 0 ? "losses" : "weights " + std::to_string(i - 1));
  }
  const auto adam_ref = train(KernelSet::Reference, true), adam_fast = train(KernelSet::Fast, true);
  EXPECT_TRUE(all_close(adam_fast[0], adam_ref[0], Tol{1e-4, 1e-6})) << "Adam, losses";
}

}  // namespace
}  // namespace cnn::testing

namespace cnn::testing {
namespace {

TEST(FusedBlocks, InferenceMatchesLayerByLayer) {
  // Under NoGradGuard, Sequential runs Conv2d -> ReLU [-> MaxPool2d] fused, image by image: the
  // same numbers as the layers one after the other, with both kernel sets.
  for (KernelSet set : {KernelSet::Fast, KernelSet::Reference}) {
    with_kernels(set, [] {
      Generator init(8), data(9);
      TutorialCNN model(10, init);
      model.eval();
      for (int64_t n : {1, 3, 17}) {
        const Tensor x = randn({n, 1, 28, 28}, data);
        const Tensor layered = model.forward(x);
        NoGradGuard no_grad;
        // With fewer images than threads, the threads share each image, whose SGEMMs on shares
        // of the channels may sum in another order than the whole product (docs/KERNELS.md);
        // otherwise each image is one thread's, with the layers' own calls: exact.
        const bool shared = n < num_threads();
        EXPECT_TRUE(all_close(model.forward(x), layered, shared ? kSharedImage : Tol{0, 0}))
            << n << " images, " << num_threads() << " threads";
      }
      // Conv2d -> ReLU without a pool, and a grouped convolution (the reference fallback).
      auto block = sequential(
          std::make_shared<Conv2d>(Conv2dOptions(4, 6, 3).padding(1).groups(2), init),
          std::make_shared<ReLU>(), std::make_shared<Conv2d>(Conv2dOptions(6, 5, 2), init),
          std::make_shared<ReLU>());
      const Tensor x = randn({2, 4, 9, 8}, data);
      const Tensor layered = block->forward(x);
      {
        NoGradGuard no_grad;
        EXPECT_TRUE(all_close(block->forward(x), layered, Tol{0, 0}));
      }
      // 2x2 pools after odd and even sizes, padding 0 and 1, ceil_mode: the fused block pools
      // first and clamps after (src/ops/fast/maxpool2d.h).
      for (int trial = 0; trial < 24; ++trial) {
        const int64_t pad = trial % 2, h = 3 + data.below(9), w = 3 + data.below(9);
        const bool ceil = (trial / 2) % 2 == 1;
        auto pooled = sequential(
            std::make_shared<Conv2d>(Conv2dOptions(2, 3, 2).padding(pad), init),
            std::make_shared<ReLU>(),
            std::make_shared<MaxPool2d>(MaxPool2dOptions(2).padding(pad).ceil_mode(ceil)));
        const Tensor xp = randn({2, 2, h, w}, data);
        const Tensor want = pooled->forward(xp);
        NoGradGuard no_grad;
        EXPECT_TRUE(all_close(pooled->forward(xp), want, Tol{0, 0}))
            << "input " << h << "x" << w << ", padding " << pad << (ceil ? ", ceil_mode" : "");
      }
      return 0;
    });
  }
}

TEST(FusedBlocks, TrainingReluPoolMatchesLayerByLayer) {
  // relu_maxpool2d_forward / _backward (what Sequential runs for ReLU -> MaxPool2d in training)
  // against relu then maxpool2d and their backward passes in turn: the same outputs and input
  // gradients, exactly, on both kernel sets, for 2x2 pools (the fast path) and others.
  Generator gen(41);
  for (int trial = 0; trial < 60; ++trial) {
    Pool2dGeometry g;
    const bool two = trial % 2 == 0;
    g.kernel = two ? Size2(2) : Size2(1 + gen.below(3), 1 + gen.below(3));
    g.stride = two ? Size2(2) : Size2(1 + gen.below(3), 1 + gen.below(3));
    const int64_t pad = gen.below(g.kernel.h / 2 + 1);
    g.padding = two ? Size2(pad) : Size2(pad, gen.below(g.kernel.w / 2 + 1));
    g.ceil_mode = gen.below(2) == 1;
    const int64_t h = g.kernel.h + gen.below(10), w = g.kernel.w + gen.below(10);
    Tensor x = randn(
        {1 + static_cast<int64_t>(gen.below(3)), 1 + static_cast<int64_t>(gen.below(3)), h, w},
        gen);
    if (trial % 5 == 0)
      x[gen.below(static_cast<uint64_t>(x.numel()))] = std::numeric_limits<float>::quiet_NaN();
    if (trial % 7 == 0) x.fill(-1.0f);
    SCOPED_TRACE("trial " + std::to_string(trial) + ": x " + shape_str(x.shape()) + ", kernel " +
                 g.kernel.pair_str() + ", stride " + g.stride.pair_str() + ", padding " +
                 g.padding.pair_str() + (g.ceil_mode ? ", ceil_mode" : ""));
    for (KernelSet set : {KernelSet::Fast, KernelSet::Reference}) {
      with_kernels(set, [&] {
        Tensor idx_layers, idx_fused;
        const Tensor r = relu_forward(x);
        const Tensor want = maxpool2d_forward(r, g, &idx_layers);
        const Tensor got = relu_maxpool2d_forward(x, g, &idx_fused);
        EXPECT_TRUE(same(got, want));
        EXPECT_EQ(idx_fused.numel(), idx_layers.numel());
        Generator local(trial);
        const Tensor dy = randn(want.shape(), local);
        const Tensor dx_layers = relu_backward(r, maxpool2d_backward(x.shape(), dy, idx_layers, g));
        const Tensor dx_fused = relu_maxpool2d_backward(x.shape(), got, dy, idx_fused, g);
        EXPECT_TRUE(all_close(dx_fused, dx_layers, Tol{0, 0}));
        return 0;
      });
    }
  }
}

TEST(FusedBlocks, SequentialRunsReluPoolFusedInTraining) {
  // A Sequential starting with ReLU -> MaxPool2d: fused in training, the input's gradient and
  // the parameters' gradients equal those of the layers run one by one (a forward hook turns
  // the fusion off, so that the hook sees every layer).
  Generator init(3), data(4);
  auto net = sequential(
      std::make_shared<ReLU>(), std::make_shared<MaxPool2d>(MaxPool2dOptions(2).padding(1)),
      std::make_shared<Flatten>(), std::make_shared<Linear>(LinearOptions(2 * 4 * 4, 3), init));
  net->train();
  const Tensor x = randn({5, 2, 7, 6}, data), dy = randn({5, 3}, data);
  auto run = [&] {
    net->zero_grad();
    const Tensor y = net->forward(x);
    const Tensor dx = net->backward(dy, /*input_grad=*/true);
    return std::vector<Tensor>{y, dx, net->named_parameters()[0].second->grad.clone()};
  };
  const auto fused = run();
  auto* pool = dynamic_cast<MaxPool2d*>(&(*net)[1]);
  ASSERT_NE(pool, nullptr);
  EXPECT_TRUE(pool->fused_with_relu());
  int leaves = 0;
  Module::set_forward_hook([&](const Module&, const Tensor&) { ++leaves; });
  const auto layers = run();
  Module::set_forward_hook({});
  EXPECT_EQ(leaves, 4);
  EXPECT_FALSE(pool->fused_with_relu());
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(all_close(fused[i], layers[i], Tol{0, 0})) << i;
}

TEST(FastKernels, BlasKernelsFitTheProcessor) {
  // OpenBLAS picks its kernels by the processor's model number and falls back to Prescott's SSE3
  // kernels for a model it does not know (Debian 12's 0.3.21 on Emerald Rapids); gemm.cpp then
  // chooses by the processor's features. Unless OPENBLAS_CORETYPE names a kernel set (the
  // kernels_openblas_* variants do), a processor with AVX2 and FMA gets AVX2 kernels or better.
  const std::string blas = fast::blas_kernels();
  std::printf("products: %s\n", blas.c_str());
  ASSERT_EQ(blas.rfind("OpenBLAS ", 0), 0u) << blas;
  if (const char* forced = std::getenv("OPENBLAS_CORETYPE")) {
    EXPECT_EQ(blas.find("chosen by cnn"), std::string::npos) << "OPENBLAS_CORETYPE=" << forced;
    GTEST_SKIP() << "OPENBLAS_CORETYPE=" << forced << " chooses the kernels";
  }
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
    GTEST_SKIP() << "no AVX2 and FMA: OpenBLAS's own choice stands";
  const std::string name = blas.substr(9, blas.find(' ', 9) - 9);
  for (const char* old :
       {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Nano", "Barcelona",
        "Bobcat", "Sandybridge", "Bulldozer", "Piledriver", "Steamroller", "Excavator"})
    EXPECT_NE(name, old) << blas;
}

}  // namespace
}  // namespace cnn::testing
