// Journaled steps: effect, local, call, schedule (engine_impl.hpp).

#include "engine/durable/engine_impl.hpp"

namespace switchboard::actors {

// --- step_context
// -----------------------------------------------------------------------------------

step_context::step_context(invocation_engine& engine, runner& r, invocation_row inv)
    : engine_(engine), conn_(*r.conn), journal_(r.store), inv_(std::move(inv)) {
  auto parsed = parse_or_null(inv_.body);
  if (parsed.is_object())
    body_ = std::move(parsed.get_object());
}

json::value step_context::effect(const std::string& name, const std::function<json::value()>& run,
                                 const finder& find) {
  auto& d = *engine_.impl_;
  const auto n = inv_.n;
  auto s = journal_.step(n, name);
  if (s && s->status == "done")
    return parse_or_null(s->result);
  // The attempt is on disk before anything happens outside: after a crash it is known that
  // this step may have had an effect.
  const bool unknown = s && s->status == "started";
  const std::int64_t attempts = (s ? s->attempts : 0) + 1;
  attempts_ = attempts;
  write([&] {
    journal_.record_step(n, {name, "started", attempts, "", s ? s->error : "", rfc3339_now()});
  });
  if (unknown && find) {
    // The last attempt's outcome is unknown (a crash, a timeout): learn it before acting again.
    if (auto found = find()) {
      pending_done_.push_back({name, "done", attempts, json::serialize(*found), "", rfc3339_now()});
      return *found;
    }
  }
  d.failpoint(name, "before");
  json::value result;
  try {
    result = run();
  } catch (const step_retry& e) {
    write([&] {
      journal_.record_step(
          n, {name, e.ambiguous() ? "started" : "retry", attempts, "", e.what(), rfc3339_now()});
    });
    throw;
  } catch (const step_terminal& e) {
    write([&] {
      journal_.record_step(n, {name, "failed", attempts, "", e.what(), rfc3339_now()});
    });
    throw;
  }
  d.failpoint(name, "after");
  // "done" goes to disk with the next write of this invocation (the next step's start, a local
  // step, its end): one commit fewer per effect. A crash before that leaves the step "started",
  // and the next run's `find` learns that it happened.
  pending_done_.push_back({name, "done", attempts, json::serialize(result), "", rfc3339_now()});
  return result;
}

void step_context::write(const std::function<void()>& fn) {
  journal_.write([&] {
    for (const auto& p : pending_done_)
      journal_.record_step(inv_.n, p);
    fn();
  });
  pending_done_.clear();
}

json::value step_context::local(const std::string& name,
                                const std::function<json::value()>& change) {
  auto& d = *engine_.impl_;
  const auto n = inv_.n;
  const auto s = journal_.step(n, name);
  if (s && s->status == "done")
    return parse_or_null(s->result);
  d.failpoint(name, "before");
  json::value result;
  queued_.clear();
  timer_added_ = false;
  in_local_ = true;
  try {
    write([&] {
      result = change();
      journal_.record_step(n, {name, "done", 1, json::serialize(result), "", rfc3339_now()});
    });
  } catch (const step_retry& e) {
    // The change decided to wait (nothing of it was committed): the wait uses this step's
    // retry budget like an effect's failure does, so it parks rather than waiting forever.
    in_local_ = false;
    queued_.clear();
    attempts_ = (s ? s->attempts : 0) + 1;
    write([&] {
      journal_.record_step(n, {name, "retry", attempts_, "", e.what(), rfc3339_now()});
    });
    throw;
  } catch (...) {
    in_local_ = false;
    queued_.clear();
    throw;
  }
  in_local_ = false;
  d.failpoint(name, "after");
  d.dispatch_all(journal_, queued_);
  if (timer_added_)
    d.poke_timers();
  queued_.clear();
  timer_added_ = false;
  return result;
}

void step_context::enqueue(invocation_spec spec) {
  if (!in_local_)
    throw std::logic_error("step_context::enqueue outside local()");
  queued_.push_back(journal_.create_invocation(spec, rfc3339_now(), core::unix_millis_now()));
}

void step_context::dispatch_after_commit(std::uint64_t n) {
  if (!in_local_)
    throw std::logic_error("step_context::dispatch_after_commit outside local()");
  queued_.push_back(n);
}

void step_context::schedule(std::int64_t due_ms, const std::string& service, const std::string& key,
                            const std::string& handler, const json::value& body) {
  if (!in_local_)
    throw std::logic_error("step_context::schedule outside local()");
  journal_.add_timer({0, due_ms, service, key, handler, json::serialize(body)});
  timer_added_ = true;
}

json::value step_context::call(const std::string& name, const std::string& service,
                               const std::string& key, const std::string& handler,
                               const json::value& body) {
  auto& d = *engine_.impl_;
  const auto n = inv_.n;
  const auto s = journal_.step(n, name);
  if (s && s->status == "done")
    return parse_or_null(s->result);
  // No "started" record: the callee invocation, keyed by this step, is the record.
  attempts_ = (s ? s->attempts : 0) + 1;
  const auto id = step_id(name);
  std::uint64_t callee = 0;
  write([&] {
    if (auto found = journal_.idempotent(service, id, 0))
      callee = *found;
    else
      callee = journal_.create_invocation({service, key, handler, json::serialize(body), id},
                                          rfc3339_now(), core::unix_millis_now());
  });
  d.dispatch(service, key,
             callee);  // new, or (after a crash) waiting for a router; a repeat is skipped
  auto row = d.wait(callee, call_wait, [&] { return journal_.invocation(callee); });
  if (!row)
    throw step_terminal("the callee invocation inv-" + std::to_string(callee) + " disappeared");
  const auto what = service + "/" + key + "/" + handler + " (" + row->id() + ")";
  if (row->status == "done") {
    auto result = parse_or_null(row->result);
    pending_done_.push_back({name, "done", attempts_, row->result, "", rfc3339_now()});
    return result;
  }
  const auto error =
      row->status == "failed" || row->status == "cancelled"
          ? what + " " + row->status + ": " + row->error
          : what + " is " + row->status + (row->error.empty() ? "" : ": " + row->error);
  write([&] { journal_.record_step(n, {name, "retry", attempts_, "", error, rfc3339_now()}); });
  if (row->status == "failed" || row->status == "cancelled")
    throw step_terminal(error);
  throw step_retry(error);
}

}  // namespace switchboard::actors
