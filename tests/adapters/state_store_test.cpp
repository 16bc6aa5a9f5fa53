// Tests for the entity-state store and the per-target ledger (src/adapters/sqlite/state_store.cpp)
// against real SQLite files, each test in a fresh temporary directory.

#include "adapters/sqlite/state_store.hpp"

#include "adapters/sqlite/journal_store.hpp"  // store_error

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "support/temp_dir.hpp"

#include <atomic>
#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace switchboard::adapters::sqlite;
namespace json = boost::json;

namespace {

using switchboard::testing::temp_dir;
using outcome = state_store::put_outcome;

json::object obj(
    std::initializer_list<std::pair<json::string_view, json::value_ref>> members = {}) {
  return json::object(members);
}

std::set<std::string> ids_of(const std::vector<stored_state>& states) {
  std::set<std::string> out;
  for (auto& s : states)
    out.insert(s.kind + "/" + s.id);
  return out;
}

}  // namespace

TEST_CASE("state_store: a new entity is stored with revision 1 and survives reopening",
          "[state_store]") {
  temp_dir dir;
  const auto path = dir.file("state.db");
  {
    state_store store(path);
    CHECK_FALSE(store.load("application", "A-1"));
    auto r = store.put("application", "A-1", 7, 12, obj({{"status", "approved"}}),
                       obj({{"status", "approved"}, {"manager", nullptr}}));
    REQUIRE(r.outcome == outcome::stored);
    REQUIRE(r.state);
    CHECK(r.state->revision == 1);
    CHECK(r.state->version == 7);
    CHECK(r.state->sequence == 12);
  }
  state_store reopened(path);
  auto st = reopened.load("application", "A-1");
  REQUIRE(st);
  CHECK(st->kind == "application");
  CHECK(st->id == "A-1");
  CHECK(st->version == 7);
  CHECK(st->revision == 1);
  CHECK(st->sequence == 12);
  CHECK(st->base == obj({{"status", "approved"}}));
  CHECK(st->state == obj({{"status", "approved"}, {"manager", nullptr}}));
  CHECK(st->updated_at.size() >= 20);
}

TEST_CASE("state_store: a stale or repeated version never overwrites a newer one",
          "[state_store]") {
  temp_dir dir;
  state_store store(dir.file("state.db"));
  REQUIRE(store.put("application", "A-1", 5, 10, obj({{"v", 5}}), obj({{"v", 5}})).outcome ==
          outcome::stored);

  auto older = store.put("application", "A-1", 3, 11, obj({{"v", 3}}), obj({{"v", 3}}));
  CHECK(older.outcome == outcome::stale);
  REQUIRE(older.state);
  CHECK(older.state->base == obj({{"v", 5}}));
  CHECK(older.state->revision == 1);

  CHECK(store.put("application", "A-1", 5, 12, obj({{"v", 55}}), obj({{"v", 55}})).outcome ==
        outcome::stale);

  auto newer = store.put("application", "A-1", 6, 13, obj({{"v", 6}}), obj({{"v", 6}}));
  CHECK(newer.outcome == outcome::stored);
  CHECK(newer.state->revision == 2);
  CHECK(store.load("application", "A-1")->base == obj({{"v", 6}}));
}

TEST_CASE("state_store: events without a version apply in journal order and keep the version",
          "[state_store]") {
  temp_dir dir;
  state_store store(dir.file("state.db"));
  REQUIRE(store.put("lead", "L-1", std::nullopt, 4, obj({{"n", 4}}), obj({{"n", 4}})).outcome ==
          outcome::stored);
  // Redelivered (sequence not above the stored one): already applied.
  CHECK(store.put("lead", "L-1", std::nullopt, 4, obj({{"n", 0}}), obj({{"n", 0}})).outcome ==
        outcome::stale);
  CHECK(store.put("lead", "L-1", std::nullopt, 3, obj({{"n", 3}}), obj({{"n", 3}})).outcome ==
        outcome::stale);
  CHECK(store.put("lead", "L-1", 2, 5, obj({{"n", 5}}), obj({{"n", 5}})).outcome ==
        outcome::stored);
  auto unversioned = store.put("lead", "L-1", std::nullopt, 6, obj({{"n", 6}}), obj({{"n", 6}}));
  REQUIRE(unversioned.outcome == outcome::stored);
  CHECK(unversioned.state->version == 2);  // kept: a redelivered version-2 event stays stale
  CHECK(unversioned.state->sequence == 6);
  CHECK(store.put("lead", "L-1", 2, 5, obj({{"n", 5}}), obj({{"n", 5}})).outcome == outcome::stale);
  CHECK(store.load("lead", "L-1")->revision == 3);
}

