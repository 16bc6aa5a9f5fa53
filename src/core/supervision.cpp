#include "switchboard/supervision.hpp"

#include "core/policy/backoff.hpp"

#include <algorithm>

namespace switchboard {

std::string_view to_string(restart_strategy s) noexcept {
  switch (s) {
    case restart_strategy::one_for_one: return "one_for_one";
    case restart_strategy::one_for_all: return "one_for_all";
    case restart_strategy::rest_for_one: return "rest_for_one";
  }
  return "unknown";
}

std::string_view to_string(restart_policy p) noexcept {
  switch (p) {
    case restart_policy::permanent: return "permanent";
    case restart_policy::transient: return "transient";
    case restart_policy::temporary: return "temporary";
  }
  return "unknown";
}

bool should_restart(restart_policy policy, bool abnormal_exit) noexcept {
  switch (policy) {
    case restart_policy::permanent: return true;
    case restart_policy::transient: return abnormal_exit;
    case restart_policy::temporary: return false;
  }
  return false;
}

std::vector<std::size_t> children_to_restart(restart_strategy strategy, std::size_t failed,
                                             std::size_t child_count) {
  std::vector<std::size_t> result;
  if (failed >= child_count)
    return result;
  std::size_t first = failed;
  std::size_t last = failed + 1;
  switch (strategy) {
    case restart_strategy::one_for_one: break;
    case restart_strategy::one_for_all:
      first = 0;
      last = child_count;
      break;
    case restart_strategy::rest_for_one: last = child_count; break;
  }
  for (auto i = first; i < last; ++i)
    result.push_back(i);
  return result;
}

void restart_window::expire(time_point now) {
  // A restart exactly `within` ago has left the window: "N restarts in T" is half-open.
  while (!restarts_.empty() && now - restarts_.front() >= intensity_.within)
    restarts_.pop_front();
}

bool restart_window::try_record(time_point now) {
  expire(now);
  if (restarts_.size() >= intensity_.max_restarts)
    return false;
  restarts_.push_back(now);
  return true;
}

std::size_t restart_window::recent(time_point now) {
  expire(now);
  return restarts_.size();
}

std::chrono::milliseconds backoff_delay(const restart_backoff& backoff, std::size_t nth) noexcept {
  if (nth == 0)
    return std::chrono::milliseconds{0};
  // No jitter, as before: restarts come at the exact delays observers and tests expect. A cap
  // below `initial` never shortens the first delay.
  return core::doubling_delay(backoff.initial, std::max(backoff.max, backoff.initial), nth);
}

}  // namespace switchboard
