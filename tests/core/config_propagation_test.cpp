// Configuration of entity-state propagation: sources.amqp, enrichment, state, targets, twilio.

#include "switchboard/config.hpp"

#include "support/config_text.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace switchboard;
using Catch::Matchers::Contains;
using switchboard::testing::error_for;
using switchboard::testing::parsed;

namespace {

const std::string mapping = R"({"message_type": "urn:message:Crm.Events:ApplicationStatusChanged",
  "event_type": "application.status_changed", "entity_kind": "application",
  "entity_id_field": "applicationId", "entity_version_field": "version"})";

}  // namespace

TEST_CASE("a full entity-state configuration is read with every member", "[config][propagation]") {
  const auto cfg = parsed(R"({
    "sources": {"amqp": [{"name": "crm", "port": 5673, "queue": "switchboard.crm",
                          "exchanges": ["Crm.Events:ApplicationStatusChanged"], "prefetch": 64,
                          "heartbeat_s": 5, "messages": [)" +
                          mapping + R"(]}]},
    "enrichment": {"database": "crm.db", "cache_ttl_ms": 1000, "cache_max_entries": 50,
      "lookups": [{"name": "manager", "entity_kind": "application",
                   "sql": "SELECT name FROM account_managers WHERE id = ?",
                   "params": ["accountManagerId"], "into": "accountManager",
                   "invalidated_by": "account_manager.updated", "invalidation_keys": ["id"]}]},
    "state": {"pattern": "*", "partitions": 3},
    "targets": [
      {"name": "docs", "type": "sync_document", "entity_kind": "application", "service": "IS1",
       "document": "application-{id}", "fields": {"status": "status", "manager": "accountManager.name"}},
      {"name": "items", "type": "sync_map_item", "entity_kind": "application", "service": "IS1",
       "map": "applications"},
      {"name": "agents", "type": "taskrouter_worker", "entity_kind": "agent", "workspace": "WS1",
       "worker": "{workerSid}", "concurrency": 2, "min_interval_ms": 100}],
    "twilio": {"base_url": "http://127.0.0.1:8089"}
  })");
  REQUIRE(cfg.amqp_sources.size() == 1);
  const auto& a = cfg.amqp_sources[0];
  CHECK(a.port == 5673);
  CHECK(a.prefetch == 64);
  CHECK(a.heartbeat == std::chrono::seconds{5});
  CHECK(a.error_queue == "switchboard.crm_error");  // defaults that depend on the queue
  CHECK(a.event_source == "amqp/switchboard.crm");
  REQUIRE(a.messages.size() == 1);
  CHECK(a.messages[0].entity_version_field == "version");
  REQUIRE(cfg.enrichment.lookups.size() == 1);
  CHECK(cfg.enrichment.lookups[0].params == std::vector<std::string>{"accountManagerId"});
  CHECK(cfg.enrichment.cache_max_entries == 50);
  CHECK(cfg.state.partitions == 3);
  REQUIRE(cfg.targets.size() == 3);
  CHECK(cfg.targets[0].fields == std::vector<std::pair<std::string, std::string>>{
                                     {"status", "status"}, {"manager", "accountManager.name"}});
  CHECK(cfg.targets[1].type == target_config::kind::sync_map_item);
  CHECK(cfg.targets[1].key == "{id}");
  CHECK(cfg.targets[2].min_interval == std::chrono::milliseconds{100});
  CHECK(cfg.twilio.base_url == "http://127.0.0.1:8089");
  CHECK(cfg.propagates_state());
  CHECK_FALSE(parsed("{}").propagates_state());
}

TEST_CASE("entity-state configuration errors name the key and the fix", "[config][propagation]") {
  CHECK_THAT(
      error_for(R"({"sources": {"amqp": [{"name": "crm", "messages": [)" + mapping + "]}]}}"),
      Contains("sources.amqp[0].queue: is missing"));
  CHECK_THAT(error_for(R"({"sources": {"amqp": [{"name": "crm", "queue": "q"}]}})"),
             Contains("sources.amqp[0].messages: is missing or empty"));
  CHECK_THAT(error_for(R"({"sources": {"amqp": [{"name": "crm", "queue": "q", "prefech": 5}]}})"),
             Contains("did you mean 'prefetch'?"));
  CHECK_THAT(
      error_for(
          R"({"sources": {"amqp": [{"name": "crm", "queue": "q", "error_queue": "q", "messages": [)" +
          mapping + "]}]}}"),
      Contains("would loop"));
  CHECK_THAT(
      error_for(R"({"sources": {"amqp": [{"name": "a", "queue": "q", "messages": [)" + mapping +
                R"(]}, {"name": "a", "queue": "r", "messages": [)" + mapping + "]}]}}"),
      Contains("sources.amqp[1].name: is \"a\", the name of sources.amqp[0] too"));
  CHECK_THAT(
      error_for(R"({"sources": {"amqp": [{"name": "crm", "queue": "q", "password": "x"}]}})"),
      Contains("sources.amqp[0].password") && Contains("SWITCHBOARD_AMQP_PASSWORD"));
  CHECK_THAT(error_for(R"({"enrichment": {"lookups": [{"name": "m", "entity_kind": "application",
             "sql": "SELECT 1", "into": "m"}]}})"),
             Contains("enrichment.database: is missing"));
  CHECK_THAT(
      error_for(R"({"enrichment": {"database": "x.db", "lookups": [{"name": "m", "entity_kind": "a",
             "sql": "SELECT 1 WHERE ? = ?", "params": ["a", "b"], "into": "m",
             "invalidated_by": "m.changed", "invalidation_keys": ["id"]}]}})"),
      Contains("invalidation_keys: has 1 paths but params has 2"));
  CHECK_THAT(
      error_for(
          R"({"targets": [{"name": "d", "entity_kind": "a", "service": "IS1", "document": "x"}]})"),
      Contains("targets[0].type: is missing"));
  CHECK_THAT(
      error_for(R"({"targets": [{"name": "d", "type": "sync_documnet", "entity_kind": "a"}]})"),
      Contains("did you mean 'sync_document'?"));
  CHECK_THAT(error_for(R"({"targets": [{"name": "d", "type": "sync_document", "entity_kind": "a",
             "service": "IS1"}]})"),
             Contains("targets[0].document: is missing; allowed: required for a target of type "
                      "'sync_document'"));
  CHECK_THAT(error_for(R"({"targets": [{"name": "d", "type": "sync_document", "entity_kind": "a",
             "service": "IS1", "document": "x", "workspace": "WS1"}]})"),
             Contains("targets[0].workspace: does not apply to a target of type 'sync_document'"));
  CHECK_THAT(error_for(R"({"targets": [{"name": "d", "type": "sync_document", "entity_kind": "a",
             "service": "IS1", "document": "application-{id"}]})"),
             Contains("targets[0].document: 'application-{id' has a '{' without its '}'"));
  CHECK_THAT(
      error_for(R"({"targets": [{"name": "w", "type": "taskrouter_worker", "entity_kind": "agent",
             "workspace": "WS1", "worker": "{sid}", "fields": {"x": "a..b"}}]})"),
      Contains("targets[0].fields.x: has the malformed state path 'a..b' for 'x'"));
  CHECK_THAT(
      error_for(R"({"targets": [{"name": "w", "type": "taskrouter_worker", "entity_kind": "agent",
             "workspace": "WS1", "worker": "{sid}", "backoff_initial_ms": 500, "backoff_max_ms": 100}]})"),
      Contains("targets[0].backoff_max_ms: is shorter than backoff_initial"));
  CHECK_THAT(error_for(R"({"twilio": {"base_url": "ftp://x"}})"), Contains("twilio.base_url"));
  // Twilio's credentials come from the environment: a URL carrying them is refused, unquoted.
  const auto with_password =
      error_for(R"({"twilio": {"base_url": "https://AC1:tok3n@127.0.0.1:8089"}})");
  CHECK_THAT(with_password, Contains("twilio.base_url") && Contains("TWILIO_AUTH_TOKEN") &&
                                Contains("***@127.0.0.1:8089") && !Contains("tok3n"));
  CHECK_THAT(error_for(R"({"state": {"pattern": "a.*.b"}})"), Contains("state.pattern"));
  CHECK_THAT(error_for(R"({"twilio": {"auth_token": "x"}})"), Contains("TWILIO_AUTH_TOKEN"));
}
