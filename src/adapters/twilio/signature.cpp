#include "adapters/twilio/signature.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <string_view>

namespace switchboard::adapters::twilio {

std::string twilio_signature(const std::string& auth_token, const std::string& url,
                             const std::vector<std::pair<std::string, std::string>>& params) {
  // Twilio's own libraries sort repeated values and drop duplicate pairs (twilio-python's
  // test_compute_signature_duplicate_multi_dict), so a receiver that does the same agrees.
  auto sorted = params;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());

  std::string signed_text = url;
  for (const auto& [name, value] : sorted)
    signed_text.append(name).append(value);

  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_size = 0;
  HMAC(EVP_sha1(), auth_token.data(), static_cast<int>(auth_token.size()),
       reinterpret_cast<const unsigned char*>(signed_text.data()), signed_text.size(), mac,
       &mac_size);

  std::string encoded(4 * ((mac_size + 2) / 3), '\0');
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()), mac,
                                      static_cast<int>(mac_size));
  encoded.resize(static_cast<std::size_t>(written));
  return encoded;
}

// --- validation (webhooks switchboard receives) ---------------------------------------------

namespace {

/// Equal in content, compared in a time that does not depend on where they differ.
bool same_text(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

/// Where the port of an absolute URL sits: `host_end` is where ":port" starts (or would),
/// `authority_end` where the path, query or fragment starts.
struct port_span {
  std::string scheme;
  std::size_t host_end = 0;
  std::size_t authority_end = 0;
};

std::optional<port_span> find_port(const std::string& url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos || scheme_end == 0)
    return std::nullopt;
  const auto start = scheme_end + 3;
  auto end = url.find_first_of("/?#", start);
  if (end == std::string::npos)
    end = url.size();
  // Credentials (user:password@) come before the host and may hold ':' themselves.
  auto host_start = url.rfind('@', end);
  host_start = host_start == std::string::npos || host_start < start ? start : host_start + 1;
  std::size_t host_end = end;
  if (host_start < end && url[host_start] == '[') {  // [IPv6]
    const auto close = url.find(']', host_start);
    if (close == std::string::npos || close >= end)
      return std::nullopt;
    host_end = close + 1;
  } else if (const auto colon = url.find(':', host_start); colon < end) {
    host_end = colon;
  }
  if (host_end < end) {
    if (url[host_end] != ':')
      return std::nullopt;
    for (auto i = host_end + 1; i < end; ++i)
      if (!std::isdigit(static_cast<unsigned char>(url[i])))
        return std::nullopt;
  }
  std::string scheme = url.substr(0, scheme_end);
  for (auto& c : scheme)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return port_span{std::move(scheme), host_end, end};
}

/// The URLs Twilio may have signed for a request to `url`: without its port, and with it (the
/// scheme's standard port when none is written). Twilio's validators (twilio-csharp,
/// twilio-python, twilio-node) accept either, whatever the port.
std::vector<std::string> signed_url_candidates(const std::string& url) {
  const auto span = find_port(url);
  if (!span)
    return {url};
  const auto head = url.substr(0, span->host_end);
  const auto tail = url.substr(span->authority_end);
  std::vector<std::string> out{head + tail};
  if (span->host_end < span->authority_end)
    out.push_back(url);
  else if (span->scheme == "https")
    out.push_back(head + ":443" + tail);
  else if (span->scheme == "http")
    out.push_back(head + ":80" + tail);
  return out;
}

/// The raw value of the first query parameter `name` of `url`, if it has one.
std::optional<std::string> query_param(const std::string& url, std::string_view name) {
  const auto query = url.find('?');
  if (query == std::string::npos)
    return std::nullopt;
  auto end = url.find('#', query);
  if (end == std::string::npos)
    end = url.size();
  std::string_view rest{url.data() + query + 1, end - query - 1};
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const auto pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == name)
      return std::string{eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1)};
  }
  return std::nullopt;
}

std::optional<std::string> sha256_hex(const std::string& text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &size, EVP_sha256(), nullptr) != 1)
    return std::nullopt;
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < size; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 0xf];
  }
  return out;
}

}  // namespace

bool validate_twilio_signature(const std::string& auth_token, const std::string& url,
                               const std::vector<std::pair<std::string, std::string>>& params,
                               const std::string& signature) {
  if (signature.empty())
    return false;
  bool valid = false;
  for (const auto& candidate : signed_url_candidates(url))
    valid = same_text(twilio_signature(auth_token, candidate, params), signature) || valid;
  return valid;
}

bool validate_twilio_json_signature(const std::string& auth_token, const std::string& url,
                                    const std::string& body, const std::string& signature) {
  auto claimed = query_param(url, "bodySHA256");
  const auto actual = sha256_hex(body);
  if (!claimed || !actual)
    return false;
  for (auto& c : *claimed)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const bool body_matches = same_text(*actual, *claimed);
  // The query string, bodySHA256 included, is part of the signed URL; the body is not appended.
  const bool signed_by_twilio = validate_twilio_signature(auth_token, url, {}, signature);
  return body_matches && signed_by_twilio;
}

}  // namespace switchboard::adapters::twilio
