#pragma once

// X-Twilio-Signature: how Twilio signs the webhooks it sends, so that the receiver can tell
// they came from Twilio (https://www.twilio.com/docs/usage/webhooks/webhooks-security).

#include <string>
#include <utility>
#include <vector>

namespace switchboard::adapters::twilio {

/// The X-Twilio-Signature of a form-encoded request to `url` (exactly as configured: scheme,
/// host, port, path and query) carrying `params`: base64(HMAC-SHA1(auth_token, url + each
/// parameter as name + value, sorted by name, then by value, duplicate pairs once)).
std::string twilio_signature(const std::string& auth_token, const std::string& url,
                             const std::vector<std::pair<std::string, std::string>>& params);

/// Whether `signature` (the X-Twilio-Signature header) is Twilio's signature of a form-encoded
/// request to `url` carrying `params` (the decoded POST parameters, in any order; repeated names
/// allowed), signed with `auth_token`.
///
/// `url` is the URL Twilio was told to call, as configured (scheme, host, port, path, query) —
/// not one rebuilt from Host or X-Forwarded-* headers, which a sender controls. Case is kept:
/// Twilio signs the URL as it was written. As Twilio's own validators do, the URL is tried
/// without its port and with its port (the standard one added when absent), because Twilio's
/// signing is not consistent about ports. The comparison takes the same time wherever the
/// signatures differ.
bool validate_twilio_signature(const std::string& auth_token, const std::string& url,
                               const std::vector<std::pair<std::string, std::string>>& params,
                               const std::string& signature);

/// Whether a JSON-bodied webhook is Twilio's: `url` (as configured, see above) carries
/// `bodySHA256=<hex SHA-256 of body>`, that hash matches `body`, and `signature` is Twilio's
/// signature of the URL alone (no parameters appended). False if `url` has no bodySHA256.
bool validate_twilio_json_signature(const std::string& auth_token, const std::string& url,
                                    const std::string& body, const std::string& signature);

}  // namespace switchboard::adapters::twilio