TEST_CASE("state_store: put with an expected revision and replace_state are compare-and-set",
          "[state_store]") {
  temp_dir dir;
  state_store store(dir.file("state.db"));

  SECTION("expected revision 0 means 'not stored yet'") {
    CHECK(store.put("a", "1", 1, 1, obj({{"x", 1}}), obj({{"x", 1}}), 0).outcome ==
          outcome::stored);
    auto again = store.put("a", "1", 2, 2, obj({{"x", 2}}), obj({{"x", 2}}), 0);
    CHECK(again.outcome == outcome::conflict);
    CHECK(again.state->base == obj({{"x", 1}}));
    auto expected = store.put("a", "1", 2, 2, obj({{"x", 2}}), obj({{"x", 2}}), 1);
    CHECK(expected.outcome == outcome::stored);
    CHECK(expected.state->revision == 2);
    CHECK(expected.state->base == obj({{"x", 2}}));
    CHECK(store.put("a", "1", 3, 3, obj({{"x", 3}}), obj({{"x", 3}}), 1).outcome ==
          outcome::conflict);
    // The expected revision and the version rule both hold.
    CHECK(store.put("a", "1", 1, 3, obj({{"x", 0}}), obj({{"x", 0}}), 2).outcome == outcome::stale);
    CHECK(store.put("a", "2", 1, 1, obj(), obj(), 4).outcome == outcome::conflict);
    CHECK_FALSE(store.load("a", "2"));
  }

  SECTION("a rebuild's state replaces only the revision it read") {
    REQUIRE(store.put("a", "1", 1, 1, obj({{"x", 1}}), obj({{"x", 1}})).outcome == outcome::stored);
    auto rebuilt = store.replace_state("a", "1", 1, obj({{"x", 1}, {"looked", "up"}}));
    REQUIRE(rebuilt);
    CHECK(rebuilt->revision == 2);
    CHECK(rebuilt->base == obj({{"x", 1}}));  // base, version and sequence stay
    CHECK(rebuilt->version == 1);
    CHECK(rebuilt->state == obj({{"x", 1}, {"looked", "up"}}));

    // A live update lands between the rebuild's read and its write: the rebuild loses.
    REQUIRE(store.put("a", "1", 2, 2, obj({{"x", 2}}), obj({{"x", 2}})).outcome == outcome::stored);
    CHECK_FALSE(store.replace_state("a", "1", 2, obj({{"x", 1}, {"looked", "again"}})));
    CHECK(store.load("a", "1")->state == obj({{"x", 2}}));
    CHECK(store.load("a", "1")->revision == 3);

    // And a live put that read revision 3 loses to a rebuild that stored revision 4.
    REQUIRE(store.replace_state("a", "1", 3, obj({{"x", 2}, {"looked", "up"}})));
    CHECK(store.put("a", "1", 3, 3, obj({{"x", 3}}), obj({{"x", 3}}), 3).outcome ==
          outcome::conflict);
    CHECK_FALSE(store.replace_state("a", "missing", 1, obj()));
  }
}

TEST_CASE("state_store: entities pages through every entity, optionally of one kind",
          "[state_store]") {
  temp_dir dir;
  state_store store(dir.file("state.db"));
  for (int i = 0; i < 25; ++i) {
    store.put("application", "A-" + std::to_string(100 + i), 1, 1, obj(), obj());
    store.put("worker", "W-" + std::to_string(100 + i), 1, 1, obj(), obj());
  }
  CHECK(store.entity_count() == 50);
  CHECK(store.entity_count("worker") == 25);
  CHECK(store.entity_count("nothing") == 0);

  auto page_all = [&](const std::string& kind) {
    std::vector<stored_state> all;
    std::string after_kind, after_id;
    for (;;) {
      auto page = store.entities(kind, 7, after_kind, after_id);
      if (page.empty())
        break;
      after_kind = page.back().kind;
      after_id = page.back().id;
      all.insert(all.end(), page.begin(), page.end());
    }
    return all;
  };
  auto workers = page_all("worker");
  CHECK(workers.size() == 25);
  CHECK(ids_of(workers).size() == 25);
  for (auto& w : workers)
    CHECK(w.kind == "worker");
  CHECK(page_all("").size() == 50);
}

