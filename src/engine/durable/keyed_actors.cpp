// The keyed actors: a router per service and a passivated entity per key (engine_impl.hpp).

#include "engine/durable/engine_impl.hpp"

#include <caf/all.hpp>
#include "engine/supervision/supervisor.hpp"

namespace switchboard::actors {

void invocation_engine::impl::dispatch(const std::string& service_name, const std::string& key,
                                       std::uint64_t n) {
  auto& s = service(service_name);
  keyed_router_actor to;
  {
    std::lock_guard<std::mutex> guard{s.router_mu};
    to = s.router;
  }
  // No router (restarting): its start scan finds the invocation in the database.
  if (to)
    caf::anon_send(to, dispatch_atom_v, key, n);
}

// --- actors
// -----------------------------------------------------------------------------------------

namespace {

// An entity is what a key costs while it is in memory, so its state is kept small: its router
// is found through the service, and its queue (the running invocation first) exists only while
// it has work.
struct entity_state {
  static inline const char* name = "keyed_entity";
  std::string key;
  invocation_engine::impl::service_rt* service = nullptr;
  std::unique_ptr<std::vector<std::uint64_t>> queue;
};

using entity_pointer = keyed_entity_actor::stateful_pointer<entity_state>;

void run(entity_pointer self, std::uint64_t n) {
  auto* engine = self->state.service->engine;
  keyed_entity_actor me = self;
  engine->post(*self->state.service, [engine, n, me](step_context::runner& r) {
    caf::anon_send(me, ran_atom_v, n, engine->execute(r, n));
  });
}

keyed_entity_actor::behavior_type entity(entity_pointer self,
                                         invocation_engine::impl::service_rt* service,
                                         std::string key) {
  self->state.key = std::move(key);
  self->state.service = service;
  return {
      [self](invoke_atom, std::uint64_t n) {
        auto& q = self->state.queue;
        if (q) {
          q->push_back(n);  // runs after the ones before it
          return;
        }
        q = std::make_unique<std::vector<std::uint64_t>>(1, n);
        run(self, n);
      },
      [self](ran_atom, std::uint64_t n, std::int64_t delay) {
        auto& st = self->state;
        if (delay >= 0) {
          self->delayed_send(self, std::chrono::milliseconds{delay}, retry_atom_v, n);
          return;
        }
        keyed_router_actor router;
        {
          std::lock_guard<std::mutex> guard{st.service->router_mu};
          router = st.service->router;
        }
        // After a router restart this reaches the new router, which ignores keys it does not hold.
        self->send(router, idle_atom_v, st.key);
        st.queue->erase(st.queue->begin());
        if (st.queue->empty())
          st.queue.reset();
        else
          run(self, st.queue->front());
      },
      [self](retry_atom, std::uint64_t n) { run(self, n); },
      [self](passivate_atom) { self->quit(); },
  };
}

struct router_state {
  static inline const char* name = "keyed_router";
  struct entry {
    keyed_entity_actor actor;
    std::uint32_t pending = 0;     // invocations handed over and not yet finished
    std::uint32_t idle_ticks = 0;  // passivation ticks seen with nothing pending
  };
  std::shared_ptr<invocation_engine::impl> engine;
  invocation_engine::impl::service_rt* service = nullptr;
  std::unordered_map<std::string, entry> entities;
  ~router_state() {
    // Not linked (a link costs both sides memory per key): the router ends its entities itself.
    for (auto& [key, e] : entities)
      caf::anon_send_exit(e.actor, caf::exit_reason::user_shutdown);
    if (engine)
      engine->active -= entities.size();
  }
};

using router_pointer = keyed_router_actor::stateful_pointer<router_state>;

keyed_router_actor::behavior_type router(router_pointer self,
                                         std::shared_ptr<invocation_engine::impl> engine,
                                         std::string service_name) {
  auto* service = &engine->service(service_name);
  self->state.engine = engine;
  self->state.service = service;
  {
    std::lock_guard<std::mutex> guard{service->router_mu};
    service->router = self;
  }
  // Everything still running in the database (a crash, a restart of this router) runs again.
  keyed_router_actor me = self;
  engine->post(*service, [service_name, me, name = engine->options.name](step_context::runner& r) {
    auto running = r.store.running_invocations(service_name);
    if (!running.empty())
      spdlog::info("{}: {} resumes {} invocation(s)", name, service_name, running.size());
    for (auto n : running)
      if (auto row = r.store.invocation(n))
        caf::anon_send(me, dispatch_atom_v, row->key, n);
  });
  const auto tick = std::max<std::chrono::milliseconds>(engine->options.passivate_after / 2,
                                                        std::chrono::milliseconds{50});
  self->delayed_send(self, tick, passivate_atom_v);
  return {
      [self](dispatch_atom, const std::string& key, std::uint64_t n) {
        auto& st = self->state;
        auto it = st.entities.find(key);
        if (it == st.entities.end()) {
          it = st.entities.emplace(key, router_state::entry{}).first;
          it->second.actor = self->spawn(entity, st.service, key);
          ++st.engine->active;
        }
        ++it->second.pending;
        self->send(it->second.actor, invoke_atom_v, n);
      },
      [self](idle_atom, const std::string& key) {
        auto it = self->state.entities.find(key);
        if (it == self->state.entities.end())
          return;
        if (it->second.pending > 0)
          --it->second.pending;
        it->second.idle_ticks = 0;
      },
      [self, tick](passivate_atom) {
        // A tick every passivate_after / 2: an entity idle through two ticks has been idle for
        // at least passivate_after.
        auto& st = self->state;
        for (auto it = st.entities.begin(); it != st.entities.end();) {
          if (it->second.pending == 0 && ++it->second.idle_ticks > 2) {
            self->send(it->second.actor, passivate_atom_v);
            it = st.entities.erase(it);
            --st.engine->active;
          } else {
            ++it;
          }
        }
        self->delayed_send(self, tick, passivate_atom_v);
      },
  };
}

}  // namespace

child_spec invocation_engine::child(const supervision_config& supervision) {
  auto spec = supervisor_spec_of(impl_->options.name, supervision);
  for (auto& [name, s] : impl_->services)
    spec.children.push_back(child_spec{"router:" + name, restart_policy::permanent,
                                       [engine = impl_, name = name](caf::actor_system& sys) {
                                         return caf::actor_cast<caf::actor>(
                                             sys.spawn(router, engine, name));
                                       }});
  return supervisor_child(std::move(spec));
}

}  // namespace switchboard::actors
