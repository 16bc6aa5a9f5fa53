#pragma once

// Reading the configuration file without knowing the jobs: the generic sections (data_dir,
// http, scheduler, log, supervision, limits, drain_timeout_ms) are read here, and each job
// hands in the sections it owns. src/runtime/config_load.cpp names every job's sections and
// defines the public parse_config and load_config_file with them.

#include "core/config/schema.hpp"
#include "switchboard/config.hpp"

#include <boost/json/value.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::core {

/// The top-level keys one part of switchboard owns, and the checks across them.
struct config_section {
  /// Its top-level keys, writing into `cfg`. Their names and nested keys also feed "did you
  /// mean" for unknown keys anywhere in the file.
  std::vector<config_schema::key_rule> (*keys)(config& cfg);
  /// Checks across its keys once the whole file is applied (either key may be a default);
  /// `doc` is the file's top-level object.
  config_schema::check (*cross_check)(const config& cfg, const boost::json::value& doc);
};

/// Parses and validates configuration text with the generic sections and then `job_sections`,
/// in that order: the order "allowed: the keys ..." lists them in and cross checks run in.
config_result parse_config_sections(std::string_view text, std::string source_name,
                                    const std::vector<config_section>& job_sections);

/// The text of a configuration file, or why it cannot be read (missing, a directory, larger
/// than 1 MiB); the error names `path`.
struct config_file_text {
  std::string text;
  std::optional<config_error> error;
};
config_file_text read_config_file(const std::string& path);

}  // namespace switchboard::core
