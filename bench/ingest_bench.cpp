// ingest_bench: durable ingest through switchboard::runtime::publish_async, i.e. the real
// journal: one writer thread, group commit, SQLite WAL with synchronous=FULL (an fsync per
// commit). Each phase gets a fresh runtime and journal in a temporary data directory.
//
//   fsync        the disk itself: write 4 KiB at the end of a file + fdatasync, N times, in
//                the data directory (before and after the ingest phases)
//   saturation   one producer thread publishes as fast as it can with at most `window`
//                events unacknowledged (default 16384, two of the writer's 8192-event
//                batches): events/s and ack latency (publish call -> callback)
//   paced        one producer thread offers a fixed rate (default 100k events/s for 3 s),
//                waking every 100 us to publish the events due by then: the achieved rate
//                and ack latency
//
// For the ingest phases it also reports how many events the writer grouped per commit. It
// counts commits exactly without a hook: the writer runs every callback of a commit before
// it publishes that commit's last sequence, so runtime::last_sequence() read inside a callback
// is the same for all events of one commit and differs between commits. (That costs one
// uncontended mutex lock per callback on the writer thread; --count-commits=0 turns it off.)
// Splitting the acknowledgements at time gaps does not work on a loaded 2-core machine: the
// writer thread is preempted inside a commit's callbacks often enough to count 3-15x too many.
//
// Events are built on the producer thread (CloudEvents attributes + a small JSON object), as an
// ingest path would after decoding; that cost is part of the producer's CPU.
//
// Prints one JSON object per line on stdout, a summary on stderr. Options (--name=value):
//   --dir=PATH (default: a new directory under $TMPDIR or /tmp, removed afterwards)
//   --sat-events=1000000 --window=16384 --rate=100000 --seconds=3 --fsync-samples=200
//   --count-commits=1 --phases=fsync,saturation,paced --keep (keep the data directory)
//   --subscribers=0 (durable subscriptions with no-op handlers, to see the bus's load on the
//   writer: each consumer saves its checkpoint through the writer)

#include "bench_util.hpp"

#include "switchboard/config.hpp"
#include "switchboard/event.hpp"
#include "switchboard/runtime.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using namespace switchboard;
using bench::steady;

namespace {

struct options {
  fs::path dir;
  bool keep = false;
  std::uint64_t sat_events = 1'000'000;
  std::uint64_t window = 16'384;
  double rate = 100'000;
  double seconds = 3;
  std::size_t fsync_samples = 200;
  bool count_commits = true;
  std::size_t subscribers = 0;  // durable subscriptions (no-op handlers) during ingest phases
  std::string phases = "fsync,saturation,paced";
};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch())
      .count();
}

// -- the disk --------------------------------------------------------------------------------

void fsync_probe(const fs::path& dir, std::size_t samples, const char* when) {
  const auto path = dir / "fsync.probe";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0)
    throw std::runtime_error("cannot create " + path.string() + ": " + std::strerror(errno));
  std::vector<char> block(4096, 'x');
  std::vector<double> us;
  us.reserve(samples);
  for (std::size_t i = 0; i < samples; ++i) {
    block[0] = static_cast<char>('a' + i % 26);
    const auto t0 = steady::now();
    if (::pwrite(fd, block.data(), block.size(), static_cast<off_t>(i * block.size())) !=
            static_cast<ssize_t>(block.size()) ||
        ::fdatasync(fd) != 0) {
      ::close(fd);
      throw std::runtime_error("write/fdatasync failed: " + std::string(std::strerror(errno)));
    }
    us.push_back(bench::seconds_between(t0, steady::now()) * 1e6);
  }
  ::close(fd);
  fs::remove(path);
  double sum = 0;
  for (double v : us)
    sum += v;
  const double mean = sum / static_cast<double>(us.size());
  auto sorted = us;
  const double p50 = bench::quantile(sorted, 0.50), p99 = bench::quantile(sorted, 0.99);
  bench::json_line j;
  j.str("bench", "ingest")
      .str("phase", "fsync")
      .str("when", when)
      .str("op", "pwrite 4KiB (appending) + fdatasync")
      .number("samples", static_cast<double>(samples))
      .number("p50_us", p50)
      .number("p99_us", p99)
      .number("max_us", sorted.back())
      .number("mean_us", mean)
      .number("fsyncs_per_s_serial", 1e6 / mean)
      .number("loadavg1", bench::loadavg1())
      .str("dir", dir.string())
      .print();
  std::fprintf(stderr, "fsync (%s): 4 KiB + fdatasync p50 %.0f us, p99 %.0f us, max %.0f us\n",
               when, p50, p99, sorted.back());
}

// -- ingest ----------------------------------------------------------------------------------

