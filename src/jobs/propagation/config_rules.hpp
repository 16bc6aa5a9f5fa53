#pragma once

// Entity-state propagation's part of the configuration file: `sources.amqp`, `enrichment`,
// `state`, `targets` and `twilio`, read and checked with the schema machinery of core/config.

#include "core/config/config.hpp"

namespace switchboard {

/// Propagation's top-level keys and the checks across them (unique names, one source per
/// queue, lookups need a database, a valid state pattern).
core::config_section propagation_config_section();

}  // namespace switchboard
