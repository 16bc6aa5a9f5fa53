// Entity-state propagation as a user runs it, whole: the shipped example configuration
// (examples/crm-state-sync: switchboard.json.in + crm.sql) loaded with parse_config, a real
// switchboard::runtime consuming MassTransit envelopes from the private RabbitMQ broker, the
// CRM lookups against a real SQLite file, and Sync documents, a Sync map and TaskRouter workers
// written to the in-process Twilio emulator over HTTP. What is asserted is what a user would
// notice: the values in Twilio, the journal, the error queue, and the HTTP API.

#include "adapters/amqp/connection.hpp"
#include "adapters/amqp/publisher.hpp"
#include "adapters/twilio/emulator.hpp"

#include "switchboard/config.hpp"
#include "switchboard/runtime.hpp"

#include "support/eventually.hpp"
#include "support/rabbitmq.hpp"
#include "support/temp_dir.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <httplib.h>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using namespace switchboard;
namespace json = boost::json;
namespace twilio = switchboard::adapters::twilio;
namespace amqp = switchboard::adapters::amqp;
using testing::eventually;
using testing::rabbitmq_params;
using testing::temp_dir;
using testing::unique_name;

namespace {

constexpr const char* account_sid = "AC00112233445566778899aabbccddee0e";
constexpr const char* auth_token = "propagation-e2e-token";
constexpr const char* api_token = "propagation-e2e-api-token";

const char* const message_types[] = {"ApplicationStatusChanged", "AccountManagerAllocated",
                                     "AccountManagerUpdated", "AgentAvailabilityChanged"};

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

std::string example_file(const std::string& name) {
  return std::string{SWITCHBOARD_SOURCE_DIR} + "/examples/crm-state-sync/" + name;
}

/// Secrets come from the environment, as in production: the writers' Twilio credentials and
/// the HTTP API's bearer token (read when the runtime starts).
void set_environment() {
  ::setenv("TWILIO_ACCOUNT_SID", account_sid, 1);
  ::setenv("TWILIO_AUTH_TOKEN", auth_token, 1);
  ::setenv("SWITCHBOARD_API_TOKEN", api_token, 1);
}

twilio::emulator_options emulator_settings() {
  twilio::emulator_options o;
  o.account_sid = account_sid;
  o.auth_token = auth_token;
  o.seed = 5;
  return o;
}

httplib::Client http_client(const std::string& base, std::chrono::milliseconds timeout = 10s) {
  httplib::Client c{base};
  c.set_read_timeout(timeout);
  c.set_connection_timeout(5s);
  return c;
}

/// A running CRM: the emulator with a Sync service, a TaskRouter workspace and workers for
/// the agents of crm.sql; the CRM database from crm.sql; the example configuration with unique
/// queue and exchange names; the runtime (started by `start()`).
struct crm {
  temp_dir dir{"propagation-e2e"};
  twilio::emulator emu;
  std::string service;
  std::string workspace;
  std::map<std::string, std::string> worker_sids;  // CRM agent id -> TaskRouter worker SID
  std::string prefix = unique_name("crm");         // the queue; prefixes the exchanges
  config cfg;
  std::unique_ptr<runtime> rt;