TEST_CASE("state_store: entities_with finds a kind's entities by values in their base",
          "[state_store]") {
  temp_dir dir;
  state_store store(dir.file("state.db"));
  std::int64_t seq = 0;
  auto put = [&](const std::string& kind, const std::string& id, json::object base) {
    REQUIRE(
        store.put(kind, id, std::nullopt, static_cast<std::uint64_t>(++seq), base, base).outcome ==
        outcome::stored);
  };
  // Matched as the lookup cache keys them (core::scalar_text): by text.
  put("application", "int", obj({{"managerId", 7}}));
  put("application", "string", obj({{"managerId", "7"}}));
  put("application", "whole-real", obj({{"managerId", 7.0}}));
  put("application", "nested", obj({{"manager", {{"id", 7}}}, {"managerId", 1}}));
  put("application", "fraction", obj({{"managerId", 7.5}}));
  put("application", "other", obj({{"managerId", 8}}));
  put("application", "null", obj({{"managerId", nullptr}}));
  put("application", "object", obj({{"managerId", {{"id", 7}}}}));
  put("application", "array", json::parse(R"({"managerId":[7]})").as_object());
  put("application", "missing", obj({{"status", "new"}}));
  put("application", "flag", obj({{"vip", true}, {"managerId", 7}}));
  put("application", "odd-name", obj({{"a.b", 7}, {"x[0]", "7"}, {"$", 7}}));
  put("worker", "int", obj({{"managerId", 7}}));  // another kind

  auto all = [&](const std::vector<std::string>& paths, const std::vector<std::string>& texts,
                 const std::string& kind = "application") {
    std::vector<stored_state> out;
    std::string after;
    for (;;) {
      auto page = store.entities_with(kind, paths, texts, 2, after);
      REQUIRE(page.size() <= 2);
      if (page.empty())
        break;
      after = page.back().id;
      out.insert(out.end(), page.begin(), page.end());
    }
    return out;
  };
  using ids = std::set<std::string>;
  CHECK(ids_of(all({"managerId"}, {"7"})) ==
        ids{"application/int", "application/string", "application/whole-real", "application/flag"});
  CHECK(ids_of(all({"managerId"}, {"8"})) == ids{"application/other"});
  CHECK(ids_of(all({"managerId"}, {"7.5"})).empty());  // fractions have no text
  CHECK(ids_of(all({"manager.id"}, {"7"})) == ids{"application/nested"});
  CHECK(ids_of(all({"vip"}, {"true"})) == ids{"application/flag"});
  CHECK(ids_of(all({"vip", "managerId"}, {"true", "7"})) == ids{"application/flag"});
  CHECK(ids_of(all({"vip", "managerId"}, {"true", "8"})).empty());
  CHECK(ids_of(all({"managerId"}, {"7"}, "worker")) == ids{"worker/int"});
  // Member names are quoted, so path syntax in them is just text ...
  CHECK(ids_of(all({"x[0]"}, {"7"})) == ids{"application/odd-name"});
  CHECK(ids_of(all({"$"}, {"7"})) == ids{"application/odd-name"});
  // ... and values are bound: a quote or SQL in one is only a value that matches nothing.
  CHECK(ids_of(all({"managerId"}, {"7' OR '1'='1"})).empty());

  CHECK(state_store::sqlite_json_path("accountManager.id") == "$.\"accountManager\".\"id\"");
  CHECK_FALSE(state_store::sqlite_json_path("a..b"));
  CHECK_FALSE(state_store::sqlite_json_path(""));
  CHECK_FALSE(state_store::sqlite_json_path("a\"b"));
  CHECK_THROWS_WITH(store.entities_with("application", {"say \"hi\""}, {"7"}, 10),
                    Catch::Contains("the dotted path \"say \"hi\"\" cannot be looked up"));
  CHECK_THROWS_AS(store.entities_with("application", {"a", "b"}, {"7"}, 10), std::invalid_argument);
}

