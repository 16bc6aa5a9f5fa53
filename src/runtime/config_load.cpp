// The public parse_config and load_config_file: the one place that names every job's
// configuration sections (core reads the generic ones and may not know the jobs).

#include "core/config/config.hpp"
#include "jobs/leads/config_rules.hpp"
#include "jobs/propagation/config_rules.hpp"
#include "switchboard/config.hpp"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchboard {

namespace {

/// In the order their keys follow the generic ones in "allowed: the keys ...".
const std::vector<core::config_section>& job_sections() {
  static const std::vector<core::config_section> sections{propagation_config_section(),
                                                          leads_config_section()};
  return sections;
}

}  // namespace

config_result parse_config(std::string_view text, std::string source_name) {
  return core::parse_config_sections(text, std::move(source_name), job_sections());
}

config_result load_config_file(const std::string& path) {
  auto file = core::read_config_file(path);
  if (file.error) {
    config_result result;
    result.error = std::move(*file.error);
    return result;
  }
  return parse_config(file.text, path);  // which sets config::source to the path
}

}  // namespace switchboard