  explicit crm(twilio::emulator_options o = emulator_settings()) : emu(std::move(o)) {
    set_environment();
    emu.start();
    service = created_sid("/sync/v1/Services", {{"FriendlyName", "crm"}});
    workspace = created_sid("/taskrouter/v1/Workspaces", {{"FriendlyName", "contact-centre"}});
    for (const char* agent : {"agent-7", "agent-8"})
      worker_sids[agent] = created_sid("/taskrouter/v1/Workspaces/" + workspace + "/Workers",
                                       {{"FriendlyName", agent}});
    {
      SQLite::Database db(crm_db(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
      db.exec(read_text(example_file("crm.sql")));
    }
    // The example configuration as shipped; only its placeholders and names are filled in.
    auto text = read_text(example_file("switchboard.json.in"));
    text = replace_all(text, "@DATA_DIR@", dir.file("data"));
    text = replace_all(text, "@AMQP_PORT@", std::to_string(testing::rabbitmq_port()));
    text = replace_all(text, "@CRM_DB@", crm_db());
    text = replace_all(text, "@SYNC_SERVICE@", service);
    text = replace_all(text, "@WORKSPACE@", workspace);
    text = replace_all(text, "@TWILIO_URL@", emu.base_url());
    text = replace_all(text, "\"switchboard.crm-state\"", "\"" + prefix + "\"");
    text = replace_all(text, "\"Crm.Events:", "\"" + prefix + ".Crm.Events:");  // exchanges only
    auto parsed = parse_config(text, example_file("switchboard.json.in"));
    INFO(parsed.error.message());
    REQUIRE(parsed);
    cfg = *parsed.value;
    cfg.drain_timeout = 10s;
    REQUIRE(cfg.amqp_sources.size() == 1);
    auto& source = cfg.amqp_sources[0];
    source.reconnect_initial = 50ms;
    source.reconnect_max = 500ms;
    source.heartbeat = 5s;
    // Every target also writes the entity's version, so the request log shows what state
    // each write carried.
    for (auto& t : cfg.targets) {
      t.fields.emplace_back("version", "version");
      t.backoff_initial = 20ms;
      t.backoff_max = 500ms;
    }
  }

  ~crm() {
    if (rt)
      rt->stop();
    rt.reset();
    try {
      amqp::connection c(rabbitmq_params());
      c.delete_queue(prefix);
      c.delete_queue(prefix + "_error");
      for (const char* type : message_types)
        c.delete_exchange(exchange(type));
    } catch (...) {
    }
  }

  std::string crm_db() const { return dir.file("crm.db"); }
  std::string exchange(const std::string& type) const { return prefix + ".Crm.Events:" + type; }

  /// Starts a runtime on `cfg` (a new one after `stop()`) and waits for the source to connect.
  void start() {
    rt = std::make_unique<runtime>(cfg);
    rt->start();
    REQUIRE(eventually([&] { return source_status().at("connected").as_bool(); }, 30s));
  }

  void stop() {
    REQUIRE_FALSE(rt->stop().failed);
    rt.reset();
  }

  json::object status() const { return rt->propagation_status().as_object(); }
  json::object source_status() const { return status().at("sources").at(0).as_object(); }
  json::object target_status(const std::string& name) const {
    const auto all = status();  // kept: ranging over a temporary's member would dangle
    for (const auto& t : all.at("targets").as_array())
      if (t.at("name") == name.c_str())
        return t.as_object();
    FAIL("no target " << name);
    return {};
  }
  /// True when every entity of `kind` named `<id_prefix>1..<id_prefix>count` has its state at
  /// `version` and every target has written every entity's newest state: from then on, Twilio
  /// holds the final states.
  bool settled(const std::string& kind, const std::string& id_prefix, int count,
               std::int64_t version) const {
    for (int i = 1; i <= count; ++i)
      if (!at_version(kind, id_prefix + std::to_string(i), version))
        return false;
    return all_written();
  }

  /// True when the entity's stored state is at `version`.
  bool at_version(const std::string& kind, const std::string& id, std::int64_t version) const {
    const auto s = rt->entity_state(kind, id);
    return s && s->at("version") == version;
  }

  /// True when every target has written every entity's newest state.
  bool all_written() const {
    const auto all = status();
    for (const auto& t : all.at("targets").as_array())
      if (t.at("pending").to_number<std::int64_t>() != 0 ||
          t.at("in_flight").to_number<std::int64_t>() != 0)
        return false;
    return true;
  }

  // -- the emulator, as a user reads it with curl ---------------------------------------------

  httplib::Client twilio_client() const {
    auto c = http_client(emu.base_url());
    c.set_basic_auth(account_sid, auth_token);
    return c;
  }

  std::string created_sid(const std::string& path, const httplib::Params& params) const {
    auto c = twilio_client();
    auto r = c.Post(path, params);
    REQUIRE(r);
    INFO(r->body);
    REQUIRE(r->status == 201);
    return std::string{json::parse(r->body).at("sid").as_string()};
  }

  /// `member` of the object at `path`, or null if it does not exist (yet).
  json::value fetch(const std::string& path, const char* member) const {
    auto c = twilio_client();
    auto r = c.Get(path);
    if (!r || r->status != 200)
      return nullptr;
    auto v = json::parse(r->body).at(member);
    if (v.is_string())  // TaskRouter attributes are a JSON text
      return json::parse(v.as_string());
    return v;
  }
  json::value document(const std::string& application) const {
    return fetch("/sync/v1/Services/" + service + "/Documents/application-" + application, "data");
  }
  json::value map_item(const std::string& application) const {
    return fetch("/sync/v1/Services/" + service + "/Maps/applications/Items/" + application,
                 "data");
  }
  json::value worker(const std::string& agent) const {
    return fetch("/taskrouter/v1/Workspaces/" + workspace + "/Workers/" + worker_sids.at(agent),
                 "attributes");
  }

  void set_faults(const std::string& rules_json) const {
    auto c = twilio_client();
    auto r = c.Post("/_emulator/faults", rules_json, "application/json");
    REQUIRE(r);
    INFO(r->body);
    REQUIRE(r->status == 200);
  }
  void clear_faults() const {
    auto c = twilio_client();
    auto r = c.Delete("/_emulator/faults");
    REQUIRE(r);
    REQUIRE(r->status < 300);
  }
  json::array request_log() const {
    auto c = twilio_client();
    auto r = c.Get("/_emulator/requests");
    REQUIRE(r);
    REQUIRE(r->status == 200);
    return json::parse(r->body).at("requests").as_array();
  }

  // -- the switchboard HTTP API ---------------------------------------------------------------

  httplib::Client api() const {
    auto c = http_client("http://" + rt->listen_address());
    c.set_bearer_token_auth(api_token);
    return c;
  }
};

/// MassTransit's JSON envelope around `message`, as MassTransit publishes it.
std::string envelope(const std::string& message_id, const std::string& type,
                     const json::object& message) {
  return json::serialize(
      json::object{{"messageId", message_id},
                   {"correlationId", message_id},
                   {"conversationId", message_id},
                   {"sourceAddress", "rabbitmq://localhost/crm"},
                   {"destinationAddress", "rabbitmq://localhost/Crm.Events:" + type},
                   {"messageType", json::array{json::value("urn:message:Crm.Events:" + type)}},
                   {"message", message},
                   {"sentTime", "2026-11-23T14:00:00.1234567Z"},
                   {"headers", json::object{}},
                   {"host", json::object{{"machineName", "crm-1"}, {"processName", "Crm.Api"}}}});
}

/// The CRM's publisher: persistent messages, publisher confirms, ids counting up.
struct crm_publisher {
  const crm& world;
  amqp::amqp_publisher pub{rabbitmq_params()};
  int n = 0;
  std::vector<std::string> ids;

  explicit crm_publisher(const crm& w) : world(w) {}

  std::string next_id() {
    char buf[64];
    std::snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%012d", ++n);
    return buf;
  }
  /// Publishes one message of `type`; returns its messageId.
  std::string publish(const std::string& type, const json::object& message) {
    auto id = next_id();
    amqp::outgoing_message props;
    props.message_id = id;
    pub.publish(world.exchange(type), envelope(id, type, message), props);
    ids.push_back(id);
    return id;
  }
  void raw(const std::string& type, const std::string& body, const std::string& content_type) {
    amqp::outgoing_message props;
    props.content_type = content_type;
    pub.publish(world.exchange(type), body, props);
  }
  void confirm() {
    REQUIRE(pub.wait_for_confirms(30s));
    REQUIRE(pub.failed().empty());
  }
};

json::object status_changed(const std::string& application, std::int64_t version,
                            const std::string& status, const std::string& manager = "AM-1",
                            const std::string& applicant = "P-1") {
  return {{"applicationId", application},
          {"applicantId", applicant},
          {"accountManagerId", manager},
          {"status", status},
          {"version", version}};
}

/// Per Twilio object written ("doc:<name>", "item:<key>", "worker:<sid>"), the versions its
/// writes carried that were, or may have been, applied (2xx; unanswered timeouts and 5xx when
/// the fault rules apply them), in arrival order. Writes to one object never overlap, so
/// arrival order is the order they were applied in.
std::map<std::string, std::vector<std::int64_t>> applied_versions(const json::array& log) {
  std::map<std::string, std::vector<std::int64_t>> out;
  for (const auto& e : log) {
    const auto& o = e.as_object();
    if (o.at("method") != "POST")
      continue;
    const std::string path{o.at("path").as_string()};
    const auto& params = o.at("params").as_object();
    const auto& status = o.at("status");
    const auto* fault = o.if_contains("fault");
    const bool ok = status.is_int64() && status.as_int64() >= 200 && status.as_int64() < 300;
    const bool maybe = (status.is_null() && fault != nullptr && *fault == "timeout") ||
                       (status.is_int64() && status.as_int64() == 500);  // apply_on_5xx rules
    if (!ok && !maybe)
      continue;
    auto last_segment = path.substr(path.rfind('/') + 1);
    std::string object;
    const json::value* payload = nullptr;
    if (path.find("/Documents") != std::string::npos && params.contains("Data")) {
      object =
          "doc:" + (last_segment == "Documents" ? std::string{params.at("UniqueName").as_string()}
                                                : last_segment);
      payload = &params.at("Data");
    } else if (path.find("/Items") != std::string::npos && params.contains("Data")) {
      object = "item:" +
               (last_segment == "Items" ? std::string{params.at("Key").as_string()} : last_segment);
      payload = &params.at("Data");
    } else if (path.find("/Workers/") != std::string::npos && params.contains("Attributes")) {
      object = "worker:" + last_segment;
      payload = &params.at("Attributes");
    } else {
      continue;
    }
    const auto data = json::parse(payload->as_string());
    if (const auto* v = data.as_object().if_contains("version"); v && v->is_int64())
      out[object].push_back(v->as_int64());
  }
  return out;
}

/// No object was ever written an older version after a newer one.
void check_never_older(const json::array& log) {
  const auto versions = applied_versions(log);
  REQUIRE_FALSE(versions.empty());
  for (const auto& [object, vs] : versions) {
    INFO(object);
    for (std::size_t i = 1; i < vs.size(); ++i) {
      INFO("write " << i << " of " << vs.size());
      CHECK(vs[i] >= vs[i - 1]);
    }
  }
}

std::vector<event> journal(const runtime& rt) { return rt.read(0, 1'000'000); }

/// `pred` polled every 20 ms rather than eventually's 2 ms: these predicates make HTTP or AMQP
/// calls, and a tight loop would load the shared machine (and fill the emulator's request log).
template <class Pred>
auto paced(Pred pred) {
  return [pred]() mutable {
    std::this_thread::sleep_for(20ms);
    return pred();
  };
}

}  // namespace

TEST_CASE(
    "propagation: CRM events in, enriched documents, map items and worker attributes out, "
    "newest version of each entity, never an older one after a newer",
    "[propagation][rmq]") {
  crm w;
  w.start();
  crm_publisher pub(w);

  // Five applications, versions 1..8 interleaved across entities; some versions arrive late
  // (after a newer one) and must be ignored. Managers and applicants change along the way.
  constexpr int apps = 5;
  constexpr int versions = 8;
  std::vector<std::pair<int, int>> order;  // (application, version)
  for (int v = 1; v <= versions; ++v)
    for (int a = 1; a <= apps; ++a)
      order.emplace_back(a, v);
  std::mt19937 rng{42};
  // Swap some neighbours: version v+1 of an application before its version v.
  for (std::size_t i = 0; i + apps < order.size(); i += 3)
    if (rng() % 2 == 0)
      std::swap(order[i], order[i + apps]);
  auto manager_of = [](int a, int v) { return (a + v) % 2 == 0 ? "AM-1" : "AM-2"; };
  auto applicant_of = [](int a) { return a % 2 == 0 ? "P-2" : "P-1"; };
  for (auto [a, v] : order)
    pub.publish("ApplicationStatusChanged",
                status_changed("A-" + std::to_string(a), v, "status-" + std::to_string(v),
                               manager_of(a, v), applicant_of(a)));
  // Agents: availability versions 1..3, the last one wins.
  for (int v = 1; v <= 3; ++v)
    for (const char* agent : {"agent-7", "agent-8"})
      pub.publish("AgentAvailabilityChanged",
                  {{"agentId", agent},
                   {"workerSid", w.worker_sids.at(agent)},
                   {"available", v % 2 == 1},
                   {"skills", json::array{json::value(v == 3 ? "final" : "early")}},
                   {"version", v}});
  // A partial update (only the manager; the status stays), and a stale one that is ignored.
  pub.publish("AccountManagerAllocated",
              {{"applicationId", "A-1"}, {"accountManagerId", "AM-1"}, {"version", versions + 1}});
  pub.publish("AccountManagerAllocated",
              {{"applicationId", "A-2"}, {"accountManagerId", "AM-1"}, {"version", 3}});
  pub.confirm();
  REQUIRE(manager_of(1, versions) == std::string{"AM-2"});
  auto final_version = [&](int a) { return a == 1 ? versions + 1 : versions; };
  auto final_manager = [&](int a) { return a == 1 ? "AM-1" : manager_of(a, versions); };

  const std::map<std::string, json::object> managers{
      {"AM-1", {{"name", "Grace Hopper"}, {"phone", "+15550100001"}}},
      {"AM-2", {{"name", "Alan Turing"}, {"phone", "+15550100002"}}}};
  const std::map<std::string, json::object> applicants{
      {"P-1", {{"name", "Ada Lovelace"}, {"phone", "+15550199001"}}},
      {"P-2", {{"name", "Edsger Dijkstra"}, {"phone", "+15550199002"}}}};

  auto expected_document = [&](int a) {
    const auto& m = managers.at(final_manager(a));
    const auto& p = applicants.at(applicant_of(a));
    return json::value{{"status", "status-" + std::to_string(versions)},
                       {"applicant", p.at("name")},
                       {"applicantPhone", p.at("phone")},
                       {"accountManager", m.at("name")},
                       {"accountManagerPhone", m.at("phone")},
                       {"version", final_version(a)}};
  };
  REQUIRE(
      eventually(paced([&] {
                   for (int a = 1; a <= apps; ++a)
                     if (!w.at_version("application", "A-" + std::to_string(a), final_version(a)))
                       return false;
                   return w.at_version("agent", "agent-7", 3) &&
                          w.at_version("agent", "agent-8", 3) && w.all_written();
                 }),
                 30s));
  for (int a = 1; a <= apps; ++a) {
    const auto id = "A-" + std::to_string(a);
    INFO(id);
    CHECK(w.document(id) == expected_document(a));
    CHECK(w.map_item(id) ==
          json::value{{"status", "status-" + std::to_string(versions)},
                      {"accountManager", managers.at(final_manager(a)).at("name")},
                      {"version", final_version(a)}});
  }
  CHECK(w.worker("agent-7") == json::value{{"skills", json::array{json::value("final")}},
                                           {"available", true},
                                           {"team", "mortgages"},
                                           {"languages", "en,fr"},
                                           {"version", 3}});
  CHECK(w.worker("agent-8") == json::value{{"skills", json::array{json::value("final")}},
                                           {"available", true},
                                           {"team", "loans"},
                                           {"languages", "en"},
                                           {"version", 3}});

  // Every message is in the journal once; nothing was parked.
  const auto events = journal(*w.rt);
  std::set<std::string> ids;
  for (const auto& ev : events)
    ids.insert(ev.id);
  CHECK(ids.size() == pub.ids.size());
  CHECK(events.size() == pub.ids.size());
  CHECK(w.rt->dead_letters().empty());
  const auto figures = w.status();
  for (const auto& t : figures.at("targets").as_array())
    CHECK(t.at("dead").to_number<std::int64_t>() == 0);

  check_never_older(w.request_log());
}

TEST_CASE(
    "propagation: 429s, 5xx and timeouts from Twilio during a stream of updates, every "
    "final state written, nothing dead, the 429s counted",
    "[propagation][rmq][faults]") {
  crm w;
  w.cfg.twilio.read_timeout = 300ms;  // a silent Twilio is given up on quickly, then retried
  w.start();
  w.set_faults(R"({"seed": 23, "rules": [
      {"route": "POST /sync/v1/Services/*/Documents/*", "rate_429": 0.2, "retry_after_s": 1,
       "rate_5xx": 0.1, "status_5xx": 500, "apply_on_5xx": true,
       "rate_timeout": 0.05, "timeout_applies": true},
      {"route": "POST /sync/v1/Services/*/Documents", "rate_5xx": 0.2, "status_5xx": 503},
      {"route": "POST /sync/v1/Services/*/Maps/*/Items/*", "rate_429": 0.1, "retry_after_s": 1,
       "rate_5xx": 0.1, "status_5xx": 503},
      {"route": "POST /taskrouter/v1/Workspaces/*/Workers/*", "rate_5xx": 0.15, "status_5xx": 500,
       "apply_on_5xx": true, "rate_timeout": 0.05}]})");
  crm_publisher pub(w);

