// MPI's communicator (cnn/dist/mpi.h). Each collective is started non-blocking and polled, so that
// a rank that never arrives (killed, stopped, cut off) ends the wait after the timeout with the
// ranks named, rather than a hang.
#include "cnn/dist/mpi.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

namespace cnn {

namespace {

using Clock = std::chrono::steady_clock;

// A tag no collective uses (collectives have their own channel): "I am waiting too".
constexpr int kProbeTag = 7301;

std::string mpi_error_string(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  return std::string(text, static_cast<std::size_t>(length));
}

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(double timeout_seconds) : timeout_(timeout_seconds) {
    // A host program may have initialised MPI already: then it also finalises it.
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;
      check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
      owner_ = true;
    }
    // Errors come back to us (and are raised as CommError) instead of ending the process silently.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    char name[MPI_MAX_PROCESSOR_NAME];
    int length = 0;
    MPI_Get_processor_name(name, &length);
    node_.assign(name, static_cast<std::size_t>(length));
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owner_ && !finalized) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void allreduce_sum(float* data, int64_t n) override {
    allreduce(data, n, MPI_FLOAT, "the exchange of gradients");
  }
  void allreduce_sum(double* data, int64_t n) override {
    allreduce(data, n, MPI_DOUBLE,
              "an exchange of figures (a step's, an evaluation's or BatchNorm's statistics)");
  }

  void broadcast(float* data, int64_t n, int root) override {
    if (size_ == 1) return;
    for (int64_t done = 0; done < n;) {
      const int count = chunk(n - done);
      MPI_Request request;
      check(MPI_Ibcast(data + done, count, MPI_FLOAT, root, MPI_COMM_WORLD, &request),
            "MPI_Ibcast");
      wait(request, "the broadcast of rank " + std::to_string(root) + "'s weights and buffers");
      done += count;
    }
  }

  std::string describe() const override {
    return "MPI, rank " + std::to_string(rank_) + " of " + std::to_string(size_) + " on " + node_;
  }

  void abort(int code) override { MPI_Abort(MPI_COMM_WORLD, code); }

 private:
  int rank_ = 0, size_ = 1;
  std::string node_;
  double timeout_;
  bool owner_ = false;    // this communicator initialised MPI (and so finalises it)
  bool started_ = false;  // a collective has completed (the first waits for the slowest start)
  bool dead_ = false;     // a collective failed: the requests it left may still write
  // The probe's buffers (timed_out), kept: its requests are never completed.
  int probe_me_ = 0;
  std::vector<int> probe_heard_;

  // MPI counts are int: a longer buffer goes in pieces.
  static int chunk(int64_t left) {
    return static_cast<int>(std::min<int64_t>(left, std::numeric_limits<int>::max() / 2));
  }

  void allreduce(void* data, int64_t n, MPI_Datatype type, const std::string& what) {
    if (size_ == 1) return;
    int bytes = 0;
    MPI_Type_size(type, &bytes);
    auto* p = static_cast<char*>(data);
    for (int64_t done = 0; done < n;) {
      const int count = chunk(n - done);
      MPI_Request request;
      check(MPI_Iallreduce(MPI_IN_PLACE, p + done * bytes, count, type, MPI_SUM, MPI_COMM_WORLD,
                           &request),
            "MPI_Iallreduce");
      wait(request, what);
      done += count;
    }
  }

  void check(int code, const char* call) const {
    if (code != MPI_SUCCESS) {
      throw CommError("rank " + std::to_string(rank_) + ": " + call +
                      " failed: " + mpi_error_string(code));
    }
  }

  // Polls the request, yielding the core between polls (ranks may share cores with ranks still
  // computing); after 50 ms of waiting (a rank writing a checkpoint, evaluating), every
  // millisecond.
  void wait(MPI_Request& request, const std::string& what) {
    if (dead_) throw CommError("rank " + std::to_string(rank_) + ": an earlier collective failed");
    const auto start = Clock::now();
    // The first collective comes after every rank has loaded its data, which may take some ranks
    // minutes longer than others (a cold cache, a slow shared file system): it waits at least 10
    // minutes. A rank that dies meanwhile ends the run through mpirun.
    const double limit = started_ ? timeout_ : std::max(timeout_, 600.0);
    const auto deadline = start + std::chrono::duration<double>(limit);
    for (;;) {
      int done = 0;
      MPI_Status status;
      const int code = MPI_Test(&request, &done, &status);
      if (code != MPI_SUCCESS) {
        dead_ = true;
        throw CommError("rank " + std::to_string(rank_) + ": " + what +
                        " failed: " + mpi_error_string(code) + " (a rank was lost)");
      }
      if (done) {
        started_ = true;
        return;
      }
      const auto now = Clock::now();
      if (now > deadline) {
        dead_ = true;
        timed_out(what, limit);
      }
      if (now - start < std::chrono::milliseconds(50)) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
  }

  // Every rank that times out tells every other one so, and listens for a while: the ranks it does
  // not hear from are the ones that never came.
  // The requests it leaves (and the collective's) are never completed: the communicator is dead
  // and the run can only end (abort()).
  [[noreturn]] void timed_out(const std::string& what, double limit) {
    probe_me_ = rank_;
    probe_heard_.assign(static_cast<std::size_t>(size_), -1);
    std::vector<int>& heard = probe_heard_;
    std::vector<MPI_Request> sends, receives;
    for (int r = 0; r < size_; ++r) {
      if (r == rank_) continue;
      MPI_Request s, q;
      MPI_Isend(&probe_me_, 1, MPI_INT, r, kProbeTag, MPI_COMM_WORLD, &s);
      MPI_Irecv(&heard[r], 1, MPI_INT, r, kProbeTag, MPI_COMM_WORLD, &q);
      sends.push_back(s);
      receives.push_back(q);
    }
    // The other waiting ranks time out within about a step of this one.
    const auto listen_until =
        Clock::now() + std::chrono::duration<double>(std::min(10.0, std::max(2.0, timeout_ / 4)));
    while (Clock::now() < listen_until) {
      int all = 0;
      MPI_Testall(static_cast<int>(receives.size()), receives.data(), &all, MPI_STATUSES_IGNORE);
      if (all) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::string silent;
    int count = 0;
    for (int r = 0; r < size_; ++r) {
      if (r != rank_ && heard[r] != r) {
        silent += (silent.empty() ? "" : ", ") + std::to_string(r);
        ++count;
      }
    }
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%g", limit);
    if (count == 0) {
      throw CommError("rank " + std::to_string(rank_) + ": " + what + " did not complete within " +
                      seconds +
                      " s, though every rank answered (the network may be failing, or the ranks "
                      "are in different calls: a bug)");
    }
    throw CommError("rank " + std::to_string(rank_) + ": " + what + " did not complete within " +
                    std::string(seconds) + " s: no answer from rank" + (count > 1 ? "s " : " ") +
                    silent +
                    " (dead, stopped or unreachable; raise --comm-timeout if a step or a " +
                    "checkpoint really takes longer)");
  }
};

}  // namespace

bool mpi_built() { return true; }

std::shared_ptr<Communicator> mpi_communicator(double timeout_seconds) {
  static std::mutex mutex;
  static std::weak_ptr<Communicator> existing;
  std::lock_guard<std::mutex> lock(mutex);
  if (auto c = existing.lock()) return c;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) throw Error("MPI was finalised already: a process initialises it once");
  if (!(timeout_seconds > 0)) throw Error("the communication timeout must be positive");
  auto c = std::make_shared<MpiCommunicator>(timeout_seconds);
  existing = c;
  return c;
}

}  // namespace cnn
