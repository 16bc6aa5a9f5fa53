// The embedding API as a host application uses it: real SQLite journal files in a fresh
// directory per test, CAF's real scheduler.

#include "switchboard/runtime.hpp"

#include "runtime/runtime_access.hpp"
#include "support/eventually.hpp"
#include "support/temp_dir.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <httplib.h>
#include <boost/json.hpp>
#include <caf/all.hpp>
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using namespace switchboard;
namespace fs = std::filesystem;

namespace {

using testing::temp_dir;

config test_config(const temp_dir& dir) {
  config cfg;
  cfg.http.enabled = false;
  cfg.data_dir = dir.path.string();
  cfg.drain_timeout = 10s;
  cfg.supervision.backoff_initial = 1ms;
  return cfg;
}

event make_event(std::string type, std::string id, int n = 0, std::string entity = {}) {
  event ev;
  ev.id = std::move(id);
  ev.source = "tests/runtime";
  ev.type = std::move(type);
  ev.entity_kind = "application";
  ev.entity_id = entity.empty() ? "A-" + std::to_string(n) : std::move(entity);
  ev.correlation_id = "corr-" + std::to_string(n);
  ev.data["n"] = n;
  return ev;
}

/// Collects what a handler saw, and lets a test wait (bounded) for a count.
struct collector {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<event> seen;

  event_handler handler() {
    return [this](const event& ev) {
      std::lock_guard<std::mutex> guard{mu};
      seen.push_back(ev);
      cv.notify_all();
    };
  }
  bool wait_for(std::size_t n, std::chrono::milliseconds limit = 10s) {
    std::unique_lock<std::mutex> lock{mu};
    return cv.wait_for(lock, limit, [&] { return seen.size() >= n; });
  }
  std::size_t size() {
    std::lock_guard<std::mutex> guard{mu};
    return seen.size();
  }
  std::vector<std::string> ids() {
    std::lock_guard<std::mutex> guard{mu};
    std::vector<std::string> out;
    for (auto& e : seen)
      out.push_back(e.id);
    return out;
  }
};

using testing::eventually;

}  // namespace

TEST_CASE("published events are durable and reach matching subscriptions", "[runtime]") {
  temp_dir dir;
  runtime rt{test_config(dir)};
  rt.start();
  collector apps, all, exact;
  rt.subscribe("application.*", apps.handler());
  rt.subscribe("*", all.handler());
  rt.subscribe("account.manager_allocated", exact.handler());

  auto r1 = rt.publish(make_event("application.status_changed", "e-1", 1)).get();
  auto r2 = rt.publish(make_event("account.manager_allocated", "e-2", 2)).get();
  CHECK(r1.id == "e-1");
  CHECK(r1.status == publish_receipt::outcome::accepted);
  CHECK(r2.sequence == r1.sequence + 1);
  REQUIRE(apps.wait_for(1));
  REQUIRE(all.wait_for(2));
  REQUIRE(exact.wait_for(1));
  CHECK(apps.seen[0].id == "e-1");
  CHECK(apps.seen[0].sequence == r1.sequence);
  CHECK(apps.seen[0].data.at("n").as_int64() == 1);
  CHECK_FALSE(apps.seen[0].time.empty());  // set on publish
  CHECK(exact.seen[0].id == "e-2");
  auto stored = rt.read(0, 10);
  REQUIRE(stored.size() == 2);
  CHECK(stored[1].id == "e-2");
  CHECK(rt.last_sequence() == r2.sequence);
  rt.stop();
  CHECK(apps.size() == 1);
}

