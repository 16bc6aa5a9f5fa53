#pragma once

// What switchboard's SQLite stores (journal_store, state_store) share: how a SQLite error code
// maps to a store_error kind, clamping to SQLite's signed 64-bit INTEGER, and scoped use of a
// cached statement. Internal; never installed.

#include "adapters/sqlite/journal_store.hpp"  // store_error
#include "adapters/sqlite/statements.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <cstdint>
#include <limits>

namespace switchboard::adapters::sqlite::internal {

/// Sequences, revisions and ids are INTEGER (signed 64-bit) in SQLite.
constexpr std::uint64_t max_db_integer =
    static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

inline std::int64_t to_db(std::uint64_t v) {
  return static_cast<std::int64_t>(v > max_db_integer ? max_db_integer : v);
}

/// What kind of failure a (possibly extended) SQLite result code is.
inline store_error::kind kind_of(int sqlite_code) {
  switch (sqlite_code & 0xFF) {  // the primary code of an extended one
    case SQLITE_FULL: return store_error::kind::disk_full;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return store_error::kind::busy;
    case SQLITE_IOERR: return store_error::kind::io;
    default: return store_error::kind::other;
  }
}

}  // namespace switchboard::adapters::sqlite::internal
