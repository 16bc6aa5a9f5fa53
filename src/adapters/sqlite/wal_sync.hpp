#pragma once

// Group commit for a SQLite file in WAL mode that many connections write: each connection
// commits with synchronous=NORMAL (the commit is in the WAL, in the page cache, and atomic, but
// not yet on disk), then calls `wait_durable()`, which returns once an fdatasync of the WAL that
// began after that commit has finished. One fdatasync serves every commit made before it began,
// so N runners committing at once cost one disk flush, not N, and none of them flushes while
// holding SQLite's write lock (synchronous=FULL flushes inside the commit, under the lock, which
// serializes every writer of the file behind the disk).
//
// Safety: WAL frames are appended in commit order and checksummed cumulatively; recovery keeps
// every transaction whose frames reached the disk intact and drops a torn tail. A flush of the
// WAL after a commit therefore makes that commit (and all earlier ones) survive a power loss,
// which is what synchronous=FULL gives. Checkpoints keep their own syncs (SQLite syncs the WAL
// before and the database file after copying, at synchronous=NORMAL too).
//
// Thread-safe; one instance per database file, shared by its connections (`for_file`).

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace switchboard::adapters::sqlite {

struct wal_sync_stats {
  std::uint64_t commits = 0;  ///< wait_durable calls
  std::uint64_t flushes = 0;  ///< fdatasync calls made for them
};

class wal_sync {
public:
  /// The syncer of the database at `db_path` (its WAL is `db_path` + "-wal"), shared by every
  /// caller naming the same file while any of them holds it.
  static std::shared_ptr<wal_sync> for_file(const std::string& db_path);

  explicit wal_sync(std::string db_path);
  ~wal_sync();  ///< logs how many commits its flushes covered
  wal_sync(const wal_sync&) = delete;
  wal_sync& operator=(const wal_sync&) = delete;

  /// Returns once everything this thread committed before the call is on disk. Throws
  /// std::runtime_error naming the file if the flush fails (the commit may then be lost on a
  /// power loss: the caller must not acknowledge it).
  void wait_durable();

  wal_sync_stats stats() const;

private:
  void flush();  // fdatasync of the WAL; throws on failure

  const std::string wal_path_;
  const std::string dir_path_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::uint64_t requested_ = 0;  // tickets handed out: one per wait_durable
  std::uint64_t durable_ = 0;    // every ticket up to this one is on disk
  bool flushing_ = false;        // a leader is in fdatasync now
  bool dir_synced_ = false;      // the directory entry of the WAL was flushed once
  std::uint64_t flushes_ = 0;
};

}  // namespace switchboard::adapters::sqlite
