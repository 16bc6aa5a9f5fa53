#pragma once

// The enrichment database (`enrichment.database`: the CRM's rows that entity states are
// enriched with), as a port: `lookup_database` runs the configured lookups by number, and
// `lookup_config_error` is how opening it names a bad `enrichment.*` key.
// adapters/sqlite/lookup_db implements it over a read-only SQLite file.

#include "switchboard/config.hpp"

#include <boost/json/value.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <stdexcept>
#include <vector>

namespace switchboard::ports {

/// A problem with `enrichment.*` found at start-up; the message names the key and the fix, e.g.
/// "enrichment.lookups[1].sql: no such table: account_managers; ...".
class lookup_config_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// The configured lookups, ready to run. Thread-safe: up to the connections it was opened with
/// run at once (more wait).
class lookup_database {
public:
  virtual ~lookup_database() = default;

  /// Runs lookup number `index` (its position in `enrichment.lookups`) with `params` bound in
  /// order (never spliced into the query), and returns the first row as a JSON object (column
  /// name -> value), or null if there is no row. Throws std::runtime_error naming the lookup
  /// on a database failure.
  virtual boost::json::value query(std::size_t index,
                                   const std::vector<boost::json::value>& params) = 0;
};

/// Opens the database of `enrichment` with `connections` parallel connections and checks every
/// lookup (so a typo fails the start, not the first event); throws lookup_config_error naming
/// the key.
using open_lookup_database = std::function<std::unique_ptr<lookup_database>(
    const enrichment_config& enrichment, std::size_t connections)>;

}  // namespace switchboard::ports
