// The Twilio emulator as switchboard's Twilio writers, its webhook receiver and its tests meet
// it: an emulator on a loopback port, cpp-httplib's client with Basic auth and form bodies, and
// (for webhooks) a local HTTP server standing in for switchboard.

#include "adapters/twilio/emulator.hpp"
#include "adapters/twilio/emulator_rules.hpp"
#include "adapters/twilio/signature.hpp"
#include "support/eventually.hpp"

#include <httplib.h>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using namespace switchboard::adapters::twilio;
namespace json = boost::json;

namespace {

constexpr const char* account_sid = "AC0123456789abcdef0123456789abcdef";
constexpr const char* auth_token = "emulator-test-token";

emulator_options test_options() {
  emulator_options o;
  o.account_sid = account_sid;
  o.auth_token = auth_token;
  return o;
}

/// An emulator serving on a free loopback port for one test.
struct running_emulator {
  emulator twilio;
  explicit running_emulator(emulator_options o = test_options()) : twilio(std::move(o)) {
    twilio.start();
  }
  httplib::Client client() const {
    httplib::Client c{twilio.base_url()};
    c.set_basic_auth(account_sid, auth_token);
    c.set_read_timeout(10s);
    return c;
  }
};

json::object body_of(const httplib::Result& r) {
  REQUIRE(r);
  INFO(r->body);
  return json::parse(r->body).as_object();
}

std::string text(const json::object& o, const char* key) {
  INFO(key);
  REQUIRE(o.contains(key));
  return std::string{o.at(key).as_string()};
}

/// Checks a Twilio-shaped error answer.
void expect_error(const httplib::Result& r, int status, int code) {
  REQUIRE(r);
  INFO(r->body);
  CHECK(r->status == status);
  const auto body = json::parse(r->body).as_object();
  CHECK(body.at("code").as_int64() == code);
  CHECK(body.at("status").as_int64() == status);
  CHECK(text(body, "more_info") == "https://www.twilio.com/docs/errors/" + std::to_string(code));
  CHECK_FALSE(text(body, "message").empty());
}

std::string new_sync_service(httplib::Client& c) {
  auto r = c.Post("/sync/v1/Services", httplib::Params{{"FriendlyName", "test"}});
  REQUIRE(r);
  REQUIRE(r->status == 201);
  return text(body_of(r), "sid");
}

std::string new_conversation(httplib::Client& c, const std::string& unique_name = {}) {
  httplib::Params p{{"FriendlyName", "lead"}};
  if (!unique_name.empty())
    p.emplace("UniqueName", unique_name);
  auto r = c.Post("/conversations/v1/Conversations", p);
  REQUIRE(r);
  REQUIRE(r->status == 201);
  return text(body_of(r), "sid");
}

httplib::Result add_sms_participant(httplib::Client& c, const std::string& conversation,
                                    const std::string& address, const std::string& proxy) {
  return c.Post("/conversations/v1/Conversations/" + conversation + "/Participants",
                httplib::Params{{"MessagingBinding.Address", address},
                                {"MessagingBinding.ProxyAddress", proxy}});
}

httplib::Headers if_match(const std::string& revision) { return {{"If-Match", revision}}; }

/// A stand-in for switchboard's webhook endpoint: records what it receives.
struct webhook_receiver {
  struct delivery {
    std::string signature;
    std::vector<std::pair<std::string, std::string>> params;
    std::string param(const std::string& name) const {
      for (const auto& [n, v] : params)
        if (n == name)
          return v;
      return "<absent>";
    }
  };

  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::mutex mutex;
  std::condition_variable arrived;
  std::vector<delivery> deliveries;

  webhook_receiver() {
    server.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      delivery d;
      d.signature = req.get_header_value("X-Twilio-Signature");
      for (const auto& [name, value] : req.params)
        d.params.emplace_back(name, value);
      {
        std::lock_guard lock{mutex};
        deliveries.push_back(std::move(d));
      }
      arrived.notify_all();
      res.status = 200;
    });
    port = server.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { server.listen_after_bind(); });
  }
  ~webhook_receiver() {
    server.stop();
    thread.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port) + "/hook"; }

  /// Waits until `count` deliveries have arrived (or 5 s have passed).
  std::vector<delivery> wait_for(std::size_t count) {
    std::unique_lock lock{mutex};
    arrived.wait_for(lock, 5s, [&] { return deliveries.size() >= count; });
    return deliveries;
  }
};

}  // namespace

// --- signatures -----------------------------------------------------------------------------

