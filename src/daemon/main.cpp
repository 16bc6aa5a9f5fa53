// The `switchboard` binary: parse the command line and the config, host a runtime, wait.
//
// Exit codes: 0 ok; 1 could not start; 2 bad config or usage; 3 the root supervisor gave up.

#include "adapters/sqlite/lookup_db.hpp"
#include "adapters/twilio/emulator.hpp"
#include "switchboard/config.hpp"
#include "switchboard/runtime.hpp"
#include "switchboard/version.hpp"

#include <httplib.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <boost/version.hpp>
#include <caf/config.hpp>

#include <pthread.h>
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int exit_ok = 0;
constexpr int exit_start_failed = 1;
constexpr int exit_bad_config = 2;
constexpr int exit_gave_up = 3;

std::string version_line() {
  return std::string{"switchboard "} + switchboard::version_string + " (CAF " +
         std::to_string(CAF_VERSION / 10000) + "." + std::to_string(CAF_VERSION / 100 % 100) + "." +
         std::to_string(CAF_VERSION % 100) + ", Boost " + std::to_string(BOOST_VERSION / 100000) +
         "." + std::to_string(BOOST_VERSION / 100 % 1000) + ")";
}

void setup_logging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("switchboard");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ [%t] %v");
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(logger);
}

std::optional<switchboard::config> load(const std::string& path) {
  auto result = switchboard::load_config_file(path);
  if (!result) {
    std::cerr << "switchboard: bad configuration: " << result.error.message() << "\n";
    return std::nullopt;
  }
  return std::move(*result.value);
}

/// What the configuration names outside itself and can be checked without side effects: the
/// enrichment database, every lookup's SQL, and the secrets its parts need from the
/// environment. A bad one is a configuration error (exit 2), found by check-config and run.
bool check_references(const switchboard::config& cfg) {
  bool ok = true;
  for (const auto& missing : switchboard::missing_secrets(cfg)) {
    std::cerr << "switchboard: bad configuration: " << missing.message() << "\n";
    ok = false;
  }
  if (cfg.enrichment.lookups.empty())
    return ok;
  try {
    switchboard::adapters::sqlite::lookup_db probe(cfg.enrichment, 1);
  } catch (const std::exception& e) {
    std::cerr << "switchboard: bad configuration: " << cfg.source << ": " << e.what() << "\n";
    return false;
  }
  return ok;
}

/// The signals that stop the daemon gracefully: SIGTERM, SIGINT and SIGHUP (a closed terminal,
/// or `kill -HUP`: switchboard logs to stderr only, so there are no log files to reopen, and it
/// drains as on SIGTERM). A SIGHUP the parent left ignored stays ignored, as `nohup` asks: a
/// blocked signal reaches sigwait even when its disposition is SIG_IGN.
sigset_t stop_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  struct sigaction hup {};
  if (sigaction(SIGHUP, nullptr, &hup) != 0 || hup.sa_handler != SIG_IGN)
    sigaddset(&signals, SIGHUP);
  return signals;
}

const char* signal_name(int sig) {
  switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGHUP: return "SIGHUP";
    default: return "a signal";
  }
}

