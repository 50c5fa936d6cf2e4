// Every case of the op table (tests/op_cases_table.h) in every mode, after ggml's
// test-backend-ops:
//   OpTableGolden           PyTorch's outputs and gradients from the case's fixture set, under
//                           each kernel set (kGolden);
//   OpTableFastVsReference  the fast kernels against the reference kernels on random inputs and
//                           a random upstream gradient (exact, or kFastVsReference where the
//                           fast kernels sum in another order);
//   OpTableGradCheck        central differences of <dy, y> for a random dy against the analytic
//                           gradient of every differentiable input (kGradCheck).
// Outputs that the ops allocate uninitialised are NaN when CNN_POISON=1, which the library reads
// once, at its first allocation: ctest's kernels_* entries set it (tests/CMakeLists.txt). Outputs
// the harness hands to an op to overwrite are NaN-filled here, always.
#include <sstream>

#include "op_cases_table.h"
#include "testing.h"

namespace cnn {
// What GoogleTest prints for a kernel set.
void PrintTo(KernelSet set, std::ostream* os) {
  *os << (set == KernelSet::Fast ? "Fast" : "Reference");
}
}  // namespace cnn

namespace cnn::op_table {

// What GoogleTest prints for a case: its name and options.
void PrintTo(const OpCase& c, std::ostream* os) { *os << c.name << " " << c.options.dump(); }

namespace {

using cnn::testing::all_close;
using cnn::testing::kFastVsReference;
using cnn::testing::kGolden;
using cnn::testing::kGradCheck;
using cnn::testing::Tol;

// Runs under a kernel set and restores the previous one.
struct KernelSetScope {
  explicit KernelSetScope(KernelSet set) : before(kernel_set()) { set_kernel_set(set); }
  ~KernelSetScope() { set_kernel_set(before); }
  KernelSet before;
};

std::string set_name(KernelSet set) {
  std::ostringstream os;
  PrintTo(set, &os);
  return os.str();
}

// A seed of its own for every case (FNV-1a of the name), the same on every run and machine.
uint64_t seed_of(const std::string& name) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : name) h = (h ^ ch) * 1099511628211ull;
  return h;
}

const Archive& fixture_archive(const std::string& name) {
  static std::map<std::string, Archive> archives;
  auto it = archives.find(name);
  if (it == archives.end()) {
    it = archives.emplace(name, read_archive(cnn::testing::fixture(name))).first;
  }
  return it->second;
}

std::vector<OpCase> fixture_cases() {
  std::vector<OpCase> out;
  for (const OpCase& c : op_cases()) {
    if (!c.fixture.empty()) out.push_back(c);
  }
  return out;
}

// Every output and gradient of one forward and backward pass, by name.
Tensors run_case(const OpCase& c, const Tensors& in, const Tensor& dy) {
  Forward f = c.forward(in);
  Tensors all = f.out;
  for (auto& [name, t] : c.backward(in, f, dy)) all[name] = t;
  return all;
}

// ---- golden ----

class OpTableGolden : public ::testing::TestWithParam<std::tuple<OpCase, KernelSet>> {};

