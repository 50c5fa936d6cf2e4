// Google Benchmark over the op table (tests/op_cases_table.h): every case's forward pass and its
// backward pass, on random inputs, from the same table the tests run, so that a new op or case
// is timed as soon as it is tested. The cases are the tests' small shapes: this measures the
// per-call cost of each op and option, not a model's throughput (build/cnn_ops_bench does that).
// Run: build/tests/cnn_op_table_bench [--benchmark_filter=conv2d] [--threads=N]
// [--kernels=reference|fast] (--threads and --kernels are read before Google Benchmark's flags;
// defaults 1 and fast).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "op_cases_table.h"

namespace {

using namespace cnn;
using namespace cnn::op_table;

void register_case(const OpCase& c) {
  benchmark::RegisterBenchmark((c.name + "/forward").c_str(), [c](benchmark::State& state) {
    Generator gen(1);
    const Tensors in = random_inputs(c, gen);
    for (auto _ : state) benchmark::DoNotOptimize(c.forward(in));
  });
  benchmark::RegisterBenchmark((c.name + "/backward").c_str(), [c](benchmark::State& state) {
    Generator gen(1);
    const Tensors in = random_inputs(c, gen);
    const Forward f = c.forward(in);
    Tensor dy(f.y().shape());
    uniform_(dy, -1.0f, 1.0f, gen);
    for (auto _ : state) benchmark::DoNotOptimize(c.backward(in, f, dy));
  });
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1;
  KernelSet kernels = KernelSet::Fast;
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      threads = std::atoi(argv[i] + 10);
    } else if (std::strcmp(argv[i], "--kernels=reference") == 0) {
      kernels = KernelSet::Reference;
    } else if (std::strcmp(argv[i], "--kernels=fast") == 0) {
      kernels = KernelSet::Fast;
    } else {
      rest.push_back(argv[i]);
    }
  }
  set_num_threads(threads);
  set_kernel_set(kernels);
  for (const OpCase& c : op_cases()) register_case(c);
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rest_argc, rest.data())) return 2;
  benchmark::AddCustomContext("cnn threads", std::to_string(threads));
  benchmark::AddCustomContext("cnn kernels", kernels == KernelSet::Fast ? "fast" : "reference");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
