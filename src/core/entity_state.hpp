#pragma once

// The state pipeline's decisions for one event against one entity's stored state. Pure: no
// I/O, no clock, no threads (src/actors/state_pipeline runs the effects).

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace switchboard::core {

/// Where an entity's stored state stands: what the last applied event carried.
struct entity_position {
  std::optional<std::int64_t> version;  ///< entityversion of the last applied event, if any
  std::uint64_t sequence = 0;           ///< journal sequence of the last applied event
};

enum class entity_decision {
  apply,            ///< newer than the stored state: merge and store
  already_applied,  ///< the same version (or, unversioned, the same sequence): a redelivery
  stale,            ///< older than the stored state: a newer one must never be overwritten
};

/// Decides an event (its `entityversion`, if any, and its journal `sequence`) against the
/// stored position (none = the entity is new):
/// - with a version: apply if the stored version is absent or lower; equal = already applied;
///   lower = stale;
/// - without a version: journal order decides: apply if `sequence` is above the stored
///   sequence; equal = already applied; lower = stale.
/// The state store enforces the same rule in SQL (state_store::put).
entity_decision decide(const std::optional<entity_position>& stored,
                       std::optional<std::uint64_t> event_version, std::uint64_t event_sequence);

const char* to_string(entity_decision d) noexcept;

/// The merge rule: each top-level member of the event's `data` replaces the member of that
/// name in `base` (or is added); other members of `base` stay. Replacement is shallow: a
/// nested object in `data` replaces the whole nested object, and a member set to null is
/// stored as null (it is not removed). An event therefore carries the fields that changed.
boost::json::object merge_base(const boost::json::object& base, const boost::json::object& data);

/// The values a lookup binds, read at dotted `paths` in `from`; nothing if any is missing,
/// null, an object or an array (then the lookup's `into` is null and no query runs).
std::optional<std::vector<boost::json::value>> lookup_params(const boost::json::object& from,
                                                             const std::vector<std::string>& paths);

}  // namespace switchboard::core
