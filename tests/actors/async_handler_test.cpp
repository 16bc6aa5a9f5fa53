// Subscriptions whose handler finishes on another thread (engine/bus/async_handler.hpp), as the
// entity-state pipeline uses them: the partition hands the event on, waits for the answer as a
// message, and settles it (done, retried, parked) exactly as it settles a plain handler's.
// Real runtime, real SQLite files.

#include "engine/bus/async_handler.hpp"
#include "engine/lane.hpp"
#include "jobs/propagation/job.hpp"
#include "runtime/job_adapters.hpp"
#include "switchboard/runtime.hpp"

#include "support/eventually.hpp"
#include "support/temp_dir.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using namespace switchboard;
using switchboard::testing::eventually;
using switchboard::testing::temp_dir;
namespace json = boost::json;

namespace {

config test_config(const temp_dir& dir) {
  config cfg;
  cfg.http.enabled = false;
  cfg.data_dir = dir.path.string();
  cfg.drain_timeout = 10s;
  cfg.supervision.backoff_initial = 1ms;
  return cfg;
}

event make_event(const std::string& id, const std::string& entity, int n = 0) {
  event ev;
  ev.id = id;
  ev.source = "tests/async_handler";
  ev.type = "job.run";
  ev.entity_kind = "application";
  ev.entity_id = entity;
  ev.data["n"] = n;
  return ev;
}

/// An async handler whose work runs on a lane pool; `work` throws to fail the event.
struct pooled_handler {
  explicit pooled_handler(std::size_t threads) : pool("test handler", threads) {}

  event_handler handler() {
    actors::async_event_handler h;
    h.start = [this](event_ptr ev, actors::async_event_handler::done_fn done) {
      pool.post([this, ev, done] {
        std::exception_ptr error;
        try {
          work(*ev);
        } catch (...) {
          error = std::current_exception();
        }
        done(error);
      });
    };
    h.wait = [this](const event& ev) { work(ev); };
    return h;
  }

  std::function<void(const event&)> work;
  engine::lane_pool pool;
};

}  // namespace

TEST_CASE("async handler: work runs on its own threads; failures are retried, then parked",
          "[async_handler][deadletter]") {
  temp_dir dir;
  pooled_handler h{1};  // outlives the runtime: its lane may still answer a stopped partition
  std::mutex mu;
  std::map<std::string, int> attempts;
  std::vector<std::string> handled;
  std::atomic<bool> off_pool{false};
  std::atomic<bool> heal{false};
  h.work = [&](const event& ev) {
    if (!h.pool.on_lane())
      off_pool = true;
    int n = 0;
    {
      std::lock_guard<std::mutex> guard{mu};
      n = ++attempts[ev.id];
    }
    if (ev.id == "flaky" && n < 2)
      throw std::runtime_error("flaky failure");
    if (ev.id == "broken" && !heal)
      throw std::runtime_error("always fails");
    if (ev.id == "bad-input")
      throw terminal_error("cannot be handled: bad input");
    std::lock_guard<std::mutex> guard{mu};
    handled.push_back(ev.id);
  };
  runtime rt{test_config(dir)};
  rt.start();
  subscription_options opts;
  opts.pattern = "job.*";
  opts.name = "jobs";
  opts.retry = retry_policy{3, 1ms, 5ms, 0.2};
  rt.subscribe(opts, h.handler());
  for (auto id : {"flaky", "broken", "bad-input", "fine"})
    rt.publish(make_event(id, "A-1")).get();
  REQUIRE(eventually([&] { return rt.dead_letters("jobs").size() == 2; }));
  REQUIRE(eventually([&] {
    std::lock_guard<std::mutex> guard{mu};
    return handled.size() == 2;
  }));
  {
    std::lock_guard<std::mutex> guard{mu};
    CHECK(handled == std::vector<std::string>{"flaky", "fine"});  // in order, one entity
    CHECK(attempts["flaky"] == 2);
    CHECK(attempts["broken"] == 3);
    CHECK(attempts["bad-input"] == 1);
  }
  CHECK_FALSE(off_pool);
  auto letters = rt.dead_letters("jobs");
  CHECK(letters[0].reason == "retries exhausted");
  CHECK(letters[0].attempts == 3);
  CHECK(letters[0].last_error == "always fails");
  CHECK(letters[1].reason == "terminal error");
  CHECK(letters[1].attempts == 1);
  heal = true;
  CHECK(rt.retry_dead_letter(letters[0].id));
  REQUIRE(eventually([&] {
    std::lock_guard<std::mutex> guard{mu};
    return handled.size() == 3 && handled.back() == "broken";
  }));
  rt.stop();
}