  // 20 applications x 15 versions, round-robin, plus 2 agents x 10 versions: 320 updates.
  constexpr int apps = 20;
  constexpr int versions = 15;
  for (int v = 1; v <= versions; ++v) {
    for (int a = 1; a <= apps; ++a)
      pub.publish("ApplicationStatusChanged",
                  status_changed("A-" + std::to_string(a), v, "s" + std::to_string(v),
                                 v % 2 == 0 ? "AM-2" : "AM-1"));
    if (v <= 10)
      for (const char* agent : {"agent-7", "agent-8"})
        pub.publish("AgentAvailabilityChanged", {{"agentId", agent},
                                                 {"workerSid", w.worker_sids.at(agent)},
                                                 {"available", v % 2 == 0},
                                                 {"skills", json::array{}},
                                                 {"version", v}});
    std::this_thread::sleep_for(30ms);  // a stream, not one burst (not an assertion)
  }
  pub.confirm();

  REQUIRE(eventually(paced([&] {
                       return w.at_version("agent", "agent-7", 10) &&
                              w.at_version("agent", "agent-8", 10) &&
                              w.settled("application", "A-", apps, versions);
                     }),
                     45s));
  const auto log = w.request_log();
  REQUIRE(log.size() < 10000);  // the emulator keeps the last 10000: this log is complete
  w.clear_faults();