TEST_CASE("a duplicate id is acknowledged as such and stored and delivered once", "[runtime]") {
  temp_dir dir;
  runtime rt{test_config(dir)};
  rt.start();
  collector c;
  rt.subscribe("*", c.handler());
  auto first = rt.publish(make_event("t.x", "same", 1)).get();
  auto again = rt.publish(make_event("t.x", "same", 2)).get();
  CHECK(again.status == publish_receipt::outcome::duplicate);
  CHECK(again.sequence == first.sequence);
  rt.publish(make_event("t.x", "other", 3)).get();
  REQUIRE(c.wait_for(2));
  rt.stop();
  CHECK(c.ids() == std::vector<std::string>{"same", "other"});
  CHECK(c.seen[0].data.at("n").as_int64() == 1);  // the first one wins
}

TEST_CASE("one subscription sees one publisher's events in order", "[runtime]") {
  temp_dir dir;
  runtime rt{test_config(dir)};
  rt.start();
  collector c;
  rt.subscribe("order.*", c.handler());
  constexpr int count = 2000;
  std::vector<std::future<publish_receipt>> receipts;
  for (int i = 0; i < count; ++i)
    receipts.push_back(rt.publish(make_event("order.placed", "o-" + std::to_string(i), i)));
  for (auto& r : receipts)
    r.get();
  REQUIRE(c.wait_for(count));
  for (int i = 0; i < count; ++i)
    REQUIRE(c.seen[static_cast<std::size_t>(i)].data.at("n").as_int64() == i);
}

TEST_CASE("invalid events and options are refused with the reason", "[runtime]") {
  temp_dir dir;
  runtime rt{test_config(dir)};
  rt.start();
  auto ev = make_event("application.created", "x-1");
  ev.source.clear();
  try {
    rt.publish(ev).get();
    FAIL("an event without source was accepted");
  } catch (const publish_error& e) {
    CHECK(std::string{e.what()}.find("source") != std::string::npos);
  }
  CHECK(rt.last_sequence() == 0);
  CHECK_THROWS_AS(rt.subscribe("a.*.b", [](const event&) {}), std::invalid_argument);
  CHECK_THROWS_AS(rt.subscribe("a.b", nullptr), std::invalid_argument);
  subscription_options opts;
  opts.pattern = "a.*";
  opts.name = "twice";
  rt.subscribe(opts, [](const event&) {});
  CHECK_THROWS_AS(rt.subscribe(opts, [](const event&) {}), std::invalid_argument);
  opts.name = "zero";
  opts.partitions = 0;
  CHECK_THROWS_AS(rt.subscribe(opts, [](const event&) {}), std::invalid_argument);
}

TEST_CASE("failing handlers are retried, then parked, dead letters can be retried and discarded",
          "[runtime][deadletter]") {
  temp_dir dir;
  runtime rt{test_config(dir)};
  rt.start();
  std::mutex mu;
  std::map<std::string, int> attempts;
  std::atomic<bool> heal{false};
  collector ok;
  subscription_options opts;
  opts.pattern = "job.*";
  opts.name = "jobs";
  opts.retry = retry_policy{3, 1ms, 5ms, 0.2};
  auto record = ok.handler();
  rt.subscribe(opts, [&](const event& ev) {
    {
      std::lock_guard<std::mutex> guard{mu};
      ++attempts[ev.id];
    }
    if (ev.id == "flaky" && attempts[ev.id] < 2)
      throw std::runtime_error("flaky failure");
    if (ev.id == "broken" && !heal)
      throw std::runtime_error("always fails");
    if (ev.id == "bad-input")
      throw terminal_error("cannot be handled: bad input");
    record(ev);
  });
  for (auto id : {"flaky", "broken", "bad-input", "fine"})
    rt.publish(make_event("job.run", id)).get();
  REQUIRE(ok.wait_for(2));
  CHECK(ok.ids() == std::vector<std::string>{"flaky", "fine"});
  REQUIRE(eventually([&] { return rt.dead_letters("jobs").size() == 2; }));
  auto letters = rt.dead_letters("jobs");
  CHECK(letters[0].reason == "retries exhausted");
  CHECK(letters[0].attempts == 3);
  CHECK(letters[0].last_error == "always fails");
  CHECK(letters[1].reason == "terminal error");
  CHECK(letters[1].attempts == 1);
  {
    std::lock_guard<std::mutex> guard{mu};
    CHECK(attempts["broken"] == 3);
    CHECK(attempts["bad-input"] == 1);
  }
  heal = true;
  CHECK(rt.retry_dead_letter(letters[0].id));
  REQUIRE(ok.wait_for(3));
  CHECK(ok.ids().back() == "broken");
  CHECK(rt.discard_dead_letter(letters[1].id));
  CHECK_FALSE(rt.discard_dead_letter(letters[1].id));
  CHECK(rt.dead_letters("jobs").empty());
}

