// The /v1/ HTTP API as a producer or an operator uses it: a real runtime with its journal in a
// fresh directory, the HTTP server on a loopback port, cpp-httplib's client.

#include "switchboard/runtime.hpp"

#include <httplib.h>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "support/eventually.hpp"
#include "support/temp_dir.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

using namespace std::chrono_literals;
using namespace switchboard;
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

constexpr const char* token = "test-token-5f2a";
constexpr const char* structured = "application/cloudevents+json";
constexpr const char* batch_type = "application/cloudevents-batch+json";

using testing::temp_dir;

/// Sets (or, with nullptr, unsets) SWITCHBOARD_API_TOKEN for one test, restoring it after.
struct api_token_env {
  std::optional<std::string> saved;
  explicit api_token_env(const char* value) {
    if (const char* old = std::getenv("SWITCHBOARD_API_TOKEN"))
      saved = old;
    if (value != nullptr)
      ::setenv("SWITCHBOARD_API_TOKEN", value, 1);
    else
      ::unsetenv("SWITCHBOARD_API_TOKEN");
  }
  ~api_token_env() {
    if (saved)
      ::setenv("SWITCHBOARD_API_TOKEN", saved->c_str(), 1);
    else
      ::unsetenv("SWITCHBOARD_API_TOKEN");
  }
};

config http_config_for(const temp_dir& dir) {
  config cfg;
  cfg.data_dir = dir.path.string();
  cfg.http.enabled = true;
  cfg.http.host = "127.0.0.1";
  cfg.http.port = 0;
  cfg.drain_timeout = 10s;
  cfg.supervision.backoff_initial = 1ms;
  return cfg;
}

/// A started runtime serving HTTP, and a client that talks to it.
struct served {
  temp_dir dir;
  api_token_env env;
  runtime rt;
  httplib::Client client;

  explicit served(const char* api_token = token, void (*tune)(config&) = nullptr)
      : env(api_token), rt(make_config(dir, tune)), client(start_and_address(rt)) {
    client.set_read_timeout(60, 0);
  }

  static config make_config(const temp_dir& d, void (*tune)(config&)) {
    auto cfg = http_config_for(d);
    if (tune != nullptr)
      tune(cfg);
    return cfg;
  }
  static std::string start_and_address(runtime& r) {
    r.start();
    return "http://" + r.listen_address();
  }

  httplib::Headers auth() const { return {{"Authorization", std::string{"Bearer "} + token}}; }

  httplib::Result post(const std::string& body, const char* content_type,
                       httplib::Headers extra = {}) {
    auto headers = auth();
    headers.insert(extra.begin(), extra.end());
    return client.Post("/v1/events", headers, body, content_type);
  }
  httplib::Result get(const std::string& path) { return client.Get(path.c_str(), auth()); }
};

json::object parse_object(const httplib::Result& res) {
  REQUIRE(res);
  INFO(res->body);
  auto v = json::parse(res->body);
  REQUIRE(v.is_object());
  return v.as_object();
}

std::string event_json(const std::string& id, int n, const std::string& entity = "A-1") {
  json::object ev{{"specversion", "1.0"},          {"id", id},
                  {"source", "tests/http"},        {"type", "application.status_changed"},
                  {"entitykind", "application"},   {"entityid", entity},
                  {"data", json::object{{"n", n}}}};
  return json::serialize(ev);
}

std::string batch_of(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i)
    out += (i ? "," : "") + items[i];
  return out + "]";
}

std::string text(const json::value& v) { return std::string{v.as_string()}; }

/// The ids of the journal's events, in order, read through GET /v1/events.
std::vector<std::string> journal_ids(served& s) {
  auto body = parse_object(s.get("/v1/events?after=0&limit=1000"));
  std::vector<std::string> ids;
  for (auto& ev : body.at("events").as_array())
    ids.push_back(text(ev.at("id")));
  return ids;
}

using testing::eventually;

}  // namespace

