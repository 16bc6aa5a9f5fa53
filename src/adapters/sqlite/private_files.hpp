#pragma once

// switchboard's files are its process owner's alone: leads.db holds customers' names and phones,
// the journal every event. SQLite cannot be asked for that: it creates a database 0644 whatever
// the umask (it fchmods new files to its compile-time default), and gives the -wal, -shm and
// -journal files it makes beside a database that database's mode. So a database is created here,
// empty and 0600, before SQLite opens it, and its companions follow.

#include <string>

namespace switchboard::adapters::sqlite {

/// Creates directory `dir` and its missing parents 0700 (exactly, whatever the umask). An
/// existing directory keeps its mode: its owner chose it. Throws ports::store_error (a
/// std::runtime_error) naming the directory and the system's reason.
void create_private_directories(const std::string& dir);

/// For a database SQLite is about to open read-write: creates `path` empty and 0600 if it is
/// missing; otherwise takes group and other access away from it and from its -wal, -shm and
/// -journal files (earlier versions made them 0644), saying so in the log. ":memory:", "" and
/// "file:" URIs are left to SQLite. Returns `path` (for member initialisers). Throws
/// ports::store_error naming the file when it cannot be created or its mode changed.
const std::string& private_database(const std::string& path);

}  // namespace switchboard::adapters::sqlite
