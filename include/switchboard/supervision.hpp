#pragma once

/// @file switchboard/supervision.hpp
/// Supervision policies (since 0.1): restart strategies, restart intensity and backoff, as
/// pure logic. The supervisor actor (src/actors/supervisor.hpp) executes these decisions;
/// keeping them here lets them be tested without an actor system.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string_view>
#include <vector>
#include "switchboard/export.hpp"

namespace switchboard {

/// Which children a supervisor restarts when one fails.
enum class restart_strategy {
  one_for_one,   ///< only the failed child
  one_for_all,   ///< every child: the others are stopped (reverse start order), all restart
  rest_for_one,  ///< the failed child and those started after it
};

/// When a child that ended is restarted.
enum class restart_policy {
  permanent,  ///< always, even after a normal exit
  transient,  ///< only after an abnormal exit
  temporary,  ///< never; the child is forgotten when it ends
};

/// At most `max_restarts` restarts within `within`; one more and the supervisor gives up:
/// it stops all its children and exits, which its own parent sees as a child failure.
struct restart_intensity {
  std::size_t max_restarts = 5;
  std::chrono::milliseconds within{10'000};
};

/// Delay before a restart: `initial`, doubling with each restart still inside the intensity
/// window, capped at `max`. `initial == 0` restarts at once.
struct restart_backoff {
  std::chrono::milliseconds initial{10};
  std::chrono::milliseconds max{2'000};
};

SWITCHBOARD_API std::string_view to_string(restart_strategy s) noexcept;
SWITCHBOARD_API std::string_view to_string(restart_policy p) noexcept;

/// Whether a child that ended should be restarted, given its policy and how it ended.
SWITCHBOARD_API bool should_restart(restart_policy policy, bool abnormal_exit) noexcept;

/// The indices (in start order) of the children to restart when child `failed` of
/// `child_count` fails under `strategy`. Always contains `failed`.
SWITCHBOARD_API std::vector<std::size_t> children_to_restart(restart_strategy strategy,
                                                             std::size_t failed,
                                                             std::size_t child_count);

/// The restarts a supervisor did recently, to enforce its restart intensity.
class SWITCHBOARD_API restart_window {
public:
  using clock = std::chrono::steady_clock;
  using time_point = std::chrono::time_point<clock, std::chrono::nanoseconds>;

  explicit restart_window(restart_intensity intensity) : intensity_(intensity) {}

  /// Records a restart that is wanted at `now`. Returns false if it would exceed the
  /// intensity (the supervisor must give up instead of restarting); the attempt is not
  /// recorded then.
  bool try_record(time_point now);

  /// Restarts recorded inside the window ending at `now`.
  std::size_t recent(time_point now);

  const restart_intensity& intensity() const noexcept { return intensity_; }

private:
  void expire(time_point now);

  restart_intensity intensity_;
  std::deque<time_point> restarts_;
};

/// The delay before the `nth` restart inside the current window (n >= 1).
SWITCHBOARD_API std::chrono::milliseconds backoff_delay(const restart_backoff& backoff,
                                                        std::size_t nth) noexcept;

}  // namespace switchboard
