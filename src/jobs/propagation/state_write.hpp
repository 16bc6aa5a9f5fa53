#pragma once

// "Set this Twilio object to this state": the write a sync writer makes for one entity, with
// the calls Twilio needs around it (create what is missing, re-read on a stale revision), so
// that repeating it is harmless. BLOCKS (it makes client calls): I/O threads only.
//
//   document: update by unique name; 404 -> create with that unique name; 409/54301 (created
//             meanwhile) -> update.
//   map item: update; 404 item -> create the item; 404 map -> create the map (409 = it exists
//             now) and go on; 409/54208 (item created meanwhile) -> update.
//   worker:   replace its attributes; 404 -> terminal (switchboard never creates workers).
// Each update carries If-Match with the revision last seen for the object (from `seen`); a 412
// re-reads the object and writes again. Rounds are bounded; what is left is a `backoff`.
//
// The sync writer's  reconciliation policy, over the port (ports/twilio.hpp), whose calls never
// retry by themselves.

#include "core/target_mapping.hpp"
#include "core/write_schedule.hpp"
#include "ports/twilio.hpp"

#include <boost/json/object.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace switchboard::actors {

/// The revision last seen per object (`target_object::describe()`), owned by one I/O thread.
class seen_revisions {
public:
  explicit seen_revisions(std::size_t capacity = 100'000) : capacity_(capacity) {}
  const std::string* find(const std::string& object) const;
  void remember(const std::string& object, std::string revision);
  void forget(const std::string& object) { revisions_.erase(object); }

private:
  std::size_t capacity_;
  std::unordered_map<std::string, std::string> revisions_;
};

/// What one state write came to, and what it cost.
struct state_write_result {
  core::write_result result;     ///< ok, retry_after (429/503), backoff, give_up (terminal)
  std::string error;             ///< failures: the last call's message, with Twilio's code
  std::size_t writes = 0;        ///< write requests sent (POSTs: updates, creates)
  std::size_t rate_limited = 0;  ///< 429 answers
  std::size_t conflicts = 0;     ///< 409/412 answers
};

state_write_result write_state(ports::twilio::twilio_api& twilio, const core::target_object& object,
                               const boost::json::object& payload, seen_revisions& seen);

}  // namespace switchboard::actors
