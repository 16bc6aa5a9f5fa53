// Lead conversations as a user of the runtime sees them (src/leads.cpp on the durable
// invocation engine, src/actors/invocations.cpp): every web-to-text rule of DESIGN.md, inbound
// webhooks, bad input, durable timers, retries and parking, resume after a restart, outcomes
// unknown after a failure, and form-lead forwarding. Real parts only: the Twilio emulator over
// HTTP on 127.0.0.1, SQLite files, the daemon's HTTP server, local HTTP receivers.

#include "switchboard/runtime.hpp"

#include "adapters/twilio/emulator.hpp"
#include "adapters/twilio/signature.hpp"
#include "support/eventually.hpp"
#include "support/temp_dir.hpp"

#include <httplib.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>

using namespace std::chrono_literals;
using namespace switchboard;
using switchboard::testing::eventually;
using switchboard::testing::temp_dir;
namespace json = boost::json;
namespace twilio = switchboard::adapters::twilio;

namespace {

constexpr const char* account_sid = "AC00112233445566778899aabbccdd0001";
constexpr const char* auth_token = "leads-test-token";

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string s(const json::value& v, const char* key) {
  const auto* m = v.as_object().if_contains(key);
  return m != nullptr && m->is_string() ? std::string(m->get_string()) : std::string{};
}

std::int64_t i(const json::value& v, const char* key) {
  return v.as_object().at(key).to_number<std::int64_t>();
}

/// The emulator, plus what a test reads from it.
struct emulator_fixture {
  twilio::emulator emu;
  std::string base;
  emulator_fixture() : emu(options()) {
    ::setenv("TWILIO_ACCOUNT_SID", account_sid, 1);
    ::setenv("TWILIO_AUTH_TOKEN", auth_token, 1);
    emu.start();
    base = emu.base_url();
  }
  static twilio::emulator_options options() {
    twilio::emulator_options o;
    o.account_sid = account_sid;
    o.auth_token = auth_token;
    return o;
  }
  httplib::Client client() const {
    httplib::Client c(base);
    c.set_basic_auth(account_sid, auth_token);
    c.set_read_timeout(10, 0);
    return c;
  }
  json::array conversations() const {
    auto res = client().Get("/_emulator/state");
    REQUIRE(res);
    REQUIRE(res->status == 200);
    return json::parse(res->body).at("conversations").at("conversations").as_array();
  }
  std::optional<json::object> conversation(const std::string& sid) const {
    for (auto& c : conversations())
      if (s(c, "sid") == sid)
        return c.as_object();
    return std::nullopt;
  }
  void faults(const std::string& body) const {
    auto res = client().Post("/_emulator/faults", body, "application/json");
    REQUIRE(res);
    REQUIRE(res->status == 200);
  }
  void clear_faults() const { client().Delete("/_emulator/faults"); }
  /// Every message send answered 503 and not applied: each retry looks for the message first,
  /// finds none and sends again, until the budget runs out.
  void refuse_messages() const {
    faults(R"({"seed": 1, "rules": [{"route": "POST /conversations/v1/Conversations/*/Messages",
               "rate_5xx": 1.0, "status_5xx": 503}]})");
  }
  /// The SMS the account sent through the Messages API (outside conversations), oldest first.
  json::array sms() const {
    auto res = client().Get("/_emulator/state");
    REQUIRE(res);
    REQUIRE(res->status == 200);
    return json::parse(res->body).at("messaging").at("messages").as_array();
  }
  /// An SMS from `from` to `to` as the phone network would deliver it.
  int inbound_sms(const std::string& from, const std::string& to, const std::string& body) const {
    httplib::Params p{{"From", from}, {"To", to}, {"Body", body}};
    auto res = client().Post("/_emulator/inbound-sms", p);
    REQUIRE(res);
    return res->status;
  }
};

/// Messages of a conversation on the emulator whose attributes name `step` (a suffix).
int messages_of_step(const json::object& conv, const std::string& lead, const std::string& step) {
  int n = 0;
  for (const auto& m : conv.at("messages").as_array()) {
    json::error_code ec;
    auto a = json::parse(s(m, "attributes"), ec);
    if (ec || !a.is_object())
      continue;
    const auto st = s(a, "step");
    if (s(a, "lead") == lead && st.size() >= step.size() &&
        st.compare(st.size() - step.size(), step.size(), step) == 0)
      ++n;
  }
  return n;
}

config test_config(const temp_dir& dir, const emulator_fixture& emu) {
  config cfg;
  cfg.data_dir = dir.path.string();
  cfg.http.enabled = false;
  cfg.drain_timeout = 2s;
  cfg.supervision.backoff_initial = 1ms;
  cfg.twilio.base_url = emu.base;
  cfg.twilio.read_timeout = 2s;
  cfg.leads.proxy_numbers = {"+15550100001", "+15550100002", "+15550100003"};
  cfg.leads.reminder_after = 0ms;
  cfg.leads.close_inactive_after = 0ms;
  cfg.leads.backoff_initial = 5ms;
  cfg.leads.backoff_max = 50ms;
  cfg.leads.answer_timeout = 15s;
  cfg.leads.dealers = {
      {"D1",
       "Acme Motors",
       {{"north", "North", "+15550001001"}, {"south", "South", "+15550001002"}}},
      {"D2",
       "Beta Cars",
       {{"east", "East", "+15550002001"}, {"west", "West", "+15550002001"}}},  // one number
  };
  return cfg;
}

keyed_answer submit(runtime& rt, const std::string& id, const std::string& phone,
                    const std::string& dealer, const std::string& location, bool replace = false,
                    const std::string& message = "Is it available?") {
  keyed_request r;
  r.service = "leads";
  r.key = id;
  r.handler = id.empty() ? "" : "submit";
  r.body = json::serialize(json::object{{"customer_name", "Ana"},
                                        {"customer_phone", phone},
                                        {"dealer_id", dealer},
                                        {"location_id", location},
                                        {"message", message},
                                        {"replace", replace}});
  return rt.invoke(r);
}

keyed_answer get(runtime& rt, const std::string& service, const std::string& key) {
  keyed_request r;
  r.method = "GET";
  r.service = service;
  r.key = key;
  return rt.invoke(r);
}

keyed_answer post(runtime& rt, const std::string& service, const std::string& key,
                  const std::string& handler, const std::string& body = "{}") {
  keyed_request r;
  r.service = service;
  r.key = key;
  r.handler = handler;
  r.body = body;
  return rt.invoke(r);
}

json::value lead_of(runtime& rt, const std::string& id) {
  auto a = get(rt, "leads", id);
  REQUIRE(a.status == 200);
  return a.body;
}

}  // namespace

TEST_CASE("a lead opens a conversation with both SMS participants and sends its first message once",
          "[leads]") {
  emulator_fixture emu;
  temp_dir dir;
  runtime rt{test_config(dir, emu)};
  rt.start();
  auto a = submit(rt, "L1", "+15557770001", "D1", "north");
  REQUIRE(a.status == 201);
  const auto& lead = a.body.at("lead");
  CHECK(s(lead, "status") == "open");
  CHECK(s(lead, "location_phone") == "+15550001001");
  CHECK(s(lead, "proxy_number") == "+15550100001");
  const auto sid = s(lead, "conversation_sid");
  REQUIRE(sid.rfind("CH", 0) == 0);

  auto conv = emu.conversation(sid);
  REQUIRE(conv);
  CHECK(s(*conv, "unique_name") == "sb-" + s(lead, "conversation_id"));
  std::set<std::pair<std::string, std::string>> bindings;
  for (auto& p : conv->at("participants").as_array())
    bindings.emplace(s(p.at("messaging_binding"), "address"),
                     s(p.at("messaging_binding"), "proxy_address"));
  CHECK(bindings == std::set<std::pair<std::string, std::string>>{
                        {"+15557770001", "+15550100001"}, {"+15550001001", "+15550100001"}});
  REQUIRE(conv->at("messages").as_array().size() == 1);
  CHECK(s(conv->at("messages").as_array()[0], "body").find("Is it available?") !=
        std::string::npos);
  CHECK(messages_of_step(*conv, "L1", "/lead.first-message") == 1);

  // The same submission again (same id): the first answer, nothing new on Twilio.
  auto again = submit(rt, "L1", "+15557770001", "D1", "north");
  CHECK(again.status == 201);
  CHECK(emu.conversations().size() == 1);
  CHECK(emu.conversation(sid)->at("messages").as_array().size() == 1);
  rt.stop();
}

TEST_CASE(
    "same phone, dealer and location: already open, a resubmit with replace closes it and opens a "
    "new one",
    "[leads]") {
  emulator_fixture emu;
  temp_dir dir;
  runtime rt{test_config(dir, emu)};
  rt.start();
  REQUIRE(submit(rt, "L1", "+15557770001", "D1", "north").status == 201);
  auto dup = submit(rt, "L2", "+15557770001", "D1", "north");
  CHECK(dup.status == 409);
  CHECK(s(dup.body, "status") == "already_open");
  CHECK(s(dup.body, "lead_id") == "L1");
  CHECK(s(dup.body, "error").find("\"replace\": true") != std::string::npos);
  CHECK(get(rt, "leads", "L2").status == 404);  // nothing was recorded for L2

  auto replaced = submit(rt, "L2", "+15557770001", "D1", "north", true);
  REQUIRE(replaced.status == 201);
  CHECK(s(replaced.body.at("lead"), "status") == "open");
  auto old = lead_of(rt, "L1");
  CHECK(s(old, "status") == "closed");
  CHECK(s(old, "close_reason") == "replaced");
  CHECK(s(old, "replaced_by") == "L2");
  // The new lead keeps the conversation (a conversation stays open while any lead uses it).
  CHECK(s(replaced.body.at("lead"), "conversation_id") == s(old, "conversation_id"));
  auto conv = get(rt, "conversations", s(old, "conversation_id"));
  CHECK(s(conv.body, "status") == "open");
  REQUIRE(emu.conversations().size() == 1);
  auto on_twilio = emu.conversation(s(old, "conversation_sid"));
  CHECK(s(*on_twilio, "state") == "active");
  CHECK(messages_of_step(*on_twilio, "L2", "/lead.first-message") == 1);
  rt.stop();
}

TEST_CASE("same phone and dealer at another location: two leads, two conversations", "[leads]") {
  emulator_fixture emu;
  temp_dir dir;
  runtime rt{test_config(dir, emu)};
  rt.start();
  auto north = submit(rt, "L1", "+15557770001", "D1", "north");
  auto south = submit(rt, "L2", "+15557770001", "D1", "south");
  REQUIRE(north.status == 201);
  REQUIRE(south.status == 201);
  CHECK(s(north.body.at("lead"), "conversation_id") != s(south.body.at("lead"), "conversation_id"));
  CHECK(s(north.body.at("lead"), "conversation_sid") !=
        s(south.body.at("lead"), "conversation_sid"));
  CHECK(s(south.body.at("lead"), "location_phone") == "+15550001002");
  // One customer in two open conversations: each binding pair is unique, so the proxies differ.
  CHECK(s(north.body.at("lead"), "proxy_number") != s(south.body.at("lead"), "proxy_number"));
  CHECK(emu.conversations().size() == 2);
  rt.stop();
}

TEST_CASE(
    "two locations sharing one phone number and one customer: two leads sharing one conversation",
    "[leads]") {
  emulator_fixture emu;
  temp_dir dir;
  runtime rt{test_config(dir, emu)};
  rt.start();
  auto east = submit(rt, "L1", "+15557770001", "D2", "east");
  auto west = submit(rt, "L2", "+15557770001", "D2", "west");
  REQUIRE(east.status == 201);
  REQUIRE(west.status == 201);
  CHECK(s(east.body.at("lead"), "conversation_id") == s(west.body.at("lead"), "conversation_id"));
  const auto sid = s(east.body.at("lead"), "conversation_sid");
  CHECK(s(west.body.at("lead"), "conversation_sid") == sid);
  REQUIRE(emu.conversations().size() == 1);
  auto conv = emu.conversation(sid);
  CHECK(conv->at("participants").as_array().size() == 2);
  CHECK(messages_of_step(*conv, "L1", "/lead.first-message") == 1);
  CHECK(messages_of_step(*conv, "L2", "/lead.first-message") == 1);

  SECTION("the conversation stays open while any lead uses it") {
    REQUIRE(post(rt, "leads", "L1", "close").status == 200);
    CHECK(s(lead_of(rt, "L1"), "status") == "closed");
    CHECK(s(get(rt, "conversations", s(east.body.at("lead"), "conversation_id")).body, "status") ==
          "open");
    CHECK(s(*emu.conversation(sid), "state") == "active");
    REQUIRE(post(rt, "leads", "L2", "close").status == 200);
    CHECK(eventually([&] { return s(*emu.conversation(sid), "state") == "closed"; }));
    CHECK(eventually([&] {
      return s(get(rt, "conversations", s(east.body.at("lead"), "conversation_id")).body,
               "status") == "closed";
    }));
  }
  rt.stop();
}

TEST_CASE("a location that changes its number: open leads keep theirs, new leads use the new one",
          "[leads]") {
  emulator_fixture emu;
  temp_dir dir;
  runtime rt{test_config(dir, emu)};
  rt.start();
  REQUIRE(submit(rt, "L1", "+15557770001", "D1", "north").status == 201);
  auto changed =
      post(rt, "dealers", "D1", "set_location", R"({"location":"north","phone":"+15550001009"})");
  REQUIRE(changed.status == 200);
  CHECK(s(changed.body, "previous_phone") == "+15550001001");
  CHECK(s(get(rt, "dealers", "D1").body.at("locations").as_array()[0], "phone") == "+15550001009");

  CHECK(s(lead_of(rt, "L1"), "location_phone") == "+15550001001");
  auto fresh = submit(rt, "L2", "+15557770002", "D1", "north");
  REQUIRE(fresh.status == 201);
  CHECK(s(fresh.body.at("lead"), "location_phone") == "+15550001009");
  auto conv = emu.conversation(s(fresh.body.at("lead"), "conversation_sid"));
  bool new_number = false;
  for (auto& p : conv->at("participants").as_array())
    new_number = new_number || s(p.at("messaging_binding"), "address") == "+15550001009";
  CHECK(new_number);
  // The old lead's conversation still binds the old number.
  auto old_conv = emu.conversation(s(lead_of(rt, "L1"), "conversation_sid"));
  bool old_number = false;
  for (auto& p : old_conv->at("participants").as_array())
    old_number = old_number || s(p.at("messaging_binding"), "address") == "+15550001001";
  CHECK(old_number);

  SECTION("bad dealer input changes nothing") {
    CHECK(post(rt, "dealers", "D1", "set_location", R"({"location":"north","phone":"555-1234"})")
              .status == 400);
    CHECK(
        post(rt, "dealers", "D1", "set_location", R"({"location":"north","phone":"+15550100001"})")
            .status == 400);
    CHECK(s(get(rt, "dealers", "D1").body.at("locations").as_array()[0], "phone") ==
          "+15550001009");
  }
  rt.stop();
}

TEST_CASE("a number set at run time outlives restarts until the file gives another", "[leads]") {
  emulator_fixture emu;
  temp_dir dir;
  auto cfg = test_config(dir, emu);
  auto phone_of_north = [](runtime& rt) {
    return s(get(rt, "dealers", "D1").body.at("locations").as_array()[0], "phone");
  };
  {
    runtime rt{cfg};
    rt.start();
    REQUIRE(
        post(rt, "dealers", "D1", "set_location", R"({"location":"north","phone":"+15550001009"})")
            .status == 200);
    rt.stop();
  }
  {
    runtime rt{cfg};  // the same file
    rt.start();
    CHECK(phone_of_north(rt) == "+15550001009");
    rt.stop();
  }
  cfg.leads.dealers[0].locations[0].phone = "+15550001077";  // the file changes
  runtime rt{cfg};
  rt.start();
  CHECK(phone_of_north(rt) == "+15550001077");
  rt.stop();
}

TEST_CASE("bad lead input gets a clear error and changes nothing", "[leads]") {
  emulator_fixture emu;
  temp_dir dir;
  runtime rt{test_config(dir, emu)};
  rt.start();
  auto bad_phone = submit(rt, "L1", "555-0100", "D1", "north");
  CHECK(bad_phone.status == 400);
  CHECK(s(bad_phone.body, "field") == "customer_phone");
  CHECK(s(bad_phone.body, "error").find("E.164") != std::string::npos);
  auto unknown = submit(rt, "L1", "+15557770001", "D9", "north");
  CHECK(unknown.status == 404);
  CHECK(s(unknown.body, "error").find("D9") != std::string::npos);
  auto long_message =
      submit(rt, "L1", "+15557770001", "D1", "north", false, std::string(1601, 'x'));
  CHECK(long_message.status == 400);
  CHECK(s(long_message.body, "field") == "message");
  CHECK(s(long_message.body, "error").find("1601") != std::string::npos);
  keyed_request not_json;
  not_json.service = "leads";
  not_json.key = "L1";
  not_json.handler = "submit";
  not_json.body = "{nope";
  CHECK(rt.invoke(not_json).status == 400);
  CHECK(get(rt, "leads", "L1").status == 404);
  CHECK(get(rt, "invocations", "").body.at("invocations").as_array().empty());
  CHECK(emu.conversations().empty());
  rt.stop();
  auto after_stop = submit(rt, "L1", "+15557770001", "D1", "north");
  CHECK(after_stop.status == 503);
  CHECK(s(after_stop.body, "error").find("stopping") != std::string::npos);
}

TEST_CASE("inbound SMS reach their leads through signed webhooks, once per MessageSid", "[leads]") {
  emulator_fixture emu;
  temp_dir dir;
  auto cfg = test_config(dir, emu);
  const auto port = free_port();
  cfg.http.enabled = true;
  cfg.http.port = port;
  const auto url = "http://127.0.0.1:" + std::to_string(port) + "/v1/webhooks/twilio/conversations";
  cfg.leads.webhook_url = url;
  ::setenv("SWITCHBOARD_API_TOKEN", "leads-api-token", 1);
  runtime rt{cfg};
  rt.start();
  auto a = submit(rt, "L1", "+15557770001", "D1", "north");
  REQUIRE(a.status == 201);
  const auto proxy = s(a.body.at("lead"), "proxy_number");
  CHECK(emu.inbound_sms("+15557770001", proxy, "Yes, is it still there?") == 201);
  CHECK(eventually([&] { return i(lead_of(rt, "L1"), "customer_messages") == 1; }));
  CHECK(emu.inbound_sms("+15550001001", proxy, "It is! Come by at 3") == 201);
  CHECK(eventually([&] { return i(lead_of(rt, "L1"), "dealer_messages") == 1; }));

  // A replay of a delivered webhook (same MessageSid, validly signed) changes nothing.
  std::vector<std::pair<std::string, std::string>> params{
      {"EventType", "onMessageAdded"},
      {"ConversationSid", s(a.body.at("lead"), "conversation_sid")},
      {"MessageSid", "IM00000000000000000000000000000001"},
      {"Author", "+15557770001"},
      {"Body", "hi"}};
  const auto signature = twilio::twilio_signature(auth_token, url, params);
  auto first = rt.conversations_webhook(params, signature);
  CHECK(first.status == 200);
  CHECK(s(first.body, "status") == "routed");
  CHECK(eventually([&] { return i(lead_of(rt, "L1"), "customer_messages") == 2; }));
  auto replay = rt.conversations_webhook(params, signature);
  CHECK(replay.status == 200);
  CHECK(s(replay.body, "status") == "duplicate");

  // Over HTTP: a bad or missing signature is refused, and so is a bad bearer token elsewhere.
  httplib::Client http("127.0.0.1", port);
  httplib::Params form;
  for (auto& [k, v] : params)
    form.emplace(k, v);
  form.erase("MessageSid");
  form.emplace("MessageSid", "IM00000000000000000000000000000002");
  auto forged = http.Post("/v1/webhooks/twilio/conversations",
                          httplib::Headers{{"X-Twilio-Signature", signature}}, form);
  REQUIRE(forged);
  CHECK(forged->status == 403);
  auto unsigned_call = http.Post("/v1/webhooks/twilio/conversations", form);
  REQUIRE(unsigned_call);
  CHECK(unsigned_call->status == 403);
  auto bad_token = http.Get("/v1/leads/L1", httplib::Headers{{"Authorization", "Bearer wrong"}});
  REQUIRE(bad_token);
  CHECK(bad_token->status == 401);
  auto good_token =
      http.Get("/v1/leads/L1", httplib::Headers{{"Authorization", "Bearer leads-api-token"}});
  REQUIRE(good_token);
  CHECK(good_token->status == 200);
  std::this_thread::sleep_for(100ms);
  CHECK(i(lead_of(rt, "L1"), "customer_messages") == 2);
  rt.stop();
}

TEST_CASE("a message whose outcome was unknown is found by its step id, not sent twice",
          "[leads]") {
  emulator_fixture emu;
  temp_dir dir;
  runtime rt{test_config(dir, emu)};
  rt.start();
  // Twilio stores the message and then fails with a 500: the client cannot know it happened.
  emu.faults(R"({"seed": 3, "rules": [{"route": "POST /conversations/v1/Conversations/*/Messages",
                 "rate_5xx": 1.0, "status_5xx": 500, "apply_on_5xx": true}]})");
  auto a = submit(rt, "L1", "+15557770001", "D1", "north");
  REQUIRE(a.status == 201);
  auto conv = emu.conversation(s(a.body.at("lead"), "conversation_sid"));
  CHECK(messages_of_step(*conv, "L1", "/lead.first-message") == 1);
  rt.stop();
}

