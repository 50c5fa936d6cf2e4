// Times a TorchScript model in libtorch (Debian's libtorch-dev, C++) for tools/compare_peers.py:
//   libtorch_bench MODEL.pt C,H,W THREADS SECONDS
// Prints one line of JSON: {"train": images/s (batch 64, Adam, cross-entropy, eager autograd),
// "infer": images/s at batch 1000, "latency_us": median of batch-1 runs, "infer_variant": ...}.
// Inference is timed two ways, the model as scripted (eval mode, InferenceMode) and after
// torch::jit::optimize_for_inference (frozen, BatchNorm folded into the convolutions, oneDNN
// layouts where it chooses them), and the faster of the two is reported for each figure: the
// peer gets its best. Built by scripts/compare-peers.sh, not by CMake: the library does not
// depend on libtorch.
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::vector<int64_t> batch_shape(int64_t n, const std::vector<int64_t>& shape) {
  std::vector<int64_t> s = {n};
  s.insert(s.end(), shape.begin(), shape.end());
  return s;
}

struct Inference {
  double images_per_second = 0, latency_us = 0;
};

Inference time_inference(torch::jit::Module& m, const std::vector<int64_t>& shape, double seconds) {
  Inference r;
  c10::InferenceMode guard;
  const torch::Tensor big = torch::rand(batch_shape(1000, shape));
  m.forward({big});
  int64_t runs = 0;
  auto t0 = Clock::now();
  while (since(t0) < seconds) {
    m.forward({big});
    ++runs;
  }
  r.images_per_second = static_cast<double>(runs * 1000) / since(t0);
  const torch::Tensor one = torch::rand(batch_shape(1, shape));
  for (int i = 0; i < 50; ++i) m.forward({one});
  std::vector<double> us;
  t0 = Clock::now();
  while (since(t0) < seconds || us.size() < 100) {
    const auto t = Clock::now();
    m.forward({one});
    us.push_back(since(t) * 1e6);
  }
  std::sort(us.begin(), us.end());
  r.latency_us = us[us.size() / 2];
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: libtorch_bench MODEL.pt C,H,W THREADS SECONDS\n");
    return 2;
  }
  try {
    std::vector<int64_t> shape;
    std::stringstream dims(argv[2]);
    for (std::string d; std::getline(dims, d, ',');) shape.push_back(std::stoll(d));
    const int threads = std::stoi(argv[3]);
    const double seconds = std::stod(argv[4]);
    torch::set_num_threads(threads);
    torch::manual_seed(0);

    torch::jit::Module m = torch::jit::load(argv[1]);
    // Training: the tutorial's step, as cnn bench runs it.
    double train = 0;
    {
      m.train();
      std::vector<torch::Tensor> params;
      for (const auto& p : m.parameters()) params.push_back(p);
      torch::optim::Adam opt(params, torch::optim::AdamOptions(1e-3));
      const torch::Tensor x = torch::rand(batch_shape(64, shape));
      const torch::Tensor y = torch::randint(0, 10, {64}, torch::kLong);
      auto step = [&] {
        opt.zero_grad();
        const torch::Tensor out = m.forward({x}).toTensor();
        torch::nn::functional::cross_entropy(out, y).backward();
        opt.step();
      };
      for (int i = 0; i < 10; ++i) step();
      int64_t steps = 0;
      const auto t0 = Clock::now();
      while (since(t0) < seconds) {
        step();
        ++steps;
      }
      train = static_cast<double>(steps * 64) / since(t0);
    }
    m.eval();
    const Inference plain = time_inference(m, shape, seconds);
    torch::jit::Module frozen = torch::jit::optimize_for_inference(m);
    const Inference optimized = time_inference(frozen, shape, seconds);
    const bool opt_infer = optimized.images_per_second > plain.images_per_second;
    const bool opt_latency = optimized.latency_us < plain.latency_us;
    std::printf(
        "{\"train\": %.3f, \"infer\": %.3f, \"latency_us\": %.3f, \"infer_variant\": \"%s\", "
        "\"latency_variant\": \"%s\"}\n",
        train, opt_infer ? optimized.images_per_second : plain.images_per_second,
        opt_latency ? optimized.latency_us : plain.latency_us,
        opt_infer ? "optimize_for_inference" : "scripted",
        opt_latency ? "optimize_for_inference" : "scripted");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "libtorch_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
