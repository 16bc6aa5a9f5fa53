#include "jobs/leads/config_rules.hpp"

#include "core/config/schema.hpp"
#include "core/json_path.hpp"
#include "core/phone.hpp"

#include <boost/json/value.hpp>

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchboard {

namespace {

namespace json = boost::json;
using namespace core::config_schema;

const std::string e164_allowed =
    "an E.164 phone number: '+', the country code and the number, digits only, e.g. "
    "\"+15550001111\"";

/// A phone number in E.164 form, the only form Twilio takes for SMS addresses.
apply_fn phone(std::string& target) {
  return [&target](const json::value& v, const std::string& path) -> check {
    if (!v.is_string())
      return fail(path, "is " + describe(v) + ", not a string", e164_allowed);
    const std::string_view s(v.get_string().data(), v.get_string().size());
    if (auto why = core::e164_problem(s))
      return fail(path, "is " + describe(v) + ", which " + *why, e164_allowed);
    target.assign(s);
    return std::nullopt;
  };
}

/// A dealer or location id: it appears in URL paths (`/v1/dealers/{id}/...`), so only
/// characters that never need escaping, and never a path step of its own ("." or "..").
apply_fn url_id(std::string& target, std::string example) {
  return [&target, example = std::move(example)](const json::value& v,
                                                 const std::string& path) -> check {
    const std::string allowed =
        "letters, digits, '_', '.' and '-' (the id appears in URL paths), e.g. " + example;
    std::string s;
    if (auto error = non_empty_string(s, allowed)(v, path))
      return error;
    const auto bad = std::find_if(s.begin(), s.end(), [](char c) {
      return !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '.' || c == '-');
    });
    if (bad != s.end()) {
      const auto u = static_cast<unsigned char>(*bad);
      const std::string shown =
          u >= 0x20 && u < 0x7F ? "'" + std::string(1, *bad) + "'" : "byte " + std::to_string(u);
      return fail(path, "is " + describe(v) + ", which has the character " + shown, allowed);
    }
    if (s == "." || s == "..")
      return fail(path, "is " + describe(v) + ", which a URL path reads as a directory step",
                  allowed);
    target = std::move(s);
    return std::nullopt;
  };
}

/// A lead message template: text with the placeholders below ({{ and }} are literal braces,
/// as in target templates).
apply_fn lead_template(std::string& target) {
  return [&target](const json::value& v, const std::string& path) -> check {
    static const std::vector<std::string_view> placeholders{
        "customer_name", "customer_phone", "message", "dealer_name", "location_name", "lead_id"};
    std::string list;
    for (auto p : placeholders)
      list += (list.empty() ? "{" : ", {") + std::string(p) + "}";
    const std::string allowed = "non-empty text with the placeholders " + list;
    std::string s;
    if (auto error = non_empty_string(s, allowed)(v, path))
      return error;
    if (auto why = core::template_problem(s))
      return fail(path, "is " + describe(v) + ", which " + *why, allowed);
    // The syntax is sound, so every single '{' opens a placeholder that a '}' closes.
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s[i] != '{' && s[i] != '}')
        continue;
      if (i + 1 < s.size() && s[i + 1] == s[i]) {
        ++i;
        continue;
      }
      const auto end = s.find('}', i);
      const std::string_view name(s.data() + i + 1, end - i - 1);
      if (std::find(placeholders.begin(), placeholders.end(), name) == placeholders.end()) {
        std::string problem = "has the unknown placeholder '{" + std::string(name) + "}'";
        if (auto guess = closest(name, placeholders))
          problem += "; did you mean '{" + std::string(*guess) + "}'?";
        return fail(path, problem, allowed);
      }
      i = end;
    }
    target = std::move(s);
    return std::nullopt;
  };
}

std::vector<key_rule> location_rules(location_config& l) {
  return {
      {"id", url_id(l.id, "\"north\""), {}},
      {"name", non_empty_string(l.name, "the location's name, e.g. \"North Branch\""), {}},
      {"phone", phone(l.phone), {}},
  };
}

check finish_location(location_config& l, const std::string& path, const json::value&) {
  if (auto error = require(l.id, path, "id", "an id unique within the dealer, e.g. \"north\""))
    return error;
  return require(l.phone, path, "phone", "the location's " + e164_allowed);
}

std::vector<key_rule> dealer_rules(dealer_config& d) {
  return {
      {"id", url_id(d.id, "\"acme-motors\""), {}},
      {"name", non_empty_string(d.name, "the dealer's name, e.g. \"Acme Motors\""), {}},
      {"locations",
       section_list<location_config>(d.locations, location_rules, finish_location,
                                     "locations (each with an id, a name and a phone)"),
       {}},
  };
}

check finish_dealer(dealer_config& d, const std::string& path, const json::value&) {
  if (auto error = require(d.id, path, "id", "a unique id, e.g. \"acme-motors\""))
    return error;
  return unique_keys(
      d.locations, child_path(path, "locations"), "id",
      [](const location_config& l) { return l.id; }, "an id used once within the dealer");
}

