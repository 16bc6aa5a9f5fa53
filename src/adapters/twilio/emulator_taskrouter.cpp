// Twilio TaskRouter as the emulator serves it: Workspaces (with Twilio's default Activities)
// and Workers, whose Attributes are replaced whole on update and guarded by If-Match.

#include "adapters/twilio/emulator_impl.hpp"

#include <algorithm>
#include <cctype>
#include <string>
#include <utility>

namespace switchboard::adapters::twilio::internal {

namespace {

constexpr std::string_view product = "taskrouter";
constexpr std::size_t max_worker_name = 64;
constexpr std::int64_t taskrouter_max_page = 1000;  // TaskRouter's lists take PageSize up to 1000

std::string workspace_path(const workspace& w) { return "/v1/Workspaces/" + w.sid; }

workspace& workspace_of(context& ctx, const std::string& sid) {
  auto& all = ctx.st.workspaces;
  auto it = std::find_if(all.begin(), all.end(), [&](const workspace& w) { return w.sid == sid; });
  if (it == all.end())
    throw not_found(20404, "/Workspaces/" + sid);
  return *it;
}

const activity* find_activity(const workspace& ws, const std::string& sid) {
  auto it = std::find_if(ws.activities.begin(), ws.activities.end(),
                         [&](const activity& a) { return a.sid == sid; });
  return it == ws.activities.end() ? nullptr : &*it;
}

const activity& activity_of(const workspace& ws, const std::string& sid) {
  if (const auto* a = find_activity(ws, sid))
    return *a;
  std::string known;
  for (const auto& a : ws.activities)
    known += (known.empty() ? "" : ", ") + a.sid + " (" + a.friendly_name + ")";
  throw api_error(400, 20001,
                  "Invalid ActivitySid '" + sid + "': Workspace " + ws.sid + " has " + known);
}

worker& worker_of(workspace& ws, const std::string& sid) {
  auto it = std::find_if(ws.workers.begin(), ws.workers.end(),
                         [&](const worker& w) { return w.sid == sid; });
  if (it == ws.workers.end())
    throw not_found(20404, workspace_path(ws) + "/Workers/" + sid);
  return *it;
}

/// TaskRouter's `Available` filter: "true", "1" or "yes" ask for available ones, any other
/// value for unavailable ones.
std::optional<bool> available_filter(const call& c) {
  auto text = c.param("Available");
  if (!text)
    return std::nullopt;
  std::string lower;
  for (char ch : *text)
    lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return lower == "true" || lower == "1" || lower == "yes";
}

// --- JSON -----------------------------------------------------------------------------------

json::object workspace_json(const context& ctx, const workspace& w) {
  const auto path = workspace_path(w);
  json::object links;
  for (const char* nested : {"Activities", "Workers", "TaskQueues", "Tasks", "Workflows",
                             "Statistics", "TaskChannels", "Events"}) {
    std::string key;
    for (const char* ch = nested; *ch != '\0'; ++ch) {
      if (std::isupper(static_cast<unsigned char>(*ch)) && ch != nested)
        key += '_';
      key += static_cast<char>(std::tolower(static_cast<unsigned char>(*ch)));
    }
    links[key] = ctx.url(product, path + "/" + nested);
  }
  const auto name_of = [&](const std::string& sid) -> json::value {
    const auto* a = find_activity(w, sid);
    return a != nullptr ? json::value(a->friendly_name) : json::value(nullptr);
  };
  return {{"account_sid", ctx.options.account_sid},
          {"date_created", rules::iso8601(w.created)},
          {"date_updated", rules::iso8601(w.updated)},
          {"default_activity_name", name_of(w.default_activity_sid)},
          {"default_activity_sid", w.default_activity_sid},
          {"event_callback_url", optional_string(w.event_callback_url)},
          {"events_filter", optional_string(w.events_filter)},
          {"friendly_name", w.friendly_name},
          {"multi_task_enabled", w.multi_task_enabled},
          {"sid", w.sid},
          {"timeout_activity_name", name_of(w.timeout_activity_sid)},
          {"timeout_activity_sid", w.timeout_activity_sid},
          {"prioritize_queue_order", w.prioritize_queue_order},
          {"url", ctx.url(product, path)},
          {"links", std::move(links)}};
}

json::object activity_json(const context& ctx, const workspace& ws, const activity& a) {
  return {{"account_sid", ctx.options.account_sid},
          {"available", a.available},
          {"date_created", rules::iso8601(a.created)},
          {"date_updated", rules::iso8601(a.updated)},
          {"friendly_name", a.friendly_name},
          {"sid", a.sid},
          {"workspace_sid", ws.sid},
          {"url", ctx.url(product, workspace_path(ws) + "/Activities/" + a.sid)},
          {"links", json::object{{"workspace", ctx.url(product, workspace_path(ws))}}}};
}

json::object worker_json(const context& ctx, const workspace& ws, const worker& w) {
  const auto path = workspace_path(ws) + "/Workers/" + w.sid;
  const auto& act = activity_of(ws, w.activity_sid);
  json::object links{{"channels", ctx.url(product, path + "/Channels")},
                     {"reservations", ctx.url(product, path + "/Reservations")},
                     {"activity", ctx.url(product, workspace_path(ws) + "/Activities/" + act.sid)},
                     {"workspace", ctx.url(product, workspace_path(ws))}};
  return {{"account_sid", ctx.options.account_sid},
          {"activity_name", act.friendly_name},
          {"activity_sid", act.sid},
          {"attributes", w.attributes},
          {"available", act.available},
          {"date_created", rules::iso8601(w.created)},
          {"date_status_changed", rules::iso8601(w.status_changed)},
          {"date_updated", rules::iso8601(w.updated)},
          {"friendly_name", w.friendly_name},
          {"sid", w.sid},
          {"workspace_sid", ws.sid},
          {"url", ctx.url(product, path)},
          {"links", std::move(links)}};
}

answer with_etag(answer a, const worker& w) {
  a.headers.emplace_back("ETag", std::to_string(w.version));
  return a;
}

// --- workspaces -----------------------------------------------------------------------------

void add_workspace_routes(route_table& routes) {
  routes.add("POST", "/taskrouter/v1/Workspaces",
             {"FriendlyName", "EventCallbackUrl", "EventsFilter", "MultiTaskEnabled",
              "PrioritizeQueueOrder"},
             [](context& ctx, const call& c) {
               auto name = c.param("FriendlyName");
               if (!name)
                 throw missing_parameter("FriendlyName");
               const auto multi = bool_field(c, "MultiTaskEnabled");
               const auto order = c.param("PrioritizeQueueOrder").value_or("FIFO");
               if (order != "FIFO" && order != "LIFO")
                 throw api_error(400, 20001,
                                 "Invalid PrioritizeQueueOrder '" + order + "': use FIFO or LIFO");
               workspace ws;
               ws.sid = ctx.new_sid("WS");
               ws.friendly_name = *name;
               ws.event_callback_url = c.param("EventCallbackUrl");
               ws.events_filter = c.param("EventsFilter");
               ws.multi_task_enabled = multi.value_or(true);
               ws.prioritize_queue_order = order;
               ws.created = ws.updated = ctx.now;
               // The activities Twilio gives every new workspace.
               const std::pair<const char*, bool> defaults[] = {
                   {"Offline", false}, {"Available", true}, {"Unavailable", false}};
               for (const auto& [activity_name, available] : defaults) {
                 activity a;
                 a.sid = ctx.new_sid("WA");
                 a.friendly_name = activity_name;
                 a.available = available;
                 a.created = a.updated = ctx.now;
                 ws.activities.push_back(std::move(a));
               }
               ws.default_activity_sid = ws.activities.front().sid;
               ws.timeout_activity_sid = ws.activities.front().sid;
               ctx.st.workspaces.push_back(std::move(ws));
               return created(workspace_json(ctx, ctx.st.workspaces.back()));
             });
  routes.add("GET", "/taskrouter/v1/Workspaces", paging_fields({"FriendlyName"}),
             [](context& ctx, const call& c) {
               const auto name = c.param("FriendlyName");
               json::array all;
               for (const auto& ws : ctx.st.workspaces)
                 if (!name || ws.friendly_name == *name)
                   all.push_back(workspace_json(ctx, ws));
               return ok(page_of(ctx, c, product, "/v1/Workspaces", "workspaces", std::move(all),
                                 taskrouter_max_page));
             });
  routes.add("GET", "/taskrouter/v1/Workspaces/{}", {}, [](context& ctx, const call& c) {
    return ok(workspace_json(ctx, workspace_of(ctx, c.arg(0))));
  });
  routes.add("DELETE", "/taskrouter/v1/Workspaces/{}", {}, [](context& ctx, const call& c) {
    auto& ws = workspace_of(ctx, c.arg(0));
    ctx.st.workspaces.remove_if([&](const workspace& o) { return &o == &ws; });
    return no_content();
  });
  routes.add(
      "GET", "/taskrouter/v1/Workspaces/{}/Activities",
      paging_fields({"FriendlyName", "Available"}), [](context& ctx, const call& c) {
        auto& ws = workspace_of(ctx, c.arg(0));
        const auto name = c.param("FriendlyName");
        const auto available = available_filter(c);
        json::array all;
        for (const auto& a : ws.activities)
          if ((!name || a.friendly_name == *name) && (!available || a.available == *available))
            all.push_back(activity_json(ctx, ws, a));
        return ok(page_of(ctx, c, product, workspace_path(ws) + "/Activities", "activities",
                          std::move(all), taskrouter_max_page));
      });
  routes.add("GET", "/taskrouter/v1/Workspaces/{}/Activities/{}", {},
             [](context& ctx, const call& c) {
               auto& ws = workspace_of(ctx, c.arg(0));
               const auto* a = find_activity(ws, c.arg(1));
               if (a == nullptr)
                 throw not_found(20404, workspace_path(ws) + "/Activities/" + c.arg(1));
               return ok(activity_json(ctx, ws, *a));
             });
}

// --- workers --------------------------------------------------------------------------------

std::optional<std::string> worker_attributes(const call& c) {
  auto text = c.param("Attributes");
  if (!text)
    return std::nullopt;
  auto parsed = json_field("Attributes", *text, 20001);
  if (!parsed.is_object())
    throw api_error(400, 20001,
                    "Invalid Attributes: must be a JSON object such as {\"skills\":[\"sales\"]}");
  return text;
}

std::optional<std::string> worker_name(const call& c) {
  auto name = c.param("FriendlyName");
  if (name && (name->empty() || name->size() > max_worker_name))
    throw api_error(400, 20001, "Invalid FriendlyName: use 1 to 64 characters");
  return name;
}

void add_worker_routes(route_table& routes) {
  const std::string base = "/taskrouter/v1/Workspaces/{}/Workers";
  routes.add(
      "POST", base, {"FriendlyName", "ActivitySid", "Attributes"}, [](context& ctx, const call& c) {
        auto& ws = workspace_of(ctx, c.arg(0));
        auto name = worker_name(c);
        if (!name)
          throw missing_parameter("FriendlyName");
        auto attributes = worker_attributes(c);
        auto activity_sid = c.param("ActivitySid").value_or(ws.default_activity_sid);
        activity_of(ws, activity_sid);
        worker w;
        w.sid = ctx.new_sid("WK");
        w.friendly_name = *name;
        w.attributes = attributes.value_or("{}");
        w.activity_sid = activity_sid;
        w.created = w.updated = w.status_changed = ctx.now;
        ws.workers.push_back(std::move(w));
        return with_etag(created(worker_json(ctx, ws, ws.workers.back())), ws.workers.back());
      });
  routes.add(
      "GET", base, paging_fields({"ActivityName", "ActivitySid", "Available", "FriendlyName"}),
      [](context& ctx, const call& c) {
        auto& ws = workspace_of(ctx, c.arg(0));
        const auto activity_name = c.param("ActivityName");
        const auto activity_sid = c.param("ActivitySid");
        const auto available = available_filter(c);
        const auto name = c.param("FriendlyName");
        json::array all;
        for (const auto& w : ws.workers) {
          const auto& act = activity_of(ws, w.activity_sid);
          if ((activity_name && act.friendly_name != *activity_name) ||
              (activity_sid && act.sid != *activity_sid) ||
              (available && act.available != *available) || (name && w.friendly_name != *name))
            continue;
          all.push_back(worker_json(ctx, ws, w));
        }
        return ok(page_of(ctx, c, product, workspace_path(ws) + "/Workers", "workers",
                          std::move(all), taskrouter_max_page));
      });
  routes.add("GET", base + "/{}", {}, [](context& ctx, const call& c) {
    auto& ws = workspace_of(ctx, c.arg(0));
    const auto& w = worker_of(ws, c.arg(1));
    return with_etag(ok(worker_json(ctx, ws, w)), w);
  });
  routes.add("POST", base + "/{}",
             {"ActivitySid", "Attributes", "FriendlyName", "RejectPendingReservations"},
             [](context& ctx, const call& c) {
               auto& ws = workspace_of(ctx, c.arg(0));
               auto& w = worker_of(ws, c.arg(1));
               const auto expected = if_match(c);
               if (!expected.empty() && expected != std::to_string(w.version))
                 throw api_error(412, 20412,
                                 "Precondition failed: Worker " + w.sid + " is at version " +
                                     std::to_string(w.version) + ", not " + expected +
                                     " (If-Match). Fetch it again and retry with its ETag");
               auto name = worker_name(c);
               auto attributes = worker_attributes(c);
               auto activity_sid = c.param("ActivitySid");
               if (activity_sid)
                 activity_of(ws, *activity_sid);
               bool_field(c, "RejectPendingReservations");  // no reservations to reject
               if (name)
                 w.friendly_name = *name;
               if (attributes)
                 w.attributes = *attributes;  // replaces the whole object, as Twilio does
               if (activity_sid && *activity_sid != w.activity_sid) {
                 w.activity_sid = *activity_sid;
                 w.status_changed = ctx.now;
               }
               ++w.version;
               w.updated = ctx.now;
               return with_etag(ok(worker_json(ctx, ws, w)), w);
             });
  routes.add("DELETE", base + "/{}", {}, [](context& ctx, const call& c) {
    auto& ws = workspace_of(ctx, c.arg(0));
    auto& w = worker_of(ws, c.arg(1));
    const auto expected = if_match(c);
    if (!expected.empty() && expected != std::to_string(w.version))
      throw api_error(412, 20412,
                      "Precondition failed: Worker " + w.sid + " is at version " +
                          std::to_string(w.version) + ", not " + expected + " (If-Match)");
    ws.workers.remove_if([&](const worker& o) { return &o == &w; });
    return no_content();
  });
}

}  // namespace

void add_taskrouter_routes(route_table& routes) {
  add_workspace_routes(routes);
  add_worker_routes(routes);
}

json::value dump_taskrouter(context& ctx) {
  json::array out;
  for (const auto& ws : ctx.st.workspaces) {
    auto w_json = workspace_json(ctx, ws);
    json::array activities, workers;
    for (const auto& a : ws.activities)
      activities.push_back(activity_json(ctx, ws, a));
    for (const auto& w : ws.workers)
      workers.push_back(worker_json(ctx, ws, w));
    w_json["activities"] = std::move(activities);
    w_json["workers"] = std::move(workers);
    out.push_back(std::move(w_json));
  }
  return json::object{{"workspaces", std::move(out)}};
}

}  // namespace switchboard::adapters::twilio::internal
