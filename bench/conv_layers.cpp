// Every convolution of the shipped models (models/*.json, input shapes as the models give them),
// timed on one thread: the forward pass, and the backward pass (input and weight
// gradients), in GFLOP/s, the best of several rounds of a batch of 16. The fast kernels take
// Winograd F(2x2, 3x3) (src/ops/fast/winograd.h) where it applies, else the direct AVX2
// convolution (src/ops/fast/direct_conv.h) where the processor has AVX2; CNN_NO_WINOGRAD=1 makes
// them take the direct convolution for all, CNN_NO_AVX2=1 im2col + SGEMM. Run with --compare to
// run the three, alternating, in this one program (it runs itself again under each) and print
// the ratios:
//   build/cnn_conv_layers --compare [--batch N] [--threads N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "cnn/cnn.h"

namespace {

struct Layer {
  const char* name;
  int64_t c_in, h, w, c_out, k_h, k_w, pad_h, pad_w, dil_h, dil_w, groups, s_h = 1, s_w = 1;
};

// From models/*.json: each convolution with its input's shape (the first layers of vgg-bn's
// blocks are bn-gap's).
const Layer kLayers[] = {
    {"tutorial conv1", 1, 28, 28, 16, 3, 3, 0, 0, 1, 1, 1},
    {"tutorial conv2", 16, 14, 14, 32, 3, 3, 0, 0, 1, 1, 1},
    {"lenet5 conv1", 1, 28, 28, 6, 5, 5, 2, 2, 1, 1, 1},
    {"lenet5 conv2", 6, 14, 14, 16, 5, 5, 0, 0, 1, 1, 1},
    {"bn-gap block1", 1, 28, 28, 32, 3, 3, 1, 1, 1, 1, 1},
    {"bn-gap block2", 32, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1},
    {"bn-gap block3", 64, 7, 7, 128, 3, 3, 1, 1, 1, 1, 1},
    {"vgg-bn block1 b", 32, 28, 28, 32, 3, 3, 1, 1, 1, 1, 1},
    {"vgg-bn block2 b", 64, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1},
    {"vgg-bn block3", 64, 7, 7, 128, 3, 3, 0, 0, 1, 1, 1},
    {"dilated conv1", 1, 28, 28, 16, 5, 3, 2, 1, 1, 1, 1},
    {"dilated conv2", 16, 28, 28, 32, 3, 3, 0, 0, 2, 2, 4},
    {"rgb-nested stem", 3, 32, 32, 16, 3, 3, 1, 1, 1, 1, 1},
    {"rgb-nested stage1 b", 32, 16, 16, 32, 3, 3, 1, 1, 1, 1, 2},
    {"rgb-nested stage1 a", 16, 32, 32, 32, 3, 3, 1, 1, 1, 1, 1, 2, 2},
    {"rgb-nested stage2", 32, 16, 16, 64, 3, 3, 1, 1, 1, 1, 1, 2, 2},
    {"dilated conv3", 32, 12, 12, 32, 1, 3, 0, 0, 1, 1, 1, 1, 2},
};

int64_t g_batch = 16;
int g_threads = 1;
constexpr int kRounds = 15;

template <class F>
double best_seconds(F&& f) {
  double best = 1e30;
  for (int r = 0; r < kRounds; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

// "name forward backward" in GFLOP/s, one line per layer.
void run() {
  cnn::set_num_threads(g_threads);
  cnn::Generator gen(5);
  for (const Layer& l : kLayers) {
    cnn::Tensor x({g_batch, l.c_in, l.h, l.w}), w({l.c_out, l.c_in / l.groups, l.k_h, l.k_w}),
        b({l.c_out});
    cnn::uniform_(x, -1.0f, 1.0f, gen);
    cnn::uniform_(w, -0.1f, 0.1f, gen);
    cnn::uniform_(b, -0.1f, 0.1f, gen);
    const cnn::Conv2dGeometry g = cnn::conv2d_geometry(
        cnn::Size2(l.k_h, l.k_w), cnn::Size2(l.s_h, l.s_w), cnn::Conv2dPadding(l.pad_h, l.pad_w),
        cnn::Size2(l.dil_h, l.dil_w), l.groups);
    cnn::Tensor y = cnn::conv2d_forward(x, w, b, g), dy(y.shape());
    cnn::uniform_(dy, -1.0f, 1.0f, gen);
    const double macs = static_cast<double>(y.numel()) * (l.c_in / l.groups) * l.k_h * l.k_w;
    const double fwd = best_seconds([&] { y = cnn::conv2d_forward(x, w, b, g); });
    cnn::Tensor dx, dw(w.shape()), db(b.shape());
    const double bwd = best_seconds([&] { cnn::conv2d_backward(x, w, dy, g, &dx, &dw, &db); });
    std::printf("%s|%.2f|%.2f\n", l.name, 2 * macs / fwd / 1e9, 4 * macs / bwd / 1e9);
  }
}

std::map<std::string, std::pair<double, double>> parse(const std::string& out) {
  std::map<std::string, std::pair<double, double>> r;
  std::size_t at = 0;
  while (at < out.size()) {
    const std::size_t end = out.find('\n', at);
    const std::string line = out.substr(at, end - at);
    at = end == std::string::npos ? out.size() : end + 1;
    const std::size_t a = line.find('|'), b = line.rfind('|');
    if (a == std::string::npos || a == b) continue;
    r[line.substr(0, a)] = {std::stod(line.substr(a + 1, b - a - 1)),
                            std::stod(line.substr(b + 1))};
  }
  return r;
}

std::string capture(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  pclose(p);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  bool compare = false;
  std::string pass;  // the options for the runs of --compare
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--compare") {
      compare = true;
    } else if ((a == "--batch" || a == "--threads") && i + 1 < argc) {
      const int v = std::atoi(argv[++i]);
      if (v < 1) {
        std::fprintf(stderr, "%s must be a positive integer\n", a.c_str());
        return 2;
      }
      if (a == "--batch") {
        g_batch = v;
      } else {
        g_threads = v;
      }
      pass += " " + a + " " + std::to_string(v);
    } else {
      std::fprintf(stderr,
                   "usage: %s [--compare] [--batch N (16)] [--threads N (1)]\n"
                   "GFLOP/s of each convolution of the shipped models, forward and backward;\n"
                   "--compare: the fast path against the direct convolution (CNN_NO_WINOGRAD=1)\n"
                   "and im2col + SGEMM (CNN_NO_AVX2=1)\n",
                   argv[0]);
      return a == "-h" || a == "--help" ? 0 : 2;
    }
  }
  if (compare) {
    const std::string self = argv[0] + pass;
    // Alternating runs of each; the best of each figure.
    std::map<std::string, std::pair<double, double>> fast, direct, im2col;
    auto keep_best = [](auto& into, const auto& from) {
      for (const auto& [k, v] : from) {
        auto& [f, b] = into[k];
        f = std::max(f, v.first), b = std::max(b, v.second);
      }
    };
    for (int i = 0; i < 3; ++i) {
      keep_best(fast, parse(capture(self)));
      keep_best(direct, parse(capture("CNN_NO_WINOGRAD=1 " + self)));
      keep_best(im2col, parse(capture("CNN_NO_AVX2=1 " + self)));
    }
    std::printf("%s thread(s), batch %lld; fast: Winograd where it applies, else direct\n",
                std::to_string(g_threads).c_str(), static_cast<long long>(g_batch));
    std::printf("%-22s %44s %28s\n", "", "forward GFLOP/s", "backward GFLOP/s");
    std::printf("%-22s %8s %8s %8s %8s %8s %8s %8s %8s\n", "layer", "fast", "direct", "im2col",
                "f/d", "f/i", "fast", "im2col", "ratio");
    for (const Layer& l : kLayers) {
      const auto f = fast[l.name], d = direct[l.name], c = im2col[l.name];
      std::printf("%-22s %8.1f %8.1f %8.1f %7.2fx %7.2fx %8.1f %8.1f %7.2fx\n", l.name, f.first,
                  d.first, c.first, f.first / d.first, f.first / c.first, f.second, c.second,
                  f.second / c.second);
    }
    return 0;
  }
  run();
  return 0;
}
