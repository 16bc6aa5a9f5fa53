#pragma once

// What a target does with one entity's state: the Twilio object it writes (a Sync document by
// unique name, an item of a Sync map, a TaskRouter worker) and the JSON it writes there. Pure;
// the sync writer calls it for every write, the config check calls `target_problem`.

#include "switchboard/config.hpp"

#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace switchboard::core {

/// The Twilio object one entity's state goes to.
struct target_object {
  target_config::kind type = target_config::kind::sync_document;
  std::string service;    ///< Sync service SID (documents, map items)
  std::string document;   ///< document unique name
  std::string map;        ///< map unique name
  std::string key;        ///< map item key
  std::string workspace;  ///< TaskRouter workspace SID
  std::string worker;     ///< worker SID

  /// One name per object, for logs and per-object caches: "document IS.../lead-42",
  /// "map item IS.../leads/42", "worker WS.../WK...".
  std::string describe() const;
  /// The object Twilio rate-limits the write against: the document, the map (its items count
  /// against it), the worker.
  std::string pace_group() const;
};

/// The write for one state: where, and what.
struct target_write {
  target_object object;
  boost::json::object payload;
};

/// A write, or why there can be none (a template placeholder without a value in the state):
/// such a write is dead at once, retrying cannot help until the state changes.
struct target_mapping {
  std::optional<target_write> write;
  std::string error;
  explicit operator bool() const noexcept { return write.has_value(); }
};

/// Renders `target`'s templates for the entity (`kind`, `id`) and builds the payload: each
/// `fields` pair becomes output field = the value at its dotted path in `state` (null when
/// missing); no fields = the whole state.
target_mapping map_target(const target_config& target, std::string_view kind, std::string_view id,
                          const boost::json::object& state);

/// Only the object of `map_target` (cheaper: no payload).
std::optional<target_object> target_object_of(const target_config& target, std::string_view kind,
                                              std::string_view id, const boost::json::object& state,
                                              std::string* error = nullptr);

/// A problem with a target's configuration, for config checks: the member (relative to the
/// target, e.g. "document", "fields[2]"), what is wrong and what is allowed.
struct target_config_problem {
  std::string key;
  std::string problem;
  std::string allowed;
};

/// Checks one target: members its kind requires, template syntax, fields, limits.
std::optional<target_config_problem> target_problem(const target_config& target);

const char* to_string(target_config::kind k) noexcept;

}  // namespace switchboard::core
