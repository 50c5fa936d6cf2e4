#include "cnn/io/file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "cnn/error.h"

namespace cnn {

namespace {

// Writes all of bytes to fd, retrying short writes and interruptions; false on an error (errno
// set).
bool write_all(int fd, const std::string& bytes) {
  const char* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

// Durable as well as atomic: the temporary file's bytes are flushed to the disk (fsync) before
// the rename, so that after a power cut PATH is either the old file or the whole new one, never a
// renamed empty one; the directory is flushed after the rename, so that the rename itself is on
// the disk when this returns. (Whether fsync reached the disk cannot be observed by a test: the
// tests check the file and that no temporary remains.)
//
// Where the file system allows it (Linux's O_TMPFILE), the bytes go to a file with no name until
// they are all on the disk; it is then linked as PATH.tmp and renamed at once, so that a process
// killed while writing (SIGKILL, an out-of-memory kill) leaves no temporary file behind, only in
// the microseconds between the link and the rename. Elsewhere PATH.tmp is written directly.
void write_file_atomically(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  bool anonymous = false;
#ifdef O_TMPFILE
  int fd = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
  anonymous = fd >= 0;
  if (!anonymous) fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
#else
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
#endif
  if (fd < 0) throw Error(path + ": cannot open for writing (" + std::strerror(errno) + ")");
  bool written = write_all(fd, bytes) && ::fsync(fd) == 0;
  int saved = errno;
  if (written && anonymous) {
    // Give the finished file its temporary name (a leftover of a killed run is replaced).
    std::remove(tmp.c_str());
    const std::string self = "/proc/self/fd/" + std::to_string(fd);
    written = ::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, tmp.c_str(), AT_SYMLINK_FOLLOW) == 0;
    saved = errno;
  }
  const bool closed = ::close(fd) == 0;
  if (!written || !closed) {
    std::remove(tmp.c_str());
    throw Error(path + ": write failed (" + std::strerror(written ? errno : saved) +
                "; disk full?)");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw Error(path + ": cannot replace the file: " + ec.message());
  }
  // The directory entry: without this the rename may be lost in a crash.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    const bool synced = ::fsync(dfd) == 0;
    const int err = errno;
    ::close(dfd);
    // Some file systems cannot fsync a directory (EINVAL): the file is written all the same.
    if (!synced && err != EINVAL && err != EROFS) {
      throw Error(path + ": written, but its directory could not be synced (" + std::strerror(err) +
                  ")");
    }
  }
}

std::string read_file_bounded(const std::string& path, uint64_t max_bytes,
                              const std::string& what) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error(path + ": is a directory, not " + what);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    throw Error(path + ": cannot open " + what + " (" +
                (err == ENOENT ? std::string("no such file")
                               : std::error_code(err, std::generic_category()).message()) +
                ")");
  }
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw Error(path + ": cannot read the size of " + what + " (" + ec.message() + ")");
  if (size > max_bytes) {
    throw Error(path + ": " + std::to_string(size) + " bytes, more than " + what + " may have (" +
                std::to_string(max_bytes) + ", cnn/limits.h)");
  }
  std::string bytes(static_cast<std::size_t>(size), '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (static_cast<uintmax_t>(in.gcount()) != size) {
    throw Error(path + ": " + what + " changed while it was read");
  }
  return bytes;
}

}  // namespace cnn
