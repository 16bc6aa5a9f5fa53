// switchboard's Twilio client against the in-process emulator over real HTTP: every call's happy
// path, and every failure class as the emulator's fault rules and Twilio's own errors produce it.
// Plus the pure classification of answers the emulator never gives (HTTP-date Retry-After,
// revisions in 412 answers, non-JSON bodies).

#include "adapters/twilio/client.hpp"
#include "adapters/twilio/emulator.hpp"

#include <httplib.h>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <utility>

using namespace std::chrono_literals;
using namespace switchboard::adapters::twilio;
namespace json = boost::json;

namespace {

constexpr const char* account_sid = "AC00112233445566778899aabbccddeeff";
constexpr const char* auth_token = "client-test-token";

/// An emulator on a free loopback port, a client pointed at it, and a raw cpp-httplib client
/// for setting things up (Sync services, workspaces) and for /_emulator/faults.
struct fixture {
  emulator twilio;
  client twilio_client;

  static emulator_options emulator_settings() {
    emulator_options o;
    o.account_sid = account_sid;
    o.auth_token = auth_token;
    return o;
  }
  static emulator& started(emulator& e) {
    e.start();
    return e;
  }
  static client_options client_settings(const emulator& e) {
    client_options o;
    o.base_url = e.base_url();
    o.account_sid = account_sid;
    o.auth_token = auth_token;
    o.read_timeout = 5s;
    o.default_retry_after = 250ms;
    return o;
  }

  fixture() : twilio(emulator_settings()), twilio_client(client_settings(started(twilio))) {}

  httplib::Client raw() const {
    httplib::Client c{twilio.base_url()};
    c.set_basic_auth(account_sid, auth_token);
    c.set_read_timeout(10s);
    return c;
  }

  std::string created_sid(const std::string& path, const httplib::Params& params) const {
    auto c = raw();
    auto r = c.Post(path, params);
    REQUIRE(r);
    INFO(r->body);
    REQUIRE(r->status == 201);
    return std::string{json::parse(r->body).at("sid").as_string()};
  }

  std::string new_sync_service() const {
    return created_sid("/sync/v1/Services", {{"FriendlyName", "client-test"}});
  }

  void set_faults(const std::string& rules_json) const {
    auto c = raw();
    auto r = c.Post("/_emulator/faults", rules_json, "application/json");
    REQUIRE(r);
    INFO(r->body);
    REQUIRE(r->status == 200);
  }
  void clear_faults() const {
    auto c = raw();
    auto r = c.Delete("/_emulator/faults");
    REQUIRE(r);
    REQUIRE(r->status == 204);
  }
};

/// Checks a call's outcome, showing its message when it is not the one expected.
void require_outcome(const call_result& r, outcome expected) {
  INFO(to_string(r.kind) << " " << r.status << " " << r.code << ": " << r.message);
  REQUIRE(r.kind == expected);
}

json::value parsed_string_field(const call_result& r, const char* key) {
  return json::parse(r.text(key));
}

}  // namespace

// --- happy paths ----------------------------------------------------------------------------

TEST_CASE("Twilio client: Sync documents, created, fetched, updated under If-Match, deleted",
          "[twilio][client]") {
  fixture f;
  auto& c = f.twilio_client;
  const auto service = f.new_sync_service();

  auto r = c.create_document(service, std::string{"lead-42"}, json::value{{"stage", "new"}});
  require_outcome(r, outcome::ok);
  CHECK(r.status == 201);
  const auto sid = r.text("sid");
  CHECK(sid.rfind("ET", 0) == 0);
  CHECK(r.revision() == "0");
  CHECK(r.body.at("data").at("stage") == "new");

  // By unique name and by SID.
  r = c.fetch_document(service, "lead-42");
  require_outcome(r, outcome::ok);
  CHECK(r.text("sid") == sid);
  CHECK(r.etag == "0");
  CHECK(c.fetch_document(service, sid).text("unique_name") == "lead-42");

  r = c.update_document(service, "lead-42", json::value{{"stage", "qualified"}}, "0");
  require_outcome(r, outcome::ok);
  CHECK(r.status == 200);
  CHECK(r.revision() == "1");
  CHECK(r.body.at("data").at("stage") == "qualified");

  r = c.update_document(service, sid, json::value{{"stage", "won"}});  // unconditional
  require_outcome(r, outcome::ok);
  CHECK(r.revision() == "2");

  require_outcome(c.delete_document(service, sid, "2"), outcome::ok);
  r = c.fetch_document(service, sid);
  require_outcome(r, outcome::terminal);
  CHECK(r.status == 404);
  CHECK(r.code == 54100);
}