TEST_CASE("a structured-mode event is stored and answered with its sequence", "[http]") {
  served s;
  auto res = s.post(event_json("s-1", 1), structured);
  REQUIRE(res);
  CHECK(res->status == 200);
  auto results = parse_object(res).at("results").as_array();
  REQUIRE(results.size() == 1);
  CHECK(text(results[0].at("id")) == "s-1");
  CHECK(text(results[0].at("status")) == "accepted");
  CHECK(results[0].at("sequence").to_number<std::uint64_t>() == 1);

  // Plain application/json without ce- headers is structured mode too.
  res = s.post(event_json("s-2", 2), "application/json; charset=utf-8");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(parse_object(res).at("results").as_array()[0].at("sequence").to_number<int>() == 2);

  // Durable before the answer: the journal already holds both, with their payloads.
  auto stored = s.rt.read(0, 10);
  REQUIRE(stored.size() == 2);
  CHECK(stored[0].id == "s-1");
  CHECK(stored[0].data.at("n").as_int64() == 1);
  CHECK_FALSE(stored[0].time.empty());  // set on ingest
  CHECK(journal_ids(s) == std::vector<std::string>{"s-1", "s-2"});
}

TEST_CASE("a binary-mode event takes its attributes from ce- headers and its data from the body",
          "[http]") {
  served s;
  httplib::Headers ce{{"ce-specversion", "1.0"},
                      {"ce-id", "b-1"},
                      {"ce-source", "crm/applications"},
                      {"ce-type", "application.status_changed"},
                      {"ce-entitykind", "application"},
                      {"ce-entityid", "A-1001"},
                      {"ce-entityversion", "7"},
                      {"ce-correlationid", "c-42"},
                      {"ce-subject", "application/A-1001 %C3%A9t%C3%A9"},
                      {"ce-region", "eu"}};
  auto res = s.post(R"({"status":"approved"})", "application/json", ce);
  REQUIRE(res);
  CHECK(res->status == 200);
  auto result = parse_object(res).at("results").as_array().at(0);
  CHECK(text(result.at("id")) == "b-1");
  CHECK(text(result.at("status")) == "accepted");

  auto body = parse_object(s.get("/v1/events?after=0"));
  REQUIRE(body.at("events").as_array().size() == 1);
  auto ev = body.at("events").as_array()[0].as_object();
  CHECK(text(ev.at("source")) == "crm/applications");
  CHECK(text(ev.at("entityid")) == "A-1001");
  CHECK(ev.at("entityversion").to_number<int>() == 7);
  CHECK(text(ev.at("correlationid")) == "c-42");
  CHECK(text(ev.at("subject")) == "application/A-1001 \xC3\xA9t\xC3\xA9");  // percent-decoded
  CHECK(text(ev.at("region")) == "eu");                                     // an extension, kept
  CHECK(text(ev.at("data").at("status")) == "approved");
  CHECK(ev.at("journalsequence").to_number<int>() == 1);

  SECTION("a missing attribute is named, with the header to send") {
    ce.erase("ce-source");
    ce.find("ce-id")->second = "b-2";
    res = s.post(R"({"status":"approved"})", "application/json", ce);
    REQUIRE(res);
    CHECK(res->status == 400);
    auto answer = parse_object(res);
    auto reason = text(answer.at("results").as_array()[0].at("reason"));
    CHECK(reason.find("source") != std::string::npos);
    CHECK(reason.find("ce-source") != std::string::npos);
    CHECK(text(answer.at("error")).find("source") != std::string::npos);
  }
  SECTION("a non-numeric entity version is refused") {
    ce.find("ce-entityversion")->second = "seven";
    res = s.post(R"({"status":"approved"})", "application/json", ce);
    REQUIRE(res);
    CHECK(res->status == 400);
    CHECK(res->body.find("ce-entityversion") != std::string::npos);
  }
  SECTION("a body that is not valid JSON under a JSON Content-Type is refused") {
    ce.find("ce-id")->second = "b-3";
    res = s.post("[1,2", "application/json", ce);
    REQUIRE(res);
    CHECK(res->status == 400);
    CHECK(res->body.find("data") != std::string::npos);
  }
  CHECK(s.rt.last_sequence() == 1);  // nothing rejected was stored
}