TEST_CASE("a poison event parks only its entity: the rest of its partition flows, order holds",
          "[runtime][deadletter][poison]") {
  temp_dir dir;
  runtime rt{test_config(dir)};
  rt.start();
  constexpr int healthy = 20;
  std::mutex mu;
  std::vector<std::string> log;  // every successful handling, in order
  std::map<std::string, int> attempts;
  std::atomic<int> healthy_done{0};
  subscription_options opts;
  opts.pattern = "job.*";
  opts.name = "poisoned";
  opts.partitions = 1;  // every entity shares the one lane
  opts.retry = retry_policy{5, 20ms, 200ms, 0.2};
  rt.subscribe(opts, [&](const event& ev) {
    std::lock_guard<std::mutex> guard{mu};
    ++attempts[ev.id];
    // X's first event heals once every healthy event went through: a lane that waits for X's
    // retries never gets there, and X is dead-lettered. Y's first event never heals.
    if (ev.id == "x-1" && healthy_done.load() < healthy)
      throw std::runtime_error("x-1 fails until the healthy entities are done");
    if (ev.id == "y-1")
      throw std::runtime_error("y-1 always fails");
    log.push_back(ev.id);
    if (ev.entity_id.rfind("H-", 0) == 0)
      ++healthy_done;
  });
  for (auto [id, entity] : {std::pair{"x-1", "X"},
                            {"y-1", "Y"},
                            {"x-2", "X"},
                            {"y-2", "Y"},
                            {"x-3", "X"},
                            {"y-3", "Y"}})
    rt.publish(make_event("job.run", id, 0, entity)).get();
  for (int i = 0; i < healthy; ++i)
    rt.publish(make_event("job.run", "h-" + std::to_string(i), i, "H-" + std::to_string(i))).get();
  REQUIRE(eventually([&] {
    std::lock_guard<std::mutex> guard{mu};
    return healthy_done.load() == healthy &&
           std::count(log.begin(), log.end(), "x-3") + std::count(log.begin(), log.end(), "y-3") ==
               2;
  }));
  REQUIRE(eventually([&] { return !rt.dead_letters("poisoned").empty(); }));
  const auto letters = rt.dead_letters("poisoned");
  std::lock_guard<std::mutex> guard{mu};
  auto position = [&](const std::string& id) {
    return std::find(log.begin(), log.end(), id) - log.begin();
  };
  // X retried while the healthy entities went on, then succeeded: nothing of X was parked.
  CHECK(attempts["x-1"] >= 2);
  REQUIRE(letters.size() == 1);
  CHECK(letters.front().sequence == 2);  // y-1 only
  // Per entity the order holds: X's and Y's later events waited for their first one.
  CHECK(position("x-1") < position("x-2"));
  CHECK(position("x-2") < position("x-3"));
  CHECK(position("y-2") < position("y-3"));
  CHECK(attempts["y-1"] == 5);
  CHECK(attempts["x-2"] == 1);
  CHECK(attempts["y-2"] == 1);
  for (int i = 0; i < healthy; ++i)
    CHECK(position("h-" + std::to_string(i)) < position("x-1"));
}