/// Per-event records, written by the producer (submit) and the writer thread (ack).
struct ack_log {
  explicit ack_log(std::size_t n) : submit(n), ack(n), commit_key(n) {}
  std::vector<std::int64_t> submit;
  std::vector<std::int64_t> ack;
  std::vector<std::uint64_t> commit_key;
  std::atomic<std::uint64_t> acked{0};
  std::atomic<std::uint64_t> failed{0};
  std::string first_error;  // written once by the writer thread under failed == 0 -> 1
};

struct event_factory {
  std::string time = rfc3339_now();
  std::string prefix;
  event make(std::uint64_t i) const {
    event ev;
    ev.id = prefix + std::to_string(i);
    ev.source = "https://loans.example.com/core";
    ev.type = "application.status_changed";
    ev.time = time;
    ev.entity_kind = "application";
    ev.entity_id = "A-" + std::to_string(1000 + i % 5000);
    ev.entity_version = i + 1;
    ev.correlation_id = "corr-" + std::to_string(i);
    ev.data["applicationId"] = ev.entity_id;
    ev.data["status"] = "approved";
    ev.data["previousStatus"] = "under_review";
    ev.data["amount"] = 25'000.0 + static_cast<double>(i % 1000);
    ev.data["currency"] = "EUR";
    return ev;
  }
};

void publish_one(runtime& rt, ack_log& log, const event_factory& f, std::uint64_t i,
                 bool count_commits) {
  auto ev = f.make(i);
  log.submit[i] = now_ns();
  rt.publish_async(std::move(ev), [&log, &rt, i, count_commits](const publish_receipt* r,
                                                                const std::string& error) {
    log.ack[i] = now_ns();
    if (count_commits)
      log.commit_key[i] = rt.last_sequence();
    if (r == nullptr && log.failed.fetch_add(1) == 0)
      log.first_error = error;
    log.acked.fetch_add(1, std::memory_order_release);
  });
}

struct thread_usage {
  double producer_util = 0;       // the producer (main) thread's CPU / wall
  double busiest_other_util = 0;  // the busiest other thread (the journal writer): CPU / wall
  double busiest_other_wait = 0;  // ... runnable but waiting for a CPU / wall
  double process_util = 0;        // all threads, in cores
};

/// Runs `body` and measures per-thread CPU over it.
template <class F>
thread_usage measure_threads(F&& body) {
  const long self = static_cast<long>(::gettid());
  auto before = bench::thread_cpu_ns();
  const auto t0 = steady::now();
  body();
  const double wall_ns = bench::seconds_between(t0, steady::now()) * 1e9;
  auto after = bench::thread_cpu_ns();
  thread_usage u;
  double total = 0;
  for (const auto& t : after) {
    bench::thread_times prev;
    for (const auto& b : before)
      if (b.tid == t.tid)
        prev = b;
    const double util = static_cast<double>(t.run_ns - prev.run_ns) / wall_ns;
    total += util;
    if (t.tid == self) {
      u.producer_util = util;
    } else if (util > u.busiest_other_util) {
      u.busiest_other_util = util;
      u.busiest_other_wait = static_cast<double>(t.wait_ns - prev.wait_ns) / wall_ns;
    }
  }
  u.process_util = total;
  return u;
}

struct latency_stats {
  double p50 = 0, p99 = 0, p999 = 0, max = 0, mean = 0;
};

latency_stats latencies_us(const ack_log& log, std::uint64_t n) {
  std::vector<double> us;
  us.reserve(n);
  double sum = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    us.push_back(static_cast<double>(log.ack[i] - log.submit[i]) / 1e3);
    sum += us.back();
  }
  latency_stats s;
  s.mean = sum / static_cast<double>(n);
  s.p50 = bench::quantile(us, 0.50);
  s.p99 = bench::quantile(us, 0.99);
  s.p999 = bench::quantile(us, 0.999);
  s.max = us.back();
  return s;
}

struct commit_stats {
  double commits = 0, mean = 0, p50 = 0, max = 0;  // events per commit
};

/// Commits from runs of equal `commit_key`. Acks come in submission order: one producer, one
/// FIFO queue, one writer.
commit_stats group_commits(const ack_log& log, std::uint64_t n) {
  std::vector<double> sizes;
  double current = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    if (i > 0 && log.commit_key[i] != log.commit_key[i - 1]) {
      sizes.push_back(current);
      current = 0;
    }
    ++current;
  }
  if (current > 0)
    sizes.push_back(current);
  commit_stats c;
  c.commits = static_cast<double>(sizes.size());
  c.mean = static_cast<double>(n) / c.commits;
  c.p50 = bench::quantile(sizes, 0.5);
  c.max = sizes.back();
  return c;
}

