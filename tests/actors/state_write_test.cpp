// The sync writer's state write (src/jobs/propagation/state_write.cpp) against a fake Twilio
// (ports::twilio::twilio_api): which calls it makes around a write, and what it reports.

#include "jobs/propagation/state_write.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <deque>
#include <string>
#include <vector>

using namespace switchboard;
namespace json = boost::json;
namespace tw = switchboard::ports::twilio;

namespace {

tw::call_result answer(tw::outcome kind, int status, std::string revision = {}) {
  tw::call_result r;
  r.kind = kind;
  r.status = status;
  if (!revision.empty())
    r.body = json::object{{"revision", revision}};
  r.message = "HTTP " + std::to_string(status);
  return r;
}

/// Answers each call with the next scripted answer and records the call as "name if-match".
class scripted_twilio final : public tw::twilio_api {
public:
  std::deque<tw::call_result> answers;
  std::vector<std::string> calls;

  tw::call_result next(std::string call, const std::optional<std::string>& if_match = {}) {
    calls.push_back(if_match ? call + " " + *if_match : call);
    REQUIRE_FALSE(answers.empty());
    auto r = answers.front();
    answers.pop_front();
    return r;
  }

  tw::call_result create_document(const std::string&, const std::optional<std::string>&,
                                  const json::value&,
                                  std::optional<std::chrono::seconds>) override {
    return next("create_document");
  }
  tw::call_result fetch_document(const std::string&, const std::string&) override {
    return next("fetch_document");
  }
  tw::call_result update_document(const std::string&, const std::string&, const json::value&,
                                  const std::optional<std::string>& if_match,
                                  std::optional<std::chrono::seconds>) override {
    return next("update_document", if_match);
  }
  tw::call_result delete_document(const std::string&, const std::string&,
                                  const std::optional<std::string>&) override {
    return next("delete_document");
  }
  tw::call_result create_map(const std::string&, const std::string&) override {
    return next("create_map");
  }
  tw::call_result create_map_item(const std::string&, const std::string&, const std::string&,
                                  const json::value&,
                                  std::optional<std::chrono::seconds>) override {
    return next("create_map_item");
  }
  tw::call_result fetch_map_item(const std::string&, const std::string&,
                                 const std::string&) override {
    return next("fetch_map_item");
  }
  tw::call_result update_map_item(const std::string&, const std::string&, const std::string&,
                                  const json::value&, const std::optional<std::string>& if_match,
                                  std::optional<std::chrono::seconds>) override {
    return next("update_map_item", if_match);
  }
  tw::call_result delete_map_item(const std::string&, const std::string&, const std::string&,
                                  const std::optional<std::string>&) override {
    return next("delete_map_item");
  }
  tw::call_result create_conversation(const tw::conversation_fields&) override {
    return next("create_conversation");
  }
  tw::call_result fetch_conversation(const std::string&) override {
    return next("fetch_conversation");
  }
  tw::call_result update_conversation_state(const std::string&, tw::conversation_state) override {
    return next("update_conversation_state");
  }
  tw::call_result add_sms_participant(const std::string&, const std::string&, const std::string&,
                                      const std::optional<json::value>&) override {
    return next("add_sms_participant");
  }
  tw::call_result send_message(const std::string&, const tw::message_fields&) override {
    return next("send_message");
  }
  tw::call_result list_messages(const std::string&, const tw::message_listing&) override {
    return next("list_messages");
  }
  tw::call_result send_sms(const tw::sms_fields&) override { return next("send_sms"); }
  tw::call_result list_sms(const tw::sms_listing&) override { return next("list_sms"); }
  tw::call_result participant_conversations(const std::string&) override {
    return next("participant_conversations");
  }
  tw::call_result create_conversation_webhook(const std::string&,
                                              const tw::conversation_webhook_fields&) override {
    return next("create_conversation_webhook");
  }
  tw::call_result fetch_worker(const std::string&, const std::string&) override {
    return next("fetch_worker");
  }
  tw::call_result update_worker_attributes(const std::string&, const std::string&,
                                           const json::value&,
                                           const std::optional<std::string>& if_match) override {
    return next("update_worker_attributes", if_match);
  }
  tw::call_result fetch_page(const std::string&) override { return next("fetch_page"); }
};

core::target_object document() {
  core::target_object o;
  o.type = target_config::kind::sync_document;
  o.service = "IS1";
  o.document = "application-A-1";
  return o;
}

}  // namespace