TEST_CASE("ordinary CloudEvents are taken: no entity, any data, any content type", "[http]") {
  served s;  // no entity-state propagation configured: nothing needs entitykind/entityid
  const std::string structured_event =
      R"({"specversion":"1.0","id":"o-1","source":"shop","type":"order.placed","data":"plain text"})";
  auto res = s.post(structured_event, structured);
  REQUIRE(res);
  CHECK(res->status == 200);
  res = s.post(
      R"([{"specversion":"1.0","id":"o-2","source":"shop","type":"order.placed","data":[1,2]},)"
      R"({"specversion":"1.0","id":"o-3","source":"shop","type":"order.placed",)"
      R"("data_base64":"AAEC/w=="},)"
      R"({"specversion":"1.0","id":"o-4","source":"shop","type":"order.placed"}])",
      batch_type);
  REQUIRE(res);
  CHECK(res->status == 200);
  httplib::Headers ce{{"ce-specversion", "1.0"},
                      {"ce-id", "o-5"},
                      {"ce-source", "shop"},
                      {"ce-type", "order.note"}};
  res = s.post("hello, world", "text/plain; charset=utf-8", ce);
  REQUIRE(res);
  CHECK(res->status == 200);
  ce.find("ce-id")->second = "o-6";
  res = s.post(std::string("\x00\x01\xff", 3), "application/octet-stream", ce);
  REQUIRE(res);
  CHECK(res->status == 200);

  auto events = parse_object(s.get("/v1/events?after=0")).at("events").as_array();
  REQUIRE(events.size() == 6);
  CHECK(events[0].at("data") == json::value("plain text"));
  CHECK_FALSE(events[0].as_object().contains("entitykind"));
  CHECK(events[1].at("data") == json::value(json::array{1, 2}));
  CHECK(text(events[2].at("data_base64")) == "AAEC/w==");
  CHECK(events[3].at("data") == json::value(json::object{}));
  CHECK(events[4].at("data") == json::value("hello, world"));
  CHECK(text(events[4].at("datacontenttype")) == "text/plain; charset=utf-8");
  CHECK(text(events[5].at("data_base64")) == "AAH/");
  CHECK(text(events[5].at("datacontenttype")) == "application/octet-stream");
}

TEST_CASE("a batch with one bad item stores the good ones and names the bad field", "[http]") {
  served s;
  auto bad = json::parse(event_json("bad-1", 2));
  bad.as_object().erase("source");
  auto res = s.post(batch_of({event_json("g-1", 1), json::serialize(bad), event_json("g-2", 3),
                              event_json("g-3", 4)}),
                    batch_type);
  REQUIRE(res);
  CHECK(res->status == 207);
  auto results = parse_object(res).at("results").as_array();
  REQUIRE(results.size() == 4);
  CHECK(text(results[0].at("status")) == "accepted");
  CHECK(text(results[1].at("id")) == "bad-1");
  CHECK(text(results[1].at("status")) == "rejected");
  CHECK(text(results[1].at("reason")).find("item [1]") != std::string::npos);
  CHECK(text(results[1].at("reason")).find("'source'") != std::string::npos);
  CHECK_FALSE(results[1].as_object().contains("sequence"));
  CHECK(text(results[2].at("status")) == "accepted");
  CHECK(text(results[3].at("status")) == "accepted");
  CHECK(results[0].at("sequence").to_number<int>() == 1);
  CHECK(results[2].at("sequence").to_number<int>() == 2);
  CHECK(results[3].at("sequence").to_number<int>() == 3);

  CHECK(journal_ids(s) == std::vector<std::string>{"g-1", "g-2", "g-3"});
}

