#pragma once

// The enrichment database (`enrichment.database`, a SQLite file standing in for the CRM's),
// opened read-only. Every lookup's SQL is prepared and checked at start-up, so a typo fails
// the start, not the first event. Queries bind parameters (never splice them into SQL).
//
// Thread-safe: a small pool of read-only connections, each with every lookup prepared; a
// query takes a free connection (waiting if all are busy), so up to `connections` queries run
// in parallel (state lanes and a rebuild).

#include "ports/enrichment.hpp"
#include "switchboard/config.hpp"

#include <boost/json/value.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace switchboard::adapters::sqlite {

// The port's error (ports/enrichment.hpp); the name stays usable here.
using ports::lookup_config_error;

class lookup_db final : public ports::lookup_database {
public:
  /// Opens `cfg.database` read-only and prepares every lookup. Throws lookup_config_error if the
  /// file cannot be opened, or a lookup's SQL does not compile, is not one read-only statement
  /// returning columns (a SELECT), or has a number of `?` placeholders other than its params.
  explicit lookup_db(const enrichment_config& cfg, std::size_t connections = 2);
  ~lookup_db() override;
  lookup_db(const lookup_db&) = delete;
  lookup_db& operator=(const lookup_db&) = delete;

  /// Runs lookup number `index` (its position in `enrichment.lookups`) with `params` bound in
  /// order, and returns the first row as a JSON object (column name -> integer, real, text or
  /// null; blobs as base64 text), or null if there is no row. Throws std::runtime_error naming
  /// the lookup on a SQLite failure (e.g. the database is locked past the busy timeout).
  boost::json::value query(std::size_t index,
                           const std::vector<boost::json::value>& params) override;

  std::size_t lookup_count() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace switchboard::adapters::sqlite
