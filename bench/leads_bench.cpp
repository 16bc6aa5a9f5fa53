// leads_bench: web-to-text leads end to end, in one process, over loopback; and what an idle
// keyed actor costs in memory.
//
//   throughput  --leads=N submissions (distinct customers spread over --locations locations) by
//               --clients threads through runtime::invoke, each answered once its lead is open:
//               the conversation created, both SMS participants added and the first message sent
//               on switchboard's Twilio emulator over HTTP, every step journaled in leads.db
//               (SQLite, synchronous=FULL). Baseline in the same process: the same four Twilio
//               calls per lead made directly with twilio::client by the same number of threads,
//               no journal: the ceiling the emulator and loopback HTTP allow.
//   latency     submissions offered at a fixed --rate for --seconds (open loop: a lead is started
//               on time whether or not earlier ones finished); p50/p99/max from the call to the
//               answer "open".
//   http        the lead route over HTTP against the daemon and the emulator as child
//               processes, 32 kept-alive clients by default (leads_http.cpp, which says more):
//               --leads=1500 --clients=32 --dealers=50 --proxies=64 --latency-ms=0 --workers=N
//               --policy=sharing|stealing --log=warn (the daemon's log level) --cli=PATH
//   memory      --actors=N keyed entity actors made resident (one invocation each, of an id that
//               does not exist, so the runner answers at once), then RSS measured after
//               malloc_trim; per actor = RSS growth / N (the router's map entry included).
//               Baseline in the same process: N bare CAF event-based actors with a one-handler
//               behaviour.
//
// One JSON object per line on stdout, a summary on stderr. Options (--name=value):
//   --mode=all|throughput|latency|memory|http --leads=400 --clients=8 --locations=20 --rate=20
//   --seconds=10 --actors=100000 --workers=4 --dir=PATH

#include "bench_util.hpp"

#include "adapters/sqlite/invocation_store.hpp"
#include "adapters/twilio/client.hpp"
#include "adapters/twilio/emulator.hpp"
#include "engine/durable/invocations.hpp"
#include "switchboard/config.hpp"
#include "switchboard/runtime.hpp"

#include <spdlog/spdlog.h>
#include <boost/json.hpp>
#include <caf/all.hpp>

#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace leads_http {
void run(const bench::args& a, const std::string& account_sid, const std::string& auth_token);
}

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace switchboard;
using bench::steady;
namespace twilio = switchboard::adapters::twilio;

