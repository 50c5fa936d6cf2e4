#include "cnn/dist/communicator.h"

#include <algorithm>
#include <cstdlib>

#include "cnn/dist/mpi.h"

namespace cnn {

namespace {
class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allreduce_sum(float*, int64_t) override {}
  void allreduce_sum(double*, int64_t) override {}
  void broadcast(float*, int64_t, int) override {}
  std::string describe() const override { return "local"; }
};
}  // namespace

std::shared_ptr<Communicator> local_communicator() {
  static const auto local = std::make_shared<LocalCommunicator>();
  return local;
}

Shard shard_of(int64_t count, int rank, int size) {
  if (size <= 0 || rank < 0 || rank >= size || count < 0) {
    throw Error("shard_of: rank " + std::to_string(rank) + " of " + std::to_string(size) + " for " +
                std::to_string(count) + " items");
  }
  const int64_t base = count / size, extra = count % size;
  Shard s;
  s.count = base + (rank < extra ? 1 : 0);
  s.first = base * rank + std::min<int64_t>(rank, extra);
  return s;
}

namespace {
// The first of the launchers' variables that is set (OpenMPI's mpirun, then PMI's and PMIx's, as
// Slurm's srun and MPICH's launchers set them).
const char* launcher_variable(std::initializer_list<const char*> names) {
  for (const char* name : names) {
    if (const char* v = std::getenv(name)) return v;
  }
  return nullptr;
}
}  // namespace

bool launched_by_mpi() {
  return launcher_variable({"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) != nullptr;
}

int launched_world_size() {
  const char* v = launcher_variable({"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"});
  return v ? std::max(1, std::atoi(v)) : 1;
}

int launched_local_size() {
  const char* v = launcher_variable({"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"});
  return v ? std::max(1, std::atoi(v)) : 1;
}

}  // namespace cnn