TEST_CASE("under 20 % 429s and 5 % applied-then-503s every lead gets its first message once",
          "[leads][faults]") {
  emulator_fixture emu;
  temp_dir dir;
  auto cfg = test_config(dir, emu);
  // One proxy number per customer at the one location, so no lead waits for a free number.
  cfg.leads.proxy_numbers.clear();
  for (int n = 0; n < 200; ++n)
    cfg.leads.proxy_numbers.push_back("+1555020" + std::to_string(1000 + n));
  cfg.leads.max_attempts = 40;  // a step meets 25 % faults: never parked by bad luck
  runtime rt{cfg};
  rt.start();
  // Every request: 20 % answered 429 (not applied), 5 % applied and then answered 503.
  emu.faults(R"({"seed": 19, "rules": [{"route": "*", "rate_429": 0.2, "retry_after_s": 0,
                 "rate_5xx": 0.05, "status_5xx": 503, "apply_on_5xx": true}]})");
  // Message sends that Twilio applied and answered 503: the case under test.
  auto applied_503_sends = [&] {
    auto res = emu.client().Get("/_emulator/requests");
    REQUIRE(res);
    const auto log = json::parse(res->body);
    int n = 0;
    for (const auto& r : log.at("requests").as_array()) {
      const auto path = s(r, "path");
      const auto* status = r.as_object().if_contains("status");
      if (s(r, "method") == "POST" && path.size() > 9 &&
          path.compare(path.size() - 9, 9, "/Messages") == 0 && status != nullptr &&
          status->is_int64() && status->as_int64() == 503)
        ++n;
    }
    return n;
  };
  // Rounds of 40 concurrent leads until one of their first messages met an applied 503 (about
  // 1 in 15 rounds meets none), at most 5 rounds.
  std::vector<std::string> leads;
  for (int round = 0; round < 5 && (round == 0 || applied_503_sends() == 0); ++round) {
    std::vector<std::thread> submitters;
    for (int k = 0; k < 40; ++k) {
      const auto n = round * 40 + k;
      leads.push_back("F" + std::to_string(n));
      submitters.emplace_back([&rt, id = leads.back(), n] {
        submit(rt, id, "+1555888" + std::to_string(1000 + n), "D1", "north");
      });
    }
    for (auto& t : submitters)
      t.join();
    for (const auto& id : leads)
      REQUIRE(eventually([&] { return s(lead_of(rt, id), "status") == "open"; }, 60s));
  }
  const auto met = applied_503_sends();
  INFO(leads.size() << " leads; first-message sends applied then answered 503: " << met);
  REQUIRE(met > 0);
  emu.clear_faults();
  int twice = 0;
  for (const auto& id : leads) {
    auto conv = emu.conversation(s(lead_of(rt, id), "conversation_sid"));
    REQUIRE(conv);
    const auto sent = messages_of_step(*conv, id, "/lead.first-message");
    CHECK(sent == 1);
    twice += sent > 1 ? 1 : 0;
  }
  CHECK(twice == 0);
  rt.stop();
}

