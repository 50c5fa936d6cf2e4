// cnn bench: how fast a model (the tutorial's by default) trains and answers on this machine.
#include "cnn/perf/bench.h"

#include <cstdio>

#include "cnn/models/registry.h"
#include "common.h"

namespace cnn::cli {

void add_bench_command(CLI::App& app, int& exit_code) {
  struct Args {
    int threads = 0;
    double seconds = 3.0;
    std::string model = "tutorial", kernels = "fast", json, device = "cpu";
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "bench",
      "Training and inference images/s, batch-1 latency, GFLOP/s against the measured FMA peak");
  cmd->add_option(
         "--model", a->model,
         "A shipped model (" + join_names(shipped_model_names()) + ") or the path of a model file")
      ->capture_default_str();
  cmd->add_option("--threads", a->threads, "Threads (0: one per core)")->check(integer_in(0, 4096));
  cmd->add_option("--seconds", a->seconds, "Seconds per measurement")
      ->check(positive_number())
      ->capture_default_str();
  cmd->add_option("--kernels", a->kernels, "Kernel set")
      ->check(one_of({"fast", "reference"}))
      ->capture_default_str();
  cmd->add_option("--json", a->json, "Write the figures as JSON here (replaced if it exists)");
  add_device_option(cmd, a->device);
  cmd->callback([a, &exit_code] {
    if (!a->json.empty()) check_output_file("--json", a->json);
    const Device device = resolve_device(a->device);
    set_num_threads(a->threads);
    set_kernel_set(a->kernels == "fast" ? KernelSet::Fast : KernelSet::Reference);
    const ModelSource source = find_model(a->model);
    manual_seed(0);
    const BuiltModel built = build_model(source.description, default_generator(), source.source);
    BenchOptions o;
    o.seconds = a->seconds;
    o.device = device;
    o.input = built.input;
    o.classes = built.output.empty() ? 1 : built.output.back();
    const BenchResult r = run_benchmark(*built.module, o);
    if (device == Device::CUDA) {
      std::printf("%s (%s parameters, input %s), on %s\n",
                  built.name.empty() ? source.source.c_str() : built.name.c_str(),
                  with_commas(built.parameters).c_str(), shape_str(built.input).c_str(),
                  r.device.c_str());
    } else {
      std::printf("%s (%s parameters, input %s), %s kernels, %d thread%s, %s\n",
                  built.name.empty() ? source.source.c_str() : built.name.c_str(),
                  with_commas(built.parameters).c_str(), shape_str(built.input).c_str(),
                  a->kernels.c_str(), r.threads, r.threads == 1 ? "" : "s", r.simd.c_str());
    }
    std::printf(
        "  training   (batch %lld, Adam)  %10s images/s   %6.1f GFLOP/s (%.2f MFLOP/image)\n",
        (long long)o.train_batch, thousands(r.train_images_per_second).c_str(), r.train_gflops,
        r.flops.training / 1e6);
    std::printf("  inference  (batch %lld)      %10s images/s   %6.1f GFLOP/s (%.2f MFLOP/image)\n",
                (long long)o.infer_batch, thousands(r.infer_images_per_second).c_str(),
                r.infer_gflops, r.flops.forward / 1e6);
    std::printf("  latency    (batch 1)          %10.1f us median, %.1f us p90\n",
                r.latency_us_median, r.latency_us_p90);
    if (device == Device::CPU) {
      std::printf(
          "  FMA peak   (measured)         %10.1f GFLOP/s; training reaches %.1f %% of it\n",
          r.peak_gflops, 100.0 * r.train_gflops / r.peak_gflops);
      std::printf("  products   %s\n", r.blas.c_str());
    }
    if (!a->json.empty()) {
      nlohmann::json j = r.to_json();
      j["kernels"] = a->kernels;
      j["model"] = built.name.empty() ? source.source : built.name;
      write_json(a->json, j);
    }
    exit_code = 0;
  });
}

}  // namespace cnn::cli
