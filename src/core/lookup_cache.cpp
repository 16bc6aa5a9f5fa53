#include "core/lookup_cache.hpp"

#include "core/json_path.hpp"

#include <boost/json/serialize.hpp>

#include <utility>

namespace switchboard::core {

lookup_cache::lookup_cache(std::chrono::milliseconds ttl, std::size_t max_entries, clock now)
    : ttl_(ttl), max_entries_(max_entries), now_(std::move(now)) {}

std::string lookup_cache::key(std::string_view lookup,
                              const std::vector<boost::json::value>& params) {
  // NUL separates parts: lookup names and parameter texts from JSON never make it ambiguous
  // except for texts holding NUL themselves, which then fall back to their JSON form.
  std::string k(lookup);
  for (const auto& p : params) {
    k.push_back('\0');
    auto text = scalar_text(p);
    if (text && text->find('\0') == std::string::npos)
      k += *text;
    else
      k += "\x01" + boost::json::serialize(p);
  }
  return k;
}

void lookup_cache::erase(std::list<entry>::iterator it) {
  index_.erase(it->key);
  lru_.erase(it);
}

lookup_cache::found lookup_cache::find(std::string_view lookup,
                                       const std::vector<boost::json::value>& params) {
  const auto it = index_.find(key(lookup, params));
  if (it != index_.end()) {
    if (now_() < it->second->expires_at) {
      ++stats_.hits;
      lru_.splice(lru_.begin(), lru_, it->second);
      return {it->second->value, invalidation_count_};
    }
    ++stats_.expirations;
    erase(it->second);
  }
  ++stats_.misses;
  return {std::nullopt, invalidation_count_};
}

bool lookup_cache::store(std::string_view lookup, const std::vector<boost::json::value>& params,
                         boost::json::value value, std::optional<std::uint64_t> ticket) {
  if (ticket && *ticket != invalidation_count_) {
    ++stats_.refused;
    return false;
  }
  if (ttl_.count() <= 0 || max_entries_ == 0)
    return false;
  auto k = key(lookup, params);
  const auto expires_at = now_() + ttl_;
  if (const auto it = index_.find(k); it != index_.end()) {
    it->second->value = std::move(value);
    it->second->expires_at = expires_at;
    lru_.splice(lru_.begin(), lru_, it->second);
    return true;
  }
  while (lru_.size() >= max_entries_) {
    erase(std::prev(lru_.end()));
    ++stats_.evictions;
  }
  lru_.push_front(entry{k, std::move(value), expires_at});
  index_.emplace(std::move(k), lru_.begin());
  return true;
}

bool lookup_cache::invalidate(std::string_view lookup,
                              const std::vector<boost::json::value>& params) {
  ++stats_.invalidations;
  ++invalidation_count_;
  const auto it = index_.find(key(lookup, params));
  if (it == index_.end())
    return false;
  erase(it->second);
  return true;
}

lookup_cache_stats lookup_cache::stats() const {
  auto s = stats_;
  s.entries = lru_.size();
  return s;
}

}  // namespace switchboard::core