TEST_CASE("every Twilio write that times out after taking effect is looked up, never repeated",
          "[leads]") {
  emulator_fixture emu;
  temp_dir dir;
  auto cfg = test_config(dir, emu);
  cfg.twilio.read_timeout = 1s;
  cfg.leads.webhook_url =
      "http://127.0.0.1:9/v1/webhooks/twilio/conversations";  // registered, never called
  runtime rt{cfg};
  rt.start();
  // Each write is applied and then never answered: the client gives up without knowing.
  emu.faults(R"({"seed": 5, "rules": [
      {"route": "POST /conversations/v1/Conversations", "rate_timeout": 1.0, "timeout_applies": true},
      {"route": "POST /conversations/v1/Conversations/*/Webhooks", "rate_timeout": 1.0, "timeout_applies": true},
      {"route": "POST /conversations/v1/Conversations/*/Participants", "rate_timeout": 1.0, "timeout_applies": true},
      {"route": "POST /conversations/v1/Conversations/*/Messages", "rate_timeout": 1.0, "timeout_applies": true}]})");
  auto a = submit(rt, "L1", "+15557770001", "D1", "north");
  REQUIRE(a.status == 201);
  REQUIRE(emu.conversations().size() == 1);
  auto conv = emu.conversations()[0].as_object();
  CHECK(s(conv, "unique_name") == "sb-" + s(a.body.at("lead"), "conversation_id"));
  CHECK(conv.at("participants").as_array().size() == 2);
  CHECK(conv.at("webhooks").as_array().size() == 1);
  CHECK(messages_of_step(conv, "L1", "/lead.first-message") == 1);
  CHECK(conv.at("messages").as_array().size() == 1);
  rt.stop();
}

