#pragma once

/// @file switchboard/runtime.hpp
/// `switchboard::runtime`: the embedding API (since 0.1). The `switchboard` daemon is just
/// another host of this class.
///
/// Guarantees (since 0.2, the durable journal):
/// - `publish` completes its future only after the event is durable in the journal (the
///   SQLite transaction holding it is committed and fsync'd), or fails with the reason. An
///   event whose (source, id) is already in the journal completes as `duplicate` and is
///   stored once.
/// - Delivery is at least once: every subscription sees every matching event committed
///   after its starting point, in journal order per entity (events of one entity kind+id
///   always go to the same partition). A named (durable) subscription keeps a checkpoint in
///   the journal; after a crash or restart it gets every event past its checkpoint again, so
///   handlers must be idempotent (deduplicate by `sequence` or by `id`).
/// - A handler that throws is retried with exponential backoff and jitter, up to its retry
///   budget; `terminal_error` skips the retries. Then the event is parked as a dead letter
///   and the subscription goes on. Dead letters can be listed, retried and discarded.
/// - A journal row that cannot be decoded (since 0.4; e.g. `Infinity` stored by an older
///   version) never stops a subscription: each subscription whose pattern matches the row's
///   type parks it as a dead letter with reason `unreadable` and goes on.
/// - Each subscription has bounded credit (`max_in_flight`): a slow subscription falls
///   behind and catches up from the journal; it neither grows memory nor slows the others.
/// - `stop()` drains: new publishes are refused, queued appends are written, and
///   subscriptions finish what was committed (up to the drain timeout).

#include "switchboard/config.hpp"
#include "switchboard/dead_letters.hpp"
#include "switchboard/event.hpp"
#include "switchboard/export.hpp"
#include "switchboard/journal.hpp"
#include "switchboard/keyed.hpp"
#include "switchboard/propagation.hpp"
#include "switchboard/publish.hpp"
#include "switchboard/subscription.hpp"

#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace switchboard {

namespace internal {
struct runtime_access;  // switchboard's own tests reach the actor system through this
}

/// How a runtime ended.
struct run_outcome {
  bool failed = false;  ///< true if the root supervisor gave up
  std::string reason;   ///< why, when failed
};

class SWITCHBOARD_API runtime {
public:
  /// Builds a runtime from a validated configuration. Nothing runs until `start()`.
  explicit runtime(config cfg);

  /// Stops (with drain) if still running.
  ~runtime();

  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  /// Starts the actor system, the supervision tree and (if enabled) the HTTP server.
  /// Throws std::runtime_error with a clear message if anything cannot start (e.g. the
  /// listen address is in use, the data directory cannot be created, or another runtime, in
  /// this process or another, holds the data directory: one runtime per `data_dir`, locked by
  /// `DATA_DIR/switchboard.lock` from `start()` until `stop()` returns; since 0.4).
  void start();

  /// Publishes an event: the future completes once it is durable in the journal. Missing
  /// `time` is set to now. Invalid events make the future fail with `publish_error` naming
  /// the field; so does a storage failure (e.g. disk full: nothing was stored, try again)
  /// and a publish after `stop()` began.
  std::future<publish_receipt> publish(event ev);

  /// Like `publish`, but calls `done` (on the journal's writer thread; it must not block)
  /// instead of completing a future: for ingest paths that answer many events at once.
  /// `done` receives the receipt, or an error message when the event was not stored.
  void publish_async(event ev,
                     std::function<void(const publish_receipt*, const std::string& error)> done);

  /// Subscribes `handler` to events whose type matches `pattern`: an exact type
  /// (`application.status_changed`), a prefix wildcard (`application.*`, which matches
  /// `application.created` and `application.status.changed`) or `*` for all. Ephemeral: it
  /// sees events committed after this call. Throws std::invalid_argument for malformed
  /// patterns.
  subscription subscribe(const std::string& pattern, event_handler handler);

  /// `subscribe`, `unsubscribe` and `replay` wait for the supervision tree to answer: call
  /// them from host threads, never from inside an event handler (a handler runs on a
  /// scheduler thread, and blocking it there can starve the actors that must answer).
  ///
  /// Subscribes with options. A named subscription resumes from its checkpoint (or the
  /// journal's start the first time). Throws std::invalid_argument for bad options or a name
  /// already subscribed.
  subscription subscribe(subscription_options options, event_handler handler);

  /// Removes a subscription; events already handed to it are still handled.
  void unsubscribe(const subscription& sub);

  /// Restarts the named subscription from just after `sequence` (0 = from the start).
  /// Throws std::invalid_argument for an unknown name.
  void replay(const std::string& name, std::uint64_t after_sequence);

