// poison_bench: healthy throughput of a durable subscription while some events keep failing.
//
// A poison event is one whose handling fails every time: the subscription retries it with its
// backoff (the default policy: 5 attempts, 50 ms doubling, about 0.75 s in all), then parks it
// as a dead letter. What matters is what it costs everyone else: the events of the other
// entities, which share its partition.
//
// Each run: a fresh runtime and journal; `--events` events (one per entity, so no healthy event
// waits behind a poison one of its own entity) are published and on disk before the durable
// subscription starts, which then works through the backlog. `--percent` % of the events are
// poison, spread evenly. Healthy throughput = healthy events / (subscribe -> the last healthy
// event done). Two paths:
//
//   state  the entity-state pipeline as the propagation job wires it (`switchboard.state`'s
//          settings: `--partitions` lanes, async handler on the pipeline's lanes, state.db,
//          two SQL lookups with cache-aside). A poison event's profile row holds malformed
//          JSON, so its lookup (`json(doc)`) fails on every attempt. "Done" = stored.
//   bus    a plain durable subscription whose handler counts events and throws for poison.
//
// The runs interleave (0 % then the poisoned share, `--reps=5` times per path); each path prints
// the median per share and the ratio poisoned / clean (also the median of per-repetition
// ratios). Options (--name=value): --events=20000 (state) --bus-events=200000 --percent=2
// --reps=5 --partitions=2 --max-in-flight=1024 (the subscription's credit; an event waiting
// for its retry holds one) --paths=state,bus --log=off|warn|error (spdlog level; each retry
// logs a warning) --dir=PATH --keep

#include "bench_util.hpp"

#include "adapters/sqlite/state_store.hpp"
#include "engine/bus/async_handler.hpp"
#include "jobs/propagation/state_pipeline.hpp"
#include "runtime/job_adapters.hpp"
#include "switchboard/config.hpp"
#include "switchboard/runtime.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace switchboard;
using bench::steady;