  for (int a = 1; a <= apps; ++a) {
    const auto id = "A-" + std::to_string(a);
    INFO(id);
    const auto d = w.document(id);
    REQUIRE(d.is_object());
    CHECK(d.at("version") == versions);
    CHECK(d.at("status") == "s15");
    CHECK(d.at("accountManager") == "Grace Hopper");  // AM-1 on odd versions
    CHECK(w.map_item(id) == json::value{{"status", "s15"},
                                        {"accountManager", "Grace Hopper"},
                                        {"version", versions}});
  }
  for (const char* agent : {"agent-7", "agent-8"}) {
    INFO(agent);
    const auto attrs = w.worker(agent);
    REQUIRE(attrs.is_object());
    CHECK(attrs.at("version") == 10);
    CHECK(attrs.at("available") == true);
  }

  // Nothing dead, nothing parked; the figures show the faults that were met and retried.
  CHECK(w.rt->dead_letters().empty());
  const auto documents = w.target_status("application-documents");
  CHECK(documents.at("dead").to_number<std::int64_t>() == 0);
  CHECK(documents.at("rate_limited").to_number<std::int64_t>() > 0);
  CHECK(documents.at("retried").to_number<std::int64_t>() > 0);
  CHECK(w.target_status("application-index").at("dead").to_number<std::int64_t>() == 0);
  CHECK(w.target_status("agent-workers").at("dead").to_number<std::int64_t>() == 0);
  // The same figures over HTTP, as an operator reads them.
  auto api = w.api();
  auto r = api.Get("/v1/propagation");
  REQUIRE(r);
  REQUIRE(r->status == 200);
  const auto http_status = json::parse(r->body);
  bool seen = false;
  for (const auto& t : http_status.at("targets").as_array())
    if (t.at("name") == "application-documents") {
      seen = true;
      CHECK(t.at("rate_limited").to_number<std::int64_t>() > 0);
      CHECK(t.at("dead").to_number<std::int64_t>() == 0);
    }
  CHECK(seen);

