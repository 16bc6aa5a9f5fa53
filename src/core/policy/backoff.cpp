#include "core/policy/backoff.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace switchboard::core {

std::chrono::milliseconds doubling_delay(std::chrono::milliseconds initial,
                                         std::chrono::milliseconds max,
                                         std::size_t attempt) noexcept {
  if (initial.count() <= 0)
    return std::chrono::milliseconds{0};
  auto delay = initial;
  // Stops doubling at the cap, so a long streak costs a few steps; comparing with half the cap
  // keeps `delay * 2` from overflowing.
  for (std::size_t i = 1; i < attempt && delay < max; ++i)
    delay = delay > max / 2 ? max : delay * 2;
  return std::max(std::min(delay, max), std::chrono::milliseconds{0});
}

std::chrono::milliseconds jittered(std::chrono::milliseconds delay, double jitter,
                                   double u) noexcept {
  if (!(jitter > 0.0) || std::isnan(u))  // also a NaN jitter
    return delay;
  jitter = std::min(jitter, 1.0);
  u = std::clamp(u, 0.0, 1.0);
  const double factor = 1.0 + jitter * (2.0 * u - 1.0);
  return std::chrono::milliseconds{
      static_cast<std::int64_t>(std::llround(static_cast<double>(delay.count()) * factor))};
}

std::chrono::milliseconds backoff_delay(const backoff_policy& p, std::size_t attempt,
                                        double u) noexcept {
  return jittered(doubling_delay(p.initial, p.max, attempt), p.jitter, u);
}

std::chrono::milliseconds backoff_delay(const backoff_policy& p, std::size_t attempt) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return backoff_delay(p, attempt, rng);
}

}  // namespace switchboard::core
