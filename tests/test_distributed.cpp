// The pieces of data-parallel training that run in one process: the parameter arena
// (Module::pack_parameters, Tensor::view), the shards of a batch (shard_of, DataLoader::set_shard,
// Dropout::set_batch_shard) and the local communicator. Runs across processes are
// tests/mpi_training.sh's (mpirun with 1, 2 and 4 ranks).
#include <cstring>

#include "bars_dataset.h"
#include "cnn/data/augment.h"
#include "cnn/dist/communicator.h"
#include "cnn/dist/mpi.h"
#include "cnn/nn/loss.h"
#include "cnn/nn/spec.h"
#include "cnn/optim/adam.h"
#include "cnn/train/trainer.h"
#include "testing.h"

namespace cnn::testing {
namespace {

// Parameters of several shapes, odd sizes among them (the arena pads each to 16 floats), a
// BatchNorm2d's buffers and a Dropout's draws.
nlohmann::json small_model() {
  return nlohmann::json::parse(R"({"input": [1, 10, 10], "layers": [
    {"type": "Conv2d", "out_channels": 3, "kernel_size": 3, "padding": 1},
    {"type": "BatchNorm2d"}, {"type": "ReLU"}, {"type": "MaxPool2d", "kernel_size": 2},
    {"type": "Flatten"}, {"type": "Dropout", "p": 0.3}, {"type": "Linear", "out_features": 7},
    {"type": "ReLU"}, {"type": "Linear", "out_features": 4}]})");
}

std::shared_ptr<Module> built(uint64_t seed) {
  manual_seed(seed);
  return build_model(small_model(), default_generator(), "small").module;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.numel() == b.numel() &&
         std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.numel()) * 4) == 0;
}

TEST(TensorView, SharesStorageAndChecksItsRange) {
  Tensor t = Tensor::from({6}, {0, 1, 2, 3, 4, 5});
  Tensor v = t.view(2, {2, 2});
  EXPECT_EQ(v.shape(), (Shape{2, 2}));
  EXPECT_EQ(v.data(), t.data() + 2);
  v[0] = 20;
  EXPECT_EQ(t[2], 20);
  EXPECT_EQ(t.view(6, {0}).numel(), 0);
  EXPECT_THROW(t.view(3, {2, 2}), Error);  // elements 3..6 of 6
  EXPECT_THROW(t.view(-1, {1}), Error);
  EXPECT_THROW(Tensor().view(0, {0}), Error);
  // The view keeps the block alive after the tensor it came from is gone.
  Tensor kept = Tensor::from({3}, {7, 8, 9}).view(1, {2});
  EXPECT_EQ(kept[1], 9);
}

TEST(ParameterArena, PacksEveryParameterAlignedInOrderWithItsValues) {
  auto model = built(3);
  std::vector<Tensor> before;
  for (auto& [name, p] : model->named_parameters()) before.push_back(p->value.clone());
  ASSERT_EQ(model->parameter_arena(), nullptr);
  const ParameterArena& arena = model->pack_parameters();
  auto named = model->named_parameters();
  ASSERT_EQ(arena.offsets.size(), named.size());
  int64_t end = 0;
  for (std::size_t i = 0; i < named.size(); ++i) {
    const Parameter& p = *named[i].second;
    SCOPED_TRACE(named[i].first);
    EXPECT_EQ(arena.offsets[i] % 16, 0);  // 64-byte aligned, as every Tensor's own storage
    EXPECT_GE(arena.offsets[i], end);
    EXPECT_LT(arena.offsets[i] - end, 16);
    EXPECT_EQ(p.value.data(), arena.values.data() + arena.offsets[i]);
    EXPECT_EQ(p.grad.data(), arena.grads.data() + arena.offsets[i]);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p.value.data()) % Tensor::kAlignment, 0u);
    EXPECT_TRUE(same_bits(p.value, before[i]));
    end = arena.offsets[i] + p.value.numel();
  }
  EXPECT_EQ(arena.values.numel(), (end + 15) / 16 * 16);
  // Packing again returns the same arena; a replaced parameter makes it stale.
  EXPECT_EQ(&model->pack_parameters(), &arena);
  EXPECT_EQ(model->parameter_arena(), &arena);
  named[0].second->grad = Tensor(named[0].second->value.shape());
  EXPECT_EQ(model->parameter_arena(), nullptr);
  EXPECT_NE(model->pack_parameters().values.data(), nullptr);
  EXPECT_NE(model->parameter_arena(), nullptr);
}

