// Tests for the journal's SQLite storage (src/adapters/sqlite/journal_store.cpp) against real
// database files, each test in a fresh temporary directory.

#include "adapters/sqlite/journal_store.hpp"

#include "core/time.hpp"
#include "switchboard/event.hpp"

#include <SQLiteCpp/SQLiteCpp.h>

#include <catch2/catch.hpp>

#include "support/temp_dir.hpp"

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace fs = std::filesystem;
using namespace switchboard;
using namespace switchboard::adapters::sqlite;

namespace {

using switchboard::testing::temp_dir;

journal_options writer_options(const std::string& path) {
  journal_options o;
  o.path = path;
  return o;
}

journal_options reader_options(const std::string& path) {
  journal_options o;
  o.path = path;
  o.read_only = true;
  return o;
}

/// An event as the runtime hands it to the journal: validated, with a time.
event make_event(const std::string& id, const std::string& time = "2026-11-23T14:00:00Z",
                 std::size_t padding = 0) {
  event ev;
  ev.id = id;
  ev.source = "tests/journal";
  ev.type = "application.status_changed";
  ev.time = time;
  ev.entity_kind = "application";
  ev.entity_id = "A-" + id;
  ev.entity_version = 7;
  ev.correlation_id = "c-" + id;
  ev.data["status"] = "approved";
  ev.data["note"] = std::string(padding, 'x');
  ev.extensions["tenant"] = "acme";
  return ev;
}

std::vector<event> make_events(int first, int count, std::size_t padding = 0) {
  std::vector<event> events;
  for (int i = first; i < first + count; ++i)
    events.push_back(make_event("e-" + std::to_string(i), "2026-11-23T14:00:00Z", padding));
  return events;
}

std::vector<std::string> ids_of(const std::vector<event>& events) {
  std::vector<std::string> ids;
  for (const auto& ev : events)
    ids.push_back(ev.id);
  return ids;
}

std::vector<std::uint64_t> sequences_of(const std::vector<event>& events) {
  std::vector<std::uint64_t> seqs;
  for (const auto& ev : events)
    seqs.push_back(ev.sequence.value_or(0));
  return seqs;
}

}  // namespace

TEST_CASE("appended events read back unchanged, with sequences 1..N in order", "[journal_store]") {
  temp_dir dir;
  journal_store store(writer_options(dir.file("journal.db")));
  CHECK(store.last_sequence() == 0);
  CHECK(store.read_after(0, 100).empty());

  auto events = make_events(1, 5);
  events[2].sequence = 999;  // a sequence from elsewhere (e.g. a replay) is not kept
  const auto outcomes = store.append(events);

  REQUIRE(outcomes.size() == 5);
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    CHECK(outcomes[i].status == append_status::accepted);
    CHECK(outcomes[i].sequence == i + 1);
    CHECK(events[i].sequence == i + 1);
  }
  CHECK(store.last_sequence() == 5);

  const auto read = store.read_after(0, 100);
  REQUIRE(read.size() == 5);
  for (std::size_t i = 0; i < read.size(); ++i)
    CHECK(to_json(read[i]) == to_json(events[i]));  // every attribute, the data and sequence

  {
    // The columns other tools query; the body leaves the sequence to `seq`.
    SQLite::Database raw(dir.file("journal.db"), SQLite::OPEN_READONLY);
    SQLite::Statement row(raw,
                          "SELECT source, id, entity_kind, entity_id, entity_version, "
                          "time_us, body FROM events WHERE seq = 3");
    REQUIRE(row.executeStep());
    CHECK(row.getColumn(0).getString() == "tests/journal");
    CHECK(row.getColumn(1).getString() == "e-3");
    CHECK(row.getColumn(2).getString() == "application");
    CHECK(row.getColumn(3).getString() == "A-e-3");
    CHECK(row.getColumn(4).getInt64() == 7);
    CHECK(row.getColumn(5).getInt64() == core::rfc3339_to_unix_micros("2026-11-23T14:00:00Z"));
    CHECK_THAT(row.getColumn(6).getString(), !Catch::Contains("journalsequence"));
  }

  CHECK(sequences_of(store.read_after(2, 2)) == std::vector<std::uint64_t>{3, 4});
  CHECK(sequences_of(store.read_after(4, 100)) == std::vector<std::uint64_t>{5});
  CHECK(store.read_after(5, 100).empty());
  CHECK(store.read_after(0, 0).empty());

  auto more = make_events(6, 2);
  store.append(more);
  CHECK(sequences_of(store.read_after(0, 100)) == std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7});
}