TEST_CASE("twilio_signature matches Twilio's published vectors", "[twilio][emulator]") {
  const std::string url = "https://mycompany.com/myapp.php?foo=1&bar=2";
  CHECK(twilio_signature("12345", url,
                         {{"CallSid", "CA1234567890ABCDE"},
                          {"Caller", "+14158675309"},
                          {"Digits", "1234"},
                          {"From", "+14158675309"},
                          {"To", "+18005551212"}}) == "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
  // A repeated name: values sorted, duplicate pairs once, whatever the arrival order.
  CHECK(twilio_signature("12345", url,
                         {{"Sid", "CA123"},
                          {"SidAccount", "AC123"},
                          {"Digits", "5678"},
                          {"Digits", "1234"},
                          {"Digits", "1234"}}) == "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
  CHECK(twilio_signature("12346", url, {{"CallSid", "CA1234567890ABCDE"}}) !=
        twilio_signature("12345", url, {{"CallSid", "CA1234567890ABCDE"}}));
}

// --- pure rules -----------------------------------------------------------------------------

TEST_CASE("emulator rules: SIDs, durations, fault routes, token bucket", "[twilio][emulator]") {
  std::mt19937_64 rng{3};
  const auto sid = rules::make_sid("ET", rng);
  CHECK(rules::is_sid(sid, "ET"));
  CHECK_FALSE(rules::is_sid(sid, "MP"));
  CHECK(sid.find_first_not_of("0123456789abcdef", 2) == std::string::npos);

  CHECK(rules::parse_duration("PT10M") == std::chrono::seconds{600});
  CHECK(rules::parse_duration("P1DT2H") == std::chrono::seconds{93600});
  CHECK_FALSE(rules::parse_duration("10M"));
  CHECK_FALSE(rules::parse_duration("PT"));
  CHECK_FALSE(rules::parse_duration("P1H"));  // hours belong after T

  CHECK(rules::fault_route_matches("*", "GET", "/anything"));
  CHECK(rules::fault_route_matches("POST /sync/v1/Services/*/Documents/*", "POST",
                                   "/sync/v1/Services/IS1/Documents/doc"));
  CHECK_FALSE(rules::fault_route_matches("POST /sync/v1/Services/*/Documents/*", "GET",
                                         "/sync/v1/Services/IS1/Documents/doc"));
  CHECK_FALSE(rules::fault_route_matches("* /sync/v1/Services/*", "GET",
                                         "/sync/v1/Services/IS1/Documents"));

  const auto t0 = rules::steady_clock::now();
  rules::token_bucket bucket{20, 200, t0};
  int taken = 0;
  while (bucket.take(t0))
    ++taken;
  CHECK(taken == 200);
  CHECK(bucket.retry_after_s(t0) == 1);
  CHECK(bucket.take(t0 + 60ms));  // 20/s refills one token in 50 ms
}

// --- Sync -----------------------------------------------------------------------------------

TEST_CASE("Sync documents: create, fetch by unique name, conditional update, delete",
          "[twilio][emulator]") {
  running_emulator e;
  auto c = e.client();
  const auto service = new_sync_service(c);
  const auto docs = "/sync/v1/Services/" + service + "/Documents";

  auto r = c.Post(docs, httplib::Params{{"UniqueName", "lead-42"}, {"Data", R"({"stage":"new"})"}});
  REQUIRE(r->status == 201);
  auto doc = body_of(r);
  const auto sid = text(doc, "sid");
  CHECK(rules::is_sid(sid, "ET"));
  CHECK(text(doc, "revision") == "0");
  CHECK(r->get_header_value("ETag") == "0");
  CHECK(doc.at("data").at("stage") == "new");
  CHECK(text(doc, "account_sid") == account_sid);
  CHECK(text(doc, "service_sid") == service);
  CHECK(text(doc, "url") == e.twilio.base_url() + docs + "/" + sid);
  CHECK(doc.at("date_expires").is_null());
  CHECK(text(doc, "date_created").size() == 20);  // 2026-11-23T14:00:00Z

  SECTION("a second document with the same unique name is refused") {
    expect_error(c.Post(docs, httplib::Params{{"UniqueName", "lead-42"}}), 409, 54301);
  }
  SECTION("fetch by unique name, update with the current revision, then a stale one") {
    r = c.Get(docs + "/lead-42");
    REQUIRE(r->status == 200);
    CHECK(text(body_of(r), "sid") == sid);

    r = c.Post(docs + "/lead-42", if_match("0"), httplib::Params{{"Data", R"({"stage":"won"})"}});
    REQUIRE(r->status == 200);
    CHECK(text(body_of(r), "revision") == "1");
    CHECK(r->get_header_value("ETag") == "1");

    expect_error(
        c.Post(docs + "/" + sid, if_match("0"), httplib::Params{{"Data", R"({"stage":"lost"})"}}),
        412, 54103);
    CHECK(body_of(c.Get(docs + "/" + sid)).at("data").at("stage") == "won");
  }
  SECTION("Data must be JSON and at most 16 KiB") {
    expect_error(c.Post(docs + "/" + sid, httplib::Params{{"Data", "{not json"}}), 400, 20001);
    const std::string big = R"({"x":")" + std::string(16 * 1024, 'a') + R"("})";
    expect_error(c.Post(docs + "/" + sid, httplib::Params{{"Data", big}}), 400, 54006);
  }
  SECTION("delete, then it is gone") {
    expect_error(c.Delete(docs + "/" + sid, if_match("7")), 412, 54103);
    r = c.Delete(docs + "/" + sid);
    REQUIRE(r);
    CHECK(r->status == 204);
    expect_error(c.Get(docs + "/" + sid), 404, 54100);
    expect_error(c.Get(docs + "/lead-42"), 404, 54100);
  }
  SECTION("a field Twilio does not take here is named in a 400") {
    r = c.Post(docs, httplib::Params{{"Data", "{}"}, {"UniqueNmae", "typo"}});
    expect_error(r, 400, 20001);
    CHECK(r->body.find("UniqueNmae") != std::string::npos);
  }
}

TEST_CASE("Sync map items: create, duplicate key, conditional update, ordered listing",
          "[twilio][emulator]") {
  running_emulator e;
  auto c = e.client();
  const auto service = new_sync_service(c);
  auto r = c.Post("/sync/v1/Services/" + service + "/Maps",
                  httplib::Params{{"UniqueName", "locations"}});
  REQUIRE(r->status == 201);
  const auto map_sid = text(body_of(r), "sid");
  CHECK(rules::is_sid(map_sid, "MP"));
  const auto items = "/sync/v1/Services/" + service + "/Maps/locations/Items";

  for (const char* key : {"berlin", "amsterdam", "cairo", "dublin"}) {
    r = c.Post(items, httplib::Params{{"Key", key}, {"Data", R"({"open":true})"}});
    REQUIRE(r->status == 201);
    CHECK(text(body_of(r), "map_sid") == map_sid);
  }
  expect_error(c.Post(items, httplib::Params{{"Key", "berlin"}, {"Data", "{}"}}), 409, 54208);
  expect_error(c.Post(items, httplib::Params{{"Key", "oslo"}}), 400, 54206);

  r = c.Post(items + "/berlin", if_match("0"), httplib::Params{{"Data", R"({"open":false})"}});
  REQUIRE(r->status == 200);
  auto item = body_of(r);
  CHECK(text(item, "key") == "berlin");
  CHECK(text(item, "revision") == "1");
  CHECK(item.at("data").at("open") == false);
  expect_error(c.Post(items + "/berlin", if_match("0"), httplib::Params{{"Data", "{}"}}), 412,
               54205);
  expect_error(c.Get(items + "/paris"), 404, 54201);

  auto keys_of = [](const json::object& page) {
    std::vector<std::string> keys;
    for (const auto& i : page.at("items").as_array())
      keys.emplace_back(i.at("key").as_string());
    return keys;
  };
  auto page = body_of(c.Get(items));
  CHECK(keys_of(page) == std::vector<std::string>{"amsterdam", "berlin", "cairo", "dublin"});
  CHECK(text(page.at("meta").as_object(), "key") == "items");
  page = body_of(c.Get(items + "?Order=desc&From=cairo&Bounds=exclusive"));
  CHECK(keys_of(page) == std::vector<std::string>{"berlin", "amsterdam"});

  // Paging: follow next_page_url until it is null.
  std::vector<std::string> seen;
  std::string next = items + "?PageSize=3";
  while (true) {
    page = body_of(c.Get(next));
    for (auto& k : keys_of(page))
      seen.push_back(k);
    const auto& meta = page.at("meta").as_object();
    CHECK(meta.at("page_size").as_int64() == 3);
    if (meta.at("next_page_url").is_null())
      break;
    next = std::string{meta.at("next_page_url").as_string()}.substr(e.twilio.base_url().size());
  }
  CHECK(seen == std::vector<std::string>{"amsterdam", "berlin", "cairo", "dublin"});
  expect_error(c.Get(items + "?PageSize=101"), 400, 20001);  // Twilio's maximum is 100

  r = c.Delete(items + "/cairo");
  CHECK(r->status == 204);
  expect_error(c.Get(items + "/cairo"), 404, 54201);
}

TEST_CASE("Sync list items: indexes, conditional update, delete", "[twilio][emulator]") {
  running_emulator e;
  auto c = e.client();
  const auto service = new_sync_service(c);
  auto r = c.Post("/sync/v1/Services/" + service + "/Lists", httplib::Params{});
  REQUIRE(r->status == 201);
  const auto list_sid = text(body_of(r), "sid");
  CHECK(rules::is_sid(list_sid, "ES"));
  const auto items = "/sync/v1/Services/" + service + "/Lists/" + list_sid + "/Items";

  for (int i = 0; i < 3; ++i) {
    r = c.Post(items, httplib::Params{{"Data", "{\"n\":" + std::to_string(i) + "}"}});
    REQUIRE(r->status == 201);
    CHECK(body_of(r).at("index").as_int64() == i);
  }
  CHECK(body_of(c.Get(items + "/1")).at("data").at("n") == 1);
  r = c.Post(items + "/1", if_match("0"), httplib::Params{{"Data", R"({"n":10})"}});
  CHECK(r->status == 200);
  expect_error(c.Post(items + "/1", if_match("0"), httplib::Params{{"Data", "{}"}}), 412, 54155);
  CHECK(c.Delete(items + "/1")->status == 204);
  expect_error(c.Get(items + "/1"), 404, 54151);

  std::vector<std::int64_t> indexes;
  const auto listing = body_of(c.Get(items));
  for (const auto& i : listing.at("items").as_array())
    indexes.push_back(i.at("index").as_int64());
  CHECK(indexes == std::vector<std::int64_t>{0, 2});
  // A new item never reuses a deleted index.
  CHECK(body_of(c.Post(items, httplib::Params{{"Data", "{}"}})).at("index").as_int64() == 3);
}

TEST_CASE("Sync refuses writes beyond 20/s per object with 429 54009", "[twilio][emulator]") {
  running_emulator e;
  auto c = e.client();
  const auto service = new_sync_service(c);
  const auto docs = "/sync/v1/Services/" + service + "/Documents";
  const auto busy = text(body_of(c.Post(docs, httplib::Params{{"Data", "{}"}})), "sid");
  const auto quiet = text(body_of(c.Post(docs, httplib::Params{{"Data", "{}"}})), "sid");

  // The burst window holds 200 writes (20/s × 10 s); a tight loop empties it long before it
  // refills.
  int accepted = 0;
  httplib::Result limited{nullptr, httplib::Error::Unknown};
  for (int i = 0; i < 400; ++i) {
    auto r =
        c.Post(docs + "/" + busy, httplib::Params{{"Data", "{\"i\":" + std::to_string(i) + "}"}});
    REQUIRE(r);
    if (r->status == 429) {
      limited = std::move(r);
      break;
    }
    REQUIRE(r->status == 200);
    ++accepted;
  }
  CHECK(accepted >= 200);
  CHECK(accepted < 400);
  expect_error(limited, 429, 54009);
  CHECK(std::stoi(limited->get_header_value("Retry-After")) >= 1);
  // Reads and other objects are not held back.
  CHECK(c.Get(docs + "/" + busy)->status == 200);
  CHECK(c.Post(docs + "/" + quiet, httplib::Params{{"Data", "{}"}})->status == 200);

  SECTION("unless the limit is switched off") {
    auto o = test_options();
    o.enforce_rate_limits = false;
    running_emulator free_running{o};
    auto fc = free_running.client();
    const auto fs = new_sync_service(fc);
    const auto doc =
        text(body_of(fc.Post("/sync/v1/Services/" + fs + "/Documents", httplib::Params{})), "sid");
    int ok = 0;
    for (int i = 0; i < 300; ++i)
      ok +=
          fc.Post("/sync/v1/Services/" + fs + "/Documents/" + doc, httplib::Params{{"Data", "{}"}})
              ->status == 200;
    CHECK(ok == 300);
  }
}

// --- Conversations --------------------------------------------------------------------------

TEST_CASE("Conversations: an SMS pair lives in one open conversation at a time",
          "[twilio][emulator]") {
  running_emulator e;
  auto c = e.client();
  const std::string customer = "+15551230001";
  const std::string number = "+15559990000";
  const auto first = new_conversation(c, "lead-1");
  CHECK(rules::is_sid(first, "CH"));
  expect_error(c.Post("/conversations/v1/Conversations", httplib::Params{{"UniqueName", "lead-1"}}),
               409, 50353);

  auto r = add_sms_participant(c, first, customer, number);
  REQUIRE(r->status == 201);
  auto p = body_of(r);
  CHECK(rules::is_sid(text(p, "sid"), "MB"));
  CHECK(p.at("identity").is_null());
  CHECK(text(p.at("messaging_binding").as_object(), "type") == "sms");
  CHECK(text(p.at("messaging_binding").as_object(), "address") == customer);
  CHECK(text(p.at("messaging_binding").as_object(), "proxy_address") == number);

  const auto second = new_conversation(c, "lead-2");
  r = add_sms_participant(c, second, customer, number);
  expect_error(r, 409, 50416);
  CHECK(r->body.find(first) != std::string::npos);  // names the conversation holding the pair
  // Another proxy number is fine.
  CHECK(add_sms_participant(c, second, customer, "+15559990001")->status == 201);

  // ParticipantConversations finds where the customer is.
  auto found = body_of(c.Get("/conversations/v1/ParticipantConversations?Address=%2B15551230001"));
  const auto& list = found.at("conversations").as_array();
  REQUIRE(list.size() == 2);
  CHECK(text(list[0].as_object(), "conversation_sid") == first);
  CHECK(text(list[0].as_object(), "conversation_unique_name") == "lead-1");
  CHECK(text(list[0].as_object(), "conversation_state") == "active");
  CHECK(text(list[0].at("participant_messaging_binding").as_object(), "proxy_address") == number);

  // Closing the first conversation frees the pair.
  r = c.Post("/conversations/v1/Conversations/lead-1", httplib::Params{{"State", "closed"}});
  REQUIRE(r->status == 200);
  CHECK(text(body_of(r), "state") == "closed");
  expect_error(
      c.Post("/conversations/v1/Conversations/lead-1", httplib::Params{{"State", "active"}}), 400,
      20001);
  CHECK(add_sms_participant(c, second, customer, number)->status == 201);
  found = body_of(c.Get("/conversations/v1/ParticipantConversations?Address=%2B15551230001"));
  CHECK(text(found.at("conversations").as_array()[0].as_object(), "conversation_state") ==
        "closed");
}

TEST_CASE("Conversations: renamed, deleted and closed conversations are found where they are now",
          "[twilio][emulator]") {
  running_emulator e;
  auto c = e.client();
  const std::string customer = "+15551230002";
  const std::string number = "+15559990000";
  auto inbound = [&] {
    return c.Post("/_emulator/inbound-sms",
                  httplib::Params{{"From", customer}, {"To", number}, {"Body", "hi"}});
  };
  auto listed = [&] {
    std::vector<std::string> sids;
    const auto page =
        body_of(c.Get("/conversations/v1/ParticipantConversations?Address=%2B15551230002"));
    for (const auto& p : page.at("conversations").as_array())
      sids.push_back(text(p.as_object(), "conversation_sid"));
    return sids;
  };
  for (int i = 0; i < 50; ++i)  // others around them
    REQUIRE(add_sms_participant(c, new_conversation(c, "other-" + std::to_string(i)),
                                "+1555000" + std::to_string(1000 + i), number)
                ->status == 201);

  // A new unique name finds it; the old one no longer does, and is free for another.
  const auto first = new_conversation(c, "lead-a");
  REQUIRE(
      c.Post("/conversations/v1/Conversations/lead-a", httplib::Params{{"UniqueName", "lead-b"}})
          ->status == 200);
  expect_error(c.Get("/conversations/v1/Conversations/lead-a"), 404, 20404);
  CHECK(text(body_of(c.Get("/conversations/v1/Conversations/lead-b")), "sid") == first);
  const auto second = new_conversation(c, "lead-a");
  CHECK(text(body_of(c.Get("/conversations/v1/Conversations/lead-a")), "sid") == second);
  expect_error(c.Post("/conversations/v1/Conversations", httplib::Params{{"UniqueName", "lead-b"}}),
               409, 50353);

  // The customer's SMS goes to whichever open conversation holds the pair now.
  REQUIRE(add_sms_participant(c, first, customer, number)->status == 201);
  CHECK(text(body_of(inbound()), "conversation_sid") == first);
  REQUIRE(c.Post("/conversations/v1/Conversations/" + first, httplib::Params{{"State", "closed"}})
              ->status == 200);
  expect_error(inbound(), 404, 20404);
  REQUIRE(add_sms_participant(c, second, customer, number)->status == 201);
  CHECK(text(body_of(inbound()), "conversation_sid") == second);
  CHECK(listed() == std::vector<std::string>{first, second});  // oldest first

  // A deleted conversation is gone by SID, by unique name, from the search and from routing,
  // and its pair can be bound again.
  REQUIRE(c.Delete("/conversations/v1/Conversations/lead-a")->status == 204);
  expect_error(c.Get("/conversations/v1/Conversations/" + second), 404, 20404);
  expect_error(c.Get("/conversations/v1/Conversations/lead-a"), 404, 20404);
  CHECK(listed() == std::vector<std::string>{first});
  expect_error(inbound(), 404, 20404);
  const auto third = new_conversation(c, "lead-a");
  REQUIRE(add_sms_participant(c, third, customer, number)->status == 201);
  expect_error(add_sms_participant(c, new_conversation(c), customer, number), 409, 50416);

  // Removing the participant frees the pair too.
  const auto participants = "/conversations/v1/Conversations/" + third + "/Participants";
  const auto p =
      text(body_of(c.Get(participants)).at("participants").as_array()[0].as_object(), "sid");
  REQUIRE(c.Delete(participants + "/" + p)->status == 204);
  expect_error(inbound(), 404, 20404);
  CHECK(listed() == std::vector<std::string>{first});
  CHECK(add_sms_participant(c, new_conversation(c), customer, number)->status == 201);
}

TEST_CASE("Conversations: timers and attributes come back as Twilio shows them",
          "[twilio][emulator]") {
  running_emulator e;
  auto c = e.client();
  auto r =
      c.Post("/conversations/v1/Conversations", httplib::Params{{"Attributes", R"({"lead":42})"},
                                                                {"Timers.Inactive", "PT5M"},
                                                                {"Timers.Closed", "P1D"}});
  REQUIRE(r->status == 201);
  auto conv = body_of(r);
  CHECK(text(conv, "attributes") == R"({"lead":42})");
  CHECK(text(conv, "state") == "active");
  const auto& timers = conv.at("timers").as_object();
  CHECK(text(timers, "date_inactive") > text(conv, "date_created"));
  CHECK(text(timers, "date_closed") > text(timers, "date_inactive"));
  expect_error(
      c.Post("/conversations/v1/Conversations", httplib::Params{{"Timers.Closed", "PT1M"}}), 400,
      20001);
  expect_error(c.Post("/conversations/v1/Conversations", httplib::Params{{"Attributes", "{oops"}}),
               400, 20001);
  expect_error(c.Get("/conversations/v1/Conversations/CH00000000000000000000000000000000"), 404,
               20404);
}

TEST_CASE("Conversations: messages count up and refuse bodies over 1600 characters",
          "[twilio][emulator]") {
  running_emulator e;
  auto c = e.client();
  const auto conv = new_conversation(c);
  const auto messages = "/conversations/v1/Conversations/" + conv + "/Messages";

  auto r = c.Post(messages, httplib::Params{{"Body", std::string(1600, 'x')}});
  REQUIRE(r->status == 201);
  auto m = body_of(r);
  CHECK(rules::is_sid(text(m, "sid"), "IM"));
  CHECK(m.at("index").as_int64() == 0);
  CHECK(text(m, "author") == "system");
  CHECK(m.at("participant_sid").is_null());

  r = c.Post(messages, httplib::Params{{"Body", std::string(1601, 'x')}});
  expect_error(r, 400, 50504);
  // Characters, not bytes: 1600 two-byte characters fit.
  std::string accents;
  for (int i = 0; i < 1600; ++i)
    accents += "\xc3\xa9";
  CHECK(c.Post(messages, httplib::Params{{"Body", accents}})->status == 201);

  r = c.Post(messages, httplib::Params{{"Author", "agent-7"}, {"Body", "hello"}});
  m = body_of(r);
  CHECK(m.at("index").as_int64() == 2);
  CHECK(text(m, "author") == "agent-7");

  auto page = body_of(c.Get(messages + "?Order=desc"));
  CHECK(page.at("messages").as_array().size() == 3);
  CHECK(page.at("messages").as_array()[0].at("index").as_int64() == 2);
  CHECK(c.Delete(messages + "/" + text(m, "sid"))->status == 204);
  expect_error(c.Get(messages + "/" + text(m, "sid")), 404, 20404);
}

TEST_CASE("Conversations: onMessageAdded webhooks are signed and carry the message",
          "[twilio][emulator]") {
  webhook_receiver receiver;
  running_emulator e;
  auto c = e.client();
  const std::string customer = "+15551230001";
  const std::string number = "+15559990000";
  const auto conv = new_conversation(c);
  const auto participant = text(body_of(add_sms_participant(c, conv, customer, number)), "sid");

  auto r = c.Post("/conversations/v1/Conversations/" + conv + "/Webhooks",
                  httplib::Params{{"Target", "webhook"},
                                  {"Configuration.Url", receiver.url()},
                                  {"Configuration.Method", "POST"},
                                  {"Configuration.Filters", "onMessageAdded"},
                                  {"Configuration.Filters", "onMessageRemoved"}});
  REQUIRE(r->status == 201);
  auto hook = body_of(r);
  CHECK(rules::is_sid(text(hook, "sid"), "WH"));
  CHECK(hook.at("configuration").at("filters").as_array().size() == 2);

  // An SMS from the customer to our number lands in the conversation.
  r = c.Post(
      "/_emulator/inbound-sms",
      httplib::Params{{"From", customer}, {"To", number}, {"Body", "Is it still for sale?"}});
  REQUIRE(r->status == 201);
  const auto message = body_of(r);
  CHECK(text(message, "author") == customer);
  CHECK(text(message, "participant_sid") == participant);

  auto got = receiver.wait_for(1);
  REQUIRE(got.size() == 1);
  const auto& d = got[0];
  CHECK(d.param("EventType") == "onMessageAdded");
  CHECK(d.param("AccountSid") == account_sid);
  CHECK(d.param("ConversationSid") == conv);
  CHECK(d.param("MessageSid") == text(message, "sid"));
  CHECK(d.param("Index") == "0");
  CHECK(d.param("Author") == customer);
  CHECK(d.param("Body") == "Is it still for sale?");
  CHECK(d.param("ParticipantSid") == participant);
  CHECK(d.param("Source") == "SMS");
  CHECK(d.param("DateCreated") == text(message, "date_created"));
  CHECK(d.signature == twilio_signature(auth_token, receiver.url(), d.params));
  CHECK(d.signature != twilio_signature("another-token", receiver.url(), d.params));

  // As on Twilio, a REST write notifies only with X-Twilio-Webhook-Enabled: true.
  const auto messages = "/conversations/v1/Conversations/" + conv + "/Messages";
  REQUIRE(c.Post(messages, httplib::Params{{"Body", "quiet"}})->status == 201);
  REQUIRE(c.Post(messages, httplib::Headers{{"X-Twilio-Webhook-Enabled", "true"}},
                 httplib::Params{{"Body", "loud"}, {"Author", "agent-7"}})
              ->status == 201);
  got = receiver.wait_for(2);
  REQUIRE(got.size() == 2);
  CHECK(got[1].param("Body") == "loud");
  CHECK(got[1].param("Source") == "API");
  CHECK(got[1].param("Index") == "2");

  // No open conversation holds the pair: 404.
  expect_error(c.Post("/_emulator/inbound-sms",
                      httplib::Params{{"From", "+15550000000"}, {"To", number}, {"Body", "hi"}}),
               404, 20404);
  // The state dump shows the deliveries (recorded once the receiver has answered).
  auto state = body_of(c.Get("/_emulator/state"));
  for (int i = 0; i < 100 && state.at("webhook_deliveries").as_array().size() < 2; ++i) {
    std::this_thread::sleep_for(50ms);
    state = body_of(c.Get("/_emulator/state"));
  }
  REQUIRE(state.at("webhook_deliveries").as_array().size() == 2);
  CHECK(state.at("webhook_deliveries").as_array()[0].at("status").as_int64() == 200);
}

// --- TaskRouter -----------------------------------------------------------------------------

TEST_CASE("TaskRouter workers: attributes replaced whole, If-Match guards updates",
          "[twilio][emulator]") {
  running_emulator e;
  auto c = e.client();
  auto r = c.Post("/taskrouter/v1/Workspaces", httplib::Params{{"FriendlyName", "agents"}});
  REQUIRE(r->status == 201);
  const auto ws = body_of(r);
  CHECK(rules::is_sid(text(ws, "sid"), "WS"));
  CHECK(text(ws, "default_activity_name") == "Offline");
  const auto workers = "/taskrouter/v1/Workspaces/" + text(ws, "sid") + "/Workers";

  r = c.Post(workers, httplib::Params{{"FriendlyName", "alice"},
                                      {"Attributes", R"({"skills":["sales"],"desk":3})"}});
  REQUIRE(r->status == 201);
  auto w = body_of(r);
  const auto sid = text(w, "sid");
  CHECK(rules::is_sid(sid, "WK"));
  CHECK(w.at("attributes").is_string());  // a JSON string, as Twilio returns it
  CHECK(json::parse(text(w, "attributes")).at("desk") == 3);
  CHECK(text(w, "activity_name") == "Offline");
  CHECK(w.at("available") == false);
  const auto version = r->get_header_value("ETag");

  r = c.Post(workers + "/" + sid, if_match(version),
             httplib::Params{{"Attributes", R"({"skills":["support"]})"}});
  REQUIRE(r->status == 200);
  w = body_of(r);
  const auto attributes = json::parse(text(w, "attributes")).as_object();
  CHECK(attributes.size() == 1);  // "desk" is gone: the object was replaced, not merged
  CHECK(attributes.at("skills").as_array()[0] == "support");

  expect_error(
      c.Post(workers + "/" + sid, if_match(version), httplib::Params{{"FriendlyName", "alice-2"}}),
      412, 20412);
  CHECK(text(body_of(c.Get(workers + "/" + sid)), "friendly_name") == "alice");
  expect_error(c.Post(workers + "/" + sid, httplib::Params{{"Attributes", "[1,2]"}}), 400, 20001);
  expect_error(c.Get(workers + "/WK00000000000000000000000000000000"), 404, 20404);

  CHECK(body_of(c.Get(workers)).at("workers").as_array().size() == 1);
  // TaskRouter's Available filter: true, 1 or yes for available workers, anything else not.
  CHECK(body_of(c.Get(workers + "?Available=yes")).at("workers").as_array().empty());
  CHECK(body_of(c.Get(workers + "?Available=no")).at("workers").as_array().size() == 1);
  CHECK(c.Delete(workers + "/" + sid)->status == 204);
  CHECK(body_of(c.Get(workers)).at("workers").as_array().empty());
}

// --- the emulator as a whole ----------------------------------------------------------------

TEST_CASE("The emulator wants the account SID and auth token", "[twilio][emulator]") {
  running_emulator e;
  httplib::Client anonymous{e.twilio.base_url()};
  auto r = anonymous.Get("/sync/v1/Services");
  expect_error(r, 401, 20003);
  CHECK_FALSE(r->get_header_value("WWW-Authenticate").empty());

  httplib::Client wrong{e.twilio.base_url()};
  wrong.set_basic_auth(account_sid, "not-the-token");
  expect_error(wrong.Post("/sync/v1/Services", httplib::Params{}), 401, 20003);
  expect_error(wrong.Get("/_emulator/state"), 401, 20003);

  auto c = e.client();
  expect_error(c.Get("/sync/v1/Nothing"), 404, 20404);
  CHECK(body_of(c.Get("/sync/v1/Services")).at("services").as_array().empty());

  auto o = test_options();
  o.account_sid = "not-a-sid";
  CHECK_THROWS_AS(emulator{o}, std::invalid_argument);
}

TEST_CASE("An emulator stopped right after it started stops, and frees its port",
          "[twilio][emulator]") {
  for (int i = 0; i < 20; ++i) {
    std::string url;
    {
      emulator brief{test_options()};
      brief.start();
      url = brief.base_url();
    }  // stops here, before its listener may have begun
    httplib::Client c{url};
    c.set_connection_timeout(1s);
    CHECK(c.Get("/sync/v1/Services").error() == httplib::Error::Connection);
  }
}

TEST_CASE("Fault rules: 429 with Retry-After, 5xx applied or not", "[twilio][emulator]") {
  running_emulator e;
  auto c = e.client();
  auto set_faults = [&](const std::string& body) {
    auto r = c.Post("/_emulator/faults", body, "application/json");
    REQUIRE(r);
    INFO(r->body);
    REQUIRE(r->status == 200);
  };

  set_faults(R"({"rules":[{"route":"POST /sync/v1/Services","rate_429":1,"retry_after_s":3}]})");
  auto r = c.Post("/sync/v1/Services", httplib::Params{{"FriendlyName", "refused"}});
  expect_error(r, 429, 20429);
  CHECK(r->get_header_value("Retry-After") == "3");
  // Other routes are untouched, and the refused write did not happen.
  CHECK(body_of(c.Get("/sync/v1/Services")).at("services").as_array().empty());

  set_faults(R"({"rules":[{"route":"POST /sync/v1/Services","rate_5xx":1,"status_5xx":503,
                 "apply_on_5xx":true}]})");
  expect_error(c.Post("/sync/v1/Services", httplib::Params{{"FriendlyName", "applied"}}), 503,
               20503);
  set_faults(R"({"rules":[{"route":"POST /sync/v1/Services","rate_5xx":1,"status_5xx":500}]})");
  expect_error(c.Post("/sync/v1/Services", httplib::Params{{"FriendlyName", "dropped"}}), 500,
               20500);
  auto services = body_of(c.Get("/sync/v1/Services")).at("services").as_array();
  REQUIRE(services.size() == 1);  // the 503 was applied, the 500 was not
  CHECK(services[0].at("friendly_name") == "applied");

  set_faults(R"({"rules":[{"route":"*","latency_ms":150}]})");
  const auto before = std::chrono::steady_clock::now();
  CHECK(c.Get("/sync/v1/Services")->status == 200);
  CHECK(std::chrono::steady_clock::now() - before >= 150ms);

  expect_error(c.Post("/_emulator/faults", R"({"rules":[{"rate_429":2}]})", "application/json"),
               400, 20001);
  expect_error(c.Post("/_emulator/faults", R"({"rules":[{"rate_492":0.1}]})", "application/json"),
               400, 20001);
  CHECK(c.Delete("/_emulator/faults")->status == 204);
  CHECK(c.Post("/sync/v1/Services", httplib::Params{})->status == 201);
}

