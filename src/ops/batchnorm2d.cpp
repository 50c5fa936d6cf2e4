// batchnorm2d: shape checks and one kernel each way, channels split across threads. The
// per-channel sums run in double: a channel sums N H W elements (tens of thousands for a batch of
// images), where float32 sums would lose digits that PyTorch's (pairwise) sums keep.
#include "cnn/ops/batchnorm2d.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "check.h"
#include "cnn/error.h"
#include "cuda/ops.h"

namespace cnn {

namespace {

// Below this many elements one thread does the work (a parallel region costs more).
constexpr int64_t kParallelMin = 32768;

void check_channels(const char* what, const Tensor& t, int64_t C) {
  if (t.defined() && t.shape() != Shape{C}) {
    throw Error(std::string(what) + " of shape " + shape_str(t.shape()) + " does not match the " +
                std::to_string(C) + " channels of the input (expected shape " +
                shape_str(Shape{C}) + ")");
  }
}

void check_input(const Tensor& x) {
  if (x.dim() != 4) {
    throw Error("expected 4D input (N, C, H, W), got " + std::to_string(x.dim()) +
                "D input of shape " + shape_str(x.shape()));
  }
}

// The per-channel sums, in double over kLanes independent running sums added up at the end: one
// running sum would wait on the adder's latency at every element, the lanes vectorise. Only the
// order of the double additions differs from one running sum, far below float's rounding.
constexpr int kLanes = 8;

__attribute__((target_clones("avx2", "default"))) double lane_sum(const float* __restrict p,
                                                                  int64_t n) {
  double lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) lanes[j] += p[i + j];
  }
  double sum = 0.0;
  for (; i < n; ++i) sum += p[i];
  for (double l : lanes) sum += l;
  return sum;
}

// sum((p - m)^2)
__attribute__((target_clones("avx2", "default"))) double lane_sq_dev(const float* __restrict p,
                                                                     int64_t n, double m) {
  double lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) {
      const double d = p[i + j] - m;
      lanes[j] += d * d;
    }
  }
  double sq = 0.0;
  for (; i < n; ++i) {
    const double d = p[i] - m;
    sq += d * d;
  }
  for (double l : lanes) sq += l;
  return sq;
}

// sum(g) and sum(g * (p - m)), added to *sum and *dot.
__attribute__((target_clones("avx2", "default"))) void lane_sum_dot(const float* __restrict g,
                                                                    const float* __restrict p,
                                                                    int64_t n, double m,
                                                                    double* sum, double* dot) {
  double s[kLanes] = {}, d[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) {
      s[j] += g[i + j];
      d[j] += g[i + j] * (p[i + j] - m);
    }
  }
  double s1 = 0.0, d1 = 0.0;
  for (; i < n; ++i) {
    s1 += g[i];
    d1 += g[i] * (p[i] - m);
  }
  for (int j = 0; j < kLanes; ++j) {
    s1 += s[j];
    d1 += d[j];
  }
  *sum += s1;
  *dot += d1;
}

// y = x * scale + shift, the form PyTorch's kernels use, for channel c normalised with mean m and
// inv = 1 / sqrt(var + eps).
std::pair<float, float> affine_of(const Tensor& weight, const Tensor& bias, int64_t c, double m,
                                  double inv) {
  const double w = weight.defined() ? weight[c] : 1.0, b = bias.defined() ? bias[c] : 0.0;
  return {static_cast<float>(w * inv), static_cast<float>(b - m * w * inv)};
}

double eval_invstd(const Tensor& running_var, int64_t c, double eps) {
  return 1.0 / std::sqrt(static_cast<double>(running_var.data()[c]) + eps);
}

// The training-mode update of channel c's running statistics with the batch's mean m and unbiased
// variance.
void update_running(Tensor* running_mean, Tensor* running_var, int64_t c, double momentum, double m,
                    double unbiased) {
  float& rm = running_mean->data()[c];
  float& rv = running_var->data()[c];
  rm = static_cast<float>((1.0 - momentum) * rm + momentum * m);
  rv = static_cast<float>((1.0 - momentum) * rv + momentum * unbiased);
}

