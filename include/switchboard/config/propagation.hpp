#pragma once

/// @file switchboard/config/propagation.hpp
/// The configuration of entity-state propagation (since 0.3): AMQP sources, SQL enrichment,
/// entity state and the Twilio targets it is written to. Included by switchboard/config.hpp.

#include "switchboard/export.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace switchboard {

/// How one MassTransit message type becomes a switchboard event.
struct amqp_message_mapping {
  /// Matched against every URN in the envelope's `messageType`, e.g.
  /// "urn:message:Crm.Events:ApplicationStatusChanged".
  std::string message_type;
  std::string event_type;       ///< the switchboard event `type`, e.g. "application.status_changed"
  std::string entity_kind;      ///< e.g. "application"
  std::string entity_id_field;  ///< dotted path in `message` holding the entity id
  std::string entity_version_field;  ///< dotted path holding the version; "" = none
};

/// A RabbitMQ queue consumed as a source of events. The password comes from the environment
/// variable `SWITCHBOARD_AMQP_PASSWORD` (else "guest").
struct amqp_source_config {
  std::string name;  ///< unique; names the source in logs and stats
  std::string host = "127.0.0.1";
  std::uint16_t port = 5672;
  std::string vhost = "/";
  std::string username = "guest";
  std::string queue;                   ///< durable queue to consume
  std::vector<std::string> exchanges;  ///< durable fan-out exchanges bound to `queue`
  bool declare = true;                 ///< declare the topology; false: check it exists
  std::string error_queue;             ///< undecodable messages go here; "" = `queue` + "_error"
  std::uint16_t prefetch = 1000;  ///< unacknowledged deliveries at most (acks wait for the commit)
  std::chrono::seconds heartbeat{10};
  std::chrono::milliseconds reconnect_initial{100};  ///< first delay after a lost connection
  std::chrono::milliseconds reconnect_max{5'000};    ///< cap of the doubling delay
  std::string event_source;  ///< CloudEvents `source` of mapped events; "" = "amqp/" + queue
  /// Message types that are mapped; others go to the error queue.
  std::vector<amqp_message_mapping> messages;
};

/// One SQL lookup that enriches an entity's state.
struct lookup_config {
  std::string name;                 ///< unique; names the cache and logs
  std::string entity_kind;          ///< the entities it enriches
  std::string sql;                  ///< one SELECT with `?` placeholders (bound, never spliced)
  std::vector<std::string> params;  ///< dotted state paths bound to the placeholders, in order
  std::string into;            ///< state field receiving the first row as an object (null if none)
  std::string invalidated_by;  ///< event type announcing a change of a looked-up row; "" = none
  /// Dotted paths in that event's data giving the params.
  std::vector<std::string> invalidation_keys;
};

/// Cache-aside enrichment from a SQL database (a SQLite file standing in for the CRM's).
struct enrichment_config {
  std::string database;  ///< SQLite file, opened read-only; "" = no lookups
  std::chrono::milliseconds cache_ttl{60'000};
  std::size_t cache_max_entries = 10'000;
  std::vector<lookup_config> lookups;
};

/// Where latest entity states are written.
struct target_config {
  enum class kind { sync_document, sync_map_item, taskrouter_worker };
  std::string name;  ///< unique
  kind type = kind::sync_document;
  std::string entity_kind;   ///< the entities written to this target
  std::string service;       ///< Sync service SID (documents, map items)
  std::string document;      ///< document unique name template, e.g. "application-{id}"
  std::string map;           ///< map unique name (map items)
  std::string key = "{id}";  ///< map item key template
  std::string workspace;     ///< TaskRouter workspace SID (workers)
  std::string worker;        ///< worker SID template, e.g. "{workerSid}"
  /// Output field -> dotted state path, in order; empty = the whole state. Templates use
  /// `{id}`, `{kind}` and `{dotted.state.path}`.
  std::vector<std::pair<std::string, std::string>> fields;
  std::size_t concurrency = 4;                 ///< parallel requests (never two for one object)
  std::chrono::milliseconds min_interval{50};  ///< per object: Twilio Sync allows 20 writes/s
  std::size_t max_attempts = 10;               ///< then the write is dead-lettered
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{10'000};
};

/// The Twilio REST endpoint writers use; credentials come from TWILIO_ACCOUNT_SID and
/// TWILIO_AUTH_TOKEN.
struct twilio_config {
  std::string base_url;  ///< "http://127.0.0.1:PORT" for the emulator; "" = Twilio's hosts
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds read_timeout{15'000};
};

/// Latest entity state (view data in `<data_dir>/state.db`), fed by a durable subscription.
struct state_config {
  std::string pattern = "*";   ///< event types that update entity state
  std::size_t partitions = 2;  ///< parallel lanes; one entity always uses the same lane
};

}  // namespace switchboard
