#include "runtime/data_dir_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace switchboard::internal {

namespace {

/// The PID the holder wrote into the lock file ("" if it has not written it yet).
std::string holder_of(int fd) {
  char buf[32] = {};
  const auto n = ::pread(fd, buf, sizeof buf - 1, 0);
  std::string pid(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' '))
    pid.pop_back();
  return pid;
}

}  // namespace

data_dir_lock::data_dir_lock(const std::string& data_dir) {
  const auto path = (std::filesystem::path{data_dir} / "switchboard.lock").string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);  // like every data file
  if (fd_ < 0)
    throw std::runtime_error("cannot open the lock file '" + path + "': " + std::strerror(errno) +
                             " (check that data_dir is writable)");
  ::fchmod(fd_, 0600);  // exactly, whatever the umask (its owner's alone, like the databases)
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    const auto pid = holder_of(fd_);
    ::close(fd_);
    fd_ = -1;
    if (err == EWOULDBLOCK)
      throw std::runtime_error(
          "the data directory '" + data_dir + "' is in use by another switchboard" +
          (pid.empty() ? std::string{} : " (PID " + pid + ")") + ", which holds " + path +
          ": stop it first, or give this one another data directory (data_dir, --data-dir)");
    throw std::runtime_error("cannot lock '" + path + "': " + std::strerror(err));
  }
  // Only the holder writes: a process refused above reads who has it.
  const auto pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 ||
      ::pwrite(fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    throw std::runtime_error("cannot write the lock file '" + path + "': " + std::strerror(err));
  }
}

data_dir_lock::~data_dir_lock() {
  // Closing lets go of the lock. The file stays: removing it would race with a process that
  // opened it just before and would then lock a removed file while another locks a new one.
  if (fd_ >= 0)
    ::close(fd_);
}

}  // namespace switchboard::internal