// Channel c of y = x * scale + shift; x, y: (N, C, HW).
void affine_channel(const Tensor& x, Tensor& y, int64_t c, float scale, float shift) {
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  for (int64_t n = 0; n < N; ++n) {
    const float* p = x.data() + (n * C + c) * HW;
    float* q = y.data() + (n * C + c) * HW;
    for (int64_t i = 0; i < HW; ++i) q[i] = p[i] * scale + shift;
  }
}

// Channel c normalised with mean m and inverse standard deviation inv (then weight and bias):
// y's channel c, and m and inv kept in saved's mean and invstd.
void normalize_channel(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t c,
                       double m, double inv, Tensor& y, Tensor& mean, Tensor& invstd) {
  mean[c] = static_cast<float>(m);
  invstd[c] = static_cast<float>(inv);
  const auto [scale, shift] = affine_of(weight, bias, c, m, inv);
  affine_channel(x, y, c, scale, shift);
}

// Channel c of dx = (dy - (x - mean) * proj - grad_mean) * scale; x, dy, dx: (N, C, HW).
void dx_channel(const Tensor& x, const Tensor& dy, Tensor& dx, int64_t c, float mean, float proj,
                float grad_mean, float scale) {
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  for (int64_t n = 0; n < N; ++n) {
    const float* p = x.data() + (n * C + c) * HW;
    const float* g = dy.data() + (n * C + c) * HW;
    float* q = dx.data() + (n * C + c) * HW;
    for (int64_t i = 0; i < HW; ++i) q[i] = (g[i] - (p[i] - mean) * proj - grad_mean) * scale;
  }
}

// The forward pass's checks of everything but the input's values and the mode.
void check_forward_args(const Tensor& x, const Tensor& weight, const Tensor& bias,
                        Tensor* running_mean, Tensor* running_var) {
  check_input(x);
  const int64_t C = x.size(1);
  check_channels("weight", weight, C);
  check_channels("bias", bias, C);
  if ((running_mean == nullptr) != (running_var == nullptr)) {
    throw Error("batchnorm2d: running_mean and running_var must be given together");
  }
  if (running_mean) {
    check_channels("running_mean", *running_mean, C);
    check_channels("running_var", *running_var, C);
    if (!running_mean->defined() || !running_var->defined()) {
      throw Error("batchnorm2d: running_mean and running_var are undefined");
    }
  }
}

// The backward pass's checks.
void check_backward_args(const Tensor& x, const Tensor& dy, const Tensor& weight,
                         const BatchNorm2dSaved& saved, const Tensor* dweight,
                         const Tensor* dbias) {
  check_input(x);
  const int64_t C = x.size(1);
  if (dy.shape() != x.shape()) {
    throw Error("batchnorm2d_backward: grad_output of shape " + shape_str(dy.shape()) +
                " does not match input shape " + shape_str(x.shape()));
  }
  check_channels("weight", weight, C);
  check_channels("saved mean", saved.mean, C);
  check_channels("saved invstd", saved.invstd, C);
  if (!saved.mean.defined() || !saved.invstd.defined()) {
    throw Error("batchnorm2d_backward: the saved statistics are undefined");
  }
  if (dweight) check_channels("dweight", *dweight, C);
  if (dbias) check_channels("dbias", *dbias, C);
}

void require_cpu(const char* op, Device device) {
  if (device != Device::CPU) {
    throw Error(std::string(op) +
                ": statistics over several processes (SyncBatchNorm) on CUDA are not supported "
                "yet; train on the CPU or without synchronised batch statistics");
  }
}

}  // namespace