namespace {

constexpr const char* account_sid = "AC00000000000000000000000000000b06";
constexpr const char* auth_token = "leads-bench-token";

std::string make_dir(const std::string& given, const char* what) {
  if (!given.empty()) {
    fs::create_directories(given);
    return given;
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      std::string(tmp && *tmp ? tmp : "/tmp") + "/leads_bench_" + what + "_XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr)
    throw std::runtime_error("cannot create a scratch directory under " + pattern);
  return pattern;
}

std::string phone(std::uint64_t prefix, std::uint64_t n) {
  auto digits = std::to_string(n);
  return "+1" + std::to_string(prefix) +
         std::string(7 - std::min<std::size_t>(7, digits.size()), '0') + digits;
}

/// Resident set size in bytes (from /proc/self/statm).
double rss_bytes() {
  std::ifstream in("/proc/self/statm");
  double pages = 0, resident = 0;
  in >> pages >> resident;
  return resident * static_cast<double>(::sysconf(_SC_PAGESIZE));
}

config lead_config(const std::string& dir, const std::string& twilio_url, std::size_t locations,
                   std::size_t workers) {
  config cfg;
  cfg.data_dir = dir;
  cfg.http.enabled = false;
  cfg.log.level = "warn";
  cfg.twilio.base_url = twilio_url;
  cfg.leads.reminder_after = std::chrono::milliseconds{0};
  cfg.leads.close_inactive_after = std::chrono::milliseconds{0};
  cfg.leads.workers = workers;
  cfg.leads.answer_timeout = std::chrono::seconds{60};
  // Every open conversation of one location needs its own proxy number.
  for (std::size_t i = 0; i < 2000; ++i)
    cfg.leads.proxy_numbers.push_back(phone(555020, i));
  dealer_config d{"D1", "Bench Motors", {}};
  for (std::size_t i = 0; i < locations; ++i)
    d.locations.push_back(
        {"loc" + std::to_string(i), "Location " + std::to_string(i), phone(555030, i)});
  cfg.leads.dealers.push_back(d);
  return cfg;
}

keyed_request submission(std::uint64_t n, std::size_t locations) {
  keyed_request r;
  r.service = "leads";
  r.key = "B" + std::to_string(n);
  r.handler = "submit";
  r.body = json::serialize(json::object{{"customer_name", "Customer " + std::to_string(n)},
                                        {"customer_phone", phone(555040, n)},
                                        {"dealer_id", "D1"},
                                        {"location_id", "loc" + std::to_string(n % locations)},
                                        {"message", "Is the car still available?"}});
  return r;
}

twilio::emulator_options emulator_settings() {
  twilio::emulator_options o;
  o.account_sid = account_sid;
  o.auth_token = auth_token;
  return o;
}

void throughput(const bench::args& a) {
  const auto leads = a.num<std::uint64_t>("leads", 400);
  const auto clients = a.num<std::size_t>("clients", 8);
  const auto locations = a.num<std::size_t>("locations", 20);
  const auto workers = a.num<std::size_t>("workers", 4);

  // Baseline: the four calls of a lead made directly, no journal, same parallelism.
  double direct_rate = 0;
  {
    twilio::emulator emu{emulator_settings()};
    emu.start();
    std::atomic<std::uint64_t> next{0};
    const auto t0 = steady::now();
    std::vector<std::thread> threads;
    for (std::size_t c = 0; c < clients; ++c)
      threads.emplace_back([&] {
        twilio::client_options o;
        o.base_url = emu.base_url();
        twilio::client cl{o};
        for (auto n = next++; n < leads; n = next++) {
          twilio::conversation_fields f;
          f.unique_name = "direct-" + std::to_string(n);
          auto sid = cl.create_conversation(f).text("sid");
          cl.add_sms_participant(sid, phone(555040, n), phone(555020, 0));
          cl.add_sms_participant(sid, phone(555030, n % locations), phone(555020, 0));
          twilio::message_fields m;
          m.body = "New lead: Is the car still available?";
          m.attributes = json::object{{"step", "x"}};
          cl.send_message(sid, m);
        }
      });
    for (auto& t : threads)
      t.join();
    direct_rate = static_cast<double>(leads) / bench::seconds_between(t0, steady::now());
  }

  twilio::emulator emu{emulator_settings()};
  emu.start();
  const auto dir = make_dir(a.get("dir", ""), "throughput");
  runtime rt{lead_config(dir, emu.base_url(), locations, workers)};
  rt.start();
  std::atomic<std::uint64_t> next{0}, opened{0}, other{0};
  const auto cpu0 = bench::process_cpu_seconds();
  const auto t0 = steady::now();
  std::vector<std::thread> threads;
  for (std::size_t c = 0; c < clients; ++c)
    threads.emplace_back([&] {
      for (auto n = next++; n < leads; n = next++) {
        auto answer = rt.invoke(submission(n, locations));
        (answer.status == 201 ? opened : other)++;
      }
    });
  for (auto& t : threads)
    t.join();
  const auto secs = bench::seconds_between(t0, steady::now());
  const auto cpu = bench::process_cpu_seconds() - cpu0;
  rt.stop();
  fs::remove_all(dir);
  const double rate = static_cast<double>(opened) / secs;
  bench::json_line()
      .str("bench", "leads")
      .str("mode", "throughput")
      .number("leads", static_cast<double>(leads))
      .number("opened", static_cast<double>(opened))
      .number("not_opened", static_cast<double>(other))
      .number("clients", static_cast<double>(clients))
      .number("workers", static_cast<double>(workers))
      .number("seconds", secs)
      .number("leads_per_s", rate)
      .number("direct_twilio_calls_leads_per_s", direct_rate)
      .number("ratio_to_direct", direct_rate > 0 ? rate / direct_rate : 0)
      .number("cpu_seconds", cpu)
      .number("loadavg1", bench::loadavg1())
      .print();
  std::cerr << "throughput: " << opened << " leads open in " << secs << " s = " << rate
            << " leads/s (" << direct_rate
            << " leads/s making the same Twilio calls directly, ratio " << rate / direct_rate
            << "); " << other << " not opened\n";
}

void latency(const bench::args& a) {
  const auto rate = a.num<double>("rate", 20);
  const auto seconds = a.num<double>("seconds", 10);
  const auto locations = a.num<std::size_t>("locations", 20);
  const auto workers = a.num<std::size_t>("workers", 4);
  twilio::emulator emu{emulator_settings()};
  emu.start();
  const auto dir = make_dir(a.get("dir", ""), "latency");
  runtime rt{lead_config(dir, emu.base_url(), locations, workers)};
  rt.start();
  const auto total = static_cast<std::uint64_t>(rate * seconds);
  std::vector<double> ms(total, -1);
  std::vector<std::thread> threads;
  const auto t0 = steady::now();
  const auto interval = std::chrono::duration<double>(1.0 / rate);
  for (std::uint64_t n = 0; n < total; ++n) {
    std::this_thread::sleep_until(
        t0 + std::chrono::duration_cast<steady::duration>(interval * static_cast<double>(n)));
    threads.emplace_back([&, n] {
      const auto start = steady::now();
      auto answer = rt.invoke(submission(1'000'000 + n, locations));
      if (answer.status == 201)
        ms[n] = bench::seconds_between(start, steady::now()) * 1000;
    });
  }
  for (auto& t : threads)
    t.join();
  rt.stop();
  fs::remove_all(dir);
  std::vector<double> ok;
  for (double v : ms)
    if (v >= 0)
      ok.push_back(v);
  auto sorted = ok;
  const double p50 = bench::quantile(sorted, 0.5), p99 = bench::quantile(sorted, 0.99);
  const double max = sorted.empty() ? 0 : sorted.back();
  bench::json_line()
      .str("bench", "leads")
      .str("mode", "latency")
      .number("rate", rate)
      .number("seconds", seconds)
      .number("offered", static_cast<double>(total))
      .number("opened", static_cast<double>(ok.size()))
      .number("p50_ms", p50)
      .number("p99_ms", p99)
      .number("max_ms", max)
      .number("loadavg1", bench::loadavg1())
      .print();
  std::cerr << "latency at " << rate << " leads/s: p50 " << p50 << " ms, p99 " << p99 << " ms, max "
            << max << " ms (" << ok.size() << "/" << total << " opened)\n";
}

void memory(const bench::args& a) {
  const auto count = a.num<std::size_t>("actors", 100'000);
  // Baseline: bare CAF actors, in their own actor system.
  double bare_per_actor = 0;
  {
    caf::actor_system_config cfg;
    cfg.set("scheduler.max-threads", 2);
    caf::actor_system sys{cfg};
    std::vector<caf::actor> actors;
    actors.reserve(count);
    ::malloc_trim(0);
    const auto before = rss_bytes();
    for (std::size_t n = 0; n < count; ++n)
      actors.push_back(sys.spawn([]() -> caf::behavior { return {[](std::uint64_t) {}}; }));
    ::malloc_trim(0);
    bare_per_actor = (rss_bytes() - before) / static_cast<double>(count);
    for (auto& x : actors)
      caf::anon_send_exit(x, caf::exit_reason::user_shutdown);
    actors.clear();
  }

  const auto dir = make_dir(a.get("dir", ""), "memory");
  actors::engine_options opts;
  opts.open_connection = [path =
                              dir + "/leads.db"]() -> std::unique_ptr<ports::durable_connection> {
    return std::make_unique<adapters::sqlite::durable_database>(path);
  };
  opts.passivate_after = std::chrono::hours(1);  // keep them resident while measured
  std::vector<actors::service_spec> services;
  services.push_back({"leads",
                      2,
                      {},
                      {{"submit", [](actors::step_context&) { return json::value(nullptr); }}},
                      {}});
  double per_actor = 0;
  std::size_t resident = 0;
  {
    actors::invocation_engine engine{opts, std::move(services)};
    caf::actor_system_config cfg;
    cfg.set("scheduler.max-threads", 2);
    caf::actor_system sys{cfg};
    auto routers = engine.child(supervision_config{}).start(sys);
    // Wait for the router to be up: a dispatch before that is dropped.
    while (engine.active_entities() == 0) {
      engine.dispatch("leads", "warm-up", 1ull << 60);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::malloc_trim(0);
    const auto before = rss_bytes();
    const auto start_count = engine.active_entities();
    for (std::size_t n = 0; n < count; ++n)
      engine.dispatch("leads", "L-" + std::to_string(n),
                      (1ull << 60) + n);  // no such invocation: ends at once
    while (engine.active_entities() < start_count + count)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the runners' answers
    ::malloc_trim(0);
    resident = engine.active_entities() - start_count;
    per_actor = (rss_bytes() - before) / static_cast<double>(resident);
    caf::anon_send_exit(routers, caf::exit_reason::user_shutdown);
  }
  fs::remove_all(dir);
  bench::json_line()
      .str("bench", "leads")
      .str("mode", "memory")
      .number("actors", static_cast<double>(resident))
      .number("bytes_per_idle_lead_actor", per_actor)
      .number("lead_actors_per_gib", per_actor > 0 ? 1073741824.0 / per_actor : 0)
      .number("bare_caf_actor_bytes", bare_per_actor)
      .number("ratio_to_bare_caf_actor", bare_per_actor > 0 ? per_actor / bare_per_actor : 0)
      .print();
  std::cerr << "memory: " << per_actor << " B per idle lead actor (" << (1073741824.0 / per_actor)
            << " per GiB); a bare CAF actor " << bare_per_actor << " B (ratio "
            << per_actor / bare_per_actor << ")\n";
}

}  // namespace

int main(int argc, char** argv) {
  bench::args a{argc, argv};
  if (a.has("help")) {
    std::cerr << "leads_bench --mode=all|throughput|latency|memory|http --leads=400 --clients=8 "
                 "--locations=20 "
                 "--workers=4 --rate=20 --seconds=10 --actors=100000 --dir=PATH\n";
    return 0;
  }
  ::setenv("TWILIO_ACCOUNT_SID", account_sid, 1);
  ::setenv("TWILIO_AUTH_TOKEN", auth_token, 1);
  spdlog::set_level(spdlog::level::warn);
  const auto mode = a.get("mode", "all");
  try {
    if (mode == "all" || mode == "memory")
      memory(a);
    if (mode == "all" || mode == "throughput")
      throughput(a);
    if (mode == "all" || mode == "latency")
      latency(a);
    if (mode == "http")  // not in "all": it starts two processes and takes a minute
      leads_http::run(a, account_sid, auth_token);
  } catch (const std::exception& e) {
    std::cerr << "leads_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