TEST_CASE("async handler: a partition waits for each answer; entities keep their order",
          "[async_handler][order]") {
  temp_dir dir;
  // More threads than partitions: only the partitions' waiting keeps an entity in order.
  pooled_handler h{4};
  std::mutex mu;
  std::map<std::string, std::vector<int>> seen;  // entity -> n, in handling order
  std::atomic<int> inside{0}, most{0};
  h.work = [&](const event& ev) {
    const int now = ++inside;
    int was = most.load();
    while (now > was && !most.compare_exchange_weak(was, now)) {
    }
    std::this_thread::sleep_for(200us);
    --inside;
    std::lock_guard<std::mutex> guard{mu};
    seen[ev.entity_id].push_back(static_cast<int>(ev.data.at("n").as_int64()));
  };
  runtime rt{test_config(dir)};
  rt.start();
  subscription_options opts;
  opts.pattern = "job.*";
  opts.name = "ordered";
  opts.partitions = 2;
  rt.subscribe(opts, h.handler());
  constexpr int events = 400;
  for (int n = 0; n < events; ++n)
    rt.publish(make_event("e" + std::to_string(n), "A-" + std::to_string(n % 8), n));
  REQUIRE(eventually(
      [&] {
        std::lock_guard<std::mutex> guard{mu};
        std::size_t total = 0;
        for (const auto& [entity, ns] : seen)
          total += ns.size();
        return total == static_cast<std::size_t>(events);
      },
      20s));
  rt.stop();  // drains: every event was settled, so the subscription reached the end
  std::lock_guard<std::mutex> guard{mu};
  CHECK(seen.size() == 8);
  for (const auto& [entity, ns] : seen)
    CHECK(std::is_sorted(ns.begin(), ns.end()));
  CHECK(most.load() <= 2);  // one event at a time per partition
}

TEST_CASE("async handler: a poison event parks only its entity, the partition goes on",
          "[async_handler][deadletter][poison]") {
  temp_dir dir;
  pooled_handler h{1};
  constexpr int healthy = 20;
  std::mutex mu;
  std::vector<std::string> handled;  // in order
  std::map<std::string, int> attempts;
  std::atomic<int> healthy_done{0};
  h.work = [&](const event& ev) {
    std::lock_guard<std::mutex> guard{mu};
    ++attempts[ev.id];
    // Heals only once the healthy entities went through: a partition that waits for the
    // poison event's retries never gets there.
    if (ev.id == "x-1" && healthy_done.load() < healthy)
      throw std::runtime_error("x-1 fails until the healthy entities are done");
    handled.push_back(ev.id);
    if (ev.entity_id != "X")
      ++healthy_done;
  };
  runtime rt{test_config(dir)};
  rt.start();
  subscription_options opts;
  opts.pattern = "job.*";
  opts.name = "poisoned";
  opts.partitions = 1;
  opts.retry =
      retry_policy{50, 20ms, 200ms, 0.2};  // ~9 s: heals long before, even on a loaded machine
  rt.subscribe(opts, h.handler());
  rt.publish(make_event("x-1", "X")).get();
  rt.publish(make_event("x-2", "X")).get();
  for (int i = 0; i < healthy; ++i)
    rt.publish(make_event("h-" + std::to_string(i), "H-" + std::to_string(i), i)).get();
  rt.publish(make_event("x-3", "X")).get();
  REQUIRE(eventually([&] {
    std::lock_guard<std::mutex> guard{mu};
    return std::find(handled.begin(), handled.end(), "x-3") != handled.end();
  }));
  CHECK(rt.dead_letters("poisoned").empty());
  rt.stop();
  std::lock_guard<std::mutex> guard{mu};
  CHECK(attempts["x-1"] >= 2);
  REQUIRE(handled.size() == healthy + 3);
  // The healthy entities first, then X in its order.
  CHECK(std::vector<std::string>(handled.end() - 3, handled.end()) ==
        std::vector<std::string>{"x-1", "x-2", "x-3"});
}