TEST_CASE("a binding held by an existing conversation (50416) is adopted, never failing the lead",
          "[leads]") {
  emulator_fixture emu;
  temp_dir dir;
  runtime rt{test_config(dir, emu)};
  // A conversation made outside switchboard already binds the customer through the first proxy.
  auto c = emu.client();
  auto made =
      c.Post("/conversations/v1/Conversations", httplib::Params{{"FriendlyName", "made by hand"}});
  REQUIRE(made);
  REQUIRE(made->status == 201);
  const auto existing = s(json::parse(made->body), "sid");
  auto bound = c.Post("/conversations/v1/Conversations/" + existing + "/Participants",
                      httplib::Params{{"MessagingBinding.Address", "+15557770001"},
                                      {"MessagingBinding.ProxyAddress", "+15550100001"}});
  REQUIRE(bound);
  REQUIRE(bound->status == 201);
  rt.start();
  auto a = submit(rt, "L1", "+15557770001", "D1", "north");
  REQUIRE(a.status == 201);
  CHECK(s(a.body.at("lead"), "conversation_sid") == existing);
  auto conv = emu.conversation(existing);
  CHECK(conv->at("participants").as_array().size() == 2);
  CHECK(messages_of_step(*conv, "L1", "/lead.first-message") == 1);
  rt.stop();
}

TEST_CASE("a binding held by a conversation on a later page of ParticipantConversations is found",
          "[leads]") {
  emulator_fixture emu;
  temp_dir dir;
  runtime rt{test_config(dir, emu)};
  // The customer's number takes part in 60 older conversations through a number switchboard does
  // not use (more than one page of 50), and then in one through the first proxy number.
  auto c = emu.client();
  auto conversation_with = [&](const std::string& proxy) {
    auto made = c.Post("/conversations/v1/Conversations", httplib::Params{});
    REQUIRE(made);
    REQUIRE(made->status == 201);
    const auto sid = s(json::parse(made->body), "sid");
    auto bound = c.Post("/conversations/v1/Conversations/" + sid + "/Participants",
                        httplib::Params{{"MessagingBinding.Address", "+15557770001"},
                                        {"MessagingBinding.ProxyAddress", proxy}});
    REQUIRE(bound);
    REQUIRE(bound->status == 201);
    return sid;
  };
  for (int n = 0; n < 60; ++n)
    conversation_with("+1555099" + std::to_string(1000 + n));
  const auto holder = conversation_with("+15550100001");
  rt.start();
  auto a = submit(rt, "L1", "+15557770001", "D1", "north");
  REQUIRE(a.status == 201);
  CHECK(s(a.body.at("lead"), "conversation_sid") == holder);
  CHECK(emu.conversation(holder)->at("participants").as_array().size() == 2);
  rt.stop();
}

