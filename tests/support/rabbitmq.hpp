#pragma once

// The private test broker (scripts/rabbitmq, started by the `rabbitmq` CTest fixture): where
// it listens, how to drive its script, and unique names so tests never share queues. The
// build compiles in the fixture's port, data folder and script; RMQ_PORT, RMQ_BASE and
// SWITCHBOARD_RABBITMQ_SCRIPT in the environment override them (e.g. for a broker started by
// hand with `scripts/rabbitmq start`).

#include "adapters/amqp/connection.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <string>

#include <unistd.h>

namespace switchboard::testing {

inline std::string rabbitmq_setting(const char* env, std::string fallback) {
  const char* v = std::getenv(env);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

inline std::uint16_t rabbitmq_port() {
  return static_cast<std::uint16_t>(
      std::stoi(rabbitmq_setting("RMQ_PORT", std::to_string(SWITCHBOARD_RMQ_PORT))));
}

inline adapters::amqp::connection_params rabbitmq_params() {
  adapters::amqp::connection_params p;
  p.port = rabbitmq_port();
  p.connection_name = "switchboard test";
  return p;
}

/// `scripts/rabbitmq ARGS` against the test broker; its exit status.
inline int rabbitmq_script(const std::string& args) {
  const auto script = rabbitmq_setting("SWITCHBOARD_RABBITMQ_SCRIPT", SWITCHBOARD_RABBITMQ_SCRIPT);
  const auto base = rabbitmq_setting("RMQ_BASE", SWITCHBOARD_RMQ_BASE);
  const auto command = "RMQ_PORT=" + std::to_string(rabbitmq_port()) + " RMQ_BASE='" + base +
                       "' bash '" + script + "' " + args + " >&2";
  return std::system(command.c_str());
}

/// "sbtest.<what>.<pid>.<n>": unique per test and process.
inline std::string unique_name(const std::string& what) {
  static std::atomic<int> counter{0};
  return "sbtest." + what + "." + std::to_string(::getpid()) + "." + std::to_string(++counter);
}

/// Messages ready (not delivered or unacknowledged) in `queue`.
inline std::uint32_t ready_count(const std::string& queue) {
  adapters::amqp::connection c(rabbitmq_params());
  return c.declare_queue(queue, true);
}

}  // namespace switchboard::testing
