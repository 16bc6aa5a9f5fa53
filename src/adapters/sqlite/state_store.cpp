#include "adapters/sqlite/state_store.hpp"
#include "adapters/sqlite/private_files.hpp"
#include "adapters/sqlite/sqlite_support.hpp"

#include "adapters/sqlite/journal_store.hpp"  // store_error
#include "switchboard/event.hpp"              // rfc3339_now

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <limits>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string_view>
#include <type_traits>
#include <utility>

namespace switchboard::adapters::sqlite {

namespace {

using namespace internal;  // sqlite_support.hpp

constexpr int schema_version = 1;

// entity_state: one row per entity. target_ledger: one row per (target, entity) for every
// target that has used the ledger ("registered" in ledger_targets), carrying a copy of the
// entity's revision kept current by triggers. That copy lets a partial index hold exactly the
// pending rows, so `unwritten` costs O(pending), not O(entities), on a large table.
const char* const create_schema = R"sql(
CREATE TABLE entity_state (
  kind TEXT NOT NULL,
  id TEXT NOT NULL,
  version INTEGER NULL,
  revision INTEGER NOT NULL,
  sequence INTEGER NOT NULL,
  base TEXT NOT NULL,
  state TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (kind, id)
) WITHOUT ROWID;
CREATE TABLE ledger_targets (
  target TEXT NOT NULL,
  kind TEXT NOT NULL,           -- '' = every kind
  PRIMARY KEY (target, kind)
) WITHOUT ROWID;
CREATE TABLE target_ledger (
  target TEXT NOT NULL,
  kind TEXT NOT NULL,
  id TEXT NOT NULL,
  revision INTEGER NOT NULL DEFAULT 0,          -- the entity's current revision (triggers)
  written_revision INTEGER NOT NULL DEFAULT 0,
  dead_revision INTEGER NOT NULL DEFAULT 0,
  dead_error TEXT NOT NULL DEFAULT '',
  dead_at TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (target, kind, id)
) WITHOUT ROWID;
CREATE INDEX target_ledger_pending ON target_ledger(target, kind, id)
  WHERE revision > written_revision AND revision <> dead_revision;
CREATE INDEX target_ledger_dead ON target_ledger(target, dead_at)
  WHERE dead_revision > written_revision;
CREATE TRIGGER entity_state_inserted AFTER INSERT ON entity_state BEGIN
  INSERT INTO target_ledger(target, kind, id, revision)
    SELECT t.target, NEW.kind, NEW.id, NEW.revision FROM ledger_targets t
    WHERE t.kind = NEW.kind OR t.kind = ''
    ON CONFLICT(target, kind, id) DO UPDATE SET revision = excluded.revision;
END;
CREATE TRIGGER entity_state_revised AFTER UPDATE OF revision ON entity_state BEGIN
  INSERT INTO target_ledger(target, kind, id, revision)
    SELECT t.target, NEW.kind, NEW.id, NEW.revision FROM ledger_targets t
    WHERE t.kind = NEW.kind OR t.kind = ''
    ON CONFLICT(target, kind, id) DO UPDATE SET revision = excluded.revision;
END;
PRAGMA user_version = 1;
)sql";

const char* const entity_columns =
    "e.kind, e.id, e.version, e.revision, e.sequence, e.base, e.state, e.updated_at";

const char* advice(store_error::kind k) {
  switch (k) {
    case store_error::kind::disk_full: return "free disk space and retry";
    case store_error::kind::busy:
      return "another process holds the write lock; make sure only one switchboard uses this "
             "data directory, then retry";
    case store_error::kind::io: return "check the disk and the file system (dmesg), then retry";
    case store_error::kind::other: break;
  }
  return "check that the file is a switchboard state database and is not corrupt; it is view "
         "data, so it can be deleted and rebuilt by replaying the 'state' subscription from zero";
}

boost::json::object parse_object(const SQLite::Column& c, const char* what) {
  boost::system::error_code ec;
  auto v =
      boost::json::parse(std::string_view(c.getText(), static_cast<std::size_t>(c.getBytes())), ec);
  if (ec || !v.is_object())
    throw store_error(store_error::kind::other,
                      std::string("state database: a stored ") + what +
                          " is not a JSON object; the file was written by another program or is "
                          "corrupt (delete it and replay the 'state' subscription from zero)");
  return std::move(v.as_object());
}

/// A row selected with `entity_columns`, starting at column `first`.
stored_state entity_from(SQLite::Statement& s, int first = 0) {
  stored_state st;
  st.kind = s.getColumn(first).getString();
  st.id = s.getColumn(first + 1).getString();
  if (!s.isColumnNull(first + 2))
    st.version = s.getColumn(first + 2).getInt64();
  st.revision = static_cast<std::uint64_t>(s.getColumn(first + 3).getInt64());
  st.sequence = static_cast<std::uint64_t>(s.getColumn(first + 4).getInt64());
  st.base = parse_object(s.getColumn(first + 5), "base");
  st.state = parse_object(s.getColumn(first + 6), "state");
  st.updated_at = s.getColumn(first + 7).getString();
  return st;
}

}  // namespace

