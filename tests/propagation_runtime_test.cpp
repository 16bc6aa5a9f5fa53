// Entity-state propagation as the runtime hosts it (src/propagation.cpp, src/runtime.cpp), at
// the edges of its lifetime: a start that fails on a bad lookup, a stop while Twilio does not
// answer and a rebuild runs, status read while the AMQP sources start. Real parts: SQLite
// files, TCP on 127.0.0.1 (a listener that never answers stands in for a hung Twilio).

#include "switchboard/runtime.hpp"

#include "support/eventually.hpp"
#include "support/temp_dir.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <httplib.h>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <string>
#include <thread>

using namespace std::chrono_literals;
using namespace switchboard;
using switchboard::testing::eventually;
using switchboard::testing::temp_dir;
namespace json = boost::json;

namespace {

/// A TCP port on 127.0.0.1 that accepts connections into its backlog and never answers: a
/// hung server. `closed()` gives a port where nothing listens (connections are refused).
class silent_listener {
public:
  silent_listener() : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    REQUIRE(fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd_, 64) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
  }
  ~silent_listener() { ::close(fd_); }
  silent_listener(const silent_listener&) = delete;
  silent_listener& operator=(const silent_listener&) = delete;

  std::uint16_t port() const { return port_; }

  static std::uint16_t closed() {
    silent_listener l;
    return l.port();  // closed when `l` goes: nothing listens there any more
  }

private:
  int fd_;
  std::uint16_t port_ = 0;
};

void make_crm(const std::string& path) {
  SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  db.exec(R"sql(
    CREATE TABLE account_managers (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
    INSERT INTO account_managers VALUES (7, 'Ann Smith');
    CREATE TABLE profiles (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
    INSERT INTO profiles VALUES ('ok', '{"tier":"silver"}');
  )sql");
}

/// A second lookup whose SQL fails for a profile row holding malformed JSON (SQLite's json()
/// raises): a poison event for the entities that use such a row, until the row is fixed.
void add_profile_lookup(config& cfg) {
  lookup_config l;
  l.name = "profile";
  l.entity_kind = "application";
  l.sql = "SELECT json(doc) AS doc FROM profiles WHERE id = ?";
  l.params = {"profileId"};
  l.into = "profile";
  cfg.enrichment.lookups.push_back(l);
}

void set_profile(const config& cfg, const std::string& id, const std::string& doc) {
  SQLite::Database crm(cfg.enrichment.database, SQLite::OPEN_READWRITE);
  SQLite::Statement upsert(crm, "INSERT OR REPLACE INTO profiles VALUES (?, ?)");
  upsert.bind(1, id);
  upsert.bind(2, doc);
  upsert.exec();
}

event versioned(const std::string& event_id, const std::string& entity, std::uint64_t version,
                json::object data) {
  event ev;
  ev.id = event_id;
  ev.source = "tests/propagation";
  ev.type = "application.status_changed";
  ev.entity_kind = "application";
  ev.entity_id = entity;
  ev.entity_version = version;
  ev.data = std::move(data);
  return ev;
}

/// The stored version of an entity, or -1.
std::int64_t version_of(const runtime& rt, const std::string& entity) {
  auto st = rt.entity_state("application", entity);
  if (!st || !st->as_object().at("version").is_int64())
    return -1;
  return st->as_object().at("version").as_int64();
}

config base_config(const temp_dir& dir) {
  config cfg;
  cfg.http.enabled = false;
  cfg.data_dir = dir.path.string();
  cfg.drain_timeout = 5s;
  cfg.supervision.backoff_initial = 1ms;
  cfg.state.partitions = 2;
  cfg.enrichment.database = dir.file("crm.db");
  make_crm(cfg.enrichment.database);
  lookup_config l;
  l.name = "account_manager";
  l.entity_kind = "application";
  l.sql = "SELECT name FROM account_managers WHERE id = ?";
  l.params = {"accountManagerId"};
  l.into = "accountManager";
  cfg.enrichment.lookups.push_back(l);
  return cfg;
}

event app_event(int n) {
  event ev;
  ev.id = "ev-" + std::to_string(n);
  ev.source = "tests/propagation";
  ev.type = "application.status_changed";
  ev.entity_kind = "application";
  ev.entity_id = "A-" + std::to_string(n);
  ev.data["status"] = "submitted";
  ev.data["accountManagerId"] = 7;
  return ev;
}

/// The threads of this process (a failed start must not leave any behind).
std::size_t thread_count() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/task"))
    ++n;
  return n;
}

/// Runs `f` on another thread and waits at most `limit` for it: a hang fails the test instead
/// of blocking the run. (A hang guard, not a timing assertion: the limit is generous.)
template <class F>
bool returns_within(F f, std::chrono::seconds limit) {
  auto done = std::async(std::launch::async, std::move(f));
  if (done.wait_for(limit) != std::future_status::ready) {
    done.wait();  // cannot abandon it: it uses the runtime; the test fails anyway
    return false;
  }
  done.get();
  return true;
}

}  // namespace

