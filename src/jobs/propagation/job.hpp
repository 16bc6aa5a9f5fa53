#pragma once

// Entity-state propagation (job 1 in DESIGN.md): the AMQP sources that feed the journal, the
// state pipeline behind the durable "switchboard.state" subscription (merge, enrich from SQL,
// store), and one sync writer per target. `prepare` opens state.db and the lookup database (a
// bad configuration fails start-up naming the key) and subscribes the pipeline;
// `start_intake` connects the sources; `stop_intake` ends ingest while the journal still
// confirms; `stop` ends rebuilds and the writers' I/O once the actor system is gone.

#include "jobs/job.hpp"
#include "switchboard/propagation.hpp"

#include <boost/json/value.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace switchboard::jobs {

class propagation_job final : public job {
public:
  /// The name of the durable subscription that feeds the state pipeline.
  static constexpr const char* subscription_name = "switchboard.state";

  /// True when `cfg` asks for it (see `config::propagates_state`).
  static bool configured(const config& cfg) { return cfg.propagates_state(); }

  propagation_job();
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