TEST_CASE("failures and retries on many entities keep each entity's order",
          "[runtime][order][poison]") {
  temp_dir dir;
  runtime rt{test_config(dir)};
  rt.start();
  std::mutex mu;
  std::map<std::string, std::vector<int>> per_entity;  // n of each handled event, in order
  std::map<std::string, int> attempts;
  int handled = 0;
  subscription_options opts;
  opts.pattern = "e.*";
  opts.name = "flaky";
  opts.partitions = 3;
  opts.max_in_flight = 64;
  opts.retry = retry_policy{4, 1ms, 4ms, 0.5};
  rt.subscribe(opts, [&](const event& ev) {
    std::lock_guard<std::mutex> guard{mu};
    const int n = static_cast<int>(ev.data.at("n").as_int64());
    // A fixed fifth of the events fail once or twice before they go through.
    if (n % 5 == 0 && ++attempts[ev.id] <= 1 + n % 2)
      throw std::runtime_error("flaky " + ev.id);
    per_entity[ev.entity_id].push_back(n);
    ++handled;
  });
  constexpr int count = 1500;
  std::vector<std::future<publish_receipt>> receipts;
  for (int i = 0; i < count; ++i)
    receipts.push_back(rt.publish(
        make_event("e.changed", "f-" + std::to_string(i), i, "E-" + std::to_string(i * 7 % 23))));
  for (auto& r : receipts)
    r.get();
  REQUIRE(eventually([&] {
    std::lock_guard<std::mutex> guard{mu};
    return handled == count;
  }));
  CHECK(rt.dead_letters("flaky").empty());
  rt.stop();
  std::lock_guard<std::mutex> guard{mu};
  CHECK(per_entity.size() == 23);
  for (const auto& [entity, ns] : per_entity) {
    INFO("entity " << entity);
    CHECK(std::is_sorted(ns.begin(), ns.end()));
    CHECK(std::adjacent_find(ns.begin(), ns.end()) == ns.end());
  }
}

TEST_CASE("stop drains committed events, then refuses new ones", "[runtime]") {
  temp_dir dir;
  runtime rt{test_config(dir)};
  rt.start();
  std::atomic<int> handled{0};
  rt.subscribe("slow.*", [&](const event&) {
    std::this_thread::sleep_for(5ms);
    ++handled;
  });
  constexpr int count = 200;  // about a second of handler work
  std::vector<std::future<publish_receipt>> receipts;
  for (int i = 0; i < count; ++i)
    receipts.push_back(rt.publish(make_event("slow.work", "s-" + std::to_string(i), i)));
  for (auto& r : receipts)
    r.get();
  CHECK(handled.load() < count);  // still queued when stop begins
  auto outcome = rt.stop();
  CHECK_FALSE(outcome.failed);
  CHECK(handled.load() == count);
  CHECK_THROWS_AS(rt.publish(make_event("slow.work", "late")).get(), publish_error);
}

TEST_CASE("a named subscription resumes from its checkpoint after a restart",
          "[runtime][durable]") {
  temp_dir dir;
  subscription_options opts;
  opts.pattern = "doc.*";
  opts.name = "docs";
  {
    runtime rt{test_config(dir)};
    rt.start();
    collector c;
    rt.subscribe(opts, c.handler());
    for (int i = 0; i < 10; ++i)
      rt.publish(make_event("doc.saved", "d-" + std::to_string(i), i)).get();
    REQUIRE(c.wait_for(10));
    rt.stop();
  }
  runtime rt{test_config(dir)};
  rt.start();
  for (int i = 10; i < 15; ++i)
    rt.publish(make_event("doc.saved", "d-" + std::to_string(i), i)).get();
  collector resumed, fresh;
  rt.subscribe(opts, resumed.handler());
  subscription_options other = opts;
  other.name = "docs-new-reader";
  rt.subscribe(other, fresh.handler());
  REQUIRE(resumed.wait_for(5));
  REQUIRE(fresh.wait_for(15));  // a new name starts from the journal's beginning
  std::this_thread::sleep_for(50ms);
  CHECK(resumed.size() == 5);
  CHECK(resumed.seen.front().id == "d-10");

  rt.replay("docs", 0);  // replay from zero
  REQUIRE(resumed.wait_for(20));
  CHECK(resumed.seen[5].id == "d-0");
  CHECK_THROWS_AS(rt.replay("nobody", 0), std::invalid_argument);
}

