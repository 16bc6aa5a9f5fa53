// What the leads job answers to GET: leads, conversations, dealers, invocations, form leads;
// read on the engine's API connection beside the runners. And the JSON shapes they share.

#include "jobs/leads/services.hpp"

#include <cstdlib>

namespace switchboard::jobs::leads {

keyed_answer answer(int status, json::value body) { return keyed_answer{status, std::move(body)}; }

keyed_answer error(int status, const std::string& why, json::object extra) {
  extra["error"] = why;
  return answer(status, std::move(extra));
}

std::string str(const json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string{};
}

json::value lead_json(const lead_row& l, const std::string& conversation_sid) {
  return json::object{{"id", l.id},
                      {"status", l.status},
                      {"dealer_id", l.dealer_id},
                      {"location_id", l.location_id},
                      {"customer_name", l.customer_name},
                      {"customer_phone", l.customer_phone},
                      {"message", l.message},
                      {"location_phone", l.location_phone},
                      {"proxy_number", l.proxy_number},
                      {"conversation_id", l.conversation_id},
                      {"conversation_sid", conversation_sid},
                      {"created_at", l.created_at},
                      {"opened_at", l.opened_at},
                      {"closed_at", l.closed_at},
                      {"close_reason", l.close_reason},
                      {"replaced_by", l.replaced_by},
                      {"error", l.error},
                      {"customer_messages", l.customer_messages},
                      {"dealer_messages", l.dealer_messages},
                      {"reminders_sent", l.reminders_sent}};
}

json::value invocation_json(const actors::invocation_view& v) {
  json::array steps;
  for (const auto& s : v.steps)
    steps.push_back(json::object{{"name", s.name},
                                 {"status", s.status},
                                 {"attempts", s.attempts},
                                 {"error", s.error},
                                 {"updated_at", s.updated_at}});
  json::value result = nullptr;
  if (!v.row.result.empty()) {
    json::error_code ec;
    result = json::parse(v.row.result, ec);
  }
  return json::object{{"id", v.row.id()},
                      {"service", v.row.service},
                      {"key", v.row.key},
                      {"handler", v.row.handler},
                      {"status", v.row.status},
                      {"result", result},
                      {"error", v.row.error},
                      {"created_at", v.row.created_at},
                      {"updated_at", v.row.updated_at},
                      {"steps", std::move(steps)}};
}

std::optional<std::uint64_t> invocation_number(const std::string& id) {
  if (id.rfind("inv-", 0) != 0 || id.size() < 5 || id.size() > 24)
    return std::nullopt;
  std::uint64_t n = 0;
  for (std::size_t i = 4; i < id.size(); ++i) {
    if (id[i] < '0' || id[i] > '9')
      return std::nullopt;
    n = n * 10 + static_cast<std::uint64_t>(id[i] - '0');
  }
  return n;
}

void lead_services::with_leads(const std::function<void(lead_connection&)>& fn) {
  engine->with_connection(
      [&](ports::durable_connection& c) { fn(static_cast<lead_connection&>(c)); });
}

std::optional<lead_row> lead_services::read_lead(const std::string& id, std::string* sid) {
  std::optional<lead_row> out;
  with_leads([&](lead_connection& db) {
    auto& s = db.leads;
    out = s.lead(id);
    if (out && sid != nullptr)
      if (auto c = s.conversation(out->conversation_id))
        *sid = c->sid;
  });
  return out;
}

keyed_answer lead_services::lead_answer(const std::string& id, int status,
                                        const std::string& invocation) {
  std::string sid;
  auto lead = read_lead(id, &sid);
  if (!lead)
    return error(404, "no lead " + id);
  return answer(status, json::object{{"lead", lead_json(*lead, sid)}, {"invocation", invocation}});
}

keyed_answer lead_services::get(const keyed_request& r) {
  const auto& service = r.service;
  const auto& key = r.key;
  if (service == "leads") {
    std::string sid;
    auto lead = read_lead(key, &sid);
    return lead ? answer(200, lead_json(*lead, sid)) : error(404, "no lead " + key);
  }
  if (service == "conversations") {
    std::optional<conversation_row> c;
    std::vector<std::string> of;
    with_leads([&](lead_connection& db) {
      auto& s = db.leads;
      c = s.conversation(key);
      if (c)
        of = s.conversation_leads(c->id, false);
    });
    if (!c)
      return error(404, "no conversation " + key + " (ids look like cv-12)");
    json::array leads_of;
    for (auto& l : of)
      leads_of.push_back(json::value(l));
    return answer(200, json::object{{"id", c->id},
                                    {"status", c->status},
                                    {"customer_phone", c->customer_phone},
                                    {"location_phone", c->location_phone},
                                    {"proxy_number", c->proxy_number},
                                    {"sid", c->sid},
                                    {"unique_name", c->unique_name()},
                                    {"created_at", c->created_at},
                                    {"closed_at", c->closed_at},
                                    {"leads", std::move(leads_of)}});
  }
  if (service == "dealers") {
    std::vector<location_row> locs;
    std::vector<std::size_t> in_use;
    const auto& pool = cfg.leads.proxy_numbers;
    with_leads([&](lead_connection& db) {
      auto& s = db.leads;
      locs = s.locations(key);
      // The numbers of the pool bound with the location's phone by a conversation not yet
      // closed: each conversation at a location needs a number of its own.
      for (const auto& l : locs) {
        const auto held = s.proxies_in_use(l.phone, l.phone).held;
        std::size_t n = 0;
        for (const auto& number : pool)
          n += held.count(number);
        in_use.push_back(n);
      }
    });
    if (locs.empty())
      return error(404, "no dealer " + key);
    json::array out;
    for (std::size_t i = 0; i < locs.size(); ++i) {
      const auto& l = locs[i];
      out.push_back(json::object{
          {"id", l.location_id},
          {"name", l.name},
          {"phone", l.phone},
          {"proxy_numbers",
           json::object{
               {"in_use", in_use[i]}, {"total", pool.size()}, {"free", pool.size() - in_use[i]}}}});
    }
    return answer(
        200, json::object{
                 {"id", key}, {"name", locs.front().dealer_name}, {"locations", std::move(out)}});
  }
  if (service == "invocations") {
    if (key.empty()) {
      // Newest first, a page at a time: `next` asks for the ones numbered below this page's last.
      std::size_t limit = 100;
      std::uint64_t before = 0;
      for (const auto& [name, value] : r.query) {
        if (name == "limit") {
          char* end = nullptr;
          const auto v = std::strtoull(value.c_str(), &end, 10);
          if (value.empty() || *end != '\0' || v < 1 || v > 1000)
            return error(400, "query parameter 'limit': must be an integer from 1 to 1000, got '" +
                                  value.substr(0, 64) + "'");
          limit = static_cast<std::size_t>(v);
        } else if (name == "before") {
          auto n = invocation_number(value);
          if (!n)
            return error(400,
                         "query parameter 'before': must be an invocation id like inv-12 "
                         "(the `next` link of the page before gives it), got '" +
                             value.substr(0, 64) + "'");
          before = *n;
        }
      }
      std::vector<invocation_row> rows;
      with_leads([&](lead_connection& db) {
        rows = db.journal().invocations(r.status_filter, limit + 1, before);
      });
      const bool more = rows.size() > limit;
      if (more)
        rows.resize(limit);
      json::array out;
      for (auto& row : rows)
        out.push_back(invocation_json({row, {}}));
      json::object page{{"invocations", std::move(out)}};
      if (more) {
        std::string next = "/v1/invocations?limit=" + std::to_string(limit) + "&before=inv-" +
                           std::to_string(rows.back().n);
        if (!r.status_filter.empty())
          next += "&status=" + r.status_filter;
        page["next"] = next;
      }
      return answer(200, std::move(page));
    }
    auto n = invocation_number(key);
    auto v = n ? engine->view(*n) : std::nullopt;
    return v ? answer(200, invocation_json(*v))
             : error(404, "no invocation " + key + " (ids look like inv-12)");
  }
  if (service == "form-leads") {
    std::optional<std::pair<std::string, std::string>> form;
    std::vector<invocation_row> forwards;
    with_leads([&](lead_connection& db) {
      auto& s = db.leads;
      form = s.form_lead(key);
      if (form)
        forwards = db.journal().invocations_of("forwards", key + ":");
    });
    if (!form)
      return error(404, "no form lead " + key);
    json::array out;
    for (auto& f : forwards)
      out.push_back(json::object{{"target", f.key.substr(f.key.rfind(':') + 1)},
                                 {"status", f.status},
                                 {"invocation", f.id()},
                                 {"error", f.error}});
    json::error_code ec;
    auto lead = json::parse(form->first, ec);
    return answer(200, json::object{{"id", key},
                                    {"received_at", form->second},
                                    {"lead", lead},
                                    {"forwards", std::move(out)}});
  }
  return error(404, "no such service: " + service);
}

}  // namespace switchboard::jobs::leads