TEST_P(OpTableGolden, MatchesPyTorch) {
  const auto& [c, set] = GetParam();
  const KernelSetScope scope(set);
  const Archive& a = fixture_archive(c.fixture);
  const auto& sets = a.meta.at("cases");
  ASSERT_LT(c.fixture_set, static_cast<int>(sets.size())) << c.fixture;
  // The table describes the fixture set it names: its options and its inputs' shapes.
  for (const auto& [key, value] : sets.at(c.fixture_set).items()) {
    EXPECT_EQ(c.options.value(key, nlohmann::json()), value)
        << "option '" << key << "' differs from " << c.fixture << " set " << c.fixture_set;
  }
  const std::string k = cnn::testing::case_name(c.fixture_set);
  Tensors in;
  for (const OpInput& i : c.inputs) {
    const Tensor& t = a.get(k + i.fixture_name);
    // A shape-[] tensor is stored as [1] (tools/archive.py); no input here has one.
    ASSERT_EQ(t.shape(), i.shape) << i.name << " in " << c.fixture << " set " << c.fixture_set;
    in[i.name] = t;
  }
  const Forward f = c.forward(in);
  for (const auto& [out, fixture_name] : c.fixture_outputs) {
    ASSERT_TRUE(f.out.count(out)) << out;
    EXPECT_TRUE(all_close(f.out.at(out), a.get(k + fixture_name), kGolden)) << out;
  }
  // The fixture's upstream gradient; a loss's is 1 (PyTorch's loss.backward()).
  const Tensor dy = a.has(k + "dy") ? a.get(k + "dy") : Tensor::full(f.y().shape(), 1.0f);
  const Tensors grads = c.backward(in, f, dy);
  for (const OpInput& i : c.inputs) {
    if (!i.differentiable) continue;
    ASSERT_TRUE(grads.count("d" + i.name)) << "d" << i.name;
    EXPECT_TRUE(all_close(grads.at("d" + i.name), a.get(k + i.fixture_grad), kGolden))
        << "d" << i.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, OpTableGolden,
                         ::testing::Combine(::testing::ValuesIn(fixture_cases()),
                                            ::testing::Values(KernelSet::Reference,
                                                              KernelSet::Fast)),
                         [](const ::testing::TestParamInfo<OpTableGolden::ParamType>& info) {
                           return std::get<0>(info.param).name + "_" +
                                  set_name(std::get<1>(info.param));
                         });

// ---- fast kernels against the reference kernels ----

class OpTableFastVsReference : public ::testing::TestWithParam<OpCase> {};

TEST_P(OpTableFastVsReference, Agree) {
  const OpCase& c = GetParam();
  Generator gen(seed_of(c.name));
  const Tensors in = random_inputs(c, gen);
  Tensor dy;
  Tensors ref;
  {
    const KernelSetScope scope(KernelSet::Reference);
    const Forward f = c.forward(in);
    dy = cnn::testing::randn(f.y().shape(), gen);
    ref = run_case(c, in, dy);
  }
  Tensors fast;
  {
    const KernelSetScope scope(KernelSet::Fast);
    fast = run_case(c, in, dy);
  }
  // Where both kernel sets run the same code or only select elements (max-pooling): the same
  // numbers. Where the fast kernels sum the same float32 products in another order (SGEMM,
  // Winograd): kFastVsReference. An element a kernel leaves unwritten is NaN under CNN_POISON
  // (or in an output the harness filled), which no tolerance admits.
  const Tol tol = c.exact_across_kernel_sets ? Tol{0, 0} : kFastVsReference;
  ASSERT_EQ(fast.size(), ref.size());
  for (const auto& [name, want] : ref) {
    ASSERT_TRUE(fast.count(name)) << name;
    EXPECT_TRUE(all_close(fast.at(name), want, tol)) << name;
    EXPECT_TRUE(all_close(want, want, Tol{0, 0})) << name << " has NaN under the reference kernels";
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, OpTableFastVsReference, ::testing::ValuesIn(op_cases()),
                         [](const ::testing::TestParamInfo<OpCase>& info) {
                           return info.param.name;
                         });

// ---- finite differences ----

class OpTableGradCheck : public ::testing::TestWithParam<OpCase> {};

TEST_P(OpTableGradCheck, MatchesFiniteDifferences) {
  const OpCase& c = GetParam();
  Generator gen(seed_of(c.name) + 1);
  Tensors in = random_inputs(c, gen);
  const Forward f = c.forward(in);
  // A random upstream gradient, never all ones: that would hide a backward that ignores dy.
  const Tensor dy = cnn::testing::randn(f.y().shape(), gen);
  const Tensors grads = c.backward(in, f, dy);
  int checked = 0;
  for (const OpInput& i : c.inputs) {
    if (!i.differentiable) continue;
    ASSERT_TRUE(grads.count("d" + i.name)) << "d" << i.name;
    auto y = [&] { return c.forward(in).y().clone(); };
    EXPECT_TRUE(cnn::testing::gradcheck(y, in.at(i.name), grads.at("d" + i.name), dy, i.fd_step,
                                        kGradCheck))
        << "d" << i.name;
    ++checked;
  }
  EXPECT_EQ(static_cast<std::size_t>(checked), grads.size()) << "a gradient of no input";
}

INSTANTIATE_TEST_SUITE_P(Ops, OpTableGradCheck, ::testing::ValuesIn(op_cases()),
                         [](const ::testing::TestParamInfo<OpCase>& info) {
                           return info.param.name;
                         });

// ---- the table itself ----

TEST(OpTable, CoversEveryOpAndFixtureSet) {
  std::set<std::string> ops;
  std::map<std::string, std::set<int>> sets;
  for (const OpCase& c : op_cases()) {
    ops.insert(c.op);
    if (!c.fixture.empty()) sets[c.fixture].insert(c.fixture_set);
  }
  EXPECT_EQ(ops, (std::set<std::string>{"adaptive_avgpool2d", "avgpool2d", "batchnorm2d", "conv2d",
                                        "cross_entropy", "dropout", "flatten", "gelu", "identity",
                                        "leaky_relu", "linear", "log_softmax", "maxpool2d", "relu",
                                        "sigmoid", "silu", "softmax", "tanh"}));
  // Every set of every op fixture is in the table.
  for (const char* name :
       {"adaptive_avgpool2d", "avgpool2d", "batchnorm2d", "conv2d", "cross_entropy", "dropout",
        "flatten", "gelu", "identity", "leaky_relu", "linear", "log_softmax", "maxpool2d", "relu",
        "sigmoid", "silu", "softmax", "softmax_large", "tanh"}) {
    const std::size_t n = fixture_archive(name).meta.at("cases").size();
    EXPECT_EQ(sets[name].size(), n) << name;
  }
}

}  // namespace
}  // namespace cnn::op_table
