#pragma once

// One runtime per data directory: two writing the same SQLite files would each believe it owns
// the journal's sequence numbers, checkpoints and timers. An exclusive flock on
// DATA_DIR/switchboard.lock, held while the runtime runs, keeps a second one out; the kernel
// lets go of it when the process ends, also by SIGKILL, so a crash never leaves it stuck.

#include <string>

namespace switchboard::internal {

class data_dir_lock {
public:
  /// Takes the lock on `data_dir` (which must exist) and writes this process's PID into the
  /// lock file. Throws std::runtime_error naming the directory, and the PID holding it when
  /// another process (or another runtime in this one) has it.
  explicit data_dir_lock(const std::string& data_dir);
  ~data_dir_lock();
  data_dir_lock(const data_dir_lock&) = delete;
  data_dir_lock& operator=(const data_dir_lock&) = delete;

private:
  int fd_ = -1;
};

}  // namespace switchboard::internal
