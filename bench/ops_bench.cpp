// Google Benchmark programs for the tutorial model's layers and whole steps, at the model's own
// shapes: what `cnn bench` reports as one figure, split by op, so that a kernel change can be
// measured on its own. Run: build/cnn_ops_bench [--benchmark_filter=Conv] [--threads=N]
// (--threads is read before Google Benchmark's flags; default 1).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "cnn/cnn.h"

namespace {

using namespace cnn;

Tensor random_tensor(const Shape& shape, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  Generator gen(seed);
  Tensor t(shape);
  uniform_(t, lo, hi, gen);
  return t;
}

// The tutorial's two convolution blocks: Conv2d(c_in, c_out, 3) -> ReLU -> MaxPool2d(2, 2, pad 1).
struct ConvCase {
  int64_t c_in, c_out, hw;
};
constexpr ConvCase kConv1{1, 16, 28}, kConv2{16, 32, 14};
const ConvCase& conv_case(int64_t which) { return which == 1 ? kConv1 : kConv2; }

const Conv2dGeometry& conv_geometry() {
  static const Conv2dGeometry g = conv2d_geometry(3, 1, 0, 1, 1);
  return g;
}

const Pool2dGeometry& pool_geometry() {
  static const Pool2dGeometry g{2, 2, 1, 1, false};
  return g;
}

// args: {conv (1 or 2), batch}
void BM_Conv2dForward(benchmark::State& state) {
  const ConvCase& c = conv_case(state.range(0));
  const int64_t n = state.range(1);
  const Tensor x = random_tensor({n, c.c_in, c.hw, c.hw}, 1);
  const Tensor w = random_tensor({c.c_out, c.c_in, 3, 3}, 2), b = random_tensor({c.c_out}, 3);
  Tensor columns;
  for (auto _ : state) {
    benchmark::DoNotOptimize(conv2d_forward(x, w, b, conv_geometry(), &columns));
  }
  state.SetItemsProcessed(state.iterations() * n);
}

void BM_Conv2dBackward(benchmark::State& state) {
  const ConvCase& c = conv_case(state.range(0));
  const int64_t n = state.range(1);
  const Tensor x = random_tensor({n, c.c_in, c.hw, c.hw}, 1);
  const Tensor w = random_tensor({c.c_out, c.c_in, 3, 3}, 2), b = random_tensor({c.c_out}, 3);
  Tensor columns;
  const Tensor y = conv2d_forward(x, w, b, conv_geometry(), &columns);
  const Tensor dy = random_tensor(y.shape(), 4);
  Tensor dx(x.shape()), dw(w.shape()), db(b.shape());
  const bool input_grad = state.range(0) != 1;  // the model's first layer needs no dx
  for (auto _ : state) {
    conv2d_backward(x, w, dy, conv_geometry(), input_grad ? &dx : nullptr, &dw, &db, &columns);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * n);
}

void BM_ConvReluPoolInference(benchmark::State& state) {
  const ConvCase& c = conv_case(state.range(0));
  const int64_t n = state.range(1);
  const Tensor x = random_tensor({n, c.c_in, c.hw, c.hw}, 1);
  const Tensor w = random_tensor({c.c_out, c.c_in, 3, 3}, 2), b = random_tensor({c.c_out}, 3);
  for (auto _ : state) {
    benchmark::DoNotOptimize(conv2d_relu_pool_forward(x, w, b, conv_geometry(), &pool_geometry()));
  }
  state.SetItemsProcessed(state.iterations() * n);
}

// args: {conv block (1 or 2: the pool after it), batch}
void BM_MaxPool2dForward(benchmark::State& state) {
  const ConvCase& c = conv_case(state.range(0));
  const int64_t n = state.range(1), hw = c.hw - 2;
  const Tensor x = random_tensor({n, c.c_out, hw, hw}, 1);
  Tensor indices;
  for (auto _ : state) {
    benchmark::DoNotOptimize(maxpool2d_forward(x, pool_geometry(), &indices));
  }
  state.SetItemsProcessed(state.iterations() * n);
}

void BM_MaxPool2dBackward(benchmark::State& state) {
  const ConvCase& c = conv_case(state.range(0));
  const int64_t n = state.range(1), hw = c.hw - 2;
  const Tensor x = random_tensor({n, c.c_out, hw, hw}, 1);
  Tensor indices;
  const Tensor y = maxpool2d_forward(x, pool_geometry(), &indices);
  const Tensor dy = random_tensor(y.shape(), 2);
  for (auto _ : state) {
    benchmark::DoNotOptimize(maxpool2d_backward(x.shape(), dy, indices, pool_geometry()));
  }
  state.SetItemsProcessed(state.iterations() * n);
}

void BM_ReluForward(benchmark::State& state) {
  const int64_t n = state.range(0);
  const Tensor x = random_tensor({n, 16, 26, 26}, 1);
  for (auto _ : state) benchmark::DoNotOptimize(relu_forward(x));
  state.SetItemsProcessed(state.iterations() * n);
}

// The model as `cnn bench` runs it. arg: batch
void BM_TrainStep(benchmark::State& state) {
  const int64_t n = state.range(0);
  Generator gen(0);
  TutorialCNN model(10, gen);
  model.train();
  Adam opt(model.parameters(), AdamOptions(1e-3));
  CrossEntropyLoss loss_fn;
  const Tensor x = random_tensor({n, 1, 28, 28}, 1, 0.0f, 1.0f);
  std::vector<int64_t> y(static_cast<std::size_t>(n));
  for (auto& v : y) v = static_cast<int64_t>(gen.below(10));
  for (auto _ : state) {
    opt.zero_grad();
    loss_fn(model.forward(x), y);
    model.backward(loss_fn.backward(), /*input_grad=*/false);
    opt.step();
  }
  state.SetItemsProcessed(state.iterations() * n);
}

void BM_Inference(benchmark::State& state) {
  const int64_t n = state.range(0);
  Generator gen(0);
  TutorialCNN model(10, gen);
  model.eval();
  NoGradGuard no_grad;
  const Tensor x = random_tensor({n, 1, 28, 28}, 1, 0.0f, 1.0f);
  for (auto _ : state) benchmark::DoNotOptimize(model.forward(x));
  state.SetItemsProcessed(state.iterations() * n);
}

// Inference of a shipped model (the arg indexes shipped_model_names(), sorted: bn-gap, dilated,
// lenet5, rgb-nested, tutorial, vgg-bn) at batch 1000 and 1, as `cnn bench` measures it: the
// program to profile one model's forward pass with (perf record build/cnn_ops_bench
// --benchmark_filter=ModelInference/3/1000).
void BM_ModelInference(benchmark::State& state) {
  const auto names = shipped_model_names();
  const std::string& name = names.at(static_cast<std::size_t>(state.range(0)));
  const int64_t n = state.range(1);
  Generator gen(0);
  const BuiltModel built = build_model(shipped_model(name), gen, name);
  built.module->eval();
  NoGradGuard no_grad;
  Shape shape = {n};
  shape.insert(shape.end(), built.input.begin(), built.input.end());
  const Tensor x = random_tensor(shape, 1, 0.0f, 1.0f);
  for (auto _ : state) benchmark::DoNotOptimize(built.module->forward(x));
  state.SetLabel(name);
  state.SetItemsProcessed(state.iterations() * n);
}

// The smooth activations over rgb-nested's stem output at batch 64 (16 x 32 x 32 per image),
// forward and backward: elements per second (the vector exp and tanh of src/ops/fast/vmath.cpp).
void BM_Activation(benchmark::State& state) {
  const Tensor x = random_tensor({64, 16, 32, 32}, 1, -6.0f, 6.0f);
  const Tensor dy = random_tensor(x.shape(), 2);
  for (auto _ : state) {
    switch (state.range(0)) {
      case 0:
        benchmark::DoNotOptimize(tanh_forward(x));
        break;
      case 1:
        benchmark::DoNotOptimize(sigmoid_forward(x));
        break;
      case 2:
        benchmark::DoNotOptimize(silu_forward(x));
        break;
      default:
        benchmark::DoNotOptimize(silu_backward(x, dy));
        break;
    }
  }
  state.SetLabel(state.range(0) == 0   ? "tanh"
                 : state.range(0) == 1 ? "sigmoid"
                 : state.range(0) == 2 ? "silu"
                                       : "silu backward");
  state.SetItemsProcessed(state.iterations() * x.numel());
}

BENCHMARK(BM_Conv2dForward)->Args({1, 64})->Args({2, 64})->Args({1, 1})->Args({2, 1});
BENCHMARK(BM_Conv2dBackward)->Args({1, 64})->Args({2, 64});
BENCHMARK(BM_ConvReluPoolInference)->Args({1, 1000})->Args({2, 1000})->Args({1, 1})->Args({2, 1});
BENCHMARK(BM_MaxPool2dForward)->Args({1, 64})->Args({2, 64});
BENCHMARK(BM_MaxPool2dBackward)->Args({1, 64})->Args({2, 64});
BENCHMARK(BM_ReluForward)->Arg(64);
BENCHMARK(BM_Activation)->DenseRange(0, 3);
BENCHMARK(BM_TrainStep)->Arg(64);
BENCHMARK(BM_Inference)->Arg(1000)->Arg(1);
BENCHMARK(BM_ModelInference)->ArgsProduct({benchmark::CreateDenseRange(0, 5, 1), {1000, 1}});

}  // namespace

int main(int argc, char** argv) {
  int threads = 1;
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      threads = std::atoi(argv[i] + 10);
    } else {
      rest.push_back(argv[i]);
    }
  }
  cnn::set_num_threads(threads);
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rest_argc, rest.data())) return 2;
  benchmark::AddCustomContext("cnn threads", std::to_string(threads));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