TEST_CASE("a row that cannot be decoded is reported apart, naming its sequence, not thrown",
          "[journal_store]") {
  temp_dir dir;
  const auto path = (dir.path / "journal.db").string();
  journal_store store{writer_options(path)};
  auto events = make_events(1, 4);
  store.append(events);
  {
    // As a switchboard that accepted 1e400 wrote it.
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    CHECK(db.exec(R"(UPDATE events SET body = replace(body, '"status":"approved"', )"
                  R"('"status":Infinity') WHERE seq = 2)") == 1);
  }
  journal_store reader{reader_options(path)};
  const auto page = reader.read_page(0, 3);
  CHECK(ids_of(page.events) == std::vector<std::string>{"e-1", "e-3"});
  REQUIRE(page.unreadable.size() == 1);
  const auto& row = page.unreadable.front();
  CHECK(row.sequence == 2);
  CHECK(row.id == "e-2");
  CHECK(row.source == "tests/journal");
  CHECK(row.type == "application.status_changed");
  CHECK(row.entity_kind == "application");
  CHECK(row.entity_id == "A-e-2");
  CHECK_THAT(row.reason, Catch::Contains("event 2") && Catch::Contains("not valid JSON"));
  CHECK(page.last_sequence() == 3);
  CHECK(ids_of(reader.read_page(page.last_sequence(), 10).events) ==
        std::vector<std::string>{"e-4"});
  // read_after keeps its contract: events only, or an error naming the row.
  CHECK_THROWS_WITH(reader.read_after(0, 10), Catch::Contains("event 2"));
  CHECK(ids_of(reader.read_after(2, 10)) == std::vector<std::string>{"e-3", "e-4"});
}

TEST_CASE("duplicates by (source, id) are stored once and report the original's sequence",
          "[journal_store]") {
  temp_dir dir;
  journal_store store(writer_options(dir.file("journal.db")));
  auto first = make_events(1, 2);  // e-1 -> 1, e-2 -> 2
  store.append(first);

  std::vector<event> batch{make_event("e-3"), make_event("e-1"), make_event("e-3"),
                           make_event("e-4")};
  batch[1].data["status"] = "changed";  // a redelivery with other content keeps the original
  auto other_source = make_event("e-1");
  other_source.source = "tests/other";  // same id, other producer: not a duplicate
  batch.push_back(other_source);

  const auto outcomes = store.append(batch);
  REQUIRE(outcomes.size() == 5);
  CHECK(outcomes[0].status == append_status::accepted);
  CHECK(outcomes[0].sequence == 3);
  CHECK(outcomes[1].status == append_status::duplicate);  // of an earlier call
  CHECK(outcomes[1].sequence == 1);
  CHECK(outcomes[2].status == append_status::duplicate);  // of an earlier event in this call
  CHECK(outcomes[2].sequence == 3);
  CHECK(outcomes[3].status == append_status::accepted);
  CHECK(outcomes[3].sequence == 4);  // duplicates use no sequence
  CHECK(outcomes[4].status == append_status::accepted);
  CHECK(outcomes[4].sequence == 5);

  const auto read = store.read_after(0, 100);
  CHECK(ids_of(read) == std::vector<std::string>{"e-1", "e-2", "e-3", "e-4", "e-1"});
  CHECK(sequences_of(read) == std::vector<std::uint64_t>{1, 2, 3, 4, 5});
  CHECK(read[0].data.at("status") == "approved");
  CHECK(read[4].source == "tests/other");

  auto again = make_events(1, 2);
  const auto repeated = store.append(again);
  CHECK(repeated[0].status == append_status::duplicate);
  CHECK(repeated[1].status == append_status::duplicate);
  CHECK(repeated[1].sequence == 2);
  CHECK(store.last_sequence() == 5);
}

