#include "actors/bus.hpp"

#include "actors/actor_support.hpp"
#include "core/type_pattern.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <vector>

namespace switchboard::actors {

namespace {

struct route {
  std::uint64_t subscription = 0;
  core::type_pattern pattern;
  subscriber_actor target;
};

struct router_state {
  static inline const char* name = "switchboard.router";
  std::vector<route> routes;
};

router_actor::behavior_type router_impl(router_actor::stateful_pointer<router_state> self) {
  install_exception_logger(self, "router");
  return {
    [self](route_atom, const event_ptr& ev, const inflight_ptr& ticket,
           const publish_completion_ptr& completion) {
      std::size_t handed = 0;
      for (auto& r : self->state.routes) {
        if (r.pattern.matches(ev->type)) {
          caf::anon_send(r.target, deliver_atom_v, ev, ticket);
          ++handed;
        }
      }
      SPDLOG_DEBUG("{} routed to {} subscription(s)", log_context(*ev), handed);
      if (completion)
        completion->accepted(handed);
    },
    [self](register_atom, std::uint64_t id, const std::string& pattern, const caf::actor& who) {
      std::string why;
      auto parsed = core::type_pattern::parse(pattern, why);
      if (!parsed) {
        spdlog::error("router: subscription {} refused: {}", id, why);
        return;
      }
      auto target = caf::actor_cast<subscriber_actor>(who);
      auto& routes = self->state.routes;
      auto i = std::find_if(routes.begin(), routes.end(),
                            [id](const route& r) { return r.subscription == id; });
      if (i != routes.end())
        i->target = target;  // a restarted subscriber replaces its predecessor
      else
        routes.push_back(route{id, std::move(*parsed), target});
    },
    [self](unregister_atom, std::uint64_t id) {
      auto& routes = self->state.routes;
      routes.erase(std::remove_if(routes.begin(), routes.end(),
                                  [id](const route& r) { return r.subscription == id; }),
                   routes.end());
    },
  };
}

struct subscriber_state {
  static inline const char* name = "switchboard.subscriber";
  std::shared_ptr<const subscription_entry> entry;
  std::uint64_t handled = 0;
  std::uint64_t failed = 0;
};

subscriber_actor::behavior_type
subscriber_impl(subscriber_actor::stateful_pointer<subscriber_state> self,
                std::shared_ptr<const subscription_entry> entry) {
  self->state.entry = std::move(entry);
  install_exception_logger(self, "subscriber " + std::to_string(self->state.entry->id));
  return {
    [self](deliver_atom, const event_ptr& ev, const inflight_ptr&) {
      auto& st = self->state;
      // A handler's failure is the handler's: log it with the event's ids and go on. The
      // journal (a later change) adds retries and dead letters.
      try {
        st.entry->handler(*ev);
        ++st.handled;
      } catch (const std::exception& e) {
        ++st.failed;
        spdlog::error("{} subscription {} ('{}') handler failed: {}", log_context(*ev),
                      st.entry->id, st.entry->pattern, e.what());
      } catch (...) {
        ++st.failed;
        spdlog::error("{} subscription {} ('{}') handler failed with a non-standard exception",
                      log_context(*ev), st.entry->id, st.entry->pattern);
      }
    },
  };
}

} // namespace

router_actor current_router(caf::actor_system& sys) {
  return caf::actor_cast<router_actor>(sys.registry().get(router_name));
}

child_spec router_child() {
  return child_spec{"router", restart_policy::permanent, [](caf::actor_system& sys) {
                      auto router = sys.spawn(router_impl);
                      // put() keeps an existing entry, so drop the previous instance's first.
                      sys.registry().erase(router_name);
                      sys.registry().put(router_name,
                                         caf::actor_cast<caf::strong_actor_ptr>(router));
                      return caf::actor_cast<caf::actor>(router);
                    }};
}

child_spec subscriber_child(std::shared_ptr<const subscription_entry> entry) {
  auto id = "subscription-" + std::to_string(entry->id);
  return child_spec{std::move(id), restart_policy::permanent,
                    [entry = std::move(entry)](caf::actor_system& sys) {
                      auto router = current_router(sys);
                      if (!router)
                        throw std::runtime_error("no router is running");
                      auto sub = sys.spawn(subscriber_impl, entry);
                      caf::anon_send(router, register_atom_v, entry->id, entry->pattern,
                                     caf::actor_cast<caf::actor>(sub));
                      return caf::actor_cast<caf::actor>(sub);
                    }};
}

} // namespace switchboard::actors