TEST_CASE("Twilio client: Sync map items, created, fetched, updated under If-Match, deleted",
          "[twilio][client]") {
  fixture f;
  auto& c = f.twilio_client;
  const auto service = f.new_sync_service();
  auto r = c.create_map(service, "leads");
  require_outcome(r, outcome::ok);
  CHECK(r.text("sid").rfind("MP", 0) == 0);

  // A key that needs percent-encoding in a path, as business keys may.
  const std::string key = "lead 42+x@acme";
  r = c.create_map_item(service, "leads", key, json::value{{"owner", "alice"}});
  require_outcome(r, outcome::ok);
  CHECK(r.status == 201);
  CHECK(r.text("key") == key);
  CHECK(r.revision() == "0");

  r = c.fetch_map_item(service, "leads", key);
  require_outcome(r, outcome::ok);
  CHECK(r.body.at("data").at("owner") == "alice");

  r = c.update_map_item(service, "leads", key, json::value{{"owner", "bob"}}, "0");
  require_outcome(r, outcome::ok);
  CHECK(r.revision() == "1");
  CHECK(c.fetch_map_item(service, "leads", key).body.at("data").at("owner") == "bob");

  require_outcome(c.delete_map_item(service, "leads", key, "1"), outcome::ok);
  r = c.fetch_map_item(service, "leads", key);
  require_outcome(r, outcome::terminal);
  CHECK(r.status == 404);
  CHECK(r.code == 54201);
}

TEST_CASE("Twilio client: conversations, SMS participants, messages and webhooks",
          "[twilio][client]") {
  fixture f;
  auto& c = f.twilio_client;

  conversation_fields fields;
  fields.unique_name = "lead-42";
  fields.friendly_name = "Lead 42";
  fields.attributes = json::value{{"lead", 42}};
  auto r = c.create_conversation(fields);
  require_outcome(r, outcome::ok);
  CHECK(r.status == 201);
  const auto ch = r.text("sid");
  CHECK(ch.rfind("CH", 0) == 0);
  CHECK(r.text("friendly_name") == "Lead 42");
  CHECK(parsed_string_field(r, "attributes").at("lead") == 42);  // a JSON string, as Twilio

  CHECK(c.fetch_conversation(ch).text("unique_name") == "lead-42");
  CHECK(c.fetch_conversation("lead-42").text("sid") == ch);

  r = c.add_sms_participant(ch, "+15551230001", "+15559870001", json::value{{"role", "lead"}});
  require_outcome(r, outcome::ok);
  CHECK(r.text("sid").rfind("MB", 0) == 0);
  CHECK(r.body.at("messaging_binding").at("address") == "+15551230001");
  CHECK(r.body.at("messaging_binding").at("proxy_address") == "+15559870001");

  r = c.participant_conversations("+15551230001");
  require_outcome(r, outcome::ok);
  REQUIRE(r.body.at("conversations").as_array().size() == 1);
  CHECK(r.body.at("conversations").at(0).at("conversation_sid").as_string() == ch);
  CHECK(c.participant_conversations("+15550000000").body.at("conversations").as_array().empty());

  message_fields first;
  first.author = "switchboard";
  first.body = "Hello from switchboard";
  first.attributes = json::value{{"step", "s-1"}};
  r = c.send_message(ch, first);
  require_outcome(r, outcome::ok);
  CHECK(r.status == 201);
  CHECK(r.text("author") == "switchboard");
  CHECK(parsed_string_field(r, "attributes").at("step") == "s-1");
  message_fields second;
  second.body = "Second";
  r = c.send_message(ch, second);
  require_outcome(r, outcome::ok);
  CHECK(r.text("author") == "system");

  // One message a page: the second page comes through fetch_page.
  r = c.list_messages(ch, {false, 1});
  require_outcome(r, outcome::ok);
  REQUIRE(r.body.at("messages").as_array().size() == 1);
  CHECK(r.body.at("messages").at(0).at("body") == "Hello from switchboard");
  const auto next = r.body.at("meta").at("next_page_url");
  REQUIRE(next.is_string());
  r = c.fetch_page(std::string{next.as_string()});
  require_outcome(r, outcome::ok);
  REQUIRE(r.body.at("messages").as_array().size() == 1);
  CHECK(r.body.at("messages").at(0).at("body") == "Second");
  CHECK(c.list_messages(ch, {true, 50}).body.at("messages").at(0).at("body") == "Second");
  CHECK(c.fetch_page("https://example.com/v1/Conversations").kind == outcome::terminal);

  conversation_webhook_fields hook;
  hook.url = "https://switchboard.example/twilio/conversations";
  hook.filters = {"onMessageAdded", "onConversationUpdated"};
  r = c.create_conversation_webhook(ch, hook);
  require_outcome(r, outcome::ok);
  CHECK(r.text("target") == "webhook");
  CHECK(r.body.at("configuration").at("url") == "https://switchboard.example/twilio/conversations");
  CHECK(r.body.at("configuration").at("filters").as_array().size() == 2);

  // The SMS pair is taken while the conversation is open, and free once it is closed.
  conversation_fields other;
  other.unique_name = "lead-43";
  const auto ch2 = c.create_conversation(other).text("sid");
  r = c.add_sms_participant(ch2, "+15551230001", "+15559870001");
  require_outcome(r, outcome::conflict);
  CHECK(r.status == 409);
  CHECK(r.code == 50416);
  r = c.update_conversation_state(ch, conversation_state::closed);
  require_outcome(r, outcome::ok);
  CHECK(r.text("state") == "closed");
  require_outcome(c.add_sms_participant(ch2, "+15551230001", "+15559870001"), outcome::ok);
}

