#pragma once

// Request bodies sent with `Content-Encoding`: identity, gzip, deflate (zlib) and br. Inflated
// into at most a given number of bytes, so a small body cannot expand into gigabytes.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace switchboard::adapters::http {

enum class content_coding { identity, gzip, deflate, br };

/// The coding a `Content-Encoding` value names ("" and "identity" are identity), or nullopt for
/// one this server does not take (`compress`, a list of several, anything else).
std::optional<content_coding> parse_content_coding(std::string_view header);

/// What inflating gave: the body, or why not (`too_large`: it would exceed the cap).
struct inflate_result {
  std::string body;
  bool too_large = false;
  std::string error;  ///< non-empty when the data is not valid for its coding
};

/// Decodes `data` in `coding`, stopping as soon as the output would exceed `max_bytes`.
inflate_result inflate_body(content_coding coding, std::string_view data, std::size_t max_bytes);

}  // namespace switchboard::adapters::http
