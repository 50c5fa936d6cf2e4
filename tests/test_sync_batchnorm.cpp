// BatchNorm2d::set_communicator (PyTorch's SyncBatchNorm): ranks played by threads of this process
// that share memory, each with its part (shard_of) of one batch, against one BatchNorm2d on the
// whole batch.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cnn/dist/communicator.h"
#include "testing.h"

namespace cnn {
namespace {

using testing::all_close;
using testing::randn;
using testing::Tol;

// Rank against whole batch: both sides compute the same float32 expressions from double
// statistics that differ only in their last bits (sums in another order; E[x^2] - E[x]^2 against
// two passes; dy scaled by 1 / N_r, then by the share N_r / N, against 1 / N). Each float rounded
// from them (scale, shift, the dx terms, dy, the share) may land one float apart, 2^-24 relative,
// and the gradients of the layers are float32 sums over the ~200 values of a channel in another
// order. Seen on this data: y and the running statistics within 1e-7, dx within 2 units of
// 2^-24 (2.4e-7 relative), the convolution's weight gradient within 4e-7 relative, and sums that
// cancel to ~0 (the bias before the BatchNorm2d, whose true gradient is 0; bias's) within 7e-7 of
// each other: sums of ~200 terms of size ~0.5, each rounding by up to 2^-24 of the running sum.
// 1e-5 relative and absolute leaves a margin of over ten; a wrong formula (a missing share,
// the part's count where the batch's belongs, local statistics) is off by 1e-2 or more.
constexpr Tol kSyncVsWhole{1e-5, 1e-5};

// The ranks' meeting point: what each rank put in, and a barrier that gives up (CommError) when a
// rank does not come within a few seconds, or at once when a rank has failed, so that a broken
// layer fails the test instead of hanging it.
class ThreadGroup {
 public:
  explicit ThreadGroup(int size) : data(size), lengths(size), size_(size) {}
  int size() const { return size_; }

  void arrive_and_wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    const int64_t generation = generation_;
    if (++arrived_ == size_) {
      arrived_ = 0;
      ++generation_;
      changed_.notify_all();
      return;
    }
    if (!changed_.wait_for(lock, std::chrono::seconds(10),
                           [&] { return generation_ != generation || failed_; })) {
      failed_ = true;
      changed_.notify_all();
      throw CommError("a rank did not come to the collective within 10 s");
    }
    if (failed_) throw CommError("another rank failed");
  }
  void fail() {
    std::lock_guard<std::mutex> lock(mutex_);
    failed_ = true;
    changed_.notify_all();
  }

  // What each rank put in for the collective in progress: its buffer and length.
  std::vector<const void*> data;
  std::vector<int64_t> lengths;

 private:
  int size_;
  std::mutex mutex_;
  std::condition_variable changed_;
  int arrived_ = 0;
  int64_t generation_ = 0;
  bool failed_ = false;
};

// One rank of a ThreadGroup. The sums are made in rank order, so every rank gets the same bits.
class ThreadCommunicator final : public Communicator {
 public:
  ThreadCommunicator(ThreadGroup& group, int rank) : group_(group), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return group_.size(); }
  void allreduce_sum(float* data, int64_t n) override { reduce(data, n); }
  void allreduce_sum(double* data, int64_t n) override { reduce(data, n); }
  void broadcast(float* data, int64_t n, int root) override {
    exchange(data, n, [&](std::vector<float>& out) {
      const auto* src = static_cast<const float*>(group_.data[root]);
      out.assign(src, src + n);
    });
  }
  std::string describe() const override {
    return "thread rank " + std::to_string(rank_) + " of " + std::to_string(size());
  }
  int64_t calls() const { return calls_; }

 private:
  template <class T>
  void reduce(T* data, int64_t n) {
    exchange(data, n, [&](std::vector<T>& out) {
      out.assign(n, T(0));
      for (int r = 0; r < size(); ++r) {
        const auto* src = static_cast<const T*>(group_.data[r]);
        for (int64_t i = 0; i < n; ++i) out[i] = r == 0 ? src[i] : out[i] + src[i];
      }
    });
  }
  // Posts data, waits for every rank, computes the result from all of them, waits again (so that
  // nobody's data changes while another reads it), then writes it.
  template <class T, class F>
  void exchange(T* data, int64_t n, F&& combine) {
    ++calls_;
    group_.data[rank_] = data;
    group_.lengths[rank_] = n;
    group_.arrive_and_wait();
    bool same = true;
    for (int64_t len : group_.lengths) same = same && len == n;
    std::vector<T> out;
    if (same) combine(out);
    group_.arrive_and_wait();
    if (!same) throw CommError(describe() + ": the ranks' lengths differ");
    std::copy(out.begin(), out.end(), data);
  }

