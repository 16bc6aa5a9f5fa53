#pragma once

/// @file switchboard/publish.hpp
/// What publishing an event reports (since 0.1; its own header since 0.4).

#include "switchboard/export.hpp"

#include <cstdint>
#include <stdexcept>
#include <string>

namespace switchboard {

/// What `runtime::publish` reports once the event is durable.
struct publish_receipt {
  enum class outcome { accepted, duplicate };
  std::string id;  ///< the event's id
  outcome status = outcome::accepted;
  std::uint64_t sequence = 0;  ///< its journal sequence (the original's, for a duplicate)
};

/// Thrown through the `publish` future (and by `publish` itself for invalid events).
class SWITCHBOARD_API publish_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

}  // namespace switchboard
