#pragma once

// One backoff for every retry loop: a delay that doubles with each failed attempt, capped,
// then spread by a random factor in [1 - jitter, 1 + jitter] so that callers failing together
// (a broker restart, a 5xx burst) do not come back together. Pure: the random value or the
// generator comes from the caller, so tests pin the delays; `backoff_delay(policy, attempt)`
// draws from a thread_local generator for callers that need no reproducibility.

#include <chrono>
#include <cstddef>
#include <random>

namespace switchboard::core {

struct backoff_policy {
  std::chrono::milliseconds initial{0};  ///< the delay after the first failure; <= 0: none
  std::chrono::milliseconds max{0};      ///< cap of the doubled delay (before the jitter)
  double jitter = 0;                     ///< in [0, 1]; 0: exactly the doubled delay
};

/// `initial` doubled for each attempt after the first (attempt 0 counts as 1), at most `max`;
/// 0 if `initial` <= 0. Never overflows, however long the streak.
std::chrono::milliseconds doubling_delay(std::chrono::milliseconds initial,
                                         std::chrono::milliseconds max,
                                         std::size_t attempt) noexcept;

/// `delay` scaled by 1 + jitter * (2u - 1), i.e. from 1 - jitter (u = 0) to 1 + jitter (u = 1),
/// rounded to the nearest millisecond. `u` is clamped to [0, 1] and `jitter` to [0, 1].
std::chrono::milliseconds jittered(std::chrono::milliseconds delay, double jitter,
                                   double u) noexcept;

/// doubling_delay, then jittered with the uniform value `u` in [0, 1].
std::chrono::milliseconds backoff_delay(const backoff_policy& p, std::size_t attempt,
                                        double u) noexcept;

/// backoff_delay with `u` drawn from `rng`; draws nothing when there is no jitter.
template <class Generator>
std::chrono::milliseconds backoff_delay(const backoff_policy& p, std::size_t attempt,
                                        Generator& rng) {
  if (p.jitter <= 0)
    return doubling_delay(p.initial, p.max, attempt);
  return backoff_delay(p, attempt, std::uniform_real_distribution<double>{0.0, 1.0}(rng));
}

/// backoff_delay with a generator of the calling thread, seeded once from std::random_device.
std::chrono::milliseconds backoff_delay(const backoff_policy& p, std::size_t attempt);

}  // namespace switchboard::core
