#pragma once

// The web-to-text lead rules that need no database and no network: what a valid submission
// is, which proxy number a new conversation takes, how message templates are filled, and what
// an admission decides. Pure functions, tested without an actor system
// (tests/core/lead_rules_test.cpp).

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
  bool replace = false;  ///< close an open lead of the same phone, dealer and location
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

/// Why `customer_phone` cannot be a lead's customer at a location whose number is
/// `location_phone`: it is one of the proxy numbers (`proxy_pool`) or the location's own
/// number, and a conversation whose customer is one of our own numbers cannot carry SMS (the
/// binding would route to itself). Nothing when it can.
std::optional<input_problem> customer_phone_problem(std::string_view customer_phone,
                                                    std::string_view location_phone,
                                                    const std::vector<std::string>& proxy_pool);

/// The submission as JSON (what an invocation records).
boost::json::value to_json(const lead_submission& s);

/// Whether `id` may name a lead, dealer or location: 1 to 128 of [A-Za-z0-9_.-].
bool valid_key(std::string_view id) noexcept;

/// Characters (Unicode code points) of UTF-8 text, as Twilio counts a message body.
std::size_t characters(std::string_view utf8) noexcept;

/// The proxy number for a new conversation: the first number of `pool` that no conversation
/// still open uses with the same customer or the same location (`in_use`), so that every SMS
/// binding (address, proxy address) stays unique; nothing when every number is taken.
std::optional<std::string> choose_proxy(const std::vector<std::string>& pool,
                                        const std::set<std::string>& in_use);

/// What a submission does given the lead already open for its phone, dealer and location.
enum class admission { open_new, already_open, replace_open };
admission admit(const std::optional<std::string>& open_lead, bool replace) noexcept;

/// A lead's life: opening (admitted, its conversation and first message on the way), open,
/// then closed (by request, replaced, inactive) or failed (it could not open).
enum class lead_status { opening, open, closed, failed };
/// A conversation's life: closing means its close on Twilio is on the way.
enum class conversation_status { opening, open, closing, closed };
/// Why a lead closed (`close_reason`); a close request may also name its own reason.
enum class close_reason { closed, replaced, inactive, failed };

std::string_view to_string(lead_status s) noexcept;
std::string_view to_string(conversation_status s) noexcept;
std::string_view to_string(close_reason r) noexcept;
/// The status a stored text names; nothing for text no version of switchboard wrote.
std::optional<lead_status> lead_status_of(std::string_view text) noexcept;
std::optional<conversation_status> conversation_status_of(std::string_view text) noexcept;

/// Opening or open: it holds its place (one active lead per phone, dealer and location; a
/// conversation stays open while any active lead uses it).
bool active(lead_status s) noexcept;
bool active(conversation_status s) noexcept;
bool active_lead(std::string_view stored_status) noexcept;
bool active_conversation(std::string_view stored_status) noexcept;

/// What the admission of a submission sees, read in the transaction that applies its effects.
struct admission_snapshot {
  bool lead_exists = false;              ///< the lead id is taken (a repeat of the submit)
  bool location_known = false;           ///< the dealer has the location
  std::optional<std::string> open_lead;  ///< the active lead of the same phone, dealer, location
  std::optional<std::string>
      open_conversation;                 ///< the active conversation of (customer, location phone)
  std::set<std::string> proxies_in_use;  ///< numbers binding the customer or the location now
  std::set<std::string> proxies_releasing;  ///< of those, held only by conversations closing now
};

/// What the admission decided: the effects to apply, in this order, in the same transaction.
struct admission_effects {
  enum class verdict {
    exists,  ///< nothing to do: this lead was admitted before
    unknown_location,
    already_open,      ///< refused: `open_lead` is open and no replace was asked for
    no_free_proxy,     ///< refused: every number of the pool binds the customer or the location
    wait_for_release,  ///< no number is free now, but one is being released: try again soon
    admit,             ///< insert the lead (after closing `close_lead`) into a conversation
  };
  verdict what = verdict::admit;
  std::optional<std::string> close_lead;         ///< replaced: close it (reason `replaced`) first
  std::optional<std::string> join_conversation;  ///< the conversation it joins, if one is open
  std::optional<std::string> new_proxy;          ///< else a new conversation through this number
};

/// The web-to-text admission rules (DESIGN.md) as one pure decision.
admission_effects decide_admission(const admission_snapshot& seen,
                                   const lead_submission& submission,
                                   const std::vector<std::string>& proxy_pool);

}  // namespace switchboard::core
