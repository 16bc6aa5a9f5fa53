#pragma once

// The URLs a user configures (form_leads.*_url, leads.webhook_url, twilio.base_url) may carry a
// user and password (https://user:pass@host/...): what an HTTP client needs from such a URL, and
// the URL as logs and answers may show it, the userinfo hidden. Pure, no I/O.

#include <optional>
#include <string>
#include <string_view>

namespace switchboard::core {

/// An http(s) URL as a client sends to it.
struct http_target {
  std::string origin;                   ///< "http://host:port", without the userinfo
  std::string target;                   ///< the path and query, "/" if the URL names none
  std::optional<std::string> user;      ///< the userinfo's user, percent-decoded
  std::optional<std::string> password;  ///< after its ':', percent-decoded
};

/// Splits "scheme://[user[:password]@]host[:port][/path][?query]" (a fragment is dropped).
http_target split_http_url(std::string_view url);

/// `url` with its userinfo shown as "***" (https://***@host/...), for logs and answers; as it
/// was when it has none.
std::string redacted_url(std::string_view url);

/// `text` with the userinfo of every URL in it shown as "***": for messages that may quote a
/// URL someone else made (an error from a server naming the URL it was given).
std::string redact_urls(std::string_view text);

}  // namespace switchboard::core