  check_never_older(log);
}

TEST_CASE(
    "propagation: a broker restart while 2000 persistent messages are consumed, every "
    "message journaled once, every final state in Twilio",
    "[propagation][rmq][restart]") {
  crm w;
  w.start();

  constexpr int apps = 20;
  constexpr int total = 2000;
  constexpr int versions = total / apps;
  auto id_of = [](int k) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%012d", k + 1);
    return std::string{buf};
  };
  // The CRM publishes a steady stream (25 messages every 50 ms) until it meets the broker's
  // restart (a failed publish or confirm, or the source losing its connection), holding back
  // the last 500 at least until then, so the stream surely spans the restart. Like MassTransit,
  // it publishes a batch again when the broker did not confirm it (the journal keeps one of
  // each messageId).
  constexpr int batch = 25;
  constexpr int held_back = 500;
  std::atomic<bool> outage{false};
  std::atomic<int> before_outage{0};
  std::atomic<int> republished{0};
  std::atomic<bool> published_all{false};
  std::string publish_error;
  auto note_outage = [&](int k) {
    if (!outage.exchange(true))
      before_outage = k;
  };
  std::thread crm_side([&] {
    const auto deadline = std::chrono::steady_clock::now() + 90s;
    std::unique_ptr<amqp::amqp_publisher> pub;
    for (int first = 0; first < total && std::chrono::steady_clock::now() < deadline;) {
      if (!outage && !w.source_status().at("connected").as_bool())
        note_outage(first);
      if (!outage && first >= total - held_back) {
        std::this_thread::sleep_for(10ms);  // waiting for the restart to begin
        continue;
      }
      try {
        if (!pub)
          pub = std::make_unique<amqp::amqp_publisher>(rabbitmq_params());
        for (int k = first; k < first + batch; ++k) {
          amqp::outgoing_message props;
          props.message_id = id_of(k);
          const int a = k % apps + 1;
          const int v = k / apps + 1;
          pub->publish(
              w.exchange("ApplicationStatusChanged"),
              envelope(props.message_id, "ApplicationStatusChanged",
                       status_changed("A-" + std::to_string(a), v, "s" + std::to_string(v))),
              props);
        }
        if (!pub->wait_for_confirms(10s) || !pub->failed().empty())
          throw amqp::amqp_error("not confirmed: " + pub->error());
        first += batch;
        if (!outage)
          std::this_thread::sleep_for(50ms);  // the stream's pace, not an assertion
      } catch (const std::exception& e) {
        note_outage(first);
        publish_error = e.what();
        pub.reset();
        ++republished;
        std::this_thread::sleep_for(100ms);  // the broker is restarting: try again shortly
      }
    }
    published_all = std::chrono::steady_clock::now() < deadline;
  });
  struct join_at_exit {
    std::thread& t;
    ~join_at_exit() {
      if (t.joinable())
        t.join();
    }
  } join{crm_side};

  REQUIRE(eventually([&] { return w.rt->last_sequence() >= 200; }, 30s));
  REQUIRE(testing::rabbitmq_script("restart") == 0);
  crm_side.join();
  INFO("published before the restart was noticed: " << before_outage.load()
                                                    << "; batches "
                                                       "published again: "
                                                    << republished.load()
                                                    << ", last error: " << publish_error);
  REQUIRE(published_all);
  REQUIRE(outage);
  CHECK(before_outage.load() < total);

  std::vector<std::string> ids;
  for (int k = 0; k < total; ++k)
    ids.push_back(id_of(k));
  REQUIRE(eventually(
      paced([&] { return w.rt->last_sequence() >= static_cast<std::uint64_t>(total); }), 60s));
  REQUIRE(eventually(paced([&] { return testing::ready_count(w.prefix) == 0; }), 30s));
  const auto events = journal(*w.rt);
  std::map<std::string, int> times;
  for (const auto& ev : events)
    ++times[ev.id];
  CHECK(events.size() == static_cast<std::size_t>(total));
  for (const auto& id : ids) {
    INFO(id);
    CHECK(times[id] == 1);
  }
  const auto source = w.source_status();
  INFO(json::serialize(source));
  CHECK(source.at("reconnects").to_number<std::int64_t>() >= 1);
  CHECK(source.at("delivered").to_number<std::int64_t>() >= total);

  REQUIRE(eventually(paced([&] { return w.settled("application", "A-", apps, versions); }), 30s));
  for (int a = 1; a <= apps; ++a) {
    INFO(a);
    const auto d = w.document("A-" + std::to_string(a));
    REQUIRE(d.is_object());
    CHECK(d.at("version") == versions);
    CHECK(d.at("status") == json::value("s" + std::to_string(versions)));
    CHECK(w.map_item("A-" + std::to_string(a)).at("version") == versions);
  }
  CHECK(w.rt->dead_letters().empty());
}