TEST_CASE("state_store: the ledger tracks per target what is unwritten, written and dead",
          "[state_store]") {
  temp_dir dir;
  state_store store(dir.file("state.db"));
  for (int i = 0; i < 5; ++i)
    store.put("application", "A-" + std::to_string(i), 1, 1, obj(), obj());
  store.put("worker", "W-1", 1, 1, obj(), obj());

  // A target that never wrote anything has everything of its kind pending.
  CHECK(ids_of(store.unwritten("sync", "application", 100)) ==
        std::set<std::string>{"application/A-0", "application/A-1", "application/A-2",
                              "application/A-3", "application/A-4"});
  CHECK(store.counts("sync", "application").pending == 5);

  store.mark_written("sync", "application", "A-0", 1);
  store.mark_written("sync", "application", "A-1", 1);
  store.mark_dead("sync", "application", "A-2", 1, "HTTP 400: bad document");
  CHECK(ids_of(store.unwritten("sync", "application", 100)) ==
        std::set<std::string>{"application/A-3", "application/A-4"});
  auto c = store.counts("sync", "application");
  CHECK(c.pending == 2);
  CHECK(c.written == 2);
  CHECK(c.dead == 1);
  auto dead = store.dead_writes("sync", 10);
  REQUIRE(dead.size() == 1);
  CHECK(dead[0].kind == "application");
  CHECK(dead[0].id == "A-2");
  CHECK(dead[0].revision == 1);
  CHECK(dead[0].error == "HTTP 400: bad document");

  // Other targets are independent.
  CHECK(store.unwritten("taskrouter", "application", 100).size() == 5);
  CHECK(store.unwritten("taskrouter", "worker", 100).size() == 1);

  // A newer revision is pending again, also for a dead entity.
  store.put("application", "A-0", 2, 2, obj({{"s", 2}}), obj({{"s", 2}}));
  store.put("application", "A-2", 2, 2, obj({{"s", 2}}), obj({{"s", 2}}));
  auto pending = store.unwritten("sync", "application", 100);
  CHECK(ids_of(pending) == std::set<std::string>{"application/A-0", "application/A-2",
                                                 "application/A-3", "application/A-4"});
  for (auto& p : pending)
    if (p.id == "A-0")
      CHECK(p.revision == 2);
  CHECK(store.dead_writes("sync", 10).empty());  // A-2's newer revision is being retried
  CHECK(store.counts("sync", "application").dead == 0);
  store.mark_dead("sync", "application", "A-2", 2, "HTTP 400 again");
  REQUIRE(store.dead_writes("sync", 10).size() == 1);
  CHECK(store.dead_writes("sync", 10)[0].error == "HTTP 400 again");
  // Writing an old revision never lowers the record nor hides the new one.
  store.mark_written("sync", "application", "A-0", 1);
  CHECK(store.unwritten("sync", "application", 100).size() == 3);
  store.mark_written("sync", "application", "A-2", 2);
  CHECK(store.dead_writes("sync", 10).empty());
  CHECK(store.counts("sync", "application").dead == 0);

  // New entities show up for registered targets.
  store.put("application", "A-9", 1, 1, obj(), obj());
  CHECK(store.unwritten("sync", "application", 100).size() == 4);

  // forget_written makes everything of the kind pending again (rebuild's re-push).
  store.forget_written("sync", "application");
  CHECK(store.counts("sync", "application").pending == 6);
  store.mark_written("sync", "application", "A-9", 1);
  store.forget_written("sync", "application", "A-1");
  CHECK(store.counts("sync", "application").pending == 5);
  CHECK(store.counts("sync", "application").written == 1);
}

