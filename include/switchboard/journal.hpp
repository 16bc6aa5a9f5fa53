#pragma once

/// @file switchboard/journal.hpp
/// Reading the journal back (since 0.4): a page of events, and apart the rows among them that
/// cannot be decoded, so that a reader can name them and page past them.

#include "switchboard/event.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace switchboard {

/// A journal row that cannot be decoded into an event: written by a switchboard that still
/// accepted numbers beyond double range (stored as `Infinity`, which is not JSON), or damaged
/// on disk. What the row's own columns say is kept, so that it can be named and matched.
struct unreadable_event {
  std::uint64_t sequence = 0;
  std::string source;
  std::string id;
  std::string type;
  std::string entity_kind;
  std::string entity_id;
  std::string reason;  ///< why it cannot be decoded; names the sequence
};

/// Journal rows after a sequence, in order. Rows of both kinds count against a read's limit.
/// Guarantee: a subscription never stops at an unreadable row; each subscription whose
/// pattern matches its type parks it as a dead letter (reason `unreadable`) and goes on.
struct journal_page {
  std::vector<event> events;                 ///< `sequence` set
  std::vector<unreadable_event> unreadable;  ///< the rows that cannot be decoded

  /// The highest sequence on the page, 0 if it is empty: read the next page after it.
  std::uint64_t last_sequence() const noexcept {
    std::uint64_t last = events.empty() ? 0 : events.back().sequence.value_or(0);
    if (!unreadable.empty() && unreadable.back().sequence > last)
      last = unreadable.back().sequence;
    return last;
  }
};

}  // namespace switchboard