TEST(ParameterArena, OneZeroGradClearsTheBlockAndToKeepsTheViews) {
  auto model = built(4);
  const ParameterArena& arena = model->pack_parameters();
  Tensor grads = arena.grads;
  grads.fill(1.0f);
  model->zero_grad();
  for (float g : grads) ASSERT_EQ(g, 0.0f);
  const float* block = arena.values.data();
  model->to(Device::CPU);  // the same device: the arena, its blocks and the views stay
  ASSERT_EQ(model->parameter_arena(), &arena);
  EXPECT_EQ(model->parameter_arena()->values.data(), block);
}

// The arena only moves where the parameters live: training with it is bit for bit training
// without it (the same kernels on the same data in the same order; no tolerance).
TEST(ParameterArena, TrainingIsBitIdenticalWithAndWithoutIt) {
  const Dataset data = bars(96, 10, 1);
  TrainOptions o;
  o.epochs = 1;
  o.batch_size = 16;
  o.seed = 9;
  auto packed = built(5);
  Trainer trainer(packed, data, nullptr, o);
  ASSERT_NE(packed->parameter_arena(), nullptr);  // the Trainer packs its model
  std::vector<float> packed_losses;
  for (int i = 0; i < 6; ++i) packed_losses.push_back(static_cast<float>(trainer.step().loss));

  auto plain = built(5);
  ASSERT_EQ(plain->parameter_arena(), nullptr);
  Adam adam(plain->parameters(), AdamOptions(o.lr));
  DataLoader loader(data, o.batch_size, true, o.seed);
  loader.reset();  // the Trainer's epoch draws its own permutation after the loader's first
  plain->train();
  CrossEntropyLoss loss_fn;
  Batch batch;
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(loader.next(batch));
    adam.zero_grad();
    const float loss = loss_fn(plain->forward(batch.images), batch.labels);
    plain->backward(loss_fn.backward(), false);
    adam.step();
    EXPECT_EQ(loss, packed_losses[static_cast<std::size_t>(i)]) << "step " << i + 1;
  }
  auto a = packed->named_parameters(), b = plain->named_parameters();
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(same_bits(a[i].second->value, b[i].second->value)) << a[i].first;
  }
  for (auto& [name, buffer] : packed->named_buffers()) {
    for (auto& [other, b2] : plain->named_buffers()) {
      if (other == name) {
        EXPECT_TRUE(same_bits(*buffer, *b2)) << name;
      }
    }
  }
}

TEST(Shards, TileTheBatchInRankOrder) {
  for (int size : {1, 2, 3, 4, 7}) {
    for (int64_t count : {0, 1, 5, 64, 65, 67}) {
      int64_t next = 0;
      for (int r = 0; r < size; ++r) {
        const Shard s = shard_of(count, r, size);
        EXPECT_EQ(s.first, next);
        EXPECT_GE(s.count, count / size);
        EXPECT_LE(s.count, count / size + 1);
        next += s.count;
      }
      EXPECT_EQ(next, count);
    }
  }
  EXPECT_THROW(shard_of(8, 2, 2), Error);
  EXPECT_THROW(shard_of(8, 0, 0), Error);
}

