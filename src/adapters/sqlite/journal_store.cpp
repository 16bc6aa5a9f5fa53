#include "adapters/sqlite/journal_store.hpp"
#include "adapters/sqlite/private_files.hpp"
#include "adapters/sqlite/sqlite_support.hpp"

#include "core/time.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <limits>
#include <utility>

namespace switchboard::adapters::sqlite {

namespace {

using namespace internal;  // sqlite_support.hpp

constexpr int schema_version = 1;

const char* const create_schema = R"sql(
CREATE TABLE events (
  seq INTEGER PRIMARY KEY,
  source TEXT NOT NULL,
  id TEXT NOT NULL,
  type TEXT NOT NULL,
  entity_kind TEXT NOT NULL,
  entity_id TEXT NOT NULL,
  entity_version INTEGER NULL,
  time_us INTEGER NOT NULL,
  body TEXT NOT NULL
);
CREATE UNIQUE INDEX events_dedupe ON events(source, id);
CREATE INDEX events_time ON events(time_us);
CREATE TABLE checkpoints (
  consumer TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE dead_letters (
  id INTEGER PRIMARY KEY,
  consumer TEXT NOT NULL,
  seq INTEGER NOT NULL,
  reason TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  last_error TEXT NOT NULL,
  parked_at TEXT NOT NULL
);
PRAGMA user_version = 1;
)sql";

const char* advice(store_error::kind k) {
  switch (k) {
    case store_error::kind::disk_full:
      return "free disk space (or raise the journal's max_page_count) and retry";
    case store_error::kind::busy:
      return "another connection holds the write lock; make sure only one switchboard writes "
             "this journal, then retry";
    case store_error::kind::io: return "check the disk and the file system (dmesg), then retry";
    case store_error::kind::other: break;
  }
  return "check that the file is a switchboard journal and is not corrupt (sqlite3 FILE "
         "'PRAGMA integrity_check'); restore it from a backup if it is";
}

dead_letter dead_letter_from(SQLite::Statement& s) {
  dead_letter d;
  d.id = static_cast<std::uint64_t>(s.getColumn(0).getInt64());
  d.consumer = s.getColumn(1).getString();
  d.sequence = static_cast<std::uint64_t>(s.getColumn(2).getInt64());
  d.reason = s.getColumn(3).getString();
  d.attempts = static_cast<std::uint32_t>(s.getColumn(4).getInt64());
  d.last_error = s.getColumn(5).getString();
  d.parked_at = s.getColumn(6).getString();
  return d;
}

}  // namespace

struct journal_store::impl {
  journal_options options;
  SQLite::Database db;
  // Prepared once per connection (lazily, so that readers never prepare writes).
  std::optional<SQLite::Statement> begin, commit, max_seq, insert_event, find_event, read_events,
      events_from_time, get_checkpoint, put_checkpoint, insert_dead_letter, list_dead_letters,
      get_dead_letter, delete_dead_letter;

  explicit impl(journal_options o)
      : options(std::move(o)),
        db(options.read_only ? options.path : private_database(options.path),
           options.read_only ? SQLite::OPEN_READONLY : SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE,
           options.busy_timeout_ms) {}

  [[noreturn]] void fail(const std::string& what, const SQLite::Exception& e) const {
    const auto k = kind_of(e.getErrorCode());
    throw store_error(k, "journal database '" + options.path + "': " + what +
                             " failed: " + e.what() + "; " + advice(k));
  }

  SQLite::Statement& cached(std::optional<SQLite::Statement>& slot, const char* sql) {
    if (!slot)
      slot.emplace(db, sql);
    return *slot;
  }

  void rollback_if_open() noexcept {
    // After SQLITE_FULL or an I/O error SQLite may already have rolled back on its own.
    if (sqlite3_get_autocommit(db.getHandle()) == 0)
      db.tryExec("ROLLBACK");
  }