TEST_CASE("Twilio client: SMS through the Messages API, listed newest first, paged by URI",
          "[twilio][client]") {
  fixture f;
  auto& tw = f.twilio_client;
  auto first = tw.send_sms({"+15550001001", "+15550100001", "Reminder: Ana is waiting"});
  INFO(first.message);
  REQUIRE(first.kind == outcome::ok);
  CHECK(first.status == 201);
  CHECK(first.text("sid").rfind("SM", 0) == 0);
  CHECK(first.text("to") == "+15550001001");
  CHECK(first.text("from") == "+15550100001");
  CHECK(first.text("status") == "queued");
  REQUIRE(tw.send_sms({"+15550001001", "+15550100001", "second"}).kind == outcome::ok);
  REQUIRE(tw.send_sms({"+15550009999", "+15550100001", "elsewhere"}).kind == outcome::ok);

  auto page = tw.list_sms({"+15550001001", "+15550100001", 1});
  REQUIRE(page.kind == outcome::ok);
  const auto& one = page.body.at("messages").as_array();
  REQUIRE(one.size() == 1);
  CHECK(one[0].at("body") == "second");  // newest first
  const auto next = std::string{page.body.at("next_page_uri").as_string()};
  CHECK(next.rfind("/2010-04-01/Accounts/", 0) == 0);
  auto rest = tw.fetch_page(next);
  REQUIRE(rest.kind == outcome::ok);
  REQUIRE(rest.body.at("messages").as_array().size() == 1);
  CHECK(rest.body.at("messages").as_array()[0].at("sid") == json::value(first.text("sid")));
  CHECK(rest.body.at("next_page_uri").is_null());

  auto bad = tw.send_sms({"555-0100", "+15550100001", "hi"});
  CHECK(bad.kind == outcome::terminal);
  CHECK(bad.code == 21211);
  auto empty = tw.send_sms({"+15550001001", "+15550100001", ""});
  CHECK(empty.kind == outcome::terminal);
  CHECK(empty.code == 21602);
}