  ThreadGroup& group_;
  int rank_;
  int64_t calls_ = 0;
};

// Runs body(rank, communicator) on one thread per rank; a rank's failure fails the others' waits
// and is rethrown here.
void run_ranks(int size, const std::function<void(int, ThreadCommunicator&)>& body) {
  ThreadGroup group(size);
  std::vector<std::exception_ptr> errors(size);
  std::vector<std::thread> threads;
  for (int r = 0; r < size; ++r) {
    threads.emplace_back([&, r] {
      ThreadCommunicator comm(group, r);
      try {
        body(r, comm);
      } catch (...) {
        errors[r] = std::current_exception();
        group.fail();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

// Items [first, first + count) of a batch (N, ...).
Tensor items(const Tensor& batch, Shard s) {
  Shape shape = batch.shape();
  shape[0] = s.count;
  Tensor part = Tensor::empty(shape);
  const int64_t per_item = batch.numel() / batch.size(0);
  if (s.count > 0) {
    std::memcpy(part.data(), batch.data() + s.first * per_item, sizeof(float) * s.count * per_item);
  }
  return part;
}

// x: (N, C, H, W), channel c around offsets[c] with spread spreads[c], so that the statistics
// differ between channels and between the ranks' parts.
Tensor make_input(const Shape& shape, const std::vector<float>& offsets,
                  const std::vector<float>& spreads, Generator& gen) {
  Tensor x = randn(shape, gen);
  const int64_t C = shape[1], HW = shape[2] * shape[3];
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t c = (i / HW) % C;
    x[i] = offsets[c] + spreads[c] * x[i];
  }
  return x;
}

// A BatchNorm2d with random weight, bias and running statistics, so that each one matters.
std::shared_ptr<BatchNorm2d> make_norm(int64_t C, uint64_t seed, double momentum = 0.1) {
  auto bn = std::make_shared<BatchNorm2d>(BatchNorm2dOptions(C).momentum(momentum));
  Generator gen(seed);
  for (int64_t c = 0; c < C; ++c) {
    bn->weight()->value[c] = gen.uniform(0.5f, 1.5f);
    bn->bias()->value[c] = gen.uniform(-0.5f, 0.5f);
    (*bn->running_mean())[c] = gen.uniform(-1.0f, 1.0f);
    (*bn->running_var())[c] = gen.uniform(0.5f, 2.0f);
  }
  return bn;
}

// The Trainer's sum of the ranks' gradients (Trainer::exchange): each times its part's share of
// the batch, in float, added in rank order.
Tensor weighted_sum(const std::vector<Tensor>& grads, const std::vector<Shard>& shards,
                    int64_t global_count) {
  Tensor sum = Tensor::zeros(grads[0].shape());
  for (std::size_t r = 0; r < grads.size(); ++r) {
    const float share = static_cast<float>(double(shards[r].count) / double(global_count));
    for (int64_t i = 0; i < sum.numel(); ++i) sum[i] += grads[r][i] * share;
  }
  return sum;
}

Tensor scaled(const Tensor& t, double factor) {
  Tensor out = t.clone();
  for (float& v : out) v = static_cast<float>(v * factor);
  return out;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), sizeof(float) * a.numel()) == 0;
}

// Per step: the input and the upstream gradient g of the mean loss over the whole batch, as
// G / N for a random G (the gradient of the items' summed losses). A rank's part of a training
// step sees the gradient of its own part's mean loss: its items of G over its own count.
struct Step {
  Tensor x, G;
};

std::vector<Step> make_steps(int64_t N, int steps, uint64_t seed) {
  Generator gen(seed);
  std::vector<Step> out;
  for (int s = 0; s < steps; ++s) {
    // Channel 2 far off zero (mean 24 std) and channel 1 tight: the sums of squares cancel.
    Tensor x = make_input({N, 3, 5, 4}, {0.5f, -2.0f, 12.0f}, {1.0f, 0.3f, 0.5f}, gen);
    out.push_back({x, randn(x.shape(), gen)});
  }
  return out;
}

// What one BatchNorm2d (a rank's, or the whole batch's) gives at each step.
struct Results {
  std::vector<Tensor> y, dx, running_mean, running_var;
  Tensor dweight, dbias, tracked;
};

// Runs forward and backward of bn on items `part` of each step, with dy = G / part.count.
Results run(BatchNorm2d& bn, const std::vector<Step>& steps, Shard part) {
  Results r;
  for (const Step& s : steps) {
    bn.zero_grad();
    r.y.push_back(bn.forward(items(s.x, part)));
    r.dx.push_back(bn.backward(scaled(items(s.G, part), 1.0 / double(part.count))));
    r.running_mean.push_back(bn.running_mean()->clone());
    r.running_var.push_back(bn.running_var()->clone());
  }
  r.dweight = bn.weight()->grad.clone();
  r.dbias = bn.bias()->grad.clone();
  r.tracked = bn.num_batches_tracked()->clone();
  return r;
}

// (a) Each rank's part through a synchronised BatchNorm2d: its outputs are the whole batch's on
// its items, its dx times its share is the whole batch's dx there (the weighting the Trainer
// applies to every earlier layer's gradient), the running statistics are the whole batch's on
// every rank, and the share-weighted sum of weight's and bias's gradients is the whole batch's.
TEST(SyncBatchNorm, RanksMatchOneLayerOnTheWholeBatch) {
  const int64_t N = 7;  // parts of 4 and 3, or 2, 2, 2 and 1: shares that differ
  const std::vector<Step> steps = make_steps(N, 2, 11);
  auto whole_bn = make_norm(3, 5);
  const Results whole = run(*whole_bn, steps, {0, N});
  for (int size : {2, 3, 4}) {
    SCOPED_TRACE(std::to_string(size) + " ranks");
    std::vector<Results> ranks(size);
    std::vector<Shard> shards(size);
    std::vector<int64_t> calls(size);
    run_ranks(size, [&](int rank, ThreadCommunicator& comm) {
      auto bn = make_norm(3, 5);
      bn->set_communicator(&comm);
      shards[rank] = shard_of(N, rank, size);
      ranks[rank] = run(*bn, steps, shards[rank]);
      calls[rank] = comm.calls();
    });
    for (int r = 0; r < size; ++r) {
      SCOPED_TRACE("rank " + std::to_string(r));
      const double share = double(shards[r].count) / double(N);
      EXPECT_EQ(calls[r], 2 * int64_t(steps.size())) << "one allreduce each way per step";
      for (std::size_t s = 0; s < steps.size(); ++s) {
        SCOPED_TRACE("step " + std::to_string(s));
        EXPECT_TRUE(all_close(ranks[r].y[s], items(whole.y[s], shards[r]), kSyncVsWhole));
        EXPECT_TRUE(
            all_close(scaled(ranks[r].dx[s], share), items(whole.dx[s], shards[r]), kSyncVsWhole));
        EXPECT_TRUE(all_close(ranks[r].running_mean[s], whole.running_mean[s], kSyncVsWhole));
        EXPECT_TRUE(all_close(ranks[r].running_var[s], whole.running_var[s], kSyncVsWhole));
        // Every rank must hold the same running statistics (the same bits), or the replicas drift.
        EXPECT_TRUE(same_bits(ranks[r].running_var[s], ranks[0].running_var[s]));
      }
      EXPECT_EQ(ranks[r].tracked[0], 2.0f);
    }
    std::vector<Tensor> dweights, dbiases;
    for (const Results& r : ranks) {
      dweights.push_back(r.dweight);
      dbiases.push_back(r.dbias);
    }
    EXPECT_TRUE(all_close(weighted_sum(dweights, shards, N), whole.dweight, kSyncVsWhole));
    EXPECT_TRUE(all_close(weighted_sum(dbiases, shards, N), whole.dbias, kSyncVsWhole));
  }
}

// (a) as a training step sees it: Conv2d -> BatchNorm2d, each rank's dy the gradient of its part's
// mean loss; the share-weighted sum of the convolution's gradients, which only the dx of the
// BatchNorm2d reaches, is the whole batch's.
TEST(SyncBatchNorm, EarlierLayerGradientsMatchTheWholeBatch) {
  const int64_t N = 7;
  Generator gen(3);
  const Tensor x = randn({N, 2, 6, 5}, gen);
  const Tensor G = randn({N, 3, 6, 5}, gen);
  struct Grads {
    Tensor conv_weight, conv_bias, bn_weight;
  };
  auto step = [&](Shard part, Communicator* comm) {
    Generator init(9);
    Conv2d conv(Conv2dOptions(2, 3, 3).padding(1), init);
    auto bn = make_norm(3, 7);
    bn->set_communicator(comm);
    bn->forward(conv.forward(items(x, part)));
    conv.backward(bn->backward(scaled(items(G, part), 1.0 / double(part.count))), false);
    return Grads{conv.weight().grad.clone(), conv.bias()->grad.clone(), bn->weight()->grad.clone()};
  };
  const Grads whole = step({0, N}, nullptr);
  for (int size : {2, 4}) {
    SCOPED_TRACE(std::to_string(size) + " ranks");
    std::vector<Grads> ranks(size);
    std::vector<Shard> shards(size);
    run_ranks(size, [&](int rank, ThreadCommunicator& comm) {
      shards[rank] = shard_of(N, rank, size);
      ranks[rank] = step(shards[rank], &comm);
    });
    std::vector<Tensor> w, b, bn_w;
    for (const Grads& g : ranks) {
      w.push_back(g.conv_weight);
      b.push_back(g.conv_bias);
      bn_w.push_back(g.bn_weight);
    }
    EXPECT_TRUE(all_close(weighted_sum(w, shards, N), whole.conv_weight, kSyncVsWhole));
    EXPECT_TRUE(all_close(weighted_sum(bn_w, shards, N), whole.bn_weight, kSyncVsWhole));
    // BatchNorm removes each channel's mean, so the bias before it gets no gradient: ~0 both ways.
    EXPECT_TRUE(all_close(weighted_sum(b, shards, N), whole.conv_bias, kSyncVsWhole));
  }
}

// A part may be empty (a batch of fewer items than ranks): that rank still takes part in both
// allreduces, and the others get the whole batch's numbers.
TEST(SyncBatchNorm, AnEmptyPartTakesPart) {
  const int64_t N = 3;
  const std::vector<Step> steps = make_steps(N, 1, 21);
  auto whole_bn = make_norm(3, 5);
  const Results whole = run(*whole_bn, steps, {0, N});
  std::vector<Results> ranks(4);
  run_ranks(4, [&](int rank, ThreadCommunicator& comm) {
    auto bn = make_norm(3, 5);
    bn->set_communicator(&comm);
    ranks[rank] = run(*bn, steps, shard_of(N, rank, 4));
    EXPECT_EQ(comm.calls(), 2);
  });
  EXPECT_EQ(ranks[3].y[0].numel(), 0);
  EXPECT_EQ(ranks[3].dx[0].shape(), (Shape{0, 3, 5, 4}));
  for (int r = 0; r < 4; ++r) {
    EXPECT_TRUE(all_close(ranks[r].running_var[0], whole.running_var[0], kSyncVsWhole));
  }
  EXPECT_TRUE(all_close(ranks[1].y[0], items(whole.y[0], {1, 1}), kSyncVsWhole));
  EXPECT_TRUE(all_close(scaled(ranks[1].dx[0], 1.0 / 3), items(whole.dx[0], {1, 1}), kSyncVsWhole));
}

// (b) Without a communicator each rank normalises with its own part's statistics (PyTorch's
// DistributedDataParallel without SyncBatchNorm): not the whole batch's, so the comparisons above
// can fail.
TEST(SyncBatchNorm, WithoutACommunicatorEachRankUsesItsOwnStatistics) {
  const int64_t N = 7;
  const std::vector<Step> steps = make_steps(N, 1, 11);
  auto whole_bn = make_norm(3, 5);
  const Results whole = run(*whole_bn, steps, {0, N});
  for (int rank = 0; rank < 2; ++rank) {
    auto bn = make_norm(3, 5);
    const Shard part = shard_of(N, rank, 2);
    const Results own = run(*bn, steps, part);
    EXPECT_FALSE(all_close(own.y[0], items(whole.y[0], part), kSyncVsWhole));
    EXPECT_FALSE(all_close(own.running_mean[0], whole.running_mean[0], kSyncVsWhole));
    EXPECT_FALSE(all_close(own.running_var[0], whole.running_var[0], kSyncVsWhole));
  }
}

// (c) One rank (the local communicator, or a group of one) is the plain layer, bit for bit; and
// evaluation mode makes no collective call and ignores the communicator.
TEST(SyncBatchNorm, OneRankAndEvaluationAreThePlainLayerBitForBit) {
  const int64_t N = 5;
  const std::vector<Step> steps = make_steps(N, 2, 31);
  auto plain_bn = make_norm(3, 5);
  const Results plain = run(*plain_bn, steps, {0, N});
  auto check = [&](const Results& got) {
    for (std::size_t s = 0; s < steps.size(); ++s) {
      EXPECT_TRUE(same_bits(got.y[s], plain.y[s]));
      EXPECT_TRUE(same_bits(got.dx[s], plain.dx[s]));
      EXPECT_TRUE(same_bits(got.running_mean[s], plain.running_mean[s]));
      EXPECT_TRUE(same_bits(got.running_var[s], plain.running_var[s]));
    }
    EXPECT_TRUE(same_bits(got.dweight, plain.dweight));
    EXPECT_TRUE(same_bits(got.dbias, plain.dbias));
    EXPECT_TRUE(same_bits(got.tracked, plain.tracked));
  };
  {
    SCOPED_TRACE("local communicator");
    auto bn = make_norm(3, 5);
    const auto local = local_communicator();
    bn->set_communicator(local.get());
    check(run(*bn, steps, {0, N}));
  }
  {
    SCOPED_TRACE("a group of one");
    run_ranks(1, [&](int, ThreadCommunicator& comm) {
      auto bn = make_norm(3, 5);
      bn->set_communicator(&comm);
      check(run(*bn, steps, {0, N}));
      EXPECT_EQ(comm.calls(), 0);
    });
  }
  {
    SCOPED_TRACE("evaluation mode, 2 ranks");
    auto fresh = make_norm(3, 5);
    fresh->eval();
    const Tensor want = fresh->forward(steps[0].x);
    run_ranks(2, [&](int, ThreadCommunicator& comm) {
      auto bn = make_norm(3, 5);
      bn->set_communicator(&comm);
      bn->eval();
      EXPECT_TRUE(same_bits(bn->forward(steps[0].x), want));
      EXPECT_EQ(comm.calls(), 0);
    });
  }
}

// A backward pass that wants no dx (a model's first layer) needs no sums from the other ranks:
// one allreduce per step, and the same parameter gradients.
TEST(SyncBatchNorm, NoInputGradientNoSecondAllreduce) {
  const int64_t N = 6;
  const std::vector<Step> steps = make_steps(N, 1, 41);
  std::vector<Tensor> with(2), without(2);
  run_ranks(2, [&](int rank, ThreadCommunicator& comm) {
    const Shard part = shard_of(N, rank, 2);
    auto bn = make_norm(3, 5);
    bn->set_communicator(&comm);
    const Tensor dy = scaled(items(steps[0].G, part), 1.0 / double(part.count));
    bn->forward(items(steps[0].x, part));
    bn->backward(dy);
    with[rank] = bn->weight()->grad.clone();
    bn->zero_grad();
    bn->forward(items(steps[0].x, part));
    EXPECT_FALSE(bn->backward(dy, false).defined());
    without[rank] = bn->weight()->grad.clone();
    EXPECT_EQ(comm.calls(), 3);
  });
  for (int r = 0; r < 2; ++r) EXPECT_TRUE(same_bits(with[r], without[r]));
}

// PyTorch needs more than one value per channel over all the ranks together: one each on two
// ranks is enough; one in all (the other rank's part empty) is refused on every rank alike.
TEST(SyncBatchNorm, MoreThanOneValuePerChannelOverAllRanks) {
  Generator gen(5);
  const Tensor x = randn({2, 3, 1, 1}, gen);
  run_ranks(2, [&](int rank, ThreadCommunicator& comm) {
    auto bn = make_norm(3, 5);
    bn->set_communicator(&comm);
    EXPECT_EQ(bn->forward(items(x, {rank, 1})).numel(), 3);
  });
  std::vector<int> refused(2, 0);
  run_ranks(2, [&](int rank, ThreadCommunicator& comm) {
    auto bn = make_norm(3, 5);
    bn->set_communicator(&comm);
    testing::expect_error(
        [&] {
          bn->forward(items(x, {0, 1 - rank}));
        },
        {"Expected more than 1 value per channel when training", "BatchNorm2d"});
    refused[rank] = 1;
  });
  EXPECT_EQ(refused, (std::vector<int>{1, 1}));
}

// CUDA has no synchronised kernels yet: a clear error on every rank alike, before any collective
// call (so that none waits for the others).
TEST(SyncBatchNorm, CudaIsRefusedClearly) {
  if (!device_available(Device::CUDA)) {
    GTEST_SKIP() << "skipped: no CUDA: " << device_unavailable_reason(Device::CUDA);
  }
  Generator gen(5);
  const Tensor x = randn({4, 3, 2, 2}, gen).to(Device::CUDA);
  run_ranks(2, [&](int, ThreadCommunicator& comm) {
    auto bn = make_norm(3, 5);
    bn->to(Device::CUDA);
    bn->set_communicator(&comm);
    testing::expect_error([&] { bn->forward(x); },
                          {"SyncBatchNorm on CUDA is not supported yet", "BatchNorm2d"});
    EXPECT_EQ(comm.calls(), 0);
  });
}

}  // namespace
}  // namespace cnn