TEST_CASE("Fault rules: a timeout never answers, and stop() still returns promptly",
          "[twilio][emulator]") {
  auto o = test_options();
  fault_rule silent;
  silent.route = "GET /sync/v1/Services";
  silent.rate_timeout = 1;
  o.faults.push_back(silent);
  running_emulator e{o};
  auto c = e.client();
  c.set_read_timeout(300ms);

  const auto before = std::chrono::steady_clock::now();
  auto r = c.Get("/sync/v1/Services");
  CHECK_FALSE(r);
  CHECK(r.error() == httplib::Error::Read);
  CHECK(std::chrono::steady_clock::now() - before >= 300ms);
  // Writes still answer while the silent route holds a connection.
  auto other = e.client();
  CHECK(other.Post("/sync/v1/Services", httplib::Params{})->status == 201);

  // A client that never gives up is cut off by stop(), which does not wait for it.
  std::atomic<bool> answered{true};
  std::thread patient([&] {
    auto p = e.client();
    p.set_read_timeout(60s);
    answered = static_cast<bool>(p.Get("/sync/v1/Services"));
  });
  std::this_thread::sleep_for(200ms);
  const auto stopping = std::chrono::steady_clock::now();
  e.twilio.stop();
  CHECK(std::chrono::steady_clock::now() - stopping < 3s);
  patient.join();
  CHECK_FALSE(answered);
}

