// A build without MPI (CMake found none): a run started by mpirun is refused with the reason.
#include "cnn/dist/mpi.h"

namespace cnn {

bool mpi_built() { return false; }

std::shared_ptr<Communicator> mpi_communicator(double) {
  throw Error(
      "this cnn was built without MPI, so the processes mpirun started would each train alone: "
      "install OpenMPI (Debian: libopenmpi-dev openmpi-bin) and build again");
}

}  // namespace cnn
