// Hostile files: sizes checked before anything is allocated or inflated, errors that quote only a
// short excerpt. Each test makes its hostile file itself: small files that declare huge sizes.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cnn/data/idx.h"
#include "cnn/io/checkpoint.h"
#include "cnn/io/file.h"
#include "cnn/io/json.h"
#include "cnn/train/trainer.h"
#include "run_cli.h"
#include "testing.h"

namespace cnn::testing {
namespace {

namespace fs = std::filesystem;

// The message of the cnn::Error f throws ("" and a failure when it throws none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a cnn::Error";
  return "";
}

void expect_has(const std::string& msg, const std::vector<std::string>& fragments) {
  for (const auto& f : fragments)
    EXPECT_NE(msg.find(f), std::string::npos) << "'" << f << "' not in: " << msg;
}

// The one line a refused input gives: "cnn: error: ...", short, non-zero exit.
void expect_one_short_line(const Result& r, const std::vector<std::string>& fragments) {
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_EQ(r.out.rfind("cnn: error: ", 0), 0u) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_LT(r.out.size(), 1000u) << r.out;
  expect_has(r.out, fragments);
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

std::string gzip(const std::string& bytes, int level = Z_BEST_SPEED) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, bytes.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  z.avail_in = static_cast<uInt>(bytes.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string be32(uint32_t v) {
  std::string s;
  for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>((v >> shift) & 0xff));
  return s;
}

std::string idx_images_header(uint32_t count, uint32_t rows, uint32_t cols) {
  return be32(0x803) + be32(count) + be32(rows) + be32(cols);
}

// A tensor archive with the given header text and data, and a valid CRC: the reader must judge
// what the header declares, not merely detect corruption.
std::string raw_archive(const std::string& header, const std::string& data = "") {
  std::string bytes = "CNNARCH1";
  const uint64_t n = header.size();
  bytes.append(reinterpret_cast<const char*>(&n), 8);
  bytes += header + data;
  const auto crc = static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
  bytes.append(reinterpret_cast<const char*>(&crc), 4);
  return bytes;
}

class HostileFiles : public ::testing::Test {
 protected:
  fs::path dir;
  void SetUp() override {
    dir = fs::path(::testing::TempDir()) /
          ("cnn_hostile_" + std::to_string(getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  std::string path(const std::string& name) const { return (dir / name).string(); }

  // A checkpoint of the tutorial's model whose metadata is `meta` (format and version added).
  std::string checkpoint(const std::string& name, nlohmann::json architecture) {
    Archive a;
    a.meta = {{"format", kCheckpointFormat},
              {"version", kCheckpointVersion},
              {"architecture", std::move(architecture)}};
    auto model = build_model(tutorial_architecture()).module;
    for (const auto& [n, t] : model->state_dict()) a.add("model/" + n, t);
    write_archive(path(name), a);
    return path(name);
  }
};

// Item 1: a classifier of [2^62, 32] wrapped to 0 elements, then predict read out of bounds.
TEST_F(HostileFiles, ArchiveShapeThatOverflowsIsRefused) {
  const std::string p = path("overflow.cnnt");
  write_bytes(p, raw_archive(R"({"meta": {}, "tensors": [{"name": "model/classifier.2.weight",
      "shape": [4611686018427387904, 32], "offset": 0}]})",
                             std::string(16, '\0')));
  expect_has(error_of([&] { read_archive(p); }),
             {p, "tensor 'model/classifier.2.weight'", "(4611686018427387904, 32)", "overflows"});
  // Elements that fit in int64 but not in the limit, and dimensions that are not sizes.
  write_bytes(p,
              raw_archive(R"({"tensors": [{"name": "w", "shape": [65536, 65536], "offset": 0}]})",
                          std::string(16, '\0')));
  expect_has(error_of([&] { read_archive(p); }), {p, "more elements than the limit"});
  for (const std::string dim : {"-1", "18446744073709551615", "2.5", "\"7\""}) {
    write_bytes(
        p, raw_archive(R"({"tensors": [{"name": "w", "shape": [)" + dim + R"(], "offset": 0}]})"));
    const std::string msg = error_of([&] { read_archive(p); });
    EXPECT_TRUE(msg.find("invalid dimension") != std::string::npos ||
                msg.find("malformed header") != std::string::npos)
        << dim << ": " << msg;
  }
}

TEST_F(HostileFiles, CheckpointDeclaringAHugeClassifierIsRefused) {
  // A version-1 architecture: the tutorial by name, with its number of classes.
  nlohmann::json arch = {{"name", "tutorial"}, {"num_classes", int64_t{1} << 62}};
  const std::string p = checkpoint("huge.cnnt", arch);
  expect_has(error_of([&] { load_checkpoint(p); }), {p, "num_classes", "limit"});
  expect_one_short_line(run_cli("predict --weights " + p + " --index 0 --data-dir " + path("none")),
                        {p, "num_classes"});
  arch["num_classes"] = "ten";
  const std::string q = checkpoint("string.cnnt", arch);
  expect_has(error_of([&] { load_checkpoint(q); }), {q, "num_classes must be a positive integer"});
  // A version-2 description: the last Linear declares 2^40 outputs, refused before allocating.
  nlohmann::json described = tutorial_architecture();
  described["layers"].back()["layers"].back()["out_features"] = int64_t{1} << 40;
  const std::string r = checkpoint("described.cnnt", described);
  expect_has(error_of([&] { load_checkpoint(r); }),
             {r, "layer classifier.4 (Linear)", "1099511627776", "limit"});
}

// Item 3: an architecture nested 100,000 deep; eval must refuse it, not overflow the stack.
TEST_F(HostileFiles, DeeplyNestedJsonIsRefusedBeforeParsing) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const std::string p = path("deep.cnnt");
  write_bytes(p, raw_archive(R"({"meta": {"format": "cnn-checkpoint", "version": 1,
      "architecture": )" + deep +
                             R"(}, "tensors": []})"));
  const std::string msg = error_of([&] { load_checkpoint(p); });
  expect_has(msg, {p, "nested deeper than 64 levels", "bytes)"});
  EXPECT_LT(msg.size(), 600u) << msg;
  expect_one_short_line(run_cli("eval --weights " + p + " --data-dir " + path("none")),
                        {p, "nested deeper than 64 levels"});
  // Depth counts arrays and objects, not brackets inside strings.
  EXPECT_EQ(json_depth(R"({"a": [1, {"b": "[[[[{{{{"}], "c": "\"[["})"), 3);
  EXPECT_EQ(json_depth(std::string(64, '[') + std::string(64, ']')), 64);
  EXPECT_NO_THROW(parse_json(std::string(64, '[') + std::string(64, ']'), "x"));
  expect_has(error_of([&] { parse_json(std::string(65, '[') + std::string(65, ']'), "body"); }),
             {"body: JSON nested deeper than 64 levels"});
}

TEST_F(HostileFiles, ErrorsQuoteOnlyAnExcerptOfTheFile) {
  const std::string p = path("long.cnnt");
  // A malformed header of 1 MB, a tensor name of 1 MB with newlines, an architecture of 1 MB.
  write_bytes(p, raw_archive("{\"meta\": " + std::string(1 << 20, 'x') + "}"));
  std::string msg = error_of([&] { read_archive(p); });
  expect_has(msg, {p, "malformed header"});
  EXPECT_LT(msg.size(), 600u) << msg;
  const std::string name = std::string(1 << 20, 'n') + "\\n\\u0001";  // JSON escapes
  write_bytes(
      p, raw_archive(R"({"tensors": [{"name": ")" + name + R"(", "shape": [-1], "offset": 0}]})"));
  msg = error_of([&] { read_archive(p); });
  expect_has(msg, {p, "invalid dimension", "(1048578 bytes)"});
  EXPECT_LT(msg.size(), 600u) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);
  // An architecture whose key, or whose name, is 1 MB long.
  nlohmann::json arch = {{std::string(1 << 20, 'k'), 1}};
  const std::string q = checkpoint("arch.cnnt", arch);
  msg = error_of([&] { load_checkpoint(q); });
  expect_has(msg, {q, "unknown key 'kkk", "(1048576 bytes)"});
  EXPECT_LT(msg.size(), 600u) << msg;
  arch = {{"name", std::string(1 << 20, 'a')}, {"input", {1, 28, 28}}, {"layers", {}}};
  const std::string r = checkpoint("name.cnnt", arch);
  msg = error_of([&] { load_checkpoint(r); });
  expect_has(msg, {r, "\"name\" must be a string of at most 64 characters", "(1048578 bytes)"});
  EXPECT_LT(msg.size(), 600u) << msg;
}

// Item 4: a 16-byte file whose header promises 1 x 65536 x 65536.
TEST_F(HostileFiles, IdxHeaderPromisingMoreThanTheFileIsRefusedBeforeAllocating) {
  const std::string raw = path("raw-idx3-ubyte");
  write_bytes(raw, idx_images_header(1, 65536, 65536));
  expect_has(error_of([&] { read_idx_images(raw); }),
             {raw, "truncated", "promises 4294967312 bytes", "the file has 16"});
  // gzip: the inflated size is unknown until inflated, so the limit refuses it.
  const std::string gz = path("raw-idx3-ubyte.gz");
  write_bytes(gz, gzip(idx_images_header(1, 65536, 65536)));
  expect_has(error_of([&] { read_idx_images(gz); }),
             {gz, "1 x 65536 x 65536", "more than the limit"});
  // Images too large to be images, though the file holds no data at all.
  write_bytes(raw, idx_images_header(0, 16384, 16384));
  expect_has(error_of([&] { read_idx_images(raw); }), {raw, "16384x16384", "more pixels"});
  // No images of 4244741151 x 2332557312 pixels: the pixel count passes 2^63 (fuzz/fuzz_idx.cpp
  // found its product wrapping; UBSan in scripts/sanitize.sh would report it).
  write_bytes(raw, idx_images_header(0, 4244741151u, 2332557312u));
  expect_has(error_of([&] { read_idx_images(raw); }), {raw, "image size"});
  // A count near 2^32 of 28 x 28 images in a raw file: its size refuses it, before reading.
  write_bytes(raw, idx_images_header(0xffffffffu, 28, 28) + std::string(784, '\0'));
  expect_has(error_of([&] { read_idx_images(raw); }), {raw, "truncated"});
}

// A gzip stream that declares 300,000 images (235 MB, under the limit) and ends after 3 MB: its
// buffer grows with what the stream delivers, so the read fails without allocating what it
// declared (checked in a child whose address space may grow by 32 MiB only).
TEST_F(HostileFiles, IdxGzipCutShortAllocatesWhatItHeld) {
  const std::string gz = path("cut-idx3-ubyte.gz");
  write_bytes(gz, gzip(idx_images_header(300000, 28, 28) + std::string(3 << 20, '\x01')));
  expect_has(error_of([&] { read_idx_images(gz); }),
             {gz, "truncated", "promises 235200016 bytes", "the file has 3145744"});
  EXPECT_EXIT(exit_after_capped([&] { read_idx_images(gz); }), ::testing::ExitedWithCode(0),
              "truncated");
}

// A 1 MB gzip that inflates to a 983 MB valid image file: refused by the limit on the data's bytes
// before it is inflated (the test's file is smaller: its header says the same).
TEST_F(HostileFiles, IdxGzipOverTheLimitIsRefusedBeforeInflating) {
  const std::string gz = path("big-idx3-ubyte.gz");
  const uint32_t count = 1254000;  // x 784 = 983 MB
  write_bytes(gz, gzip(idx_images_header(count, 28, 28) + std::string(1 << 20, '\0')));
  expect_has(error_of([&] { read_idx_images(gz); }),
             {gz, "983136000 bytes of data", "more than the limit of 268435456"});
}

// Trailing zeros after the declared data: refused at the first byte, without inflating the rest
// (here 16 GiB of zeros in 16 MB of gzip members: inflating them would take many seconds).
TEST_F(HostileFiles, IdxGzipTrailingBytesAreRefusedWithoutInflatingThem) {
  const std::string head = idx_images_header(2, 28, 28) + std::string(2 * 784, '\x07');
  const std::string gz = path("trailing-idx3-ubyte.gz");
  // One stream: the data and then 32 MB of zeros.
  write_bytes(gz, gzip(head + std::string(32 << 20, '\0')));
  expect_has(error_of([&] { read_idx_images(gz); }), {gz, "unexpected bytes after the data"});
  // Further gzip members after the data: 1024 x 16 MiB of zeros.
  const std::string zeros = gzip(std::string(16 << 20, '\0'));
  {
    std::ofstream out(gz, std::ios::binary | std::ios::trunc);
    out << gzip(head);
    for (int i = 0; i < 1024; ++i) out << zeros;
  }
  const auto t0 = std::chrono::steady_clock::now();
  expect_has(error_of([&] { read_idx_images(gz); }), {gz, "unexpected bytes after the data"});
  // Not a speed claim: inflating the 16 GiB takes about a minute, refusing at its first byte
  // milliseconds; 10 s tells the two apart on any machine, however loaded.
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10.0);
  // The same data without the zeros reads, and its trailer is checked.
  write_bytes(gz, gzip(head));
  EXPECT_EQ(read_idx_images(gz).count, 2);
  std::string cut = gzip(head);
  cut.resize(cut.size() - 4);  // the length in the trailer
  write_bytes(gz, cut);
  expect_has(error_of([&] { read_idx_images(gz); }), {gz, "corrupted gzip data"});
}

// Item 5: a dataset of zero images; `cnn train` read history.back() of an empty history.
TEST_F(HostileFiles, DatasetWithNoImagesIsRefused) {
  for (auto [prefix, n] : {std::pair<std::string, int64_t>{"train", 0}, {"t10k", 4}}) {
    write_idx_images(path(prefix + "-images-idx3-ubyte"),
                     IdxImages{n, 28, 28, std::vector<uint8_t>(static_cast<std::size_t>(n) * 784)});
    write_idx_labels(path(prefix + "-labels-idx1-ubyte"),
                     std::vector<uint8_t>(static_cast<std::size_t>(n)));
  }
  expect_has(error_of([&] { load_dataset("mnist", dir.string(), "train"); }),
             {path("train-images-idx3-ubyte"), "holds no images"});
  const std::string out = path("m.cnnt");
  expect_one_short_line(run_cli("train --data-dir " + dir.string() + " --epochs 1 --out " + out),
                        {"train-images-idx3-ubyte", "holds no images"});
  EXPECT_FALSE(fs::exists(out));
  // The Trainer refuses one too, however it was made.
  Dataset empty;
  empty.name = "mnist";
  empty.split = "train";
  empty.rows = empty.cols = 28;
  empty.num_classes = 10;
  auto model = build_model(tutorial_architecture()).module;
  expect_has(error_of([&] { Trainer(model, empty, nullptr, {}); }),
             {"mnist train", "holds no images"});
}

// Item 6: the atomic write is durable too (fsync of the file before the rename, of the directory
// after). A test cannot observe fsync; it checks the file, the replacement and that no temporary
// remains.
TEST_F(HostileFiles, AtomicWriteLeavesTheFileAndNoTemporary) {
  const std::string p = path("out.bin");
  write_file_atomically(p, std::string("first"));
  write_file_atomically(p, std::string(100000, 'z'));
  std::ifstream in(p, std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), std::string(100000, 'z'));
  EXPECT_FALSE(fs::exists(p + ".tmp"));
  expect_has(error_of([&] { write_file_atomically(path("no/such/dir/x"), "x"); }),
             {path("no/such/dir/x"), "cannot open for writing"});
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
}

}  // namespace
}  // namespace cnn::testing
