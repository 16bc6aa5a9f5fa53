// The `switchboard` binary: parse the command line and the config, host a runtime, wait.
//
// Exit codes: 0 ok; 1 could not start; 2 bad config or usage; 3 the root supervisor gave up.

#include "adapters/sqlite/lookup_db.hpp"
#include "adapters/twilio/emulator.hpp"
#include "switchboard/config.hpp"
#include "switchboard/runtime.hpp"
#include "switchboard/version.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <boost/version.hpp>
#include <caf/config.hpp>

#include <pthread.h>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

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
/// enrichment database and every lookup's SQL. A bad one is a configuration error (exit 2).
bool check_references(const switchboard::config& cfg) {
  if (cfg.enrichment.lookups.empty())
    return true;
  try {
    switchboard::adapters::sqlite::lookup_db probe(cfg.enrichment, 1);
  } catch (const std::exception& e) {
    std::cerr << "switchboard: bad configuration: " << cfg.source << ": " << e.what() << "\n";
    return false;
  }
  return true;
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

  // SIGTERM/SIGINT are taken by one thread with sigwait, never by a signal handler: block them
  // here, before any other thread exists, so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  switchboard::runtime rt{*cfg};
  try {
    rt.start();
  } catch (const std::exception& e) {
    spdlog::critical("switchboard could not start: {}", e.what());
    return exit_start_failed;
  }
  std::thread signal_watcher([&rt, signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig == SIGTERM || sig == SIGINT)
      spdlog::info("received {}, draining and stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
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
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
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
  spdlog::info("received {}, stopping the twilio emulator", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  emulator->stop();
  return exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "switchboard: an actor-model message bus that keeps external services in step "
      "with a domain's state"};
  app.require_subcommand(1);

  std::string config_path;
  std::string data_dir;
  std::string listen;
  auto* run_cmd = app.add_subcommand("run", "Run the daemon until SIGTERM or SIGINT");
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
  auto* emulator_cmd = app.add_subcommand(
      "twilio-emulator",
      "Serve Twilio's Sync, Conversations and TaskRouter APIs locally until SIGTERM or SIGINT");
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
  if (*emulator_cmd) {
    emulator_options.enforce_rate_limits = !no_rate_limits;
    return run_twilio_emulator(std::move(emulator_options));
  }
  return exit_bad_config;
}
