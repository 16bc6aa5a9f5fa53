// The `switchboard` binary: parse the command line and the config, host a runtime, wait.
//
// Exit codes: 0 ok; 1 could not start; 2 bad config or usage; 3 the root supervisor gave up.

#include "switchboard/config.hpp"
#include "switchboard/runtime.hpp"
#include "switchboard/version.hpp"

#include <CLI/CLI.hpp>
#include <boost/version.hpp>
#include <caf/config.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <optional>
#include <pthread.h>
#include <string>
#include <thread>

namespace {

constexpr int exit_ok = 0;
constexpr int exit_start_failed = 1;
constexpr int exit_bad_config = 2;
constexpr int exit_gave_up = 3;

std::string version_line() {
  return std::string{"switchboard "} + switchboard::version_string + " (CAF " +
         std::to_string(CAF_VERSION / 10000) + "." + std::to_string(CAF_VERSION / 100 % 100) +
         "." + std::to_string(CAF_VERSION % 100) + ", Boost " +
         std::to_string(BOOST_VERSION / 100000) + "." + std::to_string(BOOST_VERSION / 100 % 1000) +
         ")";
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

int run(const std::string& config_path, const std::string& data_dir, const std::string& listen) {
  auto cfg = load(config_path);
  if (!cfg)
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

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"switchboard: an actor-model message bus that keeps external services in step "
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
    if (!load(check_path))
      return exit_bad_config;
    std::cout << check_path << ": ok" << std::endl;
    return exit_ok;
  }
  if (*run_cmd)
    return run(config_path, data_dir, listen);
  return exit_bad_config;
}
