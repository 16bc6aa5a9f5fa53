// The data directory and every SQLite file switchboard makes in it are its owner's alone
// (leads.db holds customers' names and phone numbers): checked on a running runtime, through the
// file modes a user would see with `ls -l`, under permissive and strict umasks, and for files an
// earlier version left readable to everyone.

#include "switchboard/runtime.hpp"

#include "adapters/sqlite/private_files.hpp"
#include "support/temp_dir.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <string>

using namespace std::chrono_literals;
using namespace switchboard;
using switchboard::testing::temp_dir;
namespace fs = std::filesystem;

namespace {

/// Sets the process's umask for a scope.
struct scoped_umask {
  mode_t before;
  explicit scoped_umask(mode_t m) : before(::umask(m)) {}
  ~scoped_umask() { ::umask(before); }
  scoped_umask(const scoped_umask&) = delete;
  scoped_umask& operator=(const scoped_umask&) = delete;
};

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

/// Every file and directory under `root`, by name relative to it, with its mode.
std::map<std::string, mode_t> modes_under(const fs::path& root) {
  std::map<std::string, mode_t> out;
  out["."] = mode_of(root);
  for (const auto& e : fs::recursive_directory_iterator(root))
    out[fs::relative(e.path(), root).string()] = mode_of(e.path());
  return out;
}

/// A configuration that runs both jobs with SQLite files: entity state (state.db, with a
/// lookup in a CRM database outside the data directory) and form leads (leads.db).
config two_jobs(const temp_dir& dir, const fs::path& data_dir) {
  config cfg;
  cfg.http.enabled = false;
  cfg.data_dir = data_dir.string();
  cfg.drain_timeout = 2s;
  cfg.enrichment.database = dir.file("crm.db");
  {
    SQLite::Database crm(cfg.enrichment.database, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    crm.exec("CREATE TABLE IF NOT EXISTS managers (id INTEGER PRIMARY KEY, name TEXT)");
  }
  lookup_config l;
  l.name = "manager";
  l.entity_kind = "application";
  l.sql = "SELECT name FROM managers WHERE id = ?";
  l.params = {"managerId"};
  l.into = "manager";
  cfg.enrichment.lookups.push_back(l);
  cfg.form_leads.lead_tracking_url = "http://127.0.0.1:9/leads";  // never reached here
  return cfg;
}

event application_event() {
  event ev;
  ev.id = "ev-1";
  ev.source = "tests/files";
  ev.type = "application.status_changed";
  ev.entity_kind = "application";
  ev.entity_id = "A-1";
  ev.data["status"] = "submitted";
  return ev;
}

}  // namespace

TEST_CASE("the data directory is made 0700 and every SQLite file in it 0600, whatever the umask",
          "[files]") {
  const auto mask = GENERATE(mode_t{0000}, mode_t{0022}, mode_t{0277});
  INFO("umask " << std::oct << mask);
  temp_dir dir;
  const auto data = dir.path / "var" / "switchboard";  // neither exists yet
  std::map<std::string, mode_t> seen;
  {
    scoped_umask umask{mask};
    runtime rt{two_jobs(dir, data)};
    rt.start();
    rt.publish(application_event()).get();  // the journal writes: its -wal and -shm exist
    seen = modes_under(dir.path / "var");   // while running: SQLite's companions are there
    rt.stop();
  }
  for (const auto& name :
       {"switchboard/journal.db", "switchboard/journal.db-wal", "switchboard/journal.db-shm",
        "switchboard/leads.db", "switchboard/leads.db-wal", "switchboard/leads.db-shm",
        "switchboard/state.db"})
    CHECK(seen.count(name) == 1);
  for (const auto& [name, mode] : seen) {
    INFO(name << " is " << std::oct << mode);
    const bool directory = name == "." || name == "switchboard";
    CHECK(mode == (directory ? 0700 : 0600));
  }
}

TEST_CASE("database files an earlier version left readable to all are made 0600 on start",
          "[files]") {
  temp_dir dir;
  scoped_umask umask{0022};
  const auto data = dir.path / "data";
  fs::create_directory(data);  // 0755: the user's own directory, left as it is
  for (const char* name : {"journal.db", "journal.db-wal", "leads.db", "leads.db-shm"}) {
    const int fd = ::open((data / name).c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
    REQUIRE(fd >= 0);  // empty: SQLite takes an empty file as a new database
    ::close(fd);
  }
  runtime rt{two_jobs(dir, data)};
  rt.start();
  rt.publish(application_event()).get();
  for (const char* name :
       {"journal.db", "journal.db-wal", "leads.db", "leads.db-shm", "state.db"}) {
    INFO(name);
    CHECK(mode_of(data / name) == 0600);
  }
  CHECK(mode_of(data) == 0755);
  rt.stop();
}

TEST_CASE("private_database leaves SQLite's own names alone and says what it cannot create",
          "[files]") {
  CHECK(adapters::sqlite::private_database(":memory:") == ":memory:");
  CHECK(adapters::sqlite::private_database("file:x.db?mode=memory") == "file:x.db?mode=memory");
  temp_dir dir;
  const auto missing = dir.file("no/such/dir/leads.db");
  try {
    adapters::sqlite::private_database(missing);
    FAIL("a database was made in a missing directory");
  } catch (const std::runtime_error& e) {
    CHECK(std::string{e.what()}.find(missing) != std::string::npos);
  }
  // A file where a directory must go: named.
  const auto blocker = dir.file("blocker");
  REQUIRE(::close(::open(blocker.c_str(), O_WRONLY | O_CREAT, 0600)) == 0);
  try {
    adapters::sqlite::create_private_directories(blocker + "/data");
    FAIL("a directory was made under a file");
  } catch (const std::runtime_error& e) {
    CHECK(std::string{e.what()}.find(blocker) != std::string::npos);
  }
}
