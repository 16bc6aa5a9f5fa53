#pragma once

// The runtime's state, shared by runtime.cpp (the job host: start, stop, the jobs' APIs) and
// subscriptions.cpp (the bus: publish, subscriptions, replay, reads, dead letters).

#include "switchboard/runtime.hpp"

#include "adapters/http/http_server.hpp"
#include "adapters/sqlite/journal_store.hpp"
#include "engine/bus/bus.hpp"
#include "engine/journal/journal.hpp"
#include "engine/lane.hpp"
#include "engine/supervision/supervisor.hpp"
#include "jobs/job.hpp"
#include "jobs/leads/job.hpp"
#include "jobs/propagation/job.hpp"
#include "runtime/data_dir_lock.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

namespace switchboard {

struct runtime::impl {
  using phase = jobs::phase;

  explicit impl(config c) : cfg(std::move(c)) {
    // The entity attributes are needed only where state is kept by entity.
    cfg.limits.require_entity = cfg.limits.require_entity && cfg.propagates_state();
  }

  config cfg;
  jobs::secrets env;
  // Runs the runtime's blocking CAF calls (scoped actors, creating and destroying the actor
  // system) on one thread of its own. CAF 0.17 hangs in ~actor_system when the system is
  // destroyed on another thread than the one that used scoped actors (or spawned detached
  // actors), and a host may call start(), subscribe() and stop() from any threads.
  engine::lane control{"caf control"};
  std::unique_ptr<internal::data_dir_lock> dir_lock;  // from open_journal until stopped
  adapters::sqlite::journal_options journal_opts;
  std::shared_ptr<actors::journal_writer> writer;
  std::shared_ptr<actors::journal_tail> tail;
  std::shared_ptr<actors::journal_reader> reader;
  std::shared_ptr<const actors::bus_context> ctx;
  // Journal rows that could not be decoded, as met since start: /ready names them.
  std::shared_ptr<actors::unreadable_rows> unreadable = std::make_shared<actors::unreadable_rows>();
  std::unique_ptr<caf::actor_system_config> caf_cfg;
  std::unique_ptr<caf::actor_system> sys;
  supervisor_actor root;
  std::unique_ptr<adapters::http::http_server> http;
  std::string listen_address;

  // The configured jobs, in start order (stopped in reverse). The typed pointers reach the
  // jobs' own APIs (rebuild, invoke); they point into `jobs`.
  std::unique_ptr<jobs::host> job_host;
  std::vector<std::unique_ptr<jobs::job>> jobs;
  jobs::propagation_job* propagation = nullptr;
  jobs::leads_job* leads = nullptr;
  std::vector<std::uint64_t> job_subscriptions;  // made through job_host, undone if start fails

  // A read-only connection for API reads (read, dead_letters); SQLite connections are not
  // thread-safe, so it is used under its own lock.
  mutable std::mutex query_mu;
  mutable std::unique_ptr<adapters::sqlite::journal_store> query_store;

  mutable std::mutex mu;
  std::condition_variable cv;
  phase state = phase::created;
  bool stop_requested = false;
  bool root_down = false;
  run_outcome outcome;
  std::map<std::uint64_t, std::shared_ptr<actors::subscription_entry>> subscriptions;
  std::uint64_t next_subscription = 1;

  template <class F>
  auto query(F&& f) const {
    std::lock_guard<std::mutex> guard{query_mu};
    if (!query_store) {
      auto opts = journal_opts;
      opts.read_only = true;
      query_store = std::make_unique<adapters::sqlite::journal_store>(opts);
    }
    return f(*query_store);
  }

  phase current_phase() const {
    std::lock_guard<std::mutex> guard{mu};
    return state;
  }

  // subscriptions.cpp
  supervisor_spec consumers_spec();
  supervisor_actor consumers() const;
  std::shared_ptr<actors::subscription_entry> find_by_name(const std::string& name) const;
  std::string request_consumers(const child_spec& spec);
  bool stop_consumer(std::uint64_t id);
  /// The root's first child, the consumers' supervisor, registered so that it can be found.
  child_spec consumers_child();
  void open_journal();

  // runtime.cpp
  supervisor_spec root_spec();
  void make_jobs(runtime& self);
  void abandon_start();
};

}  // namespace switchboard