  void open() {
    if (!options.read_only) {
      // WAL lets readers run beside the writer; it must be set before the schema is written.
      const auto mode = db.execAndGet("PRAGMA journal_mode=WAL").getString();
      if (mode != "wal")
        throw store_error(store_error::kind::other,
                          "journal database '" + options.path +
                              "': could not switch to WAL mode "
                              "(SQLite kept journal_mode '" +
                              mode +
                              "'); put the data directory on "
                              "a local file system that supports shared memory (not NFS or tmpfs "
                              "without mmap)");
      db.exec(options.synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
      // Each batch dirties up to one page of the (source, id) index per event (ids are
      // random); a 64 MiB cache keeps them from being spilled mid-transaction, and
      // checkpointing every 10,000 pages (about 40 MiB of WAL) rather than SQLite's 1,000
      // copies each hot page back once instead of many times. Measured: +15 % appends/s with
      // ordered ids, +70 % with random UUIDs (200k events, synchronous=NORMAL).
      db.exec("PRAGMA cache_size=-65536; PRAGMA wal_autocheckpoint=10000");
      if (options.max_page_count)
        db.exec("PRAGMA max_page_count=" + std::to_string(*options.max_page_count));
    }
    const int version = db.execAndGet("PRAGMA user_version").getInt();
    if (version == schema_version)
      return;
    if (version > schema_version)
      throw store_error(store_error::kind::other,
                        "journal database '" + options.path + "' has schema version " +
                            std::to_string(version) + ", newer than this switchboard knows (" +
                            std::to_string(schema_version) + "); run a newer switchboard");
    if (options.read_only)
      throw store_error(store_error::kind::other,
                        "journal database '" + options.path +
                            "' has no journal schema yet; open it for writing first (start the "
                            "journal) or check the path");
    SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
    // Another writer may have created it while we waited for the lock.
    if (db.execAndGet("PRAGMA user_version").getInt() == 0)
      db.exec(create_schema);
    tx.commit();
  }

  std::vector<append_outcome> append(std::vector<event>& events) {
    std::vector<append_outcome> outcomes(events.size());
    if (events.empty())
      return outcomes;
    std::string body;
    try {
      statement_use { cached(begin, "BEGIN IMMEDIATE") } -> exec();
      try {
        std::int64_t next = 1;
        {
          statement_use last{cached(max_seq, "SELECT COALESCE(MAX(seq), 0) FROM events")};
          last->executeStep();
          next = last->getColumn(0).getInt64() + 1;
        }
        auto& insert = cached(insert_event,
                              "INSERT OR IGNORE INTO events(seq, source, id, type, entity_kind, "
                              "entity_id, entity_version, time_us, body) "
                              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
        for (std::size_t i = 0; i < events.size(); ++i) {
          event& ev = events[i];
          const auto time_us = core::rfc3339_to_unix_micros(ev.time);
          if (!time_us)
            throw store_error(store_error::kind::other,
                              "journal database '" + options.path + "': event (source '" +
                                  ev.source + "', id '" + ev.id + "') has time '" + ev.time +
                                  "', not an RFC 3339 timestamp; nothing of the batch was "
                                  "stored (events must be validated and stamped on ingest)");
          {
            // The body leaves the sequence out: `seq` is the one source of truth for it.
            const auto kept = std::exchange(ev.sequence, std::nullopt);
            body = encode_event(ev);
            ev.sequence = kept;
          }
          statement_use s{insert};
          s->bind(1, next);
          s->bindNoCopy(2, ev.source);
          s->bindNoCopy(3, ev.id);
          s->bindNoCopy(4, ev.type);
          s->bindNoCopy(5, ev.entity_kind);
          s->bindNoCopy(6, ev.entity_id);
          if (ev.entity_version)
            s->bind(7, to_db(*ev.entity_version));
          else
            s->bind(7);
          s->bind(8, *time_us);
          s->bindNoCopy(9, body);
          s->exec();
          if (db.getChanges() == 1) {
            outcomes[i] = {append_status::accepted, static_cast<std::uint64_t>(next)};
            ++next;
          } else {
            // (source, id) is already stored, by an earlier call or earlier in this batch.
            outcomes[i] = {append_status::duplicate, original_sequence(ev)};
          }
        }
        statement_use { cached(commit, "COMMIT") } -> exec();
      } catch (...) {
        rollback_if_open();
        throw;
      }
    } catch (const SQLite::Exception& e) {
      fail("appending " + std::to_string(events.size()) + " event(s)", e);
    }
    for (std::size_t i = 0; i < events.size(); ++i)
      if (outcomes[i].status == append_status::accepted)
        events[i].sequence = outcomes[i].sequence;
    return outcomes;
  }

  std::uint64_t original_sequence(const event& ev) {
    statement_use s{cached(find_event, "SELECT seq FROM events WHERE source = ? AND id = ?")};
    s->bindNoCopy(1, ev.source);
    s->bindNoCopy(2, ev.id);
    if (!s->executeStep())
      throw store_error(store_error::kind::other,
                        "journal database '" + options.path + "': event (source '" + ev.source +
                            "', id '" + ev.id +
                            "') was neither inserted nor found; the file may be corrupt (run "
                            "'PRAGMA integrity_check')");
    return static_cast<std::uint64_t>(s->getColumn(0).getInt64());
  }
};

journal_store::journal_store(journal_options options) {
  const std::string path = options.path;
  try {
    impl_ = std::make_unique<impl>(std::move(options));
    impl_->open();
  } catch (const SQLite::Exception& e) {
    const auto k = kind_of(e.getErrorCode());
    throw store_error(k, "journal database '" + path + "': opening failed: " + e.what() + "; " +
                             (k == store_error::kind::other
                                  ? "check that the path exists, is writable (or, for a reader, "
                                    "that the journal was created) and is a switchboard journal"
                                  : advice(k)));
  }
}

journal_store::~journal_store() = default;

std::vector<append_outcome> journal_store::append(std::vector<event>& events) {
  return impl_->append(events);
}

std::vector<event> journal_store::read_after(std::uint64_t after, std::size_t limit) {
  auto page = read_page(after, limit);
  if (!page.unreadable.empty())
    throw store_error(store_error::kind::other, "journal database '" + impl_->options.path +
                                                    "': " + page.unreadable.front().reason);
  return std::move(page.events);
}

journal_page journal_store::read_page(std::uint64_t after, std::size_t limit) {
  journal_page page;
  if (limit == 0 || after >= max_db_integer)
    return page;
  // The bodies were validated on ingest; these limits only guard against a corrupt file.
  codec_limits generous;
  generous.max_event_bytes = std::numeric_limits<std::size_t>::max();
  generous.max_depth = 4096;
  generous.max_string_bytes = std::numeric_limits<std::size_t>::max();
  generous.max_attribute_bytes = std::numeric_limits<std::size_t>::max();
  generous.require_entity = false;  // what was stored was valid where it was taken
  try {
    statement_use s{impl_->cached(impl_->read_events,
                                  "SELECT seq, body, source, id, type, entity_kind, entity_id "
                                  "FROM events WHERE seq > ? ORDER BY seq LIMIT ?")};
    s->bind(1, to_db(after));
    s->bind(2, to_db(limit));
    while (s->executeStep()) {
      const auto seq = static_cast<std::uint64_t>(s->getColumn(0).getInt64());
      const char* text = s->getColumn(1).getText();
      const auto size = static_cast<std::size_t>(s->getColumn(1).getBytes());
      auto decoded = decode_event(std::string_view(text, size), generous);
      if (decoded) {
        decoded.value->sequence = seq;
        page.events.push_back(std::move(*decoded.value));
        continue;
      }
      // One bad row must not hide the others, nor stop a reader: it is reported apart.
      unreadable_event row;
      row.sequence = seq;
      row.source = s->getColumn(2).getString();
      row.id = s->getColumn(3).getString();
      row.type = s->getColumn(4).getString();
      row.entity_kind = s->getColumn(5).getString();
      row.entity_id = s->getColumn(6).getString();
      row.reason = "event " + std::to_string(seq) + " (source '" + row.source + "', id '" + row.id +
                   "', type '" + row.type +
                   "') cannot be decoded from the journal: " + decoded.error.message() +
                   "; it was stored by a switchboard that accepted numbers beyond double range "
                   "(written as Infinity, which is not JSON), or the file is damaged";
      page.unreadable.push_back(std::move(row));
    }
  } catch (const SQLite::Exception& e) {
    impl_->fail("reading events after " + std::to_string(after), e);
  }
  return page;
}

std::uint64_t journal_store::last_sequence() {
  try {
    statement_use s{impl_->cached(impl_->max_seq, "SELECT COALESCE(MAX(seq), 0) FROM events")};
    s->executeStep();
    return static_cast<std::uint64_t>(s->getColumn(0).getInt64());
  } catch (const SQLite::Exception& e) {
    impl_->fail("reading the last sequence", e);
  }
}

std::optional<std::uint64_t> journal_store::sequence_before_time(std::string_view rfc3339) {
  const auto time_us = core::rfc3339_to_unix_micros(rfc3339);
  if (!time_us)
    return std::nullopt;
  try {
    // Times need not grow with sequences (producers set them), so take the lowest sequence
    // at or after the time; if none is, everything stored is before it.
    std::optional<std::int64_t> first;
    {
      statement_use s{
          impl_->cached(impl_->events_from_time, "SELECT MIN(seq) FROM events WHERE time_us >= ?")};
      s->bind(1, *time_us);
      s->executeStep();
      if (!s->isColumnNull(0))
        first = s->getColumn(0).getInt64();
    }
    return first ? static_cast<std::uint64_t>(*first - 1) : last_sequence();
  } catch (const SQLite::Exception& e) {
    impl_->fail("finding the sequence before " + std::string(rfc3339), e);
  }
}

std::uint64_t journal_store::checkpoint(const std::string& consumer) {
  try {
    statement_use s{
        impl_->cached(impl_->get_checkpoint, "SELECT seq FROM checkpoints WHERE consumer = ?")};
    s->bindNoCopy(1, consumer);
    return s->executeStep() ? static_cast<std::uint64_t>(s->getColumn(0).getInt64()) : 0;
  } catch (const SQLite::Exception& e) {
    impl_->fail("reading the checkpoint of consumer '" + consumer + "'", e);
  }
}

void journal_store::save_checkpoint(const std::string& consumer, std::uint64_t sequence) {
  try {
    statement_use s{
        impl_->cached(impl_->put_checkpoint,
                      "INSERT INTO checkpoints(consumer, seq, updated_at) VALUES (?, ?, ?) "
                      "ON CONFLICT(consumer) DO UPDATE SET seq = excluded.seq, updated_at = "
                      "excluded.updated_at")};
    s->bindNoCopy(1, consumer);
    s->bind(2, to_db(sequence));
    s->bind(3, rfc3339_now());
    s->exec();
  } catch (const SQLite::Exception& e) {
    impl_->fail("saving the checkpoint of consumer '" + consumer + "'", e);
  }
}

std::uint64_t journal_store::park(const std::string& consumer, std::uint64_t sequence,
                                  const std::string& reason, std::uint32_t attempts,
                                  const std::string& last_error) {
  try {
    statement_use s{impl_->cached(impl_->insert_dead_letter,
                                  "INSERT INTO dead_letters(consumer, seq, reason, attempts, "
                                  "last_error, parked_at) VALUES (?, ?, ?, ?, ?, ?)")};
    s->bindNoCopy(1, consumer);
    s->bind(2, to_db(sequence));
    s->bindNoCopy(3, reason);
    s->bind(4, static_cast<std::int64_t>(attempts));
    s->bindNoCopy(5, last_error);
    s->bind(6, rfc3339_now());
    s->exec();
    return static_cast<std::uint64_t>(impl_->db.getLastInsertRowid());
  } catch (const SQLite::Exception& e) {
    impl_->fail("parking event " + std::to_string(sequence) + " for consumer '" + consumer + "'",
                e);
  }
}

std::vector<dead_letter> journal_store::dead_letters(const std::string& consumer, std::size_t limit,
                                                     std::uint64_t after_id) {
  std::vector<dead_letter> out;
  if (limit == 0 || after_id >= max_db_integer)
    return out;
  try {
    statement_use s{impl_->cached(
        impl_->list_dead_letters,
        "SELECT id, consumer, seq, reason, attempts, last_error, parked_at FROM dead_letters "
        "WHERE (?1 = '' OR consumer = ?1) AND id > ?2 ORDER BY id LIMIT ?3")};
    s->bindNoCopy(1, consumer);
    s->bind(2, to_db(after_id));
    s->bind(3, to_db(limit));
    while (s->executeStep())
      out.push_back(dead_letter_from(*s));
  } catch (const SQLite::Exception& e) {
    impl_->fail("listing dead letters", e);
  }
  return out;
}

std::optional<dead_letter> journal_store::find_dead_letter(std::uint64_t id) {
  if (id > max_db_integer)
    return std::nullopt;
  try {
    statement_use s{impl_->cached(impl_->get_dead_letter,
                                  "SELECT id, consumer, seq, reason, attempts, last_error, "
                                  "parked_at FROM dead_letters WHERE id = ?")};
    s->bind(1, to_db(id));
    if (!s->executeStep())
      return std::nullopt;
    return dead_letter_from(*s);
  } catch (const SQLite::Exception& e) {
    impl_->fail("reading dead letter " + std::to_string(id), e);
  }
}

bool journal_store::remove_dead_letter(std::uint64_t id) {
  if (id > max_db_integer)
    return false;
  try {
    statement_use s{
        impl_->cached(impl_->delete_dead_letter, "DELETE FROM dead_letters WHERE id = ?")};
    s->bind(1, to_db(id));
    return s->exec() == 1;
  } catch (const SQLite::Exception& e) {
    impl_->fail("removing dead letter " + std::to_string(id), e);
  }
}

std::int64_t journal_store::set_max_page_count(std::int64_t pages) {
  try {
    return impl_->db.execAndGet("PRAGMA max_page_count=" + std::to_string(pages)).getInt64();
  } catch (const SQLite::Exception& e) {
    impl_->fail("setting max_page_count", e);
  }
}

}  // namespace switchboard::adapters::sqlite

namespace switchboard::ports {

std::unique_ptr<journal_storage> open_journal_storage(const journal_options& options) {
  return std::make_unique<adapters::sqlite::journal_store>(options);
}

}  // namespace switchboard::ports
