// routing_bench: in-memory routing through three CAF actors with credit-based flow control.
//
//   producer --(msg)--> router --(msg)--> handler
//      ^                                     |
//      +-------- credit every `chunk` -------+
//
// Variants, all in one actor system (scheduler.max-threads=2 by default), interleaved per
// repetition so that machine noise hits them alike:
//   caf_raw               plain std::int64_t messages; credit is a plain std::int64_t count.
//   switchboard           one message per event: (work_atom, event_ptr) on both hops, credit
//                         as (done_atom, std::vector<std::uint64_t> sequences) like a
//                         partition answers its consumer. The router matches the event type
//                         against a subscription pattern (core::type_pattern); the handler
//                         stage calls a std::function<void(const event&)> (an event_handler).
//   switchboard_batched   what the bus really sends: (work_atom, event_batch) of `batch`
//                         events per message; the router re-batches (like the consumer's
//                         dispatch), the handler stage answers one done vector per batch.
//   bus                   switchboard's own bus code (src/actors/bus.cpp), unchanged: a feeder
//                         thread appends committed events to a journal_tail as the journal
//                         writer does after a commit; the tail wakes an ephemeral consumer
//                         actor (max_in_flight = window, 1 partition) that reads them, matches
//                         its pattern and hands them to its partition actor, which runs the
//                         handler and answers done. No SQLite involved. Events are recycled
//                         from a pool (sequence rewritten once nothing references the event).
// The producer keeps at most `window` events in flight (the bus's credit). Events are real
// envelopes (CloudEvents attributes plus a JSON data object), built once into a pool before
// timing and handed on as shared pointers, as the journal tail hands them to consumers.
//
// Prints one JSON object per line on stdout, a summary on stderr. Options (--name=value):
//   --events=2000000 --reps=5 --window=1000 --chunk=100 --batch=100 --threads=2 --pool=4096
//   --batched-factor=10 (switchboard_batched and bus move events*10)
//   --variants=caf_raw,switchboard,switchboard_batched,bus

#include "bench_util.hpp"

#include "core/type_pattern.hpp"
#include "engine/bus/bus.hpp"
#include "protocols/messages.hpp"
#include "switchboard/event.hpp"
#include "switchboard/runtime.hpp"  // event_handler

#include <caf/all.hpp>

#include <atomic>
#include <cstdint>
#include <future>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace switchboard;
using bench::steady;

struct options {
  std::uint64_t events = 2'000'000;
  std::uint64_t batched_factor = 10;  // switchboard_batched runs events * this
  std::size_t reps = 5;
  std::size_t window = 1000;
  std::size_t chunk = 100;
  std::size_t batch = 100;
  std::size_t threads = 2;
  std::size_t pool = 4096;
};

/// Set by the last stage when it has seen every event of a run.
struct run_ctl {
  std::uint64_t total = 0;
  std::promise<steady::time_point> finished;
  std::uint64_t checksum = 0;  // keeps the handler's work observable
};

using pool_ptr = std::shared_ptr<const std::vector<event_ptr>>;

event make_event(std::size_t i) {
  event ev;
  ev.id = "evt-" + std::to_string(1'000'000 + i);
  ev.source = "https://loans.example.com/core";
  ev.type = "application.status_changed";
  ev.subject = "applications/A-" + std::to_string(1000 + i % 500);
  ev.time = "2026-11-23T14:00:00.123Z";
  ev.entity_kind = "application";
  ev.entity_id = "A-" + std::to_string(1000 + i % 500);
  ev.entity_version = i + 1;
  ev.correlation_id = "c0ffee00-0000-4000-8000-" + std::to_string(100000000000 + i);
  ev.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  ev.sequence = i + 1;
  ev.data["applicationId"] = ev.entity_id;
  ev.data["status"] = "approved";
  ev.data["previousStatus"] = "under_review";
  ev.data["amount"] = 25'000.0 + static_cast<double>(i);
  ev.data["currency"] = "EUR";
  ev.data["decidedBy"] = "underwriter-17";
  return ev;
}

pool_ptr make_pool(std::size_t n) {
  auto out = std::make_shared<std::vector<event_ptr>>();
  out->reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    out->push_back(std::make_shared<const event>(make_event(i)));
  return out;
}

