#pragma once

// Entity-state propagation as the runtime hosts it (job 1 in DESIGN.md): the AMQP sources that
// feed the journal, the state pipeline behind the durable "switchboard.state" subscription
// (merge, enrich from SQL, store), and one sync writer per target. The runtime calls these in
// this order: construct (before the actor system: opens state.db and the lookup database, so a
// bad configuration fails start-up), `handler()` for the subscription, `attach()` once the
// supervision tree runs, `start_sources()` once the runtime accepts publishes; on stop,
// `stop_sources()` first (ingest ends while the journal still confirms), then the bus drains,
// then `stop()` after the actor system is gone.

#include "switchboard/config.hpp"
#include "protocols/messages.hpp"
#include "switchboard/runtime.hpp"

#include <boost/json/value.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace switchboard {

class propagation {
public:
  /// The name of the durable subscription that feeds the state pipeline.
  static constexpr const char* subscription_name = "switchboard.state";

  /// Opens `<data_dir>/state.db`, the lookup database (checking every lookup's SQL) and makes
  /// one writer per target. Throws std::runtime_error with a message naming the cause.
  explicit propagation(const config& cfg);
  ~propagation();
  propagation(const propagation&) = delete;
  propagation& operator=(const propagation&) = delete;

  /// Options and handler of the state subscription.
  subscription_options subscription() const;
  event_handler handler();

  /// The writers' supervisor, as a child of the runtime's root supervisor.
  child_spec writers_child(const supervision_config& supervision) const;

  using publish_fn = std::function<void(event, std::function<void(bool durable, const std::string& error)>)>;
  /// Connects the AMQP sources; they hand events to `publish`.
  void start_sources(publish_fn publish);
  /// Stops consuming and waits for the journal to confirm what was handed on.
  void stop_sources();
  /// Stops rebuilds and the writers' I/O. Call after the actor system is gone.
  void stop();

  std::string rebuild(const std::string& kind, const std::string& id);
  std::optional<rebuild_progress> rebuild_status(const std::string& id) const;
  std::optional<boost::json::value> entity_state(const std::string& kind, const std::string& id) const;
  boost::json::value status() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace switchboard
