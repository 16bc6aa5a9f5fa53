#pragma once

// Cache-aside for enrichment lookups: a row (a JSON object) or "no row" (null) per lookup
// name and bound parameter values, with a time to live and a size bound (least recently used
// entries are evicted first). Pure: the clock is injected; not thread-safe (the state pipeline
// guards it with a mutex and never holds that mutex during a query).

#include <boost/json/value.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace switchboard::core {

struct lookup_cache_stats {
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;         ///< absent or expired
  std::uint64_t evictions = 0;      ///< removed to stay within the size bound
  std::uint64_t expirations = 0;    ///< found past their time to live (also counted as misses)
  std::uint64_t invalidations = 0;  ///< `invalidate` calls (whether or not an entry was cached)
  std::uint64_t refused = 0;        ///< `store` calls refused because an invalidation overtook them
  std::size_t entries = 0;
};

class lookup_cache {
public:
  using time_point = std::chrono::steady_clock::time_point;
  using clock = std::function<time_point()>;

  /// What `find` saw: the cached value (an object, or null for "no row"), or a miss with the
  /// ticket to pass to `store` once the value has been queried.
  struct found {
    std::optional<boost::json::value> value;
    std::uint64_t ticket = 0;
  };

  /// `ttl` 0 or `max_entries` 0 caches nothing (every find misses).
  lookup_cache(
      std::chrono::milliseconds ttl, std::size_t max_entries,
      clock now = [] { return std::chrono::steady_clock::now(); });

  /// The fresh cached value for (lookup, params), refreshing its recency; or a miss.
  found find(std::string_view lookup, const std::vector<boost::json::value>& params);

  /// Caches `value` (an object or null) for (lookup, params). With a `ticket` from `find`, the
  /// value is refused (false) if any invalidation happened since that find: the query may have
  /// read the row before the change that the invalidation announced (`generation()` taken
  /// before a query is a valid ticket too). Without a ticket it is always stored.
  bool store(std::string_view lookup, const std::vector<boost::json::value>& params,
             boost::json::value value, std::optional<std::uint64_t> ticket = std::nullopt);

  /// Drops the entry for (lookup, params); true if one was cached.
  bool invalidate(std::string_view lookup, const std::vector<boost::json::value>& params);

  lookup_cache_stats stats() const;

  /// Grows with every `invalidate`: a reader that remembers it can tell whether values it
  /// read since may be outdated (the rebuild's per-job memo uses this).
  std::uint64_t generation() const noexcept { return invalidation_count_; }

  /// The key of (lookup, params). Parameters are compared by their text (core::scalar_text),
  /// so an invalidation carrying `"42"` matches a lookup bound to `42`.
  static std::string key(std::string_view lookup, const std::vector<boost::json::value>& params);

private:
  struct entry {
    std::string key;
    boost::json::value value;
    time_point expires_at;
  };
  void erase(std::list<entry>::iterator it);

  std::chrono::milliseconds ttl_;
  std::size_t max_entries_;
  clock now_;
  std::list<entry> lru_;  // most recently used first
  std::unordered_map<std::string, std::list<entry>::iterator> index_;
  std::uint64_t invalidation_count_ = 0;  // tickets are this count at the time of a miss
  lookup_cache_stats stats_;
};

}  // namespace switchboard::core