TEST_CASE("a lead that cannot open fails with the reason, and its half-made conversation is closed",
          "[leads]") {
  emulator_fixture emu;
  temp_dir dir;
  runtime rt{test_config(dir, emu)};
  // Made outside switchboard: the location's number is bound through the first proxy already.
  auto c = emu.client();
  auto made =
      c.Post("/conversations/v1/Conversations", httplib::Params{{"FriendlyName", "made by hand"}});
  REQUIRE(made);
  const auto other = s(json::parse(made->body), "sid");
  REQUIRE(c.Post("/conversations/v1/Conversations/" + other + "/Participants",
                 httplib::Params{{"MessagingBinding.Address", "+15550001001"},
                                 {"MessagingBinding.ProxyAddress", "+15550100001"}})
              ->status == 201);
  rt.start();
  SECTION("when Twilio refuses the binding") {}
  SECTION("also after a 503 left the add unknown: the other holder is no earlier attempt") {
    // Seeded: the customer's add goes through, the location's meets a 503 (not applied), its
    // retry goes through to Twilio's refusal.
    emu.faults(
        R"({"seed": 3, "rules": [{"route": "POST /conversations/v1/Conversations/*/Participants",
                   "rate_5xx": 0.5, "status_5xx": 503}]})");
  }
  auto a = submit(rt, "L1", "+15557770001", "D1", "north");
  CHECK(a.status == 502);
  CHECK(s(a.body, "status") == "failed");
  CHECK(s(a.body, "error").find(other) != std::string::npos);
  auto lead = lead_of(rt, "L1");
  CHECK(s(lead, "status") == "failed");
  CHECK_FALSE(s(lead, "error").empty());
  CHECK(eventually([&] {
    for (auto& conv : emu.conversations())
      if (s(conv, "unique_name") == "sb-" + s(lead, "conversation_id"))
        return s(conv, "state") == "closed";
    return false;
  }));
  CHECK(eventually([&] {
    return s(get(rt, "conversations", s(lead, "conversation_id")).body, "status") == "closed";
  }));
  rt.stop();
}

TEST_CASE("after the retry budget a lead invocation is parked, visible, and resumes to completion",
          "[leads]") {
  emulator_fixture emu;
  temp_dir dir;
  auto cfg = test_config(dir, emu);
  cfg.leads.max_attempts = 3;
  runtime rt{cfg};
  rt.start();
  emu.refuse_messages();
  auto a = submit(rt, "L1", "+15557770001", "D1", "north");
  REQUIRE(a.status == 202);
  CHECK(s(a.body, "status") == "parked");
  const auto inv = s(a.body, "invocation");
  auto view = get(rt, "invocations", inv);
  CHECK(s(view.body, "status") == "parked");
  CHECK(s(view.body, "error").find("503") != std::string::npos);
  CHECK(s(lead_of(rt, "L1"), "status") == "opening");
  bool parked_listed = false;
  for (auto& v : [&] {
         keyed_request r;
         r.method = "GET";
         r.service = "invocations";
         r.status_filter = "parked";
         return rt.invoke(r).body.at("invocations").as_array();
       }())
    parked_listed = parked_listed || s(v, "id") == inv;
  CHECK(parked_listed);

  emu.clear_faults();
  REQUIRE(post(rt, "invocations", inv, "resume").status == 200);
  CHECK(eventually([&] { return s(lead_of(rt, "L1"), "status") == "open"; }));
  auto conv = emu.conversation(s(lead_of(rt, "L1"), "conversation_sid"));
  CHECK(messages_of_step(*conv, "L1", "/lead.first-message") == 1);
  CHECK(post(rt, "invocations", inv, "resume").status == 409);  // not parked any more
  rt.stop();
}

TEST_CASE("a cancelled parked submit releases its lead and conversation", "[leads]") {
  emulator_fixture emu;
  temp_dir dir;
  auto cfg = test_config(dir, emu);
  cfg.leads.max_attempts = 2;
  runtime rt{cfg};
  rt.start();
  emu.refuse_messages();
  auto a = submit(rt, "L1", "+15557770001", "D1", "north");
  REQUIRE(s(a.body, "status") == "parked");
  REQUIRE(post(rt, "invocations", s(a.body, "invocation"), "cancel").status == 200);
  CHECK(s(lead_of(rt, "L1"), "status") == "failed");
  const auto sid = s(lead_of(rt, "L1"), "conversation_sid");
  CHECK(eventually([&] { return s(*emu.conversation(sid), "state") == "closed"; }));
  emu.clear_faults();
  // The slot is free again: the same customer can submit anew.
  CHECK(submit(rt, "L2", "+15557770001", "D1", "north").status == 201);
  rt.stop();
}

/// A lead whose conversation cannot be made, over HTTP: its conversations/open callee parks
/// after the retry budget, and the submit that waits for it parks behind it (a chain of two).
struct parked_chain {
  emulator_fixture emu;
  temp_dir dir;
  std::uint16_t port = free_port();
  std::optional<runtime> rt;
  std::optional<httplib::Client> http;
  const httplib::Headers auth{{"Authorization", "Bearer leads-api-token"}};
  std::string parent, child;  // inv-N of the submit and of its conversation's open

  parked_chain() {
    auto cfg = test_config(dir, emu);
    cfg.leads.max_attempts = 3;
    cfg.http.enabled = true;
    cfg.http.port = port;
    ::setenv("SWITCHBOARD_API_TOKEN", "leads-api-token", 1);
    rt.emplace(cfg);
    rt->start();
    http.emplace("127.0.0.1", port);
    http->set_read_timeout(20, 0);
    emu.faults(R"({"seed": 1, "rules": [{"route": "POST /conversations/v1/Conversations",
                   "rate_5xx": 1.0, "status_5xx": 503}]})");
    auto a = post_json("/v1/leads/L1/submit", submission("+15557770001"));
    REQUIRE(a.first == 202);
    REQUIRE(s(a.second, "status") == "parked");
    parent = s(a.second, "invocation");
    auto parked = get_json("/v1/invocations?status=parked");
    REQUIRE(parked.first == 200);
    for (auto& v : parked.second.at("invocations").as_array())
      if (s(v, "service") == "conversations")
        child = s(v, "id");
    REQUIRE(parked.second.at("invocations").as_array().size() == 2);
    REQUIRE_FALSE(child.empty());
  }
  ~parked_chain() { rt->stop(); }

  static std::string submission(const std::string& phone) {
    return json::serialize(json::object{{"customer_name", "Ana"},
                                        {"customer_phone", phone},
                                        {"dealer_id", "D1"},
                                        {"location_id", "north"},
                                        {"message", "Is it available?"}});
  }
  std::pair<int, json::value> post_json(const std::string& path, const std::string& body = "{}") {
    auto res = http->Post(path.c_str(), auth, body, "application/json");
    REQUIRE(res);
    return {res->status, json::parse(res->body)};
  }
  std::pair<int, json::value> get_json(const std::string& path) {
    auto res = http->Get(path.c_str(), auth);
    REQUIRE(res);
    return {res->status, json::parse(res->body)};
  }
  std::string status_of(const std::string& path) { return s(get_json(path).second, "status"); }
  std::set<std::string> ids(const json::value& answer, const char* member) {
    std::set<std::string> out;
    for (auto& v : answer.at(member).as_array())
      out.insert(std::string(v.as_string()));
    return out;
  }
};

TEST_CASE("resuming the invocation a 202 handed out resumes its parked callee too, and it runs",
          "[leads][invocations]") {
  parked_chain c;
  c.emu.clear_faults();
  auto resumed = c.post_json("/v1/invocations/" + c.parent + "/resume");
  REQUIRE(resumed.first == 200);
  CHECK(s(resumed.second, "id") == c.parent);
  CHECK(c.ids(resumed.second, "resumed") == std::set<std::string>{c.parent, c.child});
  CHECK(eventually([&] { return c.status_of("/v1/leads/L1") == "open"; }));
  CHECK(c.status_of("/v1/invocations/" + c.child) == "done");
  CHECK(eventually([&] { return c.status_of("/v1/invocations/" + c.parent) == "done"; }));
  CHECK(c.get_json("/v1/invocations?status=parked").second.at("invocations").as_array().empty());
  // Nothing of the chain is parked now: a second resume is refused and says why.
  auto again = c.post_json("/v1/invocations/" + c.parent + "/resume");
  CHECK(again.first == 409);
  CHECK(s(again.second, "error").find("done") != std::string::npos);
}

TEST_CASE("resuming the parked callee's id resumes the caller parked on it too",
          "[leads][invocations]") {
  parked_chain c;
  c.emu.clear_faults();
  auto resumed = c.post_json("/v1/invocations/" + c.child + "/resume");
  REQUIRE(resumed.first == 200);
  CHECK(c.ids(resumed.second, "resumed") == std::set<std::string>{c.parent, c.child});
  CHECK(eventually([&] { return c.status_of("/v1/leads/L1") == "open"; }));
}

TEST_CASE("cancelling a parked chain cancels the parked callee too and frees the lead's slot",
          "[leads][invocations]") {
  parked_chain c;
  auto cancelled = c.post_json("/v1/invocations/" + c.parent + "/cancel");
  REQUIRE(cancelled.first == 200);
  CHECK(s(cancelled.second, "status") == "cancelled");
  CHECK(c.ids(cancelled.second, "cancelled") == std::set<std::string>{c.parent, c.child});
  CHECK(c.status_of("/v1/invocations/" + c.child) == "cancelled");
  CHECK(c.get_json("/v1/invocations?status=parked").second.at("invocations").as_array().empty());
  CHECK(c.status_of("/v1/leads/L1") == "failed");
  c.emu.clear_faults();
  // The customer's slot and the proxy number are free again: the same customer opens anew.
  CHECK(c.post_json("/v1/leads/L2/submit", parked_chain::submission("+15557770001")).first == 201);
}

TEST_CASE("a lead interrupted by a stop resumes after the restart, its effects done once",
          "[leads]") {
  emulator_fixture emu;
  temp_dir dir;
  auto cfg = test_config(dir, emu);
  cfg.leads.answer_timeout = 300ms;
  cfg.leads.max_attempts = 1000;
  {
    runtime rt{cfg};
    rt.start();
    emu.refuse_messages();
    auto a = submit(rt, "L1", "+15557770001", "D1", "north");
    REQUIRE(a.status == 202);
    CHECK(s(a.body, "status") == "running");
    rt.stop();
  }
  emu.clear_faults();
  runtime again{cfg};
  again.start();
  CHECK(eventually([&] { return s(lead_of(again, "L1"), "status") == "open"; }));
  REQUIRE(emu.conversations().size() == 1);
  CHECK(messages_of_step(emu.conversations()[0].as_object(), "L1", "/lead.first-message") == 1);
  CHECK(emu.conversations()[0].at("participants").as_array().size() == 2);
  again.stop();
}

TEST_CASE("an Idempotency-Key answers a repeated create as the first one did", "[leads]") {
  emulator_fixture emu;
  temp_dir dir;
  runtime rt{test_config(dir, emu)};
  rt.start();
  keyed_request r;
  r.service = "leads";
  r.idempotency_key = "form-submission-77";
  r.body =
      R"({"customer_name":"Bo","customer_phone":"+15557770005","dealer_id":"D1","location_id":"south","message":"hi"})";
  auto first = rt.invoke(r);
  auto second = rt.invoke(r);
  REQUIRE(first.status == 201);
  REQUIRE(second.status == 201);
  CHECK(s(first.body.at("lead"), "id") == s(second.body.at("lead"), "id"));
  CHECK(emu.conversations().size() == 1);
  // The same key with a lead id of the caller's: the first answer still, nothing new.
  r.key = "L-other";
  r.handler = "submit";
  auto third = rt.invoke(r);
  CHECK(third.status == 201);
  CHECK(s(third.body.at("lead"), "id") == s(first.body.at("lead"), "id"));
  CHECK(get(rt, "leads", "L-other").status == 404);
  CHECK(emu.conversations().size() == 1);
  rt.stop();
}

TEST_CASE("durable timers: the dealer is reminded when no reply came, also across a restart",
          "[leads]") {
  emulator_fixture emu;
  temp_dir dir;
  auto cfg = test_config(dir, emu);
  cfg.leads.reminder_after = 1500ms;
  std::string sid, proxy;
  {
    runtime rt{cfg};
    rt.start();
    auto a = submit(rt, "L1", "+15557770001", "D1", "north");
    REQUIRE(a.status == 201);
    sid = s(a.body.at("lead"), "conversation_sid");
    proxy = s(a.body.at("lead"), "proxy_number");
    rt.stop();  // before the reminder is due
  }
  CHECK(emu.sms().empty());
  runtime again{cfg};
  again.start();
  CHECK(eventually([&] { return i(lead_of(again, "L1"), "reminders_sent") == 1; }, 10s));
  // The dealer got it as an SMS from the conversation's number, so a reply reaches the customer.
  auto sent = emu.sms();
  REQUIRE(sent.size() == 1);
  CHECK(s(sent[0], "to") == "+15550001001");
  CHECK(s(sent[0], "from") == proxy);
  CHECK(s(sent[0], "body").find("Ana") != std::string::npos);
  // The customer sees nothing of it: the conversation holds only the first message.
  auto conv = emu.conversation(sid);
  CHECK(messages_of_step(*conv, "L1", "/lead.reminder") == 0);
  CHECK(conv->at("messages").as_array().size() == 1);
  again.stop();
}

TEST_CASE("a reminder whose outcome was unknown is found by the SMS it sent, not sent twice",
          "[leads]") {
  emulator_fixture emu;
  temp_dir dir;
  auto cfg = test_config(dir, emu);
  cfg.twilio.read_timeout = 1s;
  cfg.leads.reminder_after = 300ms;
  runtime rt{cfg};
  rt.start();
  // The SMS is sent, and then the answer never comes: the client cannot know it happened.
  emu.faults(R"({"seed": 9, "rules": [{"route": "POST /api/2010-04-01/Accounts/*/Messages.json",
                 "rate_timeout": 1.0, "timeout_applies": true}]})");
  REQUIRE(submit(rt, "L1", "+15557770001", "D1", "north").status == 201);
  CHECK(eventually([&] { return i(lead_of(rt, "L1"), "reminders_sent") == 1; }, 15s));
  CHECK(emu.sms().size() == 1);
  rt.stop();
}