// -- raw CAF baseline ------------------------------------------------------------------------

struct raw_producer_state {
  caf::actor next;
  std::uint64_t sent = 0;
  std::uint64_t in_flight = 0;
};

caf::behavior raw_producer(caf::stateful_actor<raw_producer_state>* self, std::uint64_t total,
                           std::uint64_t window) {
  auto refill = [self, total, window] {
    auto& st = self->state;
    while (st.in_flight < window && st.sent < total) {
      self->send(st.next, static_cast<std::int64_t>(st.sent));
      ++st.sent;
      ++st.in_flight;
    }
  };
  return {
      [self, refill](caf::put_atom, caf::actor next) {  // start
        self->state.next = std::move(next);
        refill();
      },
      [self, refill](std::int64_t credit) {
        self->state.in_flight -= static_cast<std::uint64_t>(credit);
        refill();
      },
  };
}

caf::behavior raw_router(caf::event_based_actor* self, caf::actor next) {
  return {
      [self, next](std::int64_t x) { self->send(next, x); },
  };
}

struct raw_handler_state {
  std::uint64_t received = 0;
  std::int64_t unacked = 0;
  std::uint64_t sum = 0;
};

caf::behavior raw_handler(caf::stateful_actor<raw_handler_state>* self, caf::actor producer,
                          run_ctl* ctl, std::int64_t chunk) {
  return {
      [=](std::int64_t x) {
        auto& st = self->state;
        st.sum += static_cast<std::uint64_t>(x);
        if (++st.unacked == chunk) {
          self->send(producer, st.unacked);
          st.unacked = 0;
        }
        if (++st.received == ctl->total) {
          ctl->checksum = st.sum;
          ctl->finished.set_value(steady::now());
        }
      },
  };
}

// -- switchboard envelopes, one message per event --------------------------------------------

struct sb_producer_state {
  caf::actor next;
  pool_ptr pool;
  std::uint64_t sent = 0;
  std::uint64_t in_flight = 0;
};

caf::behavior sb_producer(caf::stateful_actor<sb_producer_state>* self, pool_ptr pool,
                          std::uint64_t total, std::uint64_t window) {
  self->state.pool = std::move(pool);
  auto refill = [self, total, window] {
    auto& st = self->state;
    const auto& events = *st.pool;
    while (st.in_flight < window && st.sent < total) {
      self->send(st.next, work_atom_v, events[st.sent % events.size()]);
      ++st.sent;
      ++st.in_flight;
    }
  };
  return {
      [self, refill](caf::put_atom, caf::actor next) {
        self->state.next = std::move(next);
        refill();
      },
      [self, refill](done_atom, const std::vector<std::uint64_t>& seqs) {
        self->state.in_flight -= seqs.size();
        refill();
      },
  };
}

struct sb_router_state {
  caf::actor next;
  std::optional<core::type_pattern> pattern;
};

std::optional<core::type_pattern> bench_pattern() {
  std::string why;
  auto p = core::type_pattern::parse("application.*", why);
  if (!p)
    throw std::runtime_error(why);
  return p;
}

caf::behavior sb_router(caf::stateful_actor<sb_router_state>* self, caf::actor next) {
  self->state.next = std::move(next);
  self->state.pattern = bench_pattern();
  return {
      [self](work_atom, const event_ptr& ev) {
        // Every pooled event matches; a non-matching one would need its credit returned here.
        if (self->state.pattern->matches(ev->type))
          self->send(self->state.next, work_atom_v, ev);
      },
  };
}

struct sb_handler_state {
  event_handler handler;
  std::uint64_t sink = 0;
  std::uint64_t received = 0;
  std::vector<std::uint64_t> done;
};

caf::behavior sb_handler(caf::stateful_actor<sb_handler_state>* self, caf::actor producer,
                         run_ctl* ctl, std::size_t chunk) {
  auto& st = self->state;
  st.handler = [sink = &st.sink](const event& ev) {
    *sink += ev.data.size() + ev.entity_id.size() + *ev.entity_version;
  };
  st.done.reserve(chunk);
  return {
      [=](work_atom, const event_ptr& ev) {
        auto& s = self->state;
        s.handler(*ev);
        s.done.push_back(*ev->sequence);
        if (s.done.size() == chunk) {
          self->send(producer, done_atom_v, std::move(s.done));
          s.done = {};
          s.done.reserve(chunk);
        }
        if (++s.received == ctl->total) {
          ctl->checksum = s.sink;
          ctl->finished.set_value(steady::now());
        }
      },
  };
}

