// Entity-state propagation from the bus to the state store (src/actors/state_pipeline.cpp),
// end to end with real parts: a CRM SQLite file made here, the real runtime (journal, bus,
// durable "state" subscription over 2 partitions) and the real state store.

#include "jobs/propagation/state_pipeline.hpp"

#include "engine/bus/async_handler.hpp"

#include "adapters/sqlite/state_store.hpp"
#include "runtime/job_adapters.hpp"
#include "switchboard/runtime.hpp"

#include "support/eventually.hpp"
#include "support/temp_dir.hpp"

#include <SQLiteCpp/SQLiteCpp.h>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using namespace switchboard;
using switchboard::actors::state_pipeline;
using switchboard::adapters::sqlite::state_store;
using switchboard::adapters::sqlite::stored_state;
using switchboard::testing::eventually;
using switchboard::testing::temp_dir;
namespace json = boost::json;

namespace {

/// The enrichment database as the runtime gives it to the pipeline.
ports::open_lookup_database lookup_database() {
  return runtime_parts::propagation_adapters_for(config{}).open_lookups;
}

void make_crm(const std::string& path) {
  SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  db.exec(R"sql(
    CREATE TABLE account_managers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT);
    CREATE TABLE applicants (id TEXT PRIMARY KEY, name TEXT NOT NULL, phone TEXT);
    CREATE TABLE applications (number TEXT PRIMARY KEY, product TEXT NOT NULL, amount REAL);
    INSERT INTO account_managers VALUES (7, 'Ann Smith', 'ann@example.com');
    INSERT INTO account_managers VALUES (8, 'Bob Jones', 'bob@example.com');
    INSERT INTO applicants VALUES ('P-1', 'Carol White', '+15550101');
    INSERT INTO applicants VALUES ('P-2', 'Dan Brown', '+15550102');
    INSERT INTO applications VALUES ('A-1', 'car loan', 12000.5);
    INSERT INTO applications VALUES ('A-2', 'mortgage', 250000);
  )sql");
}

lookup_config make_lookup(std::string name, std::string sql, std::vector<std::string> params,
                          std::string into) {
  lookup_config l;
  l.name = std::move(name);
  l.entity_kind = "application";
  l.sql = std::move(sql);
  l.params = std::move(params);
  l.into = std::move(into);
  return l;
}

config make_config(const temp_dir& dir) {
  config cfg;
  cfg.http.enabled = false;
  cfg.data_dir = dir.path.string();
  cfg.drain_timeout = 10s;
  cfg.supervision.backoff_initial = 1ms;
  cfg.state.pattern = "*";
  cfg.state.partitions = 2;
  cfg.enrichment.database = dir.file("crm.db");
  cfg.enrichment.cache_ttl = 1h;  // expiry is covered by the lookup_cache tests
  auto manager =
      make_lookup("account_manager", "SELECT id, name, email FROM account_managers WHERE id = ?",
                  {"accountManagerId"}, "accountManager");
  manager.invalidated_by = "account_manager.updated";
  manager.invalidation_keys = {"id"};
  cfg.enrichment.lookups.push_back(manager);
  cfg.enrichment.lookups.push_back(make_lookup("applicant",
                                               "SELECT name, phone FROM applicants WHERE id = ?",
                                               {"applicant.id"}, "applicantDetails"));
  cfg.enrichment.lookups.push_back(
      make_lookup("application", "SELECT product, amount FROM applications WHERE number = ?",
                  {"number"}, "crm"));
  return cfg;
}

event app_event(const std::string& event_id, const std::string& entity,
                std::optional<std::uint64_t> version, json::object data,
                std::string type = "application.status_changed") {
  event ev;
  ev.id = event_id;
  ev.source = "crm/applications";
  ev.type = std::move(type);
  ev.entity_kind = "application";
  ev.entity_id = entity;
  ev.entity_version = version;
  ev.data = std::move(data);
  return ev;
}

event manager_updated(const std::string& event_id, int manager_id) {
  event ev;
  ev.id = event_id;
  ev.source = "crm/managers";
  ev.type = "account_manager.updated";
  ev.entity_kind = "account_manager";
  ev.entity_id = std::to_string(manager_id);
  ev.data["id"] = manager_id;
  return ev;
}

/// The parts a daemon wires together, in the order they must stop: runtime, then pipeline.
/// The runtime under the pipeline, without its own propagation: this test drives the pipeline
/// itself (the runtime would otherwise build a second one from the same lookups).
config bus_only(config c) {
  c.enrichment.lookups.clear();
  c.targets.clear();
  return c;
}

struct system_under_test {
  config cfg;
  std::shared_ptr<state_store> store;
  state_pipeline pipeline;
  runtime rt;
  std::mutex mu;
  std::vector<stored_state> changes;  // what writers would be told

  /// `job_like`: subscribed as the propagation job does it (the async handler on the
  /// pipeline's lanes, the default retry policy) instead of in place with 1 ms retries.
  explicit system_under_test(const config& c, bool job_like = false)
      : cfg(c),
        store(std::make_shared<state_store>(c.data_dir + "/state.db")),
        pipeline(c, store, lookup_database()),
        rt(bus_only(c)) {
    pipeline.on_change([this](const stored_state& st) {
      std::lock_guard<std::mutex> guard{mu};
      changes.push_back(st);
    });
    rt.start();
    subscription_options opts;
    opts.pattern = c.state.pattern;
    opts.name = "state";
    opts.partitions = c.state.partitions;
    opts.drop_stale_versions = false;
    if (job_like) {
      actors::async_event_handler handler;
      handler.start = [this](event_ptr ev, actors::async_event_handler::done_fn done) {
        pipeline.handle_async(std::move(ev), std::move(done));
      };
      handler.wait = [this](const event& e) { pipeline.handle(e); };
      rt.subscribe(opts, handler);
      return;
    }
    opts.retry.initial = 1ms;
    rt.subscribe(opts, [this](const event& e) { pipeline.handle(e); });
  }
  ~system_under_test() {
    rt.stop();
    pipeline.stop();
  }

