#pragma once

// The one place that reads the environment: secrets (never in files) and test-only switches.

#include "jobs/job.hpp"

namespace switchboard::internal {

/// The environment variable `name`, "" when unset.
std::string env(const char* name);

/// SWITCHBOARD_API_TOKEN, TWILIO_AUTH_TOKEN, SWITCHBOARD_AMQP_PASSWORD, SWITCHBOARD_FAILPOINT.
jobs::secrets read_secrets();

}  // namespace switchboard::internal
