// The CUDA backend against the CPU reference, where a GPU is (elsewhere every test here is
// skipped, saying so: CI builds and links the CUDA code but has no GPU; scripts/gpu-check.sh
// runs these on a GPU machine).
//
//   OpTableCuda          every case of the op table (tests/op_cases_table.h) with its inputs on
//                        CUDA, forward and backward, against the reference CPU kernels on the same
//                        random inputs: max |cuda - cpu| / max |cpu| under 1e-5 per output (float32
//                        throughout; cuBLAS without TF32, kernels built with --fmad=false). Outputs
//                        the ops allocate are NaN with CNN_POISON=1 (the kernels_poisoned entry and
//                        gpu-check.sh set it), outputs the harness hands over are NaN-filled: an
//                        element a kernel leaves unwritten fails. The error of each case is
//                        printed.
//   CudaTensor           copies between the devices, fill, clone, Int32 tensors.
//   CudaTraining         the tutorial model's training steps (Adam, dropout, cross-entropy) on
//                        CUDA against the CPU from the same weights, masks and batches; a
//                        Trainer run on each device (the data set resident on the GPU), and its
//                        checkpoint read back on the CPU.
//   DeviceLoader         (runs everywhere) the loader's index-only batches, which the CUDA
//                        trainer gathers from, are the full batches' indices and labels.
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "cnn/io/checkpoint.h"
#include "cnn/models/tutorial.h"
#include "op_cases_table.h"
#include "testing.h"

namespace cnn::op_table {
namespace {

bool have_cuda() { return device_available(Device::CUDA); }

#define SKIP_WITHOUT_CUDA()                                                          \
  if (!have_cuda()) {                                                                \
    GTEST_SKIP() << "skipped: no CUDA: " << device_unavailable_reason(Device::CUDA); \
  }

uint64_t seed_of(const std::string& name) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : name) h = (h ^ ch) * 1099511628211ull;
  return h;
}

// max |got - want| / max |want| (0 / 0 = 0); infinite when got has a NaN where want has none.
double relative_error(const Tensor& got_any, const Tensor& want) {
  const std::vector<float> got = got_any.to_vector(), ref = want.to_vector();
  if (got.size() != ref.size()) return INFINITY;
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(ref[i])) continue;
    if (std::isnan(got[i])) return INFINITY;
    diff = std::max(diff, std::fabs(double(got[i]) - ref[i]));
    scale = std::max(scale, std::fabs(double(ref[i])));
  }
  return scale > 0 ? diff / scale : diff;
}

Tensors all_outputs(const OpCase& c, const Tensors& in, const Tensor& dy) {
  const Forward f = c.forward(in);
  Tensors all = f.out;
  for (auto& [name, t] : c.backward(in, f, dy)) all[name] = t;
  return all;
}

class OpTableCuda : public ::testing::TestWithParam<OpCase> {};

TEST_P(OpTableCuda, MatchesCpuReference) {
  SKIP_WITHOUT_CUDA();
  const OpCase& c = GetParam();
  Generator gen(seed_of(c.name) + 2);
  const Tensors in = random_inputs(c, gen);
  Tensor dy;
  Tensors ref;
  {
    const KernelSet before = kernel_set();
    set_kernel_set(KernelSet::Reference);
    const Forward f = c.forward(in);
    dy = cnn::testing::randn(f.y().shape(), gen);
    ref = all_outputs(c, in, dy);
    set_kernel_set(before);
  }
  Tensors on_cuda;
  for (const auto& [name, t] : in) on_cuda[name] = t.to(Device::CUDA);
  const Tensors got = all_outputs(c, on_cuda, dy.to(Device::CUDA));
  ASSERT_EQ(got.size(), ref.size());
  double worst = 0;
  for (const auto& [name, want] : ref) {
    ASSERT_TRUE(got.count(name)) << name;
    EXPECT_EQ(got.at(name).device(), Device::CUDA) << name << " came back on the host";
    const double e = relative_error(got.at(name), want);
    worst = std::max(worst, e);
    EXPECT_LT(e, 1e-5) << name << ": relative error " << e;
  }
  std::printf("cuda-vs-cpu %-12s %-48s max relative error %.3g\n", c.op.c_str(), c.name.c_str(),
              worst);
}