TEST_CASE(
    "propagation: a lookup with wrong SQL fails start with the key, and leaves nothing "
    "running",
    "[runtime][propagation]") {
  temp_dir dir;
  auto cfg = base_config(dir);
  cfg.enrichment.lookups[0].sql = "SELECT name FROM account_manager WHERE id = ?";  // no such table
  {
    runtime rt{cfg};
    const auto threads_idle = thread_count();  // the runtime's control thread
    CHECK_THROWS_WITH(rt.start(), Catch::Contains("enrichment.lookups[0].sql") &&
                                      Catch::Contains("no such table: account_manager"));
    CHECK(thread_count() == threads_idle);  // no journal writer, no writer lane left running
    CHECK_THROWS_AS(rt.publish(app_event(1)).get(), publish_error);
    CHECK_THROWS_AS(rt.start(), std::logic_error);  // a runtime starts once
    CHECK(returns_within([&] { rt.stop(); }, 30s));
  }

  // The same data directory with the SQL fixed: the failed start held nothing.
  cfg.enrichment.lookups[0].sql = "SELECT name FROM account_managers WHERE id = ?";
  runtime rt{cfg};
  rt.start();
  rt.publish(app_event(1)).get();
  CHECK(eventually([&] { return rt.entity_state("application", "A-1").has_value(); }));
  rt.stop();
}

TEST_CASE("propagation: stop returns while Twilio does not answer and a rebuild runs",
          "[runtime][propagation]") {
  temp_dir dir;
  silent_listener hung_twilio;
  ::setenv("TWILIO_ACCOUNT_SID", "AC00112233445566778899aabbccddee01", 1);
  ::setenv("TWILIO_AUTH_TOKEN", "propagation-test-token", 1);
  auto cfg = base_config(dir);
  cfg.twilio.base_url = "http://127.0.0.1:" + std::to_string(hung_twilio.port());
  cfg.twilio.connect_timeout = 500ms;
  cfg.twilio.read_timeout = 500ms;
  target_config t;
  t.name = "applications";
  t.type = target_config::kind::sync_document;
  t.entity_kind = "application";
  t.service = "IS00112233445566778899aabbccddee01";
  t.document = "application-{id}";
  t.concurrency = 2;
  t.backoff_initial = 10ms;
  t.backoff_max = 50ms;
  cfg.targets.push_back(t);

  constexpr int entities = 400;  // two rebuild pages: the rebuild is still busy at stop
  runtime rt{cfg};
  rt.start();
  for (int i = 0; i < entities; ++i)
    rt.publish(app_event(i)).get();
  REQUIRE(eventually([&] {
    return rt.propagation_status().as_object().at("entities").to_number<int>() == entities;
  }));
  // The writers are busy: requests hang until the read timeout.
  REQUIRE(eventually([&] {
    const auto status = rt.propagation_status();
    const auto& target = status.as_object().at("targets").as_array().at(0).as_object();
    return target.at("in_flight").to_number<int>() > 0;
  }));
  const auto job = rt.rebuild();
  CHECK(returns_within([&] { rt.stop(); }, 60s));

  const auto progress = rt.rebuild_status(job);
  REQUIRE(progress);
  CHECK((progress->state == "done" || progress->state == "failed"));
  if (progress->state == "failed")
    CHECK_THAT(progress->error, Catch::Contains("cancelled"));
  CHECK_THROWS(rt.rebuild());  // after stop
}

TEST_CASE(
    "propagation: status is served while the AMQP sources start and says why they are "
    "not connected",
    "[runtime][propagation]") {
  temp_dir dir;
  auto cfg = base_config(dir);
  cfg.http.enabled = true;
  cfg.http.port = 0;
  const auto port = silent_listener::closed();
  for (int i = 0; i < 8; ++i) {
    amqp_source_config s;
    s.name = "crm-" + std::to_string(i);
    s.port = port;
    s.queue = "crm-" + std::to_string(i);
    s.reconnect_initial = 10ms;
    s.reconnect_max = 50ms;
    cfg.amqp_sources.push_back(s);
  }
  runtime rt{cfg};
  std::atomic<bool> all_listed{false};
  // Like a monitor polling /v1/propagation as soon as the port is open (before start()
  // returns, while it starts the sources).
  std::thread monitor([&] {
    if (!eventually([&] { return !rt.listen_address().empty(); }, 30s))
      return;
    all_listed = eventually(
        [&] {
          const auto sources = rt.propagation_status().as_object().at("sources").as_array();
          if (sources.size() != cfg.amqp_sources.size())
            return false;
          for (const auto& s : sources)
            if (s.as_object().at("last_error").as_string().empty())
              return false;
          return true;
        },
        30s);
  });
  rt.start();
  monitor.join();
  CHECK(all_listed);
  const auto sources = rt.propagation_status().as_object().at("sources").as_array();
  REQUIRE(sources.size() == cfg.amqp_sources.size());
  for (const auto& s : sources) {
    CHECK_FALSE(s.as_object().at("connected").as_bool());
    CHECK_FALSE(s.as_object().at("last_error").as_string().empty());
  }
  CHECK(returns_within([&] { rt.stop(); }, 30s));
}

