#include "switchboard/config.hpp"

#include "support/config_text.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

using namespace switchboard;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using switchboard::testing::error_for;
using switchboard::testing::parsed;

namespace {

const std::string example_path = std::string(SWITCHBOARD_SOURCE_DIR) + "/config/switchboard.json";

/// A scratch directory, removed with everything in it at the end of the test.
class scratch_dir {
public:
  scratch_dir() {
    char pattern[] = "/tmp/switchboard_config_test_XXXXXX";
    REQUIRE(::mkdtemp(pattern) != nullptr);
    path_ = pattern;
  }
  ~scratch_dir() {
    for (const auto& f : files_)
      std::remove(f.c_str());
    ::rmdir(path_.c_str());
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;

  std::string write(const std::string& name, const std::string& content) {
    const std::string file = path_ + "/" + name;
    std::ofstream(file, std::ios::binary) << content;
    files_.push_back(file);
    return file;
  }
  const std::string& path() const { return path_; }

private:
  std::string path_;
  std::vector<std::string> files_;
};

void require_defaults(const config& c) {
  const config d;
  CHECK(c.data_dir == d.data_dir);
  CHECK(c.http.enabled == d.http.enabled);
  CHECK(c.http.host == d.http.host);
  CHECK(c.http.port == d.http.port);
  CHECK(c.http.max_body_bytes == d.http.max_body_bytes);
  CHECK(c.http.keep_alive_max_count == d.http.keep_alive_max_count);
  CHECK(c.http.read_timeout == d.http.read_timeout);
  CHECK(c.http.write_timeout == d.http.write_timeout);
  CHECK(c.http.worker_threads == d.http.worker_threads);
  CHECK(c.scheduler.max_threads == d.scheduler.max_threads);
  CHECK(c.scheduler.moderate_sleep == d.scheduler.moderate_sleep);
  CHECK(c.log.level == d.log.level);
  CHECK(c.supervision.max_restarts == d.supervision.max_restarts);
  CHECK(c.supervision.within == d.supervision.within);
  CHECK(c.supervision.backoff_initial == d.supervision.backoff_initial);
  CHECK(c.supervision.backoff_max == d.supervision.backoff_max);
  CHECK(c.limits.max_event_bytes == d.limits.max_event_bytes);
  CHECK(c.limits.max_depth == d.limits.max_depth);
  CHECK(c.limits.max_string_bytes == d.limits.max_string_bytes);
  CHECK(c.limits.max_attribute_bytes == d.limits.max_attribute_bytes);
  CHECK(c.limits.max_batch_events == d.limits.max_batch_events);
  CHECK(c.limits.max_batch_bytes == d.limits.max_batch_bytes);
  CHECK(c.drain_timeout == d.drain_timeout);
}

}  // namespace

TEST_CASE("the shipped config/switchboard.json loads and holds the embedded defaults", "[config]") {
  const auto result = load_config_file(example_path);
  INFO(result.error.message());
  REQUIRE(result);
  CHECK(result.value->source == example_path);
  // The documented example values, spelled out, so a changed default shows up here too.
  CHECK(result.value->http.host == "127.0.0.1");
  CHECK(result.value->http.port == 8080);
  CHECK(result.value->data_dir == "./data");
  require_defaults(*result.value);
}

TEST_CASE("an empty object gives the embedded defaults", "[config]") {
  const auto c = parsed("{}");
  CHECK(c.source == "site.json");
  require_defaults(c);
}

TEST_CASE("every key is read into its own setting, comments and trailing commas are accepted",
          "[config]") {
  const auto c = parsed(R"(
    // line comment
    {
      /* block comment */
      "data_dir": "/var/lib/switchboard",
      "http": { "enabled": false, "host": "0.0.0.0", "port": 9090, "max_body_bytes": 1000,
                "keep_alive_max_count": 7, "read_timeout_ms": 1500, "write_timeout_ms": 2500,
                "worker_threads": 3, },
      "scheduler": { "max_threads": 4, "moderate_sleep_us": 0 },
      "log": { "level": "debug" },
      "supervision": { "max_restarts": 9, "within_ms": 60000, "backoff_initial_ms": 100,
                       "backoff_max_ms": 100 },
      "limits": { "max_event_bytes": 11, "max_depth": 12, "max_string_bytes": 13,
                  "max_attribute_bytes": 14, "max_batch_events": 15, "max_batch_bytes": 16 },
      "drain_timeout_ms": 0,
    }
  )");
  CHECK(c.data_dir == "/var/lib/switchboard");
  CHECK_FALSE(c.http.enabled);
  CHECK(c.http.host == "0.0.0.0");
  CHECK(c.http.port == 9090);
  CHECK(c.http.max_body_bytes == 1000);
  CHECK(c.http.keep_alive_max_count == 7);
  CHECK(c.http.read_timeout == std::chrono::milliseconds{1500});
  CHECK(c.http.write_timeout == std::chrono::milliseconds{2500});
  CHECK(c.http.worker_threads == 3);
  CHECK(c.scheduler.max_threads == 4);
  CHECK(c.scheduler.moderate_sleep == std::chrono::microseconds{0});
  CHECK(c.log.level == "debug");
  CHECK(c.supervision.max_restarts == 9);
  CHECK(c.supervision.within == std::chrono::milliseconds{60000});
  CHECK(c.supervision.backoff_initial == std::chrono::milliseconds{100});
  CHECK(c.supervision.backoff_max == std::chrono::milliseconds{100});
  CHECK(c.limits.max_event_bytes == 11);
  CHECK(c.limits.max_depth == 12);
  CHECK(c.limits.max_string_bytes == 13);
  CHECK(c.limits.max_attribute_bytes == 14);
  CHECK(c.limits.max_batch_events == 15);
  CHECK(c.limits.max_batch_bytes == 16);
  CHECK(c.drain_timeout == std::chrono::milliseconds{0});
}

TEST_CASE("keys left out keep their defaults", "[config]") {
  const auto c = parsed(R"({"http": {"port": 9999}})");
  CHECK(c.http.port == 9999);
  CHECK(c.http.host == "127.0.0.1");
  CHECK(c.http.worker_threads == 256);
  CHECK(c.scheduler.max_threads == 2);
}

TEST_CASE("error messages have the form file: key: problem, allowed: ...", "[config]") {
  CHECK(config_error{"a.json", "http.port", "is 70000 (an integer), out of range",
                     "an integer from 0 to 65535"}
            .message() ==
        "a.json: http.port: is 70000 (an integer), out of range; allowed: an integer from 0 to "
        "65535");
  CHECK(config_error{"a.json", "$", "is empty", ""}.message() == "a.json: $: is empty");
}

TEST_CASE("an unknown key is an error that lists the allowed keys and suggests the closest",
          "[config]") {
  SECTION("typo inside a section") {
    const auto msg = error_for(R"({"scheduler": {"max_thread": 4}})");
    CHECK_THAT(msg, StartsWith("site.json: scheduler.max_thread: unknown key 'max_thread'"));
    CHECK_THAT(msg, Contains("did you mean 'max_threads'?"));
    CHECK_THAT(msg, Contains("allowed: the keys 'max_threads', 'moderate_sleep_us'"));
  }
  SECTION("swapped letters give the nested key path") {
    const auto msg = error_for(R"({"http": {"host": "::1", "prot": 9000}})");
    CHECK_THAT(msg, StartsWith("site.json: http.prot: unknown key 'prot'"));
    CHECK_THAT(msg, Contains("did you mean 'port'?"));
    CHECK_THAT(msg, Contains("'worker_threads'"));
  }
  SECTION("two edits away still gets a suggestion; three do not") {
    CHECK_THAT(error_for(R"({"scheduler": {"max_thred": 4}})"),
               Contains("did you mean 'max_threads'?"));
    CHECK_THAT(error_for(R"({"scheduler": {"mx_thred": 4}})"), !Contains("did you mean"));
  }
  SECTION("case and dashes do not hide the intended key") {
    CHECK_THAT(error_for(R"({"http": {"Worker-Threads": 4}})"),
               Contains("did you mean 'worker_threads'?"));
  }
  SECTION("a missing unit suffix") {
    CHECK_THAT(error_for(R"({"drain_timeout": 5})"), Contains("did you mean 'drain_timeout_ms'?"));
  }
  SECTION("a key put in the wrong section points to where it belongs") {
    const auto msg = error_for(R"({"port": 8080})");
    CHECK_THAT(msg, StartsWith("site.json: port: unknown key 'port'"));
    CHECK_THAT(msg, Contains("did you mean 'http.port'?"));
    CHECK_THAT(msg, Contains("allowed: the keys 'data_dir', 'http', 'scheduler'"));
  }
  SECTION("nothing close: no suggestion, still the list") {
    const auto msg = error_for(R"({"rabbitmq": {}})");
    CHECK_THAT(msg, StartsWith("site.json: rabbitmq: unknown key 'rabbitmq'; allowed: the keys"));
    CHECK_THAT(msg, !Contains("did you mean"));
  }
  SECTION("an unknown key is reported even when a valid key comes first") {
    CHECK_THAT(
        error_for(R"({"log": {"level": "warn", "format": "json"}})"),
        StartsWith("site.json: log.format: unknown key 'format'; allowed: the keys 'level'"));
  }
}

TEST_CASE("secrets in the file are rejected and point to the environment", "[config]") {
  SECTION("API token at the top") {
    const auto msg = error_for(R"({"api_token": "s3cr3t-value"})");
    CHECK_THAT(msg, StartsWith("site.json: api_token: looks like a secret"));
    CHECK_THAT(msg, Contains("SWITCHBOARD_API_TOKEN"));
    CHECK_THAT(msg, !Contains("s3cr3t-value"));
  }
  SECTION(
      "Twilio auth token in a section nobody knows: the secret message wins over 'unknown key'") {
    const auto msg = error_for(R"({"twilio": {"account": "AC1", "auth_token": "s3cr3t-value"}})");
    CHECK_THAT(msg, StartsWith("site.json: twilio.auth_token: looks like a secret"));
    CHECK_THAT(msg, Contains("TWILIO_AUTH_TOKEN"));
    CHECK_THAT(msg, !Contains("unknown key"));
    CHECK_THAT(msg, !Contains("s3cr3t-value"));
  }
  SECTION("inside a known section, after valid keys") {
    const auto msg = error_for(R"({"http": {"port": 1, "token": "abc"}})");
    CHECK_THAT(msg, StartsWith("site.json: http.token: looks like a secret"));
    CHECK_THAT(msg, Contains("SWITCHBOARD_API_TOKEN"));
  }
  SECTION("passwords and secrets, in any case") {
    CHECK_THAT(error_for(R"({"db": {"Password": "x"}})"),
               Contains("db.Password: looks like a secret"));
    CHECK_THAT(error_for(R"({"client_secret": "x"})"),
               Contains("client_secret: looks like a secret"));
    CHECK_THAT(error_for(R"({"client_secret": "x"})"), Contains("environment"));
  }
}

TEST_CASE("out-of-range values name the key, the value and the range", "[config]") {
  struct bad {
    const char* text;
    const char* key;
    const char* seen;
    const char* allowed;
  };
  const std::vector<bad> cases{
      {R"({"http": {"port": 70000}})", "http.port", "is 70000 (an integer), out of range",
       "allowed: an integer from 0 to 65535"},
      {R"({"http": {"port": -1}})", "http.port", "is -1 (an integer)", "from 0 to 65535"},
      {R"({"http": {"port": 18446744073709551616}})", "http.port", "out of range",
       "from 0 to 65535"},
      {R"({"scheduler": {"max_threads": 0}})", "scheduler.max_threads", "is 0", "from 1 to 256"},
      {R"({"scheduler": {"max_threads": 257}})", "scheduler.max_threads", "is 257",
       "from 1 to 256"},
      {R"({"http": {"worker_threads": 1025}})", "http.worker_threads", "is 1025", "from 1 to 1024"},
      {R"({"http": {"keep_alive_max_count": 0}})", "http.keep_alive_max_count", "is 0",
       "from 1 to"},
      {R"({"http": {"read_timeout_ms": 0}})", "http.read_timeout_ms", "is 0",
       "milliseconds from 1 to 3600000 (1 hour)"},
      {R"({"supervision": {"within_ms": 86400001}})", "supervision.within_ms", "is 86400001",
       "from 1 to 86400000 (1 day)"},
      {R"({"supervision": {"max_restarts": -1}})", "supervision.max_restarts", "is -1",
       "from 0 to 1000"},
      {R"({"limits": {"max_depth": 0}})", "limits.max_depth", "is 0", "from 1 to 256"},
      {R"({"limits": {"max_event_bytes": 1073741825}})", "limits.max_event_bytes", "is 1073741825",
       "bytes from 1 to 1073741824 (1 GiB)"},
      {R"({"limits": {"max_batch_bytes": 0}})", "limits.max_batch_bytes", "is 0", "bytes from 1"},
      {R"({"drain_timeout_ms": -5})", "drain_timeout_ms", "is -5", "from 0 to 3600000"},
      {R"({"scheduler": {"moderate_sleep_us": 1000001}})", "scheduler.moderate_sleep_us",
       "is 1000001", "microseconds from 0 to 1000000"},
      {R"({"data_dir": ""})", "data_dir", "is \"\" (an empty string)", "non-empty"},
      {R"({"http": {"host": ""}})", "http.host", "empty", "host name or IP address"},
      {R"({"http": {"host": "10.0.0.1:8080"}})", "http.host", "contains a port", "http.port"},
      {R"({"http": {"host": "http://localhost"}})", "http.host", "a URL", "host name"},
  };
  for (const auto& c : cases) {
    const auto msg = error_for(c.text);
    INFO(msg);
    CHECK_THAT(msg, StartsWith(std::string("site.json: ") + c.key + ": "));
    CHECK_THAT(msg, Contains(c.seen));
    CHECK_THAT(msg, Contains(c.allowed));
  }
}

TEST_CASE("values at the edges of their ranges are accepted", "[config]") {
  CHECK(parsed(R"({"http": {"port": 0}})").http.port == 0);
  CHECK(parsed(R"({"http": {"port": 65535}})").http.port == 65535);
  CHECK(parsed(R"({"scheduler": {"max_threads": 256}})").scheduler.max_threads == 256);
  CHECK(parsed(R"({"limits": {"max_event_bytes": 1073741824}})").limits.max_event_bytes ==
        1073741824);
  CHECK(parsed(R"({"http": {"port": 8e3}})").http.port == 8000);  // a whole number in exponent form
  CHECK(parsed(R"({"http": {"host": "[::1]"}})").http.host == "::1");
}

TEST_CASE("values of the wrong JSON type name the value, its type and what is allowed",
          "[config]") {
  CHECK_THAT(error_for(R"({"http": {"port": "8080"}})"),
             Contains("site.json: http.port: is \"8080\" (a string), not an integer; allowed: an "
                      "integer from 0 to 65535"));
  CHECK_THAT(error_for(R"({"http": {"port": 80.5}})"),
             Contains("http.port: is 80.5 (a number), not a whole number"));
  CHECK_THAT(
      error_for(R"({"http": {"enabled": "yes"}})"),
      Contains("http.enabled: is \"yes\" (a string), not a boolean; allowed: true or false"));
  CHECK_THAT(error_for(R"({"http": {"host": 127}})"),
             Contains("http.host: is 127 (an integer), not a string"));
  CHECK_THAT(error_for(R"({"data_dir": null})"), Contains("data_dir: is null, not a string"));
  CHECK_THAT(error_for(R"({"http": [8080]})"),
             Contains("http: is [8080] (an array), not an object; allowed: a JSON object with the "
                      "keys 'enabled'"));
  CHECK_THAT(error_for(R"([1, 2])"), Contains("site.json: $: is [1,2] (an array), not an object"));
  CHECK_THAT(error_for(R"({"log": {"level": 3}})"),
             Contains("log.level: is 3 (an integer), not a string"));
}

TEST_CASE("an unknown log level lists the levels and suggests the closest", "[config]") {
  const auto msg = error_for(R"({"log": {"level": "warning"}})");
  CHECK_THAT(msg, StartsWith("site.json: log.level: is \"warning\" (a string), not a log level"));
  CHECK_THAT(
      msg,
      Contains("allowed: one of 'trace', 'debug', 'info', 'warn', 'error', 'critical', 'off'"));
  CHECK_THAT(error_for(R"({"log": {"level": "INFO"}})"), Contains("did you mean 'info'?"));
}

TEST_CASE("backoff_initial_ms above backoff_max_ms names both keys", "[config]") {
  SECTION("both given") {
    const auto msg =
        error_for(R"({"supervision": {"backoff_initial_ms": 500, "backoff_max_ms": 100}})");
    CHECK_THAT(msg, StartsWith("site.json: supervision.backoff_initial_ms: is 500"));
    CHECK_THAT(msg, Contains("supervision.backoff_max_ms (100)"));
  }
  SECTION("against the default maximum") {
    const auto msg = error_for(R"({"supervision": {"backoff_initial_ms": 5000}})");
    CHECK_THAT(msg, StartsWith("site.json: supervision.backoff_initial_ms: is 5000"));
    CHECK_THAT(msg, Contains("backoff_max_ms (2000, the default)"));
  }
  SECTION("a maximum below the default initial delay") {
    const auto msg = error_for(R"({"supervision": {"backoff_max_ms": 5}})");
    CHECK_THAT(msg, StartsWith("site.json: supervision.backoff_max_ms: is 5"));
    CHECK_THAT(msg, Contains("supervision.backoff_initial_ms (10, the default)"));
  }
}

TEST_CASE("syntax errors give Boost's reason with line and column", "[config]") {
  SECTION("a missing comma") {
    const auto msg = error_for("{\n  \"http\": {\n    \"port\": 80\n    \"host\": \"x\"\n  }\n}\n");
    CHECK_THAT(msg, StartsWith("site.json: $: is not valid JSON: "));
    CHECK_THAT(msg, Contains("at line 4, column 5"));
    CHECK_THAT(msg, Contains("near '\"host\""));
    CHECK_THAT(msg, Contains("allowed: JSON text"));
  }
  SECTION("text cut short") {
    const auto msg = error_for("{\"http\": {\"port\": 80}\n");
    CHECK_THAT(msg, Contains("incomplete JSON at line 2, column 1 (the end of the text)"));
  }
  SECTION("something after the document") {
    CHECK_THAT(error_for("{}\n}"), Contains("extra data at line 2, column 1"));
  }
  SECTION("columns count characters, not bytes") {
    CHECK_THAT(error_for("{\"data_dir\": \"é\" x}"), Contains("line 1, column 18"));
  }
  SECTION("invalid UTF-8 is shown escaped, so the message stays printable") {
    CHECK_THAT(error_for("{\"data_dir\": \"\xFF\"}"), Contains("near '\\xFF\"}'"));
  }
  SECTION("empty or blank text") {
    CHECK_THAT(error_for(""), Contains("site.json: $: is empty; allowed: a JSON object"));
    CHECK_THAT(error_for(" \n\t"), Contains("site.json: $: is empty"));
  }
}

TEST_CASE("a key given twice is an error, not a silent override", "[config]") {
  const auto msg = error_for("{\"http\": {\"port\": 80,\n \"port\": 81}}");
  CHECK_THAT(msg, StartsWith("site.json: http.port: is given twice (again at line 2, column 2)"));
}

TEST_CASE("load_config_file reports file problems with the path and what to do", "[config]") {
  scratch_dir dir;
  SECTION("missing file") {
    const std::string path = dir.path() + "/nope.json";
    const auto result = load_config_file(path);
    REQUIRE_FALSE(result);
    CHECK_THAT(result.error.message(),
               StartsWith(path + ": $: cannot open: No such file or directory"));
    CHECK_THAT(result.error.message(), Contains("config/switchboard.json"));
  }
  SECTION("a directory") {
    const auto result = load_config_file(dir.path());
    REQUIRE_FALSE(result);
    CHECK_THAT(result.error.message(),
               StartsWith(dir.path() + ": $: cannot read: it is a directory"));
  }
  SECTION("empty file") {
    const auto path = dir.write("empty.json", "");
    const auto result = load_config_file(path);
    REQUIRE_FALSE(result);
    CHECK(result.error.message() ==
          path +
              ": $: is empty; allowed: a JSON object; {} uses every default "
              "(see config/switchboard.json)");
  }
  SECTION("too large") {
    const auto path =
        dir.write("huge.json", "{\"data_dir\": \"" + std::string(1024 * 1024, 'a') + "\"}");
    const auto result = load_config_file(path);
    REQUIRE_FALSE(result);
    CHECK_THAT(result.error.message(), StartsWith(path + ": $: is larger than 1 MiB"));
  }
  SECTION("errors inside the file name the file") {
    const auto path = dir.write("bad.json", "{\n  \"http\": {\"port\": 99999}\n}\n");
    const auto result = load_config_file(path);
    REQUIRE_FALSE(result);
    CHECK_THAT(result.error.message(), StartsWith(path + ": http.port: is 99999"));
  }
  SECTION("a good file sets source; a UTF-8 byte order mark is tolerated") {
    const auto path = dir.write("good.json", "\xEF\xBB\xBF{\"log\": {\"level\": \"error\"}}");
    const auto result = load_config_file(path);
    INFO(result.error.message());
    REQUIRE(result);
    CHECK(result.value->source == path);
    CHECK(result.value->log.level == "error");
  }
}

TEST_CASE("listen override HOST:PORT sets host and port and enables HTTP", "[config]") {
  struct good {
    const char* arg;
    const char* host;
    std::uint16_t port;
  };
  for (const auto& g : std::vector<good>{{"127.0.0.1:8080", "127.0.0.1", 8080},
                                         {"localhost:0", "localhost", 0},
                                         {"[::1]:9000", "::1", 9000},
                                         {"0.0.0.0:80", "0.0.0.0", 80},
                                         {"example.org:65535", "example.org", 65535}}) {
    config cfg;
    cfg.http.enabled = false;
    const auto error = apply_listen_override(cfg, g.arg);
    INFO(g.arg << (error ? " -> " + error->message() : std::string()));
    REQUIRE_FALSE(error);
    CHECK(cfg.http.host == g.host);
    CHECK(cfg.http.port == g.port);
    CHECK(cfg.http.enabled);
  }
}

TEST_CASE("listen override rejects what cannot be listened on and leaves the config alone",
          "[config]") {
  struct bad {
    const char* arg;
    const char* problem;
  };
  for (const auto& b :
       std::vector<bad>{{"127.0.0.1", "has no port"},
                        {"127.0.0.1:", "has no port"},
                        {":8080", "has no host"},
                        {"[]:8080", "has no host"},
                        {"localhost:http", "port is not a number"},
                        {"localhost:-1", "port is not a number"},
                        {"localhost:80x", "port is not a number"},
                        {"localhost:65536", "port is out of range"},
                        {"localhost:99999999999999999999999", "port is out of range"},
                        {"::1:8080", "without brackets"},
                        {"[::1]", "no port"},
                        {"[::1:8080", "closing ']'"},
                        {"my host:80", "whitespace"},
                        {"", "has no port"}}) {
    config cfg;
    const auto error = apply_listen_override(cfg, b.arg);
    INFO(b.arg);
    REQUIRE(error);
    const auto msg = error->message();
    INFO(msg);
    CHECK_THAT(msg, StartsWith("<command line>: --listen: is \"" + std::string(b.arg) + "\""));
    CHECK_THAT(msg, Contains(b.problem));
    CHECK_THAT(msg, Contains("allowed: HOST:PORT"));
    CHECK(cfg.http.host == "127.0.0.1");
    CHECK(cfg.http.port == 8080);
  }
}

TEST_CASE("the scheduler policy is sharing unless the file names another", "[config]") {
  CHECK(parsed(R"({})").scheduler.policy == scheduler_config::policy_kind::sharing);
  CHECK(parsed(R"({"scheduler": {"policy": "stealing"}})").scheduler.policy ==
        scheduler_config::policy_kind::stealing);
  const auto msg = error_for(R"({"scheduler": {"policy": "stealin"}})");
  CHECK_THAT(msg, Contains("scheduler.policy"));
  CHECK_THAT(msg, Contains("did you mean 'stealing'?"));
}