  void publish(event ev) { rt.publish(std::move(ev)).get(); }

  /// Waits (bounded) until the entity's stored state satisfies `pred`.
  template <class Pred>
  std::optional<stored_state> wait_for(const std::string& kind, const std::string& id, Pred pred) {
    std::optional<stored_state> st;
    eventually([&] {
      st = pipeline.state_of(kind, id);
      return st && pred(*st);
    });
    return st;
  }
  std::optional<stored_state> wait_for_version(const std::string& id, std::int64_t version) {
    return wait_for("application", id, [&](const stored_state& s) { return s.version == version; });
  }
  /// Waits (bounded) until listeners heard of the entity at `version`.
  bool heard_of(const std::string& id, std::int64_t version) {
    return eventually([&] {
      std::lock_guard<std::mutex> guard{mu};
      for (const auto& c : changes)
        if (c.id == id && c.version == version)
          return true;
      return false;
    });
  }
  std::size_t change_count() {
    std::lock_guard<std::mutex> guard{mu};
    return changes.size();
  }
};

const json::value* at(const stored_state& st, const char* member, const char* field) {
  const auto* v = st.state.if_contains(member);
  if (v == nullptr || !v->is_object())
    return nullptr;
  return v->as_object().if_contains(field);
}

/// Waits (bounded) until job `id` is done or failed; its progress then.
std::optional<actors::rebuild_progress> finished(const state_pipeline& pipeline,
                                                 const std::string& id,
                                                 std::chrono::milliseconds within = 5s) {
  std::optional<actors::rebuild_progress> p;
  eventually(
      [&] {
        p = pipeline.rebuild_status(id);
        return p && (p->state == "done" || p->state == "failed");
      },
      within);
  return p;
}

void rename_manager(const config& cfg, int id, const std::string& name) {
  SQLite::Database crm(cfg.enrichment.database, SQLite::OPEN_READWRITE);
  SQLite::Statement update(crm, "UPDATE account_managers SET name = ? WHERE id = ?");
  update.bind(1, name);
  update.bind(2, id);
  REQUIRE(update.exec() == 1);
}

}  // namespace

TEST_CASE("state_pipeline: events become stored, enriched state", "[state_pipeline]") {
  temp_dir dir;
  const auto cfg = make_config(dir);
  make_crm(cfg.enrichment.database);
  system_under_test sut(cfg);

  sut.publish(app_event("e1", "A-1", 1,
                        {{"number", "A-1"},
                         {"status", "submitted"},
                         {"accountManagerId", 7},
                         {"applicant", {{"id", "P-1"}}}}));
  auto st = sut.wait_for_version("A-1", 1);
  REQUIRE(st);
  CHECK(st->base == json::parse(R"({"number":"A-1","status":"submitted","accountManagerId":7,
                                    "applicant":{"id":"P-1"}})"));
  CHECK(st->state == json::parse(R"({"number":"A-1","status":"submitted","accountManagerId":7,
      "applicant":{"id":"P-1"},
      "accountManager":{"id":7,"name":"Ann Smith","email":"ann@example.com"},
      "applicantDetails":{"name":"Carol White","phone":"+15550101"},
      "crm":{"product":"car loan","amount":12000.5}})"));
  CHECK(st->revision == 1);

  // A later event carries only what changed; the rest of the base stays.
  sut.publish(app_event("e2", "A-1", 2, {{"status", "approved"}, {"accountManagerId", 8}}));
  st = sut.wait_for_version("A-1", 2);
  REQUIRE(st);
  CHECK(st->base.at("status") == "approved");
  CHECK(st->base.at("number") == "A-1");
  CHECK(*at(*st, "accountManager", "name") == "Bob Jones");
  CHECK(*at(*st, "applicantDetails", "name") == "Carol White");
  CHECK(st->revision == 2);

  // A missing parameter or no matching row: `into` is null.
  sut.publish(app_event("e3", "A-9", 1, {{"number", "A-9"}, {"status", "new"}}));
  st = sut.wait_for_version("A-9", 1);
  REQUIRE(st);
  CHECK(st->state.at("accountManager").is_null());
  CHECK(st->state.at("applicantDetails").is_null());
  CHECK(st->state.at("crm").is_null());  // no application row A-9

  // Writers were told of every stored revision.
  CHECK(eventually([&] { return sut.change_count() == 3; }));
  CHECK(sut.rt.dead_letters("state").empty());
}

