#pragma once

// The adapters each job is given (see job_adapters.cpp).

#include "jobs/leads/job.hpp"
#include "jobs/propagation/job.hpp"
#include "switchboard/config.hpp"

namespace switchboard::runtime_parts {

/// leads.db in SQLite, Twilio over HTTP (cfg.twilio; credentials from the environment), and
/// Twilio's webhook signatures.
jobs::lead_adapters lead_adapters_for(const config& cfg);

/// state.db and the enrichment database in SQLite, Twilio over HTTP for the sync writers
/// (cfg.twilio; credentials from the environment), and RabbitMQ sources.
jobs::propagation_adapters propagation_adapters_for(const config& cfg);

}  // namespace switchboard::runtime_parts
