#include "runtime/secrets.hpp"

#include "switchboard/config.hpp"

#include <cstdlib>

namespace switchboard::internal {

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

jobs::secrets read_secrets() {
  jobs::secrets s;
  s.api_token = env("SWITCHBOARD_API_TOKEN");
  s.twilio_auth_token = env("TWILIO_AUTH_TOKEN");
  s.amqp_password = env("SWITCHBOARD_AMQP_PASSWORD");
  s.failpoint = env("SWITCHBOARD_FAILPOINT");
  return s;
}

}  // namespace switchboard::internal

namespace switchboard {

std::vector<config_error> missing_secrets(const config& cfg) {
  // The parts that make a Twilio client: it needs both credentials before its first call.
  std::string user, why;
  if (!cfg.targets.empty()) {
    user = "targets";
    why = "the sync writers call Twilio with it";
  } else if (!cfg.leads.proxy_numbers.empty()) {
    user = "leads.proxy_numbers";
    why = "lead conversations call Twilio with it";
  }
  std::vector<config_error> out;
  if (user.empty())
    return out;
  const std::pair<const char*, const char*> needed[] = {
      {"TWILIO_ACCOUNT_SID", "AC + 32 hex digits, from the Twilio console or the emulator's"},
      {"TWILIO_AUTH_TOKEN", "the account's auth token, or the emulator's"}};
  for (const auto& [name, value] : needed)
    if (internal::env(name).empty())
      out.push_back({cfg.source.empty() ? "<defaults>" : cfg.source, user,
                     std::string{"needs "} + name + " in the environment (" + why +
                         "), and it is not set: export " + name + "=<" + value +
                         ">; secrets never go in the configuration file",
                     ""});
  return out;
}

}  // namespace switchboard
