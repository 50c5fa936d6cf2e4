// A seeded, reproducible random number generator (xoshiro256**), the same stream on every
// platform and compiler. Its state can be saved and restored (checkpoints resume exactly).
#pragma once

#include <array>
#include <cstdint>

#include "cnn/tensor.h"

namespace cnn {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) { manual_seed(seed); }
  void manual_seed(uint64_t seed);

  uint64_t next_u64();
  // Uniform in [0, 1) with 24 random bits, exactly representable in float32.
  float uniform();
  // Uniform in [lo, hi).
  float uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [0, n) without modulo bias.
  uint64_t below(uint64_t n);

  using State = std::array<uint64_t, 4>;
  State state() const { return s_; }
  void set_state(const State& s) { s_ = s; }

 private:
  State s_{};
};

// The generator used by parameter initialisation and dropout unless one is given.
Generator& default_generator();
// Seeds the default generator, like torch.manual_seed.
void manual_seed(uint64_t seed);

// Fills t with U(lo, hi) from gen.
void uniform_(Tensor& t, float lo, float hi, Generator& gen = default_generator());

}  // namespace cnn