  /// Restarts the named subscription from the first event whose time is at or after
  /// `rfc3339`. Throws std::invalid_argument for an unknown name or a malformed time.
  void replay_from_time(const std::string& name, const std::string& rfc3339);

  /// Up to `limit` journaled events with sequence > `after`, in order, `sequence` set.
  /// Throws std::runtime_error naming the sequence if one of them cannot be decoded (see
  /// `read_page`).
  std::vector<event> read(std::uint64_t after, std::size_t limit) const;

  /// Up to `limit` journal rows with sequence > `after` (since 0.4): the events, and apart the
  /// rows that cannot be decoded (their sequence, what their columns say, why), so that a
  /// reader pages past them; the next page starts after `last_sequence()` of this one.
  journal_page read_page(std::uint64_t after, std::size_t limit) const;

  /// The highest journal sequence committed so far.
  std::uint64_t last_sequence() const;

  /// Dead letters, oldest first (of one consumer if given), with id > `after_id` (a page at a
  /// time: pass the last id of the page before; since 0.5).
  std::vector<dead_letter_info> dead_letters(const std::string& consumer = {},
                                             std::size_t limit = 100,
                                             std::uint64_t after_id = 0) const;

  /// Hands a dead letter to its (running) subscription again and removes it; the event is
  /// parked anew if it fails again. Says why not if there is no such dead letter, its
  /// subscription is not running here, or the subscription would skip the event without
  /// effect (the entity-state pipeline, for an event older than the entity's stored state):
  /// then the dead letter stays. A dead letter whose journal row cannot be decoded (reason
  /// `unreadable`) has nothing to hand on: it answers `would_skip` and stays; discard it.
  dead_letter_retry retry_dead_letter(std::uint64_t id);

  /// Removes a dead letter for good. False if there is none with this id.
  bool discard_dead_letter(std::uint64_t id);

  /// Blocks until `request_stop()` is called or the runtime fails, and says which.
  run_outcome wait();

  /// Asks `wait()` to return; safe to call from any thread, e.g. a signal-watching one.
  void request_stop();

  /// Drains and stops. Idempotent. Returns how it ended.
  run_outcome stop();

  // --- entity-state propagation (since 0.3; needs `sources.amqp`, `targets` or
  // `enrichment.lookups`) ---------

  /// True when this runtime propagates entity state (see `config::propagates_state`).
  bool propagates_state() const;

  /// Starts a rebuild of all entities, of one kind, or of one entity (`kind` and `id`), and
  /// returns its id at once. Throws std::logic_error when state propagation is not configured.
  std::string rebuild(const std::string& kind = {}, const std::string& id = {});

  /// The progress of a rebuild, if there is one with this id.
  std::optional<rebuild_progress> rebuild_status(const std::string& id) const;

  /// The stored state of one entity as JSON (kind, id, version, revision, sequence, state,
  /// updated_at), or nothing if it has none.
  std::optional<boost::json::value> entity_state(const std::string& kind,
                                                 const std::string& id) const;

  /// Figures of the propagation: per AMQP source, per target (pending, written, dead, writes,
  /// 429s, ...) and the lookup cache.
  boost::json::value propagation_status() const;

  // --- lead conversations and form leads (since 0.4; need `leads.proxy_numbers` or a
  // `form_leads` URL) ----------------------------------------------------------------------

  /// True when this runtime runs lead conversations or form-lead forwarding.
  bool runs_leads() const;

  /// Runs a keyed request (see `keyed_request`). Guarantees: a POST that runs a handler is
  /// recorded durably before it is answered (2xx or 202 means it will run to its end, also
  /// across crashes); each step with an external effect runs at most once to completion
  /// (outcomes unknown after a crash are looked up before retrying); one key runs one request
  /// at a time. Answers 404 with a hint when leads are not configured.
  keyed_answer invoke(const keyed_request& request);

  /// A Twilio Conversations webhook (form parameters and the X-Twilio-Signature header):
  /// 403 unless the signature is Twilio's for `leads.webhook_url`; replay-safe by MessageSid.
  keyed_answer conversations_webhook(const std::vector<std::pair<std::string, std::string>>& params,
                                     const std::string& signature);

  /// Figures of the lead services: invocations by outcome, keyed actors in memory.
  boost::json::value leads_status() const;

  /// `HOST:PORT` the HTTP server listens on (the real port when configured as 0), or "" when
  /// the HTTP server is disabled or not started.
  std::string listen_address() const;

  /// The configuration the runtime runs with.
  const config& configuration() const;

private:
  friend struct internal::runtime_access;
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace switchboard