std::uintmax_t file_size_or_zero(const fs::path& p) {
  std::error_code ec;
  auto s = fs::file_size(p, ec);
  return ec ? 0 : s;
}

void ingest_phase(const options& opt, const std::string& phase) {
  const bool paced = phase == "paced";
  const auto data_dir = opt.dir / phase;
  config cfg;
  cfg.data_dir = data_dir.string();
  cfg.http.enabled = false;
  runtime rt{cfg};
  rt.start();
  std::atomic<std::uint64_t> delivered{0};
  for (std::size_t k = 0; k < opt.subscribers; ++k) {
    subscription_options so;
    so.pattern = "application.*";
    so.name = "bench-subscriber-" + std::to_string(k);
    rt.subscribe(so,
                 [&delivered](const event&) { delivered.fetch_add(1, std::memory_order_relaxed); });
  }

  const std::uint64_t n =
      paced ? static_cast<std::uint64_t>(opt.rate * opt.seconds) : opt.sat_events;
  ack_log log{n};
  event_factory factory;
  factory.prefix = "evt-" + phase + "-";
  const double load = bench::loadavg1();
  double max_lag_us = 0;
  std::int64_t first_submit = 0;

  auto usage = measure_threads([&] {
    if (paced) {
      // Wake every `tick` and publish every event due by then: a sleep per event (every
      // 10 us at 100k/s) would cost the producer more in context switches than in work.
      const double interval_ns = 1e9 / opt.rate;
      const auto tick = std::chrono::microseconds(100);
      const auto start = steady::now() + std::chrono::milliseconds(1);
      auto due = [&](std::uint64_t i) {
        return start + std::chrono::nanoseconds(
                           static_cast<std::int64_t>(interval_ns * static_cast<double>(i)));
      };
      std::uint64_t i = 0;
      while (i < n) {
        const auto now = steady::now();
        if (due(i) > now) {
          std::this_thread::sleep_until(std::max(due(i), now + tick));
          continue;
        }
        const auto now_us = std::chrono::duration<double, std::micro>(now - due(i)).count();
        max_lag_us = std::max(max_lag_us, now_us);
        for (; i < n && due(i) <= now; ++i)
          publish_one(rt, log, factory, i, opt.count_commits);
      }
    } else {
      // Keep `window` events unacknowledged; when full, wait (polling every 200 us) until
      // half of them are acknowledged, so that the writer always has a full batch queued
      // and the producer does not spin on the shared cores.
      for (std::uint64_t i = 0; i < n; ++i) {
        if (i - log.acked.load(std::memory_order_acquire) >= opt.window)
          while (i - log.acked.load(std::memory_order_acquire) > opt.window / 2)
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        publish_one(rt, log, factory, i, opt.count_commits);
      }
    }
    while (log.acked.load(std::memory_order_acquire) < n)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
  });
  first_submit = log.submit[0];
  std::int64_t last_ack = 0, last_submit = log.submit[n - 1];
  for (std::uint64_t i = 0; i < n; ++i)
    last_ack = std::max(last_ack, log.ack[i]);

  const auto db = data_dir / "journal.db";
  const auto db_bytes = file_size_or_zero(db);
  const auto wal_bytes = file_size_or_zero(fs::path(db.string() + "-wal"));
  const auto last_seq = rt.last_sequence();
  const auto delivered_at_last_ack = delivered.load();
  rt.stop();

  if (log.failed.load() != 0)
    throw std::runtime_error(phase + ": " + std::to_string(log.failed.load()) +
                             " publish(es) failed, first: " + log.first_error);
  if (last_seq != n)
    throw std::runtime_error(phase + ": the journal holds " + std::to_string(last_seq) +
                             " events, expected " + std::to_string(n));

  const double span_s = static_cast<double>(last_ack - first_submit) / 1e9;
  const double events_per_s = static_cast<double>(n) / span_s;
  const double offered_per_s =
      paced ? static_cast<double>(n - 1) / (static_cast<double>(last_submit - first_submit) / 1e9)
            : 0;
  const auto lat = latencies_us(log, n);

  bench::json_line j;
  j.str("bench", "ingest").str("phase", phase);
  if (paced)
    j.number("target_events_per_s", opt.rate).number("offered_events_per_s", offered_per_s);
  else
    j.number("window", static_cast<double>(opt.window));
  j.number("events_per_s", events_per_s)
      .number("events", static_cast<double>(n))
      .number("ack_p50_us", lat.p50)
      .number("ack_p99_us", lat.p99)
      .number("ack_p999_us", lat.p999)
      .number("ack_max_us", lat.max)
      .number("ack_mean_us", lat.mean);
  if (opt.count_commits) {
    const auto exact = group_commits(log, n);
    j.number("commits", exact.commits)
        .number("events_per_commit_mean", exact.mean)
        .number("events_per_commit_p50", exact.p50)
        .number("events_per_commit_max", exact.max);
  }
  if (opt.subscribers > 0)
    j.number("durable_subscribers", static_cast<double>(opt.subscribers))
        .number("delivered_when_all_acked", static_cast<double>(delivered_at_last_ack));
  j.number("writer_thread_cpu_util", usage.busiest_other_util)
      .number("writer_thread_runqueue_wait", usage.busiest_other_wait)
      .number("producer_thread_cpu_util", usage.producer_util)
      .number("process_cpu_cores", usage.process_util);
  if (paced)
    j.number("producer_max_lag_us", max_lag_us);
  j.number("journal_db_bytes", static_cast<double>(db_bytes))
      .number("journal_wal_bytes", static_cast<double>(wal_bytes))
      .number("loadavg1_before", load)
      .str("synchronous", "FULL")
      .print();

  std::fprintf(
      stderr, "ingest %-10s %9.0f events/s%s  ack p50 %.0f us, p99 %.0f us, max %.0f us",
      phase.c_str(), events_per_s,
      paced ? (" (offered " + std::to_string(static_cast<long>(offered_per_s)) + ")").c_str() : "",
      lat.p50, lat.p99, lat.max);
  if (opt.count_commits) {
    const auto exact = group_commits(log, n);
    std::fprintf(stderr, "; %.0f commits, %.1f events/commit", exact.commits, exact.mean);
  }
  std::fprintf(
      stderr, "; writer thread %.0f%% on CPU, %.0f%% waiting for one; producer %.0f%% on CPU\n",
      usage.busiest_other_util * 100, usage.busiest_other_wait * 100, usage.producer_util * 100);
}

}  // namespace