TEST_CASE("a journal row that cannot be decoded is dead-lettered and paged past, never a stall",
          "[runtime][durable][deadletter][http]") {
  // Data directories written before numbers were checked may hold `Infinity` (1e400 stored):
  // a durable subscription retried that row every 200 ms forever, GET /v1/events answered 500.
  temp_dir dir;
  {
    runtime rt{test_config(dir)};
    rt.start();
    for (int i = 1; i <= 5; ++i)
      rt.publish(make_event("doc.saved", "d-" + std::to_string(i), i)).get();
    rt.stop();
  }
  {
    // Sequence 3 as the old encoder wrote {"n": 1e400}.
    SQLite::Database db((dir.path / "journal.db").string(), SQLite::OPEN_READWRITE);
    CHECK(db.exec(R"(UPDATE events SET body = replace(body, '"n":3', '"n":Infinity') )"
                  "WHERE seq = 3") == 1);
  }
  const char* token = "runtime-test-token";
  const char* saved_token = std::getenv("SWITCHBOARD_API_TOKEN");
  const std::string restore = saved_token ? saved_token : "";
  ::setenv("SWITCHBOARD_API_TOKEN", token, 1);
  auto cfg = test_config(dir);
  cfg.http.enabled = true;
  cfg.http.host = "127.0.0.1";
  cfg.http.port = 0;
  runtime rt{cfg};
  rt.start();
  if (saved_token)
    ::setenv("SWITCHBOARD_API_TOKEN", restore.c_str(), 1);
  else
    ::unsetenv("SWITCHBOARD_API_TOKEN");

  collector docs, mails;
  subscription_options opts;
  opts.pattern = "doc.*";
  opts.name = "docs";
  rt.subscribe(opts, docs.handler());
  subscription_options other;
  other.pattern = "mail.*";  // does not match the row's type: nothing to park for it
  other.name = "mailer";
  rt.subscribe(other, mails.handler());

  // The events after the bad row are handled, and new ones too.
  REQUIRE(docs.wait_for(4));
  rt.publish(make_event("doc.saved", "d-6", 6)).get();
  REQUIRE(docs.wait_for(5));
  CHECK(docs.ids() == std::vector<std::string>{"d-1", "d-2", "d-4", "d-5", "d-6"});

  REQUIRE(eventually([&] { return rt.dead_letters("docs").size() == 1; }));
  auto letter = rt.dead_letters("docs").front();
  CHECK(letter.sequence == 3);
  CHECK(letter.reason == "unreadable");
  CHECK_THAT(letter.last_error,
             Catch::Contains("event 3 (source 'tests/runtime', id 'd-3', type 'doc.saved')") &&
                 Catch::Contains("cannot be decoded") && Catch::Contains("not valid JSON"));
  CHECK(rt.dead_letters("mailer").empty());
  CHECK_FALSE(rt.retry_dead_letter(letter.id));  // nothing readable to hand on

  httplib::Client client{"http://" + rt.listen_address()};
  const httplib::Headers auth{{"Authorization", std::string{"Bearer "} + token}};
  auto page = [&](int after) {
    auto res = client.Get(("/v1/events?limit=2&after=" + std::to_string(after)).c_str(), auth);
    REQUIRE(res);
    INFO(res->body);
    REQUIRE(res->status == 200);
    return boost::json::parse(res->body).as_object().at("events").as_array();
  };
  auto first = page(0);
  REQUIRE(first.size() == 2);
  CHECK(first[1].at("id") == "d-2");
  auto second = page(2);  // holds the bad row, in its place
  REQUIRE(second.size() == 2);
  const auto& bad = second[0].as_object();
  CHECK(bad.at("journalsequence") == 3);
  CHECK(bad.at("unreadable") == true);
  CHECK(bad.at("id") == "d-3");
  CHECK_THAT(std::string(bad.at("reason").as_string()), Catch::Contains("event 3"));
  CHECK(second[1].at("id") == "d-4");
  auto third = page(4);
  REQUIRE(third.size() == 2);
  CHECK(third[1].at("id") == "d-6");

  // Ready (the bus goes on), and saying what it set aside.
  auto ready = client.Get("/ready");
  REQUIRE(ready);
  INFO(ready->body);
  CHECK(ready->status == 200);
  auto body = boost::json::parse(ready->body).as_object();
  CHECK(body.at("status") == "ready");
  REQUIRE(body.contains("unreadable_events"));
  const auto& report = body.at("unreadable_events").as_object();
  CHECK(report.at("count") == 1);
  const auto& row = report.at("events").as_array().at(0).as_object();
  CHECK(row.at("sequence") == 3);
  CHECK(row.at("dead_lettered_by").as_array() == boost::json::array{"docs"});

  // A replay from zero passes it again, and stops at it no more than the first time.
  rt.replay("docs", 0);
  REQUIRE(docs.wait_for(10));
  CHECK(rt.stop().failed == false);
}

