// Configuration of lead conversations and form leads: the `leads` and `form_leads` sections.

#include "switchboard/config.hpp"

#include "support/config_text.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace switchboard;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using switchboard::testing::config_error_of;
using switchboard::testing::parsed;

namespace {

const std::string example_path = std::string(SWITCHBOARD_SOURCE_DIR) + "/config/switchboard.json";

/// A `leads` section with one proxy number and the given dealers.
std::string leads_with_dealers(const std::string& dealers) {
  return R"({"leads": {"proxy_numbers": ["+15550009999"], "dealers": )" + dealers + "}}";
}

void require_lead_defaults(const config& c) {
  const leads_config d;
  CHECK(c.leads.proxy_numbers.empty());
  CHECK(c.leads.webhook_url.empty());
  CHECK(c.leads.first_message == d.first_message);
  CHECK(c.leads.reminder_message == d.reminder_message);
  CHECK(c.leads.reminder_after == d.reminder_after);
  CHECK(c.leads.close_inactive_after == d.close_inactive_after);
  CHECK(c.leads.max_message_chars == d.max_message_chars);
  CHECK(c.leads.workers == d.workers);
  CHECK(c.leads.max_attempts == d.max_attempts);
  CHECK(c.leads.backoff_initial == d.backoff_initial);
  CHECK(c.leads.backoff_max == d.backoff_max);
  CHECK(c.leads.answer_timeout == d.answer_timeout);
  CHECK(c.leads.passivate_after == d.passivate_after);
  CHECK(c.leads.dealers.empty());
  const form_leads_config f;
  CHECK(c.form_leads.lead_tracking_url.empty());
  CHECK(c.form_leads.marketing_url.empty());
  CHECK(c.form_leads.max_attempts == f.max_attempts);
  CHECK(c.form_leads.backoff_initial == f.backoff_initial);
  CHECK(c.form_leads.backoff_max == f.backoff_max);
  CHECK(c.form_leads.timeout == f.timeout);
  CHECK_FALSE(runs_leads(c));
}

}  // namespace

TEST_CASE("a full leads configuration is read with every member", "[config][leads]") {
  const auto cfg = parsed(R"({
    "leads": {
      "proxy_numbers": ["+15550009999", "+447700900123"],
      "webhook_url": "https://sb.example.com/v1/webhooks/twilio/conversations",
      "first_message": "{lead_id} {dealer_name}/{location_name}: {customer_name} ({customer_phone}): {message}",
      "reminder_message": "{{still}} waiting: {customer_name}",
      "reminder_after_ms": 0, "close_inactive_after_ms": 86400000, "max_message_chars": 160,
      "workers": 2, "max_attempts": 3, "backoff_initial_ms": 50, "backoff_max_ms": 50,
      "answer_timeout_ms": 0, "passivate_after_ms": 1000,
      "dealers": [
        {"id": "acme-motors", "name": "Acme Motors", "locations": [
          {"id": "north", "name": "North", "phone": "+15550001111"},
          {"id": "south.2", "name": "South", "phone": "+15550002222"}]},
        {"id": "Bobs_Cars", "name": "Bob's", "locations": [
          {"id": "north", "name": "North too", "phone": "+15550003333"}]}]
    },
    "form_leads": {"lead_tracking_url": "http://127.0.0.1:9001/leads", "marketing_url": "https://m.example.com",
                   "max_attempts": 4, "backoff_initial_ms": 10, "backoff_max_ms": 20, "timeout_ms": 3000}
  })");
  const auto& l = cfg.leads;
  CHECK(l.proxy_numbers == std::vector<std::string>{"+15550009999", "+447700900123"});
  CHECK(l.webhook_url == "https://sb.example.com/v1/webhooks/twilio/conversations");
  CHECK(l.first_message ==
        "{lead_id} {dealer_name}/{location_name}: {customer_name} ({customer_phone}): {message}");
  CHECK(l.reminder_message == "{{still}} waiting: {customer_name}");
  CHECK(l.reminder_after == std::chrono::milliseconds{0});
  CHECK(l.close_inactive_after == std::chrono::milliseconds{86'400'000});
  CHECK(l.max_message_chars == 160);
  CHECK(l.workers == 2);
  CHECK(l.max_attempts == 3);
  CHECK(l.backoff_initial == std::chrono::milliseconds{50});
  CHECK(l.backoff_max == std::chrono::milliseconds{50});
  CHECK(l.answer_timeout == std::chrono::milliseconds{0});
  CHECK(l.passivate_after == std::chrono::milliseconds{1000});
  REQUIRE(l.dealers.size() == 2);
  CHECK(l.dealers[0].id == "acme-motors");
  CHECK(l.dealers[0].name == "Acme Motors");
  REQUIRE(l.dealers[0].locations.size() == 2);
  CHECK(l.dealers[0].locations[1].id == "south.2");
  CHECK(l.dealers[0].locations[1].name == "South");
  CHECK(l.dealers[0].locations[1].phone == "+15550002222");
  REQUIRE(l.dealers[1].locations.size() == 1);
  CHECK(l.dealers[1].locations[0].id == "north");  // location ids are per dealer
  const auto& f = cfg.form_leads;
  CHECK(f.lead_tracking_url == "http://127.0.0.1:9001/leads");
  CHECK(f.marketing_url == "https://m.example.com");
  CHECK(f.max_attempts == 4);
  CHECK(f.backoff_initial == std::chrono::milliseconds{10});
  CHECK(f.backoff_max == std::chrono::milliseconds{20});
  CHECK(f.timeout == std::chrono::milliseconds{3000});
  CHECK(runs_leads(cfg));
}

