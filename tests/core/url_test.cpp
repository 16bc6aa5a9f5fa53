// Configured URLs with a user and password: what a client sends, and what logs may show.

#include "core/url.hpp"

#include <catch2/catch.hpp>

using switchboard::core::redact_urls;
using switchboard::core::redacted_url;
using switchboard::core::split_http_url;

TEST_CASE("split_http_url: origin, target and the userinfo's user and password", "[url]") {
  auto t = split_http_url("https://crm:p%40ss%3Aw0rd@t.example.com:8443/leads?src=web#top");
  CHECK(t.origin == "https://t.example.com:8443");
  CHECK(t.target == "/leads?src=web");
  CHECK(t.user == std::optional<std::string>{"crm"});
  CHECK(t.password == std::optional<std::string>{"p@ss:w0rd"});  // percent-decoded

  t = split_http_url("http://127.0.0.1:9001");
  CHECK(t.origin == "http://127.0.0.1:9001");
  CHECK(t.target == "/");
  CHECK_FALSE(t.user);
  CHECK_FALSE(t.password);

  t = split_http_url("http://key@h?x=1");
  CHECK(t.origin == "http://h");
  CHECK(t.target == "/?x=1");
  CHECK(t.user == std::optional<std::string>{"key"});
  CHECK_FALSE(t.password);

  CHECK(split_http_url("http://h/p/a@b.example").user == std::nullopt);  // '@' in the path
}

TEST_CASE("redacted_url and redact_urls hide userinfo, and only that", "[url]") {
  CHECK(redacted_url("https://crm:s3cret@t.example.com/leads") ==
        "https://***@t.example.com/leads");
  CHECK(redacted_url("https://token@t.example.com") == "https://***@t.example.com");
  CHECK(redacted_url("http://127.0.0.1:9001/leads?to=a@b.example") ==
        "http://127.0.0.1:9001/leads?to=a@b.example");
  CHECK(redacted_url("") == "");
  // A password written with '?' or '#' unencoded is hidden too.
  CHECK(redacted_url("https://crm:s3?c#ret@h/x") == "https://***@h/x");
  CHECK(redact_urls("POST https://a:1@h1/x answered 500: see \"http://b:2@h2\" or http://h3/") ==
        "POST https://***@h1/x answered 500: see \"http://***@h2\" or http://h3/");
  CHECK(redact_urls("no URL here: user@example.com") == "no URL here: user@example.com");
}