TEST_CASE("an inactive lead is closed by its timer, and its conversation with it", "[leads]") {
  emulator_fixture emu;
  temp_dir dir;
  auto cfg = test_config(dir, emu);
  cfg.leads.close_inactive_after = 400ms;
  runtime rt{cfg};
  rt.start();
  auto a = submit(rt, "L1", "+15557770001", "D1", "north");
  REQUIRE(a.status == 201);
  CHECK(eventually([&] { return s(lead_of(rt, "L1"), "status") == "closed"; }, 10s));
  CHECK(s(lead_of(rt, "L1"), "close_reason") == "inactive");
  CHECK(eventually([&] {
    return s(*emu.conversation(s(a.body.at("lead"), "conversation_sid")), "state") == "closed";
  }));
  rt.stop();
}

TEST_CASE("idle keyed actors are passivated and come back on the next message", "[leads]") {
  emulator_fixture emu;
  temp_dir dir;
  auto cfg = test_config(dir, emu);
  cfg.leads.passivate_after = 100ms;
  runtime rt{cfg};
  rt.start();
  REQUIRE(submit(rt, "L1", "+15557770001", "D1", "north").status == 201);
  CHECK(eventually([&] { return i(rt.leads_status(), "active_entities") == 0; }));
  REQUIRE(post(rt, "leads", "L1", "close").status == 200);
  CHECK(s(lead_of(rt, "L1"), "status") == "closed");
  rt.stop();
}

namespace {

/// A local HTTP receiver standing in for lead tracking or marketing: fails the first `failures`
/// requests with 500, then answers 200; remembers each Idempotency-Key it accepted.
class receiver {
public:
  explicit receiver(int failures) : failures_(failures) {
    server_.Post("/leads", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> guard{mu_};
      ++requests_;
      if (failures_ < 0 || requests_ <= failures_) {
        res.status = 500;
        return;
      }
      accepted_[req.get_header_value("Idempotency-Key")] = req.body;
      res.status = 200;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running())
      std::this_thread::sleep_for(1ms);
  }
  ~receiver() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/leads"; }
  std::map<std::string, std::string> accepted() {
    std::lock_guard<std::mutex> guard{mu_};
    return accepted_;
  }
  int requests() {
    std::lock_guard<std::mutex> guard{mu_};
    return requests_;
  }

private:
  httplib::Server server_;
  int failures_;
  int port_ = 0;
  std::mutex mu_;
  int requests_ = 0;
  std::map<std::string, std::string> accepted_;
  std::thread thread_;
};

}  // namespace

TEST_CASE(
    "form leads are stored, then forwarded to both systems with retries and an idempotency key",
    "[leads]") {
  temp_dir dir;
  receiver tracking{2};
  receiver marketing{-1};  // always fails: dead after the budget
  config cfg;
  cfg.data_dir = dir.path.string();
  cfg.http.enabled = false;
  cfg.form_leads.lead_tracking_url = tracking.url();
  cfg.form_leads.marketing_url = marketing.url();
  cfg.form_leads.max_attempts = 3;
  cfg.form_leads.backoff_initial = 5ms;
  cfg.form_leads.backoff_max = 20ms;
  runtime rt{cfg};
  rt.start();
  keyed_request r;
  r.service = "form-leads";
  r.body = R"({"email":"ana@example.com","first_name":"Ana","interest":"SUV"})";
  auto a = rt.invoke(r);
  REQUIRE(a.status == 202);
  const auto id = s(a.body, "id");
  CHECK(eventually([&] { return tracking.accepted().size() == 1; }));
  CHECK(tracking.accepted().begin()->first == id + ":lead_tracking");
  CHECK(json::parse(tracking.accepted().begin()->second).at("lead").at("email") ==
        "ana@example.com");
  CHECK(tracking.requests() == 3);
  auto forwards_done = [&] {
    auto v = get(rt, "form-leads", id);
    std::map<std::string, std::string> st;
    for (auto& f : v.body.at("forwards").as_array())
      st[s(f, "target")] = s(f, "status");
    return st;
  };
  CHECK(eventually([&] {
    auto st = forwards_done();
    return st["lead_tracking"] == "done" && st["marketing"] == "parked";
  }));
  CHECK(marketing.requests() == 3);

  SECTION("bad form leads are refused") {
    r.body = R"({"first_name":"Ana"})";
    CHECK(rt.invoke(r).status == 400);
    r.body = R"({"email":"not-an-address"})";
    CHECK(rt.invoke(r).status == 400);
    r.body = "[1,2]";
    CHECK(rt.invoke(r).status == 400);
  }
  rt.stop();
}

