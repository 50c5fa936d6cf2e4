// Tensor, Generator and the tensor archive.
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "testing.h"

namespace cnn::testing {
namespace {

TEST(Tensor, ShapeStorageAndAlignment) {
  Tensor t({2, 3, 4});
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.dim(), 3);
  EXPECT_EQ(t.size(-1), 4);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data()) % Tensor::kAlignment, 0u);
  for (float v : t) EXPECT_EQ(v, 0.0f);
  EXPECT_EQ(t.device(), Device::CPU);
  EXPECT_EQ(shape_str(t.shape()), "(2, 3, 4)");
  EXPECT_EQ(shape_str({5}), "(5,)");
}

TEST(Tensor, CopiesShareStorageClonesDoNot) {
  Tensor a = Tensor::from({2, 2}, {1, 2, 3, 4});
  Tensor b = a;
  Tensor c = a.clone();
  a[0] = 9;
  EXPECT_EQ(b[0], 9);
  EXPECT_EQ(c[0], 1);
  EXPECT_EQ(a.at({1, 0}), 3);
}

TEST(Tensor, ReshapeChecksNumel) {
  Tensor a({2, 3, 4});
  EXPECT_EQ(a.reshape({6, -1}).shape(), (Shape{6, 4}));
  EXPECT_THROW(a.reshape({5, 5}), Error);
  EXPECT_THROW(a.reshape({-1, -1}), Error);
  EXPECT_THROW(Tensor({2, -1}), Error);
  EXPECT_THROW(Tensor::from({2}, {1, 2, 3}), Error);
  EXPECT_THROW(a.size(3), Error);
  EXPECT_THROW(a.at({0, 0, 4}), Error);
  EXPECT_THROW(Tensor({2}, Device::CUDA), Error);
}

// Issue 10: every size computed from a declared shape goes through one checked multiply.
TEST(Tensor, CheckedSizesNeverWrap) {
  const int64_t big = int64_t{1} << 62;
  EXPECT_EQ(checked_mul(3, 4, "x"), 12);
  expect_error([&] { checked_mul(big, 32, "the classifier"); }, {"the classifier", "overflows"});
  expect_error([&] { checked_mul(-1, 2, "rows"); }, {"rows", "negative"});
  EXPECT_EQ(checked_numel({2, 3, 4}, "x"), 24);
  EXPECT_EQ(checked_numel({}, "x"), 1);
  EXPECT_EQ(checked_numel({5, 0, big}, "x"), 0);
  expect_error(
      [&] {
        checked_numel({big, 32}, "weight");
      },
      {"weight", "(4611686018427387904, 32)", "overflows"});
  expect_error([&] { checked_numel({2, -3}, "weight"); }, {"weight", "negative dimension"});
  expect_error([&] { shape_numel({big, 32}); }, {"overflows"});
  EXPECT_EQ(shape_numel({-1, 16, 28, 28}), -16 * 28 * 28);  // torchsummary's batch of -1
}

TEST(Tensor, ShapesOverTheLimitRefusedBeforeAllocating) {
  const int64_t big = int64_t{1} << 62;
  // [2^62, 32] wrapped to 0 elements before: a 4-byte tensor that claimed 2^67.
  expect_error([&] { Tensor({big, 32}); }, {"Tensor", "overflows"});
  expect_error([&] { Tensor::empty({limits::kMaxTensorElements + 1}); },
               {"Tensor", "more than the limit"});
  expect_error([&] { Tensor({2, -1}); }, {"Tensor: negative dimension in shape (2, -1)"});
}

TEST(Tensor, ReshapeRefusesInvalidDimensions) {
  Tensor a({2, 3, 4});
  expect_error([&] { a.reshape({-2, -12}); }, {"invalid dimension -2"});
  expect_error([&] { a.reshape({int64_t{1} << 62, 32, -1}); }, {"overflows"});
  Tensor e({0, 4});
  expect_error([&] { e.reshape({0, -1}); }, {"is invalid for input of size 0"});
  EXPECT_EQ(e.reshape({4, 0}).shape(), (Shape{4, 0}));
}

TEST(Generator, SeededAndReproducible) {
  Generator a(42), b(42), c(43);
  std::vector<float> va, vb, vc;
  for (int i = 0; i < 1000; ++i) {
    va.push_back(a.uniform());
    vb.push_back(b.uniform());
    vc.push_back(c.uniform());
  }
  EXPECT_EQ(va, vb);
  EXPECT_NE(va, vc);
  double mean = 0;
  for (float v : va) {
    EXPECT_GE(v, 0.0f);
    EXPECT_LT(v, 1.0f);
    mean += v / va.size();
  }
  EXPECT_NEAR(mean, 0.5, 0.05);
  const auto state = a.state();
  const float next = a.uniform();
  a.set_state(state);
  EXPECT_EQ(a.uniform(), next);
}

TEST(Archive, RoundTripAndCorruptionDetection) {
  const std::string path =
      ::testing::TempDir() + "/roundtrip_" + std::to_string(getpid()) + ".cnnt";
  Archive a;
  a.meta["what"] = "test";
  a.add("x", Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6}));
  a.add("empty", Tensor({0}));
  write_archive(path, a);
  const Archive b = read_archive(path);
  EXPECT_EQ(b.meta["what"], "test");
  EXPECT_TRUE(all_close(b.get("x"), a.get("x"), Tol{0, 0}));
  EXPECT_EQ(b.get("empty").numel(), 0);
  EXPECT_THROW(b.get("missing"), Error);

  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto write = [&](const std::string& s) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << s;
  };
  auto expect_fails = [&](const std::string& fragment) {
    try {
      read_archive(path);
      ADD_FAILURE() << "expected an error containing '" << fragment << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  };
  std::string flipped = bytes;
  flipped[bytes.size() - 8] ^= 0x40;
  write(flipped);
  expect_fails("checksum mismatch");
  write(bytes.substr(0, bytes.size() / 2));
  expect_fails("");
  write("NOTANARCHIVE-------------");
  expect_fails("bad magic");
  std::remove(path.c_str());
  expect_fails("cannot open");
}

}  // namespace
}  // namespace cnn::testing
