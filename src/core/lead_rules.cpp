#include "core/lead_rules.hpp"

#include "core/phone.hpp"

#include <boost/json.hpp>

namespace switchboard::core {

namespace json = boost::json;

bool valid_key(std::string_view id) noexcept {
  if (id.empty() || id.size() > 128)
    return false;
  for (char c : id)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '.' || c == '-'))
      return false;
  return true;
}

std::size_t characters(std::string_view utf8) noexcept {
  std::size_t n = 0;
  for (unsigned char c : utf8)
    if ((c & 0xC0) != 0x80)  // not a continuation byte
      ++n;
  return n;
}

std::variant<lead_submission, input_problem> parse_submission(const json::value& body,
                                                              std::size_t max_message_chars) {
  const auto* obj = body.if_object();
  if (obj == nullptr)
    return input_problem{
        "",
        "the body must be a JSON object with customer_name, customer_phone, dealer_id, "
        "location_id and message"};
  static const char* const known[] = {"customer_name", "customer_phone", "dealer_id",
                                      "location_id",   "message",        "replace"};
  for (const auto& member : *obj) {
    bool ok = false;
    for (const char* k : known)
      ok = ok || member.key() == k;
    if (!ok)
      return input_problem{
          std::string(member.key()),
          "is not a member of a lead; allowed: customer_name, customer_phone, dealer_id, "
          "location_id, message, replace"};
  }
  lead_submission s;
  auto text = [&](const char* name, std::string& out) -> std::optional<input_problem> {
    const auto* v = obj->if_contains(name);
    if (v == nullptr || v->is_null())
      return input_problem{name, "is missing"};
    if (!v->is_string())
      return input_problem{name, "must be a string"};
    out.assign(v->get_string().data(), v->get_string().size());
    if (out.find_first_not_of(" \t\r\n") == std::string::npos)
      return input_problem{name, "is empty"};
    return std::nullopt;
  };
  for (auto [name, out] : {std::pair<const char*, std::string*>{"customer_name", &s.customer_name},
                           {"customer_phone", &s.customer_phone},
                           {"dealer_id", &s.dealer_id},
                           {"location_id", &s.location_id},
                           {"message", &s.message}})
    if (auto p = text(name, *out))
      return *p;
  if (auto p = e164_problem(s.customer_phone))
    return input_problem{"customer_phone", "is \"" + s.customer_phone.substr(0, 32) + "\", which " +
                                               *p + "; write it in E.164, e.g. +15551234567"};
  if (!valid_key(s.dealer_id))
    return input_problem{"dealer_id", "must be 1 to 128 of A-Z, a-z, 0-9, '_', '.', '-'"};
  if (!valid_key(s.location_id))
    return input_problem{"location_id", "must be 1 to 128 of A-Z, a-z, 0-9, '_', '.', '-'"};
  if (s.customer_name.size() > 256)
    return input_problem{"customer_name", "is longer than 256 bytes"};
  const auto n = characters(s.message);
  if (n > max_message_chars)
    return input_problem{"message", "has " + std::to_string(n) + " characters; at most " +
                                        std::to_string(max_message_chars) +
                                        " are allowed (shorten it)"};
  if (const auto* r = obj->if_contains("replace"); r != nullptr && !r->is_null()) {
    if (!r->is_bool())
      return input_problem{"replace", "must be true or false"};
    s.replace = r->get_bool();
  }
  return s;
}

std::optional<input_problem> customer_phone_problem(std::string_view customer_phone,
                                                    std::string_view location_phone,
                                                    const std::vector<std::string>& proxy_pool) {
  const std::string phone{customer_phone};
  for (const auto& proxy : proxy_pool)
    if (proxy == customer_phone)
      return input_problem{"customer_phone",
                           "is " + phone +
                               ", one of this server's proxy numbers (leads.proxy_numbers): a "
                               "conversation with one of our own numbers as the customer cannot "
                               "carry SMS; give the customer's own phone"};
  if (customer_phone == location_phone)
    return input_problem{"customer_phone",
                         "is " + phone +
                             ", the phone number of the location itself: a lead needs the "
                             "customer's own phone, not the dealer's"};
  return std::nullopt;
}

