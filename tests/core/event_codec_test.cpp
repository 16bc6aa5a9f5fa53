// Tests for the CloudEvents 1.0 codec (src/core/event_codec.cpp): what a producer sees when an
// event is accepted or rejected, and that what goes in comes back out unchanged.

#include "switchboard/event.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace json = boost::json;
using namespace switchboard;

namespace {

/// Every attribute switchboard knows, plus two extensions.
const char* const full_event_text = R"({
  "specversion": "1.0",
  "id": "9f1c2e0a-5d1b-4c1e-9a51-0c2f3b7a8d11",
  "source": "crm/applications",
  "type": "application.status_changed",
  "subject": "application/A-1001",
  "time": "2026-11-23T14:00:00Z",
  "datacontenttype": "application/json",
  "dataschema": "https://example.com/schemas/status.json",
  "entitykind": "application",
  "entityid": "A-1001",
  "entityversion": 7,
  "correlationid": "c-42",
  "causationid": "9f1c2e0a-0000-4c1e-9a51-0c2f3b7a8d10",
  "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
  "journalsequence": 12345,
  "tenant": "acme",
  "priority": 3,
  "urgent": true,
  "data": { "status": "approved", "items": [ { "name": "x" }, 2, null, 1.5 ] }
})";

json::object minimal_object() {
  return json::parse(R"({"specversion":"1.0","id":"e-1","source":"crm","type":"a.b",
                         "entitykind":"application","entityid":"A-1","data":{}})")
      .as_object();
}

decode_result decode_object(const json::object& obj, const codec_limits& limits = {}) {
  return decode_event(json::serialize(obj), limits);
}

decode_result decode_with(const std::string& key, json::value v) {
  json::object obj = minimal_object();
  obj[key] = std::move(v);
  return decode_object(obj);
}

decode_result decode_without(const std::string& key) {
  json::object obj = minimal_object();
  obj.erase(key);
  return decode_object(obj);
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

/// `data` nested `levels` deep (data itself is level 1) as {"a":{"a":...}}.
std::string event_with_data_depth(std::size_t levels) {
  std::string data;
  for (std::size_t i = 1; i < levels; ++i)
    data += R"({"a":)";
  data += "{}";
  for (std::size_t i = 1; i < levels; ++i)
    data += "}";
  return R"({"specversion":"1.0","id":"e-1","source":"crm","type":"a.b","entitykind":"k",)"
         R"("entityid":"A-1","data":)" +
         data + "}";
}

event minimal_event() {
  event ev;
  ev.id = "e-1";
  ev.source = "crm";
  ev.type = "a.b";
  ev.entity_kind = "application";
  ev.entity_id = "A-1";
  return ev;
}

}  // namespace

// --- round trips ---------------------------------------------------------------------------