INSTANTIATE_TEST_SUITE_P(Ops, OpTableCuda, ::testing::ValuesIn(op_cases()),
                         [](const ::testing::TestParamInfo<OpCase>& info) {
                           return info.param.name;
                         });

TEST(CudaTensor, CopiesFillsAndClones) {
  SKIP_WITHOUT_CUDA();
  const Tensor host = Tensor::from({2, 3}, {1, -2, 3, 4.5f, 5, -6});
  const Tensor dev = host.to(Device::CUDA);
  EXPECT_TRUE(dev.is_cuda());
  EXPECT_EQ(dev.shape(), host.shape());
  EXPECT_EQ(dev.to_vector(), host.to_vector());
  EXPECT_EQ(dev.at({1, 2}), -6.0f);
  Tensor copy = dev.clone();
  copy.fill(7.0f);
  EXPECT_EQ(copy.to_vector(), std::vector<float>(6, 7.0f));
  EXPECT_EQ(dev.to_vector(), host.to_vector()) << "clone shares storage";
  Tensor back(host.shape());
  back.copy_(dev);
  EXPECT_EQ(back.to_vector(), host.to_vector());
  EXPECT_EQ(Tensor({4}, Device::CUDA).to_vector(), std::vector<float>(4, 0.0f));
  const Tensor ints = Tensor::from_ints({3}, {0, 7, -1}, Device::CUDA);
  EXPECT_EQ(ints.dtype(), Dtype::Int32);
  EXPECT_EQ(ints.to_int_vector(), (std::vector<int32_t>{0, 7, -1}));
}

TEST(CudaTensor, OpsRefuseMixedDevices) {
  SKIP_WITHOUT_CUDA();
  const Tensor x = Tensor::full({1, 1, 4, 4}, 1.0f, Device::CUDA);
  const Tensor w = Tensor::full({2, 1, 3, 3}, 1.0f);
  cnn::testing::expect_error(
      [&] { conv2d_forward(x, w, Tensor(), conv2d_geometry(3, 1, 0, 1, 1)); },
      {"weight is on cpu but input is on cuda"});
}

// The tutorial model, four Adam steps on CUDA and on the CPU (reference kernels) from the same
// initial weights, dropout masks and batch: losses and weights agree within float32 rounding
// (kModel: the two sum in another order).
TEST(CudaTraining, TutorialStepsMatchCpu) {
  SKIP_WITHOUT_CUDA();
  manual_seed(3);
  TutorialCNN cpu_model, gpu_model;
  std::map<std::string, Tensor> init;
  for (const auto& [name, t] : cpu_model.state_dict()) init[name] = t.clone();
  gpu_model.load_state_dict(init);
  gpu_model.to(Device::CUDA);
  for (auto* m : {&cpu_model, &gpu_model}) {
    auto& dropout = dynamic_cast<Dropout&>(m->submodule("classifier.3"));
    auto gen = std::make_shared<Generator>(11);
    dropout.set_mask_provider(
        [gen](const Shape& shape) { return dropout_mask(shape, 0.5f, *gen); });
  }
  Adam cpu_opt(cpu_model.parameters()), gpu_opt(gpu_model.parameters());
  Generator data(5);
  const Tensor x = cnn::testing::randn({16, 1, 28, 28}, data);
  std::vector<int64_t> y(16);
  for (auto& v : y) v = static_cast<int64_t>(data.below(10));
  const KernelSet before = kernel_set();
  set_kernel_set(KernelSet::Reference);
  for (int step = 0; step < 4; ++step) {
    CrossEntropyLoss cpu_loss, gpu_loss;
    cpu_opt.zero_grad();
    gpu_opt.zero_grad();
    const float lc = cpu_loss(cpu_model.forward(x), y);
    const float lg = gpu_loss(gpu_model.forward(x.to(Device::CUDA)), y);
    EXPECT_NEAR(lg, lc, 1e-5 * std::max(1.0f, std::fabs(lc))) << "step " << step;
    cpu_model.backward(cpu_loss.backward(), false);
    gpu_model.backward(gpu_loss.backward(), false);
    cpu_opt.step();
    gpu_opt.step();
  }
  set_kernel_set(before);
  const auto gpu_state = gpu_model.state_dict();
  for (const auto& [name, t] : cpu_model.state_dict()) {
    const auto it = std::find_if(gpu_state.begin(), gpu_state.end(),
                                 [&](const auto& p) { return p.first == name; });
    ASSERT_NE(it, gpu_state.end()) << name;
    EXPECT_TRUE(cnn::testing::all_close(it->second.cpu(), t, cnn::testing::kModel)) << name;
  }
}