TEST_CASE("Fault rules: the same seed gives the same faults", "[twilio][emulator]") {
  auto run = [](std::uint64_t seed) {
    auto o = test_options();
    o.seed = seed;
    fault_rule flaky;
    flaky.route = "POST /sync/v1/Services";
    flaky.rate_429 = 0.3;
    flaky.rate_5xx = 0.2;
    o.faults.push_back(flaky);
    running_emulator e{o};
    auto c = e.client();
    std::vector<int> statuses;
    for (int i = 0; i < 40; ++i)
      statuses.push_back(c.Post("/sync/v1/Services", httplib::Params{})->status);
    return statuses;
  };
  const auto first = run(7);
  CHECK(run(7) == first);
  CHECK(run(8) != first);
  const std::set<int> kinds(first.begin(), first.end());
  CHECK(kinds == std::set<int>{201, 429, 503});

  SECTION("and POST /_emulator/faults reseeds") {
    running_emulator e;
    auto c = e.client();
    auto replay = [&] {
      auto r = c.Post(
          "/_emulator/faults",
          R"({"seed":7,"rules":[{"route":"POST /sync/v1/Services","rate_429":0.3,"rate_5xx":0.2}]})",
          "application/json");
      REQUIRE(r->status == 200);
      std::vector<int> statuses;
      for (int i = 0; i < 40; ++i)
        statuses.push_back(c.Post("/sync/v1/Services", httplib::Params{})->status);
      return statuses;
    };
    CHECK(replay() == first);
    CHECK(replay() == first);
  }
}