TEST_CASE("state_store: unwritten pages by (kind, id) and stays cheap on a large table",
          "[state_store]") {
  temp_dir dir;
  state_store store(dir.file("state.db"));
  constexpr int entities = 5000;
  for (int i = 0; i < entities; ++i)
    store.put("application", "A-" + std::to_string(10000 + i), 1, 1, obj(), obj());

  std::set<std::string> seen;
  std::string after_kind, after_id;
  for (;;) {
    auto page = store.unwritten("sync", "application", 500, after_kind, after_id);
    if (page.empty())
      break;
    for (auto& s : page) {
      CHECK(seen.insert(s.id).second);
      store.mark_written("sync", s.kind, s.id, s.revision);
    }
    after_kind = page.back().kind;
    after_id = page.back().id;
  }
  CHECK(seen.size() == entities);
  CHECK(store.unwritten("sync", "application", 10).empty());

  store.put("application", "A-12345", 2, 2, obj(), obj());
  auto pending = store.unwritten("sync", "application", 10);
  REQUIRE(pending.size() == 1);
  CHECK(pending[0].id == "A-12345");
  CHECK(store.counts("sync", "application").written == entities - 1);
}

TEST_CASE("state_store: live puts and rebuild CAS from several threads keep the newest state",
          "[state_store]") {
  temp_dir dir;
  state_store store(dir.file("state.db"));
  constexpr int versions = 200;
  std::atomic<bool> done{false};
  std::thread live([&] {
    for (int v = 1; v <= versions; ++v)
      store.put("application", "A-1", v, static_cast<std::uint64_t>(v), obj({{"v", v}}),
                obj({{"v", v}}));
    done = true;
  });
  std::size_t rebuilt = 0;
  while (!done) {
    auto st = store.load("application", "A-1");
    if (!st)
      continue;
    auto state = st->base;
    state["rebuilt"] = true;
    if (store.replace_state("application", "A-1", st->revision, state))
      ++rebuilt;
  }
  live.join();
  auto st = store.load("application", "A-1");
  REQUIRE(st);
  CHECK(st->version == versions);
  CHECK(st->base == obj({{"v", versions}}));
  CHECK(st->state.at("v") == versions);  // a rebuild never wrote an older base's state
  CHECK(st->revision == versions + rebuilt);
}

TEST_CASE("state_store: a file that is not a database is refused with its path", "[state_store]") {
  temp_dir dir;
  const auto path = dir.file("state.db");
  {
    std::ofstream out(path);
    out << "this is not a SQLite database, just some text that is long enough to have a header";
  }
  try {
    state_store store(path);
    FAIL("opened a text file as a state database");
  } catch (const store_error& e) {
    CHECK_THAT(e.what(), Catch::Contains(path));
  }
}

// Figures, not assertions on time: run with `switchboard_tests "[.state_bench]"`.
TEST_CASE("state_store: unwritten on a large, fully written table", "[.state_bench]") {
  temp_dir dir;
  state_store store(dir.file("state.db"));
  constexpr int entities = 100'000;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < entities; ++i)
    store.put("application", "A-" + std::to_string(i), 1, 1, obj({{"status", "new"}}),
              obj({{"status", "new"}}));
  const auto t1 = std::chrono::steady_clock::now();
  std::string after_kind, after_id;
  for (;;) {
    auto page = store.unwritten("sync", "application", 1000, after_kind, after_id);
    if (page.empty())
      break;
    for (auto& s : page)
      store.mark_written("sync", s.kind, s.id, s.revision);
    after_kind = page.back().kind;
    after_id = page.back().id;
  }
  const auto t2 = std::chrono::steady_clock::now();
  store.put("application", "A-4242", 2, 2, obj(), obj());
  constexpr int polls = 1000;
  std::size_t found = 0;
  for (int i = 0; i < polls; ++i)
    found += store.unwritten("sync", "application", 100).size();
  const auto t3 = std::chrono::steady_clock::now();
  CHECK(found == polls);
  const auto secs = [](auto d) { return std::chrono::duration<double>(d).count(); };
  WARN(entities << " puts: " << entities / secs(t1 - t0) << "/s; first push (page + "
                << "mark_written): " << entities / secs(t2 - t1) << " entities/s; unwritten "
                << "with 1 pending of " << entities << ": " << secs(t3 - t2) / polls * 1e6
                << " us per call");
}