TEST_CASE("a batch or event nobody can store is answered 400 or 415 with what to fix", "[http]") {
  served s;
  SECTION("every item rejected") {
    auto res = s.post(batch_of({R"({"id":"x"})", R"({"specversion":"0.3"})"}), batch_type);
    REQUIRE(res);
    CHECK(res->status == 400);
    auto body = parse_object(res);
    CHECK(text(body.at("error")).find("every event") != std::string::npos);
    CHECK(body.at("results").as_array().size() == 2);
    CHECK(text(body.at("results").as_array()[0].at("id")) == "x");
    CHECK(body.at("results").as_array()[1].at("id").is_null());
  }
  SECTION("a batch that is not an array") {
    auto res = s.post(event_json("n-1", 1), batch_type);
    REQUIRE(res);
    CHECK(res->status == 400);
    auto body = parse_object(res);
    CHECK(text(body.at("error")).find("array") != std::string::npos);
    CHECK_FALSE(body.contains("results"));
  }
  SECTION("a structured event that is not JSON") {
    auto res = s.post("{not json", structured);
    REQUIRE(res);
    CHECK(res->status == 400);
    CHECK(text(parse_object(res).at("error")).find("not valid JSON") != std::string::npos);
  }
  SECTION("an unsupported content type") {
    auto res = s.post("id=1", "application/x-www-form-urlencoded");
    REQUIRE(res);
    CHECK(res->status == 415);
    CHECK(text(parse_object(res).at("error")).find("application/cloudevents+json") !=
          std::string::npos);
  }
  CHECK(s.rt.last_sequence() == 0);
}

TEST_CASE("numbers the journal cannot keep are rejected, naming the field", "[http]") {
  // 1e400 was accepted and stored as Infinity: from then on GET /v1/events answered 500 and
  // durable subscriptions stalled. Wide integers became rounded doubles, versions of 2^63 and
  // more were clamped.
  served s;
  auto with_data = [](const std::string& id, const std::string& data) {
    auto text = event_json(id, 0);
    text.replace(text.find(R"({"n":0})"), 7, data);
    return text;
  };
  auto reason_of = [](const httplib::Result& res, std::size_t i = 0) {
    return text(parse_object(res).at("results").as_array().at(i).at("reason"));
  };

  auto res = s.post(with_data("inf-1", R"({"n":1e400})"), structured);
  REQUIRE(res);
  CHECK(res->status == 400);
  CHECK_THAT(reason_of(res),
             Catch::Contains("field 'data.n'") && Catch::Contains("beyond the range of a double"));
  CHECK_THAT(text(parse_object(res).at("error")), Catch::Contains("data.n"));

  auto version = json::parse(event_json("ver-1", 1));
  version.as_object()["entityversion"] = 9223372036854775808ull;
  res = s.post(batch_of({event_json("ok-1", 1), with_data("inf-2", R"({"a":[-1e400]})"),
                         with_data("wide-1", R"({"big":123456789012345678901234567890})"),
                         json::serialize(version), event_json("ok-2", 2)}),
               batch_type);
  REQUIRE(res);
  CHECK(res->status == 207);
  CHECK_THAT(reason_of(res, 1), Catch::Contains("item [1]") && Catch::Contains("'data.a[0]'"));
  CHECK_THAT(reason_of(res, 2),
             Catch::Contains("'data.big'") && Catch::Contains("more digits than 64 bits hold"));
  CHECK_THAT(reason_of(res, 3),
             Catch::Contains("'entityversion'") && Catch::Contains("0 to 9223372036854775807"));

  httplib::Headers ce{{"ce-specversion", "1.0"},         {"ce-id", "bin-1"},
                      {"ce-source", "crm/applications"}, {"ce-type", "application.created"},
                      {"ce-entitykind", "application"},  {"ce-entityid", "A-1"}};
  res = s.post(R"({"amount":1e400})", "application/json", ce);
  REQUIRE(res);
  CHECK(res->status == 400);
  CHECK_THAT(reason_of(res), Catch::Contains("field 'data.amount'"));
  res = s.post(R"({"list":[1,99999999999999999999]})", "application/json", ce);
  REQUIRE(res);
  CHECK(res->status == 400);
  CHECK_THAT(reason_of(res), Catch::Contains("field 'data.list[1]'") &&
                                 Catch::Contains("more digits than 64 bits hold"));
  ce.emplace("ce-entityversion", "18446744073709551615");
  res = s.post(R"({"n":1})", "application/json", ce);
  REQUIRE(res);
  CHECK(res->status == 400);
  CHECK_THAT(reason_of(res),
             Catch::Contains("entityversion") && Catch::Contains("0 to 9223372036854775807"));

  // Only the good ones were stored, and the journal reads back.
  CHECK(journal_ids(s) == std::vector<std::string>{"ok-1", "ok-2"});
}

