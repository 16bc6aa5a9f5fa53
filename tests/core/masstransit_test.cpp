// AMQP message bodies -> events: MassTransit envelopes through the configured mappings, plain
// CloudEvents through the codec, and the errors that send a message to the error queue.

#include "core/masstransit.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

using namespace switchboard;
using core::decode_amqp_message;

namespace {

constexpr std::string_view mt_json = "application/vnd.masstransit+json";

amqp_source_config source() {
  amqp_source_config s;
  s.name = "crm";
  s.queue = "switchboard.crm";
  s.messages.push_back({"urn:message:Crm.Events:ApplicationStatusChanged",
                        "application.status_changed", "application", "applicationId", "version"});
  s.messages.push_back({"urn:message:Crm.Events:AccountManagerAllocated",
                        "account.manager_allocated", "account", "account.id", ""});
  return s;
}

std::string envelope(const std::string& message,
                     const std::string& type = "urn:message:Crm.Events:ApplicationStatusChanged",
                     const std::string& extra = "") {
  return R"({"messageId":"0b4e0000-1d2c-0015-5d0f-08dc0c3e1a2b","correlationId":"c-42",)"
         R"("conversationId":"conv-1","initiatorId":"i-7",)"
         R"("sourceAddress":"rabbitmq://localhost/crm","destinationAddress":"rabbitmq://localhost/Crm.Events:ApplicationStatusChanged",)"
         R"("messageType":[")" +
         type + R"(","urn:message:Crm.Events:IApplicationEvent"],)" + R"("message":)" + message +
         "," + extra +
         R"("sentTime":"2026-11-23T14:00:00.1234567Z","headers":{},)"
         R"("host":{"machineName":"crm-1","processName":"Crm.Api","frameworkVersion":"8.0"}})";
}

const std::string approved =
    R"({"applicationId":"A-1001","version":7,"status":"approved","amount":25000.5})";

}  // namespace

TEST_CASE("a MassTransit envelope maps to an event", "[masstransit]") {
  auto r = decode_amqp_message(envelope(approved), mt_json, source(), {});
  INFO(r.error);
  REQUIRE(r);
  const event& ev = *r.value;
  CHECK(ev.id == "0b4e0000-1d2c-0015-5d0f-08dc0c3e1a2b");
  CHECK(ev.source == "amqp/switchboard.crm");
  CHECK(ev.type == "application.status_changed");
  CHECK(ev.entity_kind == "application");
  CHECK(ev.entity_id == "A-1001");
  CHECK(ev.subject == "application/A-1001");
  REQUIRE(ev.entity_version);
  CHECK(*ev.entity_version == 7);
  CHECK(ev.correlation_id == "c-42");
  CHECK(ev.causation_id == "i-7");
  CHECK(ev.time == "2026-11-23T14:00:00.123456Z");
  CHECK(ev.data.at("status") == "approved");
  CHECK(ev.data.at("amount").as_double() == 25000.5);
  CHECK_FALSE(validate_event(ev));
  // The journal stores it as CloudEvents; that must round-trip.
  auto back = decode_event(encode_event(ev));
  INFO(back.error.message());
  CHECK(back);
}

TEST_CASE("the mapping is chosen by any URN of messageType, ids may be nested and numeric",
          "[masstransit]") {
  auto s = source();
  s.event_source = "crm/accounts";
  auto body = envelope(R"({"account":{"id":4711},"manager":"Ann"})",
                       "urn:message:Crm.Events:AccountManagerAllocated");
  // Unlabelled JSON with `messageType` is MassTransit too.
  auto r = decode_amqp_message(body, "", s, {});
  INFO(r.error);
  REQUIRE(r);
  CHECK(r.value->type == "account.manager_allocated");
  CHECK(r.value->entity_kind == "account");
  CHECK(r.value->entity_id == "4711");
  CHECK_FALSE(r.value->entity_version);
  CHECK(r.value->source == "crm/accounts");

  // The second URN (an interface) matches when the first is unknown.
  s.messages.push_back({"urn:message:Crm.Events:IApplicationEvent", "application.event",
                        "application", "applicationId", ""});
  auto r2 = decode_amqp_message(envelope(approved, "urn:message:Crm.Events:Other"),
                                "application/json; charset=utf-8", s, {});
  INFO(r2.error);
  REQUIRE(r2);
  CHECK(r2.value->type == "application.event");
}

