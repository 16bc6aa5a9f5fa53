// Content-Type values as every route reads them (src/core/media_type.hpp).

#include "core/media_type.hpp"

#include <catch2/catch.hpp>

using namespace switchboard::core;

TEST_CASE("a media type is read without its parameters, trimmed, in lower case", "[media_type]") {
  CHECK(media_type("application/json") == "application/json");
  CHECK(media_type(" Application/JSON ; charset=utf-8") == "application/json");
  CHECK(media_type("") == "");
  CHECK(has_media_type("application/json; charset=utf-8", "application/json"));
  CHECK_FALSE(has_media_type("text/plain", "application/json"));
  CHECK_FALSE(has_media_type("application/jsonx", "application/json"));
  CHECK_FALSE(has_media_type("", "application/json"));
}