TEST_CASE(
    "a password in a form_leads URL is the receiver's Basic auth, and no log or answer shows it",
    "[leads]") {
  temp_dir dir;
  // Lead tracking takes only crm:s3cret; marketing always fails, so each attempt is logged.
  httplib::Server server;
  std::mutex mu;
  std::vector<std::string> authorizations;
  server.Post("/ok", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> guard{mu};
    authorizations.push_back(req.get_header_value("Authorization"));
    res.status = req.get_header_value("Authorization") == "Basic Y3JtOnMzY3JldA==" ? 200 : 401;
  });
  server.Post("/fail", [](const httplib::Request&, httplib::Response& res) { res.status = 503; });
  const int port = server.bind_to_any_port("127.0.0.1");
  std::thread serving{[&] { server.listen_after_bind(); }};
  while (!server.is_running())
    std::this_thread::sleep_for(1ms);
  const auto at = "127.0.0.1:" + std::to_string(port);

  // Everything the runtime logs meanwhile.
  std::ostringstream logged;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(logged);
  auto logger = spdlog::default_logger();
  logger->sinks().push_back(sink);
  const auto level = logger->level();
  logger->set_level(spdlog::level::debug);

  config cfg;
  cfg.data_dir = dir.path.string();
  cfg.http.enabled = false;
  cfg.form_leads.lead_tracking_url = "http://crm:s3cret@" + at + "/ok";
  cfg.form_leads.marketing_url = "http://crm:s3cret@" + at + "/fail";
  cfg.form_leads.max_attempts = 3;
  cfg.form_leads.backoff_initial = 5ms;
  cfg.form_leads.backoff_max = 20ms;
  cfg.leads.webhook_url = "https://hook:s3cret@sb.example.com/v1/webhooks/twilio/conversations";
  ::setenv("TWILIO_AUTH_TOKEN", auth_token, 1);
  std::string answers;
  {
    runtime rt{cfg};
    rt.start();
    keyed_request r;
    r.service = "form-leads";
    r.body = R"({"email":"ana@example.com"})";
    auto a = rt.invoke(r);
    REQUIRE(a.status == 202);
    const auto id = s(a.body, "id");
    std::map<std::string, std::string> status, invocation;
    CHECK(eventually([&] {
      auto v = get(rt, "form-leads", id);
      answers = json::serialize(v.body);
      for (auto& f : v.body.at("forwards").as_array()) {
        status[s(f, "target")] = s(f, "status");
        invocation[s(f, "target")] = s(f, "invocation");
      }
      return status["lead_tracking"] == "done" && status["marketing"] == "parked";
    }));
    CHECK_THAT(answers, Catch::Matchers::Contains("***@" + at + "/fail answered 503"));
    answers += json::serialize(get(rt, "invocations", invocation["marketing"]).body);
    // A forged webhook is told which URL the signature was checked against: not its password.
    auto forged = rt.conversations_webhook({{"EventType", "onMessageAdded"}}, "forged");
    CHECK(forged.status == 403);
    CHECK_THAT(s(forged.body, "error"), Catch::Matchers::Contains("https://***@sb.example.com/"));
    answers += json::serialize(forged.body);
    rt.stop();
  }
  logger->set_level(level);
  logger->sinks().pop_back();
  server.stop();
  serving.join();

  {
    std::lock_guard<std::mutex> guard{mu};
    CHECK(authorizations == std::vector<std::string>{"Basic Y3JtOnMzY3JldA=="});  // crm:s3cret
  }
  const auto log = logged.str();
  CHECK_THAT(log, Catch::Matchers::Contains("POST http://***@" + at + "/fail answered 503"));
  CHECK_THAT(log, !Catch::Matchers::Contains("s3cret"));
  CHECK_THAT(answers, !Catch::Matchers::Contains("s3cret"));
}

TEST_CASE(
    "a closed lead's proxy number is free when close answers: 50 close-then-submit pairs from two "
    "clients at once",
    "[leads]") {
  emulator_fixture emu;
  temp_dir dir;
  auto cfg = test_config(dir, emu);
  cfg.leads.proxy_numbers = {"+15550100001",
                             "+15550100002"};  // two open conversations at a location
  runtime rt{cfg};
  rt.start();
  std::atomic<int> phone{0};
  auto next_phone = [&] { return "+1555777" + std::to_string(1000 + ++phone); };
  // Each client holds one of the location's two conversations and replaces its lead 25 times:
  // close it, then at once submit a new customer, who needs the number the close freed.
  struct outcome {
    std::vector<std::string> failures;
    std::vector<std::string> closed_conversations;
  };
  auto client = [&](const std::string& name, outcome& out) {
    auto current = name + "-0";
    auto first = submit(rt, current, next_phone(), "D1", "north");
    if (first.status != 201) {
      out.failures.push_back(current + ": " + std::to_string(first.status));
      return;
    }
    for (int round = 1; round <= 25; ++round) {
      const auto conv = s(first.body.at("lead"), "conversation_id");
      auto closing = post(rt, "leads", current, "close");
      if (closing.status != 200) {
        out.failures.push_back("close " + current + ": " + std::to_string(closing.status));
        return;
      }
      out.closed_conversations.push_back(conv);
      const auto fresh = name + "-" + std::to_string(round);
      first = submit(rt, fresh, next_phone(), "D1", "north");
      if (first.status != 201) {
        out.failures.push_back("submit " + fresh + " after closing " + current + ": " +
                               std::to_string(first.status) + " " + json::serialize(first.body));
        return;
      }
      current = fresh;
    }
  };
  outcome one, two;
  std::thread other([&] { client("A", one); });
  client("B", two);
  other.join();
  CHECK(one.failures.empty());
  CHECK(two.failures.empty());
  for (const auto& f : one.failures)
    UNSCOPED_INFO(f);
  for (const auto& f : two.failures)
    UNSCOPED_INFO(f);
  // Every conversation a close released is closed on Twilio; the two in use are not.
  std::set<std::string> released;
  for (const auto* out : {&one, &two})
    for (const auto& cv : out->closed_conversations)
      released.insert("sb-" + cv);
  CHECK(released.size() == 50);
  int closed = 0, open = 0;
  for (auto& conv : emu.conversations()) {
    const bool was_released = released.count(s(conv, "unique_name")) != 0;
    CHECK((s(conv, "state") == "closed") == was_released);
    (was_released ? closed : open) += 1;
  }
  CHECK(closed == 50);
  CHECK(open == 2);
  rt.stop();
}

