#include "adapters/sqlite/wal_sync.hpp"

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <stdexcept>

namespace switchboard::adapters::sqlite {

namespace {

std::string parent_of(const std::string& path) {
  auto parent = std::filesystem::path{path}.parent_path();
  return parent.empty() ? std::string{"."} : parent.string();
}

/// fdatasync (fsync for a directory) of `path`; false with errno when it does not exist.
bool sync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return false;
    throw std::runtime_error("cannot open " + path + " to flush it: " + std::strerror(errno));
  }
  const int rc = directory ? ::fsync(fd) : ::fdatasync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0)
    throw std::runtime_error("flushing " + path + " to disk failed: " + std::strerror(err));
  return true;
}

}  // namespace

std::shared_ptr<wal_sync> wal_sync::for_file(const std::string& db_path) {
  static std::mutex registry_mu;
  static std::map<std::string, std::weak_ptr<wal_sync>> registry;
  std::error_code ec;
  auto key = std::filesystem::weakly_canonical(db_path, ec).string();
  if (ec)
    key = db_path;
  std::lock_guard<std::mutex> guard{registry_mu};
  auto& slot = registry[key];
  if (auto existing = slot.lock())
    return existing;
  auto made = std::make_shared<wal_sync>(db_path);
  slot = made;
  return made;
}

wal_sync::wal_sync(std::string db_path)
    : wal_path_(db_path + "-wal"), dir_path_(parent_of(db_path)) {}

wal_sync::~wal_sync() {
  if (requested_ > 0)
    spdlog::info("{}: {} commits made durable by {} flushes ({:.1f} per flush)", wal_path_,
                 requested_, flushes_,
                 flushes_ == 0 ? 0.0 : static_cast<double>(requested_) / flushes_);
}

void wal_sync::flush() {
  // The WAL exists while a connection in WAL mode is open and has written. Opening it by path
  // for each flush always reaches the current file; an fdatasync through any descriptor flushes
  // every dirty page of the file.
  if (!sync_path(wal_path_, false))
    return;  // no WAL: its content was checkpointed (and synced) into the database and removed
  if (!dir_synced_) {
    sync_path(dir_path_, true);  // a new WAL's name in its directory, once
    dir_synced_ = true;
  }
}

void wal_sync::wait_durable() {
  std::unique_lock<std::mutex> lock{mu_};
  const auto ticket = ++requested_;  // this thread's commit is already in the WAL
  while (durable_ < ticket) {
    if (flushing_) {
      cv_.wait(lock);  // a flush is under way; it may have begun before this commit
      continue;
    }
    // Lead a flush for every ticket handed out so far: their commits all precede it.
    flushing_ = true;
    const auto covers = requested_;
    lock.unlock();
    try {
      flush();
    } catch (...) {
      lock.lock();
      flushing_ = false;
      cv_.notify_all();  // the next waiter tries its own flush
      throw;
    }
    lock.lock();
    flushing_ = false;
    ++flushes_;
    if (covers > durable_)
      durable_ = covers;
    cv_.notify_all();
  }
}

wal_sync_stats wal_sync::stats() const {
  std::lock_guard<std::mutex> guard{mu_};
  return {requested_, flushes_};
}

}  // namespace switchboard::adapters::sqlite