TEST_CASE("a full disk fails the whole batch, after space frees, appends continue contiguously",
          "[journal_store]") {
  temp_dir dir;
  auto options = writer_options(dir.file("journal.db"));
  options.max_page_count = 64;  // 256 KiB with 4 KiB pages
  journal_store store(options);

  auto small = make_events(1, 2, 100);
  store.append(small);
  store.save_checkpoint("crm", 2);

  auto big = make_events(3, 20, 20'000);  // about 400 KB: cannot fit
  try {
    store.append(big);
    FAIL("appending past max_page_count did not throw");
  } catch (const store_error& e) {
    CHECK(e.which() == store_error::kind::disk_full);
    CHECK(e.retryable());
    const std::string message = e.what();
    CHECK_THAT(message, Catch::Contains(options.path));
    CHECK_THAT(message, Catch::Contains("free disk space"));
  }

  // Nothing of the failed batch, everything from before.
  CHECK(store.last_sequence() == 2);
  CHECK(ids_of(store.read_after(0, 100)) == std::vector<std::string>{"e-1", "e-2"});
  for (const auto& ev : big)
    CHECK_FALSE(ev.sequence.has_value());
  CHECK(store.checkpoint("crm") == 2);

  CHECK(store.set_max_page_count(100'000) == 100'000);
  const auto outcomes = store.append(big);
  REQUIRE(outcomes.size() == 20);
  CHECK(outcomes.front().status == append_status::accepted);
  CHECK(outcomes.front().sequence == 3);  // nothing was used up by the failed attempt
  CHECK(outcomes.back().sequence == 22);
  const auto read = store.read_after(2, 100);
  REQUIRE(read.size() == 20);
  CHECK(read.front().data.at("note").as_string().size() == 20'000);
}

TEST_CASE("an event without an RFC 3339 time is refused and fails its batch", "[journal_store]") {
  temp_dir dir;
  journal_store store(writer_options(dir.file("journal.db")));
  std::vector<event> batch{make_event("e-1"), make_event("e-2", "yesterday")};
  try {
    store.append(batch);
    FAIL("an event with time 'yesterday' was stored");
  } catch (const store_error& e) {
    CHECK(e.which() == store_error::kind::other);
    CHECK_THAT(std::string(e.what()), Catch::Contains("e-2") && Catch::Contains("yesterday"));
  }
  CHECK(store.last_sequence() == 0);
  CHECK_FALSE(batch[0].sequence.has_value());

  auto good = make_events(1, 1);
  CHECK(store.append(good).front().sequence == 1);
}

TEST_CASE("a locked journal reports busy and loses nothing once the lock is gone",
          "[journal_store]") {
  temp_dir dir;
  auto options = writer_options(dir.file("journal.db"));
  options.busy_timeout_ms = 50;
  journal_store store(options);
  auto first = make_events(1, 1);
  store.append(first);

  SQLite::Database other(options.path, SQLite::OPEN_READWRITE);
  other.exec("BEGIN IMMEDIATE");  // another writer holds the write lock
  auto batch = make_events(2, 3);
  try {
    store.append(batch);
    FAIL("append succeeded while another connection held the write lock");
  } catch (const store_error& e) {
    CHECK(e.which() == store_error::kind::busy);
    CHECK(e.retryable());
  }
  other.exec("ROLLBACK");

  const auto outcomes = store.append(batch);
  CHECK(outcomes.front().sequence == 2);
  CHECK(store.last_sequence() == 4);
}

TEST_CASE("reopening the file keeps events, sequences, checkpoints and dead letters",
          "[journal_store]") {
  temp_dir dir;
  const auto path = dir.file("journal.db");
  std::vector<event> written = make_events(1, 3);
  std::uint64_t parked_id = 0;
  {
    journal_store store(writer_options(path));
    store.append(written);
    store.save_checkpoint("crm", 2);
    parked_id = store.park("crm", 3, "terminal", 1, "HTTP 400 from crm: bad field 'status'");
  }
  {
    SQLite::Database raw(path, SQLite::OPEN_READONLY);
    CHECK(raw.execAndGet("PRAGMA user_version").getInt() == 1);  // for later migrations
    CHECK(raw.execAndGet("PRAGMA journal_mode").getString() == "wal");
  }
  {
    journal_store reader(reader_options(path));  // with no writer, e.g. inspecting dead letters
    CHECK(reader.last_sequence() == 3);
    CHECK(reader.dead_letters().size() == 1);
  }

  journal_store store(writer_options(path));
  CHECK(store.last_sequence() == 3);
  const auto read = store.read_after(0, 100);
  REQUIRE(read.size() == 3);
  for (std::size_t i = 0; i < read.size(); ++i)
    CHECK(to_json(read[i]) == to_json(written[i]));
  CHECK(store.checkpoint("crm") == 2);
  const auto parked = store.find_dead_letter(parked_id);
  REQUIRE(parked);
  CHECK(parked->sequence == 3);
  CHECK(parked->last_error == "HTTP 400 from crm: bad field 'status'");

  auto more = make_events(4, 1);
  CHECK(store.append(more).front().sequence == 4);
  auto repeat = make_events(1, 1);  // dedupe survives the restart
  CHECK(store.append(repeat).front().status == append_status::duplicate);
}

TEST_CASE("a read-only connection sees what the writer committed while the writer is open",
          "[journal_store]") {
  temp_dir dir;
  const auto path = dir.file("journal.db");
  journal_store writer(writer_options(path));
  auto first = make_events(1, 2);
  writer.append(first);
  writer.save_checkpoint("crm", 1);

  journal_store reader(reader_options(path));
  CHECK(reader.last_sequence() == 2);
  CHECK(ids_of(reader.read_after(0, 100)) == std::vector<std::string>{"e-1", "e-2"});
  CHECK(reader.checkpoint("crm") == 1);

  auto second = make_events(3, 2);
  writer.append(second);
  writer.park("crm", 3, "retries exhausted", 5, "HTTP 503");
  CHECK(reader.last_sequence() == 4);
  CHECK(ids_of(reader.read_after(2, 100)) == std::vector<std::string>{"e-3", "e-4"});
  CHECK(reader.dead_letters().size() == 1);

  auto refused = make_events(5, 1);
  CHECK_THROWS_AS(reader.append(refused), store_error);
  CHECK(writer.last_sequence() == 4);
}

TEST_CASE("opening a missing or foreign file fails and names the path", "[journal_store]") {
  temp_dir dir;
  const auto missing_dir = dir.file("no-such-dir/journal.db");
  try {
    journal_store store(writer_options(missing_dir));
    FAIL("opened a journal in a missing directory");
  } catch (const store_error& e) {
    CHECK_THAT(std::string(e.what()), Catch::Contains(missing_dir));
  }
  const auto not_a_journal = dir.file("notes.txt");
  {
    std::ofstream out(not_a_journal);
    out << std::string(8192, 'x');
  }
  try {
    journal_store store(writer_options(not_a_journal));
    FAIL("opened a text file as a journal");
  } catch (const store_error& e) {
    CHECK(e.which() == store_error::kind::other);
    CHECK_THAT(std::string(e.what()), Catch::Contains(not_a_journal));
  }
  // A reader does not create the file.
  CHECK_THROWS_AS(journal_store(reader_options(dir.file("absent.db"))), store_error);
  CHECK_FALSE(fs::exists(dir.file("absent.db")));
}

TEST_CASE("checkpoints start at 0, update and persist per consumer", "[journal_store]") {
  temp_dir dir;
  const auto path = dir.file("journal.db");
  {
    journal_store store(writer_options(path));
    CHECK(store.checkpoint("crm") == 0);
    store.save_checkpoint("crm", 10);
    store.save_checkpoint("crm", 12);
    store.save_checkpoint("twilio", 3);
    CHECK(store.checkpoint("crm") == 12);
    CHECK(store.checkpoint("twilio") == 3);
    CHECK(store.checkpoint("unknown") == 0);
  }
  journal_store store(writer_options(path));
  CHECK(store.checkpoint("crm") == 12);
  CHECK(store.checkpoint("twilio") == 3);
}

TEST_CASE("dead letters are parked, listed by consumer and page, found and removed",
          "[journal_store]") {
  temp_dir dir;
  journal_store store(writer_options(dir.file("journal.db")));
  CHECK(store.dead_letters().empty());

  const auto a = store.park("crm", 5, "terminal", 1, "HTTP 400");
  const auto b = store.park("twilio", 6, "retries exhausted", 8, "HTTP 429");
  const auto c = store.park("crm", 9, "retries exhausted", 8, "timeout");
  CHECK(a < b);
  CHECK(b < c);

  const auto all = store.dead_letters();
  REQUIRE(all.size() == 3);
  CHECK(all[0].id == a);  // oldest first
  CHECK(all[2].id == c);
  CHECK(all[1].consumer == "twilio");
  CHECK(all[1].sequence == 6);
  CHECK(all[1].reason == "retries exhausted");
  CHECK(all[1].attempts == 8);
  CHECK(all[1].last_error == "HTTP 429");
  CHECK(core::rfc3339_to_unix_micros(all[1].parked_at).has_value());

  const auto crm = store.dead_letters("crm");
  REQUIRE(crm.size() == 2);
  CHECK(crm[0].id == a);
  CHECK(crm[1].id == c);
  CHECK(store.dead_letters("nobody").empty());

  const auto page1 = store.dead_letters({}, 2);
  REQUIRE(page1.size() == 2);
  const auto page2 = store.dead_letters({}, 2, page1.back().id);
  REQUIRE(page2.size() == 1);
  CHECK(page2[0].id == c);
  CHECK(store.dead_letters("crm", 100, a).size() == 1);

  const auto found = store.find_dead_letter(b);
  REQUIRE(found);
  CHECK(found->consumer == "twilio");
  CHECK_FALSE(store.find_dead_letter(c + 100));

  CHECK(store.remove_dead_letter(b));
  CHECK_FALSE(store.remove_dead_letter(b));
  CHECK_FALSE(store.find_dead_letter(b));
  CHECK(store.dead_letters().size() == 2);
}

TEST_CASE("sequence_before_time gives the replay start for a time", "[journal_store]") {
  temp_dir dir;
  journal_store store(writer_options(dir.file("journal.db")));
  CHECK(store.sequence_before_time("2026-11-23T14:00:00Z") == 0u);  // empty journal

  std::vector<event> events{make_event("e-1", "2026-11-23T14:00:10Z"),
                            make_event("e-2", "2026-11-23T14:00:20.5Z"),
                            make_event("e-3", "2026-11-23T15:00:30+01:00")};  // 14:00:30Z
  store.append(events);

  CHECK(store.sequence_before_time("2026-11-23T14:00:00Z") == 0u);    // before all
  CHECK(store.sequence_before_time("2026-11-23T14:00:10Z") == 0u);    // at the first
  CHECK(store.sequence_before_time("2026-11-23T14:00:15Z") == 1u);    // between
  CHECK(store.sequence_before_time("2026-11-23T14:00:20.5Z") == 1u);  // at the second
  CHECK(store.sequence_before_time("2026-11-23T14:00:20.500001Z") == 2u);
  CHECK(store.sequence_before_time("2026-11-23T09:00:25-05:00") == 2u);  // 14:00:25Z
  CHECK(store.sequence_before_time("2026-11-23T14:00:31Z") == 3u);       // after all
  CHECK_FALSE(store.sequence_before_time("yesterday"));
  CHECK_FALSE(store.sequence_before_time("2026-11-23"));

  // read_after of the answer replays from that time.
  const auto from = store.sequence_before_time("2026-11-23T14:00:15Z");
  REQUIRE(from);
  CHECK(ids_of(store.read_after(*from, 100)) == std::vector<std::string>{"e-2", "e-3"});
}
