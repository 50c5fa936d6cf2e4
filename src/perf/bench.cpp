#include "cnn/perf/bench.h"

#include <algorithm>
#include <chrono>

#include "../ops/fast/gemm.h"
#include "cnn/error.h"
#include "cnn/kernels.h"
#include "cnn/nn/grad_mode.h"
#include "cnn/nn/layers.h"
#include "cnn/nn/loss.h"
#include "cnn/optim/adam.h"
#include "cnn/train/trainer.h"

namespace cnn {

std::string simd_level();  // peak.cpp

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}
}  // namespace

FlopCount count_flops(Module& model, const Shape& input) {
  FlopCount c;
  bool first = true;
  model.trace_leaves(input, [&](const Module& leaf, const Tensor& y) {
    int64_t f = 0;
    if (const auto* conv = dynamic_cast<const Conv2d*>(&leaf)) {
      const auto& o = conv->options();
      f = 2 * y.size(1) * y.size(2) * y.size(3) * (o.in_channels() / o.groups()) *
          o.kernel_size().h * o.kernel_size().w;
    } else if (const auto* fc = dynamic_cast<const Linear*>(&leaf)) {
      f = 2 * fc->options().in_features() * fc->options().out_features() * (y.numel() / y.size(-1));
    }
    if (f == 0) return;
    c.forward += f;
    c.training += first ? 2 * f : 3 * f;
    first = false;
  });
  return c;
}

nlohmann::json BenchResult::to_json() const {
  return {{"device", device},
          {"threads", threads},
          {"simd", simd},
          {"blas", blas},
          {"train_images_per_second", train_images_per_second},
          {"infer_images_per_second", infer_images_per_second},
          {"latency_us_median", latency_us_median},
          {"latency_us_p90", latency_us_p90},
          {"train_gflops", train_gflops},
          {"infer_gflops", infer_gflops},
          {"peak_gflops", peak_gflops},
          {"train_share_of_peak", peak_gflops > 0 ? train_gflops / peak_gflops : 0.0},
          {"flops_forward_per_image", flops.forward},
          {"flops_training_per_image", flops.training}};
}

BenchResult run_benchmark(Module& model, const BenchOptions& o) {
  BenchResult r;
  r.threads = num_threads();
  r.simd = simd_level();
  r.blas = fast::blas_kernels();
  model.to(o.device);
  r.device = device_description(o.device);
  r.flops = count_flops(model, o.input);
  Generator gen(1);
  auto batch = [&](int64_t n) {
    Shape shape = {n};
    shape.insert(shape.end(), o.input.begin(), o.input.end());
    Tensor x(shape);
    uniform_(x, 0.0f, 1.0f, gen);
    return x.to(o.device);
  };

  // Training.
  {
    const Tensor x = batch(o.train_batch);
    std::vector<int32_t> labels(static_cast<std::size_t>(o.train_batch));
    for (auto& v : labels) v = static_cast<int32_t>(gen.below(static_cast<uint64_t>(o.classes)));
    const Tensor y = Tensor::from_ints({o.train_batch}, labels, o.device);
    model.train();
    model.pack_parameters();  // as the Trainer trains it: parameters in one arena
    LogitsGuard logits(model);
    Adam opt(model.parameters(), AdamOptions(1e-3));
    CrossEntropyLoss loss_fn;
    auto step = [&] {
      opt.zero_grad();
      loss_fn(model.forward(x), y);
      model.backward(loss_fn.backward(), /*input_grad=*/false);
      opt.step();
    };
    for (int i = 0; i < 10; ++i) step();
    int64_t steps = 0;
    const auto t0 = Clock::now();
    while (since(t0) < o.seconds) {
      step();
      ++steps;
    }
    synchronize(o.device);
    r.train_images_per_second = static_cast<double>(steps * o.train_batch) / since(t0);
  }
  model.eval();
  NoGradGuard no_grad;
  // Inference, large batches.
  {
    const Tensor x = batch(o.infer_batch);
    model.forward(x);
    int64_t runs = 0;
    const auto t0 = Clock::now();
    while (since(t0) < o.seconds) {
      model.forward(x);
      ++runs;
    }
    synchronize(o.device);
    r.infer_images_per_second = static_cast<double>(runs * o.infer_batch) / since(t0);
  }
  // Batch-1 latency.
  {
    const Tensor x = batch(1);
    for (int i = 0; i < 50; ++i) model.forward(x);
    std::vector<double> us;
    const auto t0 = Clock::now();
    while (since(t0) < o.seconds || us.size() < 100) {
      const auto t = Clock::now();
      model.forward(x);
      synchronize(o.device);
      us.push_back(since(t) * 1e6);
    }
    std::sort(us.begin(), us.end());
    r.latency_us_median = us[us.size() / 2];
    r.latency_us_p90 = us[us.size() * 9 / 10];
  }
  r.train_gflops = r.train_images_per_second * static_cast<double>(r.flops.training) / 1e9;
  r.infer_gflops = r.infer_images_per_second * static_cast<double>(r.flops.forward) / 1e9;
  // The CPU's FMA peak; a GPU's figures are reported without one.
  if (o.device == Device::CPU) r.peak_gflops = measure_fma_peak_gflops(r.threads);
  return r;
}

}  // namespace cnn