TEST_CASE("state write: a missing document is created, then updated at the revision it got",
          "[state_write]") {
  scripted_twilio twilio;
  actors::seen_revisions seen;
  const json::object payload{{"status", "approved"}};

  twilio.answers = {answer(tw::outcome::terminal, 404), answer(tw::outcome::ok, 201, "r1")};
  auto first = actors::write_state(twilio, document(), payload, seen);
  CHECK(first.result.what == core::write_result::kind::ok);
  CHECK(first.writes == 2);
  CHECK(twilio.calls == std::vector<std::string>{"update_document", "create_document"});

  twilio.answers = {answer(tw::outcome::ok, 200, "r2")};
  auto second = actors::write_state(twilio, document(), payload, seen);
  CHECK(second.result.what == core::write_result::kind::ok);
  CHECK(twilio.calls.back() == "update_document r1");  // If-Match: the revision last seen
}

TEST_CASE("state write: a stale revision is read again and the write goes on top of it",
          "[state_write]") {
  scripted_twilio twilio;
  actors::seen_revisions seen;
  seen.remember(document().describe(), "r1");

  twilio.answers = {answer(tw::outcome::conflict, 412), answer(tw::outcome::ok, 200, "r5"),
                    answer(tw::outcome::ok, 200, "r6")};
  auto r = actors::write_state(twilio, document(), json::object{{"n", 1}}, seen);
  CHECK(r.result.what == core::write_result::kind::ok);
  CHECK(r.conflicts == 1);
  CHECK(r.writes == 2);  // the fetch is not a write
  CHECK(twilio.calls ==
        std::vector<std::string>{"update_document r1", "fetch_document", "update_document r5"});
}

TEST_CASE("state write: a 429 or a 503 is retried after Twilio's delay, a 400 is given up",
          "[state_write]") {
  scripted_twilio twilio;
  actors::seen_revisions seen;

  auto limited = answer(tw::outcome::retryable, 429);
  limited.retry_after = std::chrono::milliseconds{1500};
  twilio.answers = {limited};
  auto r = actors::write_state(twilio, document(), json::object{}, seen);
  CHECK(r.result.what == core::write_result::kind::retry_after);
  CHECK(r.result.delay == std::chrono::milliseconds{1500});
  CHECK(r.rate_limited == 1);

  // A 503 leaves the write's outcome unknown; setting the whole state again is safe, after the
  // delay it named. Another 5xx without a delay backs off, and the revision is forgotten.
  seen.remember(document().describe(), "r1");
  auto unavailable = answer(tw::outcome::ambiguous, 503);
  unavailable.retry_after = std::chrono::milliseconds{1000};
  twilio.answers = {unavailable};
  r = actors::write_state(twilio, document(), json::object{}, seen);
  CHECK(r.result.what == core::write_result::kind::retry_after);
  CHECK(r.result.delay == std::chrono::milliseconds{1000});
  CHECK(seen.find(document().describe()) == nullptr);  // it may have moved on
  twilio.answers = {answer(tw::outcome::ambiguous, 500)};
  r = actors::write_state(twilio, document(), json::object{}, seen);
  CHECK(r.result.what == core::write_result::kind::backoff);

  twilio.answers = {answer(tw::outcome::terminal, 400)};
  r = actors::write_state(twilio, document(), json::object{}, seen);
  CHECK(r.result.what == core::write_result::kind::give_up);
  CHECK(r.error.find("HTTP 400") != std::string::npos);
}