TEST_CASE("one entity's events stay in order across partitions and concurrent producers",
          "[runtime][order]") {
  std::mt19937 rng{12345};
  for (int round = 0; round < 4; ++round) {
    temp_dir dir;
    runtime rt{test_config(dir)};
    rt.start();
    std::mutex mu;
    std::map<std::string, std::vector<std::uint64_t>> per_entity;
    std::atomic<int> handled{0};
    auto jitter_seed = rng();
    subscription_options opts;
    opts.pattern = "e.*";
    opts.partitions = 1 + round * 2;  // 1, 3, 5, 7
    opts.max_in_flight = 64;
    rt.subscribe(opts, [&, jitter_seed](const event& ev) {
      thread_local std::mt19937 local{static_cast<unsigned>(jitter_seed)};
      if (local() % 8 == 0)
        std::this_thread::yield();  // vary the interleavings
      std::lock_guard<std::mutex> guard{mu};
      per_entity[ev.entity_id].push_back(*ev.sequence);
      ++handled;
    });
    constexpr int producers = 4;
    constexpr int per_producer = 500;
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p)
      threads.emplace_back([&, p, seed = rng()] {
        std::mt19937 local{seed};
        for (int i = 0; i < per_producer; ++i) {
          auto entity = "E-" + std::to_string(local() % 20);
          rt.publish(make_event("e.changed", "p" + std::to_string(p) + "-" + std::to_string(i), i,
                                entity));
        }
      });
    for (auto& t : threads)
      t.join();
    REQUIRE(eventually([&] { return handled.load() == producers * per_producer; }));
    rt.stop();
    for (auto& [entity, seqs] : per_entity) {
      INFO("round " << round << " entity " << entity);
      CHECK(std::is_sorted(seqs.begin(), seqs.end()));
      CHECK(std::adjacent_find(seqs.begin(), seqs.end()) == seqs.end());
    }
  }
}

TEST_CASE("stale entity versions are dropped when asked", "[runtime]") {
  temp_dir dir;
  runtime rt{test_config(dir)};
  rt.start();
  collector c;
  subscription_options opts;
  opts.pattern = "acct.*";
  opts.drop_stale_versions = true;
  rt.subscribe(opts, c.handler());
  std::vector<std::pair<std::string, std::uint64_t>> versions{
      {"v1", 1}, {"v3", 3}, {"v2", 2}, {"v3-again", 3}, {"v4", 4}};
  for (auto& [id, v] : versions) {
    auto ev = make_event("acct.updated", id, 0, "ACC-1");
    ev.entity_version = v;
    rt.publish(ev).get();
  }
  rt.publish(make_event("acct.updated", "other-entity", 0, "ACC-2")).get();
  REQUIRE(c.wait_for(5));
  rt.stop();
  CHECK(c.ids() == std::vector<std::string>{"v1", "v3", "v3-again", "v4", "other-entity"});
}