struct state_store::impl {
  std::string path;
  std::mutex mu;  // one connection, shared by pipelines, writers and rebuild
  SQLite::Database db;
  std::optional<SQLite::Statement> load, upsert, replace, page, count_all, register_target,
      backfill, pending, written, dead, forget, counts, dead_list;
  std::set<std::pair<std::string, std::string>> registered;  // (target, kind) known to be so

  explicit impl(const std::string& p)
      : path(p), db(private_database(p), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE, 5000) {}

  [[noreturn]] void fail(const std::string& what, const SQLite::Exception& e) const {
    const auto k = kind_of(e.getErrorCode());
    throw store_error(
        k, "state database '" + path + "': " + what + " failed: " + e.what() + "; " + advice(k));
  }

  SQLite::Statement& cached(std::optional<SQLite::Statement>& slot, const char* sql) {
    if (!slot)
      slot.emplace(db, sql);
    return *slot;
  }
  SQLite::Statement& cached(std::optional<SQLite::Statement>& slot, const std::string& sql) {
    return cached(slot, sql.c_str());
  }

  void rollback_if_open() noexcept {
    if (sqlite3_get_autocommit(db.getHandle()) == 0)
      db.tryExec("ROLLBACK");
  }

  /// Runs `f` in one IMMEDIATE transaction (callers hold `mu`).
  template <class F>
  auto in_transaction(F&& f) {
    db.exec("BEGIN IMMEDIATE");
    try {
      if constexpr (std::is_void_v<decltype(f())>) {
        f();
        db.exec("COMMIT");
      } else {
        auto result = f();
        db.exec("COMMIT");
        return result;
      }
    } catch (...) {
      rollback_if_open();
      throw;
    }
  }

  void open() {
    const auto mode = db.execAndGet("PRAGMA journal_mode=WAL").getString();
    if (mode != "wal")
      throw store_error(store_error::kind::other, "state database '" + path +
                                                      "': could not switch to WAL mode (SQLite "
                                                      "kept journal_mode '" +
                                                      mode +
                                                      "'); put the data directory on a local "
                                                      "file system that supports shared memory");
    // View data: losing the newest commits to a power cut is repaired by a replay or rebuild.
    db.exec("PRAGMA synchronous=NORMAL");
    const int version = db.execAndGet("PRAGMA user_version").getInt();
    if (version == schema_version)
      return;
    if (version > schema_version)
      throw store_error(store_error::kind::other,
                        "state database '" + path + "' has schema version " +
                            std::to_string(version) + ", newer than this switchboard knows (" +
                            std::to_string(schema_version) +
                            "); run a newer switchboard, or delete the file and let it be rebuilt");
    in_transaction([&] {
      if (db.execAndGet("PRAGMA user_version").getInt() == 0)
        db.exec(create_schema);
    });
  }

