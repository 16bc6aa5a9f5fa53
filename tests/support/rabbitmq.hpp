#pragma once

// The private test broker (scripts/rabbitmq, started by the `rabbitmq` CTest fixture): where
// it listens, how to drive its script, and unique names so tests never share queues.

#include "adapters/amqp/connection.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <string>

#include <unistd.h>

namespace switchboard::testing {

inline std::uint16_t rabbitmq_port() {
  const char* p = std::getenv("RMQ_PORT");
  return static_cast<std::uint16_t>(p != nullptr ? std::atoi(p) : 5673);
}

inline adapters::amqp::connection_params rabbitmq_params() {
  adapters::amqp::connection_params p;
  p.port = rabbitmq_port();
  p.connection_name = "switchboard test";
  return p;
}

/// `scripts/rabbitmq ARGS` against the test broker (RMQ_BASE and RMQ_PORT come from the
/// environment CTest sets); its exit code.
inline int rabbitmq_script(const std::string& args) {
  const char* script = std::getenv("SWITCHBOARD_RABBITMQ_SCRIPT");
  std::string path = script != nullptr ? script : SWITCHBOARD_SOURCE_DIR "/scripts/rabbitmq";
  return std::system(("bash '" + path + "' " + args + " >&2").c_str());
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
