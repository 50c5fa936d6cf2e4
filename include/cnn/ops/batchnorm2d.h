// batchnorm2d: PyTorch's nn.functional.batch_norm on images. Per channel c,
// y = (x - mean_c) / sqrt(var_c + eps) * weight_c + bias_c, where in training mode mean_c and
// var_c are the batch's (over N, H and W; the biased variance) and in evaluation mode the running
// statistics.
//
// x: (N, C, H, W); weight, bias: (C) or undefined (affine=False: 1 and 0);
// running_mean, running_var: (C), or null (track_running_stats=False).
#pragma once

#include <vector>

#include "cnn/tensor.h"

namespace cnn {

// What the backward pass needs, per channel (C): the mean and 1 / sqrt(var + eps) that the forward
// pass normalised with (the batch's in training mode, the running statistics' in evaluation mode).
struct BatchNorm2dSaved {
  Tensor mean, invstd;
};

// Training (`training` true): normalises with the batch's statistics and, when running_mean and
// running_var are given, updates them in place: running = (1 - momentum) running + momentum
// batch, with the unbiased variance (times M / (M - 1), M = N H W) for running_var, as PyTorch.
// Needs more than one value per channel (M > 1), as PyTorch does.
// Evaluation: normalises with running_mean and running_var, which must be given; momentum unused.
// saved, if not null, receives the statistics used.
Tensor batchnorm2d_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                           Tensor* running_mean, Tensor* running_var, bool training,
                           double momentum, double eps, BatchNorm2dSaved* saved = nullptr);

// Evaluation mode's normalisation as the per-channel affine map that batchnorm2d_forward applies,
// y = x * scale + shift with scale = weight / sqrt(running_var + eps) and shift = bias -
// running_mean * scale (computed in double, rounded to float once). Fused inference blocks apply
// it to a convolution's output while that is in cache (cnn/ops/fused.h) and so get
// batchnorm2d_forward's numbers bit for bit.
struct ChannelAffine {
  Tensor scale, shift;  // (C) each, on the statistics' device
};
ChannelAffine batchnorm2d_eval_affine(const Tensor& weight, const Tensor& bias,
                                      const Tensor& running_mean, const Tensor& running_var,
                                      double eps);

// dy: (N, C, H, W), saved: from the forward pass of x with the same `training`. Training: the
// gradient through the batch's statistics,
//   dx = weight * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)), xhat = (x - mean) * invstd;
// evaluation: the affine map's, dx = weight * invstd * dy. Overwrites *dx; accumulates
// dweight += sum(dy * xhat) and dbias += sum(dy) (sums over N, H, W), as PyTorch accumulates
// .grad. Any of dx, dweight, dbias may be null to skip that gradient.
void batchnorm2d_backward(const Tensor& x, const Tensor& dy, const Tensor& weight,
                          const BatchNorm2dSaved& saved, bool training, Tensor* dx, Tensor* dweight,
                          Tensor* dbias);

// ---- Training over several processes, each with a part of the batch (SyncBatchNorm) ----
// batchnorm2d_forward and batchnorm2d_backward in training mode, split where the processes add up
// their per-channel sums, as PyTorch's batch_norm_stats / batch_norm_elemt /
// batch_norm_backward_reduce / batch_norm_backward_elemt split them. The sums are in double and
// laid out for one Communicator::allreduce_sum each way. A part may be empty (N = 0). CPU only.

// x: (N, C, H, W) -> (2C + 1): sum(x) per channel, then sum(x^2) per channel, then M = N H W.
std::vector<double> batchnorm2d_stat_sums(const Tensor& x);

// sums: (2C + 1), batchnorm2d_stat_sums's added up over every part of the batch. Normalises x with
// the mean S / M and the biased variance Q / M - mean^2 and, as batchnorm2d_forward, updates
// running_mean and running_var (when given) with the mean and the unbiased variance (times
// M / (M - 1)). Needs M > 1 over all the parts. saved, if not null, receives the statistics used.
// The variance from sums of squares loses about mean^2 / var units of double's rounding (2^-53)
// against batchnorm2d_forward's two passes: below float's for any mean under 10^4 deviations.
Tensor batchnorm2d_forward_from_sums(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                     const std::vector<double>& sums, Tensor* running_mean,
                                     Tensor* running_var, double momentum, double eps,
                                     BatchNorm2dSaved* saved = nullptr);

// x, dy: (N, C, H, W); saved: from batchnorm2d_forward_from_sums -> (2C): sum(dy) per channel,
// then sum(dy * (x - mean)) per channel, over this part's N, H, W. Accumulates this part's
// dweight += sum(dy * xhat) and dbias += sum(dy), as batchnorm2d_backward; either may be null.
std::vector<double> batchnorm2d_backward_reduce(const Tensor& x, const Tensor& dy,
                                                const BatchNorm2dSaved& saved, Tensor* dweight,
                                                Tensor* dbias);

// x, dy: (N, C, H, W) -> dx: (N, C, H, W), a new tensor. sums: (2C) as
// batchnorm2d_backward_reduce's (sum_dy, then sum_dy_xmu), summed as the caller needs; count: what
// they are divided by:
//   dx = weight * invstd * (dy - sum_dy / count - (x - mean) * invstd^2 * sum_dy_xmu / count).
// With this part's own sums and count = N H W, batchnorm2d_backward's dx.
Tensor batchnorm2d_backward_elemt(const Tensor& x, const Tensor& dy, const Tensor& weight,
                                  const BatchNorm2dSaved& saved, const std::vector<double>& sums,
                                  double count);

}  // namespace cnn