TEST_CASE(
    "propagation: an undecodable and an unmapped message go to the error queue with the "
    "reason, the good ones around them propagate",
    "[propagation][rmq]") {
  crm w;
  w.start();
  crm_publisher pub(w);
  pub.publish("ApplicationStatusChanged", status_changed("A-1", 1, "submitted"));
  pub.raw("ApplicationStatusChanged", "{\"messageId\": \"truncated",
          "application/vnd.masstransit+json");
  // A type the CRM publishes to a bound exchange but switchboard has no mapping for.
  pub.raw("ApplicationStatusChanged",
          envelope("00000000-0000-4000-8000-999999999999", "LeadCreated", {{"leadId", "L-1"}}),
          "application/vnd.masstransit+json");
  pub.publish("ApplicationStatusChanged", status_changed("A-1", 2, "approved"));
  pub.publish("ApplicationStatusChanged", status_changed("A-2", 1, "submitted", "AM-2"));
  pub.confirm();

  REQUIRE(eventually(paced([&] {
                       return w.at_version("application", "A-1", 2) &&
                              w.at_version("application", "A-2", 1) && w.all_written();
                     }),
                     30s));
  CHECK(w.document("A-1").at("status") == "approved");
  CHECK(w.document("A-2").at("accountManager") == "Alan Turing");
  REQUIRE(eventually(
      paced([&] { return w.source_status().at("acked").to_number<std::int64_t>() == 5; }), 10s));
  CHECK(w.source_status().at("to_error_queue").to_number<std::int64_t>() == 2);
  CHECK(journal(*w.rt).size() == 3);

  amqp::connection c(rabbitmq_params());
  auto undecodable = c.basic_get(w.prefix + "_error");
  auto unmapped = c.basic_get(w.prefix + "_error");
  REQUIRE(undecodable);
  REQUIRE(unmapped);
  CHECK_FALSE(c.basic_get(w.prefix + "_error"));
  CHECK(undecodable->body == "{\"messageId\": \"truncated");
  CHECK_THAT(undecodable->header("MT-Reason").value_or(""), Catch::Contains("not valid JSON"));
  CHECK_THAT(unmapped->header("MT-Reason").value_or(""),
             Catch::Contains("urn:message:Crm.Events:LeadCreated"));
  CHECK(unmapped->header("x-original-exchange") == w.exchange("ApplicationStatusChanged"));
  CHECK(testing::ready_count(w.prefix) == 0);
}