TEST_CASE("a slow subscription does not hold back a fast one", "[runtime][backpressure]") {
  temp_dir dir;
  runtime rt{test_config(dir)};
  rt.start();
  std::atomic<int> slow{0}, fast{0};
  std::atomic<bool> release{false};
  subscription_options slow_opts;
  slow_opts.pattern = "*";
  slow_opts.max_in_flight = 8;
  rt.subscribe(slow_opts, [&](const event&) {
    while (!release)
      std::this_thread::sleep_for(1ms);
    ++slow;
  });
  rt.subscribe("*", [&](const event&) { ++fast; });
  constexpr int count = 3000;
  std::vector<std::future<publish_receipt>> receipts;
  for (int i = 0; i < count; ++i)
    receipts.push_back(rt.publish(make_event("b.x", "b-" + std::to_string(i), i)));
  for (auto& r : receipts)
    r.get();
  CHECK(eventually([&] { return fast.load() == count; }));
  CHECK(slow.load() == 0);  // blocked, yet the fast one got everything
  release = true;
  CHECK(eventually([&] { return slow.load() == count; }));
}

TEST_CASE("unsubscribed handlers get no more events", "[runtime]") {
  temp_dir dir;
  runtime rt{test_config(dir)};
  rt.start();
  collector kept, dropped;
  rt.subscribe("t.*", kept.handler());
  auto sub = rt.subscribe("t.*", dropped.handler());
  rt.publish(make_event("t.x", "u-1")).get();
  REQUIRE(dropped.wait_for(1));
  rt.unsubscribe(sub);
  rt.publish(make_event("t.x", "u-2")).get();
  REQUIRE(kept.wait_for(2));
  rt.stop();
  CHECK(dropped.size() == 1);
}

TEST_CASE("a crashed consumer is restarted by its supervisor and goes on",
          "[runtime][supervision]") {
  temp_dir dir;
  runtime rt{test_config(dir)};
  rt.start();
  collector c;
  auto sub = rt.subscribe("x.*", c.handler());
  rt.publish(make_event("x.y", "before")).get();
  REQUIRE(c.wait_for(1));
  auto old = internal::runtime_access::consumer(rt, sub);
  REQUIRE(old);
  caf::anon_send_exit(old, caf::exit_reason::kill);
  REQUIRE(eventually([&] {
    auto now = internal::runtime_access::consumer(rt, sub);
    return now && now != old;
  }));
  rt.publish(make_event("x.y", "after")).get();
  // At least once: "before" may come again if the kill beat its progress update.
  CHECK(eventually([&] {
    auto ids = c.ids();
    return std::find(ids.begin(), ids.end(), "after") != ids.end();
  }));
  CHECK_FALSE(rt.stop().failed);
}

TEST_CASE("when the root supervisor gives up, wait() says why", "[runtime][supervision]") {
  temp_dir dir;
  auto cfg = test_config(dir);
  cfg.supervision.max_restarts = 0;  // the first crash exceeds the restart intensity
  runtime rt{cfg};
  rt.start();
  caf::anon_send_exit(internal::runtime_access::consumers(rt), caf::exit_reason::kill);
  auto outcome = rt.wait();
  CHECK(outcome.failed);
  CHECK(outcome.reason.find("supervisor 'root' gave up: child 'consumers'") != std::string::npos);
  CHECK(rt.stop().failed);
}

