#pragma once

// Lead conversations' and form leads' part of the configuration file: `leads` and
// `form_leads`, read and checked with the schema machinery of core/config.

#include "core/config/config.hpp"

namespace switchboard {

/// The lead sections' top-level keys and the checks across them (the proxy pool, unique
/// dealer ids, which numbers are whose, backoff order).
core::config_section leads_config_section();

}  // namespace switchboard