TEST_CASE("an empty batch is answered 400 naming the problem", "[http]") {
  served s;
  for (const char* empty : {"[]", " [ ] "}) {
    auto res = s.post(empty, batch_type);
    REQUIRE(res);
    CHECK(res->status == 400);
    auto body = parse_object(res);
    CHECK_THAT(text(body.at("error")), Catch::Contains("empty JSON array"));
  }
  CHECK(s.rt.last_sequence() == 0);
}

TEST_CASE("an event sent again is answered as a duplicate with its original sequence", "[http]") {
  served s;
  auto first = s.post(event_json("d-1", 1), structured);
  REQUIRE(first);
  REQUIRE(first->status == 200);
  auto again = s.post(batch_of({event_json("d-0", 0), event_json("d-1", 1)}), batch_type);
  REQUIRE(again);
  CHECK(again->status == 200);  // a duplicate counts as stored
  auto results = parse_object(again).at("results").as_array();
  CHECK(text(results[0].at("status")) == "accepted");
  CHECK(results[0].at("sequence").to_number<int>() == 2);
  CHECK(text(results[1].at("id")) == "d-1");
  CHECK(text(results[1].at("status")) == "duplicate");
  CHECK(results[1].at("sequence").to_number<int>() == 1);
  CHECK(journal_ids(s) == std::vector<std::string>{"d-1", "d-0"});
}

TEST_CASE("size limits: the body limit gives 413, the codec limits reject single items", "[http]") {
  served s{token, [](config& cfg) {
             cfg.http.max_body_bytes = 64 * 1024;
             cfg.limits.max_event_bytes = 2048;
           }};
  auto big = json::parse(event_json("big-1", 1));
  big.as_object()["data"] = json::object{{"blob", std::string(4000, 'x')}};
  auto res = s.post(batch_of({event_json("small-1", 1), json::serialize(big)}), batch_type);
  REQUIRE(res);
  CHECK(res->status == 207);
  auto reason = text(parse_object(res).at("results").as_array()[1].at("reason"));
  CHECK(reason.find("max_event_bytes") != std::string::npos);

  res = s.post(std::string(100 * 1024, ' '), batch_type);
  REQUIRE(res);
  CHECK(res->status == 413);
  CHECK(journal_ids(s) == std::vector<std::string>{"small-1"});
}