int main(int argc, char** argv) {
  options opt;
  try {
    bench::args a{argc, argv};
    if (a.has("help")) {
      std::cerr << "usage: ingest_bench [--dir=PATH] [--keep] [--sat-events=N] [--window=N] "
                   "[--rate=N] [--seconds=S] [--fsync-samples=N] [--count-commits=0|1] "
                   "[--phases=fsync,saturation,paced] [--subscribers=N]\n";
      return 0;
    }
    opt.sat_events = a.num("sat-events", opt.sat_events);
    opt.window = a.num("window", opt.window);
    opt.rate = a.num("rate", opt.rate);
    opt.seconds = a.num("seconds", opt.seconds);
    opt.fsync_samples = a.num("fsync-samples", opt.fsync_samples);
    opt.count_commits = a.num("count-commits", 1) != 0;
    opt.subscribers = a.num("subscribers", opt.subscribers);
    opt.phases = a.get("phases", opt.phases);
    opt.keep = a.has("keep");
    if (opt.sat_events == 0 || opt.window == 0 || opt.rate <= 0 || opt.seconds <= 0 ||
        opt.fsync_samples == 0)
      throw std::invalid_argument("sizes, rate and duration must be positive");
    auto dir = a.get("dir", "");
    if (dir.empty()) {
      const char* tmp = std::getenv("TMPDIR");
      auto pattern = (fs::path(tmp && *tmp ? tmp : "/tmp") / "switchboard-bench-XXXXXX").string();
      if (::mkdtemp(pattern.data()) == nullptr)
        throw std::runtime_error("mkdtemp failed: " + std::string(std::strerror(errno)));
      opt.dir = pattern;
    } else {
      opt.dir = dir;
      fs::create_directories(opt.dir);
    }
  } catch (const std::exception& e) {
    std::cerr << "ingest_bench: " << e.what() << "\n";
    return 2;
  }

  // A closed stdout (e.g. `| head -1`) must not kill us before the data directory is removed.
  std::signal(SIGPIPE, SIG_IGN);
  // Keep stdout for JSON: the library logs (warnings, errors) go to stderr.
  spdlog::set_default_logger(spdlog::stderr_color_mt("ingest_bench"));
  spdlog::set_level(spdlog::level::warn);

  int status = 0;
  try {
    auto wants = [&](const char* p) { return opt.phases.find(p) != std::string::npos; };
    if (wants("fsync"))
      fsync_probe(opt.dir, opt.fsync_samples, "before");
    if (wants("saturation"))
      ingest_phase(opt, "saturation");
    if (wants("paced"))
      ingest_phase(opt, "paced");
    if (wants("fsync"))
      fsync_probe(opt.dir, opt.fsync_samples, "after");
  } catch (const std::exception& e) {
    std::cerr << "ingest_bench: " << e.what() << "\n";
    status = 1;
  }
  if (!opt.keep) {
    std::error_code ec;
    fs::remove_all(opt.dir, ec);
  } else {
    std::cerr << "ingest_bench: kept " << opt.dir << "\n";
  }
  return status;
}