TEST_CASE("state_pipeline: an out-of-order older version does not overwrite a newer one",
          "[state_pipeline]") {
  temp_dir dir;
  const auto cfg = make_config(dir);
  make_crm(cfg.enrichment.database);
  system_under_test sut(cfg);

  sut.publish(app_event("e3", "A-1", 3, {{"status", "approved"}}));
  sut.publish(app_event("e1", "A-1", 1, {{"status", "draft"}, {"note", "old"}}));
  sut.publish(app_event("e3b", "A-1", 3, {{"status", "redelivered"}}));  // same version
  sut.publish(app_event("e4", "A-1", 4, {{"checked", true}}));
  // One entity stays on one lane, in order: once version 4 is stored, 1 and 3b were decided.
  auto st = sut.wait_for_version("A-1", 4);
  REQUIRE(st);
  CHECK(st->base == json::parse(R"({"status":"approved","checked":true})"));
  CHECK(st->revision == 2);
  // Listeners hear of a state just after it is stored, in order per entity.
  REQUIRE(sut.heard_of("A-1", 4));
  CHECK(sut.change_count() == 2);
  CHECK(sut.rt.dead_letters("state").empty());
}

TEST_CASE("state_pipeline: lookups are cached, and an invalidating event refreshes them",
          "[state_pipeline]") {
  temp_dir dir;
  const auto cfg = make_config(dir);
  make_crm(cfg.enrichment.database);
  system_under_test sut(cfg);

  sut.publish(app_event("e1", "A-1", 1, {{"accountManagerId", 7}}));
  REQUIRE(sut.wait_for_version("A-1", 1));
  const auto after_first = sut.pipeline.cache_stats();
  sut.publish(app_event("e2", "A-2", 1, {{"accountManagerId", 7}}));
  auto st = sut.wait_for_version("A-2", 1);
  REQUIRE(st);
  CHECK(*at(*st, "accountManager", "name") == "Ann Smith");
  const auto after_second = sut.pipeline.cache_stats();
  CHECK(after_second.hits == after_first.hits + 1);  // manager 7 came from the cache
  CHECK(after_second.misses == after_first.misses);

  // The CRM renames manager 7. Until it says so, the cached row is used ...
  {
    SQLite::Database crm(cfg.enrichment.database, SQLite::OPEN_READWRITE);
    crm.exec("UPDATE account_managers SET name = 'Ann Jones' WHERE id = 7");
  }
  sut.publish(app_event("e3", "A-1", 2, {{"status", "x"}}));
  st = sut.wait_for_version("A-1", 2);
  REQUIRE(st);
  CHECK(*at(*st, "accountManager", "name") == "Ann Smith");

  // ... and once its event arrives, the next application event sees the new name.
  sut.publish(manager_updated("m1", 7));
  REQUIRE(eventually([&] { return sut.pipeline.cache_stats().invalidations == 1; }));
  sut.publish(app_event("e4", "A-2", 2, {{"status", "y"}}));
  st = sut.wait_for_version("A-2", 2);
  REQUIRE(st);
  CHECK(*at(*st, "accountManager", "name") == "Ann Jones");
  // The manager's own event is entity state too (kind account_manager, no lookups).
  auto manager = sut.wait_for("account_manager", "7", [](const stored_state&) { return true; });
  REQUIRE(manager);
  CHECK(manager->state == json::parse(R"({"id":7})"));
}

TEST_CASE("state_pipeline: a rebuild re-enriches every entity from SQL with new revisions",
          "[state_pipeline][rebuild]") {
  temp_dir dir;
  const auto cfg = make_config(dir);
  make_crm(cfg.enrichment.database);
  system_under_test sut(cfg);

  constexpr int applications = 30;
  for (int i = 0; i < applications; ++i)
    sut.publish(app_event("e" + std::to_string(i), "A-" + std::to_string(100 + i), 1,
                          {{"accountManagerId", 7 + i % 2}, {"applicant", {{"id", "P-1"}}}}));
  sut.publish(manager_updated("m1", 8));  // an entity of another kind
  for (int i = 0; i < applications; ++i)
    REQUIRE(sut.wait_for_version("A-" + std::to_string(100 + i), 1));
  REQUIRE(sut.wait_for("account_manager", "8", [](const stored_state&) { return true; }));
  REQUIRE(eventually([&] { return sut.change_count() == applications + 1; }));
  // Manager 8's announcement refreshes its applications; let that end before the CRM changes
  // (it would pick up the change and store new revisions itself).
  const auto refresh = finished(sut.pipeline, "refresh-1");
  REQUIRE(refresh);
  REQUIRE(refresh->state == "done");
  const auto changes_before = sut.change_count();

  {
    SQLite::Database crm(cfg.enrichment.database, SQLite::OPEN_READWRITE);
    crm.exec("UPDATE applicants SET name = 'Carol Black' WHERE id = 'P-1'");
  }
  const auto job = sut.pipeline.start_rebuild("application");
  std::optional<actors::rebuild_progress> progress;
  REQUIRE(eventually([&] {
    progress = sut.pipeline.rebuild_status(job);
    return progress && (progress->state == "done" || progress->state == "failed");
  }));
  CHECK(progress->state == "done");
  CHECK(progress->kind == "application");
  CHECK(progress->total == applications);
  CHECK(progress->done == applications);
  CHECK(progress->failed == 0);
  CHECK_FALSE(progress->started_at.empty());
  CHECK_FALSE(progress->finished_at.empty());

  for (int i = 0; i < applications; ++i) {
    auto st = sut.pipeline.state_of("application", "A-" + std::to_string(100 + i));
    REQUIRE(st);
    CHECK(*at(*st, "applicantDetails", "name") == "Carol Black");
    CHECK(st->revision == 2);
    CHECK(st->version == 1);  // the base and version are the events'
  }
  CHECK(sut.pipeline.state_of("account_manager", "8")->revision == 1);  // not selected
  CHECK(sut.change_count() == changes_before + applications);

  // A rebuild with nothing changed still stores new revisions (every target re-pushes).
  const auto one = sut.pipeline.start_rebuild("application", "A-100");
  REQUIRE(eventually([&] {
    progress = sut.pipeline.rebuild_status(one);
    return progress && progress->state == "done";
  }));
  CHECK(progress->total == 1);
  CHECK(progress->done == 1);
  CHECK(sut.pipeline.state_of("application", "A-100")->revision == 3);
  CHECK(sut.pipeline.state_of("application", "A-101")->revision == 2);

  CHECK_FALSE(sut.pipeline.rebuild_status("rebuild-999"));
  CHECK_THROWS_AS(sut.pipeline.start_rebuild("", "A-100"), std::invalid_argument);
}