TEST_CASE("every /v1/ route wants the bearer token, /health does not", "[http]") {
  served s;
  const std::string body = event_json("a-1", 1);
  auto missing = s.client.Post("/v1/events", body, structured);
  REQUIRE(missing);
  CHECK(missing->status == 401);
  CHECK(missing->get_header_value("WWW-Authenticate").rfind("Bearer", 0) == 0);
  CHECK(text(parse_object(missing).at("error")).find("Authorization: Bearer") != std::string::npos);

  for (const char* wrong : {"Bearer wrong-token", "Bearer test-token-5f2",
                            "Basic dGVzdA==", "Bearer test-token-5f2a-and-more"}) {
    INFO(wrong);
    httplib::Headers h{{"Authorization", wrong}};
    auto res = s.client.Post("/v1/events", h, body, structured);
    REQUIRE(res);
    CHECK(res->status == 401);
    CHECK(res->has_header("WWW-Authenticate"));
    for (auto path : {"/v1/events", "/v1/dead-letters"}) {
      auto read = s.client.Get(path, h);
      REQUIRE(read);
      CHECK(read->status == 401);
    }
    auto retry = s.client.Post("/v1/dead-letters/1/retry", h, "", "application/json");
    REQUIRE(retry);
    CHECK(retry->status == 401);
    auto discard = s.client.Delete("/v1/dead-letters/1", h);
    REQUIRE(discard);
    CHECK(discard->status == 401);
  }
  CHECK(s.rt.last_sequence() == 0);

  auto health = s.client.Get("/health");
  REQUIRE(health);
  CHECK(health->status == 200);
  auto ready = s.client.Get("/ready");
  REQUIRE(ready);
  CHECK(ready->status == 200);
}

TEST_CASE("without SWITCHBOARD_API_TOKEN the /v1/ API is closed and says how to open it",
          "[http]") {
  for (const char* unset : {static_cast<const char*>(nullptr), ""}) {
    served s{unset};
    auto res = s.post(event_json("u-1", 1), structured);  // even with some token
    REQUIRE(res);
    CHECK(res->status == 401);
    CHECK(text(parse_object(res).at("error")).find("set SWITCHBOARD_API_TOKEN") !=
          std::string::npos);
    CHECK(s.rt.last_sequence() == 0);
    auto health = s.client.Get("/health");
    REQUIRE(health);
    CHECK(health->status == 200);
  }
}

TEST_CASE("GET /v1/events pages through the journal in order", "[http]") {
  served s;
  std::vector<std::string> items;
  for (int i = 1; i <= 25; ++i)
    items.push_back(event_json("p-" + std::to_string(i), i, "A-" + std::to_string(i % 3)));
  auto res = s.post(batch_of(items), batch_type);
  REQUIRE(res);
  REQUIRE(res->status == 200);

  std::vector<std::string> seen;
  std::uint64_t after = 0;
  int pages = 0;
  for (;;) {
    auto body = parse_object(s.get("/v1/events?after=" + std::to_string(after) + "&limit=10"));
    CHECK(body.at("last_sequence").to_number<int>() == 25);
    auto& events = body.at("events").as_array();
    if (events.empty())
      break;
    ++pages;
    CHECK(events.size() <= 10);
    for (auto& ev : events) {
      auto seq = ev.at("journalsequence").to_number<std::uint64_t>();
      CHECK(seq == after + 1);  // contiguous, in order
      after = seq;
      seen.push_back(text(ev.at("id")));
    }
  }
  CHECK(pages == 3);
  REQUIRE(seen.size() == 25);
  CHECK(seen.front() == "p-1");
  CHECK(seen.back() == "p-25");

  // The default page is 100; `after` past the end gives nothing.
  CHECK(parse_object(s.get("/v1/events")).at("events").as_array().size() == 25);
  CHECK(parse_object(s.get("/v1/events?after=25")).at("events").as_array().empty());

  for (auto [query, param] :
       std::vector<std::pair<std::string, std::string>>{{"after=abc", "after"},
                                                        {"after=-1", "after"},
                                                        {"after=1x", "after"},
                                                        {"after=99999999999999999999", "after"},
                                                        {"limit=0", "limit"},
                                                        {"limit=1001", "limit"},
                                                        {"limit=", "limit"},
                                                        {"after=1&limit=ten", "limit"}}) {
    INFO(query);
    auto bad = s.get("/v1/events?" + query);
    REQUIRE(bad);
    CHECK(bad->status == 400);
    CHECK(text(parse_object(bad).at("error")).find("'" + param + "'") != std::string::npos);
  }
}

