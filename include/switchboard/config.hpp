#pragma once

/// @file switchboard/config.hpp
/// switchboard's configuration: one JSON file (comments and trailing commas allowed),
/// validated completely at start-up (since 0.1). Secrets never live here: tokens come from
/// the environment (`SWITCHBOARD_API_TOKEN`, `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN`).

#include "switchboard/export.hpp"
#include "switchboard/event.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchboard {

/// Restart intensity and backoff of a supervisor (see switchboard/supervisor.hpp).
struct supervision_config {
  std::size_t max_restarts = 5;                         ///< at most this many restarts ...
  std::chrono::milliseconds within{10'000};             ///< ... within this window, else escalate
  std::chrono::milliseconds backoff_initial{10};        ///< delay before the first restart
  std::chrono::milliseconds backoff_max{2'000};         ///< cap of the doubling delay
};

/// The daemon's HTTP server (ingest, admin, health). Disabled by default for embedded use.
struct http_config {
  bool enabled = true;
  std::string host = "127.0.0.1";                       ///< loopback unless told otherwise
  std::uint16_t port = 8080;                            ///< 0 picks a free port
  std::size_t max_body_bytes = 4 * 1024 * 1024;         ///< larger requests get 413
  std::size_t keep_alive_max_count = 10'000;            ///< requests per kept-alive connection
  std::chrono::milliseconds read_timeout{5'000};
  std::chrono::milliseconds write_timeout{5'000};
  std::size_t worker_threads = 8;
};

/// CAF scheduler settings. The default of 2 threads suits the 2-core machines we measure on.
struct scheduler_config {
  std::size_t max_threads = 2;
  std::chrono::microseconds moderate_sleep{50};         ///< work-stealing poll sleep; lower = lower latency
};

struct log_config {
  std::string level = "info";                           ///< trace|debug|info|warn|error|critical|off
};

// -- entity-state propagation (since 0.3) --------------------------------------------------

/// How one MassTransit message type becomes a switchboard event.
struct amqp_message_mapping {
  /// Matched against every URN in the envelope's `messageType`, e.g.
  /// "urn:message:Crm.Events:ApplicationStatusChanged".
  std::string message_type;
  std::string event_type;            ///< the switchboard event `type`, e.g. "application.status_changed"
  std::string entity_kind;           ///< e.g. "application"
  std::string entity_id_field;       ///< dotted path in `message` holding the entity id
  std::string entity_version_field;  ///< dotted path holding the version; "" = none
};

/// A RabbitMQ queue consumed as a source of events. The password comes from the environment
/// variable `SWITCHBOARD_AMQP_PASSWORD` (else "guest").
struct amqp_source_config {
  std::string name;                           ///< unique; names the source in logs and stats
  std::string host = "127.0.0.1";
  std::uint16_t port = 5672;
  std::string vhost = "/";
  std::string username = "guest";
  std::string queue;                          ///< durable queue to consume
  std::vector<std::string> exchanges;         ///< durable fan-out exchanges bound to `queue`
  bool declare = true;                        ///< declare the topology; false: check it exists
  std::string error_queue;                    ///< undecodable messages go here; "" = `queue` + "_error"
  std::uint16_t prefetch = 1000;  ///< unacknowledged deliveries at most (acks wait for the commit)
  std::chrono::seconds heartbeat{10};
  std::chrono::milliseconds reconnect_initial{100};  ///< first delay after a lost connection
  std::chrono::milliseconds reconnect_max{5'000};    ///< cap of the doubling delay
  std::string event_source;                   ///< CloudEvents `source` of mapped events; "" = "amqp/" + queue
  std::vector<amqp_message_mapping> messages; ///< message types that are mapped; others go to the error queue
};

/// One SQL lookup that enriches an entity's state.
struct lookup_config {
  std::string name;                      ///< unique; names the cache and logs
  std::string entity_kind;               ///< the entities it enriches
  std::string sql;                       ///< one SELECT with `?` placeholders (bound, never spliced)
  std::vector<std::string> params;       ///< dotted state paths bound to the placeholders, in order
  std::string into;                      ///< state field receiving the first row as an object (null if none)
  std::string invalidated_by;            ///< event type announcing a change of a looked-up row; "" = none
  std::vector<std::string> invalidation_keys;  ///< dotted paths in that event's data giving the params
};

/// Cache-aside enrichment from a SQL database (a SQLite file standing in for the CRM's).
struct enrichment_config {
  std::string database;                       ///< SQLite file, opened read-only; "" = no lookups
  std::chrono::milliseconds cache_ttl{60'000};
  std::size_t cache_max_entries = 10'000;
  std::vector<lookup_config> lookups;
};

/// Where latest entity states are written.
struct target_config {
  enum class kind { sync_document, sync_map_item, taskrouter_worker };
  std::string name;                 ///< unique
  kind type = kind::sync_document;
  std::string entity_kind;          ///< the entities written to this target
  std::string service;              ///< Sync service SID (documents, map items)
  std::string document;             ///< document unique name template, e.g. "application-{id}"
  std::string map;                  ///< map unique name (map items)
  std::string key = "{id}";         ///< map item key template
  std::string workspace;            ///< TaskRouter workspace SID (workers)
  std::string worker;               ///< worker SID template, e.g. "{workerSid}"
  /// Output field -> dotted state path, in order; empty = the whole state. Templates use
  /// `{id}`, `{kind}` and `{dotted.state.path}`.
  std::vector<std::pair<std::string, std::string>> fields;
  std::size_t concurrency = 4;                      ///< parallel requests (never two for one object)
  std::chrono::milliseconds min_interval{50};       ///< per object: Twilio Sync allows 20 writes/s
  std::size_t max_attempts = 10;                    ///< then the write is dead-lettered
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{10'000};
};

/// The Twilio REST endpoint writers use; credentials come from TWILIO_ACCOUNT_SID and
/// TWILIO_AUTH_TOKEN.
struct twilio_config {
  std::string base_url;   ///< "http://127.0.0.1:PORT" for the emulator; "" = Twilio's hosts
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds read_timeout{15'000};
};

/// Latest entity state (view data in `<data_dir>/state.db`), fed by a durable subscription.
struct state_config {
  std::string pattern = "*";        ///< event types that update entity state
  std::size_t partitions = 2;       ///< parallel lanes; one entity always uses the same lane
};

// -- lead conversations (since 0.4) ---------------------------------------------------------

/// One location of a dealer: where its leads' SMS go. Seeded at start-up; changed at run time
/// with `POST /v1/dealers/{id}/set_location` (open leads keep the number they opened with).
struct location_config {
  std::string id;
  std::string name;
  std::string phone;   ///< E.164, e.g. "+15550001111"
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
  std::chrono::milliseconds reminder_after{15 * 60'000};           ///< 0 = no reminder
  std::chrono::milliseconds close_inactive_after{30LL * 86'400'000};  ///< 0 = never
  std::size_t max_message_chars = 1600;   ///< a lead's message; Twilio's limit is 1600
  std::size_t workers = 4;                ///< invocations run in parallel (one per key at a time)
  std::size_t max_attempts = 8;           ///< per step; then the invocation is parked
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
  std::string lead_tracking_url;   ///< POSTed JSON with an Idempotency-Key; "" = not forwarded
  std::string marketing_url;       ///< likewise
  std::size_t max_attempts = 10;   ///< then the forward is dead (parked; resumable)
  std::chrono::milliseconds backoff_initial{500};
  std::chrono::milliseconds backoff_max{60'000};
  std::chrono::milliseconds timeout{10'000};  ///< per forward request
};

/// The whole configuration. Every member has the embedded default, so `config{}` runs.
struct config {
  std::string source;                                   ///< the file it came from, "" for defaults
  std::string data_dir = "./data";                      ///< SQLite files live here
  http_config http;
  scheduler_config scheduler;
  log_config log;
  supervision_config supervision;
  codec_limits limits;                                  ///< limits on ingested events
  std::chrono::milliseconds drain_timeout{10'000};      ///< graceful stop waits at most this long
  std::vector<amqp_source_config> amqp_sources;         ///< `sources.amqp`
  enrichment_config enrichment;
  state_config state;
  std::vector<target_config> targets;
  twilio_config twilio;
  leads_config leads;                                   ///< since 0.4
  form_leads_config form_leads;                         ///< since 0.4

  /// True when entity-state propagation runs: some AMQP source, target or lookup is
  /// configured. (A source without targets still keeps entity state, readable through
  /// `GET /v1/state/{kind}/{id}`, and feeds the journal for every other subscription.)
  bool propagates_state() const {
    return !amqp_sources.empty() || !targets.empty() || !enrichment.lookups.empty();
  }
};

/// True when lead conversations or form-lead forwarding run (since 0.4).
inline bool runs_leads(const config& cfg) {
  return !cfg.leads.proxy_numbers.empty() || !cfg.form_leads.lead_tracking_url.empty() ||
         !cfg.form_leads.marketing_url.empty();
}

/// A configuration problem, with everything a user needs to fix it.
struct config_error {
  std::string file;        ///< the config file, or "<inline>" for text given in code
  std::string key_path;    ///< e.g. `http.port`; `$` for the whole document
  std::string problem;     ///< what was wrong, e.g. "is 70000, out of range"
  std::string allowed;     ///< what is allowed, e.g. "an integer from 0 to 65535"
  /// "config/switchboard.json: http.port: is 70000, out of range; allowed: an integer ..."
  SWITCHBOARD_API std::string message() const;
};

struct config_result {
  std::optional<config> value;
  config_error error;
  explicit operator bool() const noexcept { return value.has_value(); }
};

/// Parses and validates configuration text. `source_name` names it in errors.
SWITCHBOARD_API config_result parse_config(std::string_view text, std::string source_name = "<inline>");

/// Reads, parses and validates a configuration file.
SWITCHBOARD_API config_result load_config_file(const std::string& path);

/// Applies `HOST:PORT` (e.g. `127.0.0.1:0`, `[::1]:8080`) to `cfg.http`, as `run --listen` does.
SWITCHBOARD_API std::optional<config_error> apply_listen_override(config& cfg, std::string_view host_port);

} // namespace switchboard