TEST_CASE("With twilio_urls, url fields name Twilio's hosts", "[twilio][emulator]") {
  auto o = test_options();
  o.twilio_urls = true;
  running_emulator e{o};
  auto c = e.client();
  const auto service = new_sync_service(c);
  CHECK(text(body_of(c.Get("/sync/v1/Services/" + service)), "url") ==
        "https://sync.twilio.com/v1/Services/" + service);
  const auto conv = new_conversation(c);
  auto page = body_of(c.Get("/conversations/v1/Conversations?PageSize=1"));
  CHECK(text(page.at("meta").as_object(), "first_page_url") ==
        "https://conversations.twilio.com/v1/Conversations?PageSize=1&Page=0");
  CHECK(text(page.at("conversations").as_array()[0].as_object(), "url") ==
        "https://conversations.twilio.com/v1/Conversations/" + conv);
}

TEST_CASE("The request log lists requests in arrival order", "[twilio][emulator]") {
  running_emulator e;
  auto c = e.client();
  const auto service = new_sync_service(c);
  c.Get("/sync/v1/Services/" + service);
  c.Post("/sync/v1/Services/" + service + "/Documents", httplib::Params{{"Data", "{oops"}});

  auto log = body_of(c.Get("/_emulator/requests")).at("requests").as_array();
  REQUIRE(log.size() == 3);  // the /_emulator/ calls themselves are not logged
  CHECK(text(log[0].as_object(), "method") == "POST");
  CHECK(text(log[0].as_object(), "path") == "/sync/v1/Services");
  CHECK(log[0].at("params").at("FriendlyName") == "test");
  CHECK(log[0].at("status").as_int64() == 201);
  CHECK(text(log[1].as_object(), "method") == "GET");
  CHECK(log[1].at("status").as_int64() == 200);
  CHECK(log[2].at("params").at("Data") == "{oops");
  CHECK(log[2].at("status").as_int64() == 400);

  CHECK(c.Delete("/_emulator/requests")->status == 204);
  CHECK(body_of(c.Get("/_emulator/requests")).at("requests").as_array().empty());

  auto state = body_of(c.Get("/_emulator/state"));
  const auto& services = state.at("sync").at("services").as_array();
  REQUIRE(services.size() == 1);
  CHECK(text(services[0].as_object(), "sid") == service);
}

