#pragma once

// Lead conversations and form leads (job 2 in DESIGN.md): the keyed services "leads",
// "conversations", "dealers" and "forwards" on the durable engine (engine/durable), the inbound
// Twilio webhook and form-lead intake. All state lives in `<data_dir>/leads.db`.
//
// `prepare` opens leads.db and seeds the configured dealers (a bad data directory fails
// start-up); `children` are the engine's routers; requests arrive through `invoke` and
// `conversations_webhook` (HTTP threads); `drain` answers waiting requests with 202; `stop`
// ends the runners and timers once the actor system is gone.

#include "jobs/job.hpp"
#include "ports/lead_records.hpp"
#include "ports/twilio.hpp"
#include "switchboard/keyed.hpp"

#include <boost/json/value.hpp>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace switchboard::jobs {

/// What the leads job needs from the outside world, made by the composition root (the runtime).
struct lead_adapters {
  /// Opens (creating if needed) the lead database at `path` for one thread; throws
  /// std::runtime_error naming the file.
  std::function<std::unique_ptr<ports::lead_database>(const std::string& path)> open_database;
  /// A Twilio client for one runner; throws std::invalid_argument when it cannot be made (no
  /// credentials).
  std::function<std::unique_ptr<ports::twilio::twilio_api>()> make_twilio;
  /// Whether `signature` (X-Twilio-Signature) is Twilio's, with `auth_token`, of a form-encoded
  /// request to `url` carrying `params`.
  std::function<bool(const std::string& auth_token, const std::string& url,
                     const std::vector<std::pair<std::string, std::string>>& params,
                     const std::string& signature)>
      signed_by_twilio;
};

class leads_job final : public job {
public:
  /// True when `cfg` runs lead conversations or form-lead forwarding.
  static bool configured(const config& cfg) { return runs_leads(cfg); }

  explicit leads_job(lead_adapters outside);
  ~leads_job() override;
  leads_job(const leads_job&) = delete;
  leads_job& operator=(const leads_job&) = delete;

  const char* name() const noexcept override { return "leads"; }
  void prepare(host& h) override;
  std::vector<child_spec> children(const supervision_config& supervision) override;
  void drain() override;
  void stop() override;
  boost::json::value status() const override;
  std::vector<ports::http_route> routes() override;

  /// A keyed request (switchboard/keyed.hpp); 503 unless the runtime is running.
  keyed_answer invoke(const keyed_request& request);
  /// A Twilio Conversations webhook: 403 unless signed for `leads.webhook_url`.
  keyed_answer conversations_webhook(const std::vector<std::pair<std::string, std::string>>& params,
                                     const std::string& signature);

  /// Keyed entity actors in memory now (for figures and benchmarks).
  std::size_t active_entities() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// The lead routes (keyed services under /v1/ and the Twilio webhook); with no job they answer
/// 404 and say how to configure leads.
std::vector<ports::http_route> lead_routes(leads_job* job);

}  // namespace switchboard::jobs
