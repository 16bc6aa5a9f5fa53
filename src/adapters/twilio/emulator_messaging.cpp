// The emulator's Messages API (api.twilio.com/2010-04-01, under /api): SMS sent by the account
// outside any conversation, as Twilio's CreateMessage and ListMessage answer them, and kept for
// GET /_emulator/state so that a test can see what a phone received.

#include "adapters/twilio/emulator_impl.hpp"
#include "core/phone.hpp"

#include <string>

namespace switchboard::adapters::twilio::internal {

namespace {

constexpr std::size_t max_body_chars = 1600;

std::string messages_path(const context& ctx) {
  return "/2010-04-01/Accounts/" + ctx.options.account_sid + "/Messages";
}

/// The account in the path must be this emulator's (Twilio answers 404 for another's).
void check_account(const context& ctx, const call& c) {
  if (c.arg(0) != ctx.options.account_sid)
    throw not_found(20404, "/2010-04-01/Accounts/" + c.arg(0) + "/Messages.json");
}

std::size_t characters(const std::string& text) {
  std::size_t n = 0;
  for (unsigned char ch : text)
    if ((ch & 0xC0) != 0x80)
      ++n;
  return n;
}

/// Segments as Twilio counts them for GSM-7 text: one of 160 characters, or parts of 153.
std::string segments(const std::string& body) {
  const auto n = characters(body);
  return std::to_string(n <= 160 ? 1 : (n + 152) / 153);
}

json::object sms_json(const context& ctx, const sms_message& m) {
  const auto uri = messages_path(ctx) + "/" + m.sid;
  return {{"account_sid", ctx.options.account_sid},
          {"api_version", "2010-04-01"},
          {"body", m.body},
          {"date_created", rules::rfc2822(m.created)},
          {"date_sent", m.sent ? json::value(rules::rfc2822(*m.sent)) : json::value(nullptr)},
          {"date_updated", rules::rfc2822(m.updated)},
          {"direction", "outbound-api"},
          {"error_code", nullptr},
          {"error_message", nullptr},
          {"from", m.from},
          {"messaging_service_sid", nullptr},
          {"num_media", "0"},
          {"num_segments", segments(m.body)},
          {"price", nullptr},
          {"price_unit", "USD"},
          {"sid", m.sid},
          {"status", m.status},
          {"subresource_uris",
           json::object{{"media", uri + "/Media.json"}, {"feedback", uri + "/Feedback.json"}}},
          {"to", m.to},
          {"uri", uri + ".json"}};
}

/// A phone number field in E.164, or 400 with Twilio's code for it.
std::string phone_field(const call& c, const char* name, int missing_code, int invalid_code) {
  auto value = c.param(name);
  if (!value)
    throw api_error(400, missing_code, std::string{"A '"} + name + "' phone number is required.");
  if (auto problem = core::e164_problem(*value))
    throw api_error(400, invalid_code,
                    std::string{"Invalid '"} + name + "' Phone Number: " + *value + " " + *problem);
  return *value;
}

/// One page of a 2010-04-01 list (PageSize 1 to 1000), its paging URIs relative to
/// api.twilio.com and carrying the request's filters.
json::object page_2010(const call& c, const std::string& path, const char* key, json::array all,
                       const std::vector<std::pair<std::string, std::string>>& filters) {
  auto cut = cut_page(c, std::move(all), 1000, "next_page_uri");
  std::string query;
  for (const auto& [name, value] : filters)
    query += (query.empty() ? "?" : "&") + name + "=" + url_segment(value);
  auto uri_of = [&](const page_cut::link& l) {
    std::string u = path + ".json" + query + (query.empty() ? "?" : "&") +
                    "PageSize=" + std::to_string(cut.page_size) +
                    "&Page=" + std::to_string(l.first);
    if (l.second)
      u += "&PageToken=PT" + std::to_string(*l.second);
    return u;
  };
  auto maybe_uri = [&](const std::optional<page_cut::link>& l) {
    return l ? json::value(uri_of(*l)) : json::value(nullptr);
  };
  const auto count = static_cast<std::int64_t>(cut.records.size());
  json::object out;
  out[key] = std::move(cut.records);
  out["start"] = cut.offset;
  out["end"] = count > 0 ? cut.offset + count - 1 : cut.offset;
  out["page"] = cut.page;
  out["page_size"] = cut.page_size;
  out["first_page_uri"] = uri_of(cut.first);
  out["previous_page_uri"] = maybe_uri(cut.previous);
  out["next_page_uri"] = maybe_uri(cut.next);
  out["uri"] = uri_of(cut.current);
  return out;
}

}  // namespace

void add_messaging_routes(route_table& routes) {
  const std::string path = "/api/2010-04-01/Accounts/{}/Messages.json";
  routes.add("POST", path, {"To", "From", "Body"}, [](context& ctx, const call& c) {
    check_account(ctx, c);
    sms_message m;
    m.to = phone_field(c, "To", 21604, 21211);
    m.from = phone_field(c, "From", 21603, 21212);
    auto body = c.param("Body");
    if (!body || body->empty())
      throw api_error(400, 21602, "Message body is required.");
    if (characters(*body) > max_body_chars)
      throw api_error(400, 21617,
                      "The concatenated message body exceeds the 1600 character limit: it has " +
                          std::to_string(characters(*body)) + " characters");
    m.body = *body;
    m.sid = ctx.new_sid("SM");
    m.status = "queued";
    m.created = m.updated = ctx.now;
    auto answer = sms_json(ctx, m);
    // Twilio answers "queued" and sends it moments later; here it is delivered at once.
    m.status = "delivered";
    m.sent = ctx.now;
    ctx.st.sms.push_back(std::move(m));
    return created(std::move(answer));
  });
  routes.add("GET", path, {"To", "From", "PageSize", "Page", "PageToken"},
             [](context& ctx, const call& c) {
               check_account(ctx, c);
               const auto to = c.param("To");
               const auto from = c.param("From");
               json::array all;
               // Newest first, as Twilio lists them.
               for (auto it = ctx.st.sms.rbegin(); it != ctx.st.sms.rend(); ++it)
                 if ((!to || it->to == *to) && (!from || it->from == *from))
                   all.push_back(sms_json(ctx, *it));
               std::vector<std::pair<std::string, std::string>> filters;
               if (to)
                 filters.emplace_back("To", *to);
               if (from)
                 filters.emplace_back("From", *from);
               return ok(page_2010(c, messages_path(ctx), "messages", std::move(all), filters));
             });
}

json::value dump_messaging(context& ctx) {
  json::array out;
  for (const auto& m : ctx.st.sms)
    out.push_back(sms_json(ctx, m));
  return json::object{{"messages", std::move(out)}};
}

}  // namespace switchboard::adapters::twilio::internal