TEST_CASE("state_pipeline: a restart resumes from the checkpoint and keeps the state",
          "[state_pipeline][durable]") {
  temp_dir dir;
  const auto cfg = make_config(dir);
  make_crm(cfg.enrichment.database);
  {
    system_under_test sut(cfg);
    for (int i = 0; i < 10; ++i)
      sut.publish(app_event("e" + std::to_string(i), "A-" + std::to_string(i), 1,
                            {{"accountManagerId", 7}, {"n", i}}));
    for (int i = 0; i < 10; ++i)
      REQUIRE(sut.wait_for_version("A-" + std::to_string(i), 1));
  }
  system_under_test sut(cfg);
  sut.publish(app_event("e10", "A-0", 2, {{"n", 100}}));
  auto st = sut.wait_for_version("A-0", 2);
  REQUIRE(st);
  CHECK(st->base.at("n") == 100);
  CHECK(st->base.at("accountManagerId") == 7);
  CHECK(st->revision == 2);
  for (int i = 1; i < 10; ++i) {
    auto kept = sut.pipeline.state_of("application", "A-" + std::to_string(i));
    REQUIRE(kept);
    CHECK(kept->revision == 1);
    CHECK(*at(*kept, "accountManager", "name") == "Ann Smith");
  }
  // Even a replay of the whole journal re-applies nothing.
  sut.rt.replay("state", 0);
  sut.publish(app_event("e11", "A-0", 3, {{"n", 101}}));
  REQUIRE(sut.wait_for_version("A-0", 3));
  // A-0's events are on one lane, so the replayed ones were decided before version 3.
  REQUIRE(sut.heard_of("A-0", 3));
  CHECK(sut.change_count() == 2);
  CHECK(sut.pipeline.state_of("application", "A-0")->revision == 3);
  CHECK(sut.rt.dead_letters("state").empty());
}

TEST_CASE("state_pipeline: a rebuild racing live updates never stores an older base's state",
          "[state_pipeline][rebuild]") {
  temp_dir dir;
  const auto cfg = make_config(dir);
  make_crm(cfg.enrichment.database);
  system_under_test sut(cfg);
  constexpr int entities = 20;
  constexpr int versions = 6;
  auto id_of = [](int i) { return "A-" + std::to_string(100 + i); };
  for (int i = 0; i < entities; ++i)
    sut.publish(app_event("e" + std::to_string(i) + "-1", id_of(i), 1,
                          {{"accountManagerId", 7}, {"step", 1}}));
  for (int i = 0; i < entities; ++i)
    REQUIRE(sut.wait_for_version(id_of(i), 1));

  std::vector<std::string> jobs;
  for (int v = 2; v <= versions; ++v) {
    jobs.push_back(sut.pipeline.start_rebuild("application"));
    for (int i = 0; i < entities; ++i)
      sut.publish(app_event("e" + std::to_string(i) + "-" + std::to_string(v), id_of(i),
                            static_cast<std::uint64_t>(v), {{"step", v}}));
  }
  for (const auto& job : jobs)
    REQUIRE(eventually([&] {
      auto p = sut.pipeline.rebuild_status(job);
      return p && p->state == "done" && p->done + p->failed == p->total;
    }));
  for (int i = 0; i < entities; ++i) {
    auto st = sut.wait_for_version(id_of(i), versions);
    REQUIRE(st);
    CHECK(st->base.at("step") == versions);
    CHECK(st->state.at("step") == versions);  // the state belongs to the newest base
    CHECK(*at(*st, "accountManager", "name") == "Ann Smith");
  }
  for (const auto& job : jobs)
    CHECK(sut.pipeline.rebuild_status(job)->failed == 0);
  CHECK(sut.rt.dead_letters("state").empty());
}

TEST_CASE("state_pipeline: a failing lookup fails the event, which is retried then parked",
          "[state_pipeline]") {
  temp_dir dir;
  auto cfg = make_config(dir);
  make_crm(cfg.enrichment.database);
  system_under_test sut(cfg);
  {
    SQLite::Database crm(cfg.enrichment.database, SQLite::OPEN_READWRITE);
    crm.exec("DROP TABLE applicants");
  }
  sut.publish(app_event("e1", "A-1", 1, {{"applicant", {{"id", "P-1"}}}}));
  REQUIRE(eventually([&] { return !sut.rt.dead_letters("state").empty(); }));
  const auto dead = sut.rt.dead_letters("state");
  REQUIRE(dead.size() == 1);
  CHECK_THAT(dead[0].last_error, Catch::Contains("lookup 'applicant'"));
  CHECK_THAT(dead[0].last_error, Catch::Contains("no such table: applicants"));
  CHECK(dead[0].attempts > 1);
  CHECK_FALSE(sut.pipeline.state_of("application", "A-1"));  // nothing half-stored
}