int run(const std::string& config_path, const std::string& data_dir, const std::string& listen) {
  auto cfg = load(config_path);
  if (!cfg || !check_references(*cfg))
    return exit_bad_config;
  if (!data_dir.empty())
    cfg->data_dir = data_dir;
  if (!listen.empty()) {
    if (auto err = switchboard::apply_listen_override(*cfg, listen)) {
      std::cerr << "switchboard: bad --listen: " << err->message() << "\n";
      return exit_bad_config;
    }
  }
  setup_logging(cfg->log.level);

  // The stop signals are taken by one thread with sigwait, never by a signal handler: block
  // them here, before any other thread exists, so every thread inherits the mask.
  const sigset_t signals = stop_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  switchboard::runtime rt{*cfg};
  try {
    rt.start();
  } catch (const std::exception& e) {
    spdlog::critical("switchboard could not start: {}", e.what());
    return exit_start_failed;
  }
  std::atomic<bool> watcher_woken{false};  // by us, below, not by a user's signal
  std::thread signal_watcher([&rt, &watcher_woken, signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    if (!watcher_woken.load())
      spdlog::info("received {}, draining and stopping", signal_name(sig));
    rt.request_stop();
  });

  auto address = rt.listen_address();
  spdlog::info("switchboard {} running (config {}, data dir {})", switchboard::version_string,
               config_path, cfg->data_dir);
  if (!address.empty())
    std::cout << "switchboard listening on " << address << std::endl;
  else
    std::cout << "switchboard running (HTTP disabled)" << std::endl;

  auto waited = rt.wait();
  auto outcome = rt.stop();
  // Wake the watcher if it is still waiting (the runtime failed on its own).
  watcher_woken = true;
  pthread_kill(signal_watcher.native_handle(), SIGTERM);
  signal_watcher.join();
  if (outcome.failed || waited.failed) {
    spdlog::critical("switchboard stopped because the root supervisor gave up: {}",
                     outcome.reason.empty() ? waited.reason : outcome.reason);
    return exit_gave_up;
  }
  spdlog::info("switchboard stopped cleanly");
  return exit_ok;
}

/// `switchboard twilio-emulator`: serves the emulated Twilio APIs until SIGTERM or SIGINT.
int run_twilio_emulator(switchboard::adapters::twilio::emulator_options options) {
  namespace twilio = switchboard::adapters::twilio;
  const char* env_sid = std::getenv("TWILIO_ACCOUNT_SID");
  const char* env_token = std::getenv("TWILIO_AUTH_TOKEN");
  if ((options.account_sid.empty() && (env_sid == nullptr || *env_sid == '\0')) ||
      (options.auth_token.empty() && (env_token == nullptr || *env_token == '\0'))) {
    std::cerr << "switchboard twilio-emulator: no credentials: set TWILIO_ACCOUNT_SID and "
                 "TWILIO_AUTH_TOKEN, or pass --account-sid AC<32 hex digits> and --auth-token "
                 "TOKEN (clients authenticate with these, and webhooks are signed with the "
                 "token)\n";
    return exit_bad_config;
  }
  setup_logging("info");

  // As in run(): block the signals before any thread exists, and take them with sigwait.
  const sigset_t signals = stop_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::optional<twilio::emulator> emulator;
  try {
    emulator.emplace(std::move(options));
  } catch (const std::invalid_argument& e) {
    std::cerr << "switchboard " << e.what() << "\n";
    return exit_bad_config;
  }
  std::string address;
  try {
    address = emulator->start();
  } catch (const std::exception& e) {
    std::cerr << "switchboard " << e.what() << "\n";
    return exit_start_failed;
  }
  std::cout << "twilio emulator listening on " << address << std::endl;

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("received {}, stopping the twilio emulator", signal_name(sig));
  emulator->stop();
  return exit_ok;
}

/// `switchboard health`: GET /health on a running daemon, for container and service health
/// checks where no curl is installed. 0 when it answers 200, else 1 with the reason.
int probe_health(const std::string& url) {
  const auto scheme_end = url.find("://");
  const auto path_start = url.find('/', scheme_end == std::string::npos ? 0 : scheme_end + 3);
  if (url.rfind("http://", 0) != 0 || path_start == std::string::npos) {
    std::cerr << "switchboard health: --url '" << url
              << "' is not an http:// URL with a path, e.g. http://127.0.0.1:8080/health\n";
    return exit_bad_config;
  }
  httplib::Client client(url.substr(0, path_start));
  client.set_connection_timeout(3, 0);
  client.set_read_timeout(3, 0);
  auto res = client.Get(url.substr(path_start).c_str());
  if (!res) {
    std::cerr << "switchboard health: GET " << url << ": " << httplib::to_string(res.error())
              << "\n";
    return exit_start_failed;
  }
  if (res->status != 200) {
    std::cerr << "switchboard health: GET " << url << " answered " << res->status << ": "
              << res->body << "\n";
    return exit_start_failed;
  }
  std::cout << res->body << (res->body.empty() || res->body.back() != '\n' ? "\n" : "");
  return exit_ok;
}

