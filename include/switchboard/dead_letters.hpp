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

}  // namespace switchboard