TEST_CASE("dead letters can be listed, retried and discarded over HTTP", "[http]") {
  served s;
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<bool> healed{false};
  std::vector<std::string> handled;
  subscription_options opts;
  opts.pattern = "mail.*";
  opts.name = "mailer";
  s.rt.subscribe(opts, [&](const event& ev) {
    if (ev.id.rfind("poison", 0) == 0 && !healed)
      throw terminal_error("template '" + ev.id + "' is missing");
    std::lock_guard<std::mutex> guard{mu};
    handled.push_back(ev.id);
    cv.notify_all();
  });
  auto mail = [](const std::string& id) {
    auto ev = json::parse(event_json(id, 1)).as_object();
    ev["type"] = "mail.send";
    return json::serialize(ev);
  };
  auto res = s.post(batch_of({mail("poison-1"), mail("ok-1"), mail("poison-2")}), batch_type);
  REQUIRE(res);
  REQUIRE(res->status == 200);

  json::array letters;
  REQUIRE(eventually([&] {
    letters = parse_object(s.get("/v1/dead-letters?consumer=mailer")).at("dead_letters").as_array();
    return letters.size() == 2;
  }));
  CHECK(text(letters[0].at("consumer")) == "mailer");
  CHECK(text(letters[0].at("reason")) == "terminal error");
  CHECK(text(letters[0].at("last_error")) == "template 'poison-1' is missing");
  CHECK(letters[0].at("sequence").to_number<int>() == 1);
  CHECK(letters[1].at("sequence").to_number<int>() == 3);
  CHECK(parse_object(s.get("/v1/dead-letters?consumer=nobody"))
            .at("dead_letters")
            .as_array()
            .empty());
  // A page at a time: `next` leads to the rest, and the last page has none.
  auto page1 = parse_object(s.get("/v1/dead-letters?limit=1&consumer=mailer"));
  REQUIRE(page1.at("dead_letters").as_array().size() == 1);
  CHECK(page1.at("dead_letters").as_array()[0].at("sequence").to_number<int>() == 1);
  REQUIRE(page1.contains("next"));
  auto page2 = parse_object(s.get(text(page1.at("next"))));
  REQUIRE(page2.at("dead_letters").as_array().size() == 1);
  CHECK(page2.at("dead_letters").as_array()[0].at("sequence").to_number<int>() == 3);
  CHECK_FALSE(page2.contains("next"));
  CHECK_FALSE(parse_object(s.get("/v1/dead-letters?limit=2")).contains("next"));
  auto bad_limit = s.get("/v1/dead-letters?limit=5000");
  REQUIRE(bad_limit);
  CHECK(bad_limit->status == 400);

  const auto first = std::to_string(letters[0].at("id").to_number<std::uint64_t>());
  const auto second = std::to_string(letters[1].at("id").to_number<std::uint64_t>());
  healed = true;
  auto retried = s.client.Post(("/v1/dead-letters/" + first + "/retry").c_str(), s.auth(), "",
                               "application/json");
  REQUIRE(retried);
  CHECK(retried->status == 200);
  {
    std::unique_lock<std::mutex> lock{mu};
    CHECK(cv.wait_for(lock, 10s, [&] {
      return std::find(handled.begin(), handled.end(), "poison-1") != handled.end();
    }));
  }
  auto again = s.client.Post(("/v1/dead-letters/" + first + "/retry").c_str(), s.auth(), "",
                             "application/json");
  REQUIRE(again);
  CHECK(again->status == 404);
  CHECK(text(parse_object(again).at("error")).find("no dead letter with id " + first) !=
        std::string::npos);

  auto discarded = s.client.Delete(("/v1/dead-letters/" + second).c_str(), s.auth());
  REQUIRE(discarded);
  CHECK(discarded->status == 200);
  auto gone = s.client.Delete(("/v1/dead-letters/" + second).c_str(), s.auth());
  REQUIRE(gone);
  CHECK(gone->status == 404);
  CHECK(parse_object(s.get("/v1/dead-letters")).at("dead_letters").as_array().empty());
}