TEST_CASE("an unmapped message type names the URNs seen and the configured ones", "[masstransit]") {
  auto r = decode_amqp_message(envelope(approved, "urn:message:Crm.Events:LeadCreated"), mt_json,
                               source(), {});
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error, Catch::Contains("urn:message:Crm.Events:LeadCreated") &&
                          Catch::Contains("urn:message:Crm.Events:ApplicationStatusChanged") &&
                          Catch::Contains("urn:message:Crm.Events:AccountManagerAllocated") &&
                          Catch::Contains("'crm'"));
}

TEST_CASE("MassTransit envelopes with bad fields are rejected with the field named",
          "[masstransit]") {
  const auto s = source();
  auto error_of = [&](const std::string& body) {
    auto r = decode_amqp_message(body, mt_json, s, {});
    CHECK_FALSE(r);
    return r.error;
  };
  CHECK_THAT(
      error_of(
          R"({"messageType":["urn:message:Crm.Events:ApplicationStatusChanged"],"message":{}})"),
      Catch::Contains("'messageId' is missing"));
  CHECK_THAT(error_of(R"({"messageId":"m1","message":{}})"), Catch::Contains("'messageType'"));
  CHECK_THAT(
      error_of(
          R"({"messageId":"m1","messageType":["urn:message:Crm.Events:ApplicationStatusChanged"],"message":[1]})"),
      Catch::Contains("'message' must be a JSON object"));
  CHECK_THAT(error_of(envelope(R"({"version":1})")),
             Catch::Contains("message.applicationId") && Catch::Contains("missing"));
  CHECK_THAT(error_of(envelope(R"({"applicationId":{"x":1},"version":1})")),
             Catch::Contains("message.applicationId") && Catch::Contains("non-empty string"));
  CHECK_THAT(error_of(envelope(R"({"applicationId":"A-1"})")),
             Catch::Contains("message.version") && Catch::Contains("missing"));
  CHECK_THAT(error_of(envelope(R"({"applicationId":"A-1","version":-3})")),
             Catch::Contains("message.version") && Catch::Contains("non-negative integer"));
  CHECK_THAT(error_of(envelope(R"({"applicationId":"A-1","version":"7"})")),
             Catch::Contains("non-negative integer"));
  auto yesterday = envelope(approved);
  yesterday.replace(yesterday.find("2026-11-23T14:00:00.1234567Z"), 28, "yesterday");
  CHECK_THAT(error_of(yesterday), Catch::Contains("'sentTime'") && Catch::Contains("'yesterday'"));
  CHECK_THAT(error_of("{not json"), Catch::Contains("not valid JSON"));
  CHECK_THAT(error_of("[1,2]"), Catch::Contains("must be a JSON object"));
}

TEST_CASE("numbers the journal cannot keep are refused, so the message goes to the error queue",
          "[masstransit]") {
  // These were acked and journaled: 1e400 as Infinity (unreadable from then on), wide integers
  // as rounded doubles, versions of 2^63 and more clamped.
  const auto s = source();
  auto error_of = [&](const std::string& body, std::string_view ct = mt_json) {
    auto r = decode_amqp_message(body, ct, s, {});
    CHECK_FALSE(r);
    return r.error;
  };
  CHECK_THAT(
      error_of(envelope(R"({"applicationId":"A-1","version":1,"amount":1e400})")),
      Catch::Contains("field 'data.amount'") && Catch::Contains("beyond the range of a double"));
  CHECK_THAT(error_of(envelope(R"({"applicationId":"A-1","version":1,"l":[1,-1e400]})"), ""),
             Catch::Contains("field 'data.l[1]'"));
  CHECK_THAT(
      error_of(envelope(R"({"applicationId":"A-1","version":1,"n":123456789012345678901234})")),
      Catch::Contains("field 'message.n'") && Catch::Contains("more digits than 64 bits hold"));
  CHECK_THAT(error_of(envelope(R"({"applicationId":"A-1","version":9223372036854775808})")),
             Catch::Contains("message.version") && Catch::Contains("9223372036854775807") &&
                 Catch::Contains("not 9223372036854775808"));
  // Outside `message` nothing is stored, so a wide integer there does no harm.
  auto r = decode_amqp_message(envelope(approved, "urn:message:Crm.Events:ApplicationStatusChanged",
                                        R"("retry":123456789012345678901234,)"),
                               mt_json, s, {});
  INFO(r.error);
  CHECK(r);

  const std::string ce_head =
      R"({"specversion":"1.0","id":"e-1","source":"crm/apps","type":"application.created",)"
      R"("entitykind":"application","entityid":"A-9","data":)";
  for (std::string_view ct : {"application/cloudevents+json", "application/json"}) {
    CAPTURE(ct);
    CHECK_THAT(
        error_of(ce_head + R"({"x":1e400}})", ct),
        Catch::Contains("field 'data.x'") && Catch::Contains("beyond the range of a double"));
    CHECK_THAT(
        error_of(ce_head + R"({"x":[99999999999999999999]}})", ct),
        Catch::Contains("field 'data.x[0]'") && Catch::Contains("more digits than 64 bits hold"));
  }
}