TEST_CASE("a submit that finds its number still being released waits for it instead of failing",
          "[leads]") {
  emulator_fixture emu;
  temp_dir dir;
  auto cfg = test_config(dir, emu);
  cfg.leads.proxy_numbers = {"+15550100001"};
  // The wait uses the admission step's retry budget: about 0.9 s of backoff in all here.
  cfg.leads.backoff_initial = 20ms;
  cfg.leads.backoff_max = 200ms;
  runtime rt{cfg};
  rt.start();
  REQUIRE(submit(rt, "L1", "+15557770001", "D1", "north").status == 201);
  const auto conv = s(lead_of(rt, "L1"), "conversation_id");
  // Twilio takes its time to close the conversation: the number stays bound meanwhile.
  emu.faults(
      R"({"seed": 1, "rules": [{"route": "POST /conversations/v1/Conversations/*", "latency_ms": 400}]})");
  keyed_answer closing;
  std::thread closer([&] { closing = post(rt, "leads", "L1", "close"); });
  CHECK(eventually([&] { return s(get(rt, "conversations", conv).body, "status") == "closing"; }));
  auto opened = submit(rt, "L2", "+15557770002", "D1", "north");
  closer.join();
  CHECK(closing.status == 200);
  CHECK(opened.status == 201);
  CHECK(s(get(rt, "conversations", conv).body, "status") == "closed");
  rt.stop();
}

TEST_CASE(
    "a full proxy pool answers 503 with Retry-After, and the same lead opens once a number frees",
    "[leads]") {
  emulator_fixture emu;
  temp_dir dir;
  auto cfg = test_config(dir, emu);
  cfg.leads.proxy_numbers = {"+15550100001"};
  const auto port = free_port();
  cfg.http.enabled = true;
  cfg.http.port = port;
  ::setenv("SWITCHBOARD_API_TOKEN", "leads-api-token", 1);
  runtime rt{cfg};
  rt.start();
  auto pool_of_north = [&] {
    return get(rt, "dealers", "D1").body.at("locations").as_array()[0].at("proxy_numbers");
  };
  CHECK(i(pool_of_north(), "in_use") == 0);
  CHECK(i(pool_of_north(), "total") == 1);
  REQUIRE(submit(rt, "L1", "+15557770001", "D1", "north").status == 201);
  CHECK(i(pool_of_north(), "in_use") == 1);
  CHECK(i(pool_of_north(), "free") == 0);

  auto a = submit(rt, "L2", "+15557770002", "D1", "north");
  CHECK(a.status == 503);
  CHECK(s(a.body, "status") == "pool_full");
  CHECK(s(a.body, "lead_id") == "L2");
  CHECK(i(a.body, "retry_after_s") == 30);
  CHECK(s(a.body, "error").find("no free proxy number") != std::string::npos);
  CHECK(get(rt, "leads", "L2").status == 404);  // nothing stored that would block a resubmit
  // Over HTTP, the same answer carries Retry-After.
  httplib::Client http("127.0.0.1", port);
  http.set_read_timeout(20, 0);
  const auto body = json::serialize(json::object{{"customer_name", "Ana"},
                                                 {"customer_phone", "+15557770002"},
                                                 {"dealer_id", "D1"},
                                                 {"location_id", "north"},
                                                 {"message", "Is it available?"}});
  auto over_http = http.Post("/v1/leads/L2/submit",
                             httplib::Headers{{"Authorization", "Bearer leads-api-token"}}, body,
                             "application/json");
  REQUIRE(over_http);
  CHECK(over_http->status == 503);
  CHECK(over_http->get_header_value("Retry-After") == "30");
  CHECK(i(rt.leads_status().at("proxy_pool"), "refused_full") == 2);
  CHECK(emu.conversations().size() == 1);

  // The open lead is untouched; once it closes, the same lead id opens.
  CHECK(s(lead_of(rt, "L1"), "status") == "open");
  REQUIRE(post(rt, "leads", "L1", "close").status == 200);
  CHECK(i(pool_of_north(), "in_use") == 0);
  auto again = submit(rt, "L2", "+15557770002", "D1", "north");
  CHECK(again.status == 201);
  CHECK(s(lead_of(rt, "L2"), "status") == "open");
  CHECK(i(pool_of_north(), "in_use") == 1);
  rt.stop();
}

TEST_CASE("a customer phone that is a proxy number or the location's own is a 400, nothing made",
          "[leads]") {
  emulator_fixture emu;
  temp_dir dir;
  runtime rt{test_config(dir, emu)};
  rt.start();
  for (const auto* phone : {"+15550100002", "+15550001001"}) {  // a proxy; north's own number
    auto a = submit(rt, "L1", phone, "D1", "north");
    CHECK(a.status == 400);
    CHECK(s(a.body, "field") == "customer_phone");
    CHECK(s(a.body, "error").rfind("customer_phone: ", 0) == 0);
    CHECK(s(a.body, "error").find(phone) != std::string::npos);
  }
  CHECK(get(rt, "leads", "L1").status == 404);
  CHECK(get(rt, "invocations", "").body.at("invocations").as_array().empty());
  CHECK(emu.conversations().empty());
  // Another location's number is a customer like any other.
  CHECK(submit(rt, "L1", "+15550001002", "D1", "north").status == 201);
  rt.stop();
}

TEST_CASE("an unknown dealer names dealer_id, an unknown location location_id", "[leads]") {
  emulator_fixture emu;
  temp_dir dir;
  runtime rt{test_config(dir, emu)};
  rt.start();
  auto dealer = submit(rt, "L1", "+15557770001", "D9", "north");
  CHECK(dealer.status == 404);
  CHECK(s(dealer.body, "field") == "dealer_id");
  CHECK(s(dealer.body, "error").find("D9") != std::string::npos);
  auto location = submit(rt, "L1", "+15557770001", "D1", "nowhere");
  CHECK(location.status == 404);
  CHECK(s(location.body, "field") == "location_id");
  CHECK(s(location.body, "error").find("nowhere") != std::string::npos);
  CHECK(emu.conversations().empty());
  rt.stop();
}

TEST_CASE("the lead routes take JSON bodies only as application/json (415 otherwise)", "[leads]") {
  emulator_fixture emu;
  temp_dir dir;
  auto cfg = test_config(dir, emu);
  const auto port = free_port();
  cfg.http.enabled = true;
  cfg.http.port = port;
  ::setenv("SWITCHBOARD_API_TOKEN", "leads-api-token", 1);
  runtime rt{cfg};
  rt.start();
  httplib::Client http("127.0.0.1", port);
  http.set_read_timeout(20, 0);
  const httplib::Headers auth{{"Authorization", "Bearer leads-api-token"}};
  const auto body = json::serialize(json::object{{"customer_name", "Ana"},
                                                 {"customer_phone", "+15557770001"},
                                                 {"dealer_id", "D1"},
                                                 {"location_id", "north"},
                                                 {"message", "Is it available?"}});
  for (const auto* path : {"/v1/leads/L1/submit", "/v1/leads"}) {
    auto plain = http.Post(path, auth, body, "text/plain");
    REQUIRE(plain);
    CHECK(plain->status == 415);
    auto answer = json::parse(plain->body);
    CHECK(s(answer, "error").find("application/json") != std::string::npos);
    CHECK(s(answer, "error").find("text/plain") != std::string::npos);
  }
  auto form = http.Post("/v1/dealers/D1/set_location", auth,
                        R"({"location":"north","phone":"+15550001009"})",
                        "application/x-www-form-urlencoded");
  REQUIRE(form);
  CHECK(form->status == 415);
  CHECK(get(rt, "leads", "L1").status == 404);
  CHECK(emu.conversations().empty());

  auto with_charset =
      http.Post("/v1/leads/L1/submit", auth, body, "application/json; charset=utf-8");
  REQUIRE(with_charset);
  CHECK(with_charset->status == 201);
  // A request without a body needs no Content-Type.
  auto close = http.Post("/v1/leads/L1/close", auth);
  REQUIRE(close);
  CHECK(close->status == 200);
  rt.stop();
}

TEST_CASE("two customers at two locations sharing one phone number get one conversation each",
          "[leads]") {
  emulator_fixture emu;
  temp_dir dir;
  runtime rt{test_config(dir, emu)};
  rt.start();
  auto east = submit(rt, "L1", "+15557770001", "D2", "east");
  auto west = submit(rt, "L2", "+15557770002", "D2", "west");
  REQUIRE(east.status == 201);
  REQUIRE(west.status == 201);
  const auto& e = east.body.at("lead");
  const auto& w = west.body.at("lead");
  CHECK(s(e, "location_phone") == s(w, "location_phone"));
  CHECK(s(e, "conversation_id") != s(w, "conversation_id"));
  CHECK(s(e, "conversation_sid") != s(w, "conversation_sid"));
  // The location's number is in both: each conversation needs its own proxy number.
  CHECK(s(e, "proxy_number") != s(w, "proxy_number"));
  REQUIRE(emu.conversations().size() == 2);
  for (const auto* lead : {&e, &w}) {
    auto conv = emu.conversation(s(*lead, "conversation_sid"));
    REQUIRE(conv);
    std::set<std::string> addresses;
    for (auto& p : conv->at("participants").as_array())
      addresses.insert(s(p.at("messaging_binding"), "address"));
    // One customer per thread: never the other lead's customer.
    CHECK(addresses == std::set<std::string>{s(*lead, "customer_phone"), "+15550002001"});
  }
  rt.stop();
}

TEST_CASE("invocations are listed a page at a time, newest first, until no `next`", "[leads]") {
  emulator_fixture emu;
  temp_dir dir;
  runtime rt{test_config(dir, emu)};
  rt.start();
  for (int i = 0; i < 5; ++i) {  // a submit and a close each (a close frees the proxy number)
    const auto id = "P" + std::to_string(i);
    REQUIRE(submit(rt, id, "+1555777100" + std::to_string(i), "D1", "north").status == 201);
    REQUIRE(post(rt, "leads", id, "close").status == 200);
  }
  auto list = [&](std::vector<std::pair<std::string, std::string>> query) {
    keyed_request r;
    r.method = "GET";
    r.service = "invocations";
    r.query = std::move(query);
    return rt.invoke(r);
  };
  std::vector<std::string> seen;
  std::vector<std::pair<std::string, std::string>> query{{"limit", "3"}};
  for (int page = 0; page < 10; ++page) {
    auto a = list(query);
    REQUIRE(a.status == 200);
    CHECK(a.body.at("invocations").as_array().size() <= 3);
    for (auto& v : a.body.at("invocations").as_array())
      seen.push_back(s(v, "id"));
    if (!a.body.as_object().contains("next"))
      break;
    const auto next = s(a.body, "next");
    const auto at = next.find("before=");
    REQUIRE(at != std::string::npos);
    query = {{"limit", "3"}, {"before", next.substr(at + 7, next.find('&', at) - at - 7)}};
  }
  // The pages together are the whole list, in the same order (newest first), each once.
  std::vector<std::string> all;
  auto whole = list({{"limit", "1000"}});
  CHECK_FALSE(whole.body.as_object().contains("next"));
  for (auto& v : whole.body.at("invocations").as_array())
    all.push_back(s(v, "id"));
  REQUIRE(all.size() >= 10);  // the submits and closes, and what they started
  CHECK(seen == all);
  for (std::size_t i = 1; i < seen.size(); ++i)
    CHECK(std::stoull(seen[i - 1].substr(4)) > std::stoull(seen[i].substr(4)));
  auto bad = list({{"limit", "0"}});
  CHECK(bad.status == 400);
  CHECK(s(bad.body, "error").find("'limit'") != std::string::npos);
  CHECK(list({{"before", "yesterday"}}).status == 400);
  rt.stop();
}