json::value to_json(const lead_submission& s) {
  return json::object{{"customer_name", s.customer_name},
                      {"customer_phone", s.customer_phone},
                      {"dealer_id", s.dealer_id},
                      {"location_id", s.location_id},
                      {"message", s.message},
                      {"replace", s.replace}};
}

std::optional<std::string> choose_proxy(const std::vector<std::string>& pool,
                                        const std::set<std::string>& in_use) {
  for (const auto& number : pool)
    if (in_use.count(number) == 0)
      return number;
  return std::nullopt;
}

admission admit(const std::optional<std::string>& open_lead, bool replace) noexcept {
  if (!open_lead)
    return admission::open_new;
  return replace ? admission::replace_open : admission::already_open;
}

namespace {
constexpr std::string_view lead_status_names[] = {"opening", "open", "closed", "failed"};
constexpr std::string_view conversation_status_names[] = {"opening", "open", "closing", "closed"};
constexpr std::string_view close_reason_names[] = {"closed", "replaced", "inactive", "failed"};

template <class Enum, std::size_t N>
std::optional<Enum> parse_name(const std::string_view (&names)[N], std::string_view text) noexcept {
  for (std::size_t i = 0; i < N; ++i)
    if (names[i] == text)
      return static_cast<Enum>(i);
  return std::nullopt;
}
}  // namespace

std::string_view to_string(lead_status s) noexcept {
  return lead_status_names[static_cast<std::size_t>(s)];
}
std::string_view to_string(conversation_status s) noexcept {
  return conversation_status_names[static_cast<std::size_t>(s)];
}
std::string_view to_string(close_reason r) noexcept {
  return close_reason_names[static_cast<std::size_t>(r)];
}

std::optional<lead_status> lead_status_of(std::string_view text) noexcept {
  return parse_name<lead_status>(lead_status_names, text);
}
std::optional<conversation_status> conversation_status_of(std::string_view text) noexcept {
  return parse_name<conversation_status>(conversation_status_names, text);
}

bool active(lead_status s) noexcept { return s == lead_status::opening || s == lead_status::open; }
bool active(conversation_status s) noexcept {
  return s == conversation_status::opening || s == conversation_status::open;
}
bool active_lead(std::string_view stored_status) noexcept {
  const auto s = lead_status_of(stored_status);
  return s && active(*s);
}
bool active_conversation(std::string_view stored_status) noexcept {
  const auto s = conversation_status_of(stored_status);
  return s && active(*s);
}

admission_effects decide_admission(const admission_snapshot& seen,
                                   const lead_submission& submission,
                                   const std::vector<std::string>& proxy_pool) {
  using verdict = admission_effects::verdict;
  admission_effects out;
  if (seen.lead_exists) {
    out.what = verdict::exists;
    return out;
  }
  if (!seen.location_known) {
    out.what = verdict::unknown_location;
    return out;
  }
  const auto decision = admit(seen.open_lead, submission.replace);
  if (decision == admission::already_open) {
    out.what = verdict::already_open;
    return out;
  }
  if (decision == admission::replace_open)
    out.close_lead = seen.open_lead;
  if (seen.open_conversation) {
    // Same customer and location phone: the leads share one conversation.
    out.join_conversation = seen.open_conversation;
    return out;
  }
  out.new_proxy = choose_proxy(proxy_pool, seen.proxies_in_use);
  if (out.new_proxy)
    return out;
  // A conversation closing now frees its number in a moment: wait for it rather than fail.
  std::set<std::string> staying;
  for (const auto& number : seen.proxies_in_use)
    if (seen.proxies_releasing.count(number) == 0)
      staying.insert(number);
  out.what = choose_proxy(proxy_pool, staying) ? verdict::wait_for_release : verdict::no_free_proxy;
  return out;
}

}  // namespace switchboard::core