TEST_CASE(
    "propagation: a rebuild over HTTP re-reads the CRM and rewrites the documents, state "
    "readable over HTTP, bad rebuild requests answered 400",
    "[propagation][rmq][rebuild]") {
  crm w;
  w.start();
  crm_publisher pub(w);
  pub.publish("ApplicationStatusChanged", status_changed("A-1", 1, "submitted", "AM-1", "P-1"));
  pub.publish("ApplicationStatusChanged", status_changed("A-2", 1, "submitted", "AM-2", "P-2"));
  pub.confirm();
  REQUIRE(eventually(paced([&] { return w.settled("application", "A-", 2, 1); }), 30s));
  REQUIRE(w.document("A-1").is_object());
  CHECK(w.document("A-1").at("accountManager") == "Grace Hopper");

  // The CRM changes a row without announcing it: only a rebuild picks it up.
  {
    SQLite::Database db(w.crm_db(), SQLite::OPEN_READWRITE);
    db.exec("UPDATE account_managers SET name = 'Grace Brewster Hopper' WHERE id = 'AM-1'");
  }
  auto api = w.api();
  auto r = api.Post("/v1/rebuild", R"({"kind":"application"})", "application/json");
  REQUIRE(r);
  INFO(r->body);
  REQUIRE(r->status == 202);
  const auto accepted = json::parse(r->body);
  const std::string status_url{accepted.at("status_url").as_string()};
  CHECK(r->get_header_value("Location") == status_url);
  json::value progress;
  REQUIRE(eventually(paced([&] {
                       auto s = api.Get(status_url);
                       if (!s || s->status != 200)
                         return false;
                       progress = json::parse(s->body);
                       return progress.at("state") == "done";
                     }),
                     30s));
  INFO(json::serialize(progress));
  CHECK(progress.at("kind") == "application");
  CHECK(progress.at("total").to_number<std::int64_t>() == 2);
  CHECK(progress.at("done").to_number<std::int64_t>() == 2);
  CHECK(progress.at("failed").to_number<std::int64_t>() == 0);

  // Done means re-enriched and stored; the writes follow.
  REQUIRE(eventually(paced([&] { return w.all_written(); }), 30s));
  CHECK(w.document("A-1").at("accountManager") == "Grace Brewster Hopper");
  CHECK(w.map_item("A-1").at("accountManager") == "Grace Brewster Hopper");
  CHECK(w.document("A-2").at("accountManager") == "Alan Turing");
  CHECK(w.document("A-1").at("status") == "submitted");  // the entity's own fields are kept

  // The stored state, as the API shows it.
  auto s = api.Get("/v1/state/application/A-1");
  REQUIRE(s);
  REQUIRE(s->status == 200);
  const auto state = json::parse(s->body);
  CHECK(state.at("kind") == "application");
  CHECK(state.at("id") == "A-1");
  CHECK(state.at("version") == 1);
  CHECK(state.at("state").at("status") == "submitted");
  CHECK(state.at("state").at("accountManager").at("name") == "Grace Brewster Hopper");
  CHECK(state.at("state").at("applicant").at("name") == "Ada Lovelace");
  auto missing = api.Get("/v1/state/application/A-404");
  REQUIRE(missing);
  CHECK(missing->status == 404);
  CHECK_THAT(missing->body, Catch::Contains("A-404"));

  // Bad requests: 400 with a message that says what to send.
  struct bad_case {
    const char* body;
    const char* says;
  };
  for (const auto& bad :
       {bad_case{"[\"application\"]", "JSON object"}, bad_case{"{\"kind\": 7}", "string members"},
        bad_case{"not json", "JSON object"},
        bad_case{"{\"id\": \"A-1\"}", "needs its \\\"kind\\\""},
        bad_case{"{\"kind\": \"application\", \"entity\": \"A-1\"}",
                 "unknown member \\\"entity\\\""}}) {
    INFO(bad.body);
    auto b = api.Post("/v1/rebuild", bad.body, "application/json");
    REQUIRE(b);
    CHECK(b->status == 400);
    CHECK_THAT(b->body, Catch::Contains(bad.says));
  }
  // Without the token: 401, nothing started.
  auto anonymous = http_client("http://" + w.rt->listen_address());
  auto u = anonymous.Post("/v1/rebuild", R"({"kind":"application"})", "application/json");
  REQUIRE(u);
  CHECK(u->status == 401);
  CHECK_THAT(u->body, Catch::Contains("SWITCHBOARD_API_TOKEN"));
  auto unknown = api.Get("/v1/rebuild/rebuild-999");
  REQUIRE(unknown);
  CHECK(unknown->status == 404);

  // After the rebuild, live events see the new row too (the rebuild refreshed the cache).
  pub.publish("ApplicationStatusChanged", status_changed("A-1", 2, "approved", "AM-1", "P-1"));
  // An announced change: the CRM renames AM-2 and says so; the next A-2 event shows it.
  {
    SQLite::Database db(w.crm_db(), SQLite::OPEN_READWRITE);
    db.exec("UPDATE account_managers SET name = 'Alan M. Turing' WHERE id = 'AM-2'");
  }
  pub.publish("AccountManagerUpdated", {{"accountManagerId", "AM-2"}});
  pub.publish("ApplicationStatusChanged", status_changed("A-2", 2, "approved", "AM-2", "P-2"));
  pub.confirm();
  REQUIRE(eventually(paced([&] { return w.settled("application", "A-", 2, 2); }), 30s));
  CHECK(w.document("A-1") == json::value{{"status", "approved"},
                                         {"applicant", "Ada Lovelace"},
                                         {"applicantPhone", "+15550199001"},
                                         {"accountManager", "Grace Brewster Hopper"},
                                         {"accountManagerPhone", "+15550100001"},
                                         {"version", 2}});
  CHECK(w.document("A-2").at("accountManager") == "Alan M. Turing");

  // A rebuild of one entity.
  auto one = api.Post("/v1/rebuild", R"({"kind":"application","id":"A-2"})", "application/json");
  REQUIRE(one);
  REQUIRE(one->status == 202);
  const std::string one_url{json::parse(one->body).at("status_url").as_string()};
  REQUIRE(eventually(paced([&] {
                       auto st = api.Get(one_url);
                       return st && st->status == 200 &&
                              json::parse(st->body).at("state") == "done";
                     }),
                     30s));
  const auto one_done = json::parse(api.Get(one_url)->body);
  CHECK(one_done.at("entity_id") == "A-2");
  CHECK(one_done.at("total").to_number<std::int64_t>() == 1);
  CHECK(one_done.at("done").to_number<std::int64_t>() == 1);
}