namespace {

std::string make_dir(const std::string& given) {
  if (!given.empty()) {
    fs::create_directories(given);
    return given;
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/poison_bench_XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr)
    throw std::runtime_error("cannot create a scratch directory under " + pattern);
  return pattern;
}

/// Event i is poison when the running count of poison events steps up at i: `percent` % of
/// the events, spread evenly (none at 0 %).
bool is_poison(std::uint64_t i, double percent) {
  const auto before = static_cast<std::uint64_t>(static_cast<double>(i) * percent / 100.0);
  const auto after = static_cast<std::uint64_t>(static_cast<double>(i + 1) * percent / 100.0);
  return after > before;
}

void make_crm(const std::string& path) {
  SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  db.exec(R"sql(
    CREATE TABLE account_managers (id TEXT PRIMARY KEY, name TEXT NOT NULL, phone TEXT);
    CREATE TABLE profiles (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
    INSERT INTO profiles VALUES ('ok', '{"tier":"silver"}');
    INSERT INTO profiles VALUES ('bad', '{');
  )sql");
  SQLite::Transaction tx(db);
  SQLite::Statement insert(db, "INSERT INTO account_managers VALUES (?, ?, ?)");
  for (int i = 0; i < 100; ++i) {
    insert.bind(1, "AM-" + std::to_string(i));
    insert.bind(2, "Manager " + std::to_string(i));
    insert.bind(3, "+1555010" + std::to_string(1000 + i));
    insert.exec();
    insert.reset();
  }
  tx.commit();
}

config make_config(const std::string& dir, std::size_t partitions) {
  config cfg;
  cfg.data_dir = dir + "/data";
  cfg.http.enabled = false;
  cfg.drain_timeout = std::chrono::seconds(30);
  cfg.state.partitions = partitions;
  cfg.enrichment.database = dir + "/crm.db";
  lookup_config manager;
  manager.name = "manager";
  manager.entity_kind = "application";
  manager.sql = "SELECT name, phone FROM account_managers WHERE id = ?";
  manager.params = {"accountManagerId"};
  manager.into = "accountManager";
  cfg.enrichment.lookups.push_back(manager);
  lookup_config profile;
  profile.name = "profile";
  profile.entity_kind = "application";
  profile.sql = "SELECT json(doc) AS doc FROM profiles WHERE id = ?";  // fails on malformed JSON
  profile.params = {"profileId"};
  profile.into = "profile";
  cfg.enrichment.lookups.push_back(profile);
  return cfg;
}

/// The runtime under the pipeline, without a propagation job of its own (the run wires the
/// pipeline itself, as the job does, to be told of every stored state).
config bus_only(config c) {
  c.enrichment.lookups.clear();
  c.targets.clear();
  return c;
}

struct run_result {
  double healthy_per_s = 0;
  double healthy_s = 0;  // subscribe -> last healthy event done
  double settled_s = 0;  // subscribe -> every poison event dead-lettered too
  std::uint64_t healthy = 0;
  std::uint64_t poison = 0;
  std::uint64_t dead_letters = 0;
  double cpu_s = 0;
  bool complete = false;
};

run_result run_once(const std::string& path, const std::string& dir, std::uint64_t events,
                    double percent, std::size_t partitions, std::size_t max_in_flight) {
  fs::remove_all(dir);
  fs::create_directories(dir);
  make_crm(dir + "/crm.db");
  const auto cfg = make_config(dir, partitions);
  std::shared_ptr<adapters::sqlite::state_store> store;
  std::unique_ptr<actors::state_pipeline> pipeline;
  std::atomic<std::uint64_t> healthy_done{0};
  std::atomic<std::int64_t> last_healthy_ns{0};
  auto mark = [&] {
    ++healthy_done;
    last_healthy_ns.store(steady::now().time_since_epoch().count(), std::memory_order_relaxed);
  };
  if (path == "state") {
    fs::create_directories(cfg.data_dir);
    store = std::make_shared<adapters::sqlite::state_store>(cfg.data_dir + "/state.db");
    pipeline = std::make_unique<actors::state_pipeline>(
        cfg, store, runtime_parts::propagation_adapters_for(cfg).open_lookups);
    pipeline->on_change([&](const ports::stored_state&) { mark(); });
  }

  runtime rt(bus_only(cfg));
  rt.start();
  std::uint64_t poison = 0;
  std::atomic<std::uint64_t> acked{0}, failed{0};
  for (std::uint64_t i = 0; i < events; ++i) {
    const bool bad = is_poison(i, percent);
    poison += bad ? 1 : 0;
    event ev;
    ev.id = "ev-" + std::to_string(i);
    ev.source = "bench/poison";
    ev.type = "application.status_changed";
    ev.entity_kind = "application";
    ev.entity_id = "A-" + std::to_string(i);
    ev.entity_version = 1;
    ev.data = json::object{{"status", "submitted"},
                           {"accountManagerId", "AM-" + std::to_string(i % 100)},
                           {"profileId", bad ? "bad" : "ok"}};
    rt.publish_async(std::move(ev), [&](const publish_receipt* r, const std::string&) {
      (r != nullptr ? acked : failed).fetch_add(1);
    });
  }
  while (acked.load() + failed.load() < events)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  if (failed.load() > 0)
    throw std::runtime_error(std::to_string(failed.load()) + " events were not stored");
  const std::uint64_t healthy = events - poison;

  subscription_options opts;
  opts.pattern = "application.*";
  opts.partitions = partitions;
  opts.max_in_flight = max_in_flight;
  std::string consumer;
  const auto cpu0 = bench::process_cpu_seconds();
  const auto start = steady::now();
  if (path == "state") {
    // As jobs/propagation/job.cpp subscribes the pipeline.
    opts.name = consumer = "switchboard.state";
    opts.drop_stale_versions = false;
    actors::async_event_handler handler;
    auto* p = pipeline.get();
    handler.start = [p](event_ptr ev, actors::async_event_handler::done_fn done) {
      p->handle_async(std::move(ev), std::move(done));
    };
    handler.wait = [p](const event& ev) { p->handle(ev); };
    rt.subscribe(opts, handler);
  } else {
    opts.name = consumer = "bench.poison";
    rt.subscribe(opts, [&](const event& ev) {
      if (ev.data.at("profileId") == "bad")
        throw std::runtime_error("poison event " + ev.id);
      mark();
    });
  }
  const auto deadline = start + std::chrono::seconds(300);
  while (healthy_done.load() < healthy && steady::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const auto cpu1 = bench::process_cpu_seconds();
  run_result r;
  r.healthy = healthy;
  r.poison = poison;
  r.complete = healthy_done.load() == healthy;
  const auto last = steady::time_point(steady::duration(last_healthy_ns.load()));
  r.healthy_s = bench::seconds_between(start, r.complete ? last : steady::now());
  r.healthy_per_s = static_cast<double>(healthy_done.load()) / r.healthy_s;
  r.cpu_s = cpu1 - cpu0;
  while (rt.dead_letters(consumer, 10'000).size() < poison && steady::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  r.settled_s = bench::seconds_between(start, steady::now());
  r.dead_letters = rt.dead_letters(consumer, 10'000).size();
  rt.stop();
  if (pipeline)
    pipeline->stop();
  return r;
}

}  // namespace

int main(int argc, char** argv) try {
  bench::args a(argc, argv);
  const auto state_events = a.num<std::uint64_t>("events", 20'000);
  // The plain subscription is ~100 times faster: more events, so that a run lasts long enough
  // to time and its poison events retry while healthy ones flow.
  const auto bus_events = a.num<std::uint64_t>("bus-events", 200'000);
  const double percent = a.num("percent", 2.0);
  const int reps = a.num("reps", 5);
  const std::size_t partitions = a.num<std::size_t>("partitions", 2);
  const std::size_t max_in_flight = a.num<std::size_t>("max-in-flight", 1024);
  const std::string paths_arg = a.get("paths", "state,bus");
  const std::string log = a.get("log", "off");
  const bool keep = a.has("keep");
  const std::string dir = make_dir(a.get("dir", ""));
  spdlog::set_level(log == "warn"    ? spdlog::level::warn
                    : log == "error" ? spdlog::level::err
                                     : spdlog::level::off);
  std::vector<std::string> paths;
  for (std::size_t at = 0; at <= paths_arg.size();) {
    auto comma = paths_arg.find(',', at);
    if (comma == std::string::npos)
      comma = paths_arg.size();
    const auto p = paths_arg.substr(at, comma - at);
    if (p != "state" && p != "bus")
      throw std::invalid_argument("--paths: '" + p + "' is neither state nor bus");
    paths.push_back(p);
    at = comma + 1;
  }

  for (const auto& path : paths) {
    const auto events = path == "state" ? state_events : bus_events;
    std::vector<double> clean, poisoned, paired;
    for (int rep = 0; rep < reps; ++rep) {
      double clean_rate = 0;
      for (const double share : {0.0, percent}) {
        const auto r = run_once(path, dir + "/run", events, share, partitions, max_in_flight);
        bench::json_line j;
        j.str("bench", "poison")
            .str("path", path)
            .str("phase", "run")
            .number("rep", rep)
            .number("poison_percent", share)
            .number("events", static_cast<double>(events))
            .number("poison_events", static_cast<double>(r.poison))
            .number("healthy_events", static_cast<double>(r.healthy))
            .number("healthy_per_s", r.healthy_per_s)
            .number("healthy_s", r.healthy_s)
            .number("settled_s", r.settled_s)
            .number("dead_letters", static_cast<double>(r.dead_letters))
            .number("cpu_s", r.cpu_s)
            .raw("complete", r.complete ? "true" : "false")
            .number("partitions", static_cast<double>(partitions))
            .number("max_in_flight", static_cast<double>(max_in_flight))
            .number("load1", bench::loadavg1());
        j.print();
        std::cerr << "poison " << path << " rep " << rep << ": " << share << " % poison ("
                  << r.poison << " events): " << r.healthy << " healthy events in " << r.healthy_s
                  << " s = " << r.healthy_per_s << "/s; dead letters " << r.dead_letters
                  << " after " << r.settled_s << " s" << (r.complete ? "" : " (INCOMPLETE)")
                  << "\n";
        if (share == 0.0) {
          clean.push_back(r.healthy_per_s);
          clean_rate = r.healthy_per_s;
        } else {
          poisoned.push_back(r.healthy_per_s);
          paired.push_back(r.healthy_per_s / clean_rate);
        }
      }
    }
    const double clean_median = bench::median(clean);
    const double poisoned_median = bench::median(poisoned);
    bench::json_line j;
    j.str("bench", "poison")
        .str("path", path)
        .str("phase", "ratio")
        .number("poison_percent", percent)
        .number("healthy_per_s_clean", clean_median)
        .number("healthy_per_s_poisoned", poisoned_median)
        .number("ratio", poisoned_median / clean_median)
        .number("ratio_paired_median", bench::median(paired))
        .raw("clean_runs", bench::num_list(clean))
        .raw("poisoned_runs", bench::num_list(poisoned));
    j.print();
    std::cerr << "poison " << path << ": healthy throughput " << clean_median << "/s clean, "
              << poisoned_median << "/s with " << percent << " % poison: ratio "
              << poisoned_median / clean_median << " (paired median " << bench::median(paired)
              << ")\n";
  }
  if (!keep)
    fs::remove_all(dir);
  return 0;
} catch (const std::exception& e) {
  std::cerr << "poison_bench: " << e.what() << "\n";
  return 2;
}