ChannelAffine batchnorm2d_eval_affine(const Tensor& weight, const Tensor& bias,
                                      const Tensor& running_mean, const Tensor& running_var,
                                      double eps) {
  const Device device =
      detail::op_device("batchnorm2d_eval_affine", {{"weight", weight},
                                                    {"bias", bias},
                                                    {"running_mean", running_mean},
                                                    {"running_var", running_var}});
  if (!running_mean.defined() || running_mean.dim() != 1) {
    throw Error("batchnorm2d_eval_affine: needs running_mean of shape (C)");
  }
  const int64_t C = running_mean.size(0);
  if (!running_var.defined()) throw Error("batchnorm2d_eval_affine: needs running_var");
  check_channels("running_var", running_var, C);
  check_channels("weight", weight, C);
  check_channels("bias", bias, C);
  // A few numbers per channel: computed on the host, handed back on the statistics' device.
  const Tensor mean = running_mean.cpu(), var = running_var.cpu();
  const Tensor w = weight.defined() ? weight.cpu() : Tensor();
  const Tensor b = bias.defined() ? bias.cpu() : Tensor();
  ChannelAffine a{Tensor::empty({C}), Tensor::empty({C})};
  for (int64_t c = 0; c < C; ++c) {
    const auto [scale, shift] = affine_of(w, b, c, mean.data()[c], eval_invstd(var, c, eps));
    a.scale[c] = scale;
    a.shift[c] = shift;
  }
  if (device != Device::CPU) a = {a.scale.to(device), a.shift.to(device)};
  return a;
}

Tensor batchnorm2d_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                           Tensor* running_mean, Tensor* running_var, bool training,
                           double momentum, double eps, BatchNorm2dSaved* saved) {
  const Tensor none;
  const Device device =
      detail::op_device("batchnorm2d", {{"input", x},
                                        {"weight", weight},
                                        {"bias", bias},
                                        {"running_mean", running_mean ? *running_mean : none},
                                        {"running_var", running_var ? *running_var : none}});
  check_forward_args(x, weight, bias, running_mean, running_var);
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3), M = N * HW;
  if (!training && !running_mean) {
    throw Error("batchnorm2d: evaluation mode needs running_mean and running_var");
  }
  if (training && M <= 1) {
    throw Error("Expected more than 1 value per channel when training, got input size " +
                shape_str(x.shape()));
  }
  if (device == Device::CUDA) {
    return cuda::batchnorm2d_forward(x, weight, bias, running_mean, running_var, training, momentum,
                                     eps, saved);
  }
  Tensor mean = Tensor::empty({C}), invstd = Tensor::empty({C});
  Tensor y = Tensor::empty(x.shape());
#pragma omp parallel for schedule(static) if (x.numel() > kParallelMin)
  for (int64_t c = 0; c < C; ++c) {
    double m, inv;
    if (training) {
      double sum = 0.0;
      for (int64_t n = 0; n < N; ++n) sum += lane_sum(x.data() + (n * C + c) * HW, HW);
      m = sum / static_cast<double>(M);
      double sq = 0.0;  // two passes: no cancellation between E[x^2] and E[x]^2
      for (int64_t n = 0; n < N; ++n) sq += lane_sq_dev(x.data() + (n * C + c) * HW, HW, m);
      const double var = sq / static_cast<double>(M);
      inv = 1.0 / std::sqrt(var + eps);
      if (running_mean) {
        update_running(running_mean, running_var, c, momentum, m, sq / static_cast<double>(M - 1));
      }
    } else {
      m = running_mean->data()[c];
      inv = eval_invstd(*running_var, c, eps);
    }
    normalize_channel(x, weight, bias, c, m, inv, y, mean, invstd);
  }
  if (saved) *saved = {mean, invstd};
  return y;
}

