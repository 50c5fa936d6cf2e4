// Performance measurement of a model: training and inference throughput, batch-1 latency,
// achieved GFLOP/s, and the machine's measured FMA peak to compare them with.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>

#include "cnn/nn/module.h"

namespace cnn {

// Floating-point operations (a multiply-add counts 2) of Conv2d and Linear layers for one
// sample of shape input (without the batch dimension).
struct FlopCount {
  int64_t forward = 0;
  // forward + weight gradients + input gradients, less the first layer's input gradient
  // (nothing needs the gradient of the data).
  int64_t training = 0;
};
FlopCount count_flops(Module& model, const Shape& input);

// GFLOP/s of a loop of independent fused multiply-adds on `threads` threads, with the widest
// vector unit the processor has (AVX-512, AVX2 + FMA, or SSE as a last resort).
double measure_fma_peak_gflops(int threads);

struct BenchOptions {
  Shape input = {1, 28, 28};  // one sample's shape
  int64_t classes = 10;       // labels drawn in [0, classes)
  int64_t train_batch = 64;
  int64_t infer_batch = 1000;
  double seconds = 3.0;  // per measurement, after warm-up
  // Where it runs: the model is moved there, the data made there, and each timed run waits for
  // the device to finish.
  Device device = Device::CPU;
};

struct BenchResult {
  int threads = 1;
  std::string simd;            // "avx512", "avx2", "sse"
  std::string blas;            // the BLAS and its kernel set, e.g. "OpenBLAS SkylakeX"
  std::string device = "cpu";  // device_description()
  double train_images_per_second = 0, infer_images_per_second = 0;
  double latency_us_median = 0, latency_us_p90 = 0;
  double train_gflops = 0, infer_gflops = 0, peak_gflops = 0;
  FlopCount flops;

  nlohmann::json to_json() const;
};

// Benchmarks a classifier taking (N, options.input...) inputs on synthetic data: training with
// Adam (lr 1e-3) and cross-entropy (on the logits of a model ending in Softmax, as Trainer
// trains it); inference in evaluation mode. The model's weights change.
BenchResult run_benchmark(Module& model, const BenchOptions& options = {});

}  // namespace cnn