  std::optional<stored_state> load_locked(const std::string& kind, const std::string& id) {
    statement_use s{cached(load, std::string("SELECT ") + entity_columns +
                                     " FROM entity_state e WHERE e.kind = ? AND e.id = ?")};
    s->bindNoCopy(1, kind);
    s->bindNoCopy(2, id);
    if (!s->executeStep())
      return std::nullopt;
    return entity_from(*s);
  }

  /// Makes `target` a ledger user for `kind` ('' = all kinds); the first time, gives it a
  /// ledger row for every stored entity of that kind (all pending). Callers hold `mu`.
  void ensure_registered(const std::string& target, const std::string& kind) {
    if (registered.count({target, kind}) != 0)
      return;
    {
      statement_use s{cached(register_target,
                             "INSERT OR IGNORE INTO ledger_targets(target, kind) VALUES (?, ?)")};
      s->bindNoCopy(1, target);
      s->bindNoCopy(2, kind);
      if (s->exec() == 0)
        return;
    }
    statement_use s{
        cached(backfill,
               "INSERT INTO target_ledger(target, kind, id, revision) "
               "SELECT ?1, e.kind, e.id, e.revision FROM entity_state e "
               "WHERE ?2 = '' OR e.kind = ?2 "
               "ON CONFLICT(target, kind, id) DO UPDATE SET revision = excluded.revision")};
    s->bindNoCopy(1, target);
    s->bindNoCopy(2, kind);
    s->exec();
  }

  /// `ensure_registered` in its own transaction, skipped once known (the common case).
  void register_once(const std::string& target, const std::string& kind) {
    if (registered.count({target, kind}) != 0)
      return;
    in_transaction([&] { ensure_registered(target, kind); });
    registered.emplace(target, kind);
  }
};

state_store::state_store(const std::string& path) {
  try {
    impl_ = std::make_unique<impl>(path);
    impl_->open();
  } catch (const SQLite::Exception& e) {
    const auto k = kind_of(e.getErrorCode());
    throw store_error(k, "state database '" + path + "': opening failed: " + e.what() + "; " +
                             (k == store_error::kind::other
                                  ? "check that the data directory exists and is writable"
                                  : advice(k)));
  }
}

state_store::~state_store() = default;

std::optional<stored_state> state_store::load(const std::string& kind,
                                              const std::string& id) const {
  std::lock_guard<std::mutex> guard{impl_->mu};
  try {
    return impl_->load_locked(kind, id);
  } catch (const SQLite::Exception& e) {
    impl_->fail("loading " + kind + "/" + id, e);
  }
}