TEST_CASE("state_pipeline: a disk full for about 1.5 s dead-letters nothing",
          "[state_pipeline][storage]") {
  temp_dir dir;
  const auto cfg = make_config(dir);
  make_crm(cfg.enrichment.database);
  system_under_test sut(cfg, true);
  sut.publish(app_event("e0", "A-0", 1, {{"n", 0}}));
  REQUIRE(sut.wait_for_version("A-0", 1));
  // From here state.db cannot grow: every new entity's row (with 8 KB of data, more than a
  // page) fails with SQLITE_FULL, as on a full disk.
  sut.store->set_max_page_count(1);
  constexpr int entities = 10;
  const std::string filler(8000, 'x');
  for (int i = 1; i <= entities; ++i)
    sut.publish(app_event("e" + std::to_string(i), "A-" + std::to_string(i), 1,
                          {{"n", i}, {"filler", filler}}));
  std::this_thread::sleep_for(1500ms);
  CHECK(sut.store->entity_count() == 1);         // the disk was full all along
  sut.store->set_max_page_count(1'000'000'000);  // space is free again
  CHECK(eventually([&] { return sut.store->entity_count() == entities + 1; }));
  for (int i = 1; i <= entities; ++i) {
    INFO("entity A-" << i);
    CHECK(sut.pipeline.state_of("application", "A-" + std::to_string(i)));
  }
  CHECK(sut.rt.dead_letters("state").empty());
}

TEST_CASE("state_pipeline: stop cancels queued rebuilds and refuses new ones",
          "[state_pipeline][rebuild]") {
  temp_dir dir;
  const auto cfg = make_config(dir);
  make_crm(cfg.enrichment.database);
  system_under_test sut(cfg);
  for (int i = 0; i < 5; ++i)
    sut.publish(
        app_event("e" + std::to_string(i), "A-" + std::to_string(i), 1, {{"accountManagerId", 7}}));
  REQUIRE(sut.wait_for_version("A-4", 1));
  std::vector<std::string> jobs;
  for (int i = 0; i < 5; ++i)
    jobs.push_back(sut.pipeline.start_rebuild());
  sut.rt.stop();
  sut.pipeline.stop();
  for (const auto& job : jobs) {
    auto p = sut.pipeline.rebuild_status(job);
    REQUIRE(p);
    // Each ran to the end before the stop, or ended cancelled; none is left hanging.
    if (p->state == "failed")
      CHECK_THAT(p->error, Catch::Contains("cancelled"));
    else
      CHECK(p->state == "done");
    CHECK_FALSE(p->finished_at.empty());
  }
  CHECK_THROWS_WITH(sut.pipeline.start_rebuild(), Catch::Contains("stopping"));
}

TEST_CASE("state_pipeline: renaming a manager refreshes the stored applications it manages",
          "[state_pipeline][refresh]") {
  temp_dir dir;
  const auto cfg = make_config(dir);
  make_crm(cfg.enrichment.database);
  system_under_test sut(cfg);
  constexpr int applications = 12;
  auto id_of = [](int i) { return "A-" + std::to_string(100 + i); };
  auto manager_of = [](int i) { return i % 3 == 0 ? 8 : 7; };
  for (int i = 0; i < applications; ++i) {
    json::object data{{"status", "new"}};
    // A manager id given as text is the same manager, as in the lookup cache.
    if (i == 1)
      data["accountManagerId"] = "7";
    else
      data["accountManagerId"] = manager_of(i);
    sut.publish(app_event("e" + std::to_string(i), id_of(i), 1, std::move(data)));
  }
  for (int i = 0; i < applications; ++i)
    REQUIRE(sut.wait_for_version(id_of(i), 1));
  REQUIRE(eventually([&] { return sut.change_count() == applications; }));

  rename_manager(cfg, 7, "Ann Jones");
  sut.publish(manager_updated("m1", 7));
  auto job = finished(sut.pipeline, "refresh-1");
  REQUIRE(job);
  CHECK(job->state == "done");
  CHECK(job->kind == "application");
  CHECK(job->total == 8);
  CHECK(job->done == 8);
  CHECK(job->unchanged == 0);
  CHECK(job->failed == 0);
  CHECK_THAT(job->cause, Catch::Contains("lookup 'account_manager' (7)") &&
                             Catch::Contains("event m1 (account_manager.updated)"));
  for (int i = 0; i < applications; ++i) {
    auto st = sut.pipeline.state_of("application", id_of(i));
    REQUIRE(st);
    INFO(st->id);
    if (manager_of(i) == 7) {
      CHECK(*at(*st, "accountManager", "name") == "Ann Jones");
      CHECK(st->revision == 2);
    } else {
      CHECK(*at(*st, "accountManager", "name") == "Bob Jones");
      CHECK(st->revision == 1);  // not rewritten: targets are not pushed again
    }
    CHECK(st->version == 1);
  }
  // Writers heard of the 8 refreshed applications (and of the manager entity itself).
  CHECK(eventually([&] { return sut.change_count() == applications + 8 + 1; }));

  // The same announcement with nothing changed stores nothing.
  sut.publish(manager_updated("m2", 7));
  job = finished(sut.pipeline, "refresh-2");
  REQUIRE(job);
  CHECK(job->state == "done");
  CHECK(job->done == 0);
  CHECK(job->unchanged == 8);
  CHECK(sut.pipeline.state_of("application", id_of(2))->revision == 2);
  CHECK(sut.rt.dead_letters("state").empty());
}

TEST_CASE("state_pipeline: a live update racing a refresh keeps the newer state",
          "[state_pipeline][refresh]") {
  temp_dir dir;
  const auto cfg = make_config(dir);
  make_crm(cfg.enrichment.database);
  auto store = std::make_shared<state_store>(dir.file("state.db"));
  state_pipeline pipeline(cfg, store, lookup_database());
  std::uint64_t sequence = 0;
  auto fed = [&](event ev) {
    ev.sequence = ++sequence;
    return ev;
  };
  constexpr int applications = 10;  // one page: the refresh loads them all before storing any
  auto id_of = [](int i) { return "A-" + std::to_string(100 + i); };
  for (int i = 0; i < applications; ++i)
    pipeline.handle(fed(
        app_event("e" + std::to_string(i), id_of(i), 1, {{"accountManagerId", 7}, {"step", 1}})));

  // When the refresh stores the first application, the last one gets a live update: the
  // refresh holds it at revision 1 and must not put the state of its older base over it.
  std::atomic<bool> raced{false};
  std::mutex mu;
  pipeline.on_change([&](const stored_state& st) {
    if (st.id != id_of(0) || st.revision != 2 || raced.exchange(true))
      return;
    std::lock_guard<std::mutex> guard{mu};
    pipeline.handle(fed(app_event("e-live", id_of(applications - 1), 2, {{"step", 2}})));
  });
  rename_manager(cfg, 7, "Ann Jones");
  pipeline.handle(fed(manager_updated("m1", 7)));
  auto job = finished(pipeline, "refresh-1");
  REQUIRE(job);
  REQUIRE(raced);
  CHECK(job->state == "done");
  CHECK(job->total == applications);
  CHECK(job->done == applications - 1);
  CHECK(job->unchanged == 1);  // the live update enriched it with the new name already
  CHECK(job->failed == 0);
  std::lock_guard<std::mutex> guard{mu};
  auto st = pipeline.state_of("application", id_of(applications - 1));
  REQUIRE(st);
  CHECK(st->version == 2);
  CHECK(st->base.at("step") == 2);
  CHECK(st->state.at("step") == 2);  // the state belongs to the newest base
  CHECK(*at(*st, "accountManager", "name") == "Ann Jones");
  CHECK(st->revision == 2);
}

TEST_CASE("state_pipeline: an application enriched from the stale cached row is corrected",
          "[state_pipeline][refresh]") {
  temp_dir dir;
  const auto cfg = make_config(dir);
  make_crm(cfg.enrichment.database);
  system_under_test sut(cfg);
  sut.publish(app_event("e1", "A-1", 1, {{"accountManagerId", 7}}));
  REQUIRE(sut.wait_for_version("A-1", 1));

  // The CRM renames manager 7; events handled before its announcement (on another
  // partition, say) are enriched from the cached row: an update and a new application.
  rename_manager(cfg, 7, "Ann Jones");
  sut.publish(app_event("e2", "A-1", 2, {{"status", "x"}}));
  sut.publish(app_event("e3", "A-2", 1, {{"accountManagerId", 7}}));
  for (const auto& [id, version] : {std::pair{"A-1", 2}, std::pair{"A-2", 1}}) {
    auto st = sut.wait_for_version(id, version);
    REQUIRE(st);
    CHECK(*at(*st, "accountManager", "name") == "Ann Smith");  // stale
  }
  sut.publish(manager_updated("m1", 7));
  auto job = finished(sut.pipeline, "refresh-1");
  REQUIRE(job);
  CHECK(job->done == 2);
  for (const auto& [id, revision] : {std::pair{"A-1", 3}, std::pair{"A-2", 2}}) {
    auto st = sut.pipeline.state_of("application", id);
    REQUIRE(st);
    CHECK(*at(*st, "accountManager", "name") == "Ann Jones");
    CHECK(st->revision == static_cast<std::uint64_t>(revision));
  }
}

TEST_CASE("state_pipeline: an event stored after the refresh passed it is enriched again",
          "[state_pipeline][refresh]") {
  // The window the refresh alone leaves: an event enriched from the stale row before the
  // invalidation, stored after the refresh looked for its entity (here: a new one).
  temp_dir dir;
  const auto cfg = make_config(dir);
  make_crm(cfg.enrichment.database);
  auto store = std::make_shared<state_store>(dir.file("state.db"));
  state_pipeline pipeline(cfg, store, lookup_database());
  std::uint64_t sequence = 0;
  auto fed = [&](event ev) {
    ev.sequence = ++sequence;
    return ev;
  };
  pipeline.handle(fed(app_event("e1", "A-1", 1, {{"accountManagerId", 7}})));  // caches 7
  pipeline.handle(fed(app_event("e2", "A-1", 2, {{"accountManagerId", 8}})));  // not 7 now
  rename_manager(cfg, 7, "Ann Jones");

  // A-2 takes manager 7 from the cache, then its 'application' lookup waits for the CRM's
  // lock; meanwhile the invalidation is handled and its refresh finds nothing to do.
  auto event_seq = fed(app_event("e3", "A-2", 1, {{"accountManagerId", 7}, {"number", "A-2"}}));
  const auto misses = pipeline.cache_stats().misses;
  SQLite::Database crm(cfg.enrichment.database, SQLite::OPEN_READWRITE);
  crm.exec("BEGIN EXCLUSIVE");
  std::thread partition([&] { pipeline.handle(event_seq); });
  const bool waiting = eventually([&] { return pipeline.cache_stats().misses == misses + 1; });
  pipeline.handle(fed(manager_updated("m1", 7)));
  auto job = finished(pipeline, "refresh-1");
  crm.exec("COMMIT");
  partition.join();
  REQUIRE(waiting);
  REQUIRE(job);
  CHECK(job->state == "done");
  CHECK(job->total == 0);
  auto st = pipeline.state_of("application", "A-2");
  REQUIRE(st);
  CHECK(*at(*st, "accountManager", "name") == "Ann Jones");
  CHECK(st->revision == 2);  // stored stale, then enriched again
}

TEST_CASE("state_pipeline: announcements of a row whose refresh is still queued share it",
          "[state_pipeline][refresh]") {
  temp_dir dir;
  const auto cfg = make_config(dir);
  make_crm(cfg.enrichment.database);
  auto store = std::make_shared<state_store>(dir.file("state.db"));
  state_pipeline pipeline(cfg, store, lookup_database());
  std::uint64_t sequence = 0;
  auto fed = [&](event ev) {
    ev.sequence = ++sequence;
    return ev;
  };
  pipeline.handle(fed(app_event("e1", "A-1", 1, {{"accountManagerId", 7}})));
  rename_manager(cfg, 7, "Ann Jones");

  // A rebuild holds the job thread, waiting for the CRM's lock, while the CRM announces the
  // change three times: one refresh is queued, and it runs after all three.
  SQLite::Database crm(cfg.enrichment.database, SQLite::OPEN_READWRITE);
  crm.exec("BEGIN EXCLUSIVE");
  const auto rebuild = pipeline.start_rebuild("application");
  // Running, it can only end once it has read the CRM.
  const bool waiting =
      eventually([&] { return pipeline.rebuild_status(rebuild)->state == "running"; });
  for (int i = 1; i <= 3; ++i)
    pipeline.handle(fed(manager_updated("m" + std::to_string(i), 7)));
  const auto queued = pipeline.rebuild_status("refresh-1");
  const auto second = pipeline.rebuild_status("refresh-2");
  crm.exec("COMMIT");
  INFO("rebuild: " << pipeline.rebuild_status(rebuild)->state << " "
                   << pipeline.rebuild_status(rebuild)->error);
  REQUIRE(waiting);
  REQUIRE(queued);
  CHECK(queued->state == "queued");
  CHECK_FALSE(second);
  CHECK(finished(pipeline, rebuild)->state == "done");
  const auto job = finished(pipeline, "refresh-1");
  REQUIRE(job);
  CHECK(job->state == "done");
  CHECK(job->total == 1);
  CHECK_FALSE(pipeline.rebuild_status("refresh-2"));
  CHECK(*at(*pipeline.state_of("application", "A-1"), "accountManager", "name") == "Ann Jones");
}

// Figures, not assertions on time: run with `switchboard_tests "[.state_bench]"`.
TEST_CASE("state_pipeline: throughput of live events and of a rebuild", "[.state_bench]") {
  temp_dir dir;
  const auto cfg = make_config(dir);
  make_crm(cfg.enrichment.database);
  system_under_test sut(cfg);
  constexpr int entities = 500;
  constexpr int per_entity = 10;
  constexpr int total = entities * per_entity;
  const auto t0 = std::chrono::steady_clock::now();
  std::atomic<int> acked{0};
  for (int v = 1; v <= per_entity; ++v)
    for (int i = 0; i < entities; ++i)
      sut.rt.publish_async(app_event("e" + std::to_string(i) + "-" + std::to_string(v),
                                     "A-" + std::to_string(i), static_cast<std::uint64_t>(v),
                                     {{"accountManagerId", 7 + i % 2},
                                      {"applicant", {{"id", "P-1"}}},
                                      {"number", "A-" + std::to_string(i % 3)},
                                      {"step", v}}),
                           [&](const publish_receipt*, const std::string&) { ++acked; });
  REQUIRE(eventually([&] { return sut.change_count() == static_cast<std::size_t>(total); }, 120s));
  const auto t1 = std::chrono::steady_clock::now();
  const auto job = sut.pipeline.start_rebuild("application");
  REQUIRE(eventually([&] { return sut.pipeline.rebuild_status(job)->state == "done"; }, 120s));
  const auto t2 = std::chrono::steady_clock::now();
  const auto secs = [](auto d) { return std::chrono::duration<double>(d).count(); };
  const auto stats = sut.pipeline.cache_stats();
  WARN("live: " << total << " events over " << entities << " entities in " << secs(t1 - t0)
                << " s = " << total / secs(t1 - t0) << " events/s (journal fsync included); "
                << "cache hits " << stats.hits << ", misses " << stats.misses << "; rebuild of "
                << entities << " entities: " << secs(t2 - t1) << " s = " << entities / secs(t2 - t1)
                << " entities/s");
}

// Figures: `switchboard_tests "[.state_bench]"`. The entities are put straight into the store
// (as the pipeline would have stored them) to keep the setup short.
TEST_CASE("state_pipeline: refresh of one manager's applications among many entities",
          "[.state_bench]") {
  temp_dir dir;
  const auto cfg = make_config(dir);
  make_crm(cfg.enrichment.database);
  auto store = std::make_shared<state_store>(dir.file("state.db"));
  state_pipeline pipeline(cfg, store, lookup_database());
  constexpr int entities = 100'000;
  constexpr int managed = 1'000;  // every 100th application is manager 7's
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < entities; ++i) {
    const int manager = i % (entities / managed) == 0 ? 7 : 8;
    json::object base{
        {"number", "X-" + std::to_string(i)}, {"status", "new"}, {"accountManagerId", manager}};
    json::object state = base;
    state["accountManager"] = {{"id", manager},
                               {"name", manager == 7 ? "Ann Smith" : "Bob Jones"},
                               {"email", manager == 7 ? "ann@example.com" : "bob@example.com"}};
    state["applicantDetails"] = nullptr;
    state["crm"] = nullptr;
    store->put("application", "A-" + std::to_string(i), 1, static_cast<std::uint64_t>(i + 1), base,
               state);
  }
  const auto t1 = std::chrono::steady_clock::now();
  std::size_t scanned = 0;
  std::string after;
  for (;;) {
    auto page = store->entities_with("application", {"accountManagerId"}, {"7"}, 200, after);
    if (page.empty())
      break;
    scanned += page.size();
    after = page.back().id;
  }
  const auto t2 = std::chrono::steady_clock::now();
  REQUIRE(scanned == managed);

  rename_manager(cfg, 7, "Ann Jones");
  std::atomic<int> heard{0};
  pipeline.on_change([&](const stored_state&) { ++heard; });
  auto ev = manager_updated("m1", 7);
  ev.sequence = entities + 1;
  const auto t3 = std::chrono::steady_clock::now();
  pipeline.handle(ev);
  auto job = finished(pipeline, "refresh-1", 120s);
  const auto t4 = std::chrono::steady_clock::now();
  REQUIRE(job);
  CHECK(job->done == managed);
  CHECK(heard == managed + 1);
  const auto secs = [](auto d) { return std::chrono::duration<double>(d).count(); };
  WARN(entities << " entities put in " << secs(t1 - t0) << " s; entities_with over them ("
                << managed << " match, pages of 200): " << secs(t2 - t1) * 1e3
                << " ms; refresh of manager 7's " << managed
                << " applications: " << secs(t4 - t3) * 1e3 << " ms (" << managed / secs(t4 - t3)
                << " entities/s, invalidation to job done)");
}