// Every rank's shards, laid end to end, are the unsharded loader's batches: the same images (with
// augmentation: the same draws), labels and order, for every batch of two epochs.
TEST(Shards, LoaderPartsAreTheUnshardedBatches) {
  const Dataset data = bars(70, 10, 2);
  const Augment augment = Augment::parse("shift=2,rotate=10");
  for (int size : {2, 3, 4}) {
    SCOPED_TRACE("ranks " + std::to_string(size));
    DataLoader whole(data, 16, true, 11);
    whole.set_augment(augment, 5);
    std::vector<DataLoader> parts;
    for (int r = 0; r < size; ++r) {
      parts.emplace_back(data, 16, true, 11);
      parts.back().set_augment(augment, 5);
      parts.back().set_shard(r, size);
    }
    for (int epoch = 0; epoch < 2; ++epoch) {
      whole.reset();
      for (auto& p : parts) p.reset();
      Batch all, part;
      while (whole.next(all)) {
        const int64_t plane = all.images.numel() / all.images.size(0);
        for (int r = 0; r < size; ++r) {
          ASSERT_TRUE(parts[r].next(part));
          ASSERT_EQ(part.global_count, all.global_count);
          ASSERT_EQ(part.first, shard_of(all.global_count, r, size).first);
          for (std::size_t i = 0; i < part.labels.size(); ++i) {
            ASSERT_EQ(part.indices[i], all.indices[part.first + i]);
            ASSERT_EQ(part.labels[i], all.labels[part.first + i]);
          }
          ASSERT_EQ(std::memcmp(part.images.data(), all.images.data() + part.first * plane,
                                static_cast<std::size_t>(part.images.numel()) * 4),
                    0);
        }
      }
      for (auto& p : parts) EXPECT_FALSE(p.next(part));
    }
  }
  DataLoader loader(data, 16, true, 11);
  EXPECT_THROW(loader.set_shard(4, 4), Error);
}

// A rank's dropout mask is its rows of the mask one process draws for the whole batch, and the
// generator ends where that one process's does.
TEST(Shards, DropoutDrawsTheGlobalBatchMask) {
  Generator whole_gen(3), part_gen(3);
  Dropout whole(0.4, whole_gen), part(0.4, part_gen);
  const Tensor x = Tensor::full({10, 6}, 1.0f);
  const Tensor all = whole.forward(x);
  part.set_batch_shard(4, 10);
  const Tensor mine = part.forward(x.view(4 * 6, {3, 6}));
  for (int64_t i = 0; i < mine.numel(); ++i) ASSERT_EQ(mine[i], all[4 * 6 + i]) << i;
  EXPECT_EQ(whole_gen.state(), part_gen.state());
  part.set_batch_shard(8, 10);
  EXPECT_THROW(part.forward(x.view(0, {3, 6})), Error);  // rows 8..11 of 10
}

TEST(Communicators, TheLocalOneLeavesDataAlone) {
  auto local = local_communicator();
  EXPECT_EQ(local->rank(), 0);
  EXPECT_EQ(local->size(), 1);
  float f[2] = {1.5f, -2.0f};
  double d = 3.25;
  local->allreduce_sum(f, 2);
  local->allreduce_sum(&d, 1);
  local->broadcast(f, 2, 0);
  EXPECT_EQ(f[0], 1.5f);
  EXPECT_EQ(f[1], -2.0f);
  EXPECT_EQ(d, 3.25);
  // Not under a launcher here: one process.
  EXPECT_EQ(launched_world_size(), 1);
}

// A global batch that leaves a rank without an image is refused before training.
TEST(Communicators, TheTrainerRefusesABatchTooSmallForTheRanks) {
  class FourRanks final : public Communicator {
   public:
    int rank() const override { return 0; }
    int size() const override { return 4; }
    void allreduce_sum(float*, int64_t) override {}
    void allreduce_sum(double*, int64_t) override {}
    void broadcast(float*, int64_t, int) override {}
    std::string describe() const override { return "four"; }
  };
  const Dataset data = bars(66, 10, 1);  // 64 + a last batch of 2
  TrainOptions o;
  o.batch_size = 2;
  o.communicator = std::make_shared<FourRanks>();
  EXPECT_THROW(Trainer(built(1), data, nullptr, o), Error);
  o.batch_size = 16;  // 66 = 4 * 16 + 2: the last batch has 2 images for 4 ranks
  try {
    Trainer t(built(1), data, nullptr, o);
    FAIL() << "a last batch of 2 for 4 ranks was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("last batch: 2 images"), std::string::npos) << e.what();
  }
  o.batch_size = 11;  // 66 = 6 * 11: every batch splits
  EXPECT_NO_THROW(Trainer(built(1), data, nullptr, o));
}

}  // namespace
}  // namespace cnn::testing
