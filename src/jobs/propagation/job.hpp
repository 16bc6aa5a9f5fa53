#pragma once

// Entity-state propagation (job 1 in DESIGN.md): the AMQP sources that feed the journal, the
// state pipeline behind the durable "switchboard.state" subscription (merge, enrich from SQL,
// store), and one sync writer per target. `prepare` opens state.db and the lookup database (a
// bad configuration fails start-up naming the key) and subscribes the pipeline;
// `start_intake` connects the sources; `stop_intake` ends ingest while the journal still
// confirms; `stop` ends rebuilds and the writers' I/O once the actor system is gone.

#include "jobs/job.hpp"
#include "ports/enrichment.hpp"
#include "ports/entity_states.hpp"
#include "ports/event_source.hpp"
#include "ports/twilio.hpp"
#include "switchboard/propagation.hpp"

#include <boost/json/value.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace switchboard::jobs {

/// What the propagation job needs from the outside world, made by the composition root (the
/// runtime).
struct propagation_adapters {
  /// Opens (creating if needed) the entity state store at `path`, shared by the pipeline and
  /// the writers; throws std::runtime_error naming the file.
  std::function<std::shared_ptr<ports::state_database>(const std::string& path)> open_state_store;
  /// Opens the enrichment database (when lookups are configured).
  ports::open_lookup_database open_lookups;
  /// A Twilio client for one sync writer I/O lane; throws std::invalid_argument when it cannot
  /// be made (no credentials).
  std::function<std::unique_ptr<ports::twilio::twilio_api>()> make_twilio;
  /// A source for one `sources.amqp` entry, not started; `password` is
  /// SWITCHBOARD_AMQP_PASSWORD's, `stop_timeout` bounds how long its stop waits for the journal.
  std::function<std::unique_ptr<ports::event_source>(
      const amqp_source_config& source, const std::string& password, const codec_limits& limits,
      ports::publish_fn publish, std::chrono::milliseconds stop_timeout)>
      open_amqp_source;
};

class propagation_job final : public job {
public:
  /// The name of the durable subscription that feeds the state pipeline.
  static constexpr const char* subscription_name = "switchboard.state";

  /// True when `cfg` asks for it (see `config::propagates_state`).
  static bool configured(const config& cfg) { return cfg.propagates_state(); }

  explicit propagation_job(propagation_adapters outside);
  ~propagation_job() override;
  propagation_job(const propagation_job&) = delete;
  propagation_job& operator=(const propagation_job&) = delete;

  const char* name() const noexcept override { return "propagation"; }
  void prepare(host& h) override;
  std::vector<child_spec> children(const supervision_config& supervision) override;
  void start_intake() override;
  void stop_intake() override;
  void stop() override;
  boost::json::value status() const override;
  std::vector<ports::http_route> routes() override;

  std::string rebuild(const std::string& kind, const std::string& id);
  std::optional<rebuild_progress> rebuild_status(const std::string& id) const;
  std::optional<boost::json::value> entity_state(const std::string& kind,
                                                 const std::string& id) const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// The entity-state routes (`/v1/rebuild`, `/v1/state/...`, `/v1/propagation`); with no job
/// they answer 404 and say how to configure propagation.
std::vector<ports::http_route> propagation_routes(propagation_job* job);

}  // namespace switchboard::jobs