TEST_CASE("state_pipeline: a rebuild whose lookup fails counts the entities it gave up on",
          "[state_pipeline][rebuild]") {
  temp_dir dir;
  const auto cfg = make_config(dir);
  make_crm(cfg.enrichment.database);
  system_under_test sut(cfg);
  sut.publish(app_event("e1", "A-1", 1, {{"applicant", {{"id", "P-1"}}}}));
  sut.publish(app_event("e2", "A-2", 1, {{"status", "new"}}));  // no applicant: no query
  REQUIRE(sut.wait_for_version("A-1", 1));
  REQUIRE(sut.wait_for_version("A-2", 1));
  {
    SQLite::Database crm(cfg.enrichment.database, SQLite::OPEN_READWRITE);
    crm.exec("DROP TABLE applicants");
  }
  const auto job = sut.pipeline.start_rebuild("application");
  std::optional<actors::rebuild_progress> p;
  REQUIRE(eventually([&] {
    p = sut.pipeline.rebuild_status(job);
    return p && p->state == "done";
  }));
  CHECK(p->total == 2);
  CHECK(p->done == 1);
  CHECK(p->failed == 1);
  CHECK_THAT(p->error, Catch::StartsWith("application/A-1: lookup 'applicant'"));
  CHECK(sut.pipeline.state_of("application", "A-1")->revision == 1);  // left as it was
  CHECK(sut.pipeline.state_of("application", "A-2")->revision == 2);
}