std::vector<std::string> subcommand_names(CLI::App& app) {
  std::vector<std::string> out;
  for (const auto* sub : app.get_subcommands(std::function<bool(CLI::App*)>{}))
    out.push_back(sub->get_name());
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "switchboard: an actor-model message bus that keeps external services in step "
      "with a domain's state"};
  app.require_subcommand(1);
  app.set_version_flag("--version", version_line(), "Print the version and exit");

  std::string config_path;
  std::string data_dir;
  std::string listen;
  auto* run_cmd = app.add_subcommand(
      "run", "Run the daemon until SIGTERM, SIGINT or SIGHUP (each drains, then exits 0)");
  run_cmd->add_option("--config,-c", config_path, "Configuration file (JSON, comments allowed)")
      ->required();
  run_cmd->add_option("--data-dir", data_dir, "Directory for SQLite files (overrides data_dir)");
  run_cmd->add_option("--listen", listen,
                      "HTTP address HOST:PORT (overrides http.host/http.port; port 0 = any)");

  std::string check_path;
  auto* check_cmd = app.add_subcommand("check-config", "Validate a configuration file and exit");
  check_cmd->add_option("file", check_path, "Configuration file")->required();

  auto* version_cmd = app.add_subcommand("version", "Print the version and exit");

  switchboard::adapters::twilio::emulator_options emulator_options;
  bool no_rate_limits = false;
  auto* emulator_cmd = app.add_subcommand("twilio-emulator",
                                          "Serve Twilio's Sync, Conversations, TaskRouter and "
                                          "Messages APIs locally until SIGTERM, SIGINT or SIGHUP");
  emulator_cmd->add_option("--host", emulator_options.host, "Address to listen on")
      ->capture_default_str();
  emulator_cmd->add_option("--port", emulator_options.port, "Port to listen on (0 = any)")
      ->capture_default_str();
  emulator_cmd->add_option("--account-sid", emulator_options.account_sid,
                           "Account SID clients authenticate with (default: TWILIO_ACCOUNT_SID)");
  emulator_cmd->add_option("--auth-token", emulator_options.auth_token,
                           "Auth token clients authenticate with and webhooks are signed with "
                           "(default: TWILIO_AUTH_TOKEN)");
  emulator_cmd->add_option("--seed", emulator_options.seed, "Seed of the fault generator")
      ->capture_default_str();
  emulator_cmd->add_flag("--no-rate-limits", no_rate_limits,
                         "Do not enforce Sync's 20 writes/s per object");

  std::string health_url = "http://127.0.0.1:8080/health";
  auto* health_cmd = app.add_subcommand(
      "health", "GET /health on a running daemon: exit 0 on 200, else 1 (for health checks)");
  health_cmd->add_option("--url", health_url, "The daemon's health URL")->capture_default_str();

  // Said plainly, with the list, rather than CLI11's "arguments were not expected".
  const auto names = subcommand_names(app);
  if (argc < 2 ||
      (argv[1][0] != '-' && std::find(names.begin(), names.end(), argv[1]) == names.end())) {
    if (argc < 2)
      std::cerr << "switchboard: no subcommand given";
    else
      std::cerr << "switchboard: unknown subcommand '" << argv[1] << "'";
    std::cerr << "; the subcommands are:";
    for (const auto& name : names)
      std::cerr << (name == names.front() ? " " : ", ") << name;
    std::cerr << " (switchboard --help says what each does)\n";
    return exit_bad_config;
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help is a ParseError with exit code 0; usage errors are exit code 2 like bad configs.
    int code = app.exit(e);
    return code == 0 ? exit_ok : exit_bad_config;
  }

  if (*version_cmd) {
    std::cout << version_line() << std::endl;
    return exit_ok;
  }
  if (*check_cmd) {
    const auto cfg = load(check_path);
    if (!cfg || !check_references(*cfg))
      return exit_bad_config;
    std::cout << check_path << ": ok" << std::endl;
    return exit_ok;
  }
  if (*run_cmd)
    return run(config_path, data_dir, listen);
  if (*health_cmd)
    return probe_health(health_url);
  if (*emulator_cmd) {
    emulator_options.enforce_rate_limits = !no_rate_limits;
    return run_twilio_emulator(std::move(emulator_options));
  }
  return exit_bad_config;
}
