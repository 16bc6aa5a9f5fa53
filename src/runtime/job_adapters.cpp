// What each job gets from the outside world: the concrete adapters behind the ports a job
// uses, chosen here, in the composition root, so that jobs name only ports.

#include "runtime/job_adapters.hpp"

#include "adapters/sqlite/lead_store.hpp"
#include "adapters/twilio/client.hpp"
#include "adapters/twilio/signature.hpp"

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

}  // namespace switchboard::runtime_parts