std::vector<key_rule> leads_rules(leads_config& l) {
  return {
      {"proxy_numbers",
       list_of(l.proxy_numbers, phone, "an array of E.164 phone numbers, e.g. [\"+15550001111\"]"),
       {}},
      {"webhook_url",
       http_url(
           l.webhook_url,
           "\"\" (no conversation webhook is registered), or the http(s) URL Twilio calls with "
           "conversation events, exactly as Twilio calls it, e.g. "
           "\"https://switchboard.example.com/v1/webhooks/twilio/conversations\""),
       {}},
      {"first_message", lead_template(l.first_message), {}},
      {"reminder_message", lead_template(l.reminder_message), {}},
      {"reminder_after_ms", millis(0, one_day_ms, l.reminder_after), {}},
      {"close_inactive_after_ms", millis(0, one_year_ms, l.close_inactive_after), {}},
      {"max_message_chars", count(1, 1600, l.max_message_chars), {}},
      {"workers", count(1, 64, l.workers), {}},
      {"max_attempts", count(1, 1000, l.max_attempts), {}},
      {"backoff_initial_ms", millis(1, one_hour_ms, l.backoff_initial), {}},
      {"backoff_max_ms", millis(1, one_hour_ms, l.backoff_max), {}},
      {"answer_timeout_ms", millis(0, 600'000, l.answer_timeout), {}},
      {"passivate_after_ms", millis(1, one_day_ms, l.passivate_after), {}},
      {"dealers",
       section_list<dealer_config>(l.dealers, dealer_rules, finish_dealer,
                                   "dealers (each with an id, a name and locations)"),
       {}},
  };
}

std::vector<key_rule> form_leads_rules(form_leads_config& f) {
  return {
      {"lead_tracking_url",
       http_url(f.lead_tracking_url,
                "\"\" (not forwarded), or the http(s) URL form leads are POSTed to, e.g. "
                "\"https://tracking.example.com/leads\""),
       {}},
      {"marketing_url",
       http_url(f.marketing_url,
                "\"\" (not forwarded), or the http(s) URL form leads are POSTed to, e.g. "
                "\"https://marketing.example.com/leads\""),
       {}},
      {"max_attempts", count(1, 1000, f.max_attempts), {}},
      {"backoff_initial_ms", millis(1, one_hour_ms, f.backoff_initial), {}},
      {"backoff_max_ms", millis(1, one_hour_ms, f.backoff_max), {}},
      {"timeout_ms", millis(1, one_hour_ms, f.timeout), {}},
  };
}

/// `leads` and `form_leads`, with setters that write into `cfg`.
std::vector<key_rule> leads_keys(config& cfg) {
  return {
      {"leads", {}, leads_rules(cfg.leads)},
      {"form_leads", {}, form_leads_rules(cfg.form_leads)},
  };
}

/// Checks across the lead sections: the proxy pool, dealer ids, and which numbers are whose.
check check_leads(const config& cfg, const json::value& doc) {
  const auto& l = cfg.leads;
  const auto same = [](const std::string& s) { return s; };
  if (auto error =
          unique_keys(l.proxy_numbers, "leads.proxy_numbers", "", same, "each proxy number once"))
    return error;
  if (auto error = unique_keys(
          l.dealers, "leads.dealers", "id", [](const dealer_config& d) { return d.id; },
          "an id used once in leads.dealers"))
    return error;
  if (!l.dealers.empty() && l.proxy_numbers.empty())
    return fail("leads.proxy_numbers", "is empty, but leads.dealers are given",
                "at least one E.164 proxy number, e.g. [\"+15550001111\"]: every conversation goes "
                "through one");
  for (std::size_t d = 0; d < l.dealers.size(); ++d) {
    const auto& locations = l.dealers[d].locations;
    for (std::size_t i = 0; i < locations.size(); ++i) {
      const auto proxy =
          std::find(l.proxy_numbers.begin(), l.proxy_numbers.end(), locations[i].phone);
      if (proxy != l.proxy_numbers.end())
        return fail(
            "leads.dealers[" + std::to_string(d) + "].locations[" + std::to_string(i) + "].phone",
            "is \"" + locations[i].phone + "\", which is leads.proxy_numbers[" +
                std::to_string(proxy - l.proxy_numbers.begin()) +
                "], so the conversation would bind the number to itself",
            "the location's own phone, not one of leads.proxy_numbers");
    }
  }
  if (auto error = backoff_order(doc, "leads", l.backoff_initial, l.backoff_max))
    return error;
  return backoff_order(doc, "form_leads", cfg.form_leads.backoff_initial,
                       cfg.form_leads.backoff_max);
}

}  // namespace

core::config_section leads_config_section() { return {leads_keys, check_leads}; }

}  // namespace switchboard