TEST_CASE("async handler: the runtime's state pipeline stores enriched state off the scheduler",
          "[async_handler][propagation]") {
  temp_dir dir;
  auto cfg = test_config(dir);
  cfg.state.partitions = 2;
  cfg.enrichment.database = dir.file("crm.db");
  {
    SQLite::Database db(cfg.enrichment.database, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec(R"sql(
      CREATE TABLE account_managers (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
      INSERT INTO account_managers VALUES (7, 'Ann Smith');
      INSERT INTO account_managers VALUES (8, 'Bob Jones');
    )sql");
  }
  lookup_config l;
  l.name = "account_manager";
  l.entity_kind = "application";
  l.sql = "SELECT name FROM account_managers WHERE id = ?";
  l.params = {"accountManagerId"};
  l.into = "accountManager";
  cfg.enrichment.lookups.push_back(l);
  {
    // What the job subscribes: the bus must find the async handler in it.
    jobs::secrets env;
    event_handler subscribed;
    jobs::host h{cfg,
                 env,
                 [] { return jobs::phase::created; },
                 [] { return std::string{}; },
                 [](event, std::function<void(bool, const std::string&)>) {},
                 [&](subscription_options, event_handler handler) {
                   subscribed = std::move(handler);
                   return subscription{};
                 }};
    jobs::propagation_job p{runtime_parts::propagation_adapters_for(cfg)};
    p.prepare(h);
    CHECK(subscribed.target<actors::async_event_handler>() != nullptr);
  }
  runtime rt{cfg};
  rt.start();
  auto app = [](const std::string& id, const std::string& entity, std::uint64_t version,
                int manager) {
    event ev;
    ev.id = id;
    ev.source = "tests/async_handler";
    ev.type = "application.status_changed";
    ev.entity_kind = "application";
    ev.entity_id = entity;
    ev.entity_version = version;
    ev.data["accountManagerId"] = manager;
    return ev;
  };
  auto version_of = [&](const std::string& entity) -> std::int64_t {
    auto st = rt.entity_state("application", entity);
    if (!st || !st->as_object().at("version").is_int64())
      return -1;
    return st->as_object().at("version").as_int64();
  };
  for (int i = 0; i < 20; ++i)
    rt.publish(app("e" + std::to_string(i), "A-" + std::to_string(i % 4),
                   static_cast<std::uint64_t>(i / 4 + 1), i % 2 == 0 ? 7 : 8))
        .get();
  rt.publish(app("old", "A-0", 1, 8)).get();  // older than what A-0 holds: never applied
  for (int e = 0; e < 4; ++e)
    REQUIRE(eventually([&] { return version_of("A-" + std::to_string(e)) == 5; }));
  rt.stop();  // drains the state subscription: "old" was settled as well
  runtime again{cfg};
  again.start();
  auto st = again.entity_state("application", "A-0");
  REQUIRE(st);
  CHECK(st->as_object().at("version").as_int64() == 5);
  CHECK(st->as_object().at("base").as_object().at("accountManagerId").as_int64() == 7);
  CHECK(st->as_object().at("state").as_object().at("accountManager").as_object().at("name") ==
        "Ann Smith");
  again.stop();
}