TEST_CASE("the HTTP server answers health and readiness", "[runtime][http]") {
  temp_dir dir;
  auto cfg = test_config(dir);
  cfg.http.enabled = true;
  cfg.http.host = "127.0.0.1";
  cfg.http.port = 0;
  runtime rt{cfg};
  rt.start();
  auto address = rt.listen_address();
  REQUIRE(address.rfind("127.0.0.1:", 0) == 0);
  auto port = std::stoi(address.substr(address.find(':') + 1));
  REQUIRE(port > 0);
  httplib::Client client{"127.0.0.1", port};
  auto health = client.Get("/health");
  REQUIRE(health);
  CHECK(health->status == 200);
  CHECK(health->body == "{\"status\":\"ok\"}\n");
  auto ready = client.Get("/ready");
  REQUIRE(ready);
  CHECK(ready->status == 200);
  auto missing = client.Get("/no/such/thing");
  REQUIRE(missing);
  CHECK(missing->status == 404);
  CHECK(missing->body.find("no such route") != std::string::npos);
  rt.stop();
  httplib::Client after{"127.0.0.1", port};
  after.set_connection_timeout(1s);
  CHECK_FALSE(after.Get("/health"));  // stopped servers do not answer
}

TEST_CASE("two runtimes side by side cannot share a port", "[runtime][http]") {
  temp_dir dir1, dir2;
  auto cfg = test_config(dir1);
  cfg.http.enabled = true;
  cfg.http.port = 0;
  runtime first{cfg};
  first.start();
  auto address = first.listen_address();
  cfg.http.port = static_cast<std::uint16_t>(std::stoi(address.substr(address.find(':') + 1)));
  cfg.data_dir = dir2.path.string();
  runtime second{cfg};
  try {
    second.start();
    FAIL("the second runtime started on a port in use");
  } catch (const std::runtime_error& e) {
    CHECK(std::string{e.what()}.find("cannot listen on 127.0.0.1:" +
                                     std::to_string(cfg.http.port)) != std::string::npos);
  }
}

TEST_CASE("two runtimes cannot share a data directory; the second names it and its holder",
          "[runtime]") {
  temp_dir dir;
  runtime first{test_config(dir)};
  first.start();
  runtime second{test_config(dir)};
  try {
    second.start();
    FAIL("the second runtime started on a data directory in use");
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    CHECK(what.find("'" + dir.path.string() + "' is in use") != std::string::npos);
    CHECK(what.find("PID " + std::to_string(::getpid())) != std::string::npos);
  }
  // Stopped, the first lets go of it: a runtime after it starts on the same files.
  first.stop();
  runtime third{test_config(dir)};
  third.start();
  third.stop();
}

TEST_CASE("a job route's JSON answer ends with a newline, as a terminal user wants it",
          "[runtime][http]") {
  temp_dir dir;
  auto cfg = test_config(dir);
  cfg.http.enabled = true;
  cfg.http.host = "127.0.0.1";
  cfg.http.port = 0;
  ::setenv("SWITCHBOARD_API_TOKEN", "newline-token", 1);
  runtime rt{cfg};
  rt.start();
  const auto address = rt.listen_address();
  httplib::Client client{"127.0.0.1", std::stoi(address.substr(address.find(':') + 1))};
  const httplib::Headers auth{{"Authorization", "Bearer newline-token"}};
  // Neither job is configured: both answer 404 with a hint, through the routes' reply helpers.
  for (const auto* path : {"/v1/state/application/A-1", "/v1/leads/L1", "/v1/propagation"}) {
    auto res = client.Get(path, auth);
    REQUIRE(res);
    INFO(path << " -> " << res->status << " '" << res->body << "'");
    CHECK(res->get_header_value("Content-Type") == "application/json");
    REQUIRE_FALSE(res->body.empty());
    CHECK(res->body.back() == '\n');
    CHECK(res->body.find('\n') == res->body.size() - 1);  // one line: the JSON, then "\n"
  }
  rt.stop();
}