TEST_CASE("limits apply to mapped MassTransit messages", "[masstransit]") {
  codec_limits small;
  small.max_depth = 3;
  auto deep = envelope(R"({"applicationId":"A-1","version":1,"a":{"b":{"c":{"d":1}}}})");
  auto r = decode_amqp_message(deep, mt_json, source(), small);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error, Catch::Contains("deeper than 3"));

  small = {};
  small.max_attribute_bytes = 8;
  r = decode_amqp_message(envelope(approved), mt_json, source(), small);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error, Catch::Contains("invalid event") && Catch::Contains("field 'id'"));

  small = {};
  small.max_event_bytes = 100;
  r = decode_amqp_message(envelope(approved), mt_json, source(), small);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error, Catch::Contains("max_event_bytes"));
}

TEST_CASE("CloudEvents bodies go through the event codec", "[masstransit]") {
  const std::string ce =
      R"({"specversion":"1.0","id":"e-1","source":"crm/apps","type":"application.created",)"
      R"("entitykind":"application","entityid":"A-9","data":{"x":1}})";
  for (std::string_view ct : {"application/cloudevents+json", "application/json", ""}) {
    auto r = decode_amqp_message(ce, ct, source(), {});
    INFO(ct << ": " << r.error);
    REQUIRE(r);
    CHECK(r.value->id == "e-1");
    CHECK(r.value->source == "crm/apps");
    CHECK(r.value->entity_id == "A-9");
  }
  auto bad = decode_amqp_message(R"({"specversion":"1.0","id":"e-1"})",
                                 "application/cloudevents+json", source(), {});
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error, Catch::Contains("CloudEvents event") && Catch::Contains("field 'source'"));
}

TEST_CASE("bodies that are neither format say what is accepted", "[masstransit]") {
  auto r = decode_amqp_message("hello", "text/plain", source(), {});
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error, Catch::Contains("'text/plain' is not supported") &&
                          Catch::Contains("application/vnd.masstransit+json"));
  r = decode_amqp_message(R"({"hello":1})", "application/json", source(), {});
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error, Catch::Contains("neither a MassTransit envelope"));
}

TEST_CASE("MassTransit sentTime is normalised to what the journal parses", "[masstransit]") {
  using core::normalize_sent_time;
  CHECK(normalize_sent_time("2026-11-23T14:00:00.1234567Z") == "2026-11-23T14:00:00.123456Z");
  CHECK(normalize_sent_time("2026-11-23T14:00:00.1234567+01:00") ==
        "2026-11-23T14:00:00.123456+01:00");
  CHECK(normalize_sent_time("2026-11-23T14:00:00.12Z") == "2026-11-23T14:00:00.12Z");
  CHECK(normalize_sent_time("2026-11-23T14:00:00") == "2026-11-23T14:00:00Z");
  CHECK(normalize_sent_time("2026-11-23T14:00:00.1234567") == "2026-11-23T14:00:00.123456Z");
  CHECK_FALSE(normalize_sent_time("2026-13-23T14:00:00Z"));
  CHECK_FALSE(normalize_sent_time("not a time"));
}