state_store::put_result state_store::put(const std::string& kind, const std::string& id,
                                         std::optional<std::int64_t> version,
                                         std::uint64_t sequence, const boost::json::object& base,
                                         const boost::json::object& state,
                                         std::optional<std::uint64_t> expected_revision) {
  const auto base_text = boost::json::serialize(base);
  const auto state_text = boost::json::serialize(state);
  const auto now = rfc3339_now();
  std::lock_guard<std::mutex> guard{impl_->mu};
  try {
    return impl_->in_transaction([&] {
      bool stored = false;
      {
        // The staleness rule lives here, in the statement, not only in core/entity_state.
        // An upsert updates only when its row conflicts, so with an expected revision the
        // row is offered when it exists (to update) or when none is expected (to insert).
        statement_use s{impl_->cached(
            impl_->upsert,
            "INSERT INTO entity_state(kind, id, version, revision, sequence, base, state, "
            "updated_at) SELECT ?1, ?2, ?3, 1, ?4, ?5, ?6, ?7 WHERE ?8 IS NULL OR ?8 = 0 OR "
            "  EXISTS (SELECT 1 FROM entity_state WHERE kind = ?1 AND id = ?2) "
            "ON CONFLICT(kind, id) DO UPDATE SET "
            "  version = COALESCE(excluded.version, entity_state.version), "
            "  revision = entity_state.revision + 1, "
            "  sequence = MAX(entity_state.sequence, excluded.sequence), "
            "  base = excluded.base, state = excluded.state, updated_at = excluded.updated_at "
            "WHERE (?8 IS NULL OR entity_state.revision = ?8) AND "
            "  CASE WHEN excluded.version IS NOT NULL "
            "    THEN entity_state.version IS NULL OR excluded.version > entity_state.version "
            "    ELSE excluded.sequence > entity_state.sequence END")};
        s->bindNoCopy(1, kind);
        s->bindNoCopy(2, id);
        if (version)
          s->bind(3, *version);
        else
          s->bind(3);
        s->bind(4, to_db(sequence));
        s->bindNoCopy(5, base_text);
        s->bindNoCopy(6, state_text);
        s->bindNoCopy(7, now);
        if (expected_revision)
          s->bind(8, to_db(*expected_revision));
        else
          s->bind(8);
        stored = s->exec() == 1;
      }
      put_result r;
      r.state = impl_->load_locked(kind, id);
      if (stored)
        r.outcome = put_outcome::stored;
      else if (expected_revision && (r.state ? r.state->revision : 0) != *expected_revision)
        r.outcome = put_outcome::conflict;
      else
        r.outcome = put_outcome::stale;
      return r;
    });
  } catch (const SQLite::Exception& e) {
    impl_->fail("storing the state of " + kind + "/" + id, e);
  }
}

std::optional<stored_state> state_store::replace_state(const std::string& kind,
                                                       const std::string& id,
                                                       std::uint64_t expected_revision,
                                                       const boost::json::object& state) {
  const auto state_text = boost::json::serialize(state);
  const auto now = rfc3339_now();
  std::lock_guard<std::mutex> guard{impl_->mu};
  try {
    return impl_->in_transaction([&]() -> std::optional<stored_state> {
      {
        statement_use s{impl_->cached(
            impl_->replace,
            "UPDATE entity_state SET state = ?1, revision = revision + 1, updated_at = ?2 "
            "WHERE kind = ?3 AND id = ?4 AND revision = ?5")};
        s->bindNoCopy(1, state_text);
        s->bindNoCopy(2, now);
        s->bindNoCopy(3, kind);
        s->bindNoCopy(4, id);
        s->bind(5, to_db(expected_revision));
        if (s->exec() == 0)
          return std::nullopt;
      }
      return impl_->load_locked(kind, id);
    });
  } catch (const SQLite::Exception& e) {
    impl_->fail("replacing the state of " + kind + "/" + id, e);
  }
}

std::vector<stored_state> state_store::entities(const std::string& entity_kind, std::size_t limit,
                                                const std::string& after_kind,
                                                const std::string& after_id) const {
  std::vector<stored_state> out;
  if (limit == 0)
    return out;
  std::lock_guard<std::mutex> guard{impl_->mu};
  try {
    statement_use s{impl_->cached(
        impl_->page, std::string("SELECT ") + entity_columns +
                         " FROM entity_state e WHERE (?1 = '' OR e.kind = ?1) "
                         "AND (e.kind, e.id) > (?2, ?3) ORDER BY e.kind, e.id LIMIT ?4")};
    s->bindNoCopy(1, entity_kind);
    s->bindNoCopy(2, after_kind);
    s->bindNoCopy(3, after_id);
    s->bind(4, to_db(limit));
    while (s->executeStep())
      out.push_back(entity_from(*s));
  } catch (const SQLite::Exception& e) {
    impl_->fail("listing entities", e);
  }
  return out;
}