Dataset random_digits(int64_t n, uint64_t seed) {
  Dataset d;
  d.name = "mnist";
  d.split = "train";
  d.count = n;
  d.rows = d.cols = 28;
  d.num_classes = 10;
  for (int c = 0; c < 10; ++c) d.class_names.push_back(std::to_string(c));
  Generator gen(seed);
  d.pixels.resize(static_cast<std::size_t>(n * 28 * 28));
  for (auto& p : d.pixels) p = static_cast<uint8_t>(gen.below(256));
  d.labels.resize(static_cast<std::size_t>(n));
  for (auto& l : d.labels) l = static_cast<uint8_t>(gen.below(10));
  return d;
}

TEST(DeviceLoader, IndexOnlyBatchesAreTheFullBatchesIndicesAndLabels) {
  const Dataset d = random_digits(70, 1);
  DataLoader full(d, 16, true, 9), indices_only(d, 16, true, 9);
  indices_only.set_fill_images(false);
  full.reset();
  indices_only.reset();
  Batch a, b;
  int batches = 0;
  while (full.next(a)) {
    ASSERT_TRUE(indices_only.next(b));
    EXPECT_EQ(a.indices, b.indices);
    EXPECT_EQ(a.labels, b.labels);
    EXPECT_FALSE(b.images.defined()) << "no images were asked for";
    ++batches;
  }
  EXPECT_FALSE(indices_only.next(b));
  EXPECT_EQ(batches, 5);
}

// Two epochs of the tutorial recipe on 512 random digits, once per device from the same seeds:
// the same losses (float32 rounding apart), and the CUDA run's checkpoint answers on the CPU as
// the CUDA model does.
TEST(CudaTraining, TrainerOnCudaMatchesTheCpu) {
  SKIP_WITHOUT_CUDA();
  const Dataset train = random_digits(512, 2), test = random_digits(128, 3);
  std::vector<EpochRecord> history[2];
  const std::string ckpt = ::testing::TempDir() + "cnn_cuda_trainer.cnnt";
  std::shared_ptr<TutorialCNN> cuda_model;
  for (int d = 0; d < 2; ++d) {
    manual_seed(4);  // the dropout masks' stream
    Generator init(5);
    auto model = std::make_shared<TutorialCNN>(10, init);
    TrainOptions o;
    o.epochs = 2;
    o.batch_size = 32;
    o.seed = 6;
    o.device = d == 0 ? Device::CPU : Device::CUDA;
    Trainer trainer(model, train, &test, o);
    history[d] = trainer.fit();
    if (d == 1) {
      trainer.save_checkpoint(ckpt);
      cuda_model = model;
    }
  }
  for (std::size_t e = 0; e < 2; ++e) {
    EXPECT_NEAR(history[1][e].train_loss, history[0][e].train_loss, 1e-4) << "epoch " << e + 1;
    EXPECT_NEAR(history[1][e].test_loss, history[0][e].test_loss, 1e-4) << "epoch " << e + 1;
  }
  const LoadedModel loaded = load_model(ckpt);
  const EvalResult on_cpu = evaluate(*loaded.model, test);
  const EvalResult on_cuda = evaluate(*cuda_model, test);
  EXPECT_EQ(on_cpu.confusion, on_cuda.confusion);
  EXPECT_NEAR(on_cpu.loss, on_cuda.loss, 1e-5);
  std::filesystem::remove(ckpt);
}

}  // namespace
}  // namespace cnn::op_table