TEST_CASE("Twilio client: TaskRouter worker attributes replaced under If-Match",
          "[twilio][client]") {
  fixture f;
  auto& c = f.twilio_client;
  const auto ws = f.created_sid("/taskrouter/v1/Workspaces", {{"FriendlyName", "agents"}});
  const auto wk = f.created_sid("/taskrouter/v1/Workspaces/" + ws + "/Workers",
                                {{"FriendlyName", "alice"}, {"Attributes", R"({"desk":3})"}});

  auto r = c.fetch_worker(ws, wk);
  require_outcome(r, outcome::ok);
  CHECK(r.text("friendly_name") == "alice");
  const auto version = r.revision();  // workers carry their version in the ETag
  REQUIRE_FALSE(version.empty());

  r = c.update_worker_attributes(ws, wk, json::value{{"skills", json::array{"sales"}}}, version);
  require_outcome(r, outcome::ok);
  const auto attributes = parsed_string_field(r, "attributes").as_object();
  CHECK(attributes.size() == 1);  // replaced whole: "desk" is gone
  CHECK(attributes.at("skills").at(0) == "sales");
  CHECK(r.revision() != version);

  r = c.update_worker_attributes(ws, wk, json::value{{"skills", json::array{}}}, version);
  require_outcome(r, outcome::conflict);
  CHECK(r.status == 412);
  CHECK(r.code == 20412);
}

TEST_CASE("Twilio client: page URLs naming Twilio's hosts reach the configured product URL",
          "[twilio][client]") {
  auto o = fixture::emulator_settings();
  o.twilio_urls = true;  // answers name https://conversations.twilio.com, as Twilio's do
  emulator twilio{o};
  twilio.start();
  client c{fixture::client_settings(twilio)};
  const auto ch = c.create_conversation({}).text("sid");
  REQUIRE_FALSE(ch.empty());
  for (const char* text : {"one", "two"}) {
    message_fields m;
    m.body = text;
    require_outcome(c.send_message(ch, m), outcome::ok);
  }
  auto r = c.list_messages(ch, {false, 1});
  require_outcome(r, outcome::ok);
  const std::string next{r.body.at("meta").at("next_page_url").as_string()};
  CHECK(next.rfind("https://conversations.twilio.com/v1/Conversations/" + ch + "/Messages", 0) ==
        0);
  r = c.fetch_page(next);
  require_outcome(r, outcome::ok);
  CHECK(r.body.at("messages").at(0).at("body") == "two");
}

// --- each failure class, as Twilio's errors and the emulator's faults produce it -------------