std::optional<std::string> state_store::sqlite_json_path(const std::string& dotted) {
  std::string out = "$";
  std::size_t start = 0;
  for (;;) {
    const auto dot = dotted.find('.', start);
    const auto name = std::string_view(dotted).substr(
        start, dot == std::string::npos ? std::string::npos : dot - start);
    if (name.empty())
      return std::nullopt;
    for (const char c : name)
      if (c == '"' || static_cast<unsigned char>(c) < 0x20)
        return std::nullopt;
    out += ".\"";
    out += name;
    out += '"';
    if (dot == std::string::npos)
      return out;
    start = dot + 1;
  }
}

bool state_store::searchable(const std::string& dotted) const {
  return sqlite_json_path(dotted).has_value();
}

std::vector<stored_state> state_store::entities_with(const std::string& entity_kind,
                                                     const std::vector<std::string>& paths,
                                                     const std::vector<std::string>& texts,
                                                     std::size_t limit,
                                                     const std::string& after_id) const {
  if (paths.size() != texts.size())
    throw std::invalid_argument("state database: entities_with got " +
                                std::to_string(paths.size()) + " paths but " +
                                std::to_string(texts.size()) + " values; give one per path");
  std::vector<std::string> json_paths;
  for (const auto& p : paths) {
    auto jp = sqlite_json_path(p);
    if (!jp)
      throw std::invalid_argument("state database: the dotted path \"" + p +
                                  "\" cannot be looked up in stored entities (an empty member "
                                  "name, or one holding '\"' or a control character); rename "
                                  "the member or change the lookup's params");
    json_paths.push_back(std::move(*jp));
  }
  std::vector<stored_state> out;
  if (limit == 0)
    return out;
  // The text of the scalar at ?N, as core::scalar_text has it: JSON true/false come back from
  // json_extract as 1/0 and whole reals as 42.0, so json_type picks the rendering.
  std::string sql = std::string("SELECT ") + entity_columns +
                    " FROM entity_state e WHERE e.kind = ?1 AND e.id > ?2";
  for (std::size_t i = 0; i < paths.size(); ++i) {
    const auto p = "?" + std::to_string(4 + 2 * i);
    const auto v = "?" + std::to_string(5 + 2 * i);
    const auto x = "json_extract(e.base, " + p + ")";
    sql += " AND (CASE json_type(e.base, " + p + ") WHEN 'text' THEN " + x +
           " WHEN 'integer' THEN CAST(" + x +
           " AS TEXT) WHEN 'true' THEN 'true' WHEN 'false' "
           "THEN 'false' WHEN 'real' THEN CASE WHEN " +
           x + " = CAST(" + x +
           " AS INTEGER) AND "
           "abs(" +
           x + ") < 9.0e15 THEN CAST(CAST(" + x + " AS INTEGER) AS TEXT) END END) = " + v;
  }
  sql += " ORDER BY e.id LIMIT ?3";
  std::lock_guard<std::mutex> guard{impl_->mu};
  try {
    // Prepared per page: the text depends on the number of paths, and a page's scan costs far
    // more than its preparation.
    SQLite::Statement s{impl_->db, sql};
    s.bindNoCopy(1, entity_kind);
    s.bindNoCopy(2, after_id);
    s.bind(3, to_db(limit));
    for (std::size_t i = 0; i < paths.size(); ++i) {
      s.bindNoCopy(static_cast<int>(4 + 2 * i), json_paths[i]);
      s.bindNoCopy(static_cast<int>(5 + 2 * i), texts[i]);
    }
    while (s.executeStep())
      out.push_back(entity_from(s));
  } catch (const SQLite::Exception& e) {
    impl_->fail("listing entities of kind '" + entity_kind + "' by base values", e);
  }
  return out;
}

std::uint64_t state_store::entity_count(const std::string& entity_kind) const {
  std::lock_guard<std::mutex> guard{impl_->mu};
  try {
    statement_use s{impl_->cached(impl_->count_all,
                                  "SELECT COUNT(*) FROM entity_state WHERE ?1 = '' OR kind = ?1")};
    s->bindNoCopy(1, entity_kind);
    s->executeStep();
    return static_cast<std::uint64_t>(s->getColumn(0).getInt64());
  } catch (const SQLite::Exception& e) {
    impl_->fail("counting entities", e);
  }
}