// -- switchboard envelopes, batched like the bus ---------------------------------------------

caf::behavior sbb_producer(caf::stateful_actor<sb_producer_state>* self, pool_ptr pool,
                           std::uint64_t total, std::uint64_t window, std::size_t batch) {
  self->state.pool = std::move(pool);
  auto refill = [self, total, window, batch] {
    auto& st = self->state;
    const auto& events = *st.pool;
    while (st.in_flight < window && st.sent < total) {
      auto n = std::min<std::uint64_t>({batch, window - st.in_flight, total - st.sent});
      auto out = std::make_shared<std::vector<event_ptr>>();
      out->reserve(n);
      for (std::uint64_t i = 0; i < n; ++i)
        out->push_back(events[(st.sent + i) % events.size()]);
      self->send(st.next, work_atom_v, event_batch{std::move(out)});
      st.sent += n;
      st.in_flight += n;
    }
  };
  return {
      [self, refill](caf::put_atom, caf::actor next) {
        self->state.next = std::move(next);
        refill();
      },
      [self, refill](done_atom, const std::vector<std::uint64_t>& seqs) {
        self->state.in_flight -= seqs.size();
        refill();
      },
  };
}

caf::behavior sbb_router(caf::stateful_actor<sb_router_state>* self, caf::actor next) {
  self->state.next = std::move(next);
  self->state.pattern = bench_pattern();
  return {
      [self](work_atom, const event_batch& batch) {
        // Like the consumer's dispatch: filter into a fresh lane vector, send it as a batch.
        std::vector<event_ptr> lane;
        lane.reserve(batch->size());
        for (const auto& ev : *batch)
          if (self->state.pattern->matches(ev->type))
            lane.push_back(ev);
        self->send(self->state.next, work_atom_v,
                   event_batch{std::make_shared<const std::vector<event_ptr>>(std::move(lane))});
      },
  };
}

caf::behavior sbb_handler(caf::stateful_actor<sb_handler_state>* self, caf::actor producer,
                          run_ctl* ctl) {
  auto& st = self->state;
  st.handler = [sink = &st.sink](const event& ev) {
    *sink += ev.data.size() + ev.entity_id.size() + *ev.entity_version;
  };
  return {
      [=](work_atom, const event_batch& batch) {
        auto& s = self->state;
        std::vector<std::uint64_t> done;
        done.reserve(batch->size());
        for (const auto& ev : *batch) {
          s.handler(*ev);
          done.push_back(*ev->sequence);
        }
        s.received += batch->size();
        self->send(producer, done_atom_v, std::move(done));
        if (s.received == ctl->total) {
          ctl->checksum = s.sink;
          ctl->finished.set_value(steady::now());
        }
      },
  };
}

// -- switchboard's own bus: journal_tail -> consumer -> partition -> handler -----------------

struct run_result {
  double events_per_s = 0;
  double cpu_us_per_event = 0;
  double runqueue_wait = 0;  // this process's threads runnable but without a CPU, in cores
};

/// Total nanoseconds this process's threads have waited for a CPU while runnable.
std::uint64_t runqueue_wait_ns() {
  std::uint64_t sum = 0;
  for (const auto& t : bench::thread_cpu_ns())
    sum += t.wait_ns;
  return sum;
}

/// Events the feeder recycles: event `seq` uses slot seq % size. A slot is reused only once
/// the consumer has finished its previous event, the tail has dropped it and nothing else
/// references it, so rewriting its sequence races with nobody.
struct bus_pool {
  std::vector<std::shared_ptr<event>> slots;
  explicit bus_pool(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
      slots.push_back(std::make_shared<event>(make_event(i)));
  }
};

constexpr std::size_t bus_tail_capacity = 2048;
constexpr std::size_t bus_append_batch = 256;  // events per simulated commit

