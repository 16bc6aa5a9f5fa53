// Which Twilio object an entity's state goes to and what is written there; config checks that
// name the member at fault.

#include "core/target_mapping.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

using switchboard::target_config;
using namespace switchboard::core;
namespace json = boost::json;

namespace {

json::object state() {
  return json::parse(R"({"status":"approved","workerSid":"WK0011","owner":{"name":"Ana","desk":4},
                         "score":9.5,"tags":["a"]})")
      .as_object();
}

target_config document_target() {
  target_config t;
  t.name = "applications";
  t.type = target_config::kind::sync_document;
  t.entity_kind = "application";
  t.service = "IS0001";
  t.document = "application-{id}";
  return t;
}

}  // namespace

TEST_CASE("target mapping: a document named from the id holds the whole state",
          "[target_mapping]") {
  auto m = map_target(document_target(), "application", "42", state());
  REQUIRE(m);
  CHECK(m.write->object.service == "IS0001");
  CHECK(m.write->object.document == "application-42");
  CHECK(m.write->object.describe() == "document IS0001/application-42");
  CHECK(m.write->payload == state());
}

TEST_CASE("target mapping: fields pick dotted paths, missing ones are null, in order",
          "[target_mapping]") {
  auto t = document_target();
  t.fields = {{"status", "status"}, {"ownerName", "owner.name"}, {"region", "owner.region"}};
  auto m = map_target(t, "application", "42", state());
  REQUIRE(m);
  const auto& p = m.write->payload;
  CHECK(p.size() == 3);
  CHECK(p.at("status") == "approved");
  CHECK(p.at("ownerName") == "Ana");
  CHECK(p.at("region").is_null());
  CHECK(p.begin()->key() == "status");
}

TEST_CASE("target mapping: map items and workers from state values", "[target_mapping]") {
  target_config items;
  items.name = "by-status";
  items.type = target_config::kind::sync_map_item;
  items.entity_kind = "application";
  items.service = "IS0001";
  items.map = "applications-{status}";
  items.key = "{kind}:{id}";
  auto m = map_target(items, "application", "42", state());
  REQUIRE(m);
  CHECK(m.write->object.map == "applications-approved");
  CHECK(m.write->object.key == "application:42");
  CHECK(m.write->object.pace_group() == "map IS0001/applications-approved");

  target_config workers;
  workers.name = "agents";
  workers.type = target_config::kind::taskrouter_worker;
  workers.entity_kind = "agent";
  workers.workspace = "WS0001";
  workers.worker = "{workerSid}";
  workers.fields = {{"desk", "owner.desk"}};
  m = map_target(workers, "agent", "7", state());
  REQUIRE(m);
  CHECK(m.write->object.worker == "WK0011");
  CHECK(m.write->object.workspace == "WS0001");
  CHECK(m.write->payload == json::object{{"desk", 4}});
}

TEST_CASE("target mapping: a placeholder without a value is an error naming it",
          "[target_mapping]") {
  auto t = document_target();
  t.document = "application-{owner.region}";
  auto m = map_target(t, "application", "42", state());
  CHECK_FALSE(m);
  CHECK(m.error.find("{owner.region}") != std::string::npos);
  CHECK(m.error.find("document") != std::string::npos);
  CHECK(m.error.find("'42'") != std::string::npos);

  t.document = "{tags}";  // not a scalar
  CHECK_FALSE(map_target(t, "application", "42", state()));
  std::string why;
  CHECK_FALSE(target_object_of(t, "application", "42", state(), &why));
  CHECK(why.find("{tags}") != std::string::npos);
}

TEST_CASE("target config check: required members per kind, templates, fields, limits",
          "[target_mapping]") {
  CHECK_FALSE(target_problem(document_target()));

  auto t = document_target();
  t.service.clear();
  auto p = target_problem(t);
  REQUIRE(p);
  CHECK(p->key == "service");
  CHECK(p->problem.find("sync_document") != std::string::npos);

  t = document_target();
  t.document = "application-{id";
  p = target_problem(t);
  REQUIRE(p);
  CHECK(p->key == "document");
  CHECK(p->problem.find("'{'") != std::string::npos);

  t = document_target();
  t.type = target_config::kind::sync_map_item;
  p = target_problem(t);
  REQUIRE(p);
  CHECK(p->key == "map");

  t = document_target();
  t.type = target_config::kind::taskrouter_worker;
  p = target_problem(t);
  REQUIRE(p);
  CHECK(p->key == "workspace");
  t.workspace = "WS1";
  t.worker = "";
  CHECK(target_problem(t)->key == "worker");

  t = document_target();
  t.fields = {{"a", "x"}, {"a", "y"}};
  p = target_problem(t);
  REQUIRE(p);
  CHECK(p->key == "fields[1]");
  t.fields = {{"a", "x..y"}};
  CHECK(target_problem(t)->key == "fields[0]");

  t = document_target();
  t.concurrency = 0;
  CHECK(target_problem(t)->key == "concurrency");
  t = document_target();
  t.backoff_max = std::chrono::milliseconds{1};
  CHECK(target_problem(t)->key == "backoff_max");
  t = document_target();
  t.entity_kind.clear();
  CHECK(target_problem(t)->key == "entity_kind");
}
