#pragma once

/// @file switchboard/config/leads.hpp
/// The configuration of lead conversations and form leads (since 0.4): dealers and their
/// locations, the proxy number pool, reminders and forwarding. Included by switchboard/config.hpp.

#include "switchboard/export.hpp"

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace switchboard {

/// One location of a dealer: where its leads' SMS go. Seeded at start-up; changed at run time
/// with `POST /v1/dealers/{id}/set_location` (open leads keep the number they opened with).
struct location_config {
  std::string id;
  std::string name;
  std::string phone;  ///< E.164, e.g. "+15550001111"
};

struct dealer_config {
  std::string id;
  std::string name;
  std::vector<location_config> locations;
};

/// Web-to-text leads: durable per-lead workflows that open two-way SMS conversations between a
/// dealer's location and a customer through Twilio Conversations (or the emulator).
struct leads_config {
  /// The proxy number pool (E.164): every conversation's SMS bindings go through one of them.
  /// Leads run when the pool is not empty.
  std::vector<std::string> proxy_numbers;
  /// The URL Twilio is told to call with conversation events, exactly as Twilio will call it
  /// (its X-Twilio-Signature covers it); "" = no conversation webhook is registered and
  /// inbound webhooks are checked against http://<listen address>/v1/webhooks/twilio/conversations.
  std::string webhook_url;
  /// The first message of a lead. Placeholders: {customer_name}, {customer_phone}, {message},
  /// {dealer_name}, {location_name}, {lead_id}.
  std::string first_message = "New lead from {customer_name} ({customer_phone}): {message}";
  /// Sent into the conversation when the dealer has not replied within `reminder_after`.
  std::string reminder_message = "Reminder: {customer_name} is still waiting for a reply.";
  std::chrono::milliseconds reminder_after{15 * 60'000};              ///< 0 = no reminder
  std::chrono::milliseconds close_inactive_after{30LL * 86'400'000};  ///< 0 = never
  std::size_t max_message_chars = 1600;  ///< a lead's message; Twilio's limit is 1600
  /// Runner threads per service: invocations run in parallel (one per key at a time). A runner
  /// waits out each Twilio call, so this is also how many calls are under way at once: at
  /// Twilio's ~100 ms a call, 32 runners open about twice as many leads a second as 16.
  std::size_t workers = 32;
  std::size_t max_attempts = 8;  ///< per step; then the invocation is parked
  std::chrono::milliseconds backoff_initial{200};
  std::chrono::milliseconds backoff_max{30'000};
  /// How long `POST /v1/{service}/{key}/{handler}` waits for the result before it answers 202
  /// with the invocation's status URL (the invocation is durable either way).
  std::chrono::milliseconds answer_timeout{10'000};
  std::chrono::milliseconds passivate_after{60'000};  ///< idle keyed actors leave memory
  std::vector<dealer_config> dealers;
};

/// Form leads (ActOn-style): stored durably, then forwarded to two HTTP systems.
struct form_leads_config {
  std::string lead_tracking_url;  ///< POSTed JSON with an Idempotency-Key; "" = not forwarded
  std::string marketing_url;      ///< likewise
  std::size_t max_attempts = 10;  ///< then the forward is dead (parked; resumable)
  std::chrono::milliseconds backoff_initial{500};
  std::chrono::milliseconds backoff_max{60'000};
  std::chrono::milliseconds timeout{10'000};  ///< per forward request
};

}  // namespace switchboard