TEST_CASE("a full event decodes into every member and encodes back to the same JSON", "[codec]") {
  const auto r = decode_event(full_event_text);
  REQUIRE(r);
  const event& ev = *r.value;
  CHECK(ev.id == "9f1c2e0a-5d1b-4c1e-9a51-0c2f3b7a8d11");
  CHECK(ev.source == "crm/applications");
  CHECK(ev.type == "application.status_changed");
  CHECK(ev.subject == "application/A-1001");
  CHECK(ev.time == "2026-11-23T14:00:00Z");
  CHECK(ev.datacontenttype == "application/json");
  CHECK(ev.dataschema == "https://example.com/schemas/status.json");
  CHECK(ev.entity_kind == "application");
  CHECK(ev.entity_id == "A-1001");
  CHECK(ev.entity_version == std::optional<std::uint64_t>(7));
  CHECK(ev.correlation_id == "c-42");
  CHECK(ev.causation_id == "9f1c2e0a-0000-4c1e-9a51-0c2f3b7a8d10");
  CHECK(ev.traceparent == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  CHECK(ev.sequence == std::optional<std::uint64_t>(12345));
  CHECK(ev.extensions.size() == 3);
  CHECK(ev.extensions.at("tenant") == "acme");
  CHECK(ev.extensions.at("priority") == 3);
  CHECK(ev.extensions.at("urgent") == true);
  CHECK(json::value(ev.data) ==
        json::parse(R"({ "status": "approved", "items": [ { "name": "x" }, 2, null, 1.5 ] })"));

  // Same attributes out as in (object equality ignores member order).
  CHECK(json::value(to_json(ev)) == json::parse(full_event_text));
  const std::string encoded = encode_event(ev);
  CHECK(encoded == json::serialize(to_json(ev)));
  CHECK(json::parse(encoded) == json::parse(full_event_text));

  const auto again = decode_event(encoded);
  REQUIRE(again);
  CHECK(encode_event(*again.value) == encoded);
}

TEST_CASE("entityversion 0 and the largest uint64 values survive a round trip", "[codec]") {
  json::object obj = minimal_object();
  obj["entityversion"] = 0;
  obj["journalsequence"] = std::numeric_limits<std::uint64_t>::max();
  const auto r = decode_object(obj);
  REQUIRE(r);
  CHECK(r.value->entity_version == std::optional<std::uint64_t>(0));
  CHECK(r.value->sequence == std::optional<std::uint64_t>(18446744073709551615ULL));
  const std::string encoded = encode_event(*r.value);
  CHECK(contains(encoded, R"("entityversion":0)"));
  CHECK(contains(encoded, R"("journalsequence":18446744073709551615)"));
  const auto again = decode_event(encoded);
  REQUIRE(again);
  CHECK(again.value->entity_version == std::optional<std::uint64_t>(0));
  CHECK(again.value->sequence == std::optional<std::uint64_t>(18446744073709551615ULL));
}

TEST_CASE("unicode and characters that need escaping round-trip unchanged", "[codec]") {
  event ev = minimal_event();
  ev.subject = "Zo\xC3\xAB \xE6\x9D\xB1\xE4\xBA\xAC \xF0\x9F\x9A\x80";  // Zoë 東京 🚀
  ev.correlation_id = "quote\" backslash\\ tab\t newline\n bell\x07";
  ev.data["name"] = "\xC3\xA9t\xC3\xA9 \"q\"\x01";
  ev.extensions["note"] = "caf\xC3\xA9";

  const std::string encoded = encode_event(ev);
  CHECK(encoded == json::serialize(to_json(ev)));
  CHECK(contains(encoded, R"(\u0007)"));
  const auto r = decode_event(encoded);
  REQUIRE(r);
  CHECK(r.value->subject == ev.subject);
  CHECK(r.value->correlation_id == ev.correlation_id);
  CHECK(r.value->data == ev.data);
  CHECK(r.value->extensions == ev.extensions);

  // \u escapes in the input decode to UTF-8.
  const auto from_escapes =
      decode_event(R"({"specversion":"1.0","id":"\u00e9\ud83d\ude80","source":"s","type":"t",)"
                   R"("entitykind":"k","entityid":"i","data":{}})");
  REQUIRE(from_escapes);
  CHECK(from_escapes.value->id == "\xC3\xA9\xF0\x9F\x9A\x80");
}

TEST_CASE("to_json leaves out empty optional attributes and always writes specversion 1.0",
          "[codec]") {
  const json::object obj = to_json(minimal_event());
  std::vector<std::string> keys;
  for (const auto& kv : obj)
    keys.emplace_back(kv.key());
  CHECK(keys == std::vector<std::string>{"specversion", "id", "source", "type", "entitykind",
                                         "entityid", "data"});
  CHECK(obj.at("specversion") == "1.0");
  CHECK(obj.at("data") == json::object());
}

// --- required fields and types -------------------------------------------------------------

TEST_CASE("each missing required attribute is named in the error", "[codec]") {
  for (const std::string field :
       {"specversion", "id", "source", "type", "entitykind", "entityid"}) {  // data: optional
    CAPTURE(field);
    const auto r = decode_without(field);
    REQUIRE_FALSE(r);
    CHECK(r.error.field == field);
    CHECK(contains(r.error.reason, "is required"));
  }
}

TEST_CASE("error messages name the field and say what to send", "[codec]") {
  const auto r = decode_without("entityid");
  REQUIRE_FALSE(r);
  CHECK(r.error.message() ==
        "field 'entityid': is required (a non-empty string naming the entity; entity-state "
        "propagation keys state by entity)");
}

TEST_CASE("empty required strings are rejected naming the attribute", "[codec]") {
  for (const std::string field : {"id", "source", "type", "entitykind", "entityid"}) {
    CAPTURE(field);
    const auto r = decode_with(field, "");
    REQUIRE_FALSE(r);
    CHECK(r.error.field == field);
    CHECK(contains(r.error.reason, "must not be empty"));
  }
  const auto optional_empty = decode_with("subject", "");
  REQUIRE_FALSE(optional_empty);
  CHECK(optional_empty.error.field == "subject");
}

TEST_CASE("a wrong JSON type names the expected and the seen type", "[codec]") {
  struct wrong_type {
    std::string field;
    json::value value;
    std::string expected;
    std::string seen;
  };
  const std::vector<wrong_type> cases = {
      {"id", 42, "must be a string", "an integer"},
      {"source", json::array{"a"}, "must be a string", "an array"},
      {"type", true, "must be a string", "a boolean"},
      {"entitykind", nullptr, "must be a string", "null"},
      {"entityid", json::object{{"x", 1}}, "must be a string", "an object"},
      {"subject", 1.5, "must be a string", "a number"},
      {"time", 1, "must be a string", "an integer"},
      {"traceparent", false, "must be a string", "a boolean"},
      {"specversion", 1.0, "must be the string \"1.0\"", "a number"},
      {"entityversion", "7", "must be a non-negative integer", "a string"},
      {"journalsequence", true, "must be a non-negative integer", "a boolean"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.field, json::serialize(c.value));
    const auto r = decode_with(c.field, c.value);
    REQUIRE_FALSE(r);
    CHECK(r.error.field == c.field);
    CHECK(contains(r.error.reason, c.expected));
    CHECK(contains(r.error.reason, "got " + c.seen));
  }
}

TEST_CASE("specversion must be exactly 1.0", "[codec]") {
  for (const char* version : {"0.3", "1", "1.0.0", ""}) {
    CAPTURE(version);
    const auto r = decode_with("specversion", version);
    REQUIRE_FALSE(r);
    CHECK(r.error.field == "specversion");
    CHECK(contains(r.error.reason, "\"1.0\""));
  }
}

TEST_CASE("entityversion and journalsequence reject negatives, fractions and overflow", "[codec]") {
  for (const std::string field : {"entityversion", "journalsequence"}) {
    for (const char* bad : {"-1", "1.5", "7.0", "1e3", "18446744073709551616"}) {
      CAPTURE(field, bad);
      const auto r = decode_with(field, json::parse(bad));
      REQUIRE_FALSE(r);
      CHECK(r.error.field == field);
      CHECK(contains(r.error.reason, "must be a non-negative integer"));
    }
  }
  const auto negative = decode_with("entityversion", -3);
  CHECK(contains(negative.error.reason, "got -3"));
}

TEST_CASE("entityversion above 2^63-1 is refused naming the attribute and the range", "[codec]") {
  // The journal and the state store keep versions as signed 64-bit integers; these were
  // accepted and clamped to 2^63-1, so two different versions compared equal.
  for (const char* big : {"9223372036854775808", "18446744073709551615"}) {
    CAPTURE(big);
    const auto r = decode_with("entityversion", json::parse(big));
    REQUIRE_FALSE(r);
    CHECK(r.error.field == "entityversion");
    CHECK(contains(r.error.reason, "0 to 9223372036854775807"));
    CHECK(contains(r.error.reason, std::string("got ") + big));
  }
  const auto largest = decode_with("entityversion", json::parse("9223372036854775807"));
  REQUIRE(largest);
  CHECK(*largest.value->entity_version == 9223372036854775807u);

  event ev = minimal_event();
  ev.entity_version = 9223372036854775808u;
  const auto problem = validate_event(ev);
  REQUIRE(problem);
  CHECK(problem->field == "entityversion");
  CHECK(contains(problem->reason, "0 to 9223372036854775807"));
}

TEST_CASE("numbers beyond double range are refused naming the field", "[codec]") {
  // 1e400 parsed as infinity and was stored as `Infinity`, which no reader could decode.
  const std::string head =
      R"({"specversion":"1.0","id":"e-1","source":"crm","type":"a.b","entitykind":"k",)"
      R"("entityid":"A-1","data":)";
  for (const auto& [data, field] : std::vector<std::pair<std::string, std::string>>{
           {R"({"n":1e400})", "data.n"},
           {R"({"n":-1e400})", "data.n"},
           {R"({"a":{"list":[1,2,1e999]}})", "data.a.list[2]"},
           {R"({"n":)" + std::string(400, '9') + ".5}", "data.n"}}) {
    CAPTURE(data);
    const auto r = decode_event(head + data + "}");
    REQUIRE_FALSE(r);
    CHECK(r.error.field == field);
    CHECK(contains(r.error.reason, "beyond the range of a double"));
  }
  // The largest finite double and tiny numbers are fine.
  CHECK(decode_event(head + R"({"n":1.7976931348623157e308,"m":1e-300})" + "}"));

  event ev = minimal_event();
  ev.data["x"] = json::array{1.0, std::numeric_limits<double>::infinity()};
  auto problem = validate_event(ev);
  REQUIRE(problem);
  CHECK(problem->field == "data.x[1]");
  ev.data["x"] = std::numeric_limits<double>::quiet_NaN();
  problem = validate_event(ev);
  REQUIRE(problem);
  CHECK(problem->field == "data.x");
  CHECK(contains(problem->reason, "NaN"));
}

TEST_CASE("integers beyond 64 bits in data are refused instead of becoming doubles", "[codec]") {
  const std::string head =
      R"({"specversion":"1.0","id":"e-1","source":"crm","type":"a.b","entitykind":"k",)"
      R"("entityid":"A-1","data":)";
  for (const auto& [data, field] : std::vector<std::pair<std::string, std::string>>{
           {R"({"n":18446744073709551616})", "data.n"},
           {R"({"n":-9223372036854775809})", "data.n"},
           {R"({"id":"x","deep":{"list":[0,123456789012345678901234567890]}})",
            "data.deep.list[1]"},
           {R"({"we\"ird key":99999999999999999999})", R"(data["we\"ird key"])"}}) {
    CAPTURE(data);
    const auto r = decode_event(head + data + "}");
    REQUIRE_FALSE(r);
    CHECK(r.error.field == field);
    CHECK(contains(r.error.reason, "more digits than 64 bits hold"));
    CHECK(contains(r.error.reason, "as a string"));
  }
  // The 64-bit extremes, -0 and the same magnitudes written as doubles are kept.
  const auto ok = decode_event(head +
                               R"({"a":18446744073709551615,"b":-9223372036854775808,"c":-0,)"
                               R"("d":1e20,"e":18446744073709551616.0})" +
                               "}");
  INFO(ok.error.message());
  REQUIRE(ok);
  CHECK(ok.value->data.at("a").as_uint64() == 18446744073709551615ULL);
  CHECK(ok.value->data.at("d").as_double() == 1e20);

  // In a batch, only the item holding one is rejected, with its path inside the item.
  const std::string good = head + R"({"n":1})" + "}";
  std::string wide = head + R"({"n":[1,{"m":100000000000000000000}]})" + "}";
  wide.replace(wide.find("e-1"), 3, "e-2");
  const auto batch = decode_event_batch("[" + good + "," + wide + "," + good + "]");
  REQUIRE_FALSE(batch.document_error);
  REQUIRE(batch.items.size() == 3);
  CHECK(batch.items[0]);
  REQUIRE_FALSE(batch.items[1]);
  CHECK(batch.items[1].error.field == "data.n[1].m");
  CHECK(batch.items[2]);
}

TEST_CASE("any CloudEvents data: an object, another JSON value, data_base64, or none", "[codec]") {
  for (const json::value& v : {json::value("text"), json::value(json::array{1, "two"}),
                               json::value(nullptr), json::value(3.5), json::value(true)}) {
    CAPTURE(json::serialize(v));
    const auto r = decode_with("data", v);
    REQUIRE(r);
    REQUIRE(r.value->data_value);
    CHECK(*r.value->data_value == v);
    CHECK(r.value->data.empty());
    CHECK(to_json(*r.value).at("data") == v);  // and back out as it came
    CHECK(json::parse(encode_event(*r.value)).at("data") == v);
  }
  json::object b64 = minimal_object();
  b64.erase("data");
  b64["data_base64"] = "aGVsbG8=";
  b64["datacontenttype"] = "application/octet-stream";
  auto r = decode_object(b64);
  REQUIRE(r);
  CHECK(r.value->data_base64 == std::optional<std::string>{"aGVsbG8="});
  CHECK(json::parse(encode_event(*r.value)).at("data_base64") == "aGVsbG8=");
  CHECK_FALSE(validate_event(*r.value));

  b64["data_base64"] = 42;
  r = decode_object(b64);
  REQUIRE_FALSE(r);
  CHECK(contains(r.error.reason, "got an integer"));
  b64["data_base64"] = "not base64!";
  r = decode_object(b64);
  REQUIRE_FALSE(r);
  CHECK(r.error.field == "data_base64");
  b64["data_base64"] = "aGVsbG8=";
  b64["data"] = json::object{};
  r = decode_object(b64);
  REQUIRE_FALSE(r);  // both: which one is the data?

  json::object none = minimal_object();
  none.erase("data");
  r = decode_object(none);
  REQUIRE(r);
  CHECK(r.value->data.empty());
  CHECK_FALSE(r.value->data_value);

  // Limits hold inside any data: depth and string sizes.
  codec_limits small;
  small.max_depth = 2;
  json::object deep = minimal_object();
  deep["data"] = json::array{json::array{json::array{1}}};
  r = decode_event(json::value(deep), small);
  REQUIRE_FALSE(r);
  CHECK(contains(r.error.field, "data"));
}

TEST_CASE("entitykind and entityid: required by default, optional when not required", "[codec]") {
  json::object plain = minimal_object();
  plain.erase("entitykind");
  plain.erase("entityid");
  auto r = decode_object(plain);
  REQUIRE_FALSE(r);
  CHECK(r.error.field == "entitykind");
  CHECK(contains(r.error.reason, "entity-state propagation keys state by entity"));
  codec_limits relaxed;
  relaxed.require_entity = false;
  r = decode_event(json::value(plain), relaxed);
  REQUIRE(r);
  CHECK(r.value->entity_kind.empty());
  CHECK_FALSE(validate_event(*r.value, relaxed));
  CHECK(validate_event(*r.value)->field == "entitykind");
  CHECK_FALSE(to_json(*r.value).contains("entitykind"));  // absent stays absent
}

TEST_CASE("datacontenttype is any media type", "[codec]") {
  for (const char* ok :
       {"application/json", "application/json; charset=utf-8", "application/cloudevents+json",
        "Application/JSON", "text/plain", "application/xml", "application/octet-stream"}) {
    CAPTURE(ok);
    const auto r = decode_with("datacontenttype", ok);
    REQUIRE(r);
    CHECK(r.value->datacontenttype == ok);
  }
  for (const char* bad : {"json", "+json", "text/", "/plain", "text plain"}) {
    CAPTURE(bad);
    const auto r = decode_with("datacontenttype", bad);
    REQUIRE_FALSE(r);
    CHECK(r.error.field == "datacontenttype");
    CHECK(contains(r.error.reason, "media type"));
  }
}

// --- time and traceparent ------------------------------------------------------------------

TEST_CASE("time accepts RFC 3339 timestamps", "[codec]") {
  for (const char* ok : {"2026-11-23T14:00:00Z", "2026-11-23T14:00:00.123+01:00",
                         "2026-11-23T14:00:00.123456789-05:30", "2024-02-29T23:59:59Z",
                         "2026-12-31T23:59:60Z", "2026-11-23t14:00:00z", "0001-01-01T00:00:00Z"}) {
    CAPTURE(ok);
    const auto r = decode_with("time", ok);
    REQUIRE(r);
    CHECK(r.value->time == ok);
  }
}

TEST_CASE("time rejects anything that is not a valid RFC 3339 timestamp", "[codec]") {
  for (const char* bad :
       {"2026-11-23", "2026-11-23T14:00:00", "2026-11-23 14:00:00Z", "2026-13-01T00:00:00Z",
        "2026-00-10T00:00:00Z", "2026-02-29T00:00:00Z", "2026-04-31T00:00:00Z",
        "2026-11-00T00:00:00Z", "2026-11-23T24:00:00Z", "2026-11-23T14:60:00Z",
        "2026-11-23T14:00:61Z", "2026-11-23T14:00:00.Z", "2026-11-23T14:00:00+25:00",
        "2026-11-23T14:00:00+01:60", "2026-11-23T14:00:00+0100", "2026-11-23T14:00:00Zjunk",
        "26-11-23T14:00:00Z", "2026-1-23T14:00:00Z", "tomorrow"}) {
    CAPTURE(bad);
    const auto r = decode_with("time", bad);
    REQUIRE_FALSE(r);
    CHECK(r.error.field == "time");
    CHECK(contains(r.error.reason, "2026-11-23T14:00:00Z"));
  }
  CHECK(contains(decode_with("time", "2026-13-01T00:00:00Z").error.reason, "month 13"));
}

TEST_CASE("an absent time stays empty for the runtime to set on ingest", "[codec]") {
  const auto r = decode_object(minimal_object());
  REQUIRE(r);
  CHECK(r.value->time.empty());
}

TEST_CASE("traceparent must be W3C trace context", "[codec]") {
  const auto good =
      decode_with("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  REQUIRE(good);
  struct bad_case {
    const char* value;
    const char* why;
  };
  for (const auto& bad : std::vector<bad_case>{
           {"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", "W3C traceparent"},
           {"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", "W3C traceparent"},
           {"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "W3C traceparent"},
           {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", "W3C traceparent"},
           {"00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01", "W3C traceparent"},
           {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bg-01", "W3C traceparent"},
           {"00-00000000000000000000000000000000-00f067aa0ba902b7-01", "all-zero trace-id"},
           {"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "all-zero parent-id"},
       }) {
    CAPTURE(bad.value);
    const auto r = decode_with("traceparent", bad.value);
    REQUIRE_FALSE(r);
    CHECK(r.error.field == "traceparent");
    CHECK(contains(r.error.reason, bad.why));
  }
}

// --- extensions ----------------------------------------------------------------------------

TEST_CASE("extension attributes are kept and written back", "[codec]") {
  json::object obj = minimal_object();
  obj["a"] = "x";
  obj["abcdefghij0123456789"] = 5;  // 20 characters, the longest allowed
  obj["flag"] = false;
  obj["big"] = std::numeric_limits<std::uint64_t>::max();
  obj["neg"] = -12;
  const auto r = decode_object(obj);
  REQUIRE(r);
  CHECK(r.value->extensions.size() == 5);
  CHECK(json::value(to_json(*r.value)) == json::value(obj));
}

TEST_CASE("extension names must be 1-20 lowercase letters or digits", "[codec]") {
  for (const char* bad : {"abcdefghij0123456789x", "Tenant", "my_ext", "my-ext", "caf\xC3\xA9"}) {
    CAPTURE(bad);
    const auto r = decode_with(bad, "v");
    REQUIRE_FALSE(r);
    CHECK(r.error.field == bad);
    CHECK(contains(r.error.reason, "1 to 20 characters a-z or 0-9"));
  }
  const auto empty_name = decode_with("", "v");
  REQUIRE_FALSE(empty_name);
  CHECK(empty_name.error.field.empty());
  CHECK(contains(empty_name.error.reason, "extension attribute name"));

  const auto misspelt = decode_with("entityId", "A-1");
  REQUIRE_FALSE(misspelt);
  CHECK(misspelt.error.field == "entityId");
  CHECK(contains(misspelt.error.reason, "did you mean 'entityid'?"));
}

TEST_CASE("extension values must be strings, integers or booleans", "[codec]") {
  for (const json::value& bad : {json::value(nullptr), json::value(json::object{{"a", 1}}),
                                 json::value(json::array{1}), json::value(2.5)}) {
    CAPTURE(json::serialize(bad));
    const auto r = decode_with("tenant", bad);
    REQUIRE_FALSE(r);
    CHECK(r.error.field == "tenant");
    CHECK(contains(r.error.reason, "must be a string, an integer or a boolean"));
  }
}

// --- limits --------------------------------------------------------------------------------

TEST_CASE("an event larger than max_event_bytes is rejected before parsing", "[codec]") {
  codec_limits limits;
  limits.max_event_bytes = 200;
  json::object obj = minimal_object();
  obj["data"] = json::object{{"blob", std::string(300, 'x')}};
  const auto r = decode_event(json::serialize(obj), limits);
  REQUIRE_FALSE(r);
  CHECK(r.error.field == "$");
  CHECK(contains(r.error.reason, "max_event_bytes"));

  // Not even parsed: invalid JSON over the limit reports the size, not the syntax.
  const auto junk = decode_event(std::string(201, '{'), limits);
  CHECK(contains(junk.error.reason, "max_event_bytes"));
}

TEST_CASE("a parsed value is held to max_event_bytes by its serialized size", "[codec]") {
  json::object obj = minimal_object();
  obj["data"] = json::object{{"text", "a \"quoted\"\n line\x01"},
                             {"n", -42},
                             {"f", 1.25},
                             {"list", json::array{true, false, nullptr, 18446744073709551615ULL}}};
  obj["tenant"] = "acme";
  const std::size_t exact = json::serialize(obj).size();
  codec_limits limits;
  limits.max_event_bytes = exact;
  CHECK(decode_event(json::value(obj), limits));
  limits.max_event_bytes = exact - 1;
  const auto r = decode_event(json::value(obj), limits);
  REQUIRE_FALSE(r);
  CHECK(r.error.field == "$");
  CHECK(contains(r.error.reason, "max_event_bytes"));
}

TEST_CASE("nesting inside data beyond max_depth is rejected naming the path", "[codec]") {
  codec_limits limits;
  limits.max_depth = 4;
  REQUIRE(decode_event(event_with_data_depth(4), limits));
  const auto r = decode_event(event_with_data_depth(5), limits);
  REQUIRE_FALSE(r);
  CHECK(r.error.field == "data.a.a.a.a");
  CHECK(contains(r.error.reason, "max_depth"));

  // The same limit, on a value parsed elsewhere.
  REQUIRE(decode_event(json::parse(event_with_data_depth(4)), limits));
  const auto from_value = decode_event(json::parse(event_with_data_depth(5)), limits);
  REQUIRE_FALSE(from_value);
  CHECK(from_value.error.field == "data.a.a.a.a");

  // Arrays count as levels too.
  json::object obj = minimal_object();
  obj["data"] = json::parse(R"({"items":[[{"x":[1]}]]})");
  const auto arrays = decode_object(obj, limits);
  REQUIRE_FALSE(arrays);
  CHECK(arrays.error.field == "data.items[0][0].x");
}

TEST_CASE("very deep input is rejected cleanly, never crashing", "[codec]") {
  const auto brackets = decode_event(std::string(100000, '['));
  REQUIRE_FALSE(brackets);
  CHECK(brackets.error.field == "$");

  const auto deep_data = decode_event(event_with_data_depth(10000));
  REQUIRE_FALSE(deep_data);
  CHECK(deep_data.error.field.rfind("data.a.a", 0) == 0);
  CHECK(contains(deep_data.error.reason, "max_depth"));

  // A 10000-level value built in code, through the value overload.
  json::value nested = json::object();
  for (int i = 0; i < 10000; ++i) {
    json::array wrap;
    wrap.emplace_back(std::move(nested));
    nested = std::move(wrap);
  }
  json::object obj = minimal_object();
  obj["data"] = json::object{{"deep", std::move(nested)}};
  const auto from_value = decode_event(json::value(std::move(obj)));
  REQUIRE_FALSE(from_value);
  CHECK(from_value.error.field.rfind("data.deep[0][0]", 0) == 0);
  CHECK(contains(from_value.error.reason, "max_depth"));
}

TEST_CASE("a string in data or an extension longer than max_string_bytes names its path",
          "[codec]") {
  codec_limits limits;
  limits.max_string_bytes = 16;
  json::object obj = minimal_object();
  obj["data"] = json::parse(R"({"items":[{"name":"a"},{"name":"b"},{"name":"c"},
                                          {"name":"this name is far too long"}]})");
  const auto r = decode_object(obj, limits);
  REQUIRE_FALSE(r);
  CHECK(r.error.field == "data.items[3].name");
  CHECK(contains(r.error.reason, "max_string_bytes"));

  obj["data"] = json::object{{"ok", std::string(16, 'x')}};
  CHECK(decode_object(obj, limits));

  obj["data"] = json::object{{"odd key", std::string(17, 'x')}};
  CHECK(decode_object(obj, limits).error.field == R"(data["odd key"])");

  obj["data"] = json::object{{"list", json::array{json::object{{std::string(17, 'k'), 1}}}}};
  const auto long_key = decode_object(obj, limits);
  REQUIRE_FALSE(long_key);
  CHECK(long_key.error.field == "data.list[0]." + std::string(17, 'k'));
  CHECK(contains(long_key.error.reason, "member name"));

  obj["data"] = json::object();
  obj["tenant"] = std::string(17, 't');
  const auto ext = decode_object(obj, limits);
  REQUIRE_FALSE(ext);
  CHECK(ext.error.field == "tenant");
  CHECK(contains(ext.error.reason, "max_string_bytes"));
}

TEST_CASE("each context attribute is held to max_attribute_bytes", "[codec]") {
  codec_limits limits;
  limits.max_attribute_bytes = 16;  // "application" in minimal_object() fits
  for (const std::string field : {"id", "source", "type", "subject", "dataschema", "entitykind",
                                  "entityid", "correlationid", "causationid"}) {
    CAPTURE(field);
    json::object obj = minimal_object();
    obj[field] = std::string(16, 'v');
    CHECK(decode_object(obj, limits));
    obj[field] = std::string(17, 'v');
    const auto r = decode_object(obj, limits);
    REQUIRE_FALSE(r);
    CHECK(r.error.field == field);
    CHECK(contains(r.error.reason, "max_attribute_bytes"));
  }
}

// --- malformed documents -------------------------------------------------------------------

TEST_CASE("malformed JSON is rejected at $ with the parser's message and offset", "[codec]") {
  const auto r = decode_event(R"({"id": })");
  REQUIRE_FALSE(r);
  CHECK(r.error.field == "$");
  CHECK(contains(r.error.reason, "not valid JSON"));
  CHECK(contains(r.error.reason, "at byte 7"));

  for (const char* bad : {"", "{", R"({"id":"x"} trailing)", "{'id':'x'}", "nul"}) {
    CAPTURE(bad);
    const auto e = decode_event(bad);
    REQUIRE_FALSE(e);
    CHECK(e.error.field == "$");
    CHECK(contains(e.error.reason, "not valid JSON"));
  }
  const auto bad_utf8 = decode_event("{\"id\":\"\xFF\"}");
  REQUIRE_FALSE(bad_utf8);
  CHECK(bad_utf8.error.field == "$");
}

TEST_CASE("a document that is not a JSON object is rejected at $", "[codec]") {
  for (const char* not_object : {"[]", "\"event\"", "42", "null"}) {
    CAPTURE(not_object);
    const auto r = decode_event(not_object);
    REQUIRE_FALSE(r);
    CHECK(r.error.field == "$");
    CHECK(contains(r.error.reason, "must be a JSON object"));
  }
}

// --- batches -------------------------------------------------------------------------------

namespace {
std::string batch_of(const std::vector<json::object>& events) {
  json::array arr;
  for (const auto& e : events)
    arr.emplace_back(e);
  return json::serialize(arr);
}

json::object event_with_id(const std::string& id) {
  json::object obj = minimal_object();
  obj["id"] = id;
  return obj;
}
}  // namespace

TEST_CASE("a batch keeps its good events in order around a bad one", "[codec]") {
  json::object bad = event_with_id("e-2");
  bad.erase("entityid");
  const auto r = decode_event_batch(batch_of({event_with_id("e-1"), bad, event_with_id("e-3")}));
  REQUIRE_FALSE(r.document_error);
  REQUIRE(r.items.size() == 3);
  REQUIRE(r.items[0]);
  CHECK(r.items[0].value->id == "e-1");
  REQUIRE_FALSE(r.items[1]);
  CHECK(r.items[1].error.field == "entityid");
  REQUIRE(r.items[2]);
  CHECK(r.items[2].value->id == "e-3");
}

TEST_CASE("item errors in a batch carry paths relative to the item", "[codec]") {
  codec_limits limits;
  limits.max_string_bytes = 6;
  json::object long_string = event_with_id("e-1");
  long_string["data"] = json::parse(R"({"items":[{"name":"too long"}]})");
  const auto r = decode_event_batch("[" + json::serialize(long_string) + ",7]", limits);
  REQUIRE(r.items.size() == 2);
  CHECK(r.items[0].error.field == "data.items[0].name");
  CHECK(r.items[1].error.field == "$");
  CHECK(contains(r.items[1].error.reason, "must be a JSON object"));
}

TEST_CASE("unusable batch documents are rejected as a whole at $", "[codec]") {
  const auto not_json = decode_event_batch("[{");
  REQUIRE(not_json.document_error);
  CHECK(not_json.document_error->field == "$");
  CHECK(contains(not_json.document_error->reason, "not valid JSON"));
  CHECK(not_json.items.empty());

  const auto not_array = decode_event_batch(json::serialize(minimal_object()));
  REQUIRE(not_array.document_error);
  CHECK(not_array.document_error->field == "$");
  CHECK(contains(not_array.document_error->reason, "must be a JSON array"));
  CHECK(not_array.items.empty());

  codec_limits limits;
  limits.max_batch_events = 2;
  const auto three = batch_of({event_with_id("a"), event_with_id("b"), event_with_id("c")});
  const auto too_many = decode_event_batch(three, limits);
  REQUIRE(too_many.document_error);
  CHECK(too_many.document_error->field == "$");
  CHECK(contains(too_many.document_error->reason, "max_batch_events"));
  CHECK(too_many.items.empty());
  limits.max_batch_events = 3;
  CHECK(decode_event_batch(three, limits).items.size() == 3);

  limits.max_batch_bytes = three.size() - 1;
  const auto too_big = decode_event_batch(three, limits);
  REQUIRE(too_big.document_error);
  CHECK(contains(too_big.document_error->reason, "max_batch_bytes"));
  CHECK(too_big.items.empty());

  const auto deep = decode_event_batch("[" + event_with_data_depth(10000) + "]");
  REQUIRE(deep.document_error);
  CHECK(deep.document_error->field == "$");
  CHECK(contains(deep.document_error->reason, "item [0]"));
  CHECK(contains(deep.document_error->reason, "max_depth"));

  CHECK_FALSE(decode_event_batch(std::string(100000, '[')).items.size());
}

TEST_CASE("an empty batch is a valid document with no events", "[codec]") {
  const auto r = decode_event_batch("[]");
  CHECK_FALSE(r.document_error);
  CHECK(r.items.empty());
}

TEST_CASE("batch items are held to max_event_bytes", "[codec]") {
  json::object big = event_with_id("big");
  big["data"] = json::object{{"blob", std::string(300, 'x')}};
  codec_limits limits;
  limits.max_event_bytes = 250;
  const auto r = decode_event_batch(batch_of({event_with_id("small"), big}), limits);
  REQUIRE(r.items.size() == 2);
  CHECK(r.items[0]);
  REQUIRE_FALSE(r.items[1]);
  CHECK(r.items[1].error.field == "$");
  CHECK(contains(r.items[1].error.reason, "max_event_bytes"));
}

// --- events built in code ------------------------------------------------------------------

TEST_CASE("validate_event accepts a complete event and names the first problem", "[codec]") {
  event ev = minimal_event();
  CHECK_FALSE(validate_event(ev));

  ev.entity_id.clear();
  auto problem = validate_event(ev);
  REQUIRE(problem);
  CHECK(problem->message() ==
        "field 'entityid': is required (a non-empty string naming the entity)");

  ev = minimal_event();
  ev.time = "2026-11-23 14:00";
  problem = validate_event(ev);
  REQUIRE(problem);
  CHECK(problem->field == "time");

  ev = minimal_event();
  ev.traceparent = "00-abc";
  CHECK(validate_event(ev)->field == "traceparent");

  ev = minimal_event();
  ev.datacontenttype = "text csv";
  CHECK(validate_event(ev)->field == "datacontenttype");

  ev = minimal_event();
  ev.extensions["subject"] = "s";
  CHECK(validate_event(ev)->field == "subject");

  ev = minimal_event();
  ev.extensions["Bad_Name"] = "s";
  CHECK(validate_event(ev)->field == "Bad_Name");

  ev = minimal_event();
  ev.extensions["list"] = json::array{1};
  CHECK(validate_event(ev)->field == "list");
}

TEST_CASE("validate_event applies the codec limits", "[codec]") {
  event ev = minimal_event();
  ev.subject = "s\"ubject";
  ev.entity_version = 0;
  ev.sequence = 99;
  ev.extensions["tenant"] = "acme";
  ev.data = json::parse(R"({"items":[{"name":"a long name\n"}],"n":-1,"f":0.5})").as_object();

  codec_limits limits;
  limits.max_event_bytes = encode_event(ev).size();
  CHECK_FALSE(validate_event(ev, limits));
  limits.max_event_bytes -= 1;
  REQUIRE(validate_event(ev, limits));
  CHECK(validate_event(ev, limits)->field == "$");

  limits = {};
  limits.max_depth = 2;
  CHECK(validate_event(ev, limits)->field == "data.items[0]");

  limits = {};
  limits.max_string_bytes = 8;
  CHECK(validate_event(ev, limits)->field == "data.items[0].name");
  limits.max_string_bytes = 3;
  CHECK(validate_event(ev, limits)->field == "tenant");

  limits = {};
  limits.max_attribute_bytes = 4;
  CHECK(validate_event(ev, limits)->field == "subject");
}

TEST_CASE("rfc3339_now is UTC with milliseconds and is a valid event time", "[codec]") {
  const std::string now = rfc3339_now();
  REQUIRE(now.size() == 24);
  CHECK(now[10] == 'T');
  CHECK(now[19] == '.');
  CHECK(now.back() == 'Z');
  CHECK(now.substr(0, 2) == "20");
  event ev = minimal_event();
  ev.time = now;
  CHECK_FALSE(validate_event(ev));
}