TEST_CASE("state_pipeline: without lookups the state is the base, events need a sequence",
          "[state_pipeline]") {
  temp_dir dir;
  config cfg;
  cfg.data_dir = dir.path.string();
  auto store = std::make_shared<state_store>(dir.file("state.db"));
  state_pipeline pipeline(cfg, store, lookup_database());
  auto ev = app_event("e1", "A-1", std::nullopt, {{"status", "new"}});
  CHECK_THROWS_AS(pipeline.handle(ev), terminal_error);  // not from a durable subscription
  ev.sequence = 5;
  pipeline.handle(ev);
  auto st = pipeline.state_of("application", "A-1");
  REQUIRE(st);
  CHECK(st->state == st->base);
  CHECK(st->base == json::parse(R"({"status":"new"})"));
  CHECK_FALSE(st->version);
  ev.data["status"] = "ignored";
  pipeline.handle(ev);  // the same sequence again: already applied
  CHECK(pipeline.state_of("application", "A-1")->revision == 1);
  CHECK(pipeline.cache_stats().misses == 0);
}

TEST_CASE("state_pipeline: a bad lookup stops the start with the key to fix", "[state_pipeline]") {
  temp_dir dir;
  auto cfg = make_config(dir);
  make_crm(cfg.enrichment.database);
  cfg.enrichment.lookups[1].sql = "SELECT name FROM applicant WHERE id = ?";
  auto store = std::make_shared<state_store>(dir.file("state.db"));
  CHECK_THROWS_WITH(state_pipeline(cfg, store, lookup_database()),
                    Catch::StartsWith("enrichment.lookups[1].sql (lookup 'applicant'): no such "
                                      "table: applicant"));
}
