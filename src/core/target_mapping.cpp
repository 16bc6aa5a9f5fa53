#include "core/target_mapping.hpp"

#include "core/json_path.hpp"

#include <boost/json/value.hpp>

#include <set>
#include <utility>

namespace switchboard::core {

namespace json = boost::json;
using target_kind = target_config::kind;

const char* to_string(target_config::kind k) noexcept {
  switch (k) {
    case target_kind::sync_document: return "sync_document";
    case target_kind::sync_map_item: return "sync_map_item";
    case target_kind::taskrouter_worker: return "taskrouter_worker";
  }
  return "?";
}

std::string target_object::describe() const {
  switch (type) {
    case target_kind::sync_document: return "document " + service + "/" + document;
    case target_kind::sync_map_item: return "map item " + service + "/" + map + "/" + key;
    case target_kind::taskrouter_worker: return "worker " + workspace + "/" + worker;
  }
  return {};
}

std::string target_object::pace_group() const {
  switch (type) {
    case target_kind::sync_document: return "document " + service + "/" + document;
    case target_kind::sync_map_item: return "map " + service + "/" + map;
    case target_kind::taskrouter_worker: return "worker " + workspace + "/" + worker;
  }
  return {};
}

namespace {

/// Renders one template member; false with `error` naming the member and the placeholder.
bool render(const char* member, const std::string& tmpl, std::string_view entity_kind,
            std::string_view id, const json::value& state, std::string& out, std::string* error) {
  auto r = render_template(tmpl, entity_kind, id, state);
  if (r.text && !r.text->empty()) {
    out = std::move(*r.text);
    return true;
  }
  if (error != nullptr) {
    *error = std::string{member} + " template '" + tmpl + "' for " + std::string{entity_kind} +
             " '" + std::string{id} + "': " +
             (r.text ? std::string{"renders an empty name"}
                     : "{" + r.missing + "} has no scalar value in the state") +
             "; fix the state or the target's template";
  }
  return false;
}

std::optional<target_object> object_of(const target_config& t, std::string_view entity_kind,
                                       std::string_view id, const json::value& state,
                                       std::string* error) {
  target_object o;
  o.type = t.type;
  switch (t.type) {
    case target_kind::sync_document:
      o.service = t.service;
      if (!render("document", t.document, entity_kind, id, state, o.document, error))
        return std::nullopt;
      break;
    case target_kind::sync_map_item:
      o.service = t.service;
      if (!render("map", t.map, entity_kind, id, state, o.map, error) ||
          !render("key", t.key, entity_kind, id, state, o.key, error))
        return std::nullopt;
      break;
    case target_kind::taskrouter_worker:
      o.workspace = t.workspace;
      if (!render("worker", t.worker, entity_kind, id, state, o.worker, error))
        return std::nullopt;
      break;
  }
  return o;
}

}  // namespace

std::optional<target_object> target_object_of(const target_config& target, std::string_view kind,
                                              std::string_view id, const json::object& state,
                                              std::string* error) {
  const json::value whole(state);
  return object_of(target, kind, id, whole, error);
}

target_mapping map_target(const target_config& target, std::string_view kind, std::string_view id,
                          const json::object& state) {
  target_mapping out;
  const json::value whole(state);
  auto object = object_of(target, kind, id, whole, &out.error);
  if (!object)
    return out;
  target_write w{std::move(*object), {}};
  if (target.fields.empty()) {
    w.payload = state;
  } else {
    for (const auto& [field, path] : target.fields) {
      const auto* v = find_path(whole, path);
      w.payload[field] = v != nullptr ? *v : json::value(nullptr);
    }
  }
  out.write = std::move(w);
  return out;
}

std::optional<target_config_problem> target_problem(const target_config& t) {
  auto problem = [](std::string key, std::string what,
                    std::string allowed) -> std::optional<target_config_problem> {
    return target_config_problem{std::move(key), std::move(what), std::move(allowed)};
  };
  if (t.name.empty())
    return problem("name", "is empty", "a unique name for the target");
  if (t.entity_kind.empty())
    return problem("entity_kind", "is empty", "the kind of entity written, e.g. \"application\"");

  auto required = [&](const char* member, const std::string& value,
                      const char* allowed) -> std::optional<target_config_problem> {
    if (value.empty())
      return problem(
          member, std::string{"is required for type "} + to_string(t.type) + " but empty", allowed);
    return std::nullopt;
  };
  auto templ = [&](const char* member, const std::string& value,
                   const char* allowed) -> std::optional<target_config_problem> {
    if (auto p = required(member, value, allowed))
      return p;
    if (auto syntax = template_problem(value))
      return problem(member, "'" + value + "' " + *syntax,
                     "a template: text with {id}, {kind} or {dotted.state.path} placeholders");
    return std::nullopt;
  };

  std::optional<target_config_problem> p;
  switch (t.type) {
    case target_kind::sync_document:
      if ((p = required("service", t.service, "a Sync service SID (IS...)")) ||
          (p = templ("document", t.document, "a unique name template, e.g. \"application-{id}\"")))
        return p;
      break;
    case target_kind::sync_map_item:
      if ((p = required("service", t.service, "a Sync service SID (IS...)")) ||
          (p = templ("map", t.map, "a map unique name, e.g. \"applications\"")) ||
          (p = templ("key", t.key, "a key template, e.g. \"{id}\"")))
        return p;
      break;
    case target_kind::taskrouter_worker:
      if ((p = required("workspace", t.workspace, "a TaskRouter workspace SID (WS...)")) ||
          (p = templ("worker", t.worker, "a worker SID template, e.g. \"{workerSid}\"")))
        return p;
      break;
  }

  std::set<std::string> outputs;
  for (std::size_t i = 0; i < t.fields.size(); ++i) {
    const auto& [field, path] = t.fields[i];
    const auto key = "fields[" + std::to_string(i) + "]";
    if (field.empty())
      return problem(key, "has an empty output field name", "a non-empty field name");
    if (!outputs.insert(field).second)
      return problem(key, "repeats the output field '" + field + "'", "each output field once");
    if (path.empty() || path.front() == '.' || path.back() == '.' ||
        path.find("..") != std::string::npos)
      return problem(key, "has the malformed state path '" + path + "' for '" + field + "'",
                     "a dotted path into the state, e.g. \"accountManager.name\"");
  }
  if (t.concurrency == 0)
    return problem("concurrency", "is 0", "an integer of at least 1");
  if (t.max_attempts == 0)
    return problem("max_attempts", "is 0", "an integer of at least 1");
  if (t.min_interval.count() < 0)
    return problem("min_interval", "is negative", "a duration of 0 ms or more (50 ms: 20/s)");
  if (t.backoff_initial.count() <= 0)
    return problem("backoff_initial", "is not positive", "a duration of at least 1 ms");
  if (t.backoff_max < t.backoff_initial)
    return problem("backoff_max", "is shorter than backoff_initial",
                   "a duration at least as long as backoff_initial");
  return std::nullopt;
}

}  // namespace switchboard::core