std::vector<stored_state> state_store::unwritten(const std::string& target,
                                                 const std::string& entity_kind, std::size_t limit,
                                                 const std::string& after_kind,
                                                 const std::string& after_id) const {
  std::vector<stored_state> out;
  if (limit == 0)
    return out;
  std::lock_guard<std::mutex> guard{impl_->mu};
  try {
    impl_->register_once(target, entity_kind);
    // The pending terms repeat the partial index's WHERE so that SQLite can use it.
    statement_use s{impl_->cached(
        impl_->pending,
        std::string("SELECT ") + entity_columns +
            " FROM target_ledger l JOIN entity_state e ON e.kind = l.kind AND e.id = l.id "
            "WHERE l.target = ?1 AND l.revision > l.written_revision "
            "AND l.revision <> l.dead_revision AND (?2 = '' OR l.kind = ?2) "
            "AND (l.kind, l.id) > (?3, ?4) ORDER BY l.kind, l.id LIMIT ?5")};
    s->bindNoCopy(1, target);
    s->bindNoCopy(2, entity_kind);
    s->bindNoCopy(3, after_kind);
    s->bindNoCopy(4, after_id);
    s->bind(5, to_db(limit));
    while (s->executeStep())
      out.push_back(entity_from(*s));
  } catch (const SQLite::Exception& e) {
    impl_->fail("listing unwritten entities of target '" + target + "'", e);
  }
  return out;
}

void state_store::mark_written(const std::string& target, const std::string& kind,
                               const std::string& id, std::uint64_t revision) {
  std::lock_guard<std::mutex> guard{impl_->mu};
  try {
    impl_->in_transaction([&] {
      impl_->ensure_registered(target, kind);
      statement_use s{impl_->cached(
          impl_->written,
          "INSERT INTO target_ledger(target, kind, id, revision, written_revision) VALUES "
          "(?1, ?2, ?3, COALESCE((SELECT revision FROM entity_state WHERE kind = ?2 AND id = ?3), "
          "0), ?4) ON CONFLICT(target, kind, id) DO UPDATE SET "
          "written_revision = MAX(written_revision, excluded.written_revision)")};
      s->bindNoCopy(1, target);
      s->bindNoCopy(2, kind);
      s->bindNoCopy(3, id);
      s->bind(4, to_db(revision));
      s->exec();
    });
  } catch (const SQLite::Exception& e) {
    impl_->fail("marking " + kind + "/" + id + " written to target '" + target + "'", e);
  }
}

void state_store::mark_dead(const std::string& target, const std::string& kind,
                            const std::string& id, std::uint64_t revision,
                            const std::string& error) {
  const auto now = rfc3339_now();
  std::lock_guard<std::mutex> guard{impl_->mu};
  try {
    impl_->in_transaction([&] {
      impl_->ensure_registered(target, kind);
      statement_use s{impl_->cached(
          impl_->dead,
          "INSERT INTO target_ledger(target, kind, id, revision, dead_revision, dead_error, "
          "dead_at) VALUES (?1, ?2, ?3, COALESCE((SELECT revision FROM entity_state WHERE "
          "kind = ?2 AND id = ?3), 0), ?4, ?5, ?6) ON CONFLICT(target, kind, id) DO UPDATE SET "
          "dead_revision = excluded.dead_revision, dead_error = excluded.dead_error, "
          "dead_at = excluded.dead_at WHERE excluded.dead_revision >= dead_revision")};
      s->bindNoCopy(1, target);
      s->bindNoCopy(2, kind);
      s->bindNoCopy(3, id);
      s->bind(4, to_db(revision));
      s->bindNoCopy(5, error);
      s->bindNoCopy(6, now);
      s->exec();
    });
  } catch (const SQLite::Exception& e) {
    impl_->fail("marking " + kind + "/" + id + " dead for target '" + target + "'", e);
  }
}