run_result run_bus_once(caf::actor_system& sys, const options& opt, std::uint64_t total,
                        bus_pool& pool) {
  if (pool.slots.size() < 2 * bus_tail_capacity)
    throw std::logic_error("bus pool too small");
  auto tail = std::make_shared<actors::journal_tail>(bus_tail_capacity, 0);
  // An ephemeral consumer never touches the writer (no checkpoints) and, while it keeps up
  // with the tail, never asks the reader: both stay empty.
  actors::bus_context context;
  context.tail = tail;
  auto ctx = std::make_shared<const actors::bus_context>(std::move(context));
  subscription_options so;
  so.pattern = "application.*";
  so.max_in_flight = opt.window;
  so.partitions = 1;
  std::atomic<std::uint64_t> handled{0};
  std::promise<steady::time_point> finished;
  std::uint64_t sink = 0;  // only the partition's thread touches it
  event_handler handler = [&](const event& ev) {
    sink += ev.data.size() + ev.entity_id.size() + *ev.entity_version;
    if (handled.fetch_add(1, std::memory_order_relaxed) + 1 == total)
      finished.set_value(steady::now());
  };
  auto entry = std::make_shared<actors::subscription_entry>(1, so, *bench_pattern(), handler);
  auto done = finished.get_future();
  auto consumer = actors::consumer_child(entry, ctx).start(sys);

  const double cpu0 = bench::process_cpu_seconds();
  const auto wait0 = runqueue_wait_ns();
  const auto t0 = steady::now();
  std::thread feeder([&] {
    std::uint64_t appended = 0;
    std::vector<event_ptr> batch;
    while (appended < total) {
      // Stay within the tail (the consumer would otherwise fetch from the absent reader).
      while (appended - entry->progress.load() + bus_append_batch > bus_tail_capacity)
        std::this_thread::sleep_for(std::chrono::microseconds(20));
      const auto n = std::min<std::uint64_t>(bus_append_batch, total - appended);
      batch.clear();
      for (std::uint64_t i = 0; i < n; ++i) {
        const auto seq = appended + i + 1;
        auto& slot = pool.slots[seq % pool.slots.size()];
        while (slot.use_count() != 1)
          std::this_thread::yield();
        slot->sequence = seq;
        batch.push_back(slot);
      }
      appended += n;
      tail->append(std::move(batch));
      batch = {};
    }
  });
  const auto t1 = done.get();
  const double cpu1 = bench::process_cpu_seconds();
  const auto wait1 = runqueue_wait_ns();
  feeder.join();
  caf::anon_send_exit(consumer, caf::exit_reason::user_shutdown);
  consumer = nullptr;
  sys.await_all_actors_done();
  if (sink == 0)
    throw std::logic_error("the handler did no work");
  run_result r;
  r.events_per_s = static_cast<double>(total) / bench::seconds_between(t0, t1);
  r.cpu_us_per_event = (cpu1 - cpu0) * 1e6 / static_cast<double>(total);
  r.runqueue_wait = static_cast<double>(wait1 - wait0) / 1e9 / bench::seconds_between(t0, t1);
  return r;
}

// -- running ---------------------------------------------------------------------------------

enum class variant { caf_raw, switchboard, switchboard_batched, bus };
constexpr int variant_count = 4;

const char* name_of(variant v) {
  switch (v) {
    case variant::caf_raw: return "caf_raw";
    case variant::switchboard: return "switchboard";
    case variant::switchboard_batched: return "switchboard_batched";
    case variant::bus: return "bus";
  }
  return "?";
}