TEST_CASE("while the runtime drains, ingest answers 503 with Retry-After", "[http]") {
  served s;
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  subscription_options opts;
  opts.pattern = "*";
  opts.name = "slow";
  s.rt.subscribe(opts, [&](const event&) {
    std::unique_lock<std::mutex> lock{mu};
    cv.wait_for(lock, 20s, [&] { return release; });
  });
  auto res = s.post(event_json("slow-1", 1), structured);
  REQUIRE(res);
  REQUIRE(res->status == 200);

  // The producer runs beside the draining runtime; it lets the handler finish once it has
  // seen the refusal.
  std::optional<httplib::Result> refused;
  bool saw_draining = false;
  std::thread producer([&] {
    saw_draining = eventually([&] {
      auto ready = s.client.Get("/ready");
      return ready && ready->status == 503;
    });
    refused = s.post(event_json("slow-2", 2), structured);
    {
      std::lock_guard<std::mutex> guard{mu};
      release = true;
    }
    cv.notify_all();
  });
  s.rt.stop();  // drains: waits for "slow" to finish
  producer.join();
  CHECK(saw_draining);
  REQUIRE(refused);
  REQUIRE(*refused);
  CHECK((*refused)->status == 503);
  CHECK((*refused)->has_header("Retry-After"));
  CHECK(text(parse_object(*refused).at("error")).find("send it again") != std::string::npos);
}

TEST_CASE("40 clients on kept-alive connections are all served at once by default", "[http]") {
  // A kept-alive connection keeps its server thread until it closes or idles for the read
  // timeout (60 s here): with a fixed pool smaller than the clients, the clients beyond it
  // would wait that long for their first answer and give up after their own 10 s.
  served s{token, [](config& c) { c.http.read_timeout = std::chrono::seconds{60}; }};
  constexpr int clients = 40;
  const auto address = "http://" + s.rt.listen_address();
  std::vector<std::unique_ptr<httplib::Client>> conns;
  for (int i = 0; i < clients; ++i) {
    conns.push_back(std::make_unique<httplib::Client>(address));
    conns.back()->set_keep_alive(true);
    conns.back()->set_read_timeout(10, 0);
    conns.back()->set_connection_timeout(10, 0);
  }
  // Every connection opened and kept: each holds a server thread from here on.
  for (auto& c : conns) {
    auto res = c->Get("/health");
    REQUIRE(res);
    REQUIRE(res->status == 200);
  }
  std::atomic<int> answered{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i)
    threads.emplace_back([&, i] {
      for (int k = 0; k < 3; ++k) {
        auto res = conns[i]->Post("/v1/events", s.auth(),
                                  event_json("keep-" + std::to_string(i) + "-" + std::to_string(k),
                                             k, "K-" + std::to_string(i)),
                                  structured);
        if (res && res->status == 200)
          ++answered;
      }
    });
  for (auto& t : threads)
    t.join();
  CHECK(answered == clients * 3);
}

TEST_CASE("64 clients connecting at the same moment are all answered", "[http]") {
  // cpp-httplib's own listen backlog is 5: clients beyond it lost their first request.
  served s;
  constexpr int clients = 64;
  const auto address = "http://" + s.rt.listen_address();
  std::mutex mu;
  std::condition_variable cv;
  int ready = 0;
  std::atomic<int> answered{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i)
    threads.emplace_back([&] {
      httplib::Client c(address);
      c.set_read_timeout(10, 0);
      {
        std::unique_lock<std::mutex> lock{mu};
        ++ready;
        cv.notify_all();
        cv.wait(lock, [&] { return ready == clients; });  // connect all at once
      }
      auto res = c.Get("/health");
      if (res && res->status == 200)
        ++answered;
    });
  for (auto& t : threads)
    t.join();
  CHECK(answered == clients);
}
