// Communicator: what data-parallel training needs from the processes it runs on. The Trainer calls
// it between backward and the optimizer step (one sum of the parameter arena's gradients) and for
// each step's and each evaluation's figures. A run in one process uses local_communicator(), whose
// calls do nothing; `mpirun -np N cnn train ...` uses MPI (mpi_communicator(), cnn/dist/mpi.h).
//
// Every collective call must be made by every rank, in the same order, with the same sizes. A
// rank that does not arrive within the communicator's timeout is named in the error each waiting
// rank raises (CommError); the run is then over (MPI cannot recover a lost process): after a
// CommError the only call left to make is abort().
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cnn/error.h"

namespace cnn {

// A collective call that could not complete: a rank died, stopped answering or cannot be reached.
class CommError : public Error {
 public:
  using Error::Error;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  // This process's place among the size() processes of the run, from 0.
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // In place, on every rank: the element-wise sum over the ranks. Every rank receives the same
  // bits (the sums are made in an order fixed by the rank count and the length, never by timing).
  virtual void allreduce_sum(float* data, int64_t n) = 0;
  virtual void allreduce_sum(double* data, int64_t n) = 0;
  // In place: root's values on every rank.
  virtual void broadcast(float* data, int64_t n, int root) = 0;
  // "MPI, rank 1 of 4 on node-b", "local": for messages.
  virtual std::string describe() const = 0;
  // Ends every process of the run at once with `code` (after a rank's error, so that the others do
  // not wait for their timeout). The local communicator returns: its caller exits as usual.
  virtual void abort(int code) { (void)code; }
};

// One process: rank 0 of 1; the collectives leave the data as it is.
std::shared_ptr<Communicator> local_communicator();

// How each rank's part of a global batch of `count` items is found: rank r of `size` takes
// count / size items, one more for the first count % size ranks, in rank order, so that the
// shards laid end to end are the batch. A rank's part may be empty (count < size).
struct Shard {
  int64_t first = 0, count = 0;
};
Shard shard_of(int64_t count, int rank, int size);

}  // namespace cnn
