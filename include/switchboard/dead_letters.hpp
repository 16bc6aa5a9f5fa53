#pragma once

/// @file switchboard/dead_letters.hpp
/// Dead letters: events a subscription parked after its retry budget or a terminal error
/// (since 0.2; its own header since 0.4). They can be listed, retried and discarded.

#include <cstdint>
#include <string>

namespace switchboard {

/// A parked event.
struct dead_letter_info {
  std::uint64_t id = 0;
  std::string consumer;
  std::uint64_t sequence = 0;
  std::string reason;  ///< "terminal error", "retries exhausted" or (since 0.4) "unreadable":
                       ///< the journal row cannot be decoded; `last_error` says why
  std::uint32_t attempts = 0;
  std::string last_error;
  std::string parked_at;
};

/// What `runtime::retry_dead_letter` did (since 0.4; a bool before). True only if `retried`.
struct dead_letter_retry {
  enum class outcome {
    retried,      ///< handed to its subscription again and removed; parked anew if it fails
    not_found,    ///< no such dead letter (retried or discarded meanwhile), or its event is
                  ///< not in the journal
    not_running,  ///< its subscription is not running in this process
    would_skip,   ///< its subscription would skip the event without effect (e.g. the entity
                  ///< already holds a newer version): nothing was retried, the dead letter stays
  };
  outcome status = outcome::not_found;
  std::string reason;  ///< for every outcome but `retried`: why, and what to do

  explicit operator bool() const noexcept { return status == outcome::retried; }
};

}  // namespace switchboard
