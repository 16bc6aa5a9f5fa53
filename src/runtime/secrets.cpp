#include "runtime/secrets.hpp"

#include <cstdlib>

namespace switchboard::internal {

namespace {
std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}
}  // namespace

jobs::secrets read_secrets() {
  jobs::secrets s;
  s.api_token = env("SWITCHBOARD_API_TOKEN");
  s.twilio_auth_token = env("TWILIO_AUTH_TOKEN");
  s.amqp_password = env("SWITCHBOARD_AMQP_PASSWORD");
  s.failpoint = env("SWITCHBOARD_FAILPOINT");
  return s;
}

}  // namespace switchboard::internal