TEST_CASE("Twilio client: 429 is retryable with Twilio's delay; a 503 to a write is ambiguous",
          "[twilio][client]") {
  fixture f;
  auto& c = f.twilio_client;
  const auto service = f.new_sync_service();
  require_outcome(c.create_document(service, std::string{"doc"}, json::object{}), outcome::ok);

  f.set_faults(R"({"rules":[{"route":"POST /sync/v1/Services/*/Documents/*",
                             "rate_429":1,"retry_after_s":2}]})");
  auto r = c.update_document(service, "doc", json::value{{"n", 1}});
  require_outcome(r, outcome::retryable);
  CHECK(r.status == 429);
  CHECK(r.code == 20429);
  CHECK(r.retry_after == 2s);
  CHECK(r.message.find("POST http://") == 0);  // names the request
  f.clear_faults();
  CHECK(c.fetch_document(service, "doc").revision() == "0");  // a 429 was not applied

  // A 503 looks the same whether or not Twilio stored the write first: the caller must look.
  f.set_faults(R"({"rules":[{"route":"POST /sync/v1/Services/*/Documents/*",
                             "rate_5xx":1,"status_5xx":503}]})");
  r = c.update_document(service, "doc", json::value{{"n", 2}});
  require_outcome(r, outcome::ambiguous);
  CHECK(r.status == 503);
  CHECK(r.retry_after == 250ms);  // no Retry-After: client_options::default_retry_after
  f.clear_faults();
  CHECK(c.fetch_document(service, "doc").revision() == "0");  // this one was not applied

  f.set_faults(R"({"rules":[{"route":"POST /conversations/v1/Conversations/*/Messages",
                             "rate_5xx":1,"status_5xx":503,"apply_on_5xx":true}]})");
  const auto ch = c.create_conversation({}).text("sid");
  REQUIRE_FALSE(ch.empty());
  message_fields m;
  m.body = "hello";
  r = c.send_message(ch, m);
  require_outcome(r, outcome::ambiguous);
  CHECK(r.status == 503);
  CHECK(r.message.find("look before writing again") == std::string::npos);  // that is transport's
  // A read answered 503 is retryable: reading changes nothing.
  f.set_faults(R"({"rules":[{"route":"GET /conversations/v1/Conversations/*/Messages",
                             "rate_5xx":1,"status_5xx":503}]})");
  r = c.list_messages(ch);
  require_outcome(r, outcome::retryable);
  CHECK(r.retry_after == 250ms);
  f.clear_faults();
  // Why a 503 to a write is ambiguous: this one was stored.
  r = c.list_messages(ch);
  require_outcome(r, outcome::ok);
  CHECK(r.body.at("messages").as_array().size() == 1);
}

TEST_CASE("Twilio client: Sync's per-object rate limit is retryable with its Retry-After",
          "[twilio][client]") {
  auto o = fixture::emulator_settings();
  o.sync_writes_per_s = 1;
  o.sync_burst_window_s = 1;  // one write, then one a second
  emulator twilio{o};
  twilio.start();
  client c{fixture::client_settings(twilio)};
  httplib::Client raw{twilio.base_url()};
  raw.set_basic_auth(account_sid, auth_token);
  auto created = raw.Post("/sync/v1/Services", httplib::Params{});
  REQUIRE(created);
  const std::string service{json::parse(created->body).at("sid").as_string()};

  require_outcome(c.create_document(service, std::string{"hot"}, json::object{}), outcome::ok);
  require_outcome(c.update_document(service, "hot", json::value{{"n", 1}}), outcome::ok);
  auto r = c.update_document(service, "hot", json::value{{"n", 2}});
  require_outcome(r, outcome::retryable);
  CHECK(r.status == 429);
  CHECK(r.code == 54009);
  CHECK(r.retry_after >= 1s);
}

TEST_CASE("Twilio client: other 5xx and unanswered writes are ambiguous", "[twilio][client]") {
  fixture f;
  auto& c = f.twilio_client;
  const auto service = f.new_sync_service();
  require_outcome(c.create_document(service, std::string{"doc"}, json::object{}), outcome::ok);

  SECTION("500 after the write was applied") {
    f.set_faults(R"({"rules":[{"route":"POST /sync/v1/Services/*/Documents/*",
                               "rate_5xx":1,"status_5xx":500,"apply_on_5xx":true}]})");
    auto r = c.update_document(service, "doc", json::value{{"n", 1}});
    require_outcome(r, outcome::ambiguous);
    CHECK(r.status == 500);
    f.clear_faults();
    // Why it is ambiguous: the write did happen.
    CHECK(c.fetch_document(service, "doc").revision() == "1");
  }
  SECTION("502 without the write") {
    f.set_faults(R"({"rules":[{"route":"POST /sync/v1/Services/*/Documents/*",
                               "rate_5xx":1,"status_5xx":502}]})");
    auto r = c.update_document(service, "doc", json::value{{"n", 1}});
    require_outcome(r, outcome::ambiguous);
    CHECK(r.status == 502);
    f.clear_faults();
    CHECK(c.fetch_document(service, "doc").revision() == "0");
  }
  SECTION("a 5xx to a read is retryable: reading changes nothing") {
    f.set_faults(R"({"rules":[{"route":"GET /sync/v1/Services/*/Documents/*",
                               "rate_5xx":1,"status_5xx":500}]})");
    auto r = c.fetch_document(service, "doc");
    require_outcome(r, outcome::retryable);
    CHECK(r.status == 500);
    CHECK(r.retry_after == 250ms);
  }
  SECTION("a write that is never answered: read timeout") {
    auto o = fixture::client_settings(f.twilio);
    o.read_timeout = 300ms;
    client impatient{o};
    f.set_faults(R"({"rules":[{"route":"POST /conversations/v1/Conversations/*/Messages",
                               "rate_timeout":1,"timeout_applies":true}]})");
    const auto ch = impatient.create_conversation({}).text("sid");
    REQUIRE_FALSE(ch.empty());
    message_fields m;
    m.body = "did it arrive?";
    m.attributes = json::value{{"step", "s-7"}};
    const auto before = std::chrono::steady_clock::now();
    auto r = impatient.send_message(ch, m);
    const auto waited = std::chrono::steady_clock::now() - before;
    require_outcome(r, outcome::ambiguous);
    CHECK(r.status == 0);
    CHECK(waited >= 300ms);
    CHECK(waited < 3s);

    // A read that is never answered is retryable; the same client goes on working.
    f.set_faults(R"({"rules":[{"route":"GET /conversations/v1/Conversations/*/Messages",
                               "rate_timeout":1}]})");
    r = impatient.list_messages(ch);
    require_outcome(r, outcome::retryable);
    CHECK(r.status == 0);
    f.clear_faults();
    // The message was written after all: a retry would find it by its step id.
    r = impatient.list_messages(ch);
    require_outcome(r, outcome::ok);
    REQUIRE(r.body.at("messages").as_array().size() == 1);
    CHECK(json::parse(r.body.at("messages").at(0).at("attributes").as_string()).at("step") ==
          "s-7");
  }
}

TEST_CASE("Twilio client: a connection closed after the request was sent is ambiguous for a write",
          "[twilio][client]") {
  // A server that reads each request whole and then hangs up without answering, as a proxy or a
  // crashing server would: the request arrived, so a write may have happened.
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(listener >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(listener, 4) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  const int port = ntohs(a.sin_port);
  std::atomic<int> requests{0};
  std::thread serving{[&] {
    for (int served = 0; served < 2; ++served) {
      const int fd = ::accept(listener, nullptr, nullptr);
      if (fd < 0)
        return;
      timeval limit{5, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
      std::string got;
      char buffer[4096];
      for (;;) {  // the head, then Content-Length bytes of body
        const auto head_end = got.find("\r\n\r\n");
        if (head_end != std::string::npos) {
          const auto cl = got.find("Content-Length: ");
          const std::size_t body =
              cl == std::string::npos || cl > head_end ? 0 : std::stoul(got.substr(cl + 16));
          if (got.size() >= head_end + 4 + body)
            break;
        }
        const auto n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0)
          break;
        got.append(buffer, static_cast<std::size_t>(n));
      }
      ++requests;
      ::close(fd);
    }
  }};
  client_options o;
  o.base_url = "http://127.0.0.1:" + std::to_string(port);
  o.account_sid = account_sid;
  o.auth_token = auth_token;
  o.default_retry_after = 250ms;
  client c{o};
  message_fields m;
  m.body = "did it arrive?";
  auto r = c.send_message("CH00000000000000000000000000000000", m);
  require_outcome(r, outcome::ambiguous);
  CHECK(r.status == 0);
  CHECK(r.message.find("look before writing again") != std::string::npos);
  r = c.list_messages("CH00000000000000000000000000000000");
  require_outcome(r, outcome::retryable);
  CHECK(r.retry_after == 250ms);
  serving.join();
  ::close(listener);
  CHECK(requests.load() == 2);  // both arrived
}

TEST_CASE("Twilio client: a refused connection is retryable, nothing was sent",
          "[twilio][client]") {
  std::string closed_url;
  {
    emulator gone{fixture::emulator_settings()};
    gone.start();
    closed_url = gone.base_url();
    // Served once, so that stop() finds it listening (stopping a server that has not begun
    // to listen yet leaves its listener waiting).
    httplib::Client probe{closed_url};
    probe.set_basic_auth(account_sid, auth_token);
    REQUIRE(probe.Get("/sync/v1/Services"));
  }  // stopped: nothing listens on its port now
  client_options o;
  o.base_url = closed_url;
  o.account_sid = account_sid;
  o.auth_token = auth_token;
  o.default_retry_after = 250ms;
  client c{o};
  auto r = c.update_document("IS00000000000000000000000000000000", "doc", json::object{});
  require_outcome(r, outcome::retryable);
  CHECK(r.status == 0);
  CHECK(r.retry_after == 250ms);
}

TEST_CASE("Twilio client: stale revisions and existing keys are conflicts", "[twilio][client]") {
  fixture f;
  auto& c = f.twilio_client;
  const auto service = f.new_sync_service();
  require_outcome(c.create_document(service, std::string{"doc"}, json::object{}), outcome::ok);
  require_outcome(c.update_document(service, "doc", json::value{{"n", 1}}, "0"), outcome::ok);

  auto r = c.update_document(service, "doc", json::value{{"n", 2}}, "0");
  require_outcome(r, outcome::conflict);
  CHECK(r.status == 412);
  CHECK(r.code == 54103);
  CHECK(c.fetch_document(service, "doc").body.at("data").at("n") == 1);  // not applied
  r = c.delete_document(service, "doc", "0");
  require_outcome(r, outcome::conflict);
  CHECK(r.code == 54103);

  require_outcome(c.create_map(service, "m"), outcome::ok);
  require_outcome(c.create_map_item(service, "m", "k", json::value{{"v", 1}}), outcome::ok);
  r = c.create_map_item(service, "m", "k", json::value{{"v", 2}});
  require_outcome(r, outcome::conflict);
  CHECK(r.status == 409);
  CHECK(r.code == 54208);
  r = c.update_map_item(service, "m", "k", json::value{{"v", 2}}, "5");
  require_outcome(r, outcome::conflict);
  CHECK(r.status == 412);
  CHECK(r.code == 54205);

  conversation_fields named;
  named.unique_name = "taken";
  require_outcome(c.create_conversation(named), outcome::ok);
  r = c.create_conversation(named);
  require_outcome(r, outcome::conflict);
  CHECK(r.code == 50353);
}

TEST_CASE("Twilio client: bad requests are terminal with Twilio's code", "[twilio][client]") {
  fixture f;
  auto& c = f.twilio_client;
  const auto service = f.new_sync_service();
  require_outcome(c.create_map(service, "m"), outcome::ok);

  // More than Sync's 16 KiB of data.
  auto r = c.create_map_item(service, "m", "big", json::value{{"x", std::string(17000, 'a')}});
  require_outcome(r, outcome::terminal);
  CHECK(r.status == 400);
  CHECK(r.code == 54006);
  CHECK_FALSE(r.message.empty());

  const auto ch = c.create_conversation({}).text("sid");
  message_fields too_long;
  too_long.body = std::string(1601, 'x');
  r = c.send_message(ch, too_long);
  require_outcome(r, outcome::terminal);
  CHECK(r.code == 50504);

  const auto ws = f.created_sid("/taskrouter/v1/Workspaces", {{"FriendlyName", "agents"}});
  const auto wk =
      f.created_sid("/taskrouter/v1/Workspaces/" + ws + "/Workers", {{"FriendlyName", "bob"}});
  r = c.update_worker_attributes(ws, wk, json::array{1, 2});  // not an object
  require_outcome(r, outcome::terminal);
  CHECK(r.status == 400);
  CHECK(r.code == 20001);

  r = c.fetch_conversation("no-such-conversation");
  require_outcome(r, outcome::terminal);
  CHECK(r.status == 404);

  auto o = fixture::client_settings(f.twilio);
  o.auth_token = "not-the-token";
  client wrong{o};
  r = wrong.fetch_document(service, "m");
  require_outcome(r, outcome::terminal);
  CHECK(r.status == 401);
  CHECK(r.code == 20003);
}

// --- configuration --------------------------------------------------------------------------

TEST_CASE("Twilio client: credentials from the environment, or a clear refusal",
          "[twilio][client]") {
  auto saved = [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    return v != nullptr ? std::optional<std::string>{v} : std::nullopt;
  };
  const auto sid_before = saved("TWILIO_ACCOUNT_SID");
  const auto token_before = saved("TWILIO_AUTH_TOKEN");
  auto restore = [&] {
    if (sid_before)
      ::setenv("TWILIO_ACCOUNT_SID", sid_before->c_str(), 1);
    else
      ::unsetenv("TWILIO_ACCOUNT_SID");
    if (token_before)
      ::setenv("TWILIO_AUTH_TOKEN", token_before->c_str(), 1);
    else
      ::unsetenv("TWILIO_AUTH_TOKEN");
  };

  fixture f;
  client_options o;
  o.base_url = f.twilio.base_url();
  ::unsetenv("TWILIO_ACCOUNT_SID");
  ::unsetenv("TWILIO_AUTH_TOKEN");
  try {
    client{o};
    FAIL("a client without an account SID was made");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string{e.what()}.find("TWILIO_ACCOUNT_SID") != std::string::npos);
  }

  ::setenv("TWILIO_ACCOUNT_SID", account_sid, 1);
  ::setenv("TWILIO_AUTH_TOKEN", auth_token, 1);
  client from_env{o};
  restore();
  CHECK(from_env.options().account_sid == account_sid);
  require_outcome(from_env.create_conversation({}), outcome::ok);

  o.account_sid = account_sid;
  o.auth_token = auth_token;
  o.base_url = "ftp://127.0.0.1:1";
  CHECK_THROWS_AS(client{o}, std::invalid_argument);
  // Credentials in the URL are refused, and the refusal does not repeat them.
  o.base_url = "http://AC1:tok3n@127.0.0.1:1";
  try {
    client{o};
    FAIL("a base URL with a password was taken");
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    CHECK(what.find("http://***@127.0.0.1:1") != std::string::npos);
    CHECK(what.find("TWILIO_AUTH_TOKEN") != std::string::npos);
    CHECK(what.find("tok3n") == std::string::npos);
  }

  // Per-product URLs win over base_url, and Twilio's hosts are the default.
  o.base_url.clear();
  o.conversations_url = f.twilio.base_url() + "/conversations";
  client split{o};
  require_outcome(split.create_conversation({}), outcome::ok);
}

// --- classification of answers the emulator does not give -----------------------------------

TEST_CASE("classify_answer: delays, revisions and bodies Twilio or a proxy may send",
          "[twilio][client]") {
  const auto now = std::chrono::system_clock::from_time_t(1'700'000'000);  // 2023-11-14 22:13:20
  const auto classify = [&](http_answer a, bool only_reads = false) {
    return classify_answer(a, only_reads, 1s, now);
  };

  auto r = classify({429, R"({"code":20429,"message":"Too Many Requests","status":429})",
                     "Tue, 14 Nov 2023 22:13:50 GMT", ""});
  CHECK(r.kind == outcome::retryable);
  CHECK(r.retry_after == 30s);
  CHECK(r.code == 20429);
  CHECK(classify({429, "", "", ""}).retry_after == 1s);
  CHECK(classify({429, "", "soon", ""}).retry_after == 1s);
  CHECK(classify({429, "", "", ""}).kind == outcome::retryable);  // documented as not applied
  CHECK(classify({429, "", "", ""}, true).kind == outcome::retryable);

  // No 5xx is documented as not applied: to a write each is ambiguous, to a read retryable. A
  // 503 keeps its Retry-After (or the default); another 5xx waits only when it names a delay.
  r = classify({503, R"({"code":20503,"message":"Service unavailable","status":503})", "7", ""});
  CHECK(r.kind == outcome::ambiguous);
  CHECK(r.retry_after == 7s);
  CHECK(r.code == 20503);
  CHECK(classify({503, "", "", ""}).retry_after == 1s);
  CHECK(classify({503, "", "7", ""}, true).kind == outcome::retryable);
  CHECK(classify({503, "", "7", ""}, true).retry_after == 7s);
  for (int status : {500, 502, 504, 599}) {
    INFO("status " << status);
    CHECK(classify({status, "", "", ""}).kind == outcome::ambiguous);
    CHECK(classify({status, "", "", ""}).retry_after == 0s);
    CHECK(classify({status, "", "3", ""}).retry_after == 3s);
    CHECK(classify({status, "", "", ""}, true).kind == outcome::retryable);
    CHECK(classify({status, "", "", ""}, true).retry_after == 1s);
  }

  r = classify({412, R"({"code":54103,"message":"Revision mismatch","status":412})", "", "\"7\""});
  CHECK(r.kind == outcome::conflict);
  CHECK(r.current_revision == std::optional<std::string>{"7"});
  r = classify({409, R"({"code":54208,"revision":"3"})", "", ""});
  CHECK(r.current_revision == std::optional<std::string>{"3"});
  CHECK_FALSE(classify({409, R"({"code":54208})", "", ""}).current_revision);

  r = classify({502, "<html>Bad Gateway</html>", "", ""});
  CHECK(r.kind == outcome::ambiguous);
  CHECK(r.code == 0);
  CHECK(r.message.find("Bad Gateway") != std::string::npos);
  CHECK(classify({504, "", "", ""}, true).kind == outcome::retryable);

  r = classify({204, "", "", ""});
  CHECK(r.kind == outcome::ok);
  CHECK(r.body.is_null());
  CHECK(classify({200, "<html>login</html>", "", ""}).kind == outcome::ambiguous);
  CHECK(classify({200, "<html>login</html>", "", ""}, true).kind == outcome::terminal);
  CHECK(classify({200, R"({"sid":"ET1"})", "", "W/\"4\""}).etag == "4");

  r = classify({404, R"({"code":20404,"message":"not found","status":404})", "", ""});
  CHECK(r.kind == outcome::terminal);
  CHECK(r.code == 20404);
  CHECK(classify({301, "", "", ""}).kind == outcome::terminal);
}
