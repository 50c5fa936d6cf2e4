// MPI for data-parallel training: `mpirun -np N cnn train ...` (cnn/dist/communicator.h). The
// library is built with MPI when CMake finds it (Debian: libopenmpi-dev); without it, these say so
// and mpi_communicator() throws.
#pragma once

#include <memory>

#include "cnn/dist/communicator.h"

namespace cnn {

// Whether this build has MPI.
bool mpi_built();
// Whether an MPI launcher (mpirun, srun) started this process: its environment names a rank.
bool launched_by_mpi();
// The ranks the launcher started (1 when not launched by one), read from the environment
// before MPI is initialised.
int launched_world_size();
// The ranks started on this machine (for the threads each may use); 1 when not launched by one.
int launched_local_size();

// Initialises MPI (unless the program did; the first call, later calls return the same
// communicator) and returns MPI_COMM_WORLD's communicator. A collective that has not completed
// after timeout_seconds (the first one: at least 10 minutes, the ranks' start-up may differ)
// asks the other ranks which of them are there, and throws CommError naming the ranks that did
// not answer. abort() is MPI_Abort; MPI is finalised when the last reference goes, if it was
// initialised here. Throws Error when this build has no MPI.
std::shared_ptr<Communicator> mpi_communicator(double timeout_seconds = 60.0);

}  // namespace cnn
