#include "adapters/sqlite/private_files.hpp"

#include "ports/journal_storage.hpp"  // store_error

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace switchboard::adapters::sqlite {

namespace {

constexpr mode_t private_file = 0600;
constexpr mode_t private_dir = 0700;
constexpr mode_t group_and_other = 0077;

std::string octal(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

[[noreturn]] void fail(const std::string& what, const std::string& path, int err,
                       const char* hint = " (check the data directory's owner and permissions)") {
  using kind = ports::store_error::kind;
  const auto k = err == ENOSPC || err == EDQUOT ? kind::disk_full
                 : err == EIO                   ? kind::io
                                                : kind::other;
  throw ports::store_error(k, what + " '" + path + "': " + std::strerror(err) + hint);
}

/// Takes group and other access away from an existing file; false if there is no such file.
bool tighten(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT)
      return false;
    fail("cannot read the mode of", path, errno);
  }
  if (!S_ISREG(st.st_mode) || (st.st_mode & group_and_other) == 0)
    return true;
  const mode_t tightened = st.st_mode & 07700;
  if (::chmod(path.c_str(), tightened) != 0)
    fail("cannot make private (mode " + octal(private_file) + ")", path, errno);
  spdlog::info("{}: was mode {}, readable beyond its owner; now {}", path, octal(st.st_mode),
               octal(tightened));
  return true;
}

}  // namespace

void create_private_directories(const std::string& dir) {
  std::filesystem::path made;
  for (const auto& part : std::filesystem::path{dir}) {
    made /= part;
    if (::mkdir(made.c_str(), private_dir) == 0) {
      // mkdir's mode passes through the umask; set it exactly (an owner without write or search
      // access could not use it at all).
      if (::chmod(made.c_str(), private_dir) != 0)
        fail("cannot make private (mode " + octal(private_dir) + ") the data directory", made,
             errno, "");
      continue;
    }
    const int err = errno;
    struct stat st {};
    if (err == EEXIST && ::stat(made.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
      continue;
    fail(err == EEXIST ? "cannot create the data directory (a file is in the way)"
                       : "cannot create the data directory",
         made, err == EEXIST ? ENOTDIR : err, "");
  }
}

const std::string& private_database(const std::string& path) {
  if (path.empty() || path == ":memory:" || path.rfind("file:", 0) == 0)
    return path;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, private_file);
  if (fd >= 0) {
    // The umask may have taken more than group and other away; SQLite needs the owner's rw.
    const int rc = ::fchmod(fd, private_file);
    const int err = errno;
    ::close(fd);
    if (rc != 0)
      fail("cannot make private (mode " + octal(private_file) + ")", path, err);
    return path;
  }
  if (errno != EEXIST)
    fail("cannot create the database", path, errno);
  tighten(path);
  for (const char* companion : {"-wal", "-shm", "-journal"})
    tighten(path + companion);
  return path;
}

}  // namespace switchboard::adapters::sqlite
