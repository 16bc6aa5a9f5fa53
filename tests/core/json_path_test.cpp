#include "core/json_path.hpp"

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

using namespace switchboard::core;
namespace json = boost::json;

TEST_CASE("dotted paths find nested members and nothing else", "[core][json_path]") {
  const auto v = json::parse(R"({"a": {"b": {"c": 7}}, "s": "x", "arr": [1]})");
  REQUIRE(find_path(v, "a.b.c") != nullptr);
  CHECK(find_path(v, "a.b.c")->as_int64() == 7);
  CHECK(find_path(v, "") == &v);
  CHECK(find_path(v, "a.x") == nullptr);
  CHECK(find_path(v, "s.len") == nullptr);  // a step into a string
  CHECK(find_path(v, "arr.0") == nullptr);  // arrays are not indexed
}

TEST_CASE("scalars have text, structures and fractions do not", "[core][json_path]") {
  CHECK(scalar_text(json::value("A-1")) == "A-1");
  CHECK(scalar_text(json::value(42)) == "42");
  CHECK(scalar_text(json::value(42.0)) == "42");
  CHECK(scalar_text(json::value(true)) == "true");
  CHECK_FALSE(scalar_text(json::value(1.5)));
  CHECK_FALSE(scalar_text(json::value(nullptr)));
  CHECK_FALSE(scalar_text(json::parse("{}")));
}

TEST_CASE("templates fill id, kind and state paths, or say which is missing", "[core][json_path]") {
  const auto state = json::parse(R"({"worker": {"sid": "WK1"}, "n": 3})");
  CHECK(render_template("application-{id}", "application", "A-1", state).text == "application-A-1");
  CHECK(render_template("{kind}/{id}/{n}", "agent", "7", state).text == "agent/7/3");
  CHECK(render_template("{worker.sid}", "agent", "7", state).text == "WK1");
  CHECK(render_template("{{literal}}-{id}", "k", "1", state).text == "{literal}-1");
  const auto missing = render_template("{worker.name}", "agent", "7", state);
  CHECK_FALSE(missing.text);
  CHECK(missing.missing == "worker.name");
  CHECK_FALSE(render_template("{worker}", "agent", "7", state).text);  // an object is not a name
  CHECK(template_problem("a-{id}") == std::nullopt);
  CHECK(template_problem("a-{id") != std::nullopt);
  CHECK(template_problem("a-}") != std::nullopt);
  CHECK(template_problem("{}") != std::nullopt);
  CHECK(template_problem("{a..b}") != std::nullopt);
}