void batchnorm2d_backward(const Tensor& x, const Tensor& dy, const Tensor& weight,
                          const BatchNorm2dSaved& saved, bool training, Tensor* dx, Tensor* dweight,
                          Tensor* dbias) {
  const Tensor none;
  const Device device =
      detail::op_device("batchnorm2d_backward", {{"input", x},
                                                 {"grad_output", dy},
                                                 {"weight", weight},
                                                 {"saved mean", saved.mean},
                                                 {"saved invstd", saved.invstd},
                                                 {"dweight", dweight ? *dweight : none},
                                                 {"dbias", dbias ? *dbias : none}});
  check_backward_args(x, dy, weight, saved, dweight, dbias);
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3), M = N * HW;
  if (device == Device::CUDA) {
    cuda::batchnorm2d_backward(x, dy, weight, saved, training, dx, dweight, dbias);
    return;
  }
  if (dx) *dx = Tensor::empty(x.shape());
#pragma omp parallel for schedule(static) if (x.numel() > kParallelMin)
  for (int64_t c = 0; c < C; ++c) {
    const double m = saved.mean[c], inv = saved.invstd[c];
    double sum = 0.0, dot = 0.0;  // sum(dy), sum(dy * (x - mean))
    for (int64_t n = 0; n < N; ++n) {
      const int64_t at = (n * C + c) * HW;
      lane_sum_dot(dy.data() + at, x.data() + at, HW, m, &sum, &dot);
    }
    if (dbias) dbias->data()[c] += static_cast<float>(sum);
    if (dweight) dweight->data()[c] += static_cast<float>(dot * inv);
    if (!dx) continue;
    const double w = weight.defined() ? weight[c] : 1.0;
    const float scale = static_cast<float>(w * inv);
    // Training: dx = scale * (dy - sum / M - (x - mean) * inv^2 * dot / M), PyTorch's form.
    const float mean_f = saved.mean[c];
    const float proj = training ? static_cast<float>(inv * inv * dot / M) : 0.0f;
    const float grad_mean = training ? static_cast<float>(sum / M) : 0.0f;
    dx_channel(x, dy, *dx, c, mean_f, proj, grad_mean, scale);
  }
}

std::vector<double> batchnorm2d_stat_sums(const Tensor& x) {
  require_cpu("batchnorm2d_stat_sums", detail::op_device("batchnorm2d_stat_sums", {{"input", x}}));
  check_input(x);
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  std::vector<double> sums(2 * C + 1);
#pragma omp parallel for schedule(static) if (x.numel() > kParallelMin)
  for (int64_t c = 0; c < C; ++c) {
    double sum = 0.0, sq = 0.0;  // a float's square is exact in a double
    for (int64_t n = 0; n < N; ++n) {
      const float* p = x.data() + (n * C + c) * HW;
      sum += lane_sum(p, HW);
      sq += lane_sq_dev(p, HW, 0.0);
    }
    sums[c] = sum;
    sums[C + c] = sq;
  }
  sums[2 * C] = static_cast<double>(N * HW);
  return sums;
}

Tensor batchnorm2d_forward_from_sums(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                     const std::vector<double>& sums, Tensor* running_mean,
                                     Tensor* running_var, double momentum, double eps,
                                     BatchNorm2dSaved* saved) {
  const Tensor none;
  require_cpu(
      "batchnorm2d",
      detail::op_device("batchnorm2d", {{"input", x},
                                        {"weight", weight},
                                        {"bias", bias},
                                        {"running_mean", running_mean ? *running_mean : none},
                                        {"running_var", running_var ? *running_var : none}}));
  check_forward_args(x, weight, bias, running_mean, running_var);
  const int64_t C = x.size(1);
  if (static_cast<int64_t>(sums.size()) != 2 * C + 1) {
    throw Error("batchnorm2d: " + std::to_string(sums.size()) + " statistics sums for " +
                std::to_string(C) + " channels (expected 2 C + 1 = " + std::to_string(2 * C + 1) +
                ")");
  }
  const double M = sums[2 * C];
  if (!(M > 1)) {
    throw Error("Expected more than 1 value per channel when training, got input size " +
                shape_str(x.shape()) + " and " + std::to_string(static_cast<int64_t>(M)) +
                " values per channel over all the processes");
  }
  Tensor mean = Tensor::empty({C}), invstd = Tensor::empty({C});
  Tensor y = Tensor::empty(x.shape());
#pragma omp parallel for schedule(static) if (x.numel() > kParallelMin)
  for (int64_t c = 0; c < C; ++c) {
    const double m = sums[c] / M;
    // sum((x - m)^2) = sum(x^2) - m sum(x); rounding can take it below zero when var << mean^2.
    const double sq = std::max(sums[C + c] - m * sums[c], 0.0);
    const double inv = 1.0 / std::sqrt(sq / M + eps);
    if (running_mean) update_running(running_mean, running_var, c, momentum, m, sq / (M - 1));
    normalize_channel(x, weight, bias, c, m, inv, y, mean, invstd);
  }
  if (saved) *saved = {mean, invstd};
  return y;
}

