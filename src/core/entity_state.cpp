#include "core/entity_state.hpp"

#include "core/json_path.hpp"

#include <limits>

namespace switchboard::core {

entity_decision decide(const std::optional<entity_position>& stored,
                       std::optional<std::uint64_t> event_version, std::uint64_t event_sequence) {
  if (!stored)
    return entity_decision::apply;
  if (event_version) {
    if (!stored->version)
      return entity_decision::apply;
    // Stored versions are SQLite integers (signed); a larger one is clamped like the store does.
    constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    const auto v = static_cast<std::int64_t>(*event_version > max ? max : *event_version);
    if (v > *stored->version)
      return entity_decision::apply;
    return v == *stored->version ? entity_decision::already_applied : entity_decision::stale;
  }
  if (event_sequence > stored->sequence)
    return entity_decision::apply;
  return event_sequence == stored->sequence ? entity_decision::already_applied
                                            : entity_decision::stale;
}

const char* to_string(entity_decision d) noexcept {
  switch (d) {
    case entity_decision::apply: return "apply";
    case entity_decision::already_applied: return "already applied";
    case entity_decision::stale: return "stale";
  }
  return "?";
}

boost::json::object merge_base(const boost::json::object& base, const boost::json::object& data) {
  boost::json::object merged = base;
  for (const auto& member : data)
    merged[member.key()] = member.value();
  return merged;
}

std::optional<std::vector<boost::json::value>> lookup_params(
    const boost::json::object& from, const std::vector<std::string>& paths) {
  std::vector<boost::json::value> out;
  out.reserve(paths.size());
  for (const auto& path : paths) {
    // find_path walks a json::value; take the first step here rather than copy `from` into one.
    const auto dot = path.find('.');
    const auto first = from.find(std::string_view(path).substr(0, dot));
    const boost::json::value* v =
        first == from.end() ? nullptr
        : dot == std::string::npos
            ? &first->value()
            : find_path(first->value(), std::string_view(path).substr(dot + 1));
    if (v == nullptr || v->is_null() || v->is_object() || v->is_array())
      return std::nullopt;
    out.push_back(*v);
  }
  return out;
}

}  // namespace switchboard::core
