// What each job gets from the outside world: the concrete adapters behind the ports a job
// uses, chosen here, in the composition root, so that jobs name only ports.

#include "runtime/job_adapters.hpp"

#include "adapters/amqp/source.hpp"
#include "adapters/sqlite/lead_store.hpp"
#include "adapters/sqlite/lookup_db.hpp"
#include "adapters/sqlite/state_store.hpp"
#include "adapters/twilio/client.hpp"
#include "adapters/twilio/signature.hpp"

#include <utility>

namespace switchboard::runtime_parts {

jobs::lead_adapters lead_adapters_for(const config& cfg) {
  jobs::lead_adapters out;
  out.open_database = [](const std::string& path) -> std::unique_ptr<ports::lead_database> {
    return std::make_unique<adapters::sqlite::lead_database>(path);
  };
  out.make_twilio = [options = adapters::twilio::client_options_for(
                         cfg.twilio)]() -> std::unique_ptr<ports::twilio::twilio_api> {
    return std::make_unique<adapters::twilio::client>(options);
  };
  out.signed_by_twilio = &adapters::twilio::validate_twilio_signature;
  return out;
}

jobs::propagation_adapters propagation_adapters_for(const config& cfg) {
  jobs::propagation_adapters out;
  out.open_state_store = [](const std::string& path) -> std::shared_ptr<ports::state_database> {
    return std::make_shared<adapters::sqlite::state_store>(path);
  };
  out.open_lookups = [](const enrichment_config& enrichment,
                        std::size_t connections) -> std::unique_ptr<ports::lookup_database> {
    return std::make_unique<adapters::sqlite::lookup_db>(enrichment, connections);
  };
  out.make_twilio = [options = adapters::twilio::client_options_for(
                         cfg.twilio)]() -> std::unique_ptr<ports::twilio::twilio_api> {
    return std::make_unique<adapters::twilio::client>(options);
  };
  out.open_amqp_source =
      [](const amqp_source_config& source, const std::string& password, const codec_limits& limits,
         ports::publish_fn publish,
         std::chrono::milliseconds stop_timeout) -> std::unique_ptr<ports::event_source> {
    return std::make_unique<adapters::amqp::amqp_source>(source, password, limits,
                                                         std::move(publish), stop_timeout);
  };
  return out;
}

}  // namespace switchboard::runtime_parts