std::vector<double> batchnorm2d_backward_reduce(const Tensor& x, const Tensor& dy,
                                                const BatchNorm2dSaved& saved, Tensor* dweight,
                                                Tensor* dbias) {
  const Tensor none;
  require_cpu("batchnorm2d_backward",
              detail::op_device("batchnorm2d_backward", {{"input", x},
                                                         {"grad_output", dy},
                                                         {"saved mean", saved.mean},
                                                         {"saved invstd", saved.invstd},
                                                         {"dweight", dweight ? *dweight : none},
                                                         {"dbias", dbias ? *dbias : none}}));
  check_backward_args(x, dy, Tensor(), saved, dweight, dbias);
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  std::vector<double> sums(2 * C);
#pragma omp parallel for schedule(static) if (x.numel() > kParallelMin)
  for (int64_t c = 0; c < C; ++c) {
    const double m = saved.mean[c];
    double sum = 0.0, dot = 0.0;  // sum(dy), sum(dy * (x - mean))
    for (int64_t n = 0; n < N; ++n) {
      const int64_t at = (n * C + c) * HW;
      lane_sum_dot(dy.data() + at, x.data() + at, HW, m, &sum, &dot);
    }
    if (dbias) dbias->data()[c] += static_cast<float>(sum);
    if (dweight) dweight->data()[c] += static_cast<float>(dot * saved.invstd[c]);
    sums[c] = sum;
    sums[C + c] = dot;
  }
  return sums;
}

Tensor batchnorm2d_backward_elemt(const Tensor& x, const Tensor& dy, const Tensor& weight,
                                  const BatchNorm2dSaved& saved, const std::vector<double>& sums,
                                  double count) {
  require_cpu("batchnorm2d_backward",
              detail::op_device("batchnorm2d_backward", {{"input", x},
                                                         {"grad_output", dy},
                                                         {"weight", weight},
                                                         {"saved mean", saved.mean},
                                                         {"saved invstd", saved.invstd}}));
  check_backward_args(x, dy, weight, saved, nullptr, nullptr);
  const int64_t C = x.size(1);
  if (static_cast<int64_t>(sums.size()) != 2 * C) {
    throw Error("batchnorm2d_backward: " + std::to_string(sums.size()) + " gradient sums for " +
                std::to_string(C) + " channels (expected 2 C = " + std::to_string(2 * C) + ")");
  }
  Tensor dx = Tensor::empty(x.shape());
  if (x.numel() == 0) return dx;  // an empty part: count may be 0 too
#pragma omp parallel for schedule(static) if (x.numel() > kParallelMin)
  for (int64_t c = 0; c < C; ++c) {
    const double inv = saved.invstd[c];
    const double w = weight.defined() ? weight[c] : 1.0;
    const float proj = static_cast<float>(inv * inv * sums[C + c] / count);
    const float grad_mean = static_cast<float>(sums[c] / count);
    dx_channel(x, dy, dx, c, saved.mean[c], proj, grad_mean, static_cast<float>(w * inv));
  }
  return dx;
}

}  // namespace cnn