run_result run_once(caf::actor_system& sys, variant v, const options& opt, std::uint64_t total,
                    const pool_ptr& pool, bus_pool& bpool) {
  if (v == variant::bus)
    return run_bus_once(sys, opt, total, bpool);
  run_ctl ctl;
  ctl.total = total;
  auto finished = ctl.finished.get_future();
  caf::actor producer, router, handler;
  switch (v) {
    case variant::caf_raw:
      producer = sys.spawn(raw_producer, total, std::uint64_t{opt.window});
      handler = sys.spawn(raw_handler, producer, &ctl, static_cast<std::int64_t>(opt.chunk));
      router = sys.spawn(raw_router, handler);
      break;
    case variant::switchboard:
      producer = sys.spawn(sb_producer, pool, total, std::uint64_t{opt.window});
      handler = sys.spawn(sb_handler, producer, &ctl, opt.chunk);
      router = sys.spawn(sb_router, handler);
      break;
    case variant::switchboard_batched:
      producer = sys.spawn(sbb_producer, pool, total, std::uint64_t{opt.window}, opt.batch);
      handler = sys.spawn(sbb_handler, producer, &ctl);
      router = sys.spawn(sbb_router, handler);
      break;
    case variant::bus: break;
  }
  const double cpu0 = bench::process_cpu_seconds();
  const auto wait0 = runqueue_wait_ns();
  const auto t0 = steady::now();
  caf::anon_send(producer, caf::put_atom_v, router);
  const auto t1 = finished.get();
  const double cpu1 = bench::process_cpu_seconds();
  const auto wait1 = runqueue_wait_ns();
  for (auto* a : {&producer, &router, &handler})
    caf::anon_send_exit(*a, caf::exit_reason::user_shutdown);
  producer = router = handler = nullptr;  // the behaviors hold each other: exit breaks the cycle
  sys.await_all_actors_done();
  if (ctl.checksum == 0)
    throw std::logic_error("the handler did no work");
  run_result r;
  r.events_per_s = static_cast<double>(total) / bench::seconds_between(t0, t1);
  r.cpu_us_per_event = (cpu1 - cpu0) * 1e6 / static_cast<double>(total);
  r.runqueue_wait = static_cast<double>(wait1 - wait0) / 1e9 / bench::seconds_between(t0, t1);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  options opt;
  std::vector<variant> variants;
  try {
    bench::args a{argc, argv};
    if (a.has("help")) {
      std::cerr << "usage: routing_bench [--events=N] [--batched-factor=N] [--reps=N] "
                   "[--window=N] [--chunk=N] [--batch=N] [--threads=N] [--pool=N] "
                   "[--variants=caf_raw,switchboard,switchboard_batched,bus]\n";
      return 0;
    }
    opt.events = a.num("events", opt.events);
    opt.batched_factor = a.num("batched-factor", opt.batched_factor);
    opt.reps = a.num("reps", opt.reps);
    opt.window = a.num("window", opt.window);
    opt.chunk = a.num("chunk", opt.chunk);
    opt.batch = a.num("batch", opt.batch);
    opt.threads = a.num("threads", opt.threads);
    opt.pool = a.num("pool", opt.pool);
    if (opt.events == 0 || opt.reps == 0 || opt.window == 0 || opt.chunk == 0 || opt.batch == 0 ||
        opt.threads == 0 || opt.pool == 0 || opt.batched_factor == 0 || opt.chunk > opt.window)
      throw std::invalid_argument("every option must be positive, and chunk <= window");
    const auto wanted =
        "," + a.get("variants", "caf_raw,switchboard,switchboard_batched,bus") + ",";
    for (auto v :
         {variant::caf_raw, variant::switchboard, variant::switchboard_batched, variant::bus})
      if (wanted.find("," + std::string(name_of(v)) + ",") != std::string::npos)
        variants.push_back(v);
    if (variants.empty())
      throw std::invalid_argument(
          "--variants names none of caf_raw, switchboard, "
          "switchboard_batched, bus");
  } catch (const std::exception& e) {
    std::cerr << "routing_bench: " << e.what() << "\n";
    return 2;
  }

  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", opt.threads);
  caf::actor_system sys{cfg};
  const auto pool = make_pool(opt.pool);
  bus_pool bpool{std::max(opt.pool, 2 * bus_tail_capacity)};
  const auto envelope_bytes = encode_event(*pool->front()).size();
  // Batched runs move many events per message: give them more events to stay measurable.
  auto events_of = [&](variant v) {
    return v == variant::switchboard_batched || v == variant::bus ? opt.events * opt.batched_factor
                                                                  : opt.events;
  };

  // Warm-up (allocator, scheduler threads, caches): a tenth of a run of each, not reported.
  for (auto v : variants)
    run_once(sys, v, opt, std::max<std::uint64_t>(events_of(v) / 10, opt.window), pool, bpool);

  const double load_before = bench::loadavg1();
  std::vector<double> rate[variant_count], cpu[variant_count], waits[variant_count];
  for (std::size_t rep = 0; rep < opt.reps; ++rep)
    for (auto v : variants) {  // interleaved: noise hits every variant alike
      auto r = run_once(sys, v, opt, events_of(v), pool, bpool);
      rate[static_cast<int>(v)].push_back(r.events_per_s);
      cpu[static_cast<int>(v)].push_back(r.cpu_us_per_event);
      waits[static_cast<int>(v)].push_back(r.runqueue_wait);
    }
  const double load_after = bench::loadavg1();

  double med[variant_count] = {};
  for (auto v : variants) {
    auto i = static_cast<int>(v);
    med[i] = bench::median(rate[i]);
    bench::json_line j;
    j.str("bench", "routing")
        .str("variant", name_of(v))
        .str("message", v == variant::caf_raw       ? "int64"
                        : v == variant::switchboard ? "(work_atom, event_ptr)"
                        : v == variant::bus         ? "journal_tail + (work_atom, event_batch)"
                                                    : "(work_atom, event_batch)")
        .number("events_per_s", med[i])
        .number("events_per_s_min", *std::min_element(rate[i].begin(), rate[i].end()))
        .number("events_per_s_max", *std::max_element(rate[i].begin(), rate[i].end()))
        .raw("runs", bench::num_list(rate[i]))
        .number("cpu_us_per_event", bench::median(cpu[i]))
        .number("runqueue_wait_cores", bench::median(waits[i]))
        .number("events", static_cast<double>(events_of(v)))
        .number("reps", static_cast<double>(opt.reps))
        .number("hops", 3)
        .number("window", static_cast<double>(opt.window));
    if (v != variant::bus)  // the bus's partition answers done once per round instead
      j.number("credit_chunk", static_cast<double>(opt.chunk));
    if (v == variant::switchboard_batched)
      j.number("batch", static_cast<double>(opt.batch));
    if (v == variant::bus)
      j.number("append_batch", static_cast<double>(bus_append_batch))
          .number("tail_capacity", static_cast<double>(bus_tail_capacity))
          .number("partitions", 1);
    if (v != variant::caf_raw)
      j.number("envelope_json_bytes", static_cast<double>(envelope_bytes));
    j.number("threads", static_cast<double>(opt.threads))
        .number("loadavg1_before", load_before)
        .number("loadavg1_after", load_after)
        .print();
  }

  std::fprintf(stderr,
               "routing: 3 hops, window %zu, credit every %zu, %zu threads, %zu reps, load "
               "%.2f -> %.2f\n",
               opt.window, opt.chunk, opt.threads, opt.reps, load_before, load_after);
  const bool have_raw = !rate[0].empty();
  for (auto v : variants) {
    auto i = static_cast<int>(v);
    std::fprintf(stderr,
                 "  %-20s %10.0f events/s (median; min %.0f, max %.0f), %.3f us CPU/event, "
                 "waited for a CPU %.2f cores",
                 name_of(v), med[i], *std::min_element(rate[i].begin(), rate[i].end()),
                 *std::max_element(rate[i].begin(), rate[i].end()), bench::median(cpu[i]),
                 bench::median(waits[i]));
    if (have_raw && v != variant::caf_raw)
      std::fprintf(stderr, " = %.2fx caf_raw", med[i] / med[0]);
    std::fprintf(stderr, "\n");
  }

  if (have_raw && variants.size() > 1) {
    bench::json_line ratio;
    ratio.str("bench", "routing").str("variant", "ratio");
    for (auto v : variants) {
      auto i = static_cast<int>(v);
      if (v == variant::caf_raw)
        continue;
      std::vector<double> paired;  // run k of v against run k of caf_raw (interleaved)
      for (std::size_t rep = 0; rep < opt.reps; ++rep)
        paired.push_back(rate[i][rep] / rate[0][rep]);
      ratio.number(std::string(name_of(v)) + "_over_caf_raw", med[i] / med[0])
          .number(std::string(name_of(v)) + "_over_caf_raw_paired_median", bench::median(paired));
    }
    ratio.print();
  }
  return 0;
}