void state_store::forget_written(const std::string& target, const std::string& entity_kind,
                                 const std::string& id) {
  std::lock_guard<std::mutex> guard{impl_->mu};
  try {
    impl_->in_transaction([&] {
      impl_->ensure_registered(target, entity_kind);
      statement_use s{impl_->cached(
          impl_->forget,
          "UPDATE target_ledger SET written_revision = 0, dead_revision = 0, dead_error = '', "
          "dead_at = '' WHERE target = ?1 AND (?2 = '' OR kind = ?2) AND (?3 = '' OR id = ?3)")};
      s->bindNoCopy(1, target);
      s->bindNoCopy(2, entity_kind);
      s->bindNoCopy(3, id);
      s->exec();
    });
  } catch (const SQLite::Exception& e) {
    impl_->fail("forgetting what target '" + target + "' wrote", e);
  }
}

target_counts state_store::counts(const std::string& target, const std::string& entity_kind) const {
  std::lock_guard<std::mutex> guard{impl_->mu};
  try {
    impl_->register_once(target, entity_kind);
    statement_use s{impl_->cached(
        impl_->counts,
        "SELECT "
        "  COALESCE(SUM(revision > written_revision AND revision <> dead_revision), 0), "
        "  COALESCE(SUM(revision > 0 AND written_revision >= revision), 0), "
        "  COALESCE(SUM(revision > written_revision AND revision = dead_revision), 0) "
        "FROM target_ledger WHERE target = ?1 AND (?2 = '' OR kind = ?2)")};
    s->bindNoCopy(1, target);
    s->bindNoCopy(2, entity_kind);
    s->executeStep();
    target_counts c;
    c.pending = static_cast<std::uint64_t>(s->getColumn(0).getInt64());
    c.written = static_cast<std::uint64_t>(s->getColumn(1).getInt64());
    c.dead = static_cast<std::uint64_t>(s->getColumn(2).getInt64());
    return c;
  } catch (const SQLite::Exception& e) {
    impl_->fail("counting the ledger of target '" + target + "'", e);
  }
}

std::vector<dead_write> state_store::dead_writes(const std::string& target,
                                                 std::size_t limit) const {
  std::vector<dead_write> out;
  if (limit == 0)
    return out;
  std::lock_guard<std::mutex> guard{impl_->mu};
  try {
    // Given up on at the entity's newest revision (as `counts().dead`): a newer revision is
    // pending again, and a successful write clears it.
    statement_use s{impl_->cached(
        impl_->dead_list,
        "SELECT target, kind, id, dead_revision, dead_error, dead_at FROM target_ledger "
        "WHERE target = ?1 AND dead_revision > written_revision AND revision = dead_revision "
        "ORDER BY dead_at DESC LIMIT ?2")};
    s->bindNoCopy(1, target);
    s->bind(2, to_db(limit));
    while (s->executeStep()) {
      dead_write d;
      d.target = s->getColumn(0).getString();
      d.kind = s->getColumn(1).getString();
      d.id = s->getColumn(2).getString();
      d.revision = static_cast<std::uint64_t>(s->getColumn(3).getInt64());
      d.error = s->getColumn(4).getString();
      d.at = s->getColumn(5).getString();
      out.push_back(std::move(d));
    }
  } catch (const SQLite::Exception& e) {
    impl_->fail("listing dead writes of target '" + target + "'", e);
  }
  return out;
}

std::int64_t state_store::set_max_page_count(std::int64_t pages) {
  std::lock_guard<std::mutex> guard{impl_->mu};
  try {
    return impl_->db.execAndGet("PRAGMA max_page_count=" + std::to_string(pages)).getInt64();
  } catch (const SQLite::Exception& e) {
    impl_->fail("setting max_page_count", e);
  }
}

}  // namespace switchboard::adapters::sqlite