TEST_CASE(
    "propagation: a restarted runtime resumes, re-applies no event, and writes what was "
    "still pending",
    "[propagation][rmq][resume]") {
  crm w;
  w.cfg.targets[0].max_attempts = 1000;  // documents keep failing below; they must not go dead
  w.start();
  // Twilio refuses every document write while the first runtime runs.
  w.set_faults(R"({"rules": [{"route": "POST /sync/v1/Services/*/Documents", "rate_5xx": 1.0,
                               "status_5xx": 503},
                              {"route": "POST /sync/v1/Services/*/Documents/*", "rate_5xx": 1.0,
                               "status_5xx": 503}]})");
  std::vector<std::string> first_ids;
  {
    crm_publisher pub(w);
    for (int v = 1; v <= 3; ++v)
      for (int a = 1; a <= 4; ++a)
        pub.publish("ApplicationStatusChanged",
                    status_changed("A-" + std::to_string(a), v, "s" + std::to_string(v)));
    pub.confirm();
    first_ids = pub.ids;
  }
  REQUIRE(eventually(paced([&] {
                       for (int a = 1; a <= 4; ++a)
                         if (!w.at_version("application", "A-" + std::to_string(a), 3))
                           return false;
                       // The map items land; the documents stay pending.
                       return w.target_status("application-index").at("pending") == 0 &&
                              w.target_status("application-documents").at("pending") == 4;
                     }),
                     30s));
  CHECK(w.document("A-1").is_null());
  std::map<std::string, json::value> revisions;
  for (int a = 1; a <= 4; ++a) {
    const auto id = "A-" + std::to_string(a);
    revisions[id] = w.rt->entity_state("application", id)->at("revision");
  }
  const auto journaled = journal(*w.rt).size();
  CHECK(journaled == first_ids.size());
  w.stop();

  // While switchboard is down, Twilio recovers and the CRM goes on publishing (the durable
  // queue keeps it), including one message again (as a MassTransit retry would).
  w.clear_faults();
  {
    auto c = w.twilio_client();
    REQUIRE(c.Delete("/_emulator/requests"));
  }
  {
    crm_publisher pub(w);
    amqp::outgoing_message props;
    props.message_id = first_ids.back();
    pub.pub.publish(
        w.exchange("ApplicationStatusChanged"),
        envelope(first_ids.back(), "ApplicationStatusChanged", status_changed("A-4", 3, "s3")),
        props);
    pub.n = 1000;
    pub.publish("ApplicationStatusChanged", status_changed("A-2", 4, "s4"));
    pub.confirm();
  }
  // A new runtime on the same data directory.
  w.start();
  REQUIRE(eventually(paced([&] {
                       return w.at_version("application", "A-2", 4) &&
                              w.source_status().at("acked") == 2 && w.all_written();
                     }),
                     30s));
  for (int a = 1; a <= 4; ++a) {
    const auto id = "A-" + std::to_string(a);
    INFO(id);
    const auto d = w.document(id);
    REQUIRE(d.is_object());
    CHECK(d.at("version") == (a == 2 ? 4 : 3));
    CHECK(d.at("status") == (a == 2 ? "s4" : "s3"));
  }
  // The repeat was journaled once and applied nowhere: no entity but A-2 changed revision.
  CHECK(journal(*w.rt).size() == journaled + 1);
  for (const auto& [id, revision] : revisions) {
    INFO(id);
    if (id != "A-2")
      CHECK(w.rt->entity_state("application", id)->at("revision") == revision);
  }
  // Nothing written before the stop was written again: the only map item write is A-2's.
  for (const auto& [object, versions] : applied_versions(w.request_log())) {
    INFO(object);
    if (object.rfind("item:", 0) == 0)
      CHECK(object == "item:A-2");
  }
  CHECK(w.rt->dead_letters().empty());
}