TEST_CASE("Sync objects are found by SID and unique name among many, after deletes and TTLs",
          "[twilio][emulator]") {
  running_emulator e;
  auto c = e.client();
  const auto service = new_sync_service(c);
  const auto docs = "/sync/v1/Services/" + service + "/Documents";
  std::vector<std::string> sids;
  for (int i = 0; i < 200; ++i) {
    auto r = c.Post(docs, httplib::Params{{"UniqueName", "doc-" + std::to_string(i)},
                                          {"Data", R"({"n":)" + std::to_string(i) + "}"}});
    REQUIRE(r);
    REQUIRE(r->status == 201);
    sids.push_back(text(body_of(r), "sid"));
  }
  CHECK(body_of(c.Get(docs + "/doc-150")).at("data").at("n") == 150);
  CHECK(text(body_of(c.Get(docs + "/" + sids[42])), "unique_name") == "doc-42");

  // A deleted document is gone by both names, and its unique name can be used again.
  REQUIRE(c.Delete(docs + "/doc-7")->status == 204);
  expect_error(c.Get(docs + "/doc-7"), 404, 54100);
  expect_error(c.Get(docs + "/" + sids[7]), 404, 54100);
  CHECK(c.Post(docs, httplib::Params{{"UniqueName", "doc-7"}, {"Data", "{}"}})->status == 201);
  CHECK(body_of(c.Get(docs + "/doc-8")).at("data").at("n") == 8);

  // A document with a TTL disappears once it expires; the others stay.
  REQUIRE(c.Post(docs, httplib::Params{{"UniqueName", "short-lived"}, {"Ttl", "1"}})->status ==
          201);
  CHECK(c.Get(docs + "/short-lived")->status == 200);
  CHECK(switchboard::testing::eventually(
      [&] { return c.Get(docs + "/short-lived")->status == 404; }, 5s));
  CHECK(body_of(c.Get(docs + "/doc-199")).at("data").at("n") == 199);
  CHECK(c.Post(docs, httplib::Params{{"UniqueName", "short-lived"}})->status == 201);
}
