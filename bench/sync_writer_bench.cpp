// sync_writer_bench: one hot entity updated --rate=1000 times a second for --seconds=5 through a
// sync writer (document target, default limits: 50 ms per object, concurrency 4) to the
// in-process Twilio emulator over loopback HTTP, with a real state store file. Reports the
// updates stored, the write requests sent, the writes per second the object received, the 429s,
// and whether the object ends with exactly the last state.
// Goal: <= 20 writes/s for the object (Twilio Sync's limit), zero 429s, exact.

#include "bench_util.hpp"

#include "adapters/sqlite/state_store.hpp"
#include "adapters/twilio/client.hpp"
#include "adapters/twilio/emulator.hpp"
#include "jobs/propagation/sync_writer.hpp"

#include <httplib.h>
#include <boost/json.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/send.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include <stdlib.h>

namespace json = boost::json;
namespace twilio = switchboard::adapters::twilio;
namespace sqlite = switchboard::adapters::sqlite;
using namespace std::chrono_literals;

int main(int argc, char** argv) try {
  bench::args a{argc, argv};
  if (a.has("help")) {
    std::fprintf(stderr, "sync_writer_bench [--rate=1000] [--seconds=5] [--interval-ms=50]\n");
    return 0;
  }
  const auto rate = a.num<double>("rate", 1000);
  const auto seconds = a.num<double>("seconds", 5);
  const auto interval_ms = a.num<int>("interval-ms", 50);

  auto pattern = (std::filesystem::temp_directory_path() / "sync-writer-bench.XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr)
    throw std::runtime_error("mkdtemp failed: " + std::string(std::strerror(errno)));
  const std::filesystem::path dir = pattern;

  const std::string sid = "AC00112233445566778899aabbccddee99";
  const std::string token = "bench-token";
  twilio::emulator_options eo;
  eo.account_sid = sid;
  eo.auth_token = token;
  twilio::emulator emu{eo};
  emu.start();
  httplib::Client raw{emu.base_url()};
  raw.set_basic_auth(sid.c_str(), token.c_str());
  auto created = raw.Post("/sync/v1/Services", httplib::Params{{"FriendlyName", "bench"}});
  if (!created || created->status != 201)
    throw std::runtime_error("could not create a Sync service in the emulator");
  const std::string service{json::parse(created->body).at("sid").as_string()};

  auto store = std::make_shared<sqlite::state_store>((dir / "state.db").string());
  switchboard::target_config target;
  target.name = "bench";
  target.type = switchboard::target_config::kind::sync_document;
  target.entity_kind = "application";
  target.service = service;
  target.document = "application-{id}";
  target.min_interval = std::chrono::milliseconds{interval_ms};
  twilio::client_options co;
  co.base_url = emu.base_url();
  co.account_sid = sid;
  co.auth_token = token;

  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 2);
  caf::actor_system sys{cfg};
  auto writer = switchboard::actors::sync_writer::create(
      target, [co] { return std::make_unique<twilio::client>(co); }, store);
  auto actor = writer->child().start(sys);

  // The producer: stores each update and notifies the writer, paced to `rate`.
  const auto total = static_cast<std::uint64_t>(rate * seconds);
  const auto began = bench::steady::now();
  std::uint64_t sequence = 0;
  for (std::uint64_t n = 1; n <= total; ++n) {
    const auto due = began + std::chrono::duration_cast<bench::steady::duration>(
                                 std::chrono::duration<double>(static_cast<double>(n - 1) / rate));
    std::this_thread::sleep_until(due);
    json::object state{{"n", n}, {"status", n % 2 ? "open" : "review"}};
    auto r = store->put("application", "hot", std::nullopt, ++sequence, state, state);
    if (r.state)
      writer->notify(*r.state);
  }
  const auto produced = bench::steady::now();

  // Until the last state is written (bounded).
  bool exact = false;
  twilio::client check{co};
  for (auto deadline = produced + 10s; bench::steady::now() < deadline;) {
    if (store->counts("bench", "application").pending == 0 && writer->stats().in_flight == 0) {
      auto d = check.fetch_document(service, "application-hot");
      exact = d && d.body.at("data") ==
                       json::value{{"n", total}, {"status", total % 2 ? "open" : "review"}};
      break;
    }
    std::this_thread::sleep_for(5ms);
  }
  const auto ended = bench::steady::now();
  const auto s = writer->stats();
  const double run_s = bench::seconds_between(began, ended);

  caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
  writer->stop();

  bench::json_line j;
  j.str("bench", "sync_writer")
      .number("updates", static_cast<double>(total))
      .number("updates_per_s", static_cast<double>(total) / bench::seconds_between(began, produced))
      .number("writes_sent", static_cast<double>(s.writes_sent))
      .number("writes_ok", static_cast<double>(s.ok))
      .number("writes_per_s", static_cast<double>(s.writes_sent) / run_s)
      .number("coalesced", static_cast<double>(s.coalesced))
      .number("rate_limited_429", static_cast<double>(s.rate_limited))
      .number("retried", static_cast<double>(s.retried))
      .number("seconds", run_s)
      .raw("exact", exact ? "true" : "false")
      .number("load1", bench::loadavg1());
  j.print();
  std::fprintf(
      stderr,
      "sync_writer: %llu updates in %.2f s -> %llu writes sent (%.1f writes/s for the "
      "object), %llu coalesced, %llu 429s, final state %s\n",
      static_cast<unsigned long long>(total), run_s, static_cast<unsigned long long>(s.writes_sent),
      static_cast<double>(s.writes_sent) / run_s, static_cast<unsigned long long>(s.coalesced),
      static_cast<unsigned long long>(s.rate_limited), exact ? "exact" : "NOT exact");
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "sync_writer_bench: %s\n", e.what());
  return 2;
}
