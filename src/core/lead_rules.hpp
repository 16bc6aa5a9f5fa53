#pragma once

// The web-to-text lead rules that need no database and no network: what a valid submission
// is, which proxy number a new conversation takes, how message templates are filled, and what
// an admission decides. Pure functions, tested without an actor system (tests/core/lead_rules_test.cpp).

#include <boost/json/value.hpp>

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace switchboard::core {

/// A lead as a web form submits it (`POST /v1/leads`).
struct lead_submission {
  std::string customer_name;
  std::string customer_phone;  ///< E.164
  std::string dealer_id;
  std::string location_id;
  std::string message;
  bool replace = false;        ///< close an open lead of the same phone, dealer and location
};

/// What is wrong with an input: the member and a sentence a user can act on.
struct input_problem {
  std::string field;
  std::string problem;
};

/// Reads and checks a submission: required string members, an E.164 customer phone, ids made
/// of [A-Za-z0-9_.-], a message of at most `max_message_chars` characters, no unknown members.
std::variant<lead_submission, input_problem> parse_submission(const boost::json::value& body,
                                                             std::size_t max_message_chars);

/// The submission as JSON (what an invocation records).
boost::json::value to_json(const lead_submission& s);

/// Whether `id` may name a lead, dealer or location: 1 to 128 of [A-Za-z0-9_.-].
bool valid_key(std::string_view id) noexcept;

/// Characters (Unicode code points) of UTF-8 text, as Twilio counts a message body.
std::size_t characters(std::string_view utf8) noexcept;

/// The proxy number for a new conversation: the first number of `pool` that no conversation
/// still open uses with the same customer or the same location (`in_use`), so that every SMS
/// binding (address, proxy address) stays unique; nothing when every number is taken.
std::optional<std::string> choose_proxy(const std::vector<std::string>& pool, const std::set<std::string>& in_use);

/// What a submission does given the lead already open for its phone, dealer and location.
enum class admission { open_new, already_open, replace_open };
admission admit(const std::optional<std::string>& open_lead, bool replace) noexcept;

} // namespace switchboard::core