TEST_CASE("propagation: a poison event parks only its entity; its lane goes on with the others",
          "[runtime][propagation][poison]") {
  temp_dir dir;
  auto cfg = base_config(dir);
  cfg.state.partitions = 1;  // every entity on one lane
  add_profile_lookup(cfg);
  set_profile(cfg, "bad", "{");  // X's lookup fails until the row is fixed
  runtime rt{cfg};
  rt.start();
  constexpr int healthy = 20;
  rt.publish(versioned("x-1", "X", 1, {{"profileId", "bad"}, {"accountManagerId", 7}})).get();
  rt.publish(versioned("x-2", "X", 2, {{"status", "approved"}})).get();
  for (int i = 0; i < healthy; ++i)
    rt.publish(versioned("h-" + std::to_string(i), "H-" + std::to_string(i), 1,
                         {{"profileId", "ok"}, {"accountManagerId", 7}}))
        .get();
  // The row is fixed once every healthy entity is stored: while X's first event is retried
  // (about 0.75 s of backoff before it would be dead-lettered), not after.
  REQUIRE(eventually([&] {
    for (int i = 0; i < healthy; ++i)
      if (version_of(rt, "H-" + std::to_string(i)) != 1)
        return false;
    return true;
  }));
  set_profile(cfg, "bad", R"({"tier":"gold"})");
  REQUIRE(eventually([&] { return version_of(rt, "X") == 2; }));
  CHECK(rt.dead_letters("switchboard.state").empty());
  const auto x = rt.entity_state("application", "X")->as_object();
  // Both of X's events were applied, in order: x-1's fields under x-2's.
  CHECK(x.at("base").as_object().at("status") == "approved");
  CHECK(x.at("base").as_object().at("profileId") == "bad");
  CHECK(x.at("state").as_object().at("profile").as_object().at("doc") == R"({"tier":"gold"})");
  CHECK(x.at("revision").to_number<int>() == 2);
  rt.stop();
}

TEST_CASE("propagation: retrying a dead letter its entity has outgrown says so and keeps it",
          "[runtime][propagation][deadletter]") {
  temp_dir dir;
  ::setenv("SWITCHBOARD_API_TOKEN", "propagation-test-api-token", 1);
  auto cfg = base_config(dir);
  cfg.http.enabled = true;
  cfg.http.port = 0;
  add_profile_lookup(cfg);
  set_profile(cfg, "broken", "{");
  runtime rt{cfg};
  rt.start();
  const auto address = rt.listen_address();
  httplib::Client http{"127.0.0.1", std::stoi(address.substr(address.find(':') + 1))};
  http.set_bearer_token_auth("propagation-test-api-token");

  // Y's first event is dead-lettered, then Y moves on to version 2.
  rt.publish(versioned("y-1", "Y", 1, {{"profileId", "broken"}})).get();
  REQUIRE(eventually([&] { return rt.dead_letters("switchboard.state").size() == 1; }));
  rt.publish(versioned("y-2", "Y", 2, {{"status", "approved"}})).get();
  REQUIRE(eventually([&] { return version_of(rt, "Y") == 2; }));
  const auto letter = rt.dead_letters("switchboard.state").front();

  const auto refused = rt.retry_dead_letter(letter.id);
  CHECK_FALSE(refused);
  CHECK(refused.status == dead_letter_retry::outcome::would_skip);
  CHECK_THAT(refused.reason,
             Catch::Contains("application/Y") && Catch::Contains("version 1") &&
                 Catch::Contains("version 2") &&
                 Catch::Contains("DELETE /v1/dead-letters/" + std::to_string(letter.id)));
  REQUIRE(rt.dead_letters("switchboard.state").size() == 1);  // kept: nothing was retried
  auto answer =
      http.Post("/v1/dead-letters/" + std::to_string(letter.id) + "/retry", "", "application/json");
  REQUIRE(answer);
  CHECK(answer->status == 409);
  CHECK_THAT(answer->body, Catch::Contains("stale") && Catch::Contains("application/Y"));
  CHECK(rt.dead_letters("switchboard.state").size() == 1);

  // A dead letter whose entity has not moved on is retried, and applies once its cause is
  // fixed.
  rt.publish(versioned("z-1", "Z", 1, {{"profileId", "broken"}})).get();
  REQUIRE(eventually([&] { return rt.dead_letters("switchboard.state").size() == 2; }));
  set_profile(cfg, "broken", R"({"tier":"bronze"})");
  const auto z = rt.dead_letters("switchboard.state").back();
  CHECK(z.sequence == letter.sequence + 2);
  const auto retried = rt.retry_dead_letter(z.id);
  CHECK(retried);
  CHECK(retried.status == dead_letter_retry::outcome::retried);
  REQUIRE(eventually([&] { return version_of(rt, "Z") == 1; }));
  CHECK(rt.dead_letters("switchboard.state").size() == 1);  // Y's only
  const auto unknown = rt.retry_dead_letter(z.id);
  CHECK(unknown.status == dead_letter_retry::outcome::not_found);
  rt.stop();
  ::unsetenv("SWITCHBOARD_API_TOKEN");
}
