// api/openapi.json against what the daemon serves: every documented operation is routed, every
// route is documented, and the daemon serves the document itself.

#include "adapters/http/http_server.hpp"
#include "adapters/http/openapi_document.hpp"
#include "jobs/leads/job.hpp"
#include "jobs/propagation/job.hpp"

#include <httplib.h>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

namespace json = boost::json;
using switchboard::adapters::http::http_server;

namespace {

constexpr const char* token = "openapi-test-token";

json::object spec_from_file() {
  std::ifstream in{std::string{SWITCHBOARD_SOURCE_DIR} + "/api/openapi.json"};
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  return json::parse(text.str()).as_object();
}

/// A documented operation with its path filled in from the parameters' examples.
struct operation {
  std::string method;    ///< upper case
  std::string templ;     ///< as documented, e.g. /v1/leads/{id}
  std::string concrete;  ///< e.g. /v1/leads/L-1
};

std::vector<operation> operations(const json::object& spec) {
  std::vector<operation> out;
  for (const auto& [path, item] : spec.at("paths").as_object()) {
    for (const auto& [method, op] : item.as_object()) {
      operation o;
      o.templ = std::string{path};
      for (char c : std::string{method})
        o.method.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
      o.concrete = o.templ;
      if (const auto* params = op.as_object().if_contains("parameters"))
        for (const auto& p : params->as_array()) {
          const auto* obj = p.as_object().if_contains("$ref") ? nullptr : &p.as_object();
          if (obj == nullptr || obj->at("in").as_string() != "path")
            continue;
          const auto name = "{" + std::string{obj->at("name").as_string()} + "}";
          const auto at = o.concrete.find(name);
          REQUIRE(at != std::string::npos);
          o.concrete.replace(at, name.size(), std::string{obj->at("example").as_string()});
        }
      INFO(o.method << " " << o.templ);
      CHECK(o.concrete.find('{') == std::string::npos);  // every path parameter has an example
      CHECK(op.as_object().contains("summary"));
      CHECK(op.as_object().contains("responses"));
      out.push_back(std::move(o));
    }
  }
  return out;
}

http_server::hooks all_routes() {
  http_server::hooks h;
  h.api_token = token;
  for (auto& r : switchboard::jobs::propagation_routes(nullptr))
    h.routes.push_back(std::move(r));
  for (auto& r : switchboard::jobs::lead_routes(nullptr))
    h.routes.push_back(std::move(r));
  return h;
}

switchboard::http_config loopback() {
  switchboard::http_config cfg;
  cfg.host = "127.0.0.1";
  cfg.port = 0;
  cfg.access_log = false;
  return cfg;
}

}  // namespace

TEST_CASE("api/openapi.json is OpenAPI 3.1 and is what the daemon serves", "[http][openapi]") {
  const auto spec = spec_from_file();
  CHECK(spec.at("openapi").as_string() == "3.1.0");
  http_server server{loopback(), all_routes()};
  const auto address = server.start();
  httplib::Client c{"127.0.0.1", std::stoi(address.substr(address.find(':') + 1))};
  auto res = c.Get("/v1/openapi.json", {{"Authorization", std::string{"Bearer "} + token}});
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(json::parse(res->body) == json::value(spec));
}

TEST_CASE("every documented operation is routed, every route is documented", "[http][openapi]") {
  const auto ops = operations(spec_from_file());
  REQUIRE(ops.size() > 20);
  http_server server{loopback(), all_routes()};
  const auto address = server.start();
  httplib::Client c{"127.0.0.1", std::stoi(address.substr(address.find(':') + 1))};
  const httplib::Headers auth{{"Authorization", std::string{"Bearer "} + token}};

  for (const auto& o : ops) {
    INFO(o.method << " " << o.concrete);
    httplib::Result res = o.method == "GET" ? c.Get(o.concrete.c_str(), auth)
                          : o.method == "DELETE"
                              ? c.Delete(o.concrete.c_str(), auth)
                              : c.Post(o.concrete.c_str(), auth, "{}", "application/json");
    REQUIRE(res);
    CHECK(res->status != 405);
    CHECK(res->body.find("no such route") == std::string::npos);
  }
  for (const auto& [method, pattern] : server.route_table()) {
    INFO("route " << method << " " << pattern);
    const std::regex re{pattern};
    bool documented = false;
    for (const auto& o : ops)
      documented = documented || (o.method == method && std::regex_match(o.concrete, re));
    CHECK(documented);
  }
}
