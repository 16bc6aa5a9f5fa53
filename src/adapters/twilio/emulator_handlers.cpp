// What the emulator's product handlers share (declared in emulator_impl.hpp): Twilio's error
// answers, typed form fields, If-Match, URL segments and paging.

#include "adapters/twilio/emulator_impl.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::adapters::twilio {

namespace internal {

// --- helpers for handlers -------------------------------------------------------------------

api_error not_found(int code, const std::string& what) {
  return api_error(404, code, "The requested resource " + what + " was not found");
}

api_error missing_parameter(const std::string& name) {
  return api_error(400, 20001, "Missing required parameter " + name + " in the post body");
}

json::value json_field(const std::string& name, const std::string& text, int code) {
  boost::system::error_code ec;
  auto value = json::parse(text, ec);
  if (ec)
    throw api_error(400, code,
                    "Invalid " + name + ": must be a JSON string such as {\"key\":\"value\"} (" +
                        ec.message() + ")");
  return value;
}

std::optional<std::int64_t> int_field(const call& c, const std::string& name, std::int64_t min,
                                      std::int64_t max) {
  auto text = c.param(name);
  if (!text)
    return std::nullopt;
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (text->empty() || ec != std::errc{} || end != text->data() + text->size() || v < min ||
      v > max)
    throw api_error(400, 20001,
                    "Invalid " + name + ": must be an integer from " + std::to_string(min) +
                        " to " + std::to_string(max) + ", got '" + *text + "'");
  return v;
}

std::optional<bool> bool_field(const call& c, const std::string& name) {
  auto text = c.param(name);
  if (!text)
    return std::nullopt;
  std::string lower;
  for (char ch : *text)
    lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (lower == "true")
    return true;
  if (lower == "false")
    return false;
  throw api_error(400, 20001, "Invalid " + name + ": must be true or false, got '" + *text + "'");
}

std::string if_match(const call& c) {
  auto value = c.header("If-Match");
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
    value = value.substr(1, value.size() - 2);
  return value;
}

namespace {

std::string percent_encode(std::string_view text, bool keep_slash) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += ch;
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0xf];
    }
  }
  return out;
}

}  // namespace

std::string url_segment(std::string_view text) { return percent_encode(text, false); }

std::vector<std::string> paging_fields(std::vector<std::string> more) {
  for (const char* f : {"PageSize", "Page", "PageToken"})
    more.emplace_back(f);
  return more;
}

page_cut cut_page(const call& c, json::array all, std::int64_t max_page_size,
                  const char* link_field) {
  page_cut cut;
  cut.page_size = int_field(c, "PageSize", 1, max_page_size).value_or(50);
  cut.page = int_field(c, "Page", 0, 1'000'000).value_or(0);
  cut.offset = cut.page * cut.page_size;
  const auto token = c.param("PageToken");
  if (token) {
    std::int64_t v = -1;
    const char* last = token->data() + token->size();
    auto [end, ec] = token->size() > 2 && token->compare(0, 2, "PT") == 0
                         ? std::from_chars(token->data() + 2, last, v)
                         : std::from_chars_result{last, std::errc::invalid_argument};
    if (ec != std::errc{} || end != last || v < 0)
      throw api_error(
          400, 20001,
          "Invalid PageToken '" + *token + "': use the " + link_field + " of a list response");
    cut.offset = v;
  }
  const auto total = static_cast<std::int64_t>(all.size());
  for (std::int64_t i = cut.offset; i < total && i < cut.offset + cut.page_size; ++i)
    cut.records.push_back(std::move(all[static_cast<std::size_t>(i)]));
  cut.first = {0, std::nullopt};
  cut.current = {cut.page, token ? std::optional<std::int64_t>{cut.offset} : std::nullopt};
  if (cut.offset > 0)
    cut.previous = page_cut::link{cut.page > 0 ? cut.page - 1 : 0,
                                  std::max<std::int64_t>(0, cut.offset - cut.page_size)};
  if (cut.offset + cut.page_size < total)
    cut.next = page_cut::link{cut.page + 1, cut.offset + cut.page_size};
  return cut;
}

json::object page_of(const context& ctx, const call& c, std::string_view product,
                     const std::string& path, const char* key, json::array all,
                     std::int64_t max_page_size) {
  auto cut = cut_page(c, std::move(all), max_page_size, "next_page_url or previous_page_url");
  // The filters of this request go into every paging URL, the paging fields are replaced.
  std::string filters;
  for (const auto& [name, value] : c.http.params) {
    if (name == "PageSize" || name == "Page" || name == "PageToken")
      continue;
    filters += "&" + percent_encode(name, false) + "=" + percent_encode(value, false);
  }
  auto url_of = [&](const page_cut::link& l) {
    std::string u = ctx.url(product, path) + "?PageSize=" + std::to_string(cut.page_size) +
                    "&Page=" + std::to_string(l.first);
    if (l.second)
      u += "&PageToken=PT" + std::to_string(*l.second);
    return u + filters;
  };
  auto maybe_url = [&](const std::optional<page_cut::link>& l) {
    return l ? json::value(url_of(*l)) : json::value(nullptr);
  };

  json::object meta;
  meta["page"] = cut.page;
  meta["page_size"] = cut.page_size;
  meta["first_page_url"] = url_of(cut.first);
  meta["previous_page_url"] = maybe_url(cut.previous);
  meta["url"] = url_of(cut.current);
  meta["next_page_url"] = maybe_url(cut.next);
  meta["key"] = key;

  json::object out;
  out[key] = std::move(cut.records);
  out["meta"] = std::move(meta);
  return out;
}

}  // namespace internal

}  // namespace switchboard::adapters::twilio
