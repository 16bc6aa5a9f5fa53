#include "jobs/propagation/config_rules.hpp"

#include "core/config/schema.hpp"
#include "core/target_mapping.hpp"
#include "core/type_pattern.hpp"
#include "core/url.hpp"

#include <boost/json/value.hpp>

#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace switchboard {

namespace {

namespace json = boost::json;
using namespace core::config_schema;

check dotted_path_check(const std::string& dotted, const std::string& path) {
  if (dotted.front() == '.' || dotted.back() == '.' || dotted.find("..") != std::string::npos)
    return fail(path, "is \"" + dotted + "\", not a dotted path",
                "member names joined by '.', e.g. \"applicationId\" or \"applicant.phone\"");
  return std::nullopt;
}

std::vector<key_rule> message_mapping_rules(amqp_message_mapping& m) {
  return {
      {"message_type",
       non_empty_string(m.message_type,
                        "a MassTransit message URN, e.g. "
                        "\"urn:message:Crm.Events:ApplicationStatusChanged\""),
       {}},
      {"event_type",
       non_empty_string(m.event_type,
                        "a switchboard event type, e.g. \"application.status_changed\""),
       {}},
      {"entity_kind", non_empty_string(m.entity_kind, "an entity kind, e.g. \"application\""), {}},
      {"entity_id_field",
       non_empty_string(m.entity_id_field, "a dotted path in the message, e.g. \"applicationId\""),
       {}},
      {"entity_version_field",
       any_string(m.entity_version_field,
                  "a dotted path in the message holding a non-negative integer, or \"\""),
       {}},
  };
}

check finish_message_mapping(amqp_message_mapping& m, const std::string& path, const json::value&) {
  const std::string example = "see config/crm-state-sync.json for an example";
  for (auto [value, key] :
       {std::pair{&m.message_type, "message_type"}, std::pair{&m.event_type, "event_type"},
        std::pair{&m.entity_kind, "entity_kind"}, std::pair{&m.entity_id_field, "entity_id_field"}})
    if (auto error = require(*value, path, key, example))
      return error;
  if (auto error = dotted_path_check(m.entity_id_field, child_path(path, "entity_id_field")))
    return error;
  if (!m.entity_version_field.empty())
    if (auto error =
            dotted_path_check(m.entity_version_field, child_path(path, "entity_version_field")))
      return error;
  return std::nullopt;
}

std::vector<key_rule> amqp_source_rules(amqp_source_config& a) {
  return {
      {"name", non_empty_string(a.name, "a unique name for this source, e.g. \"crm\""), {}},
      {"host", host(a.host), {}},
      {"port", port_number(a.port), {}},
      {"vhost", non_empty_string(a.vhost, "a RabbitMQ virtual host, e.g. \"/\""), {}},
      {"username",
       non_empty_string(a.username,
                        "a RabbitMQ user name (the password comes from "
                        "SWITCHBOARD_AMQP_PASSWORD)"),
       {}},
      {"queue",
       non_empty_string(a.queue, "the durable queue to consume, e.g. \"switchboard.crm\""),
       {}},
      {"exchanges",
       string_list(a.exchanges,
                   "fan-out exchange names, e.g. \"Crm.Events:ApplicationStatusChanged\""),
       {}},
      {"declare", boolean(a.declare), {}},
      {"error_queue",
       any_string(a.error_queue, "a queue name; \"\" means the queue's name + \"_error\""),
       {}},
      {"prefetch",
       integer(1, 65535, {}, [&a](std::int64_t n) { a.prefetch = static_cast<std::uint16_t>(n); }),
       {}},
      {"heartbeat_s", seconds(0, 3600, a.heartbeat), {}},
      {"reconnect_initial_ms", millis(1, one_hour_ms, a.reconnect_initial), {}},
      {"reconnect_max_ms", millis(1, one_hour_ms, a.reconnect_max), {}},
      {"event_source",
       any_string(a.event_source,
                  "a CloudEvents source, e.g. \"crm/rabbitmq\"; \"\" means "
                  "\"amqp/\" + queue"),
       {}},
      {"messages",
       section_list<amqp_message_mapping>(a.messages, message_mapping_rules, finish_message_mapping,
                                          "message mappings"),
       {}},
  };
}

check finish_amqp_source(amqp_source_config& a, const std::string& path, const json::value&) {
  if (auto error = require(a.name, path, "name", "a unique name for this source, e.g. \"crm\""))
    return error;
  if (auto error =
          require(a.queue, path, "queue", "the durable queue to consume, e.g. \"switchboard.crm\""))
    return error;
  if (a.messages.empty())
    return fail(child_path(path, "messages"), "is missing or empty",
                "at least one mapping from a MassTransit message type to an event type and entity");
  if (a.reconnect_initial > a.reconnect_max)
    return fail(child_path(path, "reconnect_initial_ms"),
                "is " + std::to_string(a.reconnect_initial.count()) +
                    ", larger than reconnect_max_ms (" + std::to_string(a.reconnect_max.count()) +
                    ")",
                "at most reconnect_max_ms");
  if (a.error_queue.empty())
    a.error_queue = a.queue + "_error";
  if (a.error_queue == a.queue)
    return fail(child_path(path, "error_queue"),
                "is the consumed queue itself, so bad messages would loop",
                "another queue, e.g. \"" + a.queue + "_error\"");
  if (a.event_source.empty())
    a.event_source = "amqp/" + a.queue;
  return std::nullopt;
}

std::vector<key_rule> lookup_rules(lookup_config& l) {
  return {
      {"name", non_empty_string(l.name, "a unique name, e.g. \"account_manager\""), {}},
      {"entity_kind",
       non_empty_string(l.entity_kind, "the entity kind it enriches, e.g. \"application\""),
       {}},
      {"sql",
       non_empty_string(l.sql,
                        "one SELECT with ? placeholders, e.g. \"SELECT name, phone FROM "
                        "account_managers WHERE id = ?\""),
       {}},
      {"params",
       string_list(l.params, "dotted state paths bound to the ? placeholders, in order"),
       {}},
      {"into",
       non_empty_string(l.into, "the state field that receives the row, e.g. \"accountManager\""),
       {}},
      {"invalidated_by",
       any_string(l.invalidated_by, "an event type, e.g. \"account_manager.updated\""),
       {}},
      {"invalidation_keys",
       string_list(l.invalidation_keys,
                   "dotted paths in the invalidating event's data, one per param"),
       {}},
  };
}

check finish_lookup(lookup_config& l, const std::string& path, const json::value&) {
  for (auto [value, key, allowed] :
       {std::tuple{&l.name, "name", "a unique name, e.g. \"account_manager\""},
        std::tuple{&l.entity_kind, "entity_kind", "the entity kind it enriches"},
        std::tuple{&l.sql, "sql", "one SELECT with ? placeholders"},
        std::tuple{&l.into, "into", "the state field that receives the row"}})
    if (auto error = require(*value, path, key, allowed))
      return error;
  for (std::size_t i = 0; i < l.params.size(); ++i)
    if (auto error = dotted_path_check(l.params[i],
                                       child_path(path, "params") + "[" + std::to_string(i) + "]"))
      return error;
  if (!l.invalidated_by.empty() && l.invalidation_keys.size() != l.params.size())
    return fail(child_path(path, "invalidation_keys"),
                "has " + std::to_string(l.invalidation_keys.size()) + " paths but params has " +
                    std::to_string(l.params.size()),
                "one path per param: where the invalidating event's data holds each parameter");
  if (l.invalidated_by.empty() && !l.invalidation_keys.empty())
    return fail(child_path(path, "invalidation_keys"), "is given without invalidated_by",
                "set invalidated_by to the event type that changes the looked-up row");
  return std::nullopt;
}

std::vector<key_rule> target_rules(target_config& t) {
  using k = target_config::kind;
  return {
      {"name", non_empty_string(t.name, "a unique name, e.g. \"application-docs\""), {}},
      {"type",
       one_of<k>(t.type, {{"sync_document", k::sync_document},
                          {"sync_map_item", k::sync_map_item},
                          {"taskrouter_worker", k::taskrouter_worker}}),
       {}},
      {"entity_kind",
       non_empty_string(t.entity_kind, "the entity kind written here, e.g. \"application\""),
       {}},
      {"service", non_empty_string(t.service, "a Sync service SID, e.g. \"IS0123...\""), {}},
      {"document",
       non_empty_string(t.document, "a document name template, e.g. \"application-{id}\""),
       {}},
      {"map", non_empty_string(t.map, "a Sync map unique name, e.g. \"applications\""), {}},
      {"key", non_empty_string(t.key, "a map item key template, e.g. \"{id}\""), {}},
      {"workspace",
       non_empty_string(t.workspace, "a TaskRouter workspace SID, e.g. \"WS0123...\""),
       {}},
      {"worker", non_empty_string(t.worker, "a worker SID template, e.g. \"{workerSid}\""), {}},
      {"fields",
       string_pairs(t.fields, "output field -> dotted state path, e.g. {\"status\": \"status\"}"),
       {}},
      {"concurrency", count(1, 64, t.concurrency), {}},
      {"min_interval_ms", millis(0, one_hour_ms, t.min_interval), {}},
      {"max_attempts", count(1, 1000, t.max_attempts), {}},
      {"backoff_initial_ms", millis(1, one_hour_ms, t.backoff_initial), {}},
      {"backoff_max_ms", millis(1, one_hour_ms, t.backoff_max), {}},
  };
}

check finish_target(target_config& t, const std::string& path, const json::value& given) {
  using k = target_config::kind;
  const auto& obj = given.get_object();
  if (!obj.contains("type"))
    return fail(child_path(path, "type"), "is missing",
                "one of 'sync_document', 'sync_map_item', 'taskrouter_worker'");
  if (auto error = require(t.name, path, "name", "a unique name, e.g. \"application-docs\""))
    return error;
  if (auto error = require(t.entity_kind, path, "entity_kind", "the entity kind written here"))
    return error;
  // Members that belong to another kind of target are mistakes worth naming.
  std::vector<std::string_view> needed;
  std::vector<std::string_view> foreign;
  switch (t.type) {
    case k::sync_document:
      needed = {"service", "document"};
      foreign = {"map", "key", "workspace", "worker"};
      break;
    case k::sync_map_item:
      needed = {"service", "map"};
      foreign = {"document", "workspace", "worker"};
      break;
    case k::taskrouter_worker:
      needed = {"workspace", "worker"};
      foreign = {"service", "document", "map", "key"};
      break;
  }
  const std::string type_name(obj.at("type").get_string().data(),
                              obj.at("type").get_string().size());
  for (auto key : needed)
    if (!obj.contains(json::string_view(key.data(), key.size())))
      return fail(child_path(path, key), "is missing",
                  "required for a target of type '" + type_name + "'");
  for (auto key : foreign)
    if (obj.contains(json::string_view(key.data(), key.size())))
      return fail(child_path(path, key), "does not apply to a target of type '" + type_name + "'",
                  "the keys of that type only: " + quoted_list(needed) + " and the common ones");
  // What a target means (templates, fields, limits) is checked by the same code that checks
  // a target built in a host program: core::target_problem. Here only its key names change
  // to the file's (`min_interval_ms`, `fields.<name>`).
  if (auto p = core::target_problem(t)) {
    std::string key = p->key;
    if (key == "min_interval" || key == "backoff_initial" || key == "backoff_max")
      key += "_ms";
    std::string key_path = child_path(path, key);
    if (key.rfind("fields[", 0) == 0) {
      const auto i = static_cast<std::size_t>(std::stoul(key.substr(7)));
      if (i < t.fields.size())
        key_path = child_path(child_path(path, "fields"), t.fields[i].first);
    }
    return fail(key_path, p->problem, p->allowed);
  }
  return std::nullopt;
}

apply_fn base_url(std::string& target) {
  const std::string allowed =
      "\"\" for Twilio's own hosts, or http(s)://HOST[:PORT] of a switchboard Twilio emulator, "
      "e.g. \"http://127.0.0.1:8089\"";
  return [&target, allowed, url = http_url(target, allowed)](const json::value& v,
                                                             const std::string& path) -> check {
    if (auto error = url(v, path))
      return error;
    if (core::split_http_url(target).user)
      return fail(path,
                  "is " + describe(json::value(core::redacted_url(target))) +
                      ", a URL with a user and password; Twilio's credentials come from "
                      "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, never from the file",
                  allowed);
    return std::nullopt;
  };
}

/// `sources`, `enrichment`, `state`, `targets` and `twilio`, with setters that write into `cfg`.
std::vector<key_rule> propagation_keys(config& cfg) {
  return {
      {"sources",
       {},
       {
           {"amqp",
            section_list<amqp_source_config>(cfg.amqp_sources, amqp_source_rules,
                                             finish_amqp_source, "RabbitMQ sources"),
            {}},
       }},
      {"enrichment",
       {},
       {
           {"database",
            non_empty_string(cfg.enrichment.database, "the path of a SQLite database file"),
            {}},
           {"cache_ttl_ms", millis(0, one_day_ms, cfg.enrichment.cache_ttl), {}},
           {"cache_max_entries", count(0, 100'000'000, cfg.enrichment.cache_max_entries), {}},
           {"lookups",
            section_list<lookup_config>(cfg.enrichment.lookups, lookup_rules, finish_lookup,
                                        "lookups"),
            {}},
       }},
      {"state",
       {},
       {
           {"pattern",
            non_empty_string(cfg.state.pattern, "an event type pattern: \"a.b\", \"a.*\" or \"*\""),
            {}},
           {"partitions", count(1, 64, cfg.state.partitions), {}},
       }},
      {"targets",
       section_list<target_config>(
           cfg.targets, target_rules, finish_target,
           "targets (Sync documents, Sync map items or TaskRouter workers)"),
       {}},
      {"twilio",
       {},
       {
           {"base_url", base_url(cfg.twilio.base_url), {}},
           {"connect_timeout_ms", millis(1, one_hour_ms, cfg.twilio.connect_timeout), {}},
           {"read_timeout_ms", millis(1, one_hour_ms, cfg.twilio.read_timeout), {}},
       }},
  };
}

/// Checks across the entity-state sections.
check check_propagation(const config& cfg, const json::value&) {
  if (auto error =
          unique_names(cfg.amqp_sources, "sources.amqp", [](const auto& a) { return a.name; }))
    return error;
  for (std::size_t i = 0; i < cfg.amqp_sources.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (cfg.amqp_sources[i].queue == cfg.amqp_sources[j].queue &&
          cfg.amqp_sources[i].host == cfg.amqp_sources[j].host &&
          cfg.amqp_sources[i].port == cfg.amqp_sources[j].port &&
          cfg.amqp_sources[i].vhost == cfg.amqp_sources[j].vhost)
        return fail("sources.amqp[" + std::to_string(i) + "].queue",
                    "is \"" + cfg.amqp_sources[i].queue + "\", consumed by sources.amqp[" +
                        std::to_string(j) + "] too, so the two would split its messages",
                    "one source per queue");
  if (auto error = unique_names(cfg.enrichment.lookups, "enrichment.lookups",
                                [](const auto& l) { return l.name; }))
    return error;
  if (auto error = unique_names(cfg.targets, "targets", [](const auto& t) { return t.name; }))
    return error;
  if (!cfg.enrichment.lookups.empty() && cfg.enrichment.database.empty())
    return fail("enrichment.database", "is missing, but enrichment.lookups are given",
                "the path of the SQLite database the lookups query");
  std::string why;
  if (!core::type_pattern::parse(cfg.state.pattern, why))
    return fail("state.pattern", why, "\"a.b\", \"a.*\" or \"*\"");
  return std::nullopt;
}

}  // namespace

core::config_section propagation_config_section() { return {propagation_keys, check_propagation}; }

}  // namespace switchboard