TEST_CASE(
    "without leads sections, and in the shipped example, leads keep their defaults and do not run",
    "[config][leads]") {
  require_lead_defaults(parsed("{}"));
  require_lead_defaults(parsed(R"({"leads": {}, "form_leads": {}})"));
  const auto shipped = load_config_file(example_path);
  INFO(shipped.error.message());
  REQUIRE(shipped);
  require_lead_defaults(*shipped.value);
}

TEST_CASE("leads run with a proxy number or a form-lead URL", "[config][leads]") {
  CHECK(runs_leads(parsed(R"({"leads": {"proxy_numbers": ["+15550009999"]}})")));
  CHECK(runs_leads(parsed(R"({"form_leads": {"lead_tracking_url": "http://127.0.0.1:1/x"}})")));
  CHECK(runs_leads(parsed(R"({"form_leads": {"marketing_url": "https://m.example.com/x"}})")));
  CHECK_FALSE(runs_leads(parsed(R"({"leads": {"webhook_url": "https://sb.example.com/hook"}})")));
}

TEST_CASE("phone numbers that are not E.164 name the number's key and why", "[config][leads]") {
  SECTION("a proxy number") {
    const auto e = config_error_of(
        R"({"leads": {"proxy_numbers": ["+15550009999", "+15550008888", "+1555"]}})");
    CHECK(e.key_path == "leads.proxy_numbers[2]");
    CHECK_THAT(e.problem,
               Contains("\"+1555\"") && Contains("has 4 digits; E.164 numbers have 8 to 15"));
    CHECK_THAT(e.allowed, Contains("E.164"));
  }
  SECTION("a proxy number with spaces, or without '+'") {
    CHECK_THAT(config_error_of(R"({"leads": {"proxy_numbers": ["+1 555 000 9999"]}})").problem,
               Contains("other than a digit"));
    CHECK_THAT(config_error_of(R"({"leads": {"proxy_numbers": ["15550009999"]}})").problem,
               Contains("does not start with '+'"));
    CHECK_THAT(config_error_of(R"({"leads": {"proxy_numbers": [15550009999]}})").problem,
               Contains("not a string"));
  }
  SECTION("a location phone") {
    const auto e = config_error_of(leads_with_dealers(R"([{"id": "d", "locations": [
        {"id": "a", "phone": "+15550001111"}, {"id": "b", "phone": "+015550002222"}]}])"));
    CHECK(e.key_path == "leads.dealers[0].locations[1].phone");
    CHECK_THAT(e.problem, Contains("starts with 0 after the '+'"));
  }
  SECTION("a location without a phone") {
    const auto e =
        config_error_of(leads_with_dealers(R"([{"id": "d", "locations": [{"id": "a"}]}])"));
    CHECK(e.key_path == "leads.dealers[0].locations[0].phone");
    CHECK(e.problem == "is missing");
    CHECK_THAT(e.allowed, Contains("E.164"));
  }
}

TEST_CASE("numbers and ids given twice name the second and the first", "[config][leads]") {
  SECTION("proxy numbers") {
    const auto e = config_error_of(
        R"({"leads": {"proxy_numbers": ["+15550009999", "+15550008888", "+15550009999"]}})");
    CHECK(e.key_path == "leads.proxy_numbers[2]");
    CHECK(e.problem == "is \"+15550009999\", the same as leads.proxy_numbers[0]");
  }
  SECTION("dealer ids") {
    const auto e =
        config_error_of(leads_with_dealers(R"([{"id": "d1"}, {"id": "d2"}, {"id": "d2"}])"));
    CHECK(e.key_path == "leads.dealers[2].id");
    CHECK(e.problem == "is \"d2\", the id of leads.dealers[1] too");
  }
  SECTION("location ids within a dealer") {
    const auto e = config_error_of(
        leads_with_dealers(R"([{"id": "d1", "locations": [{"id": "x", "phone": "+15550001111"}]},
        {"id": "d2", "locations": [{"id": "x", "phone": "+15550001111"}, {"id": "x", "phone": "+15550002222"}]}])"));
    CHECK(e.key_path == "leads.dealers[1].locations[1].id");
    CHECK(e.problem == "is \"x\", the id of leads.dealers[1].locations[0] too");
  }
}

TEST_CASE("dealer and location ids are non-empty and safe in URL paths", "[config][leads]") {
  SECTION("missing") {
    const auto e = config_error_of(leads_with_dealers(R"([{"name": "Acme"}])"));
    CHECK(e.key_path == "leads.dealers[0].id");
    CHECK(e.problem == "is missing");
    const auto l = config_error_of(
        leads_with_dealers(R"([{"id": "d", "locations": [{"phone": "+15550001111"}]}])"));
    CHECK(l.key_path == "leads.dealers[0].locations[0].id");
    CHECK(l.problem == "is missing");
  }
  SECTION("empty") {
    const auto e = config_error_of(leads_with_dealers(R"([{"id": ""}])"));
    CHECK(e.key_path == "leads.dealers[0].id");
    CHECK_THAT(e.problem, Contains("empty"));
  }
  SECTION("characters a URL path would need escaped") {
    const auto e = config_error_of(leads_with_dealers(R"([{"id": "acme/motors"}])"));
    CHECK(e.key_path == "leads.dealers[0].id");
    CHECK_THAT(e.problem, Contains("has the character '/'"));
    CHECK_THAT(e.allowed, Contains("letters, digits, '_', '.' and '-'"));
    const auto l =
        config_error_of(leads_with_dealers(R"([{"id": "d", "locations": [{"id": "north branch",
        "phone": "+15550001111"}]}])"));
    CHECK(l.key_path == "leads.dealers[0].locations[0].id");
    CHECK_THAT(l.problem, Contains("has the character ' '"));
    CHECK_THAT(config_error_of(leads_with_dealers(R"([{"id": "caf\u00e9"}])")).problem,
               Contains("has the character byte"));
  }
  SECTION("a path step") {
    CHECK_THAT(config_error_of(leads_with_dealers(R"([{"id": ".."}])")).problem,
               Contains("directory step"));
  }
}

TEST_CASE("a location phone may not be a proxy number", "[config][leads]") {
  const auto e = config_error_of(R"({"leads": {"proxy_numbers": ["+15550008888", "+15550009999"],
      "dealers": [{"id": "d", "locations": [{"id": "a", "phone": "+15550001111"},
                                            {"id": "b", "phone": "+15550009999"}]}]}})");
  CHECK(e.key_path == "leads.dealers[0].locations[1].phone");
  CHECK_THAT(e.problem, StartsWith("is \"+15550009999\", which is leads.proxy_numbers[1]"));
  CHECK_THAT(e.allowed, Contains("not one of leads.proxy_numbers"));
}

TEST_CASE("dealers without proxy numbers are an error on the proxy numbers", "[config][leads]") {
  for (const std::string text : {R"({"leads": {"dealers": [{"id": "d"}]}})",
                                 R"({"leads": {"proxy_numbers": [], "dealers": [{"id": "d"}]}})"}) {
    const auto e = config_error_of(text);
    CHECK(e.key_path == "leads.proxy_numbers");
    CHECK(e.problem == "is empty, but leads.dealers are given");
    CHECK_THAT(e.allowed, StartsWith("at least one E.164 proxy number"));
  }
}

TEST_CASE("URLs are \"\" or http(s) URLs", "[config][leads]") {
  for (const std::string key :
       {"leads.webhook_url", "form_leads.lead_tracking_url", "form_leads.marketing_url"}) {
    const auto dot = key.find('.');
    const auto text = [&](const std::string& url) {
      return "{\"" + key.substr(0, dot) + "\": {\"" + key.substr(dot + 1) + "\": \"" + url + "\"}}";
    };
    INFO(key);
    const auto ftp = config_error_of(text("ftp://example.com/x"));
    CHECK(ftp.key_path == key);
    CHECK_THAT(ftp.problem, Contains("not an http(s) URL"));
    CHECK_THAT(ftp.allowed, Contains("\"\""));
    const auto no_host = config_error_of(text("https:///x"));
    CHECK(no_host.key_path == key);
    CHECK_THAT(no_host.problem, Contains("without a host"));
    CHECK_THAT(config_error_of(text("http://a b/")).problem, Contains("whitespace"));
    CHECK(parsed(text("")).source == "site.json");
    CHECK(parsed(text("https://example.com:8443/hook?x=1")).source == "site.json");
  }
  CHECK_THAT(config_error_of(R"({"leads": {"webhook_url": 5}})").problem, Contains("not a string"));
}

TEST_CASE("a URL's user and password are accepted, and never quoted in an error",
          "[config][leads]") {
  CHECK(parsed(R"({"form_leads": {"lead_tracking_url": "https://crm:s3cret@t.example.com/leads"}})")
            .form_leads.lead_tracking_url == "https://crm:s3cret@t.example.com/leads");
  for (const std::string url :
       {"ftp://crm:s3cret@t.example.com/x", "https://crm:s3cret@t.example.com /x"}) {
    INFO(url);
    const auto e = config_error_of(R"({"form_leads": {"marketing_url": ")" + url + R"("}})");
    CHECK(e.key_path == "form_leads.marketing_url");
    CHECK_THAT(e.message(), !Contains("s3cret") && Contains("***@t.example.com"));
  }
}

TEST_CASE("message templates take only the lead placeholders", "[config][leads]") {
  SECTION("an unknown placeholder is named, with the closest known one") {
    const auto e =
        config_error_of(R"({"leads": {"first_message": "Hi {customer_nmae}: {message}"}})");
    CHECK(e.key_path == "leads.first_message");
    CHECK(e.problem ==
          "has the unknown placeholder '{customer_nmae}'; did you mean '{customer_name}'?");
    CHECK_THAT(e.allowed, Contains("{customer_name}, {customer_phone}, {message}, {dealer_name}, "
                                   "{location_name}, {lead_id}"));
    const auto far = config_error_of(R"({"leads": {"reminder_message": "{id} still waiting"}})");
    CHECK(far.key_path == "leads.reminder_message");
    CHECK(far.problem == "has the unknown placeholder '{id}'");
  }
  SECTION("every known placeholder and literal braces are accepted") {
    const std::string all =
        "{{x}} {customer_name}{customer_phone}{message}{dealer_name}{location_name}{lead_id}";
    CHECK(parsed(R"({"leads": {"reminder_message": ")" + all + "\"}}").leads.reminder_message ==
          all);
  }
  SECTION("empty or malformed") {
    const auto empty = config_error_of(R"({"leads": {"first_message": ""}})");
    CHECK(empty.key_path == "leads.first_message");
    CHECK_THAT(empty.problem, Contains("empty"));
    const auto open = config_error_of(R"({"leads": {"reminder_message": "Hi {customer_name"}})");
    CHECK(open.key_path == "leads.reminder_message");
    CHECK_THAT(open.problem, Contains("has a '{' without its '}'"));
    CHECK_THAT(config_error_of(R"({"leads": {"first_message": "Hi {}"}})").problem,
               Contains("malformed placeholder"));
  }
}

TEST_CASE("backoff_initial_ms above backoff_max_ms in lead sections names the key given",
          "[config][leads]") {
  SECTION("leads, both given") {
    const auto e =
        config_error_of(R"({"leads": {"backoff_initial_ms": 500, "backoff_max_ms": 100}})");
    CHECK(e.key_path == "leads.backoff_initial_ms");
    CHECK(e.problem == "is 500, larger than leads.backoff_max_ms (100)");
  }
  SECTION("leads, a maximum below the default initial delay") {
    const auto e = config_error_of(R"({"leads": {"backoff_max_ms": 100}})");
    CHECK(e.key_path == "leads.backoff_max_ms");
    CHECK(e.problem == "is 100, smaller than leads.backoff_initial_ms (200, the default)");
  }
  SECTION("form_leads, against the default maximum") {
    const auto e = config_error_of(R"({"form_leads": {"backoff_initial_ms": 60001}})");
    CHECK(e.key_path == "form_leads.backoff_initial_ms");
    CHECK(e.problem == "is 60001, larger than form_leads.backoff_max_ms (60000, the default)");
  }
}

TEST_CASE("lead settings out of range name the key and the range", "[config][leads]") {
  struct bad {
    const char* text;
    const char* key;
    const char* allowed;
  };
  const std::vector<bad> cases{
      {R"({"leads": {"max_message_chars": 0}})", "leads.max_message_chars",
       "an integer from 1 to 1600"},
      {R"({"leads": {"max_message_chars": 1601}})", "leads.max_message_chars",
       "an integer from 1 to 1600"},
      {R"({"leads": {"workers": 65}})", "leads.workers", "an integer from 1 to 64"},
      {R"({"leads": {"max_attempts": 0}})", "leads.max_attempts", "an integer from 1 to 1000"},
      {R"({"leads": {"answer_timeout_ms": 600001}})", "leads.answer_timeout_ms",
       "from 0 to 600000"},
      {R"({"leads": {"passivate_after_ms": 0}})", "leads.passivate_after_ms",
       "from 1 to 86400000 (1 day)"},
      {R"({"leads": {"passivate_after_ms": 86400001}})", "leads.passivate_after_ms",
       "from 1 to 86400000 (1 day)"},
      {R"({"leads": {"reminder_after_ms": -1}})", "leads.reminder_after_ms", "from 0 to 86400000"},
      {R"({"leads": {"close_inactive_after_ms": 31536000001}})", "leads.close_inactive_after_ms",
       "from 0 to 31536000000 (365 days)"},
      {R"({"form_leads": {"max_attempts": 1001}})", "form_leads.max_attempts",
       "an integer from 1 to 1000"},
      {R"({"form_leads": {"timeout_ms": 0}})", "form_leads.timeout_ms",
       "from 1 to 3600000 (1 hour)"},
  };
  for (const auto& c : cases) {
    const auto e = config_error_of(c.text);
    INFO(e.message());
    CHECK(e.key_path == c.key);
    CHECK_THAT(e.problem, Contains("out of range"));
    CHECK_THAT(e.allowed, Contains(c.allowed));
  }
  const auto edges =
      parsed(R"({"leads": {"max_message_chars": 1600, "workers": 64, "max_attempts": 1000,
      "answer_timeout_ms": 600000, "passivate_after_ms": 86400000}})");
  CHECK(edges.leads.max_message_chars == 1600);
  CHECK(edges.leads.workers == 64);
  CHECK(edges.leads.answer_timeout == std::chrono::milliseconds{600'000});
}

TEST_CASE("unknown keys in lead sections suggest the closest", "[config][leads]") {
  const auto e = config_error_of(R"({"leads": {"proxy_number": ["+15550009999"]}})");
  CHECK(e.key_path == "leads.proxy_number");
  CHECK_THAT(e.problem, Contains("did you mean 'proxy_numbers'?"));
  const auto l = config_error_of(
      leads_with_dealers(R"([{"id": "d", "locations": [{"id": "a", "phone": "+15550001111",
      "number": "x"}]}])"));
  CHECK(l.key_path == "leads.dealers[0].locations[0].number");
  CHECK_THAT(l.allowed, Contains("'id', 'name', 'phone'"));
  CHECK_THAT(config_error_of(R"({"form_leads": {"timeout": 5}})").problem,
             Contains("did you mean 'timeout_ms'?"));
}
